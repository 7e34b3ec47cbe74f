//! An in-process token store: fast, bounded, and gone when the process exits.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use secrecy::SecretString;

use super::record::{
    client_index_key, key_bytes, parse_key, parse_record_key, record_key_bytes, record_prefix,
};
use super::{
    Cas, ManagedKey, Records, StoreError, StoredRecord, StoredToken, TokenKey, Tokens, unix_now,
};

/// Default capacity of a [`MemoryStore`]: far more clients than one sidecar
/// manages, small enough that a runaway caller cannot exhaust memory.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// Bounded in-memory tokens and records ([`super::Tokens`], [`super::Records`]).
///
/// When full, storing a token for a new client fails (existing clients can still
/// be updated): the caller still gets the token in its reply, and the failure is
/// logged, rather than an older client's token being silently evicted.
///
/// Entries are laid out small, since with many clients they are most of the
/// sidecar's memory: the key is one string (`upstream US namespace US
/// client_id`, as the durable backends store it), and the usual
/// `registration_client_uri`, SharkAuth's `<upstream>/oauth/register/<id>`, is
/// not stored but rebuilt.
#[derive(Debug)]
pub struct MemoryStore {
    entries: Mutex<HashMap<Box<str>, Entry>>,
    /// Managed client records, and the index of their clients.
    records: Mutex<RecordMap>,
    max_entries: usize,
}

/// The managed client records: by store key, (generation, record, client
/// id); and by client index key, the names that hold that client.
#[derive(Debug, Default)]
struct RecordMap {
    by_key: HashMap<Box<str>, (u64, SecretString, Box<str>)>,
    by_client: HashMap<Box<str>, BTreeSet<Box<str>>>,
}

impl RecordMap {
    /// Moves `key`'s index entry from the client it held (if any) to
    /// `client_id` (if any).
    fn reindex(&mut self, key: &ManagedKey, old: Option<&str>, new: Option<&str>) {
        if old == new {
            return;
        }
        if let Some(old) = old {
            let index = client_index_key(&key.upstream, &key.namespace, old);
            if let Some(names) = self.by_client.get_mut(index.as_str()) {
                names.remove(key.name.as_str());
                if names.is_empty() {
                    self.by_client.remove(index.as_str());
                }
            }
        }
        if let Some(new) = new {
            let index = client_index_key(&key.upstream, &key.namespace, new);
            self.by_client
                .entry(index.into_boxed_str())
                .or_default()
                .insert(key.name.as_str().into());
        }
    }
}

/// One stored token, laid out small (also the file store's cached copy).
#[derive(Debug)]
pub(super) struct Entry {
    token: SecretString,
    /// `None`: the conventional URI for the key.
    uri: Option<Box<str>>,
    learned_at: u64,
    generation: u64,
}

/// SharkAuth's client path under the upstream base URL.
const CONVENTIONAL_PATH: &str = "/oauth/register/";

/// The key's upstream without a trailing `/`: the gateway keys tokens by the
/// trimmed base URL, and an imported or older key may still carry one.
fn base(key: &TokenKey) -> &str {
    key.upstream.trim_end_matches('/')
}

fn is_conventional(key: &TokenKey, uri: &str) -> bool {
    uri.strip_prefix(base(key))
        .and_then(|rest| rest.strip_prefix(CONVENTIONAL_PATH))
        == Some(key.client_id.as_str())
}

impl Entry {
    /// An entry for `key`; a conventional `uri` is not kept but rebuilt.
    pub(super) fn new(
        key: &TokenKey,
        token: SecretString,
        uri: &str,
        learned_at: u64,
        generation: u64,
    ) -> Self {
        Self {
            token,
            uri: (!is_conventional(key, uri)).then(|| uri.into()),
            learned_at,
            generation,
        }
    }

    /// The token as the store hands it out.
    pub(super) fn stored(&self, key: &TokenKey) -> StoredToken {
        StoredToken {
            token: self.token.clone(),
            registration_client_uri: match &self.uri {
                Some(uri) => uri.to_string(),
                None => format!("{}{CONVENTIONAL_PATH}{}", base(key), key.client_id),
            },
            learned_at: self.learned_at,
            generation: self.generation,
        }
    }
}

impl MemoryStore {
    /// An empty store holding at most `max_entries` tokens.
    pub fn new(max_entries: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            records: Mutex::new(RecordMap::default()),
            max_entries,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Entry>> {
        // Every critical section is a single map operation, so a poisoned lock
        // still guards a consistent map.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn records(&self) -> std::sync::MutexGuard<'_, RecordMap> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_ENTRIES)
    }
}

#[async_trait]
impl Tokens for MemoryStore {
    async fn get(&self, key: &TokenKey) -> Result<Option<StoredToken>, StoreError> {
        Ok(self
            .lock()
            .get(key_bytes(key).as_str())
            .map(|e| e.stored(key)))
    }

    async fn compare_and_set(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        token: &SecretString,
        registration_client_uri: &str,
    ) -> Result<Cas, StoreError> {
        let k = key_bytes(key);
        let mut map = self.lock();
        let current = map.get(k.as_str()).map(|e| e.generation);
        if current != expected {
            return Ok(Cas::Conflict);
        }
        if current.is_none() && map.len() >= self.max_entries {
            return Err(StoreError::Full(self.max_entries));
        }
        let generation = current.unwrap_or(0) + 1;
        let entry = Entry::new(
            key,
            token.clone(),
            registration_client_uri,
            unix_now(),
            generation,
        );
        map.insert(k.into_boxed_str(), entry);
        Ok(Cas::Stored(generation))
    }

    async fn compare_and_delete(&self, key: &TokenKey, expected: u64) -> Result<bool, StoreError> {
        let k = key_bytes(key);
        let mut map = self.lock();
        let same = map
            .get(k.as_str())
            .is_some_and(|e| e.generation == expected);
        if same {
            map.remove(k.as_str());
        }
        Ok(same)
    }

    async fn delete(&self, key: &TokenKey) -> Result<bool, StoreError> {
        Ok(self.lock().remove(key_bytes(key).as_str()).is_some())
    }

    async fn list(&self, limit: Option<usize>) -> Result<Vec<(TokenKey, StoredToken)>, StoreError> {
        let map = self.lock();
        let all = map.iter().filter_map(|(k, e)| {
            let key = parse_key(k)?;
            let stored = e.stored(&key);
            Some((key, stored))
        });
        Ok(all.take(limit.unwrap_or(usize::MAX)).collect())
    }

    async fn check_room_for_token(&self) -> Result<(), StoreError> {
        match self.lock().len() < self.max_entries {
            true => Ok(()),
            false => Err(StoreError::Full(self.max_entries)),
        }
    }
}

#[async_trait]
impl Records for MemoryStore {
    async fn get_record(&self, key: &ManagedKey) -> Result<Option<StoredRecord>, StoreError> {
        Ok(self
            .records()
            .by_key
            .get(record_key_bytes(key).as_str())
            .map(|(generation, json, _)| StoredRecord {
                json: json.clone(),
                generation: *generation,
                client_id: None,
            }))
    }

    async fn put_record(
        &self,
        key: &ManagedKey,
        expected: Option<u64>,
        json: &SecretString,
        client_id: &str,
    ) -> Result<Cas, StoreError> {
        let k = record_key_bytes(key);
        let mut records = self.records();
        let current = records.by_key.get(k.as_str());
        if current.map(|(g, _, _)| *g) != expected {
            return Ok(Cas::Conflict);
        }
        if current.is_none() && records.by_key.len() >= self.max_entries {
            return Err(StoreError::Full(self.max_entries));
        }
        let generation = expected.unwrap_or(0) + 1;
        let old = current.map(|(_, _, c)| c.to_string());
        records.reindex(key, old.as_deref(), Some(client_id));
        records.by_key.insert(
            k.into_boxed_str(),
            (generation, json.clone(), client_id.into()),
        );
        Ok(Cas::Stored(generation))
    }

    async fn delete_record(&self, key: &ManagedKey, expected: u64) -> Result<bool, StoreError> {
        let k = record_key_bytes(key);
        let mut records = self.records();
        let held = match records.by_key.get(k.as_str()) {
            Some((g, _, client_id)) if *g == expected => client_id.to_string(),
            _ => return Ok(false),
        };
        records.by_key.remove(k.as_str());
        records.reindex(key, Some(&held), None);
        Ok(true)
    }

    async fn list_records(&self) -> Result<Vec<(ManagedKey, StoredRecord)>, StoreError> {
        Ok(self
            .records()
            .by_key
            .iter()
            .filter_map(|(k, (generation, json, client_id))| {
                let record = StoredRecord {
                    json: json.clone(),
                    generation: *generation,
                    client_id: Some(client_id.to_string()),
                };
                Some((parse_record_key(k)?, record))
            })
            .collect())
    }

    async fn records_of_client(
        &self,
        upstream: &str,
        namespace: &str,
        client_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let index = client_index_key(upstream, namespace, client_id);
        Ok(self
            .records()
            .by_client
            .get(index.as_str())
            .map(|names| names.iter().map(|n| n.to_string()).collect())
            .unwrap_or_default())
    }

    async fn record_names(
        &self,
        upstream: &str,
        namespace: &str,
    ) -> Result<Vec<String>, StoreError> {
        let prefix = record_prefix(upstream, namespace);
        let mut names: Vec<String> = self
            .records()
            .by_key
            .keys()
            .filter_map(|k| k.strip_prefix(prefix.as_str()).map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    async fn check_room_for_record(&self) -> Result<(), StoreError> {
        match self.records().by_key.len() < self.max_entries {
            true => Ok(()),
            false => Err(StoreError::Full(self.max_entries)),
        }
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

    #[test]
    fn a_conventional_uri_is_rebuilt_not_stored() {
        for upstream in ["http://127.0.0.1:8080", "https://as.example/"] {
            let key = TokenKey {
                upstream: upstream.into(),
                namespace: "n".into(),
                client_id: "shark_dcr_1".into(),
            };
            let uri = format!(
                "{}/oauth/register/shark_dcr_1",
                upstream.trim_end_matches('/')
            );
            let entry = Entry::new(&key, tok("t"), &uri, 1, 1);
            assert!(
                entry.uri.is_none(),
                "{upstream}: the conventional URI is kept"
            );
            assert_eq!(entry.stored(&key).registration_client_uri, uri);
            // Anything else is kept as it came.
            let other = format!("{uri}/x");
            let entry = Entry::new(&key, tok("t"), &other, 1, 1);
            assert_eq!(entry.stored(&key).registration_client_uri, other);
        }
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

    #[tokio::test]
    async fn conventional_and_other_client_uris_read_back_unchanged() {
        let store = MemoryStore::default();
        let key = TokenKey {
            upstream: "https://auth.example/".into(),
            namespace: "n".into(),
            client_id: "c1".into(),
        };
        for uri in [
            "https://auth.example/oauth/register/c1",
            "https://mgmt.example/clients/c1",
            "",
        ] {
            let generation = store.get(&key).await.unwrap().map(|t| t.generation);
            store
                .compare_and_set(&key, generation, &tok("t"), uri)
                .await
                .unwrap();
            let got = store.get(&key).await.unwrap().unwrap();
            assert_eq!(got.registration_client_uri, uri);
            let listed = store.list(None).await.unwrap();
            assert_eq!(listed[0].0, key);
            assert_eq!(listed[0].1.registration_client_uri, uri);
        }
    }
}
