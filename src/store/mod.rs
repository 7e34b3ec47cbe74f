//! Where registration access tokens (RATs) and managed client records are
//! kept, by capability ([`Tokens`], [`Records`], [`Leases`], [`Sealing`]).
//!
//! A RAT is the only key to manage a registered client: losing it strands the
//! client. The tokens layer (`middleware::tokens`) reads and writes tokens;
//! managed clients keep their records. Backends: [`MemoryStore`] (bounded,
//! gone with the process), [`FileStore`] (redb, every write fsynced before it
//! returns), [`RedisStore`] (shared by replicas, compare-and-set in Lua on the
//! server, and leases). File and Redis values are sealed by a [`Keyring`]
//! when one is configured, all with one codec (`codec.rs`). [`Store`] is one
//! opened backend, as the gateway uses it.

mod cipher;
mod codec;
mod file;
mod file_cache;
mod file_group;
#[cfg(test)]
mod file_group_tests;
mod file_mode;
mod file_records;
mod memory;
mod open;
mod record;
#[cfg(test)]
mod records_tests;
mod redis;
mod redis_conn;
mod redis_leases;
mod redis_node;
mod redis_prefix;
mod redis_records;
mod redis_sentinel;
mod redis_tokens;
mod redis_wait;
mod traits;

pub use cipher::{KeyError, Keyring};
pub use file::FileStore;
pub use memory::{DEFAULT_MAX_ENTRIES, MemoryStore};
pub use open::{Backend, StoreConfig, connect, open};
pub use record::{KeyPartError, check_key};
pub use redis::RedisStore;
pub use redis_conn::RedisTopology;
pub use redis_prefix::{PrefixError, RedisPrefix};
pub use redis_wait::{DEFAULT_REPLICA_WAIT, MAX_MIN_REPLICAS, MAX_REPLICA_WAIT, ReplicaWait};
pub use traits::{Leases, Reachable, Records, Sealing, Tokens};

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

pub use crate::dcr::StoreError;
use secrecy::SecretString;

/// One opened store: its tokens and records, and what only some backends
/// have. Clones share the backend.
#[derive(Clone)]
pub struct Store {
    /// Registration access tokens.
    pub tokens: Arc<dyn Tokens>,
    /// Managed client records.
    pub records: Arc<dyn Records>,
    /// Leases, on a store replicas share (Redis): their presence is what
    /// makes calls on a client, and operations on a managed name, serialised
    /// across processes (the lease layer is built only then).
    pub leases: Option<Arc<dyn Leases>>,
    /// Sealing plaintext values at rest, on a store that keeps values at
    /// rest (file, Redis).
    pub sealing: Option<Arc<dyn Sealing>>,
    /// How many replica waits fell short, on a store that waits for
    /// replicas (Redis).
    pub replica_shortfalls: Option<Arc<AtomicU64>>,
    /// Whether the store's servers answer, on a store across the network
    /// (Redis): the gateway's readiness follows it.
    pub reachable: Option<Arc<dyn Reachable>>,
}

impl Store {
    /// Checks a new client's token and record would both fit: an error
    /// ([`StoreError::Full`]) only for a bounded store at its capacity, so
    /// that nothing is registered that could not be kept.
    pub async fn check_room_for_client(&self) -> Result<(), StoreError> {
        self.tokens.check_room_for_token().await?;
        self.records.check_room_for_record().await
    }
}

impl From<MemoryStore> for Store {
    fn from(store: MemoryStore) -> Self {
        let store = Arc::new(store);
        Self {
            tokens: store.clone(),
            records: store,
            leases: None,
            sealing: None,
            replica_shortfalls: None,
            reachable: None,
        }
    }
}

impl From<FileStore> for Store {
    fn from(store: FileStore) -> Self {
        let store = Arc::new(store);
        Self {
            tokens: store.clone(),
            records: store.clone(),
            leases: None,
            sealing: Some(store),
            replica_shortfalls: None,
            reachable: None,
        }
    }
}

impl From<RedisStore> for Store {
    fn from(store: RedisStore) -> Self {
        let store = Arc::new(store);
        Self {
            tokens: store.clone(),
            records: store.clone(),
            leases: Some(store.clone()),
            replica_shortfalls: Some(store.replica_shortfalls()),
            reachable: Some(store.clone()),
            sealing: Some(store),
        }
    }
}

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

/// What a lease is held on: calls on one client, or operations on one
/// managed name. The two never share a lease (see `record::lease_key_bytes`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LeaseKey {
    /// A client: the lease of calls that manage it.
    Client(TokenKey),
    /// A managed name: the lease of its ensures, rotations and forgets.
    Name(ManagedKey),
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

/// One entry for [`Tokens::import`].
#[derive(Clone, Debug)]
pub struct ImportEntry {
    /// Where it goes.
    pub key: TokenKey,
    /// The token.
    pub token: SecretString,
    /// The client's configuration endpoint.
    pub registration_client_uri: String,
}

pub(crate) use crate::dcr::unix_now;
