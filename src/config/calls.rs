//! How calls to the upstream are retried and shed: the retry policy and
//! budget, and the in-flight limit with its queue.

use std::time::Duration;

use super::check::{count, duration};
use super::{
    ConfigError, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_QUEUE,
    DEFAULT_QUEUE_TIMEOUT, DEFAULT_RETRY_AFTER_MAX, DEFAULT_RETRY_BACKOFF_BASE,
    DEFAULT_RETRY_BACKOFF_MAX, DEFAULT_RETRY_BUDGET_MIN_PER_SECOND, DEFAULT_RETRY_BUDGET_PERCENT,
    MIN_DURATION,
};
use crate::middleware::retry::RetryConfig;
use crate::middleware::shed::ShedConfig;

/// The retry and shedding settings as given (see `RawConfig`).
pub(super) struct RawCalls {
    pub(super) max_attempts: Option<u32>,
    pub(super) retry_backoff_base: Option<String>,
    pub(super) retry_backoff_max: Option<String>,
    pub(super) retry_after_max: Option<String>,
    pub(super) retry_budget_percent: Option<u32>,
    pub(super) retry_budget_min_per_second: Option<u32>,
    pub(super) max_in_flight: Option<usize>,
    pub(super) max_queue: Option<usize>,
    pub(super) queue_timeout: Option<String>,
}

impl RawCalls {
    pub(super) fn validate(self) -> Result<(RetryConfig, ShedConfig), ConfigError> {
        let backoff_base = duration(
            "--retry-backoff-base",
            self.retry_backoff_base,
            DEFAULT_RETRY_BACKOFF_BASE,
            MIN_DURATION,
        )?;
        let retry = RetryConfig {
            max_attempts: count(
                "--max-attempts",
                self.max_attempts,
                DEFAULT_MAX_ATTEMPTS,
                1..=10,
            )?,
            backoff_base,
            backoff_max: duration(
                "--retry-backoff-max",
                self.retry_backoff_max,
                DEFAULT_RETRY_BACKOFF_MAX,
                backoff_base,
            )?,
            retry_after_max: duration(
                "--retry-after-max",
                self.retry_after_max,
                DEFAULT_RETRY_AFTER_MAX,
                Duration::ZERO,
            )?,
            budget_percent: count(
                "--retry-budget-percent",
                self.retry_budget_percent,
                DEFAULT_RETRY_BUDGET_PERCENT,
                0..=1000,
            )?,
            budget_min_per_second: count(
                "--retry-budget-min-per-second",
                self.retry_budget_min_per_second,
                DEFAULT_RETRY_BUDGET_MIN_PER_SECOND,
                0..=100_000,
            )?,
        };
        let shed = ShedConfig {
            max_in_flight: count(
                "--max-in-flight",
                self.max_in_flight,
                DEFAULT_MAX_IN_FLIGHT,
                1..=100_000,
            )?,
            max_queue: count(
                "--max-queue",
                self.max_queue,
                DEFAULT_MAX_QUEUE,
                0..=100_000,
            )?,
            queue_timeout: duration(
                "--queue-timeout",
                self.queue_timeout,
                DEFAULT_QUEUE_TIMEOUT,
                MIN_DURATION,
            )?,
        };
        Ok((retry, shed))
    }
}

impl super::RawConfig {
    /// Takes the retry and shedding settings out, for checking.
    pub(super) fn take_calls(&mut self) -> RawCalls {
        RawCalls {
            max_attempts: self.max_attempts.take(),
            retry_backoff_base: self.retry_backoff_base.take(),
            retry_backoff_max: self.retry_backoff_max.take(),
            retry_after_max: self.retry_after_max.take(),
            retry_budget_percent: self.retry_budget_percent.take(),
            retry_budget_min_per_second: self.retry_budget_min_per_second.take(),
            max_in_flight: self.max_in_flight.take(),
            max_queue: self.max_queue.take(),
            queue_timeout: self.queue_timeout.take(),
        }
    }
}
