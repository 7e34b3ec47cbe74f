//! Registering: a new name (only when the namespace and the store have room
//! for it), a name whose client was lost, and deleting a registration again
//! when what it brought cannot be kept, so that no client is left
//! registered that nobody can manage.

use std::time::Instant;

use secrecy::SecretString;

use super::asked::{Asker, Ensured};
use super::drift::observed;
use super::keys::with_keys;
use super::record::{MAX_REPLACED, ManagedRecord, Outcome, Replaced};
use super::{Managed, OBSERVE_WAIT, token_key, unix_now};
use crate::dcr::json::metadata_to_json;
use crate::dcr::{Client, ClientMetadata, ClientRef, DcrCall, DcrError, DcrResponse};
use crate::keys::ClientKey;
use crate::store::{ManagedKey, StoreError};

/// A registration's answer: the client, and the registration access token
/// it brought (kept to delete the client again if it cannot be stored).
pub(super) struct Registered {
    client: Client,
    token: Option<SecretString>,
    /// The keys it was registered with (`private_key_jwt`).
    keys: Vec<ClientKey>,
}

impl Managed {
    /// Registers a new name: only when the namespace may hold another and
    /// the store has room for its token and record, so that nothing is
    /// registered that could not be kept. A registration whose record still
    /// cannot be written is deleted at the server again.
    pub(super) async fn create(
        &self,
        key: &ManagedKey,
        desired: ClientMetadata,
        initial_access_token: Option<SecretString>,
        deadline: Instant,
        asker: Asker,
    ) -> Result<Ensured, DcrError> {
        if asker == Asker::Caller {
            self.check_room_for_name(&key.namespace).await?;
        }
        self.inner
            .store
            .check_room_for_client()
            .await
            .map_err(DcrError::Store)?;
        let desired_json = metadata_to_json(&desired);
        let registered = self
            .register(key, desired, initial_access_token, deadline)
            .await?;
        let now = unix_now();
        let record = ManagedRecord {
            applied: Some(observed(&registered.client.metadata)),
            client: registered.client.clone(),
            desired: desired_json,
            created_at: now,
            secret_issued_at: now,
            ensured_at: now,
            outcome: Outcome::Created,
            last_error: None,
            replaced: Vec::new(),
            declared: asker == Asker::Declared,
            retired_at: None,
            deleted_at: None,
            keys: registered.keys.clone(),
        };
        if let Err(e) = self.save(key, None, &record).await {
            self.undo(key, registered).await;
            return Err(e);
        }
        self.inner.board.verified(key, now);
        Ok(Ensured {
            client: record.client,
            outcome: Outcome::Created,
        })
    }

    /// Registers `record`'s name anew after its client was lost; the lost
    /// one is kept among the replaced. Returns the new registration, which
    /// the caller deletes again ([`Managed::undo`]) if the record cannot be
    /// saved, and whose predecessor's token it forgets once it is.
    pub(super) async fn recreate(
        &self,
        key: &ManagedKey,
        record: &mut ManagedRecord,
        desired: ClientMetadata,
        initial_access_token: Option<SecretString>,
        deadline: Instant,
    ) -> Result<Registered, DcrError> {
        let id = record.client.client_id.clone();
        tracing::warn!(
            name = key.name,
            client_id = id,
            "the managed client is gone from the authorization server: registering it anew"
        );
        let desired_json = metadata_to_json(&desired);
        let registered = self
            .register(key, desired, initial_access_token, deadline)
            .await?;
        let now = unix_now();
        record.replaced.push(Replaced {
            client_id: id,
            at: now,
        });
        let excess = record.replaced.len().saturating_sub(MAX_REPLACED);
        record.replaced.drain(..excess);
        record.applied = Some(observed(&registered.client.metadata));
        record.client = registered.client.clone();
        record.desired = desired_json;
        record.secret_issued_at = now;
        record.deleted_at = None;
        record.keys = registered.keys.clone();
        Ok(registered)
    }

    /// Registers `desired` for `key`; the tokens layer stores the new RAT,
    /// or logs why it could not (its caller has it in hand). A managed client
    /// without it could never be managed, so it is deleted again and the
    /// reason returned.
    async fn register(
        &self,
        key: &ManagedKey,
        desired: ClientMetadata,
        initial_access_token: Option<SecretString>,
        deadline: Instant,
    ) -> Result<Registered, DcrError> {
        let keys = self.new_keys(&desired)?;
        let register = DcrCall::Register {
            metadata: with_keys(desired, &keys)?,
            initial_access_token: initial_access_token
                .or_else(|| self.inner.initial_access_token.clone()),
        };
        match self.call(&key.namespace, deadline, register).await? {
            DcrResponse::Client(client) => {
                let mut client = *client;
                let token = client.registration_access_token.take();
                let registered = Registered {
                    client,
                    token,
                    keys,
                };
                match self.token_kept(key, &registered.client.client_id).await {
                    Ok(()) => Ok(registered),
                    Err(e) => {
                        self.undo(key, registered).await;
                        Err(e)
                    }
                }
            }
            DcrResponse::Deleted | DcrResponse::AccessToken(_) => Err(DcrError::Internal(
                "a registration answered without a client",
            )),
        }
    }

    /// Checks the store holds a token for `client_id`; else why not: the
    /// store is full, or failed.
    async fn token_kept(&self, key: &ManagedKey, client_id: &str) -> Result<(), DcrError> {
        let store = &self.inner.store;
        match store.tokens.get(&token_key(key, client_id)).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => {
                store
                    .tokens
                    .check_room_for_token()
                    .await
                    .map_err(DcrError::Store)?;
                Err(DcrError::Store(StoreError::Backend(
                    "the new client's registration access token was not stored".into(),
                )))
            }
            Err(e) => Err(DcrError::Store(e)),
        }
    }

    /// Deletes a client just registered whose record could not be stored,
    /// with the token its registration brought, so that no client is left
    /// registered that nobody can manage.
    pub(super) async fn undo(&self, key: &ManagedKey, registered: Registered) {
        let id = registered.client.client_id;
        let uri = registered.client.registration_client_uri;
        let delete = DcrCall::Delete(ClientRef {
            client_id: id.clone(),
            registration_access_token: registered.token,
            registration_client_uri: (!uri.is_empty()).then_some(uri),
        });
        let deadline = Instant::now() + OBSERVE_WAIT;
        match self.call(&key.namespace, deadline, delete).await {
            Ok(_) => tracing::warn!(
                name = key.name,
                client_id = id,
                "a new client's record could not be stored: deleted it at the server again"
            ),
            Err(e) => tracing::error!(
                name = key.name,
                client_id = id,
                error = %e,
                "a new client's record could not be stored, nor the client deleted at the server: \
                 it is registered but not managed"
            ),
        }
    }
}
