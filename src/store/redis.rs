//! The Redis backend, for replicas that share their tokens, records and
//! leases (`redis_tokens.rs`, `redis_records.rs`, `redis_leases.rs`): every
//! change a Lua script, atomic on the server, on the keys of one group
//! (one slot on a Cluster; see [`RedisPrefix`]). The connection
//! ([`RedisConn`]) reconnects on its own and follows a failover; a command
//! that meets one (a dropped connection, `READONLY`, `MOVED`, `TRYAGAIN`,
//! `CLUSTERDOWN`) is retried until the call's deadline (a credential write
//! for at least [`RETRY_BUDGET`], as its call's tail runs on detached), and
//! then waits for replicas ([`Replication`]).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::RedisError;
use secrecy::{ExposeSecret, SecretString};

use super::cipher::Keyring;
use super::redis_conn::{RedisConn, RedisTopology};
use super::redis_wait::{ReplicaWait, Replication};
use super::{Reachable, RedisPrefix, StoreError};
use crate::dcr::{Cause, durability};

/// How long a command is retried through a failover when the call sets no
/// deadline (a Cluster fails over within its node timeout, Sentinel within
/// its down-after time and an election).
const RETRY_BUDGET: Duration = Duration::from_secs(10);
/// First pause between attempts, doubled each time up to [`MAX_RETRY_PAUSE`].
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// Longest pause between attempts.
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(800);

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
