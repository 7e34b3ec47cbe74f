//! The gateway binary as a child process, for tests that kill, signal or trace
//! it.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The built binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_dcr-gateway");

/// The binary with no `DCR_GATEWAY_*`, `OTEL_*` or `RUST_LOG` from the test
/// environment.
pub fn gateway() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("RUST_LOG").kill_on_drop(true);
    for (k, _) in std::env::vars() {
        if k.starts_with("DCR_GATEWAY_") || k.starts_with("OTEL_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// The text up to the first space or quote (log lines may be JSON).
fn first_word(text: &str) -> String {
    text.split(|c: char| c == '"' || c.is_whitespace())
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A running `serve` process.
pub struct Served {
    /// The process.
    pub child: Child,
    /// The gRPC address.
    pub addr: String,
    /// Everything it wrote to standard error so far.
    pub log: Arc<Mutex<String>>,
}

impl Served {
    /// The address from a `<what> listening on ADDR` log line, if logged.
    pub fn logged_addr(&self, what: &str) -> Option<String> {
        let log = self.log.lock().unwrap();
        let marker = format!("{what} listening on ");
        log.lines()
            .find_map(|l| l.split(&marker).nth(1))
            .map(first_word)
    }
}

/// `serve` with `args` as every test runs it: on a free gRPC port and with no
/// admin listener unless `args` choose them, so no test needs a fixed port
/// (a reader's quick-start gateway may hold the defaults, 50051 and 9464).
pub fn serve_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut out = vec!["serve"];
    out.extend_from_slice(args);
    if !args.contains(&"--listen") {
        out.extend(["--listen", "127.0.0.1:0"]);
    }
    if !args.contains(&"--admin-listen") {
        out.extend(["--admin-listen", "off"]);
    }
    out
}

/// Starts `serve` with `args` and `env` ([`serve_args`]), once it logs its
/// gRPC address.
pub async fn serve_with(args: &[&str], env: &[(&str, &str)]) -> Served {
    let mut child = gateway()
        .args(serve_args(args))
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let log = Arc::new(Mutex::new(String::new()));
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            log.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(addr) = line.split("gRPC listening on ").nth(1) {
                return first_word(addr);
            }
        }
        panic!(
            "the gateway exited before listening: {}",
            log.lock().unwrap()
        );
    })
    .await
    .expect("the gateway logs its address");
    // Keep reading standard error, so the child never blocks on a full pipe.
    let sink = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    Served { child, addr, log }
}

/// [`serve_with`] without extra environment; returns the child and address.
pub async fn serve(args: &[&str]) -> (Child, String) {
    let served = serve_with(args, &[]).await;
    (served.child, served.addr)
}

/// Runs the binary to completion; returns success, stdout and stderr. A
/// `serve` that must fail after it binds takes [`serve_args`]; one that fails
/// on its configuration is run as given (its listeners may be what is wrong).
pub async fn run(args: &[&str]) -> (bool, String, String) {
    run_with(args, &[]).await
}

/// [`run`] with extra environment (secret values have no flag).
pub async fn run_with(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = gateway()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.success(), text(out.stdout), text(out.stderr))
}
