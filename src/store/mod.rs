//! Where registration access tokens (RATs) are kept, behind one trait.
//!
//! A RAT is the only key to manage a registered client: losing it strands the
//! client. The tokens layer (`middleware::tokens`) reads and writes this store.
//! Backends: [`MemoryStore`] (bounded, gone with the process), [`FileStore`]
//! (redb, every write fsynced before it returns), [`RedisStore`] (shared by
//! replicas, compare-and-set in Lua on the server). File and Redis values are
//! sealed by a [`Keyring`] when one is configured.
//!
//! Every write is a compare-and-set on a per-entry generation, and every
//! conditional delete names the generation it saw, so a stale writer can never
//! overwrite a newer token or delete one it did not see.

mod cipher;
mod file;
mod file_cache;
mod file_mode;
mod file_records;
mod memory;
mod open;
mod record;
#[cfg(test)]
mod records_tests;
mod redis;
mod redis_prefix;
mod redis_records;

pub use cipher::{KeyError, Keyring};
pub use file::FileStore;
pub use memory::{DEFAULT_MAX_ENTRIES, MemoryStore};
pub use open::{Backend, StoreConfig, connect, open};
pub use record::{KeyPartError, check_key};
pub use redis::RedisStore;
pub use redis_prefix::{PrefixError, RedisPrefix};

use std::time::Duration;

pub use crate::dcr::StoreError;
use async_trait::async_trait;
use secrecy::SecretString;

/// Identifies one stored token: which server, which caller, which client.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenKey {
    /// The upstream's base URL, so two servers' client ids never collide.
    pub upstream: String,
    /// The caller namespace (`default` unless callers authenticate).
    pub namespace: String,
    /// The client identifier the token manages.
    pub client_id: String,
}

/// Identifies one managed client's record: which server, which caller, which
/// name (the caller's own handle for the client, see `managed`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ManagedKey {
    /// The upstream's base URL.
    pub upstream: String,
    /// The caller namespace.
    pub namespace: String,
    /// The managed client's name.
    pub name: String,
}

/// A managed client's record as stored: the managed-clients module's JSON,
/// which holds the client secret (so it is sealed at rest like a token and
/// kept in a secret here), and its generation.
#[derive(Clone, Debug)]
pub struct StoredRecord {
    /// The record, as `managed::record` writes it.
    pub json: SecretString,
    /// Bumped by every write; the basis of compare-and-set.
    pub generation: u64,
    /// The client id the record holds, as the store indexes it; `None` for
    /// a record written before the index (the gateway indexes those at
    /// start) or when a single record is read.
    pub client_id: Option<String>,
}

/// A stored registration access token and what is known about it.
#[derive(Clone, Debug)]
pub struct StoredToken {
    /// The token itself.
    pub token: SecretString,
    /// The client's configuration endpoint, as the server returned it.
    pub registration_client_uri: String,
    /// When the gateway learned it, in Unix seconds.
    pub learned_at: u64,
    /// Bumped by every write; the basis of compare-and-set.
    pub generation: u64,
}

/// The outcome of a compare-and-set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cas {
    /// Written; the entry's new generation.
    Stored(u64),
    /// The entry changed since the caller read it; nothing was written.
    Conflict,
}

/// A store of registration access tokens.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// The token held for `key`, if any.
    async fn get(&self, key: &TokenKey) -> Result<Option<StoredToken>, StoreError>;

    /// Stores `token` for `key` if the entry's generation is still `expected`
    /// (`None`: the entry must not exist). Durable before it returns, for the
    /// durable backends.
    async fn compare_and_set(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        token: &SecretString,
        registration_client_uri: &str,
    ) -> Result<Cas, StoreError>;

    /// Removes the entry only if its generation is still `expected`. Returns
    /// whether it removed one.
    async fn compare_and_delete(&self, key: &TokenKey, expected: u64) -> Result<bool, StoreError>;

    /// Removes the entry, whatever it holds. Returns whether there was one.
    async fn delete(&self, key: &TokenKey) -> Result<bool, StoreError>;

    /// Up to `limit` entries (all when `None`), for operator commands and the
    /// startup key check. Order is unspecified.
    async fn list(&self, limit: Option<usize>) -> Result<Vec<(TokenKey, StoredToken)>, StoreError>;

    /// The managed client record under `key`, if any.
    async fn get_record(&self, key: &ManagedKey) -> Result<Option<StoredRecord>, StoreError>;

    /// Stores `json` under `key` if the record's generation is still
    /// `expected` (`None`: it must not exist), and indexes it under
    /// `client_id`, the client it holds, in the same write. Durable before it
    /// returns, for the durable backends.
    async fn put_record(
        &self,
        key: &ManagedKey,
        expected: Option<u64>,
        json: &SecretString,
        client_id: &str,
    ) -> Result<Cas, StoreError>;

    /// Removes the record (and its index entry) only if its generation is
    /// still `expected`.
    async fn delete_record(&self, key: &ManagedKey, expected: u64) -> Result<bool, StoreError>;

    /// Every managed client record, with the client id each is indexed
    /// under. Order is unspecified.
    async fn list_records(&self) -> Result<Vec<(ManagedKey, StoredRecord)>, StoreError>;

    /// The names of the records of `namespace` on `upstream` that hold
    /// `client_id`: one index lookup, whatever the number of records, and no
    /// record opened. Order is unspecified.
    async fn records_of_client(
        &self,
        upstream: &str,
        namespace: &str,
        client_id: &str,
    ) -> Result<Vec<String>, StoreError>;

    /// The names of every record of `namespace` on `upstream`, sorted; no
    /// record opened.
    async fn record_names(
        &self,
        upstream: &str,
        namespace: &str,
    ) -> Result<Vec<String>, StoreError>;

    /// Checks a new client's token and record would both fit: an error
    /// ([`StoreError::Full`]) only for a bounded store at its capacity, so
    /// that nothing is registered that could not be kept.
    async fn check_room_for_client(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Whether replicas share this store, so that management calls on one
    /// client must also be serialised across processes ([`TokenStore::take_lease`]).
    fn shared(&self) -> bool {
        false
    }

    /// Takes the cross-replica lease on `key` for `ttl`: its fencing number
    /// (a counter that only grows), or `None` while another holder has it.
    /// Stores that one process owns have no leases and always grant 0.
    async fn take_lease(&self, _key: &TokenKey, _ttl: Duration) -> Result<Option<u64>, StoreError> {
        Ok(Some(0))
    }

    /// Extends the lease `fence` on `key` by `ttl`; `false` when it was lost
    /// (expired and taken by another holder).
    async fn renew_lease(
        &self,
        _key: &TokenKey,
        _fence: u64,
        _ttl: Duration,
    ) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// Gives the lease `fence` on `key` back, if it is still held.
    async fn release_lease(&self, _key: &TokenKey, _fence: u64) -> Result<(), StoreError> {
        Ok(())
    }

    /// [`TokenStore::compare_and_set`], refused (as a conflict) unless the
    /// lease on `key` is still `fence`: a holder whose lease expired cannot
    /// overwrite what the next holder wrote. Stores without leases ignore it.
    async fn compare_and_set_fenced(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        token: &SecretString,
        registration_client_uri: &str,
        _fence: u64,
    ) -> Result<Cas, StoreError> {
        self.compare_and_set(key, expected, token, registration_client_uri)
            .await
    }

    /// Rewrites every plaintext entry sealed with the keyring's current key, for
    /// `tokens seal` after a keyring is added: returns how many it sealed. The
    /// file backend does it in one transaction, Redis with a compare-and-set per
    /// entry; the memory backend keeps nothing at rest, so it seals nothing.
    async fn seal_plaintext(&self) -> Result<usize, StoreError> {
        Ok(0)
    }

    /// Stores many entries (for `tokens import`): each only where no entry
    /// exists, or replacing any with `overwrite`. Returns (stored, kept). The
    /// file backend does it in one durable transaction.
    async fn import(
        &self,
        entries: Vec<ImportEntry>,
        overwrite: bool,
    ) -> Result<(usize, usize), StoreError> {
        let (mut stored, mut kept) = (0, 0);
        for e in entries {
            let expected = match overwrite {
                true => self.get(&e.key).await?.map(|t| t.generation),
                false => None,
            };
            match self
                .compare_and_set(&e.key, expected, &e.token, &e.registration_client_uri)
                .await?
            {
                Cas::Stored(_) => stored += 1,
                Cas::Conflict => kept += 1,
            }
        }
        Ok((stored, kept))
    }
}

/// One entry for [`TokenStore::import`].
#[derive(Clone, Debug)]
pub struct ImportEntry {
    /// Where it goes.
    pub key: TokenKey,
    /// The token.
    pub token: SecretString,
    /// The client's configuration endpoint.
    pub registration_client_uri: String,
}

/// Now, in Unix seconds.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
