//! The load-shedding layer: at most `max_in_flight` upstream calls at once, at
//! most `max_queue` waiting (each for at most `queue_timeout`), and everything
//! beyond answered RESOURCE_EXHAUSTED at once. Never an unbounded queue, never a
//! hang.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Semaphore;
use tower::{Layer, Service, ServiceExt};

use super::{DcrFuture, DomainService};
use crate::dcr::{DcrError, DcrRequest, DcrResponse};
use crate::telemetry::Metrics;

/// Load-shedding settings; see `dcr-gateway serve --help`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShedConfig {
    /// Most upstream calls in flight.
    pub max_in_flight: usize,
    /// Most calls waiting for a slot.
    pub max_queue: usize,
    /// Longest wait for a slot.
    pub queue_timeout: Duration,
}

/// Adds [`Shed`] around a service. Clones share the same limits.
#[derive(Clone)]
pub struct ShedLayer {
    state: Arc<State>,
}

struct State {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    config: ShedConfig,
    metrics: Arc<Metrics>,
}

impl ShedLayer {
    /// A layer with fresh limits, recording into `metrics`.
    pub fn new(config: ShedConfig, metrics: Arc<Metrics>) -> Self {
        let slots = Arc::new(Semaphore::new(config.max_in_flight));
        let waiting = AtomicUsize::new(0);
        Self {
            state: Arc::new(State {
                slots,
                waiting,
                config,
                metrics,
            }),
        }
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Shed<S> {
        Shed {
            inner,
            state: self.state.clone(),
        }
    }
}

/// The load-shedding middleware; see the module documentation.
#[derive(Clone)]
pub struct Shed<S> {
    inner: S,
    state: Arc<State>,
}

/// Decrements the waiting count however the wait ends (cancellation included).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<S: DomainService> Service<DcrRequest> for Shed<S> {
    type Response = DcrResponse;
    type Error = DcrError;
    type Future = DcrFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), DcrError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: DcrRequest) -> DcrFuture {
        let inner = self.inner.clone();
        let state = self.state.clone();
        Box::pin(async move {
            let overloaded = || {
                state.metrics.shed();
                tracing::warn!(
                    event = "load_shed",
                    "load shed: every upstream slot and queue place is taken"
                );
                DcrError::Overloaded(state.config.max_in_flight)
            };
            let permit = match state.slots.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    if state.waiting.fetch_add(1, Ordering::AcqRel) >= state.config.max_queue {
                        state.waiting.fetch_sub(1, Ordering::AcqRel);
                        return Err(overloaded());
                    }
                    let _waiting = Waiting(&state.waiting);
                    let acquire = state.slots.clone().acquire_owned();
                    match tokio::time::timeout(state.config.queue_timeout, acquire).await {
                        Ok(Ok(permit)) => permit,
                        _ => return Err(overloaded()),
                    }
                }
            };
            let _slot = state.metrics.upstream_slot();
            let result = inner.oneshot(req).await;
            drop(permit);
            result
        })
    }
}
