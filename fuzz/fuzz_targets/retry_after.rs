//! `Retry-After` values from an upstream: seconds or an HTTP date, anything
//! else ignored, never a panic or overflow.
#![no_main]

use std::time::{Duration, SystemTime};

use dcr_gateway::upstream::parse_retry_after;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let _ = parse_retry_after(text, now);
});
