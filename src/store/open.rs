//! Choosing and opening the configured backend, with the startup checks an
//! operator relies on: encryption present (or loudly absent: the config only
//! allows that with `--allow-plaintext-store` or the dev upstream), and the
//! keyring able to read what is already stored.

use std::path::PathBuf;
use std::sync::Arc;

use secrecy::SecretString;

use super::{
    FileStore, Keyring, MemoryStore, RedisPrefix, RedisStore, RedisTopology, ReplicaWait, Store,
    StoreError,
};

/// How many stored entries are decrypted at startup to prove the keyring right.
const STARTUP_CHECK_ENTRIES: usize = 1000;

/// Which backend holds the tokens.
#[derive(Clone, Debug)]
pub enum Backend {
    /// In memory, bounded; lost on exit.
    Memory {
        /// Capacity.
        max_entries: usize,
    },
    /// A redb file, fsynced on every write.
    File {
        /// The database file.
        path: PathBuf,
    },
    /// Redis, shared by replicas.
    Redis {
        /// `redis://` or `rediss://` URLs, comma-separated (may hold a
        /// password): the node, a Cluster's seed nodes, or the sentinels.
        url: SecretString,
        /// How the servers are run.
        topology: RedisTopology,
        /// What a credential write waits for.
        wait: ReplicaWait,
        /// Names every key: `prefix:` + the store key.
        prefix: RedisPrefix,
    },
}

/// The validated token store settings.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Where tokens live.
    pub backend: Backend,
    /// Seals file and Redis values; `None` stores them in plaintext.
    pub keyring: Option<Arc<Keyring>>,
}

impl Backend {
    /// A short description for logs, with no secret.
    pub fn describe(&self) -> String {
        match self {
            Self::Memory { max_entries } => {
                format!("memory (at most {max_entries} tokens, lost on exit)")
            }
            Self::File { path } => format!("file {}", path.display()),
            Self::Redis {
                prefix, topology, ..
            } => match topology {
                RedisTopology::Node => format!("redis (keys {prefix}:*)"),
                RedisTopology::Cluster => format!("redis cluster (keys {prefix}:*)"),
                RedisTopology::Sentinel { master } => {
                    format!("redis sentinel master {master} (keys {prefix}:*)")
                }
            },
        }
    }
}

/// Opens the configured store and checks that its entries can be read.
pub async fn open(config: &StoreConfig) -> Result<Store, StoreError> {
    let store = connect(config).await?;
    // Decrypting existing entries proves the keyring before any call depends on it.
    store.tokens.list(Some(STARTUP_CHECK_ENTRIES)).await?;
    tracing::info!(backend = %config.backend.describe(), encrypted = config.keyring.is_some(), "token store open");
    Ok(store)
}

/// Opens the configured store without reading any entry: for `tokens seal`,
/// which must reach the plaintext entries that [`open`]'s check refuses.
pub async fn connect(config: &StoreConfig) -> Result<Store, StoreError> {
    let durable = !matches!(config.backend, Backend::Memory { .. });
    if durable && config.keyring.is_none() {
        tracing::warn!(
            "TOKEN STORE IS NOT ENCRYPTED: registration access tokens are written in plaintext to {}. \
             Configure a keyring (--token-store-keys-file or DCR_GATEWAY_TOKEN_STORE_KEYS) \
             and run `dcr-gateway tokens seal`.",
            config.backend.describe()
        );
    }
    let keyring = config.keyring.clone();
    Ok(match &config.backend {
        Backend::Memory { max_entries } => MemoryStore::new(*max_entries).into(),
        Backend::File { path } => FileStore::open(path, keyring)?.into(),
        Backend::Redis {
            url,
            topology,
            wait,
            prefix,
        } => RedisStore::connect(url, topology, wait, prefix.clone(), keyring)
            .await?
            .into(),
    })
}
