//! The bodies of the fuzz targets (`fuzz/fuzz_targets/`), shared with the
//! replay test (`tests/fuzz_inputs.rs`), so the seeds are replayed through the
//! very code, and the very checks, each target runs. Each panics on a broken
//! property; the ones that parse say whether the input got through, so the
//! replay can check its seeds are not all rejected at the door.

use std::time::{Duration, SystemTime};

use prost::Message;

use crate::api::{metadata_from_proto, parse_grpc_timeout};
use crate::config::RawConfig;
use crate::dcr::json::{client_from_json, client_to_json_exposing_secrets, metadata_to_json};
use crate::pb::v1 as pb;
use crate::upstream::parse_retry_after;

/// An upstream response body: a client parsed from it must parse again from
/// its own JSON. `true` when it parsed.
pub fn upstream_json(data: &[u8]) -> bool {
    let Ok(obj) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(data) else {
        return false;
    };
    let Ok(client) = client_from_json(obj) else {
        return false;
    };
    let again = client_to_json_exposing_secrets(&client);
    assert!(
        client_from_json(again).is_ok(),
        "a parsed client must parse again"
    );
    true
}

/// A caller's `ClientMetadata` as arbitrary protobuf: checked metadata always
/// serialises to request JSON. `true` when it passed the checks.
pub fn metadata_to_json_body(data: &[u8]) -> bool {
    let Ok(message) = pb::ClientMetadata::decode(data) else {
        return false;
    };
    let Ok(metadata) = metadata_from_proto(message, "metadata") else {
        return false;
    };
    serde_json::to_vec(&metadata_to_json(&metadata)).expect("checked metadata always serialises");
    true
}

/// A `Retry-After` value: parsing never panics.
pub fn retry_after(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let _ = parse_retry_after(text, now);
    }
}

/// A `grpc-timeout` value: parsing never panics.
pub fn grpc_timeout(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_grpc_timeout(text);
    }
}

/// The `--config` TOML file: it validates, or its error names a setting (a
/// flag or an environment variable). Settings that name files are dropped
/// first, so the fuzzer never reads the machine's files.
pub fn config_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut raw) = toml::from_str::<RawConfig>(text) else {
        return;
    };
    raw.callers_file = None;
    raw.tls_cert = None;
    raw.tls_key = None;
    raw.tls_client_ca = None;
    raw.upstream_ca_file = None;
    raw.upstream_client_cert = None;
    raw.upstream_client_key = None;
    raw.initial_access_token_file = None;
    raw.token_store.keys_file = None;
    raw.token_store.path = None;
    if let Err(e) = raw.validate() {
        let text = e.to_string();
        assert!(
            text.contains("--") || text.contains("DCR_GATEWAY_"),
            "an error must name its setting: {text}"
        );
    }
}
