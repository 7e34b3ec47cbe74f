//! The token request's credentials, against a scripted stack: a refusal of
//! the client's credentials is asked again once, only with newer ones.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use tower::util::BoxCloneSyncService;

use super::ask::TokenAsk;
use crate::dcr::{
    AccessToken, Capabilities, Client, ClientAuth, DcrCall, DcrError, DcrRequest, DcrResponse,
    LossProof, SecretRotation, SentExchanges, UpstreamFailure,
};
use crate::managed::record::{ManagedRecord, Outcome};
use crate::managed::{Managed, ManagedConfig, ManagedLimits};
use crate::store::{ManagedKey, MemoryStore, Store};
use crate::telemetry::Metrics;

const UPSTREAM: &str = "http://127.0.0.1:9";

fn record(secret: &str) -> ManagedRecord {
    ManagedRecord {
        client: Client {
            client_id: "c1".into(),
            client_secret: Some(secret.into()),
            ..Default::default()
        },
        desired: Default::default(),
        created_at: 1,
        secret_issued_at: 1,
        ensured_at: 1,
        outcome: Outcome::Created,
        last_error: None,
        replaced: Vec::new(),
        declared: false,
        retired_at: None,
        applied: None,
        deleted_at: None,
        keys: Vec::new(),
    }
}

fn key() -> ManagedKey {
    ManagedKey {
        upstream: UPSTREAM.into(),
        namespace: "default".into(),
        name: "svc".into(),
    }
}

fn rejected() -> DcrError {
    DcrError::Upstream(UpstreamFailure {
        error: Some("invalid_client".into()),
        client_rejected: true,
        ..UpstreamFailure::with_status(401)
    })
}

/// What the scripted stack answers a token request carrying a secret.
type Answer =
    Arc<dyn Fn(String, Store) -> BoxFuture<'static, Result<DcrResponse, DcrError>> + Send + Sync>;

/// A gateway's managed clients over `answer`, which sees each token
/// request's secret and the store.
fn managed(store: Store, answer: Answer) -> Managed {
    let for_stack = store.clone();
    let stack = BoxCloneSyncService::new(tower::service_fn(move |req: DcrRequest| {
        let (answer, store) = (answer.clone(), for_stack.clone());
        async move {
            let DcrCall::Token(token) = &req.call else {
                return Err(DcrError::Internal("only token requests here"));
            };
            let secret = match &token.auth {
                ClientAuth::SecretBasic(s) | ClientAuth::SecretPost(s) => s.expose_secret(),
                ClientAuth::PrivateKeyJwt(_) => "(a key)",
            };
            answer(secret.to_owned(), store).await
        }
    }));
    Managed::new(
        stack,
        store,
        ManagedConfig {
            upstream: UPSTREAM.into(),
            server: Capabilities {
                secret_rotation: SecretRotation::Call,
                reads_may_rotate: false,
                secret_grace: None,
                loss_proof: LossProof::GoneStatus,
                keeps_jwks: true,
            },
            initial_access_token: None,
            lease_ttl: Duration::from_secs(60),
            exchanges: SentExchanges::new(8),
            policies: Default::default(),
            limits: ManagedLimits {
                names_per_namespace: 10,
                watches_per_namespace: 10,
            },
            metrics: Metrics::local(),
            retired_grace: Duration::from_secs(60),
        },
    )
}

fn token(value: &str) -> Result<DcrResponse, DcrError> {
    Ok(DcrResponse::AccessToken(AccessToken {
        token: SecretString::from(value),
        token_type: "Bearer".into(),
        expires_in: Some(Duration::from_secs(600)),
        scope: None,
    }))
}

#[tokio::test]
async fn a_refused_secret_is_asked_again_once_with_the_newer_one_stored() {
    let store = Store::from(MemoryStore::new(100));
    let tried = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = tried.clone();
    // Another replica rotates the secret between this one's read and the
    // server's answer: the first request carries the old secret.
    let m = managed(
        store,
        Arc::new(move |secret, store| {
            seen.lock().unwrap().push(secret.clone());
            Box::pin(async move {
                if secret == "new" {
                    return token("t-new");
                }
                let json = record("new").to_json();
                store
                    .records
                    .put_record(&key(), Some(1), &json, "c1")
                    .await
                    .unwrap();
                Err(rejected())
            })
        }),
    );
    m.save(&key(), None, &record("old")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let issued = m
        .access_token("default", "svc", TokenAsk::default(), deadline)
        .await
        .unwrap();
    assert_eq!(issued.token.expose_secret(), "t-new");
    assert_eq!(*tried.lock().unwrap(), ["old", "new"]);
}

#[tokio::test]
async fn a_refused_secret_is_not_asked_again_when_nothing_newer_is_stored() {
    let store = Store::from(MemoryStore::new(100));
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    let m = managed(
        store,
        Arc::new(move |_, _| {
            count.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Err(rejected()) })
        }),
    );
    m.save(&key(), None, &record("only")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let err = m
        .access_token("default", "svc", TokenAsk::default(), deadline)
        .await
        .unwrap_err();
    assert!(err.class().client_rejected, "{err}");
    assert_eq!(asked.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn asks_that_fail_hold_nothing() {
    let store = Store::from(MemoryStore::new(100));
    let m = managed(store, Arc::new(|_, _| Box::pin(async { Err(rejected()) })));
    m.save(&key(), None, &record("only")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    for name in ["svc", "nobody-ensured-this"] {
        m.access_token("default", name, TokenAsk::default(), deadline)
            .await
            .unwrap_err();
    }
    // A caller asking for names that fail must not fill the cache's bound.
    let shown = m.inner.tokens.by_name();
    let names: Vec<_> = shown.keys().map(|(_, name)| name.as_str()).collect();
    assert_eq!(names, ["svc"], "only the ensured name has state to show");
    let svc = &shown[&("default".to_owned(), "svc".to_owned())];
    assert_eq!(svc.held, 0);
    assert!(svc.last_error.is_some());
}
