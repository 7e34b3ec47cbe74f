//! The deployment artifacts under `deploy/` (Dockerfile, kustomize base and
//! overlay, Helm chart) pass `deploy/validate.sh`: rendered by real kustomize and
//! Helm, validated against the Kubernetes JSON schemas, and checked for what the
//! gateway needs (a native sidecar, gRPC health probes, hardened security
//! contexts, config keys that `serve --config` accepts). Its validators are pinned
//! in `deploy/tools/requirements.txt` and installed with pip into a virtualenv
//! under `target/`, as `tests/examples.rs` does for the Python example.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn deploy_manifests_pass_validate_sh() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    match Command::new("python3").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "python3 --version failed ({}): deploy/validate.sh needs python3 with venv",
            out.status
        ),
        Err(e) => panic!(
            "cannot run python3 ({e}): deploy/validate.sh needs it (apt-get install python3 python3-venv)"
        ),
    }
    let out = Command::new("bash")
        .arg("deploy/validate.sh")
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run bash deploy/validate.sh ({e}): install bash"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "deploy/validate.sh failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("all checks passed"),
        "deploy/validate.sh exited 0 without finishing:\n{stdout}\n{stderr}"
    );
    // In the same test: validate.sh rewrites the folder the configs are in.
    rendered_config_files_are_accepted_by_the_gateway();
}

/// Every render's `config.toml` (written by validate.sh) loads with the
/// gateway's own parser, and validates once the files it names are swapped
/// for local ones: its keys, and its declared clients' tables, are settings
/// the gateway accepts, not only names the Python checks know.
fn rendered_config_files_are_accepted_by_the_gateway() {
    let rendered = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/deploy-rendered");
    let mut configs: Vec<PathBuf> = std::fs::read_dir(&rendered)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("config-") && name.ends_with(".toml")
        })
        .collect();
    configs.sort();
    assert!(configs.len() >= 5, "validate.sh wrote {configs:?}");
    let mut declared = 0;
    for path in &configs {
        let raw = dcr_gateway::config::RawConfig::from_file(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let credentials = tempfile::tempdir().unwrap();
        declared += raw.clients.len();
        let local = dcr_gateway::config::RawConfig {
            // The mounted files and the Secret-fed settings are the cluster's;
            // what is checked here is everything else.
            initial_access_token_file: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            tls_reload_interval: None,
            upstream_ca_file: None,
            upstream_client_cert: None,
            upstream_client_key: None,
            listen: Some("127.0.0.1:0".into()),
            health_listen: Some("127.0.0.1:0".into()),
            credentials_dir: raw
                .credentials_dir
                .as_ref()
                .map(|_| credentials.path().display().to_string()),
            token_store: dcr_gateway::config::RawStoreConfig {
                backend: Some("memory".into()),
                keys_file: None,
                ..raw.token_store
            },
            ..raw
        };
        local
            .validate()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    assert_eq!(
        declared, 2,
        "the declared-clients render has its two [[clients]]"
    );
}
