//! Which failures may be retried, per operation (the operation table's
//! `idempotent`, and how far the attempt got, [`Delivery`]), and how long to
//! wait.
//!
//! | operation | retried when |
//! |---|---|
//! | every operation | the request provably never left: the connection could not be made |
//! | idempotent ones (GetClient, UpdateClient, DeleteClient) | also after it may have arrived: 429, 502, 503, 504, a reset or lost response, an attempt timeout |
//! | the others (RegisterClient, RotateClientSecret, RotateRegistrationToken) | never once sent: a retry could create a second client or burn the new token |

use std::time::Duration;

use super::RetryConfig;
use crate::dcr::{DcrError, Delivery, FailureClass, Operation};

/// Whether a failure classified as `class` of an attempt of `op` may be
/// retried: the upstream is failing, and the request never left or is safe
/// to repeat.
pub fn retryable(op: Operation, class: &FailureClass) -> bool {
    class.upstream_failing && (op.spec().idempotent || class.delivery == Delivery::NeverSent)
}

/// The exponential backoff before retry number `retry` (1 for the first), with
/// full jitter: uniform on `[0, min(max, base * 2^(retry-1))]`. `unit` is a
/// uniform random number in `[0, 1)`.
pub fn backoff(config: &RetryConfig, retry: u32, unit: f64) -> Duration {
    let exp = config
        .backoff_base
        .saturating_mul(1u32 << (retry.saturating_sub(1)).min(20));
    exp.min(config.backoff_max).mul_f64(unit.clamp(0.0, 1.0))
}

/// The wait before the next attempt: the backoff, or the server's
/// `Retry-After` (cut to `retry_after_max`) when that is longer.
pub fn wait(config: &RetryConfig, retry: u32, unit: f64, err: &DcrError) -> Duration {
    let backoff = backoff(config, retry, unit);
    match err {
        DcrError::Upstream(f) => f.retry_after.map_or(backoff, |after| {
            backoff.max(after.min(config.retry_after_max))
        }),
        _ => backoff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcr::UpstreamFailure;

    fn config() -> RetryConfig {
        RetryConfig {
            max_attempts: 4,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            retry_after_max: Duration::from_secs(5),
            budget_percent: 20,
            budget_min_per_second: 10,
        }
    }

    fn http(status: u16, retry_after: Option<u64>) -> DcrError {
        DcrError::Upstream(UpstreamFailure {
            retry_after: retry_after.map(Duration::from_secs),
            json_body: false,
            ..UpstreamFailure::with_status(status)
        })
    }

    #[test]
    fn one_shot_operations_are_retried_only_when_nothing_left() {
        for op in [
            Operation::Register,
            Operation::RotateSecret,
            Operation::RotateToken,
        ] {
            assert!(retryable(op, &DcrError::Connect("refused".into()).class()));
            for err in [
                http(503, None),
                http(429, None),
                DcrError::Transport("reset".into()),
                DcrError::Timeout(Duration::ZERO),
            ] {
                assert!(!retryable(op, &err.class()), "{op:?} {err}");
            }
        }
        for op in [Operation::Get, Operation::Update, Operation::Delete] {
            for err in [
                http(429, None),
                http(502, None),
                http(503, None),
                http(504, None),
                DcrError::Transport("reset".into()),
            ] {
                assert!(retryable(op, &err.class()), "{op:?} {err}");
            }
            for err in [
                http(400, None),
                http(401, None),
                http(500, None),
                DcrError::Overloaded(1),
                DcrError::DeadlineExceeded,
            ] {
                assert!(!retryable(op, &err.class()), "{op:?} {err}");
            }
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_full_jitter() {
        let c = config();
        assert_eq!(backoff(&c, 1, 0.999_999).as_millis(), 99);
        assert_eq!(backoff(&c, 3, 0.5), Duration::from_millis(200));
        assert_eq!(backoff(&c, 30, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(&c, 2, 0.0), Duration::ZERO);
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let c = config();
        assert_eq!(
            wait(&c, 1, 0.0, &http(503, Some(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            wait(&c, 1, 0.0, &http(503, Some(60))),
            Duration::from_secs(5)
        );
    }
}
