//! Reading, following and forgetting managed clients.

use std::time::Instant;

use super::access::cache::NameTokens;
use super::board::FileState;
use super::record::{ManagedRecord, Outcome, Replaced};
use super::rotate::next_rotation;
use super::watch::{Change, Published, Watch, change_between};
use super::{Managed, target};
use crate::dcr::{DcrCall, DcrError};
use crate::store::ManagedKey;

/// A managed client's state, without any secret.
#[derive(Clone, Debug)]
pub struct Status {
    /// Its name.
    pub name: String,
    /// Its current client id.
    pub client_id: String,
    /// What the last ensure did.
    pub outcome: Outcome,
    /// When an ensure last found it as it should be, in Unix seconds.
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
    /// Whether a declared client owns the name.
    pub declared: bool,
    /// When it stopped being declared, if it did: its client is deleted at
    /// `delete_at`.
    pub retired_at: Option<u64>,
    /// When a retired client is deleted at the server.
    pub delete_at: Option<u64>,
    /// How its credentials file is doing, when this replica writes one.
    pub file: Option<FileState>,
    /// The access tokens this replica holds for it, when it holds any or
    /// tried to get one.
    pub tokens: Option<NameTokens>,
}

/// One page of ListClients.
#[derive(Clone, Debug, Default)]
pub struct Page {
    /// The clients, by name.
    pub clients: Vec<Status>,
    /// The last name of this page, when more follow.
    pub next: Option<String>,
    /// Why the credentials folder is unsafe, if it is.
    pub folder_warning: Option<String>,
}

impl Managed {
    fn status(&self, key: &ManagedKey, record: &ManagedRecord) -> Status {
        let policy = self
            .inner
            .policies
            .get(&(key.namespace.clone(), key.name.clone()))
            .copied();
        let verified = self.inner.board.verified_at(key).unwrap_or(0);
        Status {
            next_rotation_at: policy.and_then(|p| next_rotation(record, p)),
            name: key.name.clone(),
            client_id: record.client.client_id.clone(),
            outcome: record.outcome,
            ensured_at: record.ensured_at.max(verified),
            secret_issued_at: record.secret_issued_at,
            secret_expires_at: record.client.client_secret_expires_at,
            last_error: record.last_error.clone(),
            replaced: record.replaced.clone(),
            declared: record.declared,
            retired_at: record.retired_at,
            delete_at: record
                .retired_at
                .map(|at| at.saturating_add(self.inner.retired_grace.as_secs())),
            file: self.inner.board.file(key),
            tokens: None,
        }
    }

    /// Up to `limit` managed clients of `namespace` on this upstream, by
    /// name, after `after`. A record that cannot be read is listed with the
    /// reason as its last error.
    pub async fn list(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, DcrError> {
        let names = self.names_in(namespace).await?;
        let mut rest = names
            .into_iter()
            .filter(|n| after.is_none_or(|after| n.as_str() > after));
        let mut page = Page {
            folder_warning: self.inner.board.folder_warning(),
            ..Page::default()
        };
        // The page ends after the last name looked at, listed or not (one
        // forgotten meanwhile), so the next page starts after it.
        let mut last = None;
        let mut tokens = self.inner.tokens.by_name();
        for name in rest.by_ref().take(limit) {
            let key = self.key(namespace, &name);
            last = Some(name.clone());
            let mut status = match self.load(&key).await {
                Ok(Some((record, _))) => self.status(&key, &record),
                Ok(None) => continue,
                Err(e) => unreadable(name, e),
            };
            status.tokens = tokens.remove(&(key.namespace, key.name));
            page.clients.push(status);
        }
        if rest.next().is_some() {
            page.next = last;
        }
        Ok(page)
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

    /// Stops managing `name`; with `delete_upstream`, deletes the client at
    /// the server first (a server that proves it already lost it counts as
    /// deleted). Its watchers' streams end; a declared client's loop
    /// registers it anew at once.
    pub async fn forget(
        &self,
        namespace: &str,
        name: &str,
        delete_upstream: bool,
        deadline: Instant,
    ) -> Result<(), DcrError> {
        let key = &self.key(namespace, name);
        self.holding(key, deadline, async || {
            self.forget_held(key, delete_upstream, deadline).await
        })
        .await
    }

    /// [`Managed::forget`] while holding the name.
    pub(super) async fn forget_held(
        &self,
        key: &ManagedKey,
        delete_upstream: bool,
        deadline: Instant,
    ) -> Result<(), DcrError> {
        let (record, generation) = self
            .load(key)
            .await?
            .ok_or_else(|| DcrError::ManagedClientNotFound(key.name.clone()))?;
        if delete_upstream && record.deleted_at.is_none() {
            let delete = DcrCall::Delete(target(&record.client.client_id));
            match self.call(&key.namespace, deadline, delete).await {
                Ok(_) => {}
                Err(e) if e.class().client_gone => {
                    self.forget_token(key, &record.client.client_id).await;
                }
                Err(e) => return Err(e),
            }
        }
        if !self
            .inner
            .store
            .records
            .delete_record(key, generation)
            .await
            .map_err(DcrError::Store)?
        {
            return Err(DcrError::ManagedClientChanged(key.name.clone()));
        }
        self.inner.board.forget(key);
        self.inner.watchers.close(key);
        self.inner.tokens.forget(&key.namespace, &key.name);
        Ok(())
    }
}

/// The status of a record that cannot be read: its reason as its last error.
fn unreadable(name: String, e: DcrError) -> Status {
    Status {
        name,
        client_id: String::new(),
        outcome: Outcome::Unchanged,
        ensured_at: 0,
        secret_issued_at: 0,
        secret_expires_at: None,
        last_error: Some(e.to_string()),
        next_rotation_at: None,
        replaced: Vec::new(),
        declared: false,
        retired_at: None,
        delete_at: None,
        file: None,
        tokens: None,
    }
}
