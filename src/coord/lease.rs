//! A lease held on a shared store, for as long as one piece of work runs:
//! taken with backoff under a deadline, renewed every third of its TTL,
//! given back when done (or when dropped before). Calls on a client hold one
//! (`middleware::lease`); so do managed clients' operations on a name.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dcr::DcrError;
use crate::store::{LeaseKey, Leases};

/// First wait before asking again for a lease another replica holds; doubled
/// up to [`POLL_MAX`].
const POLL_BASE: Duration = Duration::from_millis(5);
/// Longest wait between asks.
const POLL_MAX: Duration = Duration::from_millis(200);

/// A lease held on a shared store: renewed until released, and released even
/// when dropped before (a caller gone before anything was sent), so another
/// replica never waits out the TTL for nothing. Calls on one client hold one
/// (this layer); so do managed clients' operations on one name.
pub struct LeaseHold {
    leases: Arc<dyn Leases>,
    key: LeaseKey,
    fence: u64,
    renewal: tokio::task::JoinHandle<()>,
    released: bool,
}

impl LeaseHold {
    /// Waits for the lease on `key` (asking with backoff, until `deadline`),
    /// then keeps it renewed every third of `ttl`.
    pub async fn take(
        leases: Arc<dyn Leases>,
        key: LeaseKey,
        ttl: Duration,
        deadline: Option<Instant>,
    ) -> Result<Self, DcrError> {
        let fence = take(leases.as_ref(), &key, ttl, deadline).await?;
        Ok(Self {
            renewal: tokio::spawn(renew(leases.clone(), key.clone(), fence, ttl)),
            leases,
            key,
            fence,
            released: false,
        })
    }

    /// The lease's fencing number.
    pub fn fence(&self) -> u64 {
        self.fence
    }

    /// Gives the lease back.
    pub async fn release(mut self) {
        self.renewal.abort();
        self.released = true;
        if let Err(e) = self.leases.release_lease(&self.key, self.fence).await {
            // It expires on its own after its TTL; the next holder waits.
            tracing::warn!(error = %e, "could not give a lease back");
        }
    }
}

impl Drop for LeaseHold {
    fn drop(&mut self) {
        self.renewal.abort();
        if !self.released {
            let (leases, key, fence) = (self.leases.clone(), self.key.clone(), self.fence);
            tokio::spawn(async move {
                let _ = leases.release_lease(&key, fence).await;
            });
        }
    }
}

/// Waits for the lease, asking with backoff, until `deadline`.
async fn take(
    leases: &dyn Leases,
    key: &LeaseKey,
    ttl: Duration,
    deadline: Option<Instant>,
) -> Result<u64, DcrError> {
    let mut wait = POLL_BASE;
    loop {
        if let Some(fence) = leases.take_lease(key, ttl).await.map_err(DcrError::Store)? {
            return Ok(fence);
        }
        if deadline.is_some_and(|d| Instant::now() + wait >= d) {
            return Err(DcrError::DeadlineExceeded);
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(POLL_MAX);
    }
}

/// Renews the lease every third of its TTL until aborted or lost.
async fn renew(leases: Arc<dyn Leases>, key: LeaseKey, fence: u64, ttl: Duration) {
    loop {
        tokio::time::sleep(ttl / 3).await;
        match leases.renew_lease(&key, fence, ttl).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!(
                    "a lease was lost while its holder ran; the store refuses what it writes after"
                );
                return;
            }
            Err(e) => tracing::warn!(error = %e, "renewing a lease failed; retrying"),
        }
    }
}
