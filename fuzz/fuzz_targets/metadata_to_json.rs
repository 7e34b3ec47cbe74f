//! A caller's `ClientMetadata` (arbitrary protobuf: huge and odd strings, deep
//! `Struct` nesting) → checked domain metadata → request JSON, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The body is shared with the seed replay in `tests/fuzz_inputs.rs`.
fuzz_target!(|data: &[u8]| {
    let _ = dcr_gateway::fuzzing::metadata_to_json_body(data);
});
