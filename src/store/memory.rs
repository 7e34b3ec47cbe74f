//! An in-process token store: fast, bounded, and gone when the process exits.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use secrecy::SecretString;

use super::{Cas, StoreError, StoredToken, TokenKey, TokenStore, unix_now};

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
        // Every critical section is a single map operation, so a poisoned lock
        // still guards a consistent map.
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

    async fn compare_and_set(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        token: &SecretString,
        registration_client_uri: &str,
    ) -> Result<Cas, StoreError> {
        let mut map = self.lock();
        let current = map.get(key).map(|t| t.generation);
        if current != expected {
            return Ok(Cas::Conflict);
        }
        if current.is_none() && map.len() >= self.max_entries {
            return Err(StoreError::Full(self.max_entries));
        }
        let generation = current.unwrap_or(0) + 1;
        let value = StoredToken {
            token: token.clone(),
            registration_client_uri: registration_client_uri.to_owned(),
            learned_at: unix_now(),
            generation,
        };
        map.insert(key.clone(), value);
        Ok(Cas::Stored(generation))
    }

    async fn compare_and_delete(&self, key: &TokenKey, expected: u64) -> Result<bool, StoreError> {
        let mut map = self.lock();
        let same = map.get(key).is_some_and(|t| t.generation == expected);
        if same {
            map.remove(key);
        }
        Ok(same)
    }

    async fn delete(&self, key: &TokenKey) -> Result<bool, StoreError> {
        Ok(self.lock().remove(key).is_some())
    }

    async fn list(&self, limit: Option<usize>) -> Result<Vec<(TokenKey, StoredToken)>, StoreError> {
        let map = self.lock();
        let all = map.iter().map(|(k, v)| (k.clone(), v.clone()));
        Ok(all.take(limit.unwrap_or(usize::MAX)).collect())
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn key(id: &str) -> TokenKey {
        TokenKey {
            upstream: "u".into(),
            namespace: "n".into(),
            client_id: id.into(),
        }
    }

    fn tok(t: &str) -> SecretString {
        SecretString::from(t)
    }

    #[tokio::test]
    async fn compare_and_set_and_delete_follow_generations() {
        let store = MemoryStore::default();
        assert_eq!(
            store.compare_and_set(&key("a"), None, &tok("1"), "").await,
            Ok(Cas::Stored(1))
        );
        assert_eq!(
            store.compare_and_set(&key("a"), None, &tok("x"), "").await,
            Ok(Cas::Conflict)
        );
        assert_eq!(
            store
                .compare_and_set(&key("a"), Some(1), &tok("2"), "")
                .await,
            Ok(Cas::Stored(2))
        );
        assert_eq!(
            store
                .compare_and_set(&key("a"), Some(1), &tok("stale"), "")
                .await,
            Ok(Cas::Conflict)
        );
        assert!(
            !store.compare_and_delete(&key("a"), 1).await.unwrap(),
            "a stale delete is refused"
        );
        let held = store.get(&key("a")).await.unwrap().unwrap();
        assert_eq!((held.token.expose_secret(), held.generation), ("2", 2));
        assert!(store.compare_and_delete(&key("a"), 2).await.unwrap());
        assert!(store.get(&key("a")).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn full_store_refuses_new_clients_but_updates_known_ones() {
        let store = MemoryStore::new(1);
        store
            .compare_and_set(&key("a"), None, &tok("1"), "")
            .await
            .unwrap();
        assert_eq!(
            store.compare_and_set(&key("b"), None, &tok("2"), "").await,
            Err(StoreError::Full(1))
        );
        assert_eq!(
            store
                .compare_and_set(&key("a"), Some(1), &tok("3"), "")
                .await,
            Ok(Cas::Stored(2))
        );
    }
}
