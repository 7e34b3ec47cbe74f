//! What this process knows of its managed clients beyond their records: when
//! an ensure last found a client as it should be (kept here, not written to
//! the store, so that a reconcile that changes nothing writes nothing), how
//! each declared client's credentials file is doing, and whether the
//! credentials folder is safe. ListClients and the metrics read it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::watch;

use crate::store::ManagedKey;

/// How a declared client's credentials file is doing on this replica.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileState {
    /// Why the last delivery failed; `None` after a success.
    pub error: Option<String>,
    /// When the file's content last changed (Unix seconds); 0: never written.
    pub changed_at: u64,
}

#[derive(Default)]
struct Inner {
    verified: HashMap<ManagedKey, u64>,
    files: HashMap<ManagedKey, FileState>,
    folder_warning: Option<String>,
}

/// The board; every critical section is a single map operation. Beside it,
/// how many credentials files cannot be delivered, for readiness to follow.
pub struct Board {
    inner: Mutex<Inner>,
    failing: watch::Sender<usize>,
}

impl Default for Board {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            failing: watch::channel(0).0,
        }
    }
}

impl Board {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes how many files are failing in `inner`.
    fn count_failing(&self, inner: &Inner) {
        let n = inner.files.values().filter(|f| f.error.is_some()).count();
        self.failing
            .send_if_modified(|held| std::mem::replace(held, n) != n);
    }

    /// Follows how many credentials files cannot be delivered now.
    pub fn failing(&self) -> watch::Receiver<usize> {
        self.failing.subscribe()
    }

    /// `key` was found as it should be at `at`.
    pub fn verified(&self, key: &ManagedKey, at: u64) {
        self.lock().verified.insert(key.clone(), at);
    }

    /// When `key` was last found as it should be by this process, if ever.
    pub fn verified_at(&self, key: &ManagedKey) -> Option<u64> {
        self.lock().verified.get(key).copied()
    }

    /// Sets how `key`'s credentials file is doing.
    pub fn set_file(&self, key: &ManagedKey, state: FileState) {
        let mut inner = self.lock();
        inner.files.insert(key.clone(), state);
        self.count_failing(&inner);
    }

    /// How `key`'s credentials file is doing, when this process writes one.
    pub fn file(&self, key: &ManagedKey) -> Option<FileState> {
        self.lock().files.get(key).cloned()
    }

    /// How many credentials files this process cannot deliver now.
    pub fn failing_files(&self) -> usize {
        *self.failing.borrow()
    }

    /// Forgets `key` (no longer managed here).
    pub fn forget(&self, key: &ManagedKey) {
        let mut inner = self.lock();
        inner.verified.remove(key);
        inner.files.remove(key);
        self.count_failing(&inner);
    }

    /// Sets why the credentials folder is unsafe, if it is.
    pub fn set_folder_warning(&self, warning: Option<String>) {
        self.lock().folder_warning = warning;
    }

    /// Why the credentials folder is unsafe, if it is.
    pub fn folder_warning(&self) -> Option<String> {
        self.lock().folder_warning.clone()
    }
}
