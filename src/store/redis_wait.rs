//! Waiting for replicas before a credential write is answered.
//!
//! Redis replicates asynchronously: a write the master acknowledged can
//! vanish when a replica that missed it is promoted. After every write that
//! stores a credential (a registration access token, a managed client's
//! record, a lease's fence), the store sends `WAIT` on the connection that
//! wrote it, bounded by the call's deadline. `WAIT` says the write is on N
//! replicas; it is not a consensus write (a replica that missed it can still
//! be promoted in rare partitions). A wait that falls short leaves the write
//! in place, tells the call ([`crate::dcr::durability`]) and is counted.
//!
//! `WAIT` holds its connection until it returns, so credential writes have
//! a connection of their own (reads never queue behind a wait), and after a
//! wait falls short the next ones are short too for a while: a lost replica
//! costs each write a few milliseconds, not the whole wait.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::dcr::durability;

use super::redis_conn::RedisConn;

/// Default longest wait for replicas, when the call's deadline is further.
pub const DEFAULT_REPLICA_WAIT: Duration = Duration::from_millis(1000);
/// Longest wait that may be configured: below the reply timeout.
pub const MAX_REPLICA_WAIT: Duration = Duration::from_millis(1500);
/// Most replicas a write may wait for.
pub const MAX_MIN_REPLICAS: u32 = 16;
/// A wait once one fell short, while replicas are missing.
const DEGRADED_WAIT: Duration = Duration::from_millis(20);
/// How long waits stay short after one fell short.
const DEGRADED_FOR: Duration = Duration::from_secs(5);

/// How many replicas a credential write waits for, and for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaWait {
    /// Replicas to wait for; `None`: 1 where the servers have replicas at
    /// start, 0 on a lone node.
    pub min_replicas: Option<u32>,
    /// The longest wait (the call's deadline may make it shorter).
    pub max_wait: Duration,
}

impl Default for ReplicaWait {
    fn default() -> Self {
        Self {
            min_replicas: None,
            max_wait: DEFAULT_REPLICA_WAIT,
        }
    }
}

/// The resolved wait, and what it has counted.
#[derive(Debug)]
pub(super) struct Replication {
    replicas: u32,
    max_wait: Duration,
    short_until: Mutex<Option<Instant>>,
    shortfalls: Arc<AtomicU64>,
}

impl Replication {
    /// Resolves `wait` against what `conn` reaches now.
    pub(super) async fn resolve(
        wait: &ReplicaWait,
        conn: &RedisConn,
    ) -> Result<Self, redis::RedisError> {
        let replicas = match wait.min_replicas {
            Some(n) => n,
            None => u32::from(conn.replicas().await? > 0),
        };
        Ok(Self {
            replicas,
            max_wait: wait.max_wait,
            short_until: Mutex::new(None),
            shortfalls: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Replicas each credential write waits for.
    pub(super) fn replicas(&self) -> u32 {
        self.replicas
    }

    /// The count of waits that fell short, shared with whoever reports it.
    pub(super) fn shortfalls(&self) -> Arc<AtomicU64> {
        self.shortfalls.clone()
    }

    /// Waits for the replicas to hold every write `conn` made so far (the
    /// last on the master of `key`); a shortfall is told and counted.
    pub(super) async fn wait(&self, conn: &RedisConn, key: &str) {
        if self.replicas == 0 {
            return;
        }
        let now = Instant::now();
        let mut limit = self.max_wait;
        // A caller still waiting bounds the wait; a detached tail (its
        // caller gone) waits the whole of it.
        if let Some(left) = durability::deadline()
            .map(|d| d.saturating_duration_since(now))
            .filter(|left| !left.is_zero())
        {
            limit = limit.min(left);
        }
        let degraded = {
            let until = self.short_until.lock().unwrap_or_else(|e| e.into_inner());
            until.is_some_and(|t| t > now)
        };
        if degraded {
            limit = limit.min(DEGRADED_WAIT);
        }
        let acked = conn.wait(key, self.replicas, limit).await;
        let short = match &acked {
            Ok(n) => *n < self.replicas,
            Err(e) => {
                tracing::warn!(error = %e, "redis token store: waiting for replicas failed");
                true
            }
        };
        if short {
            self.shortfalls.fetch_add(1, Ordering::Relaxed);
            *self.short_until.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(Instant::now() + DEGRADED_FOR);
            durability::note_short();
            tracing::warn!(
                asked = self.replicas,
                acked = acked.as_ref().ok().copied(),
                "redis token store: a credential write reached fewer replicas than asked; \
                 it may not survive a failover"
            );
        }
    }
}
