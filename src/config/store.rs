//! Token store settings: backend, location, keyring.

use std::path::PathBuf;
use std::sync::Arc;

use secrecy::ExposeSecret;

use super::check::{count, invalid};
use super::{
    ConfigError, DEFAULT_TOKEN_STORE_MAX_ENTRIES, RawStoreConfig, TOKEN_STORE_KEYS_ENV,
    secret::secret_setting,
};
use crate::store::{Backend, Keyring, RedisPrefix, StoreConfig};

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
pub fn store_config(raw: RawStoreConfig, dev: bool) -> Result<StoreConfig, ConfigError> {
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
        "redis" => {
            let given = secret_setting(
                ("--token-store-redis-url", raw.redis_url),
                ("--token-store-redis-url-file", raw.redis_url_file),
            )?;
            let Some((setting, url)) = given else {
                return Err(invalid(
                    "--token-store-redis-url",
                    "required with --token-store redis (or --token-store-redis-url-file)",
                ));
            };
            // A mounted Secret keeps the final newline `kubectl create secret
            // --from-file` gives it.
            let url = secrecy::SecretString::from(url.expose_secret().trim());
            let scheme = url
                .expose_secret()
                .split_once("://")
                .map(|(s, _)| s.to_owned());
            if !matches!(scheme.as_deref(), Some("redis" | "rediss")) {
                return Err(invalid(setting, "must be a redis:// or rediss:// URL"));
            }
            let prefix = raw.redis_prefix.as_deref().unwrap_or(DEFAULT_REDIS_PREFIX);
            let prefix = RedisPrefix::parse(prefix)
                .map_err(|e| invalid("--token-store-redis-prefix", e.to_string()))?;
            Backend::Redis { url, prefix }
        }
        other => {
            return Err(invalid(
                "--token-store",
                format!("{other:?} is not memory, file or redis"),
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
