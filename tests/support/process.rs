//! The gateway binary as a child process, for tests that kill or signal it.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The built binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_dcr-gateway");

/// The binary with no `DCR_GATEWAY_*` or `RUST_LOG` from the test environment.
pub fn gateway() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("RUST_LOG").kill_on_drop(true);
    for (k, _) in std::env::vars() {
        if k.starts_with("DCR_GATEWAY_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Starts `serve` with `args` (plus `--listen 127.0.0.1:0`) and returns the
/// child and the address from its "listening" log line.
pub async fn serve(args: &[&str]) -> (Child, String) {
    let mut child = gateway()
        .arg("serve")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .args(if args.contains(&"--admin-listen") {
            &[][..]
        } else {
            &["--admin-listen", "off"][..]
        })
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(addr) = line.split("gRPC listening on ").nth(1) {
                return addr.trim().to_owned();
            }
            seen.push(line);
        }
        panic!("the gateway exited before listening: {seen:#?}");
    })
    .await
    .expect("the gateway logs its address");
    // Keep draining stderr so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

/// Runs the binary to completion; returns success, stdout and stderr.
pub async fn run(args: &[&str]) -> (bool, String, String) {
    let out = gateway().args(args).output().await.unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.success(), text(out.stdout), text(out.stderr))
}
