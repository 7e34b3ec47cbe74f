//! Managed client records in the memory and file backends (Redis in
//! `tests/managed_clients.rs`): compare-and-set on generations, a space of
//! their own beside the tokens, and sealed at rest.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::{Cas, FileStore, Keyring, ManagedKey, MemoryStore, TokenKey, TokenStore};

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

async fn records_follow_generations(store: &dyn TokenStore) {
    let k = key("billing-api");
    assert!(store.get_record(&k).await.unwrap().is_none());
    assert_eq!(
        store
            .put_record(&k, None, &json(r#"{"v":1}"#))
            .await
            .unwrap(),
        Cas::Stored(1)
    );
    assert_eq!(
        store
            .put_record(&k, None, &json(r#"{"v":2}"#))
            .await
            .unwrap(),
        Cas::Conflict,
        "a second create is a conflict"
    );
    assert_eq!(
        store
            .put_record(&k, Some(1), &json(r#"{"v":2}"#))
            .await
            .unwrap(),
        Cas::Stored(2)
    );
    let got = store.get_record(&k).await.unwrap().unwrap();
    assert_eq!(
        (got.json.expose_secret(), got.generation),
        (r#"{"v":2}"#, 2)
    );
    assert_eq!(
        store.put_record(&k, Some(1), &json("stale")).await.unwrap(),
        Cas::Conflict
    );

    // Records and tokens are separate spaces, even under the same text.
    let token_key = TokenKey {
        upstream: k.upstream.clone(),
        namespace: k.namespace.clone(),
        client_id: k.name.clone(),
    };
    assert!(store.get(&token_key).await.unwrap().is_none());
    assert!(store.list(None).await.unwrap().is_empty());
    let all = store.list_records().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, k);

    assert!(!store.delete_record(&k, 1).await.unwrap(), "stale delete");
    assert!(store.delete_record(&k, 2).await.unwrap());
    assert!(store.get_record(&k).await.unwrap().is_none());
}

#[tokio::test]
async fn memory_records_follow_generations() {
    records_follow_generations(&MemoryStore::default()).await;
}

#[tokio::test]
async fn file_records_follow_generations_and_are_sealed_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let ring = Keyring::parse(&SecretString::from(
        "k1=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
    ))
    .unwrap();
    let store = FileStore::open(&path, Some(Arc::new(ring))).unwrap();
    records_follow_generations(&store).await;

    let secret = "secret-1234567890-abcdefghij";
    let k = key("sealed");
    store
        .put_record(
            &k,
            None,
            &json(&format!(r#"{{"client_secret":"{secret}"}}"#)),
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
