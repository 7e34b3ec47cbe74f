//! Redis as production runs it: two gateways share their clients through a
//! Redis Cluster (three masters, a replica each) or a master and replica
//! under three sentinels, and the busiest master is killed with SIGKILL in
//! the middle of mixed traffic from both. After the replica is promoted,
//! every client whose registration and rotations were acknowledged (and not
//! flagged as short of replicas) is still managed by both gateways, with no
//! registration access token from the caller. And the two guarantees under
//! them: a fence is never granted twice across a failover, and a write short
//! of its replicas is answered flagged and counted.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dcr_gateway::config::{RawConfig, RawStoreConfig};
use dcr_gateway::pb::v1 as pb;
use dcr_gateway::store::{
    Cas, LeaseKey, Leases, RedisPrefix, RedisStore, RedisTopology, ReplicaWait, TokenKey, Tokens,
};
use secrecy::{ExposeSecret, SecretString};
use support::redis::{K1, RedisServer};
use support::redis_ha::{RedisCluster, RedisSentinels, SENTINEL_MASTER, master_and_replica, query};
use support::{Client, TestGateway, eventually, get_req, machine_client};
use tonic::Request;

/// The header a call's answer carries when a credential it stored reached
/// fewer replicas than asked (README, token store).
const DURABILITY_HEADER: &str = "dcr-durability";
const MAY_NOT_SURVIVE_FAILOVER: &str = "may-not-survive-failover";
/// Clients registered before the kill (spread over the masters).
const CLIENTS: usize = 60;
/// Each call's deadline: long enough to ride out a failover.
const CALL_DEADLINE: Duration = Duration::from_secs(20);

fn settings(backend: &str, urls: String, master: Option<&str>) -> RawConfig {
    RawConfig {
        token_store: RawStoreConfig {
            backend: Some(backend.into()),
            redis_url: Some(urls.parse().unwrap()),
            redis_prefix: Some("ha".into()),
            redis_sentinel_master: master.map(Into::into),
            keys: Some(K1.parse().unwrap()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// What the traffic learnt: the clients whose every call was answered
/// (and held to be on a replica), and those with a call that was not.
#[derive(Default)]
struct Ledger {
    acknowledged: BTreeSet<String>,
    doubtful: BTreeSet<String>,
    /// Calls that failed, by message (how many each).
    failures: BTreeMap<String, usize>,
}

impl Ledger {
    fn record<T>(&mut self, id: &str, answer: &Result<tonic::Response<T>, tonic::Status>) {
        let flagged = answer.as_ref().is_ok_and(|r| {
            r.metadata()
                .get(DURABILITY_HEADER)
                .is_some_and(|v| v == MAY_NOT_SURVIVE_FAILOVER)
        });
        if let Err(status) = answer {
            *self
                .failures
                .entry(status.message().to_owned())
                .or_default() += 1;
        }
        if answer.is_err() || flagged {
            self.doubtful.insert(id.to_owned());
        }
    }

    fn kept(&self) -> Vec<String> {
        self.acknowledged
            .difference(&self.doubtful)
            .cloned()
            .collect()
    }
}

fn deadline<T>(msg: T) -> Request<T> {
    let mut req = Request::new(msg);
    req.set_timeout(CALL_DEADLINE);
    req
}

async fn register(client: &mut Client, name: &str, ledger: &Mutex<Ledger>) {
    let req = pb::RegisterClientRequest {
        metadata: Some(machine_client(name)),
        initial_access_token: None,
    };
    let answer = client.register_client(deadline(req)).await;
    if let Ok(r) = &answer {
        let id = r.get_ref().client.as_ref().unwrap().client_id.clone();
        let mut ledger = ledger.lock().unwrap();
        ledger.acknowledged.insert(id.clone());
        ledger.record(&id, &answer);
    }
}

/// Mixed traffic from one gateway on the clients in `ids` until `stop`:
/// reads, rotations of the registration token, new registrations.
async fn traffic(
    mut client: Client,
    ids: Vec<String>,
    ledger: Arc<Mutex<Ledger>>,
    stop: tokio::sync::watch::Receiver<bool>,
    who: usize,
) {
    let mut i = 0usize;
    while !*stop.borrow() {
        let id = ids[(i * 7 + who) % ids.len()].clone();
        match i % 3 {
            0 => {
                let answer = client
                    .rotate_registration_token(deadline(pb::RotateRegistrationTokenRequest {
                        client_id: id.clone(),
                        registration_access_token: None,
                    }))
                    .await;
                ledger.lock().unwrap().record(&id, &answer);
            }
            1 => {
                let answer = client.get_client(deadline(get_req(&id, None))).await;
                ledger.lock().unwrap().record(&id, &answer);
            }
            _ => register(&mut client, &format!("late-{who}-{i}"), &ledger).await,
        }
        i += 1;
    }
}

/// Runs the scenario: registrations, mixed traffic from both gateways,
/// `kill` in its middle, then the check from both gateways.
async fn kill_under_traffic<K: std::future::Future<Output = ()>>(
    gateways: [&TestGateway; 2],
    kill: impl FnOnce() -> K,
) -> Vec<String> {
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let clients = [gateways[0].client().await, gateways[1].client().await];
    for n in 0..CLIENTS {
        register(&mut clients[n % 2].clone(), &format!("c{n}"), &ledger).await;
    }
    let ids: Vec<String> = ledger.lock().unwrap().kept();
    assert_eq!(
        ids.len(),
        CLIENTS,
        "registrations before the kill must be kept"
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runs: Vec<_> = (0..4)
        .map(|who| {
            tokio::spawn(traffic(
                clients[who % 2].clone(),
                ids.clone(),
                ledger.clone(),
                stopped.clone(),
                who,
            ))
        })
        .collect();
    // Traffic is under way (some of it answered) before the kill.
    let before = ledger.lock().unwrap().acknowledged.len();
    eventually(Duration::from_secs(30), || async {
        (ledger.lock().unwrap().acknowledged.len() > before + 3).then_some(())
    })
    .await;
    kill().await;
    // Traffic goes on through the failover, and some of it after.
    let after = ledger.lock().unwrap().acknowledged.len();
    eventually(Duration::from_secs(60), || async {
        (ledger.lock().unwrap().acknowledged.len() > after + 10).then_some(())
    })
    .await;
    stop.send(true).unwrap();
    for run in runs {
        run.await.unwrap();
    }
    let (kept, acknowledged) = {
        let ledger = ledger.lock().unwrap();
        eprintln!(
            "{} clients acknowledged, {} with a call failed or flagged; failures: {:#?}",
            ledger.acknowledged.len(),
            ledger.doubtful.len(),
            ledger.failures
        );
        (ledger.kept(), ledger.acknowledged.len())
    };
    assert!(
        kept.len() >= CLIENTS / 2,
        "most clients must have every call answered: {} of {acknowledged}",
        kept.len(),
    );
    let mut lost = BTreeMap::new();
    for id in &kept {
        for (g, client) in clients.iter().enumerate() {
            let read = client.clone().get_client(deadline(get_req(id, None))).await;
            if let Err(status) = read {
                lost.insert(format!("{id} via gateway {g}"), status.message().to_owned());
            }
        }
    }
    assert!(
        lost.is_empty(),
        "acknowledged clients lost their stored token after the failover: {lost:#?}"
    );
    kept
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_killed_under_traffic_loses_no_acknowledged_client() {
    let cluster = RedisCluster::start(3).await;
    let dev = support::dev_upstream().await;
    let url = cluster.urls();
    let a = TestGateway::start_with(
        &dev.base_url(),
        settings("redis-cluster", url.clone(), None),
    )
    .await;
    let b = TestGateway::start_with(&dev.base_url(), settings("redis-cluster", url, None)).await;
    let cluster = Arc::new(tokio::sync::Mutex::new(cluster));
    let killed = Arc::new(Mutex::new(None));
    let (for_kill, noted) = (cluster.clone(), killed.clone());
    let kept = kill_under_traffic([&a, &b], || async move {
        let mut cluster = for_kill.lock().await;
        let (busiest, keys) = cluster.busiest_master().await;
        assert!(keys > 0, "the clients' keys are on the masters");
        cluster.nodes[busiest].kill().await;
        *noted.lock().unwrap() = Some(busiest);
        cluster.wait_failed_over(busiest).await;
    })
    .await;
    let cluster = cluster.lock().await;
    // The keys were spread: every live master holds some.
    for node in cluster.nodes.iter().filter(|n| n.is_running()) {
        let role: Vec<redis::Value> = query(node, &redis::cmd("ROLE")).await.unwrap();
        if matches!(&role[0], redis::Value::BulkString(r) if r == b"master") {
            let keys: u64 = query(node, &redis::cmd("DBSIZE")).await.unwrap();
            assert!(keys > 0, "a master holds none of the keys");
        }
    }
    assert!(killed.lock().unwrap().is_some());
    // The operator commands see every master's keys.
    let dir = support::temp_dir("ha-cli");
    let keys = dir.join("keys");
    std::fs::write(&keys, K1).unwrap();
    let urls = cluster.urls();
    let store = |prefix: &'static str| {
        let mut args = vec!["tokens", "--token-store", "redis-cluster"];
        args.extend([
            "--token-store-redis-url",
            &urls,
            "--token-store-redis-prefix",
            prefix,
        ]);
        args.extend(["--token-store-keys-file", keys.to_str().unwrap()]);
        args
    };
    let (ok, listed, err) = support::process::run(&[store("ha"), vec!["list"]].concat()).await;
    assert!(ok, "{err}");
    let listed_ids = listed.lines().count();
    assert!(
        listed_ids > CLIENTS,
        "tokens list shows every master's tokens: {listed}"
    );
    for id in kept.iter().take(10) {
        assert!(listed.contains(id.as_str()), "tokens list lacks {id}");
    }
    let (ok, exported, err) =
        support::process::run(&[store("ha"), vec!["export", "--reveal"]].concat()).await;
    assert!(ok, "{err}");
    let file = dir.join("all.json");
    std::fs::write(&file, exported).unwrap();
    let (ok, _, err) = support::process::run(
        &[
            store("ha-copy"),
            vec!["import", "--file", file.to_str().unwrap()],
        ]
        .concat(),
    )
    .await;
    assert!(ok, "{err}");
    let (ok, copied, err) = support::process::run(&[store("ha-copy"), vec!["list"]].concat()).await;
    assert!(ok, "{err}");
    assert_eq!(
        copied.lines().count(),
        listed_ids,
        "import wrote every exported token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_master_killed_under_traffic_loses_no_acknowledged_client() {
    let sentinels = RedisSentinels::start().await;
    let dev = support::dev_upstream().await;
    let url = sentinels.urls();
    let config = || settings("redis-sentinel", url.clone(), Some(SENTINEL_MASTER));
    let a = TestGateway::start_with(&dev.base_url(), config()).await;
    let b = TestGateway::start_with(&dev.base_url(), config()).await;
    let sentinels = Arc::new(tokio::sync::Mutex::new(sentinels));
    let for_kill = sentinels.clone();
    let kept = kill_under_traffic([&a, &b], || async move {
        let mut set = for_kill.lock().await;
        set.master.kill().await;
        set.wait_promoted().await;
    })
    .await;
    assert!(!kept.is_empty());
}

/// A store on `server`'s URL, one node, waiting for replicas as `wait`.
async fn node_store(server: &RedisServer, replicas: Option<u32>) -> RedisStore {
    RedisStore::connect(
        &SecretString::from(server.url()),
        &RedisTopology::Node,
        &ReplicaWait {
            min_replicas: replicas,
            ..ReplicaWait::default()
        },
        RedisPrefix::parse("fence").unwrap(),
        None,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_lease_taken_before_a_failover_cannot_let_its_stale_holder_overwrite_after_it() {
    let (master, replica) = master_and_replica().await;
    let on_master = node_store(&master, None).await;
    assert_eq!(
        on_master.min_replicas(),
        1,
        "a master with a replica waits for it"
    );
    let key = TokenKey {
        upstream: "http://127.0.0.1:9".into(),
        namespace: "default".into(),
        client_id: "c1".into(),
    };
    let lease = LeaseKey::Client(key.clone());
    let ttl = Duration::from_secs(30);
    // A history both servers hold.
    let first = on_master.take_lease(&lease, ttl).await.unwrap().unwrap();
    on_master.release_lease(&lease, first).await.unwrap();
    // A partition: the replica is promoted while the old master still takes
    // one more lease, which never reaches the replica.
    let _: () = query(&replica, redis::cmd("REPLICAOF").arg("NO").arg("ONE"))
        .await
        .unwrap();
    let stale = on_master.take_lease(&lease, ttl).await.unwrap().unwrap();
    let on_new = node_store(&replica, Some(0)).await;
    let fresh = on_new.take_lease(&lease, ttl).await.unwrap().unwrap();
    assert_ne!(
        stale, fresh,
        "a fence lost in the failover was granted again"
    );
    let written = on_new
        .compare_and_set_fenced(&key, None, &SecretString::from("rat-fresh"), "", fresh)
        .await
        .unwrap();
    let Cas::Stored(generation) = written else {
        panic!("the new holder's write was refused")
    };
    // The stale holder's connection now reaches the new master.
    let refused = on_new
        .compare_and_set_fenced(
            &key,
            Some(generation),
            &SecretString::from("rat-stale"),
            "",
            stale,
        )
        .await
        .unwrap();
    assert_eq!(
        refused,
        Cas::Conflict,
        "a stale holder overwrote a newer write"
    );
    let kept = on_new.get(&key).await.unwrap().unwrap();
    assert_eq!(kept.token.expose_secret(), "rat-fresh");
}

#[tokio::test]
async fn a_write_that_misses_its_replica_is_answered_flagged_and_counted() {
    let (master, mut replica) = master_and_replica().await;
    let dev = support::dev_upstream().await;
    let mut raw = settings("redis", master.url(), None);
    raw.admin_listen = Some("127.0.0.1:0".into());
    let gw = TestGateway::start_with(&dev.base_url(), raw).await;
    let mut client = gw.client().await;
    let ledger = Mutex::new(Ledger::default());
    register(&mut client, "replicated", &ledger).await;
    assert_eq!(
        ledger.lock().unwrap().kept().len(),
        1,
        "a replicated write is not flagged"
    );
    assert_eq!(
        gw.metric("dcr_token_store_replica_wait_short_total").await,
        0.0
    );
    replica.kill().await;
    let answer = client
        .register_client(deadline(pb::RegisterClientRequest {
            metadata: Some(machine_client("unreplicated")),
            initial_access_token: None,
        }))
        .await
        .expect("a write short of replicas still answers with its credential");
    assert_eq!(
        answer.metadata().get(DURABILITY_HEADER).unwrap(),
        MAY_NOT_SURVIVE_FAILOVER
    );
    assert!(
        answer
            .get_ref()
            .client
            .as_ref()
            .unwrap()
            .registration_access_token
            .is_some()
    );
    assert!(gw.metric("dcr_token_store_replica_wait_short_total").await >= 1.0);
}

#[tokio::test]
async fn readiness_follows_whether_the_store_answers_at_all() {
    let mut redis = RedisServer::start().await;
    let dev = support::dev_upstream().await;
    let gw = TestGateway::start_with(&dev.base_url(), settings("redis", redis.url(), None)).await;
    let ready = || support::managed::health(gw.addr, "dcr-gateway.credentials");
    let (serving, not_serving) = (1, 2);
    assert_eq!(ready().await, serving);
    redis.kill().await;
    eventually(Duration::from_secs(20), || async {
        (ready().await == not_serving).then_some(())
    })
    .await;
    // Not ready is not dead: the gateway's own service stays up (liveness).
    let own = support::managed::health(gw.addr, "dcr.v1.DynamicClientRegistration").await;
    assert_eq!(own, serving);
    redis.restart().await;
    eventually(Duration::from_secs(20), || async {
        (ready().await == serving).then_some(())
    })
    .await;
}
