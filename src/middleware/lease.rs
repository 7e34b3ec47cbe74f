//! The lease layer: on a store that replicas share (Redis), management calls
//! on one client are serialised across processes too, by a lease per
//! (upstream, caller namespace, client id) with a fencing number.
//!
//! A call takes the lease (waiting for it under the caller's deadline), keeps
//! it renewed every third of its TTL while it runs (its detached tail
//! included), and gives it back when done. Every token it stores goes through
//! a compare-and-set that the store refuses unless the lease is still this
//! call's fence, so a call whose lease expired (a paused process, a
//! partition) cannot overwrite what the next holder wrote. The lease's TTL is
//! above the worst-case call, so it expires only when its holder is gone.
//!
//! What it cannot do: the authorization server does not check fences. A
//! holder that lost its lease can still have a request in flight to the
//! server; its answer is then refused by the store, and only its caller has
//! the credential it brought back.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tower::{Layer, Service, ServiceExt};

use super::{DcrFuture, DomainService};
use crate::dcr::{DcrError, DcrRequest, DcrResponse};
use crate::store::{TokenKey, TokenStore};

/// First wait before asking again for a lease another replica holds; doubled
/// up to [`POLL_MAX`].
const POLL_BASE: Duration = Duration::from_millis(5);
/// Longest wait between asks.
const POLL_MAX: Duration = Duration::from_millis(200);

/// Adds [`Lease`] around a service.
#[derive(Clone)]
pub struct LeaseLayer {
    store: Arc<dyn TokenStore>,
    upstream: Arc<str>,
    ttl: Duration,
}

impl LeaseLayer {
    /// Leases in `store` for calls to `upstream`, each held for `ttl` at a
    /// time (renewed while the call runs).
    pub fn new(store: Arc<dyn TokenStore>, upstream: &str, ttl: Duration) -> Self {
        Self {
            store,
            upstream: upstream.trim_end_matches('/').into(),
            ttl,
        }
    }
}

impl<S> Layer<S> for LeaseLayer {
    type Service = Lease<S>;

    fn layer(&self, inner: S) -> Lease<S> {
        Lease {
            inner,
            layer: self.clone(),
        }
    }
}

/// The lease middleware; see the module documentation.
#[derive(Clone)]
pub struct Lease<S> {
    inner: S,
    layer: LeaseLayer,
}

impl<S: DomainService> Service<DcrRequest> for Lease<S> {
    type Response = DcrResponse;
    type Error = DcrError;
    type Future = DcrFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), DcrError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: DcrRequest) -> DcrFuture {
        let inner = self.inner.clone();
        let LeaseLayer {
            store,
            upstream,
            ttl,
        } = self.layer.clone();
        Box::pin(async move {
            let Some(target) = req.target() else {
                return inner.oneshot(req).await;
            };
            let key = TokenKey {
                upstream: upstream.to_string(),
                namespace: req.namespace.clone(),
                client_id: target.client_id.clone(),
            };
            let held = LeaseHold::take(store, key, ttl, req.deadline).await?;
            req.fence = Some(held.fence());
            let result = inner.oneshot(req).await;
            held.release().await;
            result
        })
    }
}

/// A lease held on a shared store: renewed until released, and released even
/// when dropped before (a caller gone before anything was sent), so another
/// replica never waits out the TTL for nothing. Calls on one client hold one
/// (this layer); so do managed clients' operations on one name.
pub struct LeaseHold {
    store: Arc<dyn TokenStore>,
    key: TokenKey,
    fence: u64,
    renewal: tokio::task::JoinHandle<()>,
    released: bool,
}

impl LeaseHold {
    /// Waits for the lease on `key` (asking with backoff, until `deadline`),
    /// then keeps it renewed every third of `ttl`.
    pub async fn take(
        store: Arc<dyn TokenStore>,
        key: TokenKey,
        ttl: Duration,
        deadline: Option<Instant>,
    ) -> Result<Self, DcrError> {
        let fence = take(store.as_ref(), &key, ttl, deadline).await?;
        Ok(Self {
            renewal: tokio::spawn(renew(store.clone(), key.clone(), fence, ttl)),
            store,
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
        if let Err(e) = self.store.release_lease(&self.key, self.fence).await {
            // It expires on its own after its TTL; the next holder waits.
            tracing::warn!(error = %e, "could not give the client's lease back");
        }
    }
}

impl Drop for LeaseHold {
    fn drop(&mut self) {
        self.renewal.abort();
        if !self.released {
            let (store, key, fence) = (self.store.clone(), self.key.clone(), self.fence);
            tokio::spawn(async move {
                let _ = store.release_lease(&key, fence).await;
            });
        }
    }
}

/// Waits for the lease, asking with backoff, until `deadline`.
async fn take(
    store: &dyn TokenStore,
    key: &TokenKey,
    ttl: Duration,
    deadline: Option<Instant>,
) -> Result<u64, DcrError> {
    let mut wait = POLL_BASE;
    loop {
        if let Some(fence) = store.take_lease(key, ttl).await.map_err(DcrError::Store)? {
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
async fn renew(store: Arc<dyn TokenStore>, key: TokenKey, fence: u64, ttl: Duration) {
    loop {
        tokio::time::sleep(ttl / 3).await;
        match store.renew_lease(&key, fence, ttl).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!(
                    "the client's lease was lost while its call ran; the store will refuse its answer"
                );
                return;
            }
            Err(e) => tracing::warn!(error = %e, "renewing the client's lease failed; retrying"),
        }
    }
}
