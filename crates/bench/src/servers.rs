//! Running the processes under test: the dev upstream, the gateway, and the
//! two reference servers this binary runs as child processes of itself
//! (`--serve echo` and `--serve minimal`, from `dcr_gateway::reference`).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A server process and its address.
pub struct Proc {
    /// Killed when dropped.
    _child: Child,
    pub addr: String,
    pub pid: u32,
}

impl Proc {
    /// Kills the process and waits until it is gone (its ports are free).
    pub async fn kill(mut self) {
        let _ = self._child.kill().await;
    }

    /// Stops the process with SIGTERM, as Kubernetes does, and waits up to
    /// `bound` for it to exit (a tool it runs under, such as valgrind,
    /// writes its output then); panics if it has not, and the drop kills it.
    pub async fn terminate(mut self, bound: Duration) {
        let pid = self.pid.to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().await;
        assert!(
            sent.is_ok_and(|s| s.success()),
            "cannot send SIGTERM to {pid}"
        );
        let exited = tokio::time::timeout(bound, self._child.wait()).await;
        assert!(
            exited.is_ok(),
            "process {pid} still running {bound:?} after SIGTERM"
        );
    }
}

/// Installs `program` from the Debian `package` with apt-get when it does not
/// run, as the test suite does for redis-server, or fails with the line that
/// says how.
pub async fn ensure_installed(program: &str, package: &str) {
    let runs = || async {
        Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success())
    };
    if runs().await {
        return;
    }
    eprintln!("{program} is missing: installing it with apt-get");
    let install = format!(
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {package}"
    );
    let _ = Command::new("sh")
        .args(["-c", &install])
        .stdout(Stdio::null())
        .status()
        .await;
    assert!(
        runs().await,
        "{program} is missing and apt-get could not install it: install it (Debian: apt-get install {package})"
    );
}

/// `program`, to run with only the settings the benchmark gives it: every
/// `DCR_GATEWAY_*` and `OTEL_*` variable of the benchmark's own
/// environment is left out (a keyring or a store setting there would
/// change what is measured, or stop the start), and so is `RUST_LOG`.
pub fn command(program: &str) -> Command {
    let mut command = Command::new(program);
    for (name, _) in std::env::vars_os() {
        let inherited = name.to_string_lossy();
        if inherited.starts_with("DCR_GATEWAY_") || inherited.starts_with("OTEL_") {
            command.env_remove(&name);
        }
    }
    command.env_remove("RUST_LOG");
    command
}

/// Spawns `program args` ([`command`]) and waits for a line containing
/// `marker ADDR`.
pub async fn spawn(program: &str, args: &[&str], env: &[(&str, &str)], marker: &str) -> Proc {
    let mut child = command(program)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let pid = child.id().unwrap_or_default();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = tokio::select! {
            l = err.next_line() => l,
            l = out.next_line() => l,
        };
        match line {
            Ok(Some(line)) => {
                if let Some(rest) = line.split(marker).nth(1) {
                    let addr = rest
                        .trim()
                        .split(|c: char| c == '"' || c.is_whitespace())
                        .next()
                        .unwrap_or_default();
                    break addr
                        .trim_start_matches("http://")
                        .trim_end_matches(':')
                        .to_owned();
                }
            }
            _ => panic!("{program} exited before printing {marker:?}"),
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = err.next_line().await {} });
    tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
    Proc {
        _child: child,
        addr,
        pid,
    }
}
