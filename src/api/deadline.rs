//! The caller's deadline, from the `grpc-timeout` header.

use std::time::{Duration, Instant};

use tonic::metadata::MetadataMap;

/// The least taken off the caller's budget, so the gateway answers
/// DEADLINE_EXCEEDED itself before tonic's own timer would end the call as
/// CANCELLED.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(5);
/// The most taken off the caller's budget.
const MAX_DEADLINE_MARGIN: Duration = Duration::from_millis(100);

/// Parses a `grpc-timeout` value: 1 to 8 ASCII digits and a unit (`H`, `M`,
/// `S`, `m`, `u`, `n`), per the gRPC over HTTP/2 spec. `None` when malformed.
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if !value.is_ascii() {
        return None;
    }
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// When the call must be answered: the caller's `grpc-timeout` (or `default`
/// when it sent none or a malformed one) cut to `max`, so no caller can hold a
/// call (and its lock and slot) for days, less a fifth of it, kept between
/// [`DEADLINE_MARGIN`] and 100 ms, so the answer is ready before tonic's timer
/// fires even on a busy machine.
pub fn deadline(metadata: &MetadataMap, default: Duration, max: Duration, now: Instant) -> Instant {
    let budget = metadata
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
        .unwrap_or(default)
        .min(max);
    let margin = (budget / 5).clamp(DEADLINE_MARGIN, MAX_DEADLINE_MARGIN);
    now + budget.saturating_sub(margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(parse_grpc_timeout("200m"), Some(Duration::from_millis(200)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "m", "123456789S", "1x", "-1S", "1.5S", "é"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }
}
