//! An upstream's response body → `Client`: whatever the authorization server
//! sends, parsing ends in a client or a field error, and a parsed client
//! survives the trip back to JSON and in again.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The body is shared with the seed replay in `tests/fuzz_inputs.rs`.
fuzz_target!(|data: &[u8]| {
    let _ = dcr_gateway::fuzzing::upstream_json(data);
});
