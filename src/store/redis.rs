//! The Redis backend, for replicas that share their tokens. Each entry is a hash
//! `{gen, val}` under `NAME:` + store key (see [`RedisPrefix`]); compare-and-set and
//! compare-and-delete run as Lua scripts, atomically on the server. The
//! connection reconnects on its own; a command that meets a dropped connection
//! is retried a few times while it does.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, RedisError, Script};
use secrecy::{ExposeSecret, SecretString};

use super::RedisPrefix;
use super::cipher::Keyring;
use super::record::{key_bytes, open_value, parse_key, reseal_plain, seal_value};
use super::{Cas, StoreError, StoredToken, TokenKey, TokenStore, unix_now};

/// Limit for connecting and for each reply, so a hung Redis fails calls rather
/// than hanging them.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// Attempts for a command that meets a dropped connection.
const ATTEMPTS: u32 = 4;
/// Pause between those attempts, doubled each time.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// `KEYS[1]`; `ARGV[1]` expected generation (`""`: absent), `ARGV[2]` sealed
/// value for the next generation. Returns the new generation, or 0 on conflict.
const CAS: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'gen')
if (cur == false and ARGV[1] == '') or cur == ARGV[1] then
  local gen = (tonumber(cur) or 0) + 1
  redis.call('HSET', KEYS[1], 'gen', gen, 'val', ARGV[2])
  return gen
end
return 0
"#;

/// `KEYS[1]`; `ARGV[1]` expected generation. Returns 1 if deleted.
const CAD: &str = r#"
if redis.call('HGET', KEYS[1], 'gen') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// `KEYS[1]`; `ARGV[1]` generation and `ARGV[2]` plaintext value as read,
/// `ARGV[3]` the value sealed. Replaces the value, keeping the generation, only
/// if the entry is still exactly what was read. Returns 1 if it did.
const RESEAL: &str = r#"
if redis.call('HGET', KEYS[1], 'gen') == ARGV[1] and redis.call('HGET', KEYS[1], 'val') == ARGV[2] then
  redis.call('HSET', KEYS[1], 'val', ARGV[3])
  return 1
end
return 0
"#;

/// A [`TokenStore`] in Redis.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: RedisPrefix,
    keyring: Option<Arc<Keyring>>,
}

fn backend(e: RedisError) -> StoreError {
    StoreError::Backend(format!("redis: {e}"))
}

fn transient(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}

impl RedisStore {
    /// Connects to `url` (`redis://` or `rediss://`); keys start with `prefix:`.
    pub async fn connect(
        url: &SecretString,
        prefix: RedisPrefix,
        keyring: Option<Arc<Keyring>>,
    ) -> Result<Self, StoreError> {
        crate::tls::install_crypto_provider();
        let client = redis::Client::open(url.expose_secret()).map_err(backend)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(backend)?;
        Ok(Self {
            conn,
            prefix,
            keyring,
        })
    }

    /// Runs `op`, retrying while the connection is being re-established.
    async fn with_retry<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = Result<T, RedisError>>,
    {
        let mut pause = RETRY_PAUSE;
        for attempt in 1..=ATTEMPTS {
            match op(self.conn.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) if transient(&e) && attempt < ATTEMPTS => {
                    tracing::warn!(error = %e, attempt, "redis token store: retrying after a connection error");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(e) => return Err(backend(e)),
            }
        }
        Err(StoreError::Backend("redis: unreachable".into()))
    }

    fn redis_key(&self, key: &str) -> String {
        self.prefix.key(key)
    }

    /// The generation and value under a Redis key, if both are there.
    async fn raw(&self, rkey: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let (generation, value): (Option<u64>, Option<Vec<u8>>) = self
            .with_retry(|mut c| async move {
                redis::cmd("HMGET")
                    .arg(rkey)
                    .arg("gen")
                    .arg("val")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(generation.zip(value))
    }

    /// Every Redis key of this store.
    async fn keys(&self) -> Result<Vec<String>, StoreError> {
        let pattern = self.prefix.pattern();
        self.with_retry(|mut c| {
            let pattern = pattern.clone();
            async move {
                let mut keys = Vec::new();
                let mut iter = c.scan_match::<_, String>(&pattern).await?;
                while let Some(k) = futures_util::StreamExt::next(&mut iter).await {
                    keys.push(k?);
                }
                Ok(keys)
            }
        })
        .await
    }
}

#[async_trait]
impl TokenStore for RedisStore {
    async fn get(&self, key: &TokenKey) -> Result<Option<StoredToken>, StoreError> {
        let key = key_bytes(key);
        match self.raw(&self.redis_key(&key)).await? {
            Some((g, v)) => open_value(self.keyring.as_deref(), &key, g, &v).map(Some),
            None => Ok(None),
        }
    }

    async fn compare_and_set(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        token: &SecretString,
        registration_client_uri: &str,
    ) -> Result<Cas, StoreError> {
        let key = key_bytes(key);
        let rkey = self.redis_key(&key);
        let next = expected.unwrap_or(0) + 1;
        let value = seal_value(
            self.keyring.as_deref(),
            &key,
            next,
            token,
            registration_client_uri,
            unix_now(),
        );
        let expected = expected.map(|g| g.to_string()).unwrap_or_default();
        let script = Script::new(CAS);
        let generation: u64 = self
            .with_retry(|mut c| {
                let mut call = script.key(&rkey);
                call.arg(&expected).arg(&value);
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
        Ok(if generation == 0 {
            Cas::Conflict
        } else {
            Cas::Stored(generation)
        })
    }

    async fn compare_and_delete(&self, key: &TokenKey, expected: u64) -> Result<bool, StoreError> {
        let rkey = self.redis_key(&key_bytes(key));
        let script = Script::new(CAD);
        let deleted: u64 = self
            .with_retry(|mut c| {
                let mut call = script.key(&rkey);
                call.arg(expected);
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
        Ok(deleted == 1)
    }

    async fn delete(&self, key: &TokenKey) -> Result<bool, StoreError> {
        let rkey = self.redis_key(&key_bytes(key));
        let deleted: u64 = self
            .with_retry(|mut c| {
                let rkey = rkey.clone();
                async move { c.del(&rkey).await }
            })
            .await?;
        Ok(deleted == 1)
    }

    async fn seal_plaintext(&self) -> Result<usize, StoreError> {
        let ring = self.keyring.clone().ok_or(StoreError::NoKeyring)?;
        let script = Script::new(RESEAL);
        let mut sealed = 0;
        for rkey in self.keys().await? {
            let Some(key) = self.prefix.store_key(&rkey) else {
                continue;
            };
            let Some((generation, value)) = self.raw(&rkey).await? else {
                continue;
            };
            let Some(new) = reseal_plain(&ring, key, generation, &value)? else {
                continue;
            };
            // A writer that changed the entry since it was read wrote it sealed.
            let replaced: u64 = self
                .with_retry(|mut c| {
                    let mut call = script.key(&rkey);
                    call.arg(generation).arg(&value).arg(&new);
                    async move { call.invoke_async(&mut c).await }
                })
                .await?;
            sealed += usize::from(replaced == 1);
        }
        Ok(sealed)
    }

    async fn list(&self, limit: Option<usize>) -> Result<Vec<(TokenKey, StoredToken)>, StoreError> {
        let keys = self.keys().await?;
        let mut out = Vec::new();
        for rkey in keys.into_iter().take(limit.unwrap_or(usize::MAX)) {
            let Some(token_key) = self.prefix.store_key(&rkey).and_then(parse_key) else {
                continue;
            };
            if let Some(stored) = self.get(&token_key).await? {
                out.push((token_key, stored));
            }
        }
        Ok(out)
    }
}
