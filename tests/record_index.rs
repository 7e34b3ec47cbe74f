//! The index of managed client records by client, in the Redis store (the
//! memory and file stores are checked by their unit tests): one lookup finds
//! the names of a client, moves with a record's client, leaves with the
//! record, and keeps namespaces (glob characters included) apart. Records
//! written before the index are indexed at start, so a caller's rotation
//! still reaches them.

mod support;

use std::time::Duration;

use dcr_gateway::store::{
    Cas, ManagedKey, Records, RedisPrefix, RedisStore, RedisTopology, ReplicaWait,
};
use secrecy::SecretString;
use support::managed::{ensure, follow};
use support::redis::RedisServer;
use support::{TestGateway, eventually};

fn key(namespace: &str, name: &str) -> ManagedKey {
    ManagedKey {
        upstream: "https://as.example".into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

#[tokio::test]
async fn the_redis_store_finds_the_records_of_a_client_by_its_index() {
    let redis = RedisServer::start().await;
    let url = SecretString::from(redis.url());
    let store = RedisStore::connect(
        &url,
        &RedisTopology::Node,
        &ReplicaWait::default(),
        RedisPrefix::parse("idx").unwrap(),
        None,
    )
    .await
    .unwrap();
    let json = SecretString::from("{}".to_owned());
    let (up, ns) = ("https://as.example", "team*[a]");
    let put = |k: ManagedKey, expected, client: &'static str| {
        let (store, json) = (&store, &json);
        async move { store.put_record(&k, expected, json, client).await.unwrap() }
    };
    assert_eq!(put(key(ns, "a"), None, "c1").await, Cas::Stored(1));
    put(key(ns, "b"), None, "c1").await;
    put(key(ns, "c"), None, "c2").await;
    put(key("team", "d"), None, "c1").await;
    let names = |client: &'static str| {
        let store = &store;
        async move {
            let mut n = store.records_of_client(up, ns, client).await.unwrap();
            n.sort();
            n
        }
    };
    assert_eq!(names("c1").await, ["a", "b"]);
    assert_eq!(names("c2").await, ["c"]);
    put(key(ns, "b"), Some(1), "c3").await;
    assert_eq!(names("c1").await, ["a"]);
    assert_eq!(names("c3").await, ["b"]);
    assert_eq!(put(key(ns, "a"), Some(9), "c3").await, Cas::Conflict);
    assert_eq!(names("c1").await, ["a"], "a conflict moved the index");
    assert!(store.delete_record(&key(ns, "a"), 1).await.unwrap());
    assert!(names("c1").await.is_empty());
    // The namespace's glob characters match themselves only.
    assert_eq!(store.record_names(up, ns).await.unwrap(), ["b", "c"]);
    assert_eq!(store.record_names(up, "team").await.unwrap(), ["d"]);
    let listed = store.list_records().await.unwrap();
    assert!(listed.iter().all(|(_, r)| r.client_id.is_some()));
}

#[tokio::test]
async fn records_written_before_the_index_are_indexed_at_start() {
    let redis = RedisServer::start().await;
    let dev = support::dev_upstream().await;
    let config = || support::redis::store_config(&redis.url(), "legacy");
    let gw = TestGateway::start_with(&dev.base_url(), config()).await;
    let mut c = gw.client().await;
    let id = ensure(&mut c, "old", "old").await.client.unwrap().client_id;
    drop(gw);
    // As a gateway before the index wrote it: no client id beside the
    // record, no index set.
    let mut raw = redis.connection().await;
    for rkey in redis.keys("legacy~client:*").await {
        let _: () = redis::cmd("HDEL")
            .arg(&rkey)
            .arg("cid")
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    for set in redis.keys("legacy~cidx:*").await {
        let _: () = redis::cmd("DEL")
            .arg(&set)
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    let gw = TestGateway::start_with(&dev.base_url(), config()).await;
    let mut c = gw.client().await;
    let rotated = support::rotate_secret(&mut c, &id).await.client_secret;
    let current = eventually(Duration::from_secs(5), || {
        let mut c = c.clone();
        let rotated = rotated.clone();
        async move {
            let m = follow(&mut c, "old").await.message().await.ok()??;
            let secret = m.client?.client_secret;
            (secret == rotated).then_some(secret)
        }
    })
    .await;
    assert!(current.is_some());
}
