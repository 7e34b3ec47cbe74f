//! A table of async reader-writer locks by key: on one key, writers run one
//! at a time and readers share (never beside a writer); calls on different
//! keys never wait on each other; an entry lives only while a call holds or
//! waits for it. The client lock layer keys it by client, managed clients by
//! name.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

/// The lock table; clones share it.
pub struct KeyedLocks<K> {
    table: Arc<Mutex<HashMap<K, Arc<RwLock<()>>>>>,
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
    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<K, Arc<RwLock<()>>>> {
        // Every critical section is a single map operation; a poisoned table is intact.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for `key` alone. Dropping the future while it waits gives its
    /// place up and frees the entry as a release would.
    pub async fn acquire(&self, key: K) -> KeyedGuard<K> {
        let (lock, mut held) = self.entry(key);
        held.guard = Some(Held::Write {
            _guard: lock.write_owned().await,
        });
        held
    }

    /// Waits for `key` shared with other readers (not beside a writer).
    pub async fn acquire_shared(&self, key: K) -> KeyedGuard<K> {
        let (lock, mut held) = self.entry(key);
        held.guard = Some(Held::Read {
            _guard: lock.read_owned().await,
        });
        held
    }

    /// The entry's lock, and a guard constructed before the wait, so a
    /// cancelled wait still cleans up.
    fn entry(&self, key: K) -> (Arc<RwLock<()>>, KeyedGuard<K>) {
        let lock = self.table().entry(key.clone()).or_default().clone();
        let held = KeyedGuard {
            locks: self.clone(),
            key,
            guard: None,
        };
        (lock, held)
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
    guard: Option<Held>,
}

/// A read or a write hold; dropping it releases it.
enum Held {
    Read { _guard: OwnedRwLockReadGuard<()> },
    Write { _guard: OwnedRwLockWriteGuard<()> },
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

    #[tokio::test(start_paused = true)]
    async fn readers_share_a_key_and_a_writer_has_it_alone() {
        let locks = KeyedLocks::default();
        let first = locks.acquire_shared(key("n", "c1")).await;
        let wait = std::time::Duration::from_millis(50);
        let second = tokio::time::timeout(wait, locks.acquire_shared(key("n", "c1"))).await;
        assert!(second.is_ok(), "two readers share");
        let writer = tokio::time::timeout(wait, locks.acquire(key("n", "c1"))).await;
        assert!(writer.is_err(), "a writer waits for the readers");
        drop((first, second));
        let writer = locks.acquire(key("n", "c1")).await;
        let reader = tokio::time::timeout(wait, locks.acquire_shared(key("n", "c1"))).await;
        assert!(reader.is_err(), "a reader waits for the writer");
        drop(writer);
        assert_eq!(locks.len(), 0, "freed when idle");
    }
}
