//! The tokens layer: supplies the stored registration access token (RAT) when a
//! caller leaves it out, and keeps the store in step with every answer.
//!
//! Rules (see the operation table in DESIGN.md):
//! - a RAT the caller passes is always used as given;
//! - any answer carrying a non-empty RAT stores it (register, RAT rotation, and
//!   servers that rotate on read or update), durably before the answer goes
//!   back; an empty one never overwrites;
//! - a successful delete forgets the token;
//! - a RAT is forgotten only on proof that the server rejected it (the
//!   profile's rule, `upstream::profile`: an `invalid_token` answer, not any
//!   401), and only if the store still holds that same token at the generation
//!   this call read, so a stale call cannot erase a newer token; any other
//!   failure leaves the entry as it was.
//!
//! Entries are keyed by upstream, caller namespace and client id. Store failures
//! never fail a call whose answer carries a token (the caller has it in hand);
//! they are logged.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use secrecy::{ExposeSecret, SecretString};
use tower::{Layer, Service};

use super::{DcrFuture, DomainService};
use crate::dcr::{DcrError, DcrRequest, DcrResponse};
use crate::store::{self, Cas, StoredToken, TokenKey};
use crate::telemetry::Metrics;

/// Adds [`Tokens`] around a service.
#[derive(Clone)]
pub struct TokensLayer {
    store: Arc<dyn store::Tokens>,
    upstream: Arc<str>,
    metrics: Arc<Metrics>,
}

impl TokensLayer {
    /// A layer backed by `store`, for the server identified by `upstream` (its
    /// base URL).
    pub fn new(store: Arc<dyn store::Tokens>, upstream: &str, metrics: Arc<Metrics>) -> Self {
        Self {
            store,
            upstream: upstream.trim_end_matches('/').into(),
            metrics,
        }
    }
}

impl<S> Layer<S> for TokensLayer {
    type Service = Tokens<S>;

    fn layer(&self, inner: S) -> Tokens<S> {
        Tokens {
            inner,
            store: self.store.clone(),
            upstream: self.upstream.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// The tokens middleware; see the module documentation.
#[derive(Clone)]
pub struct Tokens<S> {
    inner: S,
    store: Arc<dyn store::Tokens>,
    upstream: Arc<str>,
    metrics: Arc<Metrics>,
}

impl<S: DomainService> Service<DcrRequest> for Tokens<S> {
    type Response = DcrResponse;
    type Error = DcrError;
    type Future = DcrFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), DcrError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: DcrRequest) -> DcrFuture {
        // Take the service that was driven to readiness, leave a fresh clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let store = self.store.clone();
        let upstream = self.upstream.clone();
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let namespace = req.namespace.clone();
            let key_for = |client_id: &str| TokenKey {
                upstream: upstream.to_string(),
                namespace: namespace.clone(),
                client_id: client_id.to_owned(),
            };
            let key = req.target().map(|t| key_for(&t.client_id));
            let mut seen: Option<StoredToken> = None;
            let mut used: Option<SecretString> = None;
            if let (Some(key), Some(target)) = (&key, req.call.target_mut()) {
                let lookup = store.get(key).await;
                let result = match &lookup {
                    Ok(Some(_)) => "hit",
                    Ok(None) => "miss",
                    Err(_) => "error",
                };
                metrics.store_lookup(result);
                tracing::debug!(event = "token_store_lookup", result, "token store read");
                seen = lookup.map_err(DcrError::Store)?;
                if target.registration_access_token.is_none() {
                    let stored = seen.as_ref().ok_or_else(|| DcrError::MissingToken {
                        client_id: key.client_id.clone(),
                    })?;
                    target.registration_access_token = Some(stored.token.clone());
                }
                if let Some(uri) = seen
                    .as_ref()
                    .map(|s| &s.registration_client_uri)
                    .filter(|u| !u.is_empty())
                {
                    target.registration_client_uri = Some(uri.clone());
                }
                used = target.registration_access_token.clone();
            }
            let fence = req.fence;
            let result = inner.call(req).await;
            let key = match (key, &result) {
                (Some(k), _) => Some(k),
                (None, Ok(DcrResponse::Client(c))) => Some(key_for(&c.client_id)),
                (None, _) => None,
            };
            if let Some(key) = key {
                learn(store.as_ref(), &metrics, &key, fence, seen, used, &result).await;
            }
            result
        })
    }
}

/// Updates the store from one outcome. `seen` is the entry read before the
/// call, `used` the token the call carried.
async fn learn(
    store: &dyn store::Tokens,
    metrics: &Metrics,
    key: &TokenKey,
    fence: Option<u64>,
    seen: Option<StoredToken>,
    used: Option<SecretString>,
    result: &Result<DcrResponse, DcrError>,
) {
    let outcome = match result {
        Ok(DcrResponse::Client(client)) => {
            let Some(token) = &client.registration_access_token else {
                return;
            };
            // A management answer is filed under the id the caller asked about, so
            // a server cannot plant a token under another client's id.
            let expected = seen.as_ref().map(|s| s.generation);
            let start = Instant::now();
            let uri = &client.registration_client_uri;
            let written = match fence {
                Some(fence) => {
                    store
                        .compare_and_set_fenced(key, expected, token, uri, fence)
                        .await
                }
                None => store.compare_and_set(key, expected, token, uri).await,
            };
            let result = match &written {
                Ok(Cas::Stored(_)) => "ok",
                Ok(Cas::Conflict) => "conflict",
                Err(_) => "error",
            };
            metrics.store_write(result, start.elapsed());
            tracing::info!(
                event = "token_store_write",
                result,
                "stored the registration access token from the answer"
            );
            match written {
                Ok(Cas::Stored(_)) => Ok(()),
                Ok(Cas::Conflict) => {
                    tracing::warn!(
                        client_id = %key.client_id,
                        "token store entry changed during the call (another replica?); kept the newer entry, \
                         the caller has this call's token in its reply"
                    );
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        Ok(DcrResponse::Deleted) => store.delete(key).await.map(drop),
        // An access token is no registration access token: nothing to keep.
        Ok(DcrResponse::AccessToken(_)) => return,
        Err(e) if e.class().token_rejected => match (seen, used) {
            (Some(seen), Some(used)) if seen.token.expose_secret() == used.expose_secret() => store
                .compare_and_delete(key, seen.generation)
                .await
                .map(drop),
            _ => return,
        },
        Err(_) => return,
    };
    if let Err(e) = outcome {
        tracing::error!(client_id = ?key.client_id, error = %e, "token store update failed; the caller still has any token in its reply");
    }
}
