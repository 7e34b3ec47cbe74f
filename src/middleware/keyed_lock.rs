//! A table of async locks by key: calls on one key run one at a time, calls
//! on different keys never wait on each other, and an entry lives only while
//! a call holds or waits for it. The client lock layer keys it by client,
//! managed clients by name.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// The lock table; clones share it.
pub struct KeyedLocks<K> {
    table: Arc<Mutex<HashMap<K, Arc<AsyncMutex<()>>>>>,
}

impl<K> Clone for KeyedLocks<K> {
    fn clone(&self) -> Self {
        Self {
            table: self.table.clone(),
        }
    }
}

impl<K> Default for KeyedLocks<K> {
    fn default() -> Self {
        Self {
            table: Arc::default(),
        }
    }
}

impl<K: Clone + Eq + Hash> KeyedLocks<K> {
    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<K, Arc<AsyncMutex<()>>>> {
        // Every critical section is a single map operation; a poisoned table is intact.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for `key`'s lock. Dropping the future while it waits gives its
    /// place up and frees the entry as a release would.
    pub async fn acquire(&self, key: K) -> KeyedGuard<K> {
        let mutex = self.table().entry(key.clone()).or_default().clone();
        // Constructed before the wait, so a cancelled wait still cleans up.
        let mut held = KeyedGuard {
            locks: self.clone(),
            key,
            guard: None,
        };
        held.guard = Some(mutex.lock_owned().await);
        held
    }

    /// How many keys have an entry (held or waited for).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.table().len()
    }
}

/// A held lock; on drop, releases it and removes the entry if nobody else holds
/// or waits for it. Clones of the entry are only made under the table lock, so
/// the count check cannot race.
pub struct KeyedGuard<K: Clone + Eq + Hash> {
    locks: KeyedLocks<K>,
    key: K,
    guard: Option<OwnedMutexGuard<()>>,
}

impl<K: Clone + Eq + Hash> Drop for KeyedGuard<K> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut table = self.locks.table();
        if table
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            table.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TokenKey;

    fn key(namespace: &str, client_id: &str) -> TokenKey {
        TokenKey {
            upstream: "http://127.0.0.1:9".into(),
            namespace: namespace.into(),
            client_id: client_id.into(),
        }
    }

    #[tokio::test]
    async fn entries_are_freed_when_idle_even_after_a_cancelled_wait() {
        let locks = KeyedLocks::default();
        let first = locks.acquire(key("n", "a")).await;
        let waiter = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.acquire(key("n", "a")).await })
        };
        tokio::task::yield_now().await;
        waiter.abort();
        let _ = waiter.await;
        let other = locks.acquire(key("n", "b")).await;
        assert_eq!(locks.len(), 2);
        drop(first);
        drop(other);
        assert_eq!(locks.len(), 0);
    }

    #[tokio::test]
    async fn another_namespace_never_waits_on_the_same_client_id() {
        let locks = KeyedLocks::default();
        let _flood = locks.acquire(key("mallory", "c1")).await;
        let owner = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            locks.acquire(key("owner", "c1")),
        )
        .await;
        assert!(
            owner.is_ok(),
            "the owner's call queued behind another caller's lock"
        );
        let same = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            locks.acquire(key("mallory", "c1")),
        )
        .await;
        assert!(
            same.is_err(),
            "one caller's calls on one client must serialise"
        );
    }
}
