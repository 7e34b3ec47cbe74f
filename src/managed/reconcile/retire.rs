//! Names no longer declared, and clients a name replaced.
//!
//! At start, every credentials file of a name no longer declared is removed
//! (a file of the gateway's own: see `deliver::remove_undeclared`). Then, at
//! start and every interval, each record a declared client wrote whose name
//! this configuration no longer declares is retired: marked, its file
//! removed, and its client deleted at the server once `--retired-client-grace`
//! has passed (replicas of an older configuration may still use it during a
//! rollout; one of them ensuring it again takes it back). Clients a name
//! replaced after the server lost them are listed for the same grace, then
//! dropped. The sweep also checks the credentials folder's permissions again.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use super::Shared;
use crate::dcr::DcrError;
use crate::managed::record::ManagedRecord;
use crate::managed::settings::DeclaredClient;
use crate::managed::{Managed, deliver};
use crate::store::{ManagedKey, unix_now};

/// How long retiring one name may take (its deletion at the server).
const RETIRE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// The sweep's task.
pub(super) struct Sweep {
    shared: Arc<Shared>,
    /// The declared (namespace, name)s.
    declared: HashSet<(String, String)>,
    /// The names whose files (credentials, tokens) this configuration
    /// writes.
    files: Vec<String>,
    /// The names of those files.
    keep: Vec<String>,
}

impl Sweep {
    pub(super) fn new(shared: Arc<Shared>, clients: &[DeclaredClient]) -> Self {
        Self {
            shared,
            declared: clients
                .iter()
                .map(|c| (c.namespace.clone(), c.name.clone()))
                .collect(),
            files: clients
                .iter()
                .filter(|c| !c.file_names().is_empty())
                .map(|c| c.name.clone())
                .collect(),
            keep: clients.iter().flat_map(|c| c.file_names()).collect(),
        }
    }

    pub(super) async fn run(self) {
        let managed = self.shared.managed.clone();
        self.remove_undeclared_files().await;
        loop {
            self.check_folder().await;
            if let Err(e) = self.sweep().await {
                tracing::warn!(error = %e, "looking for managed clients no longer declared failed");
            }
            tokio::select! {
                () = tokio::time::sleep(self.shared.interval) => {}
                () = managed.stopped() => return,
            }
        }
    }

    async fn remove_undeclared_files(&self) {
        let Some(dir) = self.shared.credentials.clone() else {
            return;
        };
        let keep = self.keep.clone();
        match deliver::bounded(move || deliver::remove_undeclared(&dir, &keep)).await {
            Ok(removed) => {
                for file in removed {
                    tracing::warn!(
                        file,
                        "removed a credentials or token file no longer declared"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not look for credentials files no longer declared")
            }
        }
    }

    async fn check_folder(&self) {
        let Some(dir) = self.shared.credentials.clone() else {
            return;
        };
        if let Ok(safety) = deliver::bounded(move || deliver::safety(&dir)).await {
            self.shared.managed.set_folder_warning(safety.warning);
        }
    }

    async fn sweep(&self) -> Result<(), DcrError> {
        let managed = &self.shared.managed;
        let records = managed.all_records().await?;
        let grace = managed.inner.retired_grace.as_secs();
        let now = unix_now();
        for (key, stored) in records {
            if managed.is_stopping() {
                return Ok(());
            }
            if key.upstream != managed.inner.upstream {
                continue;
            }
            let Ok(record) = ManagedRecord::from_json(&stored.json) else {
                continue;
            };
            let undeclared = record.declared
                && !self
                    .declared
                    .contains(&(key.namespace.clone(), key.name.clone()));
            let stale = record
                .replaced
                .iter()
                .any(|r| r.at.saturating_add(grace) <= now);
            if !undeclared && !stale {
                continue;
            }
            // The file of a name still declared (in another namespace) stays.
            let file = self
                .shared
                .credentials
                .clone()
                .filter(|_| undeclared && !self.files.contains(&key.name));
            let result = managed.retire(&key, undeclared, file).await;
            if let Err(e) = result {
                tracing::warn!(name = key.name, error = %e, "retiring a managed client failed");
            }
        }
        Ok(())
    }
}

impl Managed {
    /// Under `key`'s lock: drops the replaced clients older than the grace,
    /// and with `undeclared` retires the name: marks it and removes its file
    /// in `dir` the first time, deletes its client (and forgets it) once the
    /// grace has passed.
    async fn retire(
        &self,
        key: &ManagedKey,
        undeclared: bool,
        dir: Option<crate::managed::CredentialsDir>,
    ) -> Result<(), DcrError> {
        let deadline = Instant::now() + RETIRE_DEADLINE;
        self.holding(key, deadline, async move || {
            self.retire_held(key, undeclared, dir, deadline).await
        })
        .await
    }

    async fn retire_held(
        &self,
        key: &ManagedKey,
        undeclared: bool,
        dir: Option<crate::managed::CredentialsDir>,
        deadline: Instant,
    ) -> Result<(), DcrError> {
        let Some((mut record, generation)) = self.load(key).await? else {
            return Ok(());
        };
        let (grace, now) = (self.inner.retired_grace.as_secs(), unix_now());
        // Read again under the lock: another replica may have taken it back.
        let undeclared = undeclared && record.declared;
        if undeclared
            && record
                .retired_at
                .is_some_and(|at| at.saturating_add(grace) <= now)
        {
            self.forget_held(key, true, deadline).await?;
            self.inner.board.forget(key);
            tracing::warn!(
                name = key.name,
                client_id = record.client.client_id,
                "deleted a managed client no longer declared, after its grace"
            );
            return Ok(());
        }
        let before = record.to_json();
        record.replaced.retain(|r| r.at.saturating_add(grace) > now);
        if undeclared && record.retired_at.is_none() {
            record.retired_at = Some(now);
            tracing::warn!(
                name = key.name,
                client_id = record.client.client_id,
                grace_seconds = grace,
                "a managed client is no longer declared: its file is removed, its client is deleted \
                 at the server after the grace"
            );
            if let Some(dir) = dir {
                let name = key.name.clone();
                if let Err(e) = deliver::bounded(move || deliver::remove(&dir, &name)).await {
                    // Not marked: the next sweep tries again.
                    tracing::warn!(name = key.name, error = %e, "removing a retired client's credentials file failed");
                    return Ok(());
                }
                self.inner.metrics.managed().file_written(&key.name, None);
            }
        }
        self.save_changed(key, generation, &before, &record).await?;
        Ok(())
    }
}
