//! Redis as production runs it, on loopback: a Cluster of masters with a
//! replica each, and a master with a replica under three sentinels. Every
//! process is a real redis-server; `kill` is SIGKILL.

use std::time::Duration;

use super::redis::{RedisServer, free_port, spawn_redis, wait_ready};
use super::{TempDir, eventually, temp_dir};

/// How soon a Cluster node or a sentinel calls a silent master failed.
const DOWN_AFTER_MS: &str = "1000";

/// A Redis Cluster: `masters` masters, each with one replica.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts the nodes, joins them (`redis-cli --cluster create`) and
    /// waits until every slot is served and every master has its replica.
    pub async fn start(masters: usize) -> Self {
        let mut nodes = Vec::new();
        for _ in 0..masters * 2 {
            let bus = free_port().to_string();
            nodes.push(
                RedisServer::start_with(vec![
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-port".into(),
                    bus,
                    "--cluster-node-timeout".into(),
                    DOWN_AFTER_MS.into(),
                    "--cluster-config-file".into(),
                    "nodes.conf".into(),
                ])
                .await,
            );
        }
        let mut create = tokio::process::Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let out = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .await
            .expect("redis-cli (installed with redis-server) runs");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Self { nodes };
        cluster.wait_healthy(masters).await;
        cluster
    }

    /// The seed URLs, comma-separated.
    pub fn urls(&self) -> String {
        let urls: Vec<String> = self.nodes.iter().map(RedisServer::url).collect();
        urls.join(",")
    }

    /// Waits until the live nodes agree the cluster is whole: every slot
    /// served, `masters` masters each with a replica connected.
    pub async fn wait_healthy(&self, masters: usize) {
        eventually(Duration::from_secs(60), || async {
            let mut with_replica = 0;
            for node in self.nodes.iter().filter(|n| n.is_running()) {
                let info: String = query(node, redis::cmd("CLUSTER").arg("INFO")).await?;
                if !info.contains("cluster_state:ok") {
                    return None;
                }
                if master_replicas(node).await? > 0 {
                    with_replica += 1;
                }
            }
            (with_replica == masters).then_some(())
        })
        .await;
    }

    /// The master holding the most keys, and how many it holds.
    pub async fn busiest_master(&self) -> (usize, u64) {
        let mut busiest = (usize::MAX, 0);
        for (i, node) in self.nodes.iter().enumerate() {
            let role: Vec<redis::Value> = query(node, &redis::cmd("ROLE")).await.unwrap();
            if !matches!(&role[0], redis::Value::BulkString(r) if r == b"master") {
                continue;
            }
            let keys: u64 = query(node, &redis::cmd("DBSIZE")).await.unwrap();
            if busiest.0 == usize::MAX || keys > busiest.1 {
                busiest = (i, keys);
            }
        }
        busiest
    }

    /// Waits until the cluster serves every slot again without node `dead`.
    pub async fn wait_failed_over(&self, dead: usize) {
        let dead_port = self.nodes[dead].port;
        eventually(Duration::from_secs(60), || async {
            for node in self.nodes.iter().filter(|n| n.is_running()) {
                let info: String = query(node, redis::cmd("CLUSTER").arg("INFO")).await?;
                let slots: Vec<redis::Value> =
                    query(node, redis::cmd("CLUSTER").arg("SLOTS")).await?;
                let served_by_dead = format!("{slots:?}").contains(&format!("int({dead_port})"));
                if !info.contains("cluster_state:ok") || served_by_dead {
                    return None;
                }
            }
            Some(())
        })
        .await;
    }
}

/// One master, one replica, three sentinels watching the master as `m`.
pub struct RedisSentinels {
    pub master: RedisServer,
    pub replica: RedisServer,
    sentinels: Vec<(u16, tokio::process::Child, TempDir)>,
}

/// The name the sentinels watch.
pub const SENTINEL_MASTER: &str = "m";

impl RedisSentinels {
    /// Starts the master, its replica (in sync before this returns) and
    /// the sentinels (each seeing the replica and the other sentinels).
    pub async fn start() -> Self {
        let (master, replica) = master_and_replica().await;
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let dir = temp_dir("sentinel");
            let conf = dir.join("sentinel.conf");
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                     sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {master} 2\n\
                     sentinel down-after-milliseconds {SENTINEL_MASTER} {DOWN_AFTER_MS}\n\
                     sentinel failover-timeout {SENTINEL_MASTER} 5000\n",
                    dir = dir.display(),
                    master = master.port,
                ),
            )
            .unwrap();
            let child = spawn_redis(&[conf.into_os_string(), "--sentinel".into()]);
            wait_ready(port).await;
            sentinels.push((port, child, dir));
        }
        let set = Self {
            master,
            replica,
            sentinels,
        };
        // Each sentinel knows the replica and its peers before a failover
        // can be agreed.
        eventually(Duration::from_secs(60), || async {
            for (port, _, _) in &set.sentinels {
                let url = format!("redis://127.0.0.1:{port}");
                let mut c = redis::Client::open(url)
                    .ok()?
                    .get_multiplexed_async_connection()
                    .await
                    .ok()?;
                let info: String = redis::cmd("INFO")
                    .arg("sentinel")
                    .query_async(&mut c)
                    .await
                    .ok()?;
                if !info.contains("slaves=1,sentinels=3") {
                    return None;
                }
            }
            Some(())
        })
        .await;
        set
    }

    /// The sentinels' URLs, comma-separated.
    pub fn urls(&self) -> String {
        let urls: Vec<String> = self
            .sentinels
            .iter()
            .map(|(port, _, _)| format!("redis://127.0.0.1:{port}"))
            .collect();
        urls.join(",")
    }

    /// Waits until the replica is the master, as the sentinels promoted it.
    pub async fn wait_promoted(&self) {
        eventually(Duration::from_secs(60), || async {
            let role: Vec<redis::Value> = query(&self.replica, &redis::cmd("ROLE")).await?;
            matches!(&role[0], redis::Value::BulkString(r) if r == b"master").then_some(())
        })
        .await;
    }
}

/// A master and a replica, in sync.
pub async fn master_and_replica() -> (RedisServer, RedisServer) {
    let master = RedisServer::start().await;
    let replica = RedisServer::start_with(vec![
        "--replicaof".into(),
        "127.0.0.1".into(),
        master.port.to_string(),
    ])
    .await;
    eventually(Duration::from_secs(30), || async {
        let info: String = query(&replica, redis::cmd("INFO").arg("replication")).await?;
        let linked = info.contains("master_link_status:up");
        (linked && master_replicas(&master).await? > 0).then_some(())
    })
    .await;
    (master, replica)
}

/// `cmd`'s answer from `node`, or `None` when it cannot be had now.
pub async fn query<T: redis::FromRedisValue>(node: &RedisServer, cmd: &redis::Cmd) -> Option<T> {
    let mut c = redis::Client::open(node.url())
        .ok()?
        .get_multiplexed_async_connection()
        .await
        .ok()?;
    cmd.query_async(&mut c).await.ok()
}

/// How many replicas `node` has connected, when it is a master.
async fn master_replicas(node: &RedisServer) -> Option<usize> {
    let role: Vec<redis::Value> = query(node, &redis::cmd("ROLE")).await?;
    match (&role[0], role.get(2)) {
        (redis::Value::BulkString(r), Some(redis::Value::Array(replicas))) if r == b"master" => {
            Some(replicas.len())
        }
        _ => Some(0),
    }
}
