//! Replays every input under `fuzz/seeds/<target>/` through the very body its
//! fuzz target runs (`dcr_gateway::fuzzing`), on every `cargo test`. The seeds
//! start the fuzzers; an input a fuzzer finds crashing is minimised (`cargo
//! fuzz tmin`) and added there, so it stays fixed.

use std::path::Path;

use dcr_gateway::fuzzing;

/// The inputs of one target; there must be some.
fn inputs(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
}

#[test]
fn upstream_json_inputs() {
    let parsed = inputs("upstream_json")
        .iter()
        .filter(|d| fuzzing::upstream_json(d))
        .count();
    assert!(parsed > 0, "no seed parses into a client");
}

#[test]
fn metadata_to_json_inputs() {
    let checked = inputs("metadata_to_json")
        .iter()
        .filter(|d| fuzzing::metadata_to_json_body(d))
        .count();
    assert!(checked > 0, "no seed is valid metadata");
}

#[test]
fn retry_after_inputs() {
    inputs("retry_after")
        .iter()
        .for_each(|d| fuzzing::retry_after(d));
}

#[test]
fn grpc_timeout_inputs() {
    inputs("grpc_timeout")
        .iter()
        .for_each(|d| fuzzing::grpc_timeout(d));
}

#[test]
fn config_file_inputs() {
    inputs("config_file")
        .iter()
        .for_each(|d| fuzzing::config_file(d));
}

#[test]
fn a_config_without_a_keyring_names_the_settings_to_set() {
    // What a fuzzer reaches by turning `memory` into `file`: the error must
    // still name a setting, as the fuzz target checks.
    fuzzing::config_file(
        b"upstream = \"https://auth.example\"\n[token_store]\nbackend = \"file\"\n",
    );
}
