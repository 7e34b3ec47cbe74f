//! `grpc-timeout` header values from callers: a bounded duration or nothing.
#![no_main]

use dcr_gateway::api::parse_grpc_timeout;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_grpc_timeout(text);
});
