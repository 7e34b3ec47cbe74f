//! The tokens layer: supply, learn, compare-and-set, forget only on proof.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use tower::{Layer, ServiceExt};

use super::{client, get, http, scripted, sent_rat};
use crate::dcr::{ClientMetadata, DcrCall, DcrError, DcrRequest, DcrResponse};
use crate::middleware::tokens::TokensLayer;
use crate::store::{MemoryStore, TokenKey, Tokens};
use crate::telemetry::Metrics;

const UPSTREAM: &str = "http://127.0.0.1:9";

fn key(id: &str) -> TokenKey {
    TokenKey {
        upstream: UPSTREAM.into(),
        namespace: "default".into(),
        client_id: id.into(),
    }
}

fn store() -> Arc<dyn Tokens> {
    Arc::new(MemoryStore::new(100))
}

async fn stored(store: &dyn Tokens, id: &str) -> Option<String> {
    let entry = store.get(&key(id)).await.unwrap();
    entry.map(|t| t.token.expose_secret().to_owned())
}

async fn put(store: &dyn Tokens, id: &str, rat: &str) {
    let expected = store.get(&key(id)).await.unwrap().map(|t| t.generation);
    store
        .compare_and_set(&key(id), expected, &SecretString::from(rat), "")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_registration_is_learned_and_supplied_to_the_next_call() {
    let store = store();
    let (inner, seen) = scripted(vec![|| Ok(client("c1", Some("rat-1"))), || {
        Ok(client("c1", None))
    }]);
    let layer = TokensLayer::new(store.clone(), UPSTREAM, Metrics::local());
    let register = DcrRequest::new(DcrCall::Register {
        metadata: ClientMetadata::default(),
        initial_access_token: None,
    });
    layer.layer(inner.clone()).oneshot(register).await.unwrap();
    assert_eq!(stored(store.as_ref(), "c1").await.as_deref(), Some("rat-1"));
    layer.layer(inner).oneshot(get("c1", None)).await.unwrap();
    assert_eq!(sent_rat(&seen.lock().unwrap()[1]).as_deref(), Some("rat-1"));
    // An answer without a RAT never overwrites the stored one.
    assert_eq!(stored(store.as_ref(), "c1").await.as_deref(), Some("rat-1"));
}

#[tokio::test]
async fn no_stored_token_and_none_passed_sends_nothing() {
    let (inner, seen) = scripted(vec![|| Ok(client("c1", None))]);
    let layer = TokensLayer::new(store(), UPSTREAM, Metrics::local());
    let err = layer
        .layer(inner)
        .oneshot(get("c1", None))
        .await
        .unwrap_err();
    assert!(matches!(err, DcrError::MissingToken { .. }), "{err}");
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_token_changed_during_the_call_is_kept() {
    let store = store();
    put(store.as_ref(), "c1", "rat-old").await;
    // The inner call stands for a slow upstream during which another writer
    // (a second replica) stores a newer token.
    let during = store.clone();
    let inner = tower::service_fn(move |_req: DcrRequest| {
        let during = during.clone();
        async move {
            put(during.as_ref(), "c1", "rat-newer").await;
            Ok::<_, DcrError>(client("c1", Some("rat-from-answer")))
        }
    });
    let layer = TokensLayer::new(store.clone(), UPSTREAM, Metrics::local());
    let answer = layer.layer(inner).oneshot(get("c1", None)).await.unwrap();
    let DcrResponse::Client(c) = answer else {
        panic!("a client")
    };
    assert_eq!(
        c.registration_access_token.unwrap().expose_secret(),
        "rat-from-answer"
    );
    assert_eq!(
        stored(store.as_ref(), "c1").await.as_deref(),
        Some("rat-newer")
    );
}

#[tokio::test]
async fn only_a_proven_rejection_forgets_and_never_a_newer_token() {
    let store = store();
    put(store.as_ref(), "c1", "rat-1").await;
    let layer = TokensLayer::new(store.clone(), UPSTREAM, Metrics::local());
    // Unproven: an HTML 401 keeps the token.
    let (inner, _) = scripted(vec![|| Err(http(401, false))]);
    layer
        .layer(inner)
        .oneshot(get("c1", None))
        .await
        .unwrap_err();
    assert_eq!(stored(store.as_ref(), "c1").await.as_deref(), Some("rat-1"));
    // A stale rejection: the call used rat-1, but rat-2 was stored meanwhile.
    let during = store.clone();
    let inner = tower::service_fn(move |_req: DcrRequest| {
        let during = during.clone();
        async move {
            put(during.as_ref(), "c1", "rat-2").await;
            Err::<DcrResponse, _>(http(401, true))
        }
    });
    layer
        .layer(inner)
        .oneshot(get("c1", None))
        .await
        .unwrap_err();
    assert_eq!(stored(store.as_ref(), "c1").await.as_deref(), Some("rat-2"));
    // A proven rejection of the stored token forgets it.
    let (inner, _) = scripted(vec![|| Err(http(401, true))]);
    layer
        .layer(inner)
        .oneshot(get("c1", None))
        .await
        .unwrap_err();
    assert_eq!(stored(store.as_ref(), "c1").await, None);
}

#[tokio::test]
async fn a_delete_forgets() {
    let store = store();
    put(store.as_ref(), "c1", "rat-1").await;
    let (inner, _) = scripted(vec![|| Ok(DcrResponse::Deleted)]);
    let layer = TokensLayer::new(store.clone(), UPSTREAM, Metrics::local());
    let delete = DcrRequest::new(DcrCall::Delete(super::target("c1", None)));
    layer.layer(inner).oneshot(delete).await.unwrap();
    assert_eq!(stored(store.as_ref(), "c1").await, None);
}
