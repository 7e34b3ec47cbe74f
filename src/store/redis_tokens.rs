//! The Redis backend's tokens: each a hash `{gen, val}` under `NAME:` +
//! store key (see [`super::RedisPrefix`]). Compare-and-set and
//! compare-and-delete run as Lua scripts, atomically on the server, on one
//! key (and, behind a fence, its lease: one slot on a Cluster); a stored
//! token then waits for replicas (`RedisStore::durably`).

use async_trait::async_trait;
use redis::Script;
use secrecy::SecretString;

use super::codec::{Space, open_token, reseal_plain, seal_token};
use super::record::{key_bytes, parse_key};
use super::redis::RedisStore;
use super::redis_conn::RedisConn;
use super::{Cas, Sealing, StoreError, StoredToken, TokenKey, Tokens, unix_now};

/// The compare-and-set body: `KEYS[1]`; `ARGV[1]` expected generation (`""`:
/// absent), `ARGV[2]` sealed value for the next generation. Returns the new
/// generation, or 0 on conflict.
macro_rules! cas_script {
    () => {
        r#"
local cur = redis.call('HGET', KEYS[1], 'gen')
if (cur == false and ARGV[1] == '') or cur == ARGV[1] then
  local gen = (tonumber(cur) or 0) + 1
  redis.call('HSET', KEYS[1], 'gen', gen, 'val', ARGV[2])
  return gen
end
return 0
"#
    };
}

/// Compare-and-set; see [`cas_script`].
const CAS: &str = cas_script!();

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
pub(super) const RESEAL: &str = r#"
if redis.call('HGET', KEYS[1], 'gen') == ARGV[1] and redis.call('HGET', KEYS[1], 'val') == ARGV[2] then
  redis.call('HSET', KEYS[1], 'val', ARGV[3])
  return 1
end
return 0
"#;

/// [`CAS`] behind a fence check: `KEYS[2]` lease, `ARGV[3]` fence. Returns 0
/// (conflict) when the lease is no longer the caller's.
const FENCED_CAS: &str = concat!(
    "if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end",
    cas_script!()
);

impl RedisStore {
    /// Deletes the token under `rkey` if its generation is still `expected`;
    /// whether it did.
    async fn delete_at_generation(&self, rkey: &str, expected: u64) -> Result<bool, StoreError> {
        let script = Script::new(CAD);
        let deleted: u64 = self
            .with_retry(|mut c: RedisConn| {
                let mut call = script.key(rkey);
                call.arg(expected);
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
        Ok(deleted == 1)
    }

    /// Seals every plaintext value under `pattern` that `reseal` returns a
    /// sealed form for, each with a compare-and-set (a writer that changed
    /// the entry since it was read wrote it sealed); returns how many.
    async fn reseal_matching(
        &self,
        pattern: String,
        store_key: impl Fn(&str) -> Option<&str>,
        reseal: impl Fn(&str, u64, &[u8]) -> Result<Option<Vec<u8>>, StoreError>,
    ) -> Result<usize, StoreError> {
        let script = Script::new(RESEAL);
        let mut sealed = 0;
        for rkey in self.keys_matching(pattern).await? {
            let Some(key) = store_key(&rkey) else {
                continue;
            };
            let Some((generation, value)) = self.raw(&rkey).await? else {
                continue;
            };
            let Some(new) = reseal(key, generation, &value)? else {
                continue;
            };
            let replaced: u64 = self
                .with_retry(|mut c: RedisConn| {
                    let mut call = script.key(&rkey);
                    call.arg(generation).arg(&value).arg(&new);
                    async move { call.invoke_async(&mut c).await }
                })
                .await?;
            sealed += usize::from(replaced == 1);
        }
        Ok(sealed)
    }

    /// Compare-and-set, behind the lease's fence when one is given.
    async fn cas(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        token: &SecretString,
        registration_client_uri: &str,
        fence: Option<u64>,
    ) -> Result<Cas, StoreError> {
        let key = key_bytes(key);
        let rkey = self.redis_key(&key);
        let next = expected.unwrap_or(0) + 1;
        let value = seal_token(
            self.keyring.as_deref(),
            &key,
            next,
            token,
            registration_client_uri,
            unix_now(),
        );
        let expected = expected.map(|g| g.to_string()).unwrap_or_default();
        // Only a fenced write names the lease key: its client's
        // (`record::lease_key_bytes` of a client is its store key).
        let lease = fence.map(|f| (self.prefix.lease_key(&key, &key), f));
        let script = Script::new(if fence.is_some() { FENCED_CAS } else { CAS });
        let generation: u64 = self
            .durably(&rkey, |mut c| {
                let mut call = script.key(&rkey);
                call.arg(&expected).arg(&value);
                if let Some((lease, fence)) = &lease {
                    call.key(lease).arg(*fence);
                }
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
        Ok(if generation == 0 {
            Cas::Conflict
        } else {
            Cas::Stored(generation)
        })
    }

    fn redis_key(&self, key: &str) -> String {
        self.prefix.key(key)
    }

    /// Every Redis key of this store's tokens.
    async fn keys(&self) -> Result<Vec<String>, StoreError> {
        self.keys_matching(self.prefix.pattern()).await
    }
}

#[async_trait]
impl Tokens for RedisStore {
    async fn get(&self, key: &TokenKey) -> Result<Option<StoredToken>, StoreError> {
        let key = key_bytes(key);
        match self.raw(&self.redis_key(&key)).await? {
            Some((g, v)) => open_token(self.keyring.as_deref(), &key, g, &v).map(Some),
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
        self.cas(key, expected, token, registration_client_uri, None)
            .await
    }

    async fn compare_and_set_fenced(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        token: &SecretString,
        registration_client_uri: &str,
        fence: u64,
    ) -> Result<Cas, StoreError> {
        self.cas(key, expected, token, registration_client_uri, Some(fence))
            .await
    }

    async fn compare_and_delete(&self, key: &TokenKey, expected: u64) -> Result<bool, StoreError> {
        self.delete_at_generation(&self.redis_key(&key_bytes(key)), expected)
            .await
    }

    async fn delete(&self, key: &TokenKey) -> Result<bool, StoreError> {
        let rkey = self.redis_key(&key_bytes(key));
        let deleted: u64 = self
            .with_retry(|mut c: RedisConn| {
                let rkey = rkey.clone();
                async move { redis::cmd("DEL").arg(&rkey).query_async(&mut c).await }
            })
            .await?;
        Ok(deleted == 1)
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

#[async_trait]
impl Sealing for RedisStore {
    async fn seal_plaintext(&self) -> Result<usize, StoreError> {
        let ring = self.keyring.clone().ok_or(StoreError::NoKeyring)?;
        let tokens = self
            .reseal_matching(
                self.prefix.pattern(),
                |rkey| self.prefix.store_key(rkey),
                |k, g, v| reseal_plain(&ring, Space::Tokens, k, g, v),
            )
            .await?;
        let records = self
            .reseal_matching(
                self.prefix.record_pattern(),
                |rkey| self.prefix.record_store_key(rkey),
                |k, g, v| reseal_plain(&ring, Space::Records, k, g, v),
            )
            .await?;
        Ok(tokens + records)
    }
}
