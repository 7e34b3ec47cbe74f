//! The `--config` TOML file: parsed and validated into a configuration or one
//! error naming a setting. Settings that name files are dropped first, so the
//! fuzzer never reads the machine's files.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The body is shared with the seed replay in `tests/fuzz_inputs.rs`.
fuzz_target!(|data: &[u8]| {
    let _ = dcr_gateway::fuzzing::config_file(data);
});
