//! The `--config` TOML file: parsed and validated into a configuration or one
//! error naming a setting. Settings that name files are dropped first, so the
//! fuzzer never reads the machine's files.
#![no_main]

use dcr_gateway::config::RawConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
        assert!(e.to_string().starts_with("--"), "an error must name its setting: {e}");
    }
});
