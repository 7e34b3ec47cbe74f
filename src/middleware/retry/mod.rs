//! The retry layer: per-operation policy ([`policy`]), full-jitter backoff,
//! `Retry-After`, a retry budget shared by all calls, failure-driven
//! throttling per upstream ([`throttle`]), and the caller's deadline.
//!
//! A call whose operation says "gone after a lost answer means done"
//! (DeleteClient), whose earlier attempt may have been processed with its
//! answer lost (timeout, broken connection, 5xx) and whose retry is answered
//! with a proven token rejection or 404, is reported as done: the first
//! attempt deleted the client, and the retry found it gone.

pub mod policy;
pub mod throttle;

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tower::retry::budget::{Budget, TpsBudget};
use tower::util::rng::{HasherRng, Rng};
use tower::{Layer, Service, ServiceExt};

use super::{DcrFuture, DomainService};
use crate::dcr::{
    DcrError, DcrRequest, DcrResponse, Delivery, FailureClass, GoneAfterLostAnswer, Reason,
};
use crate::telemetry::Metrics;
use throttle::Throttle;

/// How long deposits count toward the retry budget.
const BUDGET_WINDOW: Duration = Duration::from_secs(10);

/// Retry settings; see `dcr-gateway serve --help`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryConfig {
    /// Most attempts per call, the first included.
    pub max_attempts: u32,
    /// First backoff; doubled per retry.
    pub backoff_base: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
    /// Longest `Retry-After` honoured.
    pub retry_after_max: Duration,
    /// Share of the request rate retries may add, in percent.
    pub budget_percent: u32,
    /// Retries per second allowed whatever the request rate.
    pub budget_min_per_second: u32,
}

/// Adds [`Retry`] around a service. Clones share one budget and one throttle
/// (a layer serves one upstream).
#[derive(Clone)]
pub struct RetryLayer {
    config: Arc<RetryConfig>,
    budget: Arc<TpsBudget>,
    throttle: Arc<Throttle>,
    metrics: Arc<Metrics>,
}

impl RetryLayer {
    /// A layer with its own budget, recording into `metrics`.
    pub fn new(config: RetryConfig, metrics: Arc<Metrics>) -> Self {
        let percent = config.budget_percent as f32 / 100.0;
        let budget = TpsBudget::new(BUDGET_WINDOW, config.budget_min_per_second, percent);
        Self {
            config: Arc::new(config),
            budget: Arc::new(budget),
            throttle: Arc::default(),
            metrics,
        }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry {
            inner,
            config: self.config.clone(),
            budget: self.budget.clone(),
            throttle: self.throttle.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// The retry middleware; see the module documentation.
#[derive(Clone)]
pub struct Retry<S> {
    inner: S,
    config: Arc<RetryConfig>,
    budget: Arc<TpsBudget>,
    throttle: Arc<Throttle>,
    metrics: Arc<Metrics>,
}

impl<S: DomainService> Service<DcrRequest> for Retry<S> {
    type Response = DcrResponse;
    type Error = DcrError;
    type Future = DcrFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), DcrError>> {
        // Each attempt waits for readiness itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: DcrRequest) -> DcrFuture {
        let inner = self.inner.clone();
        let config = self.config.clone();
        let budget = self.budget.clone();
        let throttle = self.throttle.clone();
        let metrics = self.metrics.clone();
        budget.deposit();
        Box::pin(async move {
            let op = req.operation();
            let method = op.rpc_name();
            let mut rng = HasherRng::new();
            let mut answer_lost = false;
            let mut attempt = 1;
            loop {
                req.attempt = attempt - 1;
                let err = match inner.clone().oneshot(req.clone()).await {
                    Ok(resp) => {
                        throttle.success();
                        return Ok(resp);
                    }
                    Err(err) => err,
                };
                let class = err.class();
                if class.upstream_failing {
                    throttle.failure();
                }
                if op.spec().gone_after_lost_answer == GoneAfterLostAnswer::Done
                    && answer_lost
                    && gone(&class)
                {
                    tracing::info!(
                        "delete retry found the client gone after a lost answer: reporting it deleted"
                    );
                    return Ok(DcrResponse::Deleted);
                }
                if !policy::retryable(op, &class) {
                    return Err(err);
                }
                // The last attempt's error moves into the one the caller gets.
                let stop = |err, reason, retry_after| {
                    Err(DcrError::RetryStopped {
                        reason,
                        attempts: attempt,
                        last: Box::new(err),
                        retry_after,
                    })
                };
                if attempt >= config.max_attempts {
                    return stop(err, "retries used up", None);
                }
                if !throttle.allows_retry() {
                    metrics.retry_throttled(method);
                    tracing::warn!(
                        event = "retry_throttled",
                        attempt,
                        "the upstream is failing: retries are throttled"
                    );
                    return stop(
                        err,
                        "retries throttled while the upstream is failing",
                        Some(config.backoff_max),
                    );
                }
                if !budget.withdraw() {
                    metrics.budget_exhausted(method);
                    tracing::warn!(
                        event = "retry_budget_exhausted",
                        attempt,
                        "retry budget exhausted: not retrying"
                    );
                    return stop(err, "retry budget exhausted", Some(config.backoff_max));
                }
                let wait = policy::wait(&config, attempt, rng.next_f64(), &err);
                if req.deadline.is_some_and(|d| Instant::now() + wait >= d) {
                    tracing::info!(
                        event = "retry_past_deadline",
                        wait_ms = wait.as_millis() as u64,
                        "not retrying past the deadline"
                    );
                    return stop(
                        err,
                        "the next retry would pass the caller's deadline",
                        Some(wait),
                    );
                }
                metrics.retry(method);
                tracing::info!(
                    event = "retry_wait",
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    error = err.log_label(),
                    "retrying"
                );
                tokio::time::sleep(wait).await;
                answer_lost |= class.delivery == Delivery::MayHaveBeenProcessed;
                attempt += 1;
            }
        })
    }
}

/// A proven token rejection, a proven loss or a 404: what a delete retry
/// meets when the first attempt succeeded.
fn gone(class: &FailureClass) -> bool {
    class.token_rejected || class.client_gone || class.reason == Reason::ClientNotFound
}
