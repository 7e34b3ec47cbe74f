//! `Retry-After` values from an upstream: seconds or an HTTP date, anything
//! else ignored, never a panic or overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The body is shared with the seed replay in `tests/fuzz_inputs.rs`.
fuzz_target!(|data: &[u8]| {
    let _ = dcr_gateway::fuzzing::retry_after(data);
});
