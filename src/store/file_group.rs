//! Durable writes in groups, on one writer thread: one commit (and one
//! fsync) for every write that arrived while the previous commit was
//! syncing.
//!
//! redb runs one write transaction at a time, and each durable commit
//! waits for its fsync; writers one after another would each pay a whole
//! commit. Here every write is a job sent to the store's writer thread,
//! which takes all the jobs queued when it is free, runs their work in
//! arrival order in one transaction, commits it, and answers each. A
//! caller awaits its answer: no call holds a runtime or a blocking thread
//! while a commit syncs, and a group costs the runtime one wake-up, not
//! one per write. Nobody is answered before the commit that holds its
//! write is durable, so what a caller is told is on disk is on disk.
//!
//! A write that fails (an I/O error, an unreadable value) may leave its
//! half in the shared transaction, so the group's transaction is aborted,
//! the failed ones get their errors, and the others run their work again
//! in a new transaction: work is `FnMut` for that reason.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use redb::{Database, Durability, WriteTransaction};
use tokio::sync::oneshot;

use super::StoreError;
use super::file_cache::{Change, TokenCache};
use crate::dcr::Cause;

/// A redb failure as a store error, keeping its cause (every file-store
/// module reports its failures so).
pub(super) fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Cause::from_error(e))
}

/// One write waiting for the writer thread.
trait Job: Send {
    /// Runs the work in `txn`, noting its changes to the in-memory copy;
    /// false when it failed.
    fn run(&mut self, txn: &WriteTransaction, changes: &mut Vec<Change>) -> bool;
    /// Answers the caller: the work's own result, or `failure` when the
    /// transaction holding it was not committed.
    fn answer(self: Box<Self>, failure: Option<StoreError>);
}

/// A write's work, its last result and where the answer goes.
struct Pending<T, W> {
    work: W,
    out: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, W> Job for Pending<T, W>
where
    T: Send,
    W: FnMut(&WriteTransaction, &mut Vec<Change>) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, txn: &WriteTransaction, changes: &mut Vec<Change>) -> bool {
        let out = (self.work)(txn, changes);
        let ran = out.is_ok();
        self.out = Some(out);
        ran
    }

    fn answer(self: Box<Self>, failure: Option<StoreError>) {
        let out = match (failure, self.out) {
            (Some(e), _) => Err(e),
            (None, Some(out)) => out,
            (None, None) => Err(StoreError::Backend(
                "a write was answered before its work ran".into(),
            )),
        };
        // A caller that left still had its write committed (or not) in order.
        let _ = self.reply.send(out);
    }
}

/// The writer thread of one database, and the queue to it.
pub(super) struct Groups {
    /// `None` once dropped, which stops the writer after the queued jobs.
    queue: Option<Sender<Box<dyn Job>>>,
    writer: Option<JoinHandle<()>>,
    /// Transactions committed so far (the tests see writes share them).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) commits: Arc<AtomicU64>,
}

impl Groups {
    /// Starts the writer of `db`, whose committed changes reach `cache`.
    pub(super) fn start(db: Arc<Database>, cache: Arc<TokenCache>) -> Result<Self, StoreError> {
        let (queue, jobs) = channel();
        let commits = Arc::<AtomicU64>::default();
        let writer = Writer {
            db,
            cache,
            commits: commits.clone(),
        };
        let writer = std::thread::Builder::new()
            .name("dcr-store-writer".into())
            .spawn(move || writer.serve(jobs))
            .map_err(|e| StoreError::Backend(Cause::of("starting the token store's writer", e)))?;
        Ok(Self {
            queue: Some(queue),
            writer: Some(writer),
            commits,
        })
    }

    /// Runs `work` in a durable write transaction shared with the writes
    /// queued with it; returns once that transaction is committed (or
    /// failed). The changes `work` notes reach the in-memory copy after the
    /// commit, in the order the work ran.
    pub(super) async fn write<T, W>(&self, work: W) -> Result<T, StoreError>
    where
        T: Send + 'static,
        W: FnMut(&WriteTransaction, &mut Vec<Change>) -> Result<T, StoreError> + Send + 'static,
    {
        let stopped = || StoreError::Backend("the token store's writer stopped".into());
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            work,
            out: None,
            reply,
        });
        self.queue
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for Groups {
    /// Stops the writer once it has answered every queued write, and waits
    /// for it: the database file is closed when the store is, so it can be
    /// opened again at once.
    fn drop(&mut self) {
        self.queue = None;
        if let Some(writer) = self.writer.take() {
            // The writer holds no store, so it never drops the last one;
            // checked all the same, as joining itself would never return.
            if writer.thread().id() != std::thread::current().id() {
                let _ = writer.join();
            }
        }
    }
}

/// What the writer thread owns.
struct Writer {
    db: Arc<Database>,
    cache: Arc<TokenCache>,
    commits: Arc<AtomicU64>,
}

impl Writer {
    /// Commits every job queued when free, in groups, until the store is dropped.
    fn serve(self, jobs: Receiver<Box<dyn Job>>) {
        while let Ok(first) = jobs.recv() {
            let mut group = vec![first];
            group.extend(jobs.try_iter());
            self.commit(group);
        }
    }

    /// Runs the group's work in one transaction and commits it; members
    /// whose work failed get their errors, and the rest run again.
    fn commit(&self, mut group: Vec<Box<dyn Job>>) {
        while !group.is_empty() {
            let txn = match self.begin() {
                Ok(txn) => txn,
                Err(e) => {
                    let why = e.to_string();
                    for job in group {
                        job.answer(Some(StoreError::Backend(why.clone().into())));
                    }
                    return;
                }
            };
            let mut changes = Vec::new();
            let ran: Vec<bool> = group
                .iter_mut()
                .map(|job| job.run(&txn, &mut changes))
                .collect();
            if ran.iter().all(|ran| *ran) {
                let failure = match txn.commit() {
                    Ok(()) => {
                        self.commits.fetch_add(1, Ordering::Relaxed);
                        self.cache.apply(changes);
                        None
                    }
                    Err(e) => Some(format!("committing the token store: {e}")),
                };
                for job in group {
                    job.answer(failure.clone().map(|why| StoreError::Backend(why.into())));
                }
                return;
            }
            // Nothing of a group with a failed member is kept.
            let _ = txn.abort();
            let mut rest = Vec::with_capacity(group.len());
            for (job, ran) in group.into_iter().zip(ran) {
                match ran {
                    true => rest.push(job),
                    false => job.answer(None),
                }
            }
            group = rest;
        }
    }

    /// A durable write transaction.
    fn begin(&self) -> Result<WriteTransaction, StoreError> {
        let mut txn = self.db.begin_write().map_err(backend)?;
        txn.set_durability(Durability::Immediate).map_err(backend)?;
        Ok(txn)
    }
}
