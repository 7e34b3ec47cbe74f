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
use std::time::Duration;

use tower::{Layer, Service, ServiceExt};

use super::{DcrFuture, DomainService};
use crate::coord::LeaseHold;
use crate::dcr::{DcrError, DcrRequest, DcrResponse};
use crate::store::{LeaseKey, Leases, TokenKey};

/// Adds [`Lease`] around a service.
#[derive(Clone)]
pub struct LeaseLayer {
    leases: Arc<dyn Leases>,
    upstream: Arc<str>,
    ttl: Duration,
}

impl LeaseLayer {
    /// Leases from `leases` for calls to `upstream`, each held for `ttl` at
    /// a time (renewed while the call runs).
    pub fn new(leases: Arc<dyn Leases>, upstream: &str, ttl: Duration) -> Self {
        Self {
            leases,
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
            leases,
            upstream,
            ttl,
        } = self.layer.clone();
        Box::pin(async move {
            let Some(target) = req.target() else {
                return inner.oneshot(req).await;
            };
            let key = LeaseKey::Client(TokenKey {
                upstream: upstream.to_string(),
                namespace: req.namespace.clone(),
                client_id: target.client_id.clone(),
            });
            let held = LeaseHold::take(leases, key, ttl, req.deadline).await?;
            req.fence = Some(held.fence());
            let result = inner.oneshot(req).await;
            held.release().await;
            result
        })
    }
}
