//! What plain RPCs show about managed clients (told by the observe layer,
//! `middleware::observe`): a new secret a caller's own RotateClientSecret (or
//! a read on a server that rotates on read) brought back, and a client a
//! caller's DeleteClient deleted. Both reach the records of that client only,
//! found through the store's index, so an RPC on one client never waits on
//! another managed name.

use std::time::Instant;

use futures_util::future::BoxFuture;
use secrecy::ExposeSecret;

use super::record::ManagedRecord;
use super::watch::{Change, Published};
use super::{Managed, OBSERVE_WAIT};
use crate::dcr::{Client, DcrError};
use crate::middleware::observe::ClientObserver;
use crate::store::unix_now;

impl Managed {
    /// Takes a secret that a plain RPC brought back into the record of every
    /// name of `namespace` that has this client, so the record never keeps a
    /// secret the server replaced. Best effort: a failure is logged, and the
    /// caller has the secret in its answer.
    pub async fn observe_secret(&self, namespace: &str, client: &Client) {
        let Some(new) = &client.client_secret else {
            return;
        };
        self.update_records_of(namespace, &client.client_id, |record| {
            let same = record
                .client
                .client_secret
                .as_ref()
                .is_some_and(|old| old.expose_secret() == new.expose_secret());
            if same {
                return None;
            }
            record.client.client_secret = Some(new.clone());
            record.secret_issued_at = unix_now();
            Some(Change::SecretRotated)
        })
        .await;
    }

    /// Marks the records of `client_id` in `namespace` as deleted at the
    /// server (a caller's DeleteClient through the gateway, which is proof
    /// enough), and wakes their declared loops, which register them anew at
    /// once; a caller's next EnsureClient does the same.
    pub async fn observe_deleted(&self, namespace: &str, client_id: &str) {
        self.update_records_of(namespace, client_id, |record| {
            record.deleted_at = Some(unix_now());
            None
        })
        .await;
    }

    /// Applies `change` to every record of `namespace` whose client is
    /// `client_id`, each under its name's lock, and tells its watchers (and
    /// its declared loop) what changed.
    async fn update_records_of(
        &self,
        namespace: &str,
        client_id: &str,
        change: impl Fn(&mut ManagedRecord) -> Option<Change>,
    ) {
        let names = self
            .inner
            .store
            .records
            .records_of_client(&self.inner.upstream, namespace, client_id)
            .await;
        let names = match names {
            Ok(names) => names,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for the managed clients of a client");
                return;
            }
        };
        let deadline = Instant::now() + OBSERVE_WAIT;
        for name in names {
            let key = &self.key(namespace, &name);
            let result = self
                .holding(key, deadline, async || {
                    let Some((mut record, generation)) = self.load(key).await? else {
                        return Ok(());
                    };
                    // The index may be behind the record; the record decides.
                    if record.client.client_id != client_id {
                        return Ok(());
                    }
                    let before = record.to_json();
                    let heard = change(&mut record);
                    let Some(generation) =
                        self.save_changed(key, generation, &before, &record).await?
                    else {
                        return Ok(());
                    };
                    match heard {
                        Some(change) => self.inner.watchers.publish(
                            key,
                            Published {
                                client: record.client,
                                change,
                                generation,
                            },
                        ),
                        None => self.inner.watchers.nudge(key),
                    }
                    Ok(())
                })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, name, "could not update a managed client from a call's answer");
            }
        }
    }

    /// Indexes every record written before the store kept an index of
    /// records by client (rewriting it as it is), so that what plain RPCs
    /// show reaches it. Runs once at start; returns how many it indexed.
    pub async fn index_records(&self) -> Result<usize, DcrError> {
        let records = self.all_records().await?;
        let mut indexed = 0;
        for (key, stored) in records {
            if stored.client_id.is_some() || key.upstream != self.inner.upstream {
                continue;
            }
            let Ok(record) = ManagedRecord::from_json(&stored.json) else {
                continue;
            };
            let written = self
                .inner
                .store
                .records
                .put_record(
                    &key,
                    Some(stored.generation),
                    &stored.json,
                    &record.client.client_id,
                )
                .await
                .map_err(DcrError::Store)?;
            indexed += usize::from(matches!(written, crate::store::Cas::Stored(_)));
        }
        Ok(indexed)
    }
}

impl ClientObserver for Managed {
    fn secret_issued<'a>(&'a self, namespace: &'a str, client: &'a Client) -> BoxFuture<'a, ()> {
        Box::pin(self.observe_secret(namespace, client))
    }

    fn client_deleted<'a>(&'a self, namespace: &'a str, client_id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.observe_deleted(namespace, client_id))
    }
}
