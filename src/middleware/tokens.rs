//! The tokens layer: supplies the stored registration access token (RAT) when a
//! caller leaves it out, and keeps the store in step with every answer.
//!
//! Rules (see the operation table in DESIGN.md):
//! - a RAT the caller passes is always used as given;
//! - any answer carrying a non-empty RAT stores it (register, RAT rotation, and
//!   servers that rotate on read or update); an empty one never overwrites;
//! - a successful delete forgets the token;
//! - a rejected RAT (401 / `invalid_token`) is forgotten only if the store still
//!   holds that same token, so a stale caller cannot erase a newer one.

use std::sync::Arc;
use std::task::{Context, Poll};

use secrecy::SecretString;
use tower::{Layer, Service};

use super::DcrFuture;
use crate::dcr::{DcrError, DcrRequest, DcrResponse};
use crate::store::{StoredToken, TokenKey, TokenStore};

/// Adds [`Tokens`] around a service.
#[derive(Clone)]
pub struct TokensLayer {
    store: Arc<dyn TokenStore>,
}

impl TokensLayer {
    /// A layer backed by `store`.
    pub fn new(store: Arc<dyn TokenStore>) -> Self {
        Self { store }
    }
}

impl<S> Layer<S> for TokensLayer {
    type Service = Tokens<S>;

    fn layer(&self, inner: S) -> Tokens<S> {
        Tokens {
            inner,
            store: self.store.clone(),
        }
    }
}

/// The tokens middleware; see the module documentation.
#[derive(Clone)]
pub struct Tokens<S> {
    inner: S,
    store: Arc<dyn TokenStore>,
}

impl<S> Service<DcrRequest> for Tokens<S>
where
    S: Service<DcrRequest, Response = DcrResponse, Error = DcrError> + Clone + Send + 'static,
    S::Future: Send,
{
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
        Box::pin(async move {
            let key = req.target().map(|t| TokenKey {
                client_id: t.client_id.clone(),
            });
            let mut used: Option<SecretString> = None;
            if let (Some(target), Some(key)) = (req.target_mut(), &key) {
                if target.registration_access_token.is_none() {
                    let stored = store
                        .get(key)
                        .await
                        .map_err(|e| DcrError::Store(e.to_string()))?;
                    let stored = stored.ok_or_else(|| DcrError::MissingToken {
                        client_id: key.client_id.clone(),
                    })?;
                    target.registration_access_token = Some(stored.token);
                }
                used = target.registration_access_token.clone();
            }
            let result = inner.call(req).await;
            learn(store.as_ref(), key, used, &result).await;
            result
        })
    }
}

/// Updates the store from one outcome. Store failures are logged, never turned
/// into call failures: the caller already holds whatever token the answer carries.
async fn learn(
    store: &dyn TokenStore,
    key: Option<TokenKey>,
    used: Option<SecretString>,
    result: &Result<DcrResponse, DcrError>,
) {
    let outcome = match (result, key) {
        (Ok(DcrResponse::Client(client)), key) => {
            let Some(token) = client.registration_access_token.clone() else {
                return;
            };
            // A management answer is filed under the id the caller asked about, so
            // a server cannot plant a token under another client's id.
            let key = key.unwrap_or_else(|| TokenKey {
                client_id: client.client_id.clone(),
            });
            let value = StoredToken {
                token,
                registration_client_uri: client.registration_client_uri.clone(),
            };
            store.put(&key, value).await
        }
        (Ok(DcrResponse::Deleted), Some(key)) => store.remove(&key).await,
        (Err(e), Some(key)) if e.is_token_rejected() => match used {
            Some(token) => store.remove_if(&key, &token).await.map(drop),
            None => return,
        },
        _ => return,
    };
    if let Err(e) = outcome {
        tracing::error!(error = %e, "token store update failed; the caller still has the token in its reply");
    }
}
