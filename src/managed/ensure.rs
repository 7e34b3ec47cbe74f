//! EnsureClient: register once, apply changed metadata, put back what was
//! changed at the server, and register anew only when the server proves it
//! lost the client (or the gateway itself deleted it).
//!
//! A reconcile that finds everything as it should be writes nothing: not the
//! record (when it was found is kept in memory, see `board`), and so not the
//! credentials file either.

use std::time::Instant;

use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;

use super::asked::{Asker, Ensured};
use super::drift::{drifted, observed};
use super::keys::{uses_keys, with_keys};
use super::record::{ManagedRecord, Outcome};
use super::register::Registered;
use super::watch::{Change, Published};
use super::{Managed, target, token_key, unix_now};
use crate::dcr::json::metadata_to_json;
use crate::dcr::{Client, ClientMetadata, DcrCall, DcrError, DcrResponse};
use crate::store::ManagedKey;

impl Managed {
    /// Makes sure `name` in `namespace` exists with `desired`, for a caller.
    ///
    /// The work runs in a task of its own, holding a place among the sent
    /// exchanges: once a
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
            .exchanges
            .try_enter()
            .ok_or(DcrError::TooManyCalls)?;
        let (this, key) = (self.clone(), self.key(namespace, name));
        let task = tokio::spawn(crate::dcr::durability::carried(
            async move {
                let _permit = permit;
                this.ensure_now(key, desired, initial_access_token, deadline, Asker::Caller)
                    .await
            }
            .in_current_span(),
        ));
        match tokio::time::timeout_at(deadline.into(), task).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(DcrError::Internal("the ensure task panicked")),
            Err(_) => Err(DcrError::DeadlineExceeded),
        }
    }

    /// Makes sure declared client `name` exists with `desired`. Its loop
    /// awaits it to the end (and shutdown awaits the loop), so nothing sent
    /// is abandoned.
    pub(super) async fn ensure_declared(
        &self,
        namespace: &str,
        name: &str,
        desired: ClientMetadata,
        deadline: Instant,
    ) -> Result<Ensured, DcrError> {
        let key = self.key(namespace, name);
        self.ensure_now(key, desired, None, deadline, Asker::Declared)
            .await
    }

    async fn ensure_now(
        &self,
        key: ManagedKey,
        desired: ClientMetadata,
        initial_access_token: Option<SecretString>,
        deadline: Instant,
        asker: Asker,
    ) -> Result<Ensured, DcrError> {
        let key = &key;
        self.holding(key, deadline, async move || {
            let result = self
                .ensure_held(key, desired, initial_access_token, deadline, asker)
                .await;
            if let Err(e) = &result {
                self.note_failure(key, e).await;
            }
            result
        })
        .await
    }

    /// Keeps why the last attempt on `key` failed in its record (ListClients
    /// shows it), while the caller holds the name; the same reason again
    /// writes nothing. Best effort: the failure itself is what the caller gets.
    pub(super) async fn note_failure(&self, key: &ManagedKey, err: &DcrError) {
        let Ok(Some((mut record, generation))) = self.load(key).await else {
            return;
        };
        let reason = err.to_string();
        if record.last_error.as_deref() == Some(reason.as_str()) {
            return;
        }
        record.last_error = Some(reason);
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
        asker: Asker,
    ) -> Result<Ensured, DcrError> {
        let Some((mut record, generation)) = self.load(key).await? else {
            return self
                .create(key, desired, initial_access_token, deadline, asker)
                .await;
        };
        let before = record.to_json();
        let id = record.client.client_id.clone();
        let read = match record.deleted_at {
            // The gateway deleted it at the server itself: no read needed.
            Some(_) => None,
            None => Some(
                self.call(&key.namespace, deadline, DcrCall::Get(target(&id)))
                    .await,
            ),
        };
        // A new registration in place of a lost client: deleted again if its
        // record cannot be saved; its predecessor's token forgotten once it is.
        let mut recreated = None;
        let gone = match &read {
            None => true,
            Some(Err(e)) => e.class().client_gone,
            Some(Ok(_)) => false,
        };
        let (outcome, change) = match read {
            _ if gone => {
                let new = self
                    .recreate(key, &mut record, desired, initial_access_token, deadline)
                    .await?;
                recreated = Some(new);
                (Outcome::Recreated, Some(Change::Recreated))
            }
            Some(Ok(DcrResponse::Client(server))) => {
                self.align(key, &mut record, *server, desired, deadline)
                    .await?
            }
            Some(Ok(DcrResponse::Deleted | DcrResponse::AccessToken(_))) => {
                return Err(DcrError::Internal("a read answered without a client"));
            }
            Some(Err(e)) if e.class().refused => {
                return Err(DcrError::ClientLossNotProven {
                    client_id: id,
                    cause: Box::new(e),
                });
            }
            Some(Err(e)) => return Err(e),
            None => return Err(DcrError::Internal("no read of a client not known gone")),
        };
        claim(&mut record, asker);
        record.outcome = outcome;
        record.last_error = None;
        let now = unix_now();
        self.inner.board.verified(key, now);
        if record.to_json().expose_secret() == before.expose_secret() {
            // Found as it was: nothing to write.
            return Ok(Ensured {
                client: record.client,
                outcome,
            });
        }
        record.ensured_at = now;
        self.keep(key, generation, &record, change, recreated)
            .await?;
        Ok(Ensured {
            client: record.client,
            outcome,
        })
    }

    /// Brings a client the server still has in line with `desired`: updated
    /// when the caller's metadata changed or the server's copy drifted from
    /// what was applied, otherwise only what the server shows is merged.
    async fn align(
        &self,
        key: &ManagedKey,
        record: &mut ManagedRecord,
        server: Client,
        desired: ClientMetadata,
        deadline: Instant,
    ) -> Result<(Outcome, Option<Change>), DcrError> {
        let id = record.client.client_id.clone();
        let desired_json = metadata_to_json(&desired);
        let seen = observed(&server.metadata);
        let changed = record
            .applied
            .as_ref()
            .map(|applied| drifted(applied, &seen))
            .unwrap_or_default();
        if !changed.is_empty() {
            self.inner.metrics.managed().drifted();
            tracing::warn!(
                name = key.name,
                client_id = id,
                changed = changed.join(","),
                "a managed client was changed at the authorization server: putting it back"
            );
        }
        if record.desired == desired_json && changed.is_empty() {
            let change = merge(record, server);
            record.applied.get_or_insert(seen);
            return Ok((Outcome::Unchanged, change));
        }
        // A client asking for key authentication now gets its key; one
        // that no longer does, none; every update publishes the keys held.
        let keys = match (uses_keys(&desired), record.keys.is_empty()) {
            (true, true) => self.new_keys(&desired)?,
            (true, false) => record.keys.clone(),
            (false, _) => Vec::new(),
        };
        let update = DcrCall::Update {
            target: target(&id),
            metadata: with_keys(desired, &keys)?,
            mask: Vec::new(),
        };
        let DcrResponse::Client(server) = self.call(&key.namespace, deadline, update).await? else {
            return Err(DcrError::Internal("an update answered as a delete"));
        };
        record.applied = Some(observed(&server.metadata));
        merge(record, *server);
        record.desired = desired_json;
        record.keys = keys;
        Ok((Outcome::Updated, Some(Change::Updated)))
    }

    /// Saves an ensured record over `generation` and tells watchers what
    /// changed. A client registered in place of a lost one is deleted again
    /// when its record cannot be saved, and its predecessor's token is
    /// forgotten once it is.
    async fn keep(
        &self,
        key: &ManagedKey,
        generation: u64,
        record: &ManagedRecord,
        change: Option<Change>,
        recreated: Option<Registered>,
    ) -> Result<(), DcrError> {
        let generation = match self.save(key, Some(generation), record).await {
            Ok(generation) => generation,
            Err(e) => {
                if let Some(new) = recreated {
                    self.undo(key, new).await;
                }
                return Err(e);
            }
        };
        if recreated.is_some()
            && let Some(lost) = record.replaced.last()
        {
            self.forget_token(key, &lost.client_id).await;
            // Tokens of the lost client are of no use any more.
            self.inner.tokens.forget(&key.namespace, &key.name);
        }
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
        Ok(())
    }

    /// Drops the stored token of a client the server lost; a failure only
    /// leaves a dead token behind.
    pub(super) async fn forget_token(&self, key: &ManagedKey, client_id: &str) {
        if let Err(e) = self
            .inner
            .store
            .tokens
            .delete(&token_key(key, client_id))
            .await
        {
            tracing::warn!(error = %e, "could not forget a lost client's token");
        }
    }
}

/// Marks who wants the client now: a declared name is the gateway's (and no
/// longer retired); a caller still asking for a retired name makes it the
/// caller's.
fn claim(record: &mut ManagedRecord, asker: Asker) {
    match asker {
        Asker::Declared => {
            record.declared = true;
            record.retired_at = None;
        }
        Asker::Caller if record.retired_at.is_some() => {
            record.declared = false;
            record.retired_at = None;
        }
        Asker::Caller => {}
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
