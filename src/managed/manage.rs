//! Reading, following and forgetting managed clients.

use std::time::{Duration, Instant};

use super::record::{ManagedRecord, Outcome, Replaced};
use super::rotate::next_rotation;
use super::settings::RotationPolicy;
use super::watch::{Change, Published, Watch, change_between};
use super::{Managed, target};
use crate::dcr::{DcrCall, DcrError};

/// How long taking in an observed secret waits for its name.
const OBSERVE_WAIT: Duration = Duration::from_secs(10);

/// A managed client's state, without any secret.
#[derive(Clone, Debug)]
pub struct Status {
    /// Its name.
    pub name: String,
    /// Its current client id.
    pub client_id: String,
    /// What the last ensure did.
    pub outcome: Outcome,
    /// When an ensure last succeeded, in Unix seconds.
    pub ensured_at: u64,
    /// When the current secret was issued.
    pub secret_issued_at: u64,
    /// When the current secret expires; `None`: never.
    pub secret_expires_at: Option<i64>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// When the secret is next rotated, for a declared client with a policy.
    pub next_rotation_at: Option<u64>,
    /// Clients of this name the server lost, oldest first.
    pub replaced: Vec<Replaced>,
}

impl Status {
    fn of(name: String, record: &ManagedRecord, policy: Option<RotationPolicy>) -> Self {
        Self {
            next_rotation_at: policy.and_then(|p| next_rotation(record, p)),
            name,
            client_id: record.client.client_id.clone(),
            outcome: record.outcome,
            ensured_at: record.ensured_at,
            secret_issued_at: record.secret_issued_at,
            secret_expires_at: record.client.client_secret_expires_at,
            last_error: record.last_error.clone(),
            replaced: record.replaced.clone(),
        }
    }
}

impl Managed {
    /// The managed clients of `namespace` on this upstream, by name. A record
    /// that cannot be read is listed with the reason as its last error.
    pub async fn list(&self, namespace: &str) -> Result<Vec<Status>, DcrError> {
        let records = self
            .inner
            .store
            .list_records()
            .await
            .map_err(DcrError::Store)?;
        let mut out: Vec<Status> = records
            .into_iter()
            .filter(|(k, _)| k.upstream == self.inner.upstream && k.namespace == namespace)
            .map(|(k, stored)| match ManagedRecord::from_json(&stored.json) {
                Ok(record) => {
                    let policy = self
                        .inner
                        .policies
                        .get(&(k.namespace.clone(), k.name.clone()))
                        .copied();
                    Status::of(k.name, &record, policy)
                }
                Err(e) => Status {
                    name: k.name,
                    client_id: String::new(),
                    outcome: Outcome::Unchanged,
                    ensured_at: 0,
                    secret_issued_at: 0,
                    secret_expires_at: None,
                    last_error: Some(e.to_string()),
                    next_rotation_at: None,
                    replaced: Vec::new(),
                },
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Follows `name`'s credentials: the current state (read now), and a
    /// channel of every change this process makes or [`Managed::refresh`]
    /// finds.
    pub async fn watch(&self, namespace: &str, name: &str) -> Result<(Published, Watch), DcrError> {
        let key = self.key(namespace, name);
        let (record, generation) = self
            .load(&key)
            .await?
            .ok_or_else(|| DcrError::ManagedClientNotFound(name.to_owned()))?;
        let current = Published {
            client: record.client,
            change: Change::Current,
            generation,
        };
        let rx = self.inner.watchers.subscribe(key, &current);
        Ok((current, rx))
    }

    /// Reads `name`'s record again and tells its watchers when another
    /// replica changed the client (a new secret, new metadata, a new client);
    /// a watch stream calls it now and then. `Ok(false)` once it is no longer
    /// managed.
    pub async fn refresh(
        &self,
        namespace: &str,
        name: &str,
        seen: &Published,
    ) -> Result<bool, DcrError> {
        let key = self.key(namespace, name);
        let Some((record, generation)) = self.load(&key).await? else {
            self.inner.watchers.close(&key);
            return Ok(false);
        };
        if generation <= seen.generation {
            return Ok(true);
        }
        let change = change_between(&seen.client, &record.client);
        if let Some(change) = change {
            let state = Published {
                client: record.client,
                change,
                generation,
            };
            self.inner.watchers.publish(&key, state);
        }
        Ok(true)
    }

    /// Takes a secret that a plain RPC brought back (a caller's own
    /// RotateClientSecret, or a read on a server that rotates on read) into
    /// the record of every name of `namespace` that has this client, so the
    /// record never keeps a secret the server replaced. Best effort: a
    /// failure is logged, and the caller has the secret in its answer.
    pub async fn observe_secret(&self, namespace: &str, client: &crate::dcr::Client) {
        use secrecy::ExposeSecret;
        let Some(new) = &client.client_secret else {
            return;
        };
        let records = match self.inner.store.list_records().await {
            Ok(records) => records,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for a managed client to take a new secret");
                return;
            }
        };
        let deadline = Instant::now() + OBSERVE_WAIT;
        for (key, _) in records
            .into_iter()
            .filter(|(k, _)| k.upstream == self.inner.upstream && k.namespace == namespace)
        {
            let result = async {
                let held = self.exclusive(&key, deadline).await?;
                let result = async {
                    let Some((mut record, generation)) = self.load(&key).await? else {
                        return Ok(());
                    };
                    let same = record
                        .client
                        .client_secret
                        .as_ref()
                        .is_some_and(|old| old.expose_secret() == new.expose_secret());
                    if record.client.client_id != client.client_id || same {
                        return Ok(());
                    }
                    record.client.client_secret = Some(new.clone());
                    record.secret_issued_at = crate::store::unix_now();
                    let generation = self.save(&key, Some(generation), &record).await?;
                    self.inner.watchers.publish(
                        &key,
                        Published {
                            client: record.client,
                            change: Change::SecretRotated,
                            generation,
                        },
                    );
                    Ok::<_, DcrError>(())
                }
                .await;
                held.release().await;
                result
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, name = key.name, "could not keep a managed client's new secret");
            }
        }
    }

    /// Stops managing `name`; with `delete_upstream`, deletes the client at
    /// the server first (a server that proves it already lost it counts as
    /// deleted). Its watchers' streams end.
    pub async fn forget(
        &self,
        namespace: &str,
        name: &str,
        delete_upstream: bool,
        deadline: Instant,
    ) -> Result<(), DcrError> {
        let key = self.key(namespace, name);
        let held = self.exclusive(&key, deadline).await?;
        let result = async {
            let (record, generation) = self
                .load(&key)
                .await?
                .ok_or_else(|| DcrError::ManagedClientNotFound(name.to_owned()))?;
            if delete_upstream {
                let delete = DcrCall::Delete(target(&record.client.client_id));
                match self.call(namespace, deadline, delete).await {
                    Ok(_) => {}
                    Err(e) if self.proves_gone(&e) => {
                        self.forget_token(&key, &record.client.client_id).await;
                    }
                    Err(e) => return Err(e),
                }
            }
            if !self
                .inner
                .store
                .delete_record(&key, generation)
                .await
                .map_err(DcrError::Store)?
            {
                return Err(DcrError::ManagedClientChanged(name.to_owned()));
            }
            self.inner.watchers.close(&key);
            Ok(())
        }
        .await;
        held.release().await;
        result
    }
}
