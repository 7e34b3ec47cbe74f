//! Replicas sharing one Redis serialise management calls on a client through a
//! lease with a fencing number, so interleaved rotations cannot strand its
//! token, and a holder whose lease expired cannot overwrite the next one's.

mod support;

use std::time::Duration;

use dcr_dev_upstream::{Fault, FaultKind, Route};
use dcr_gateway::pb::v1 as pb;
use dcr_gateway::store::{
    Cas, LeaseKey, Leases, RedisPrefix, RedisStore, RedisTopology, ReplicaWait, TokenKey, Tokens,
};
use secrecy::SecretString;
use support::redis::RedisServer;
use support::{TestGateway, eventually, get_req, register};
use tonic_types::StatusExt;

#[tokio::test]
async fn interleaved_rotations_on_two_replicas_leave_a_working_token() {
    let redis = RedisServer::start().await;
    let dev = support::dev_upstream().await;
    let replica_a = TestGateway::start_with(
        &dev.base_url(),
        support::redis::store_config(&redis.url(), "replicas"),
    )
    .await;
    let replica_b = TestGateway::start_with(
        &dev.base_url(),
        support::redis::store_config(&redis.url(), "replicas"),
    )
    .await;
    let mut a = replica_a.client().await;
    let b = replica_b.client().await;
    let id = register(&mut a, "shared").await.client_id;
    // Slow rotations, so the replicas' calls overlap at the server.
    dev.inject(Fault {
        route: Route::RotateToken,
        times: None,
        kind: FaultKind::Delay { ms: 50 },
    });
    dev.reset_peak();
    let rotations: Vec<_> = (0..40)
        .map(|i| {
            let mut client = if i % 2 == 0 { a.clone() } else { b.clone() };
            let id = id.clone();
            tokio::spawn(async move {
                client
                    .rotate_registration_token(pb::RotateRegistrationTokenRequest {
                        client_id: id,
                        registration_access_token: None,
                    })
                    .await
            })
        })
        .collect();
    // Across replicas the lease lets one rotation of the client through at a time.
    let most_at_once = support::most_at_once(&dev, &rotations).await;
    let mut succeeded = 0;
    for rotation in rotations {
        match rotation.await.unwrap() {
            Ok(_) => succeeded += 1,
            Err(status) => {
                let info = status.get_details_error_info();
                assert!(
                    info.is_some_and(|i| !i.reason.is_empty()) && !status.message().is_empty(),
                    "a rotation failed without a clear error: {status:?}"
                );
            }
        }
    }
    assert!(succeeded > 0, "no rotation succeeded");
    assert_eq!(
        most_at_once, 1,
        "{most_at_once} rotations of one client were at the server at once"
    );
    for client in [a.clone(), b.clone()] {
        client
            .clone()
            .get_client(get_req(&id, None))
            .await
            .expect("the stored token still manages the client from both replicas");
    }
}

#[tokio::test]
async fn a_holder_whose_lease_expired_cannot_overwrite_the_next_holder() {
    let redis = RedisServer::start().await;
    let prefix = RedisPrefix::parse("fence").unwrap();
    let url = SecretString::from(redis.url());
    let store = RedisStore::connect(
        &url,
        &RedisTopology::Node,
        &ReplicaWait::default(),
        prefix,
        None,
    )
    .await
    .unwrap();
    let key = TokenKey {
        upstream: "http://127.0.0.1:9".into(),
        namespace: "default".into(),
        client_id: "c1".into(),
    };
    let lease = LeaseKey::Client(key.clone());
    let short = Duration::from_millis(200);
    let first = store
        .take_lease(&lease, short)
        .await
        .unwrap()
        .expect("a free lease");
    assert_eq!(
        store.take_lease(&lease, short).await.unwrap(),
        None,
        "a held lease was granted twice"
    );
    // The first holder stalls past its TTL; the next one takes over.
    let second = eventually(Duration::from_secs(10), || async {
        store
            .take_lease(&lease, Duration::from_secs(30))
            .await
            .unwrap()
    })
    .await;
    assert!(second > first, "fences only grow: {first} then {second}");
    let stale = SecretString::from("rat-stale-0123456789");
    let fresh = SecretString::from("rat-fresh-0123456789");
    let refused = store
        .compare_and_set_fenced(&key, None, &stale, "", first)
        .await
        .unwrap();
    assert_eq!(refused, Cas::Conflict, "the expired holder wrote");
    assert!(!store.renew_lease(&lease, first, short).await.unwrap());
    let stored = store
        .compare_and_set_fenced(&key, None, &fresh, "", second)
        .await
        .unwrap();
    assert!(matches!(stored, Cas::Stored(_)));
    store.release_lease(&lease, second).await.unwrap();
    assert!(
        store.take_lease(&lease, short).await.unwrap().is_some(),
        "a released lease stayed held"
    );
    // Token entries and leases live apart: the store still lists one entry.
    assert_eq!(store.list(None).await.unwrap().len(), 1);
}
