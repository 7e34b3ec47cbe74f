//! Token store settings: backend, location, keyring.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;

use super::check::{count, duration_within, invalid};
use super::{
    ConfigError, DEFAULT_TOKEN_STORE_MAX_ENTRIES, RawStoreConfig, TOKEN_STORE_KEYS_ENV,
    secret::secret_setting,
};
use crate::store::{
    Backend, DEFAULT_REPLICA_WAIT, Keyring, MAX_MIN_REPLICAS, MAX_REPLICA_WAIT, RedisPrefix,
    RedisTopology, ReplicaWait, StoreConfig,
};

/// Default database file of the file backend, in the working directory (a
/// container mounts a volume there, see deploy/).
pub const DEFAULT_STORE_PATH: &str = "dcr-gateway-tokens.redb";
/// Default: a file or redis store needs a keyring (`--allow-plaintext-store`).
pub const DEFAULT_ALLOW_PLAINTEXT_STORE: bool = false;
/// Default key prefix name of the redis backend: keys are `dcr-gateway:...`,
/// as they were when the prefix was the free text `dcr-gateway:`.
pub const DEFAULT_REDIS_PREFIX: &str = "dcr-gateway";

/// Validates token store settings. `dev` picks memory as the default backend:
/// the dev upstream forgets its clients on exit, so their tokens should go too;
/// and with it a file store may go without a keyring, as its tokens open only
/// throw-away clients. Otherwise a durable store without a keyring is an error
/// unless `--allow-plaintext-store` says the operator means it.
pub fn store_config(mut raw: RawStoreConfig, dev: bool) -> Result<StoreConfig, ConfigError> {
    let default_backend = if dev { "memory" } else { "file" };
    let backend = match raw.backend.as_deref().unwrap_or(default_backend) {
        "memory" => Backend::Memory {
            max_entries: count(
                "--token-store-max-entries",
                raw.max_entries,
                DEFAULT_TOKEN_STORE_MAX_ENTRIES,
                1..=100_000_000,
            )?,
        },
        "file" => Backend::File {
            path: PathBuf::from(raw.path.unwrap_or_else(|| DEFAULT_STORE_PATH.into())),
        },
        kind @ ("redis" | "redis-cluster" | "redis-sentinel") => {
            let topology = match kind {
                "redis" => RedisTopology::Node,
                "redis-cluster" => RedisTopology::Cluster,
                _ => RedisTopology::Sentinel {
                    master: sentinel_master(raw.redis_sentinel_master.take())?,
                },
            };
            redis_backend(&mut raw, topology)?
        }
        other => {
            return Err(invalid(
                "--token-store",
                format!("{other:?} is not memory, file, redis, redis-cluster or redis-sentinel"),
            ));
        }
    };
    let keyring = secret_setting(
        (TOKEN_STORE_KEYS_ENV, raw.keys),
        ("--token-store-keys-file", raw.keys_file),
    )?
    .map(|(setting, text)| Keyring::parse(&text).map_err(|e| invalid(setting, e.to_string())))
    .transpose()?
    .map(Arc::new);
    let allow_plaintext = raw
        .allow_plaintext_store
        .unwrap_or(DEFAULT_ALLOW_PLAINTEXT_STORE);
    let plaintext = match &backend {
        Backend::Memory { .. } => None,
        Backend::File { path } => Some(format!("the file store at {}", path.display())),
        Backend::Redis { prefix, .. } => Some(format!("the redis store (keys {prefix}:*)")),
    };
    if let (Some(store), None, false, false) = (plaintext, &keyring, allow_plaintext, dev) {
        return Err(ConfigError::PlaintextStore { store });
    }
    Ok(StoreConfig { backend, keyring })
}

/// Most URLs in `--token-store-redis-url` (seed nodes or sentinels).
const MAX_REDIS_URLS: usize = 32;
/// Longest sentinel master name.
const MAX_SENTINEL_MASTER_LEN: usize = 128;

/// The Redis backend of `topology` from `raw`'s settings.
fn redis_backend(
    raw: &mut RawStoreConfig,
    topology: RedisTopology,
) -> Result<Backend, ConfigError> {
    let given = secret_setting(
        ("--token-store-redis-url", raw.redis_url.take()),
        ("--token-store-redis-url-file", raw.redis_url_file.take()),
    )?;
    let Some((setting, url)) = given else {
        return Err(invalid(
            "--token-store-redis-url",
            "required with a redis token store (or --token-store-redis-url-file)",
        ));
    };
    // A mounted Secret keeps the final newline `kubectl create secret
    // --from-file` gives it.
    let url = secrecy::SecretString::from(url.expose_secret().trim());
    let urls: Vec<&str> = url.expose_secret().split(',').map(str::trim).collect();
    if urls.len() > MAX_REDIS_URLS {
        return Err(invalid(
            setting,
            format!("holds more than {MAX_REDIS_URLS} URLs"),
        ));
    }
    if urls.len() > 1 && topology == RedisTopology::Node {
        return Err(invalid(
            setting,
            "names several servers: use --token-store redis-cluster (seed nodes) or \
             redis-sentinel (sentinels)",
        ));
    }
    for (i, one) in urls.iter().enumerate() {
        // Never the URL itself in the error: it may hold a password.
        if !matches!(one.split_once("://"), Some(("redis" | "rediss", rest)) if !rest.is_empty()) {
            return Err(invalid(
                setting,
                format!(
                    "URL {} of {} is not a redis:// or rediss:// URL",
                    i + 1,
                    urls.len()
                ),
            ));
        }
    }
    if raw.redis_sentinel_master.is_some() {
        return Err(invalid(
            "--token-store-redis-sentinel-master",
            "applies to --token-store redis-sentinel only",
        ));
    }
    let wait = ReplicaWait {
        min_replicas: raw
            .redis_min_replicas
            .map(|n| {
                count(
                    "--token-store-redis-min-replicas",
                    Some(n),
                    0,
                    0..=MAX_MIN_REPLICAS,
                )
            })
            .transpose()?,
        max_wait: duration_within(
            "--token-store-redis-replica-wait",
            raw.redis_replica_wait.take(),
            DEFAULT_REPLICA_WAIT,
            (Duration::from_millis(1), MAX_REPLICA_WAIT),
        )?,
    };
    let prefix = raw.redis_prefix.as_deref().unwrap_or(DEFAULT_REDIS_PREFIX);
    let prefix = RedisPrefix::parse(prefix)
        .map_err(|e| invalid("--token-store-redis-prefix", e.to_string()))?;
    Ok(Backend::Redis {
        url,
        topology,
        wait,
        prefix,
    })
}

/// The sentinels' master name: required, bounded, printable.
fn sentinel_master(name: Option<String>) -> Result<String, ConfigError> {
    const SETTING: &str = "--token-store-redis-sentinel-master";
    let Some(name) = name else {
        return Err(invalid(
            SETTING,
            "required with --token-store redis-sentinel",
        ));
    };
    let valid = !name.is_empty()
        && name.len() <= MAX_SENTINEL_MASTER_LEN
        && name.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(invalid(
            SETTING,
            format!("must be 1 to {MAX_SENTINEL_MASTER_LEN} printable characters, no spaces"),
        ));
    }
    Ok(name)
}
