//! `grpc-timeout` header values from callers: a bounded duration or nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The body is shared with the seed replay in `tests/fuzz_inputs.rs`.
fuzz_target!(|data: &[u8]| {
    let _ = dcr_gateway::fuzzing::grpc_timeout(data);
});
