//! The embedded-file backend: one redb database file. Every write commits with
//! `Durability::Immediate` (fsync) before it returns, so a token the gateway
//! has answered with survives `kill -9` and power loss; redb's copy-on-write
//! commits keep the file consistent whenever the process dies.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use secrecy::SecretString;

use super::cipher::Keyring;
use super::codec::{Space, open_token, reseal_plain, seal_token};
use super::file_cache::{Change, Fill, TokenCache};
use super::file_group::{Groups, backend};
use super::record::{key_bytes, parse_key};
use super::{Cas, ImportEntry, Sealing, StoreError, StoredToken, TokenKey, Tokens, unix_now};
use crate::dcr::Cause;

/// Store key → generation (8 bytes, big-endian) followed by the sealed value.
const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
/// Managed client records, laid out the same way (`file_records.rs`).
pub(super) const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("managed_clients");
/// Record key → the client id its record holds.
pub(super) const RECORD_CLIENTS: TableDefinition<&str, &str> =
    TableDefinition::new("managed_client_ids");
/// Client index key, separator, name → nothing: the records of each client.
pub(super) const CLIENT_RECORDS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("managed_clients_by_client");

/// A stored value's generation and its sealed part.
pub(super) fn split_generation(raw: &[u8]) -> Result<(u64, &[u8]), StoreError> {
    if raw.len() < 8 {
        return Err(StoreError::Unreadable("value too short".into()));
    }
    let (generation, sealed) = raw.split_at(8);
    Ok((
        u64::from_be_bytes(generation.try_into().unwrap_or_default()),
        sealed,
    ))
}

/// The generation of `key`'s value in `table`, `None` when it has none; a
/// value too short to hold one is an error, not an absent value a write
/// could then replace.
pub(super) fn generation(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<u64>, StoreError> {
    let raw = table.get(key).map_err(backend)?;
    raw.map(|v| split_generation(v.value()).map(|(generation, _)| generation))
        .transpose()
}

/// redb's page cache. Reads are answered from the in-memory copy, so the
/// cache only serves a write's walk down the tree and the few reads of
/// managed-client records; redb's default (1 GiB) kept every page the fill
/// at open read, a second copy of the whole file in memory.
const PAGE_CACHE_BYTES: usize = 4 << 20;

/// Tokens and records in a redb file ([`super::Tokens`], [`super::Records`], [`super::Sealing`]).
#[derive(Clone)]
pub struct FileStore {
    pub(super) db: Arc<Database>,
    pub(super) keyring: Option<Arc<Keyring>>,
    /// Every token, in memory (`file_cache.rs`): reads never touch the file.
    cache: Arc<TokenCache>,
    /// The write groups (`file_group.rs`).
    pub(super) groups: Arc<Groups>,
}

impl FileStore {
    /// Opens (or creates) the database at `path`, creating its folder; both
    /// owner-only (0600 file, 0700 created folder).
    pub fn open(path: &Path, keyring: Option<Arc<Keyring>>) -> Result<Self, StoreError> {
        super::file_mode::prepare(path)?;
        let db = redb::Builder::new()
            .set_cache_size(PAGE_CACHE_BYTES)
            .create(path)
            .map_err(|e| StoreError::Backend(Cause::of(format!("{}: {e}", path.display()), e)))?;
        let txn = db.begin_write().map_err(backend)?;
        txn.open_table(TOKENS).map_err(backend)?;
        txn.open_table(RECORDS).map_err(backend)?;
        txn.open_table(RECORD_CLIENTS).map_err(backend)?;
        txn.open_table(CLIENT_RECORDS).map_err(backend)?;
        txn.commit().map_err(backend)?;
        let (db, cache) = (Arc::new(db), Arc::<TokenCache>::default());
        let store = Self {
            groups: Arc::new(Groups::start(db.clone(), cache.clone())?),
            db,
            keyring,
            cache,
        };
        store.load_copy()?;
        Ok(store)
    }

    /// Replaces the in-memory copy with every token key in the file and its
    /// decoded value (or why it cannot be decoded).
    fn load_copy(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let table = txn.open_table(TOKENS).map_err(backend)?;
        let mut fill = Fill::with_capacity(table.len().map_err(backend)? as usize);
        for entry in table.iter().map_err(backend)? {
            let (k, v) = entry.map_err(backend)?;
            fill.add(k.value(), self.decode(k.value(), v.value()));
        }
        self.cache.replace(fill);
        Ok(())
    }

    /// Runs blocking database reads off the async threads (writes go to
    /// the writer thread, `file_group.rs`).
    pub(super) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&FileStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || work(&this))
            .await
            .map_err(backend)?
    }

    fn decode(&self, key: &str, raw: &[u8]) -> Result<StoredToken, StoreError> {
        let (generation, sealed) = split_generation(raw)?;
        open_token(self.keyring.as_deref(), key, generation, sealed)
    }

    /// Commits a write transaction on the tokens durably (grouped with the
    /// writes queued with it, `file_group.rs`), then applies the changes
    /// `work` noted to the in-memory copy, in commit order.
    async fn write<T: Send + 'static>(
        &self,
        mut work: impl FnMut(&mut redb::Table<&str, &[u8]>, &mut Vec<Change>) -> Result<T, StoreError>
        + Send
        + 'static,
    ) -> Result<T, StoreError> {
        self.groups
            .write(move |txn, changes| {
                let mut table = txn.open_table(TOKENS).map_err(backend)?;
                work(&mut table, changes)
            })
            .await
    }

    /// Commits a write transaction on `table` durably.
    pub(super) async fn write_in<T: Send + 'static>(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        mut work: impl FnMut(&mut redb::Table<&str, &[u8]>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.write_txn(move |txn| {
            let mut table = txn.open_table(table).map_err(backend)?;
            work(&mut table)
        })
        .await
    }

    /// Commits a write transaction durably; `work` opens the tables it needs.
    pub(super) async fn write_txn<T: Send + 'static>(
        &self,
        mut work: impl FnMut(&redb::WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.groups.write(move |txn, _| work(txn)).await
    }
}

/// Rewrites every value of `table` that `reseal` returns a sealed form for;
/// returns how many.
fn reseal_table(
    table: &mut redb::Table<&str, &[u8]>,
    reseal: impl Fn(&str, u64, &[u8]) -> Result<Option<Vec<u8>>, StoreError>,
) -> Result<usize, StoreError> {
    let mut sealed = Vec::new();
    for entry in table.iter().map_err(backend)? {
        let (k, v) = entry.map_err(backend)?;
        let (generation, value) = split_generation(v.value())?;
        if let Some(new) = reseal(k.value(), generation, value)? {
            let mut raw = generation.to_be_bytes().to_vec();
            raw.extend(new);
            sealed.push((k.value().to_owned(), raw));
        }
    }
    for (key, raw) in &sealed {
        table
            .insert(key.as_str(), raw.as_slice())
            .map_err(backend)?;
    }
    Ok(sealed.len())
}

#[async_trait]
impl Tokens for FileStore {
    async fn get(&self, key: &TokenKey) -> Result<Option<StoredToken>, StoreError> {
        self.cache.get(key, &key_bytes(key))
    }

    async fn compare_and_set(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        token: &SecretString,
        registration_client_uri: &str,
    ) -> Result<Cas, StoreError> {
        let (key, token, uri) = (
            key_bytes(key),
            token.clone(),
            registration_client_uri.to_owned(),
        );
        let keyring = self.keyring.clone();
        self.write(move |table, changes| {
            let current = generation(table, &key)?;
            if current != expected {
                return Ok(Cas::Conflict);
            }
            let generation = current.unwrap_or(0) + 1;
            let learned_at = unix_now();
            let mut value = generation.to_be_bytes().to_vec();
            value.extend(seal_token(
                keyring.as_deref(),
                &key,
                generation,
                &token,
                &uri,
                learned_at,
            ));
            table
                .insert(key.as_str(), value.as_slice())
                .map_err(backend)?;
            changes.push(Change::Put {
                key: key.clone(),
                token: token.clone(),
                uri: uri.clone(),
                learned_at,
                generation,
            });
            Ok(Cas::Stored(generation))
        })
        .await
    }

    async fn compare_and_delete(&self, key: &TokenKey, expected: u64) -> Result<bool, StoreError> {
        let key = key_bytes(key);
        self.write(move |table, changes| {
            if generation(table, &key)? != Some(expected) {
                return Ok(false);
            }
            table.remove(key.as_str()).map_err(backend)?;
            changes.push(Change::Remove(key.clone()));
            Ok(true)
        })
        .await
    }

    async fn delete(&self, key: &TokenKey) -> Result<bool, StoreError> {
        let key = key_bytes(key);
        self.write(move |table, changes| {
            let removed = table.remove(key.as_str()).map_err(backend)?.is_some();
            changes.push(Change::Remove(key.clone()));
            Ok(removed)
        })
        .await
    }

    async fn import(
        &self,
        entries: Vec<ImportEntry>,
        overwrite: bool,
    ) -> Result<(usize, usize), StoreError> {
        let keyring = self.keyring.clone();
        self.write(move |table, changes| {
            let (mut stored, mut kept) = (0, 0);
            for e in &entries {
                let key = key_bytes(&e.key);
                let current = generation(table, &key)?;
                if current.is_some() && !overwrite {
                    kept += 1;
                    continue;
                }
                let generation = current.unwrap_or(0) + 1;
                let learned_at = unix_now();
                let mut value = generation.to_be_bytes().to_vec();
                let sealed = seal_token(
                    keyring.as_deref(),
                    &key,
                    generation,
                    &e.token,
                    &e.registration_client_uri,
                    learned_at,
                );
                value.extend(sealed);
                table
                    .insert(key.as_str(), value.as_slice())
                    .map_err(backend)?;
                changes.push(Change::Put {
                    key,
                    token: e.token.clone(),
                    uri: e.registration_client_uri.clone(),
                    learned_at,
                    generation,
                });
                stored += 1;
            }
            Ok((stored, kept))
        })
        .await
    }

    async fn list(&self, limit: Option<usize>) -> Result<Vec<(TokenKey, StoredToken)>, StoreError> {
        self.run(move |s| {
            let txn = s.db.begin_read().map_err(backend)?;
            let table = txn.open_table(TOKENS).map_err(backend)?;
            let mut out = Vec::new();
            for entry in table
                .iter()
                .map_err(backend)?
                .take(limit.unwrap_or(usize::MAX))
            {
                let (k, v) = entry.map_err(backend)?;
                let Some(token_key) = parse_key(k.value()) else {
                    continue;
                };
                out.push((token_key, s.decode(k.value(), v.value())?));
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl Sealing for FileStore {
    async fn seal_plaintext(&self) -> Result<usize, StoreError> {
        let ring = self.keyring.clone().ok_or(StoreError::NoKeyring)?;
        // Each table in one transaction: either every plaintext entry of it
        // is sealed, or none.
        let tokens_ring = ring.clone();
        let tokens = self
            .write(move |table, _| {
                reseal_table(table, |k, g, v| {
                    reseal_plain(&tokens_ring, Space::Tokens, k, g, v)
                })
            })
            .await?;
        // Sealing changes no token, but values the keyring could not read
        // before now read.
        self.run(|s| s.load_copy()).await?;
        let records = self
            .write_in(RECORDS, move |table| {
                reseal_table(table, |k, g, v| {
                    reseal_plain(&ring, Space::Records, k, g, v)
                })
            })
            .await?;
        Ok(tokens + records)
    }
}
