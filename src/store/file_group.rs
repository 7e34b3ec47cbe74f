//! Durable writes in groups: one commit (and one fsync) for every write
//! that arrived while the previous commit was syncing.
//!
//! redb runs one write transaction at a time, and each durable commit
//! waits for its fsync; writers one after another would each pay a whole
//! commit. Here the writers that queue up while a commit syncs all run
//! their work, in arrival order, in the next transaction, and the last of
//! them commits it for all. Nobody returns before the commit that holds
//! its write is durable, so what a caller is told is on disk is on disk,
//! exactly as before.
//!
//! A write that fails (an I/O error, an unreadable value) may leave its
//! half in the shared transaction, so the group's transaction is dropped
//! unapplied, and every other member runs its work again in a group of
//! its own making: work is `FnMut` for that reason.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use redb::{Durability, WriteTransaction};

use super::StoreError;
use super::file::{FileStore, backend};
use super::file_cache::Change;

/// Where the current group is.
enum Phase {
    /// No write in progress.
    Idle,
    /// A transaction takes work: `expected` members joined, `ran` of them
    /// have run their work, `failed` when one failed.
    Open {
        txn: Box<WriteTransaction>,
        expected: usize,
        ran: usize,
        failed: bool,
    },
    /// The group's transaction is being committed; `waiting` writers
    /// queued behind it, for the next group.
    Committing { waiting: usize },
}

/// How a group ended, for its members.
#[derive(Clone)]
enum Outcome {
    Committed,
    /// Dropped unapplied because a member failed: run again.
    Retry,
    Failed(String),
}

struct State {
    phase: Phase,
    /// The group being formed (members record it on joining).
    group: u64,
    /// The last group that ended, and how.
    ended: (u64, Outcome),
    /// The changes to the in-memory copy, in the order the work ran.
    changes: Vec<Change>,
}

/// The groups of one database.
pub(super) struct Groups {
    state: Mutex<State>,
    ended: Condvar,
    /// Transactions committed so far.
    commits: AtomicU64,
}

impl Default for Groups {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                phase: Phase::Idle,
                group: 1,
                ended: (0, Outcome::Committed),
                changes: Vec::new(),
            }),
            ended: Condvar::new(),
            commits: AtomicU64::new(0),
        }
    }
}

impl Groups {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FileStore {
    /// Runs `work` in a durable write transaction shared with the writes
    /// that queued with it; returns once that transaction is committed (or
    /// failed). The changes `work` notes reach the in-memory copy after the
    /// commit, in the order the work ran.
    pub(super) fn write_grouped<T>(
        &self,
        mut work: impl FnMut(&WriteTransaction, &mut Vec<Change>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        loop {
            let (group, out) = self.join_and_run(&mut work)?;
            let mut state = self.groups.lock();
            while state.ended.0 < group {
                state = self
                    .groups
                    .ended
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner());
            }
            match state.ended.1.clone() {
                Outcome::Committed => return out,
                // A member that failed gets its own error, not a retry.
                Outcome::Retry if out.is_err() => return out,
                Outcome::Retry => continue,
                Outcome::Failed(why) => return Err(StoreError::Backend(why.into())),
            }
        }
    }

    /// Joins the group taking work (waiting behind a commit in progress),
    /// runs `work` in it, and commits it when this member is its last;
    /// returns the group and `work`'s result.
    fn join_and_run<T>(
        &self,
        work: &mut impl FnMut(&WriteTransaction, &mut Vec<Change>) -> Result<T, StoreError>,
    ) -> Result<(u64, Result<T, StoreError>), StoreError> {
        let mut state = self.groups.lock();
        loop {
            match &mut state.phase {
                Phase::Idle => {
                    let txn = Box::new(self.begin()?);
                    state.phase = Phase::Open {
                        txn,
                        expected: 1,
                        ran: 0,
                        failed: false,
                    };
                    break;
                }
                Phase::Open { expected, .. } => {
                    *expected += 1;
                    break;
                }
                Phase::Committing { waiting } => {
                    *waiting += 1;
                    let behind = state.group;
                    while state.ended.0 < behind {
                        state = self
                            .groups
                            .ended
                            .wait(state)
                            .unwrap_or_else(|e| e.into_inner());
                    }
                    // The committer opened the next group for the waiting.
                    if matches!(state.phase, Phase::Open { .. }) {
                        break;
                    }
                }
            }
        }
        let group = state.group;
        let current = &mut *state;
        let Phase::Open {
            txn,
            expected,
            ran,
            failed,
        } = &mut current.phase
        else {
            return Err(StoreError::Backend(
                "a write group lost its transaction".into(),
            ));
        };
        let out = work(txn, &mut current.changes);
        *failed |= out.is_err();
        *ran += 1;
        if *ran == *expected {
            // The last member commits, without the lock while it syncs:
            // writers arriving meanwhile see Committing and queue.
            let phase = std::mem::replace(&mut current.phase, Phase::Committing { waiting: 0 });
            let changes = std::mem::take(&mut current.changes);
            drop(state);
            self.end_group(phase, changes);
        }
        Ok((group, out))
    }

    /// A durable write transaction.
    fn begin(&self) -> Result<WriteTransaction, StoreError> {
        let mut txn = self.db.begin_write().map_err(backend)?;
        txn.set_durability(Durability::Immediate).map_err(backend)?;
        Ok(txn)
    }

    /// Commits the group whose phase was `phase` (or drops it when a
    /// member failed), applies its changes, tells its members, and opens
    /// the next group for the writers that queued meanwhile.
    fn end_group(&self, phase: Phase, changes: Vec<Change>) {
        let outcome = match phase {
            Phase::Open { failed: true, .. } => Outcome::Retry,
            Phase::Open { txn, .. } => match (*txn).commit() {
                Ok(()) => {
                    self.groups.commits.fetch_add(1, Ordering::Relaxed);
                    self.cache.apply(changes);
                    Outcome::Committed
                }
                Err(e) => Outcome::Failed(format!("committing the token store: {e}")),
            },
            Phase::Idle | Phase::Committing { .. } => {
                Outcome::Failed("a write group ended that was not open".into())
            }
        };
        let mut state = self.groups.lock();
        let group = state.group;
        state.ended = (group, outcome);
        state.group += 1;
        state.phase = match std::mem::replace(&mut state.phase, Phase::Idle) {
            Phase::Committing { waiting } if waiting > 0 => match self.begin() {
                Ok(txn) => Phase::Open {
                    txn: Box::new(txn),
                    expected: waiting,
                    ran: 0,
                    failed: false,
                },
                // The waiting start again from Idle, and meet the error.
                Err(_) => Phase::Idle,
            },
            _ => Phase::Idle,
        };
        self.groups.ended.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use redb::TableDefinition;
    use secrecy::{ExposeSecret, SecretString};

    use super::*;
    use crate::store::{Cas, TokenKey, Tokens};

    const SCRATCH: TableDefinition<&str, &[u8]> = TableDefinition::new("scratch");

    fn key(id: usize) -> TokenKey {
        TokenKey {
            upstream: "http://127.0.0.1:9".into(),
            namespace: "default".into(),
            client_id: format!("c{id}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_commits_and_every_one_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let store = FileStore::open(&path, None).unwrap();
        let writers = 64;
        let start = Arc::new(tokio::sync::Barrier::new(writers));
        let writes: Vec<_> = (0..writers)
            .map(|i| {
                let (store, start) = (store.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    let token = SecretString::from(format!("rat-{i}"));
                    store.compare_and_set(&key(i), None, &token, "").await
                })
            })
            .collect();
        for write in writes {
            assert!(matches!(write.await.unwrap(), Ok(Cas::Stored(1))));
        }
        let commits = store.groups.commits.load(Ordering::Relaxed);
        assert!(
            commits < writers as u64,
            "{commits} commits for {writers} writes"
        );
        drop(store);
        let reopened = FileStore::open(&path, None).unwrap();
        for i in 0..writers {
            let stored = reopened.get(&key(i)).await.unwrap().unwrap();
            assert_eq!(stored.token.expose_secret(), format!("rat-{i}"));
        }
    }

    #[test]
    fn a_failed_write_leaves_nothing_and_fails_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(&dir.path().join("t.redb"), None).unwrap();
        let start = Arc::new(Barrier::new(8));
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let (store, start) = (store.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    store.write_grouped(|txn, _| {
                        let name = format!("k{i}");
                        let mut table = txn.open_table(SCRATCH).map_err(backend)?;
                        table
                            .insert(name.as_str(), [1u8].as_slice())
                            .map_err(backend)?;
                        match i % 2 {
                            0 => Err(StoreError::Backend("planted failure".into())),
                            _ => Ok(i),
                        }
                    })
                })
            })
            .collect();
        for (i, writer) in writers.into_iter().enumerate() {
            let out = writer.join().unwrap();
            assert_eq!(out.is_ok(), i % 2 == 1, "writer {i}: {:?}", out.err());
        }
        let txn = redb::ReadableDatabase::begin_read(&*store.db).unwrap();
        let table = txn.open_table(SCRATCH).unwrap();
        for i in 0..8 {
            let held = table.get(format!("k{i}").as_str()).unwrap().is_some();
            assert_eq!(
                held,
                i % 2 == 1,
                "k{i}: a failed write's half stayed, or a good one went"
            );
        }
    }
}
