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
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use redb::{Database, Durability, WriteTransaction};

use super::StoreError;
use super::file_cache::{Change, TokenCache};
use crate::dcr::Cause;

/// A redb failure as a store error, keeping its cause (every file-store
/// module reports its failures so).
pub(super) fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Cause::from_error(e))
}

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

/// The write groups of one database, and the in-memory copy each group's
/// changes reach once it is committed.
pub(super) struct Groups {
    db: Arc<Database>,
    cache: Arc<TokenCache>,
    state: Mutex<State>,
    ended: Condvar,
    /// Transactions committed so far.
    pub(super) commits: AtomicU64,
}

impl Groups {
    /// The groups of `db`, whose committed changes reach `cache`.
    pub(super) fn new(db: Arc<Database>, cache: Arc<TokenCache>) -> Self {
        Self {
            db,
            cache,
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

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits, holding `state` between wakes, until group `group` ended.
    fn wait_ended<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        group: u64,
    ) -> MutexGuard<'a, State> {
        while state.ended.0 < group {
            state = self.ended.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state
    }

    /// Runs `work` in a durable write transaction shared with the writes
    /// that queued with it; returns once that transaction is committed (or
    /// failed). The changes `work` notes reach the in-memory copy after the
    /// commit, in the order the work ran.
    pub(super) fn write<T>(
        &self,
        mut work: impl FnMut(&WriteTransaction, &mut Vec<Change>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        loop {
            let (group, out) = self.join_and_run(&mut work)?;
            let state = self.wait_ended(self.lock(), group);
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
        let mut state = self.lock();
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
                    state = self.wait_ended(state, behind);
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
                    self.commits.fetch_add(1, Ordering::Relaxed);
                    self.cache.apply(changes);
                    Outcome::Committed
                }
                Err(e) => Outcome::Failed(format!("committing the token store: {e}")),
            },
            Phase::Idle | Phase::Committing { .. } => {
                Outcome::Failed("a write group ended that was not open".into())
            }
        };
        let mut state = self.lock();
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
        self.ended.notify_all();
    }
}
