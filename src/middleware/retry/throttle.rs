//! Failure-driven retry throttling per upstream, after gRFC A6: a token count
//! that every failed attempt drains by one and every success refills by
//! [`TOKEN_RATIO`]; retries are allowed only while it is above half of
//! [`MAX_TOKENS`].
//!
//! The retry budget bounds retries by the request rate, but its floor lets
//! every call retry to the limit when calls are few. This bounds them by the
//! upstream's health instead: against a server failing everything, a handful
//! of retries drain the count and from then on every call makes one attempt,
//! whatever the rate. First attempts are never throttled, so calls succeed
//! again the moment the server heals, and each success earns retries back.

use std::sync::atomic::{AtomicU32, Ordering};

/// The token count's ceiling and start (gRFC A6's `maxTokens`): about fifty
/// failures in a row close retries, so a burst of transient errors is ridden
/// out while a dead server costs about fifty retries, not three per call.
pub const MAX_TOKENS: u32 = 100;
/// Tokens a success adds back (gRFC A6's `tokenRatio`): one per success, so
/// retries stay open while at most half the attempts fail and reopen within a
/// few successes once the server heals.
pub const TOKEN_RATIO: f64 = 1.0;

/// Thousandths of a token, so the count is one atomic integer.
const MILLI: u32 = 1000;
const MAX: u32 = MAX_TOKENS * MILLI;
const REFILL: u32 = (TOKEN_RATIO * MILLI as f64) as u32;

/// One upstream's token count; see the module documentation.
#[derive(Debug)]
pub struct Throttle {
    milli_tokens: AtomicU32,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            milli_tokens: AtomicU32::new(MAX),
        }
    }
}

impl Throttle {
    /// An attempt failed in a way a retry could help with (the server or the
    /// network failed).
    pub fn failure(&self) {
        let _ = self
            .milli_tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_sub(MILLI))
            });
    }

    /// An attempt got an answer from a working server.
    pub fn success(&self) {
        let _ = self
            .milli_tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some((t + REFILL).min(MAX))
            });
    }

    /// Whether a retry may be made now.
    pub fn allows_retry(&self) -> bool {
        self.milli_tokens.load(Ordering::Acquire) > MAX / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_close_retries_and_successes_reopen_them() {
        let t = Throttle::default();
        assert!(t.allows_retry());
        for _ in 0..49 {
            t.failure();
        }
        assert!(t.allows_retry(), "a burst of failures is ridden out");
        t.failure();
        assert!(!t.allows_retry(), "half the tokens gone must stop retries");
        for _ in 0..1000 {
            t.failure();
        }
        for _ in 0..50 {
            t.success();
        }
        assert!(!t.allows_retry());
        t.success();
        assert!(t.allows_retry(), "successes earn retries back");
        for _ in 0..1000 {
            t.success();
        }
        assert_eq!(t.milli_tokens.load(Ordering::Acquire), MAX);
    }
}
