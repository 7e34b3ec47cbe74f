//! An in-process token store: fast, bounded, and gone when the process exits.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use super::{StoreError, StoredToken, TokenKey, TokenStore};

/// Default capacity of a [`MemoryStore`]: far more clients than one sidecar
/// manages, small enough that a runaway caller cannot exhaust memory.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// A bounded in-memory [`TokenStore`].
///
/// When full, storing a token for a new client fails (existing clients can still
/// be updated): the caller still gets the token in its reply, and the failure is
/// logged, rather than an older client's token being silently evicted.
#[derive(Debug)]
pub struct MemoryStore {
    entries: Mutex<HashMap<TokenKey, StoredToken>>,
    max_entries: usize,
}

impl MemoryStore {
    /// An empty store holding at most `max_entries` tokens.
    pub fn new(max_entries: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            max_entries,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenKey, StoredToken>> {
        // A panic while holding this lock cannot leave the map half-written (every
        // critical section is a single map call), so a poisoned lock is safe to use.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_ENTRIES)
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn get(&self, key: &TokenKey) -> Result<Option<StoredToken>, StoreError> {
        Ok(self.lock().get(key).cloned())
    }

    async fn put(&self, key: &TokenKey, value: StoredToken) -> Result<(), StoreError> {
        let mut map = self.lock();
        if map.len() >= self.max_entries && !map.contains_key(key) {
            return Err(StoreError::Full(self.max_entries));
        }
        map.insert(key.clone(), value);
        Ok(())
    }

    async fn remove_if(&self, key: &TokenKey, token: &SecretString) -> Result<bool, StoreError> {
        let mut map = self.lock();
        let same = map
            .get(key)
            .is_some_and(|t| t.token.expose_secret() == token.expose_secret());
        if same {
            map.remove(key);
        }
        Ok(same)
    }

    async fn remove(&self, key: &TokenKey) -> Result<(), StoreError> {
        self.lock().remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> TokenKey {
        TokenKey {
            client_id: id.into(),
        }
    }

    fn tok(t: &str) -> StoredToken {
        StoredToken {
            token: SecretString::from(t),
            registration_client_uri: String::new(),
        }
    }

    #[tokio::test]
    async fn remove_if_only_removes_the_token_it_saw() {
        let store = MemoryStore::default();
        store.put(&key("a"), tok("new")).await.unwrap();
        assert!(
            !store
                .remove_if(&key("a"), &SecretString::from("old"))
                .await
                .unwrap()
        );
        assert!(store.get(&key("a")).await.unwrap().is_some());
        assert!(
            store
                .remove_if(&key("a"), &SecretString::from("new"))
                .await
                .unwrap()
        );
        assert!(store.get(&key("a")).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn full_store_refuses_new_clients_but_updates_known_ones() {
        let store = MemoryStore::new(1);
        store.put(&key("a"), tok("1")).await.unwrap();
        assert_eq!(
            store.put(&key("b"), tok("2")).await,
            Err(StoreError::Full(1))
        );
        store.put(&key("a"), tok("3")).await.unwrap();
        let held = store.get(&key("a")).await.unwrap().unwrap();
        assert_eq!(held.token.expose_secret(), "3");
    }
}
