//! Access tokens for managed clients: the service asks for a token by the
//! client's name and never holds its secret or key. The gateway runs the
//! client credentials grant through the same stack as every call (retries,
//! deadline, tracing), with the credentials the client's record holds now,
//! and keeps the tokens in memory only ([`cache`]).
//!
//! A secret rotation never leaves a caller without a token: tokens issued
//! under the old secret stay in use until their refresh, and every new
//! request reads the record, so it uses the new secret. When the token
//! endpoint refuses the credentials (another replica rotated the secret and
//! this one read the record before), the record is read again and, if it
//! holds other credentials, the request is made once more with them.

pub mod ask;
pub mod cache;

use std::time::Instant;

use ask::TokenAsk;
use cache::{CacheKey, Fetcher, Issued};

use super::Managed;
use super::keys::PRIVATE_KEY_JWT;
use super::record::ManagedRecord;
use crate::dcr::{
    AccessToken, ClientAuth, DcrCall, DcrError, DcrResponse, TokenRequest, check_name,
};
use crate::store::ManagedKey;

impl Managed {
    /// An access token for the managed client `name` of `namespace`, for
    /// `ask`, by `deadline`: one held, or one obtained now.
    pub async fn access_token(
        &self,
        namespace: &str,
        name: &str,
        ask: TokenAsk,
        deadline: Instant,
    ) -> Result<Issued, DcrError> {
        check_name("name", name)?;
        if self.is_stopping() {
            return Err(DcrError::ShuttingDown);
        }
        let key = CacheKey {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            ask,
        };
        self.inner.tokens.get(self, key, deadline).await
    }

    /// Has `wake` told of every new token held for `name`'s `ask`, and keeps
    /// that token fresh while `wake` lives (a token file's writer).
    pub(crate) fn watch_token(
        &self,
        namespace: &str,
        name: &str,
        ask: &TokenAsk,
        wake: &std::sync::Arc<tokio::sync::Notify>,
    ) {
        let key = CacheKey {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            ask: ask.clone(),
        };
        self.inner.tokens.watch(&key, wake);
    }

    /// Marks `name` as one whose tokens are delivered as files.
    pub(crate) fn delivers_token_files(&self, namespace: &str, name: &str) {
        self.inner.tokens.delivers_files(namespace, name);
    }

    /// The token request for `key` with the credentials `record` holds.
    fn token_request(record: &ManagedRecord, key: &CacheKey) -> Result<TokenRequest, DcrError> {
        let client = &record.client;
        let secret = || {
            client.client_secret.clone().ok_or(DcrError::Unsupported(
                "the managed client has no client secret to ask for a token with",
            ))
        };
        let auth = match client.metadata.token_endpoint_auth_method.as_deref() {
            Some("client_secret_post") => ClientAuth::SecretPost(secret()?),
            Some("none") => {
                return Err(DcrError::Unsupported(
                    "a public client (token_endpoint_auth_method none) cannot use the \
                     client credentials grant",
                ));
            }
            Some(PRIVATE_KEY_JWT) => match record.keys.last() {
                Some(key) => ClientAuth::PrivateKeyJwt(key.signer()?),
                None => {
                    return Err(DcrError::Unsupported(
                        "the managed client authenticates with private_key_jwt, but the \
                         gateway holds no key for it (it was registered elsewhere)",
                    ));
                }
            },
            _ => ClientAuth::SecretBasic(secret()?),
        };
        // No scope asked: the client's registered scope, stated, so every
        // server grants the same.
        let scopes = match key.ask.scopes.is_empty() {
            true => client
                .metadata
                .scope
                .as_deref()
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            false => key.ask.scopes.clone(),
        };
        Ok(TokenRequest {
            client_id: client.client_id.clone(),
            auth,
            scopes,
            resources: key.ask.resources.clone(),
        })
    }

    /// The record of `key`'s name, which must hold a live client.
    async fn token_record(&self, key: &CacheKey) -> Result<ManagedRecord, DcrError> {
        let managed = ManagedKey {
            upstream: self.inner.upstream.clone(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
        };
        match self.load(&managed).await? {
            Some((record, _)) if record.deleted_at.is_none() => Ok(record),
            _ => Err(DcrError::ManagedClientNotFound(key.name.clone())),
        }
    }

    /// One token request with `record`'s credentials.
    async fn ask_token(
        &self,
        record: &ManagedRecord,
        key: &CacheKey,
        deadline: Instant,
    ) -> Result<AccessToken, DcrError> {
        let call = DcrCall::Token(Self::token_request(record, key)?);
        let answer = self.call(&key.namespace, deadline, call).await;
        let metrics = self.inner.metrics.tokens();
        metrics.request(if answer.is_ok() { "ok" } else { "error" });
        match answer? {
            DcrResponse::AccessToken(token) => Ok(token),
            _ => Err(DcrError::Internal(
                "a token request answered without a token",
            )),
        }
    }
}

impl Fetcher for Managed {
    async fn fetch(&self, key: &CacheKey, deadline: Instant) -> Result<AccessToken, DcrError> {
        let record = self.token_record(key).await?;
        match self.ask_token(&record, key, deadline).await {
            Err(e) if e.class().client_rejected => {
                let again = self.token_record(key).await?;
                if same_credentials(&record, &again) {
                    return Err(e);
                }
                tracing::info!(
                    name = key.name,
                    "the token endpoint refused the client's credentials; the record holds newer ones: asking once more"
                );
                self.ask_token(&again, key, deadline).await
            }
            other => other,
        }
    }
}

/// Whether two reads of a record hold the same client, secret and key.
fn same_credentials(a: &ManagedRecord, b: &ManagedRecord) -> bool {
    use secrecy::ExposeSecret;
    let secret = |r: &ManagedRecord| {
        r.client
            .client_secret
            .as_ref()
            .map(|s| s.expose_secret().to_owned())
    };
    let key = |r: &ManagedRecord| r.keys.last().map(|k| k.kid.clone());
    a.client.client_id == b.client.client_id && secret(a) == secret(b) && key(a) == key(b)
}

#[cfg(test)]
mod tests;
