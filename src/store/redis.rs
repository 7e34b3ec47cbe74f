//! The Redis backend, for replicas that share their tokens. Each entry is a hash
//! `{gen, val}` under `NAME:` + store key (see [`RedisPrefix`]); compare-and-set and
//! compare-and-delete run as Lua scripts, atomically on the server, each on
//! the keys of one group (one slot on a Cluster). The connection
//! ([`RedisConn`]) reconnects on its own and follows a failover; a command
//! that meets one (a dropped connection, `READONLY`, `MOVED`, `TRYAGAIN`,
//! `CLUSTERDOWN`) is retried until the call's deadline (a credential write
//! for at least [`RETRY_BUDGET`], as its call's tail runs on detached), and
//! then waits for replicas ([`Replication`]).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::{RedisError, Script};
use secrecy::{ExposeSecret, SecretString};

use super::RedisPrefix;
use super::cipher::Keyring;
use super::codec::{Space, open_token, reseal_plain, seal_token};
use super::record::{key_bytes, parse_key};
use super::redis_conn::{RedisConn, RedisTopology};
use super::redis_wait::{ReplicaWait, Replication};
use super::{Cas, Reachable, Sealing, StoreError, StoredToken, TokenKey, Tokens, unix_now};
use crate::dcr::{Cause, durability};

/// How long a command is retried through a failover when the call sets no
/// deadline (a Cluster fails over within its node timeout, Sentinel within
/// its down-after time and an election).
const RETRY_BUDGET: Duration = Duration::from_secs(10);
/// First pause between attempts, doubled each time up to [`MAX_RETRY_PAUSE`].
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// Longest pause between attempts.
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(800);

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
}

/// Tokens, records and leases in Redis ([`super::Tokens`], [`super::Records`], [`super::Leases`], [`super::Sealing`]).
#[derive(Clone)]
pub struct RedisStore {
    conn: RedisConn,
    /// Credential writes and their replica waits (`WAIT` holds its
    /// connection); the same as `conn` when no write waits.
    writes: RedisConn,
    replication: Arc<Replication>,
    pub(super) prefix: RedisPrefix,
    pub(super) keyring: Option<Arc<Keyring>>,
}

fn backend(e: RedisError) -> StoreError {
    StoreError::Backend(Cause::of(format!("redis: {e}"), e))
}

/// Whether `e` is what a reconnection or a failover clears: worth trying
/// again after a pause.
fn transient(e: &RedisError) -> bool {
    use redis::ServerErrorKind as S;
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_cluster_error()
        || matches!(
            e.kind(),
            redis::ErrorKind::Server(S::ReadOnly | S::MasterDown | S::BusyLoading)
        )
}

impl RedisStore {
    /// Connects to `urls` (comma-separated `redis://` or `rediss://` URLs:
    /// one node, a Cluster's seed nodes, or the sentinels) run as
    /// `topology`; keys start with `prefix` (hash-tagged on a Cluster).
    pub async fn connect(
        urls: &SecretString,
        topology: &RedisTopology,
        wait: &ReplicaWait,
        prefix: RedisPrefix,
        keyring: Option<Arc<Keyring>>,
    ) -> Result<Self, StoreError> {
        // `rediss://` is the Redis client's own rustls configuration, built on
        // rustls's process default provider: ring, the only one compiled in
        // (see `tls::provider`).
        let list: Vec<&str> = urls.expose_secret().split(',').map(str::trim).collect();
        let conn = RedisConn::connect(topology, &list).await.map_err(backend)?;
        let replication = Replication::resolve(wait, &conn).await.map_err(backend)?;
        let writes = match replication.replicas() {
            0 => conn.clone(),
            _ => RedisConn::connect(topology, &list).await.map_err(backend)?,
        };
        let prefix = match topology {
            RedisTopology::Cluster => prefix.tagged(),
            _ => prefix,
        };
        tracing::info!(
            replicas = replication.replicas(),
            "redis token store: credential writes wait for this many replicas"
        );
        Ok(Self {
            conn,
            writes,
            replication: Arc::new(replication),
            prefix,
            keyring,
        })
    }

    /// Replicas each credential write waits for.
    pub fn min_replicas(&self) -> u32 {
        self.replication.replicas()
    }

    /// How many replica waits fell short so far (a metric reads it).
    pub fn replica_shortfalls(&self) -> Arc<AtomicU64> {
        self.replication.shortfalls()
    }

    /// Runs `op`, retrying through a reconnection or a failover.
    pub(super) async fn with_retry<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(RedisConn) -> Fut,
        Fut: std::future::Future<Output = Result<T, RedisError>>,
    {
        let now = Instant::now();
        let deadline = match durability::deadline() {
            Some(deadline) if deadline > now => deadline,
            _ => now + RETRY_BUDGET,
        };
        retrying(&self.conn, op, deadline).await
    }

    /// Runs the credential write `op` (on the Redis key `rkey`), then waits
    /// for replicas to hold it.
    pub(super) async fn durably<T, F, Fut>(&self, rkey: &str, op: F) -> Result<T, StoreError>
    where
        F: Fn(RedisConn) -> Fut,
        Fut: std::future::Future<Output = Result<T, RedisError>>,
    {
        // A credential is kept even when its caller stops waiting (the
        // call's tail runs on, detached): never less than the full budget.
        let deadline = Instant::now() + RETRY_BUDGET;
        let deadline = durability::deadline().map_or(deadline, |d| d.max(deadline));
        let written = retrying(&self.writes, op, deadline).await?;
        self.replication.wait(&self.writes, rkey).await;
        Ok(written)
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

    /// The generation and value under a Redis key, if both are there.
    pub(super) async fn raw(&self, rkey: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let (generation, value): (Option<u64>, Option<Vec<u8>>) = self
            .with_retry(|mut c: RedisConn| async move {
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

    /// Every Redis key of this store's tokens.
    async fn keys(&self) -> Result<Vec<String>, StoreError> {
        self.keys_matching(self.prefix.pattern()).await
    }

    /// Every Redis key matching `pattern`, on every master.
    pub(super) async fn keys_matching(&self, pattern: String) -> Result<Vec<String>, StoreError> {
        self.with_retry(|c| {
            let pattern = pattern.clone();
            async move { c.scan(&pattern).await }
        })
        .await
    }
}

/// Runs `op` on `conn` until it succeeds, fails for good, or `deadline`
/// leaves no time for another attempt.
async fn retrying<T, F, Fut>(conn: &RedisConn, op: F, deadline: Instant) -> Result<T, StoreError>
where
    F: Fn(RedisConn) -> Fut,
    Fut: std::future::Future<Output = Result<T, RedisError>>,
{
    let mut pause = RETRY_PAUSE;
    let mut attempt = 1u32;
    loop {
        match op(conn.clone()).await {
            Ok(v) => return Ok(v),
            Err(e) if transient(&e) && Instant::now() + pause < deadline => {
                tracing::warn!(error = %e, attempt, "redis token store: retrying after a connection error or a failover");
                conn.after_error(&e).await;
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_RETRY_PAUSE);
                attempt += 1;
            }
            Err(e) => return Err(backend(e)),
        }
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
impl Reachable for RedisStore {
    async fn reachable(&self) -> bool {
        // One attempt, no retry: readiness asks now, and asks again. On a
        // Cluster, PING goes to any node the client holds.
        let mut conn = self.conn.clone();
        let answered = redis::cmd("PING").query_async::<String>(&mut conn).await;
        if let Err(e) = &answered {
            self.conn.after_error(e).await;
        }
        answered.is_ok()
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
