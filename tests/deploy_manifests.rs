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
}
