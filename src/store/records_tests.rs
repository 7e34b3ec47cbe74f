//! Managed client records in the memory and file backends (Redis in
//! `tests/managed_clients.rs`): compare-and-set on generations, a space of
//! their own beside the tokens, and sealed at rest.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::{Cas, FileStore, Keyring, ManagedKey, MemoryStore, Records, Store, TokenKey};

fn key(name: &str) -> ManagedKey {
    ManagedKey {
        upstream: "https://as.example".into(),
        namespace: "default".into(),
        name: name.into(),
    }
}

fn json(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

async fn records_follow_generations(store: &Store) {
    let k = key("billing-api");
    assert!(store.records.get_record(&k).await.unwrap().is_none());
    assert_eq!(
        store
            .records
            .put_record(&k, None, &json(r#"{"v":1}"#), "c1")
            .await
            .unwrap(),
        Cas::Stored(1)
    );
    assert_eq!(
        store
            .records
            .put_record(&k, None, &json(r#"{"v":2}"#), "c1")
            .await
            .unwrap(),
        Cas::Conflict,
        "a second create is a conflict"
    );
    assert_eq!(
        store
            .records
            .put_record(&k, Some(1), &json(r#"{"v":2}"#), "c1")
            .await
            .unwrap(),
        Cas::Stored(2)
    );
    let got = store.records.get_record(&k).await.unwrap().unwrap();
    assert_eq!(
        (got.json.expose_secret(), got.generation),
        (r#"{"v":2}"#, 2)
    );
    assert_eq!(
        store
            .records
            .put_record(&k, Some(1), &json("stale"), "c1")
            .await
            .unwrap(),
        Cas::Conflict
    );

    // Records and tokens are separate spaces, even under the same text.
    let token_key = TokenKey {
        upstream: k.upstream.clone(),
        namespace: k.namespace.clone(),
        client_id: k.name.clone(),
    };
    assert!(store.tokens.get(&token_key).await.unwrap().is_none());
    assert!(store.tokens.list(None).await.unwrap().is_empty());
    let all = store.records.list_records().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, k);

    assert_eq!(all[0].1.client_id.as_deref(), Some("c1"));

    assert!(
        !store.records.delete_record(&k, 1).await.unwrap(),
        "stale delete"
    );
    assert!(store.records.delete_record(&k, 2).await.unwrap());
    assert!(store.records.get_record(&k).await.unwrap().is_none());
}

/// The index of records by client: found by one lookup, moved when a
/// record's client changes, gone with the record, and kept per namespace.
pub(super) async fn records_are_found_by_client(store: &dyn Records) {
    let (up, ns) = ("https://as.example", "default");
    let names = |client: &'static str| async move {
        let mut n = store.records_of_client(up, ns, client).await.unwrap();
        n.sort();
        n
    };
    store
        .put_record(&key("a"), None, &json("{}"), "c1")
        .await
        .unwrap();
    store
        .put_record(&key("b"), None, &json("{}"), "c1")
        .await
        .unwrap();
    store
        .put_record(&key("c"), None, &json("{}"), "c2")
        .await
        .unwrap();
    let other_namespace = ManagedKey {
        namespace: "other".into(),
        ..key("d")
    };
    store
        .put_record(&other_namespace, None, &json("{}"), "c1")
        .await
        .unwrap();
    assert_eq!(names("c1").await, ["a", "b"]);
    assert_eq!(names("c2").await, ["c"]);
    assert!(names("c3").await.is_empty());

    // A record given a new client moves in the index.
    store
        .put_record(&key("b"), Some(1), &json("{}"), "c3")
        .await
        .unwrap();
    assert_eq!(names("c1").await, ["a"]);
    assert_eq!(names("c3").await, ["b"]);
    // A conflicting write moves nothing.
    store
        .put_record(&key("a"), Some(7), &json("{}"), "c3")
        .await
        .unwrap();
    assert_eq!(names("c1").await, ["a"]);
    // A deleted record leaves the index.
    assert!(store.delete_record(&key("a"), 1).await.unwrap());
    assert!(names("c1").await.is_empty());

    assert_eq!(store.record_names(up, ns).await.unwrap(), ["b", "c"]);
    assert_eq!(store.record_names(up, "other").await.unwrap(), ["d"]);
    assert!(store.record_names(up, "defaul").await.unwrap().is_empty());
}

#[tokio::test]
async fn memory_records_follow_generations() {
    records_follow_generations(&MemoryStore::default().into()).await;
    records_are_found_by_client(&MemoryStore::default()).await;
}

#[tokio::test]
async fn file_records_are_found_by_client() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(&dir.path().join("t.redb"), None).unwrap();
    records_are_found_by_client(&store).await;
}

#[tokio::test]
async fn file_records_follow_generations_and_are_sealed_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let ring = Keyring::parse(&SecretString::from(
        "k1=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
    ))
    .unwrap();
    let store: Store = FileStore::open(&path, Some(Arc::new(ring))).unwrap().into();
    records_follow_generations(&store).await;
    let records = store.records.clone();
    drop(store);
    let store = records;

    let secret = "secret-1234567890-abcdefghij";
    let k = key("sealed");
    store
        .put_record(
            &k,
            None,
            &json(&format!(r#"{{"client_secret":"{secret}"}}"#)),
            "c9",
        )
        .await
        .unwrap();
    drop(store);
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the record's secret is in the file in the clear"
    );
    let reopened = FileStore::open(&path, None).unwrap();
    assert!(
        reopened.get_record(&k).await.is_err(),
        "a sealed record opened without the keyring"
    );
}

#[test]
fn a_backend_failure_keeps_the_library_s_error_as_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    // A store "inside" a regular file cannot be created.
    let err = FileStore::open(&file.join("t.redb"), None)
        .err()
        .expect("an error");
    let cause = std::error::Error::source(&err).expect("a cause");
    assert!(
        cause.source().is_some_and(|e| e.is::<std::io::Error>()),
        "{err}"
    );
}
