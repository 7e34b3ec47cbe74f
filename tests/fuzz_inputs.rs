//! Replays every input under `fuzz/seeds/<target>/` through the code its fuzz
//! target drives, with the same checks, on every `cargo test`. The seeds start
//! the fuzzers; an input a fuzzer finds crashing is minimised (`cargo fuzz
//! tmin`) and added there, so it stays fixed.

use std::path::Path;
use std::time::{Duration, SystemTime};

use dcr_gateway::api::{metadata_from_proto, parse_grpc_timeout};
use dcr_gateway::config::RawConfig;
use dcr_gateway::dcr::json::{client_from_json, client_to_json_exposing_secrets, metadata_to_json};
use dcr_gateway::pb::v1 as pb;
use dcr_gateway::upstream::parse_retry_after;
use prost::Message;

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
    let mut parsed = 0;
    for data in inputs("upstream_json") {
        let Ok(obj) = serde_json::from_slice(&data) else {
            continue;
        };
        if let Ok(client) = client_from_json(obj) {
            parsed += 1;
            assert!(client_from_json(client_to_json_exposing_secrets(&client)).is_ok());
        }
    }
    assert!(parsed > 0, "no seed parses into a client");
}

#[test]
fn metadata_to_json_inputs() {
    let mut checked = 0;
    for data in inputs("metadata_to_json") {
        let Ok(message) = pb::ClientMetadata::decode(data.as_slice()) else {
            continue;
        };
        if let Ok(metadata) = metadata_from_proto(message, "metadata") {
            checked += 1;
            serde_json::to_vec(&metadata_to_json(&metadata)).unwrap();
        }
    }
    assert!(checked > 0, "no seed is valid metadata");
}

#[test]
fn retry_after_inputs() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    for data in inputs("retry_after") {
        if let Ok(text) = std::str::from_utf8(&data) {
            let _ = parse_retry_after(text, now);
        }
    }
}

#[test]
fn grpc_timeout_inputs() {
    for data in inputs("grpc_timeout") {
        if let Ok(text) = std::str::from_utf8(&data) {
            let _ = parse_grpc_timeout(text);
        }
    }
}

#[test]
fn config_file_inputs() {
    for data in inputs("config_file") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        let Ok(raw) = toml::from_str::<RawConfig>(text) else {
            continue;
        };
        if let Err(e) = raw.validate() {
            assert!(e.to_string().starts_with("--"), "{e}");
        }
    }
}
