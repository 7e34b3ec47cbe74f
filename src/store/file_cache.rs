//! The file store's tokens in memory. The process that holds the redb file
//! is its only writer (redb locks it), so a copy loaded at open and changed
//! only after each durable commit answers every read without touching the
//! file. Writes stay written through: nothing is in the copy that is not on
//! disk, fsynced, first.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use secrecy::SecretString;

use super::memory::Entry;
use super::record::parse_key;
use super::{StoreError, StoredToken, TokenKey};

/// What the copy holds for a key: the token, or why it cannot be read (a
/// value the keyring cannot open stays an error, as reading the file would).
enum Cached {
    Token(Entry),
    Unreadable(String),
}

/// A committed change, applied to the copy after its commit.
pub(super) enum Change {
    /// A token was written at `generation`.
    Put {
        key: String,
        token: SecretString,
        uri: String,
        learned_at: u64,
        generation: u64,
    },
    /// The entry was removed.
    Remove(String),
}

/// A new copy, filled entry by entry as the file is read, so that no list of
/// every decoded entry is held beside it (at 100,000 tokens that list was
/// as large as the copy).
pub(super) struct Fill(HashMap<Box<str>, Cached>);

impl Fill {
    /// An empty copy with room for `entries`.
    pub(super) fn with_capacity(entries: usize) -> Self {
        Self(HashMap::with_capacity(entries))
    }

    /// Adds `key` (the stored key bytes) with its decoded value, or why it
    /// cannot be decoded; a key that does not parse is not a token's.
    pub(super) fn add(&mut self, key: &str, value: Result<StoredToken, StoreError>) {
        let Some(token_key) = parse_key(key) else {
            return;
        };
        let cached = match value {
            Ok(t) => Cached::Token(Entry::new(
                &token_key,
                t.token,
                &t.registration_client_uri,
                t.learned_at,
                t.generation,
            )),
            Err(e) => Cached::Unreadable(e.to_string()),
        };
        self.0.insert(key.into(), cached);
    }
}

/// The copy. Writes reach it in commit order: the write groups
/// (`file_group.rs`) apply each group's changes before the next commits.
#[derive(Default)]
pub(super) struct TokenCache {
    map: Mutex<HashMap<Box<str>, Cached>>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a map operation; a poisoned map is intact.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TokenCache {
    /// Replaces the copy with `fill`, built from every key in the file.
    pub(super) fn replace(&self, fill: Fill) {
        *locked(&self.map) = fill.0;
    }

    /// The token of `key`, as the file holds it.
    pub(super) fn get(
        &self,
        key: &TokenKey,
        key_bytes: &str,
    ) -> Result<Option<StoredToken>, StoreError> {
        match locked(&self.map).get(key_bytes) {
            Some(Cached::Token(entry)) => Ok(Some(entry.stored(key))),
            Some(Cached::Unreadable(why)) => Err(StoreError::Unreadable(why.clone())),
            None => Ok(None),
        }
    }

    /// Applies committed changes.
    pub(super) fn apply(&self, changes: Vec<Change>) {
        let mut map = locked(&self.map);
        for change in changes {
            match change {
                Change::Put {
                    key,
                    token,
                    uri,
                    learned_at,
                    generation,
                } => {
                    if let Some(token_key) = parse_key(&key) {
                        let entry = Entry::new(&token_key, token, &uri, learned_at, generation);
                        map.insert(key.into_boxed_str(), Cached::Token(entry));
                    }
                }
                Change::Remove(key) => {
                    map.remove(key.as_str());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use secrecy::{ExposeSecret, SecretString};

    use crate::store::{Cas, FileStore, ImportEntry, Keyring, Sealing, TokenKey, Tokens};

    fn key(id: &str) -> TokenKey {
        TokenKey {
            upstream: "https://as.example/".into(),
            namespace: "default".into(),
            client_id: id.into(),
        }
    }

    fn tok(t: &str) -> SecretString {
        SecretString::from(t.to_owned())
    }

    async fn token(store: &FileStore, id: &str) -> Option<(String, u64)> {
        let t = store.get(&key(id)).await.unwrap()?;
        Some((t.token.expose_secret().to_owned(), t.generation))
    }

    #[tokio::test]
    async fn reads_follow_every_committed_write_and_a_reopen_agrees() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let store = FileStore::open(&path, None).unwrap();
        let uri = "https://as.example/oauth/register/c1";
        assert_eq!(
            store
                .compare_and_set(&key("c1"), None, &tok("t1"), uri)
                .await
                .unwrap(),
            Cas::Stored(1)
        );
        assert_eq!(token(&store, "c1").await, Some(("t1".into(), 1)));
        store
            .compare_and_set(&key("c1"), Some(1), &tok("t2"), uri)
            .await
            .unwrap();
        assert_eq!(
            store
                .compare_and_set(&key("c1"), Some(1), &tok("stale"), uri)
                .await
                .unwrap(),
            Cas::Conflict
        );
        assert_eq!(token(&store, "c1").await, Some(("t2".into(), 2)));
        assert_eq!(
            store
                .get(&key("c1"))
                .await
                .unwrap()
                .unwrap()
                .registration_client_uri,
            uri
        );
        assert!(store.compare_and_delete(&key("c1"), 2).await.unwrap());
        assert_eq!(token(&store, "c1").await, None);
        let entry = ImportEntry {
            key: key("c2"),
            token: tok("t3"),
            registration_client_uri: "https://elsewhere.example/c2".into(),
        };
        store.import(vec![entry], false).await.unwrap();
        store
            .compare_and_set(&key("c4"), None, &tok("t4"), uri)
            .await
            .unwrap();
        assert!(store.delete(&key("c4")).await.unwrap());
        drop(store);

        let reopened = FileStore::open(&path, None).unwrap();
        assert_eq!(token(&reopened, "c1").await, None);
        assert_eq!(token(&reopened, "c2").await, Some(("t3".into(), 1)));
        assert_eq!(token(&reopened, "c4").await, None);
        assert_eq!(
            reopened
                .get(&key("c2"))
                .await
                .unwrap()
                .unwrap()
                .registration_client_uri,
            "https://elsewhere.example/c2"
        );
    }

    #[tokio::test]
    async fn a_value_the_keyring_cannot_open_stays_an_error_until_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let plain = FileStore::open(&path, None).unwrap();
        plain
            .compare_and_set(&key("c1"), None, &tok("t1"), "u")
            .await
            .unwrap();
        drop(plain);
        let ring = Keyring::parse(&tok("k1=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")).unwrap();
        let sealed = FileStore::open(&path, Some(Arc::new(ring))).unwrap();
        assert!(
            sealed.get(&key("c1")).await.is_err(),
            "a plaintext value under a keyring"
        );
        assert_eq!(sealed.seal_plaintext().await.unwrap(), 1);
        assert_eq!(token(&sealed, "c1").await, Some(("t1".into(), 1)));
    }
}
