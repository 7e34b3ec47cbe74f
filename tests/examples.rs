//! The Python and Node callers under `examples/` complete the whole flow against
//! a gateway in front of the dev upstream. Their dependencies are installed here
//! (pip into a virtualenv under `target/`, `npm ci` from the committed lockfile).

mod support;

use std::path::{Path, PathBuf};

use support::{TestGateway, dev_upstream};
use tokio::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn run(program: &Path, args: &[&str], dir: &Path, what: &str) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} for {what} ({e}): install it",
                program.display()
            )
        });
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    stdout.into_owned()
}

/// Checks the example's output has every step, the managed ones first (case
/// aside: Python prints `True`, Node `true`).
fn assert_flow(output: &str, name: &str) {
    let output = output.to_lowercase();
    let prefix = name.trim_end_matches("-example");
    let managed = [
        format!("got an access token for {prefix}-tokens: bearer, scope 'reports:read'"),
        "asked again, the sidecar's held token: true".into(),
        "the resource accepted the token: active true, scope 'reports:read'".into(),
        format!("ensured {name}: ensure_outcome_created"),
        "ensured it again: ensure_outcome_unchanged, same client: true".into(),
        "watching: client_change_current".into(),
        "the watcher saw the new secret: client_change_secret_rotated (a new one: true)".into(),
        format!("forgot {name} and deleted its client"),
    ];
    for step in &managed {
        assert!(
            output.contains(step.as_str()),
            "the flow lacks {step:?}:\n{output}"
        );
    }
    for step in [
        "registered",
        "read",
        "updated name to",
        "rotated the client secret",
        "rotated the registration access token",
        "deleted",
        "reading it again: UNAUTHENTICATED",
        "flow complete",
    ] {
        let step = step.to_lowercase();
        assert!(output.contains(&step), "the flow lacks {step:?}:\n{output}");
    }
}

#[tokio::test]
async fn python_example_completes_the_flow() {
    let dev = dev_upstream().await;
    let gw = TestGateway::start(&dev.base_url()).await;
    let dir = root().join("examples/python");
    let venv = root().join("target/example-venv");
    if !venv.join("bin/python").exists() {
        run(
            Path::new("python3"),
            &["-m", "venv", venv.to_str().unwrap()],
            &dir,
            "python3 -m venv",
        )
        .await;
    }
    let pip = venv.join("bin/pip");
    run(
        &pip,
        &[
            "install",
            "-q",
            "--disable-pip-version-check",
            "-r",
            "requirements.txt",
        ],
        &dir,
        "pip install",
    )
    .await;
    let addr = gw.addr.to_string();
    let resource = format!("{}/_dev/resource", dev.base_url());
    let out = run(
        &venv.join("bin/python"),
        &["flow.py", "--addr", &addr, "--resource", &resource],
        &dir,
        "the Python example",
    )
    .await;
    assert_flow(&out, "python-example");
}

#[tokio::test]
async fn node_example_completes_the_flow() {
    let dev = dev_upstream().await;
    let gw = TestGateway::start(&dev.base_url()).await;
    let dir = root().join("examples/node");
    if !dir.join("node_modules/@grpc/grpc-js").exists() {
        run(
            Path::new("npm"),
            &["ci", "--no-audit", "--no-fund"],
            &dir,
            "npm ci",
        )
        .await;
    }
    let addr = gw.addr.to_string();
    let resource = format!("{}/_dev/resource", dev.base_url());
    let out = run(
        Path::new("node"),
        &["flow.js", "--addr", &addr, "--resource", &resource],
        &dir,
        "the Node example",
    )
    .await;
    assert_flow(&out, "node-example");
}
