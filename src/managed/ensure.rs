//! EnsureClient: register once, apply changed metadata, and register anew
//! only when the server proves it lost the client.

use std::time::Instant;

use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;

use super::record::{MAX_REPLACED, ManagedRecord, Outcome, Replaced};
use super::watch::{Change, Published};
use super::{Managed, target, unix_now};
use crate::dcr::json::metadata_to_json;
use crate::dcr::{Client, ClientMetadata, DcrCall, DcrError, DcrResponse};
use crate::store::{ManagedKey, TokenKey};

/// What an ensure returns: the client with its current secret, and what the
/// call did.
#[derive(Debug)]
pub struct Ensured {
    /// The client, its current secret included; no registration access token.
    pub client: Client,
    /// What the call did.
    pub outcome: Outcome,
}

impl Managed {
    /// Makes sure `name` in `namespace` exists with `desired`.
    ///
    /// The work runs in a task of its own, holding a tail permit: once a
    /// registration may have been sent, it completes and its record is stored
    /// even if the caller leaves (the next ensure then finds it). The caller
    /// waits for it until `deadline`.
    pub async fn ensure(
        &self,
        namespace: &str,
        name: &str,
        desired: ClientMetadata,
        initial_access_token: Option<SecretString>,
        deadline: Instant,
    ) -> Result<Ensured, DcrError> {
        let permit = self
            .inner
            .tails
            .clone()
            .try_acquire_owned()
            .map_err(|_| DcrError::TooManyCalls)?;
        let (this, key) = (self.clone(), self.key(namespace, name));
        let task = tokio::spawn(
            async move {
                let _permit = permit;
                this.ensure_now(key, desired, initial_access_token, deadline)
                    .await
            }
            .in_current_span(),
        );
        match tokio::time::timeout_at(deadline.into(), task).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(DcrError::Internal("the ensure task panicked")),
            Err(_) => Err(DcrError::DeadlineExceeded),
        }
    }

    async fn ensure_now(
        &self,
        key: ManagedKey,
        desired: ClientMetadata,
        initial_access_token: Option<SecretString>,
        deadline: Instant,
    ) -> Result<Ensured, DcrError> {
        let held = self.exclusive(&key, deadline).await?;
        let result = self
            .ensure_held(&key, desired, initial_access_token, deadline)
            .await;
        if let Err(e) = &result {
            self.note_failure(&key, e).await;
        }
        held.release().await;
        result
    }

    /// Keeps why the last attempt on `key` failed in its record (ListClients
    /// shows it), while the caller holds the name. Best effort: the failure
    /// itself is what the caller gets.
    pub(super) async fn note_failure(&self, key: &ManagedKey, err: &DcrError) {
        let Ok(Some((mut record, generation))) = self.load(key).await else {
            return;
        };
        record.last_error = Some(err.to_string());
        if let Err(e) = self.save(key, Some(generation), &record).await {
            tracing::warn!(error = %e, name = key.name, "could not keep a managed client's last error");
        }
    }

    async fn ensure_held(
        &self,
        key: &ManagedKey,
        desired: ClientMetadata,
        initial_access_token: Option<SecretString>,
        deadline: Instant,
    ) -> Result<Ensured, DcrError> {
        let desired_json = metadata_to_json(&desired);
        let Some((mut record, generation)) = self.load(key).await? else {
            let client = self
                .register(key, desired, initial_access_token, deadline)
                .await?;
            let now = unix_now();
            let record = ManagedRecord {
                client,
                desired: desired_json,
                created_at: now,
                secret_issued_at: now,
                ensured_at: now,
                outcome: Outcome::Created,
                last_error: None,
                replaced: Vec::new(),
            };
            self.save(key, None, &record).await?;
            return Ok(Ensured {
                client: record.client,
                outcome: Outcome::Created,
            });
        };
        let id = record.client.client_id.clone();
        let read = self
            .call(&key.namespace, deadline, DcrCall::Get(target(&id)))
            .await;
        let (outcome, change) = match read {
            Ok(DcrResponse::Client(server)) if record.desired == desired_json => {
                let change = merge(&mut record, *server);
                (Outcome::Unchanged, change)
            }
            Ok(DcrResponse::Client(_)) => {
                let update = DcrCall::Update {
                    target: target(&id),
                    metadata: desired,
                    mask: Vec::new(),
                };
                let DcrResponse::Client(server) =
                    self.call(&key.namespace, deadline, update).await?
                else {
                    return Err(DcrError::Internal("an update answered as a delete"));
                };
                merge(&mut record, *server);
                record.desired = desired_json;
                (Outcome::Updated, Some(Change::Updated))
            }
            Ok(DcrResponse::Deleted) => {
                return Err(DcrError::Internal("a read answered as a delete"));
            }
            Err(e) if self.proves_gone(&e) => {
                tracing::warn!(
                    name = key.name,
                    client_id = id,
                    "the authorization server lost the managed client: registering it anew"
                );
                let client = self
                    .register(key, desired, initial_access_token, deadline)
                    .await?;
                self.forget_token(key, &id).await;
                let now = unix_now();
                record.replaced.push(Replaced {
                    client_id: id,
                    at: now,
                });
                let excess = record.replaced.len().saturating_sub(MAX_REPLACED);
                record.replaced.drain(..excess);
                record.client = client;
                record.desired = desired_json;
                record.secret_issued_at = now;
                (Outcome::Recreated, Some(Change::Recreated))
            }
            Err(e) if refused(&e) => {
                return Err(DcrError::ClientLossNotProven {
                    client_id: id,
                    cause: Box::new(e),
                });
            }
            Err(e) => return Err(e),
        };
        record.ensured_at = unix_now();
        record.outcome = outcome;
        record.last_error = None;
        let generation = self.save(key, Some(generation), &record).await?;
        if let Some(change) = change {
            self.inner.watchers.publish(
                key,
                Published {
                    client: record.client.clone(),
                    change,
                    generation,
                },
            );
        }
        Ok(Ensured {
            client: record.client,
            outcome,
        })
    }

    /// Registers `desired` for `key`; the tokens layer stores the new RAT.
    async fn register(
        &self,
        key: &ManagedKey,
        desired: ClientMetadata,
        initial_access_token: Option<SecretString>,
        deadline: Instant,
    ) -> Result<Client, DcrError> {
        let register = DcrCall::Register {
            metadata: desired,
            initial_access_token: initial_access_token
                .or_else(|| self.inner.initial_access_token.clone()),
        };
        match self.call(&key.namespace, deadline, register).await? {
            DcrResponse::Client(client) => {
                let mut client = *client;
                client.registration_access_token = None;
                Ok(client)
            }
            DcrResponse::Deleted => Err(DcrError::Internal("a registration answered as a delete")),
        }
    }

    /// Whether `err` proves the server lost the client (the profile's rule).
    pub(super) fn proves_gone(&self, err: &DcrError) -> bool {
        match err {
            DcrError::Upstream(f) => self.inner.profile.proves_client_gone(f),
            DcrError::RetryStopped { last, .. } => self.proves_gone(last),
            _ => false,
        }
    }

    /// Drops the stored token of a client the server lost; a failure only
    /// leaves a dead token behind.
    pub(super) async fn forget_token(&self, key: &ManagedKey, client_id: &str) {
        let token_key = TokenKey {
            upstream: key.upstream.clone(),
            namespace: key.namespace.clone(),
            client_id: client_id.to_owned(),
        };
        if let Err(e) = self.inner.store.delete(&token_key).await {
            tracing::warn!(error = %e, "could not forget a lost client's token");
        }
    }
}

/// An answer refusing the stored token or the call, which says nothing about
/// whether the client exists.
fn refused(err: &DcrError) -> bool {
    match err {
        DcrError::Upstream(f) => matches!(f.status, 401 | 403) || f.token_rejected,
        DcrError::MissingToken { .. } => true,
        DcrError::RetryStopped { last, .. } => refused(last),
        _ => false,
    }
}

/// Takes what a read or update answered into `record`, keeping the stored
/// secret unless the answer carries one (SharkAuth shows it only when it
/// issues one). A new secret is a change watchers hear of.
fn merge(record: &mut ManagedRecord, mut server: Client) -> Option<Change> {
    server.registration_access_token = None;
    let new_secret = match (&server.client_secret, &record.client.client_secret) {
        (Some(new), Some(old)) => new.expose_secret() != old.expose_secret(),
        (Some(_), None) => true,
        (None, _) => false,
    };
    if server.client_secret.is_none() {
        server.client_secret = record.client.client_secret.take();
    }
    record.client = server;
    new_secret.then(|| {
        record.secret_issued_at = unix_now();
        Change::SecretRotated
    })
}
