//! A real redis-server on an ephemeral loopback port, with its data in a
//! temporary folder (append-only, fsync always) so it survives a restart.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// What to do when redis-server is missing and cannot be installed here.
const INSTALL_HINT: &str = "install it (Debian: apt-get install redis-server)";

/// Installs redis-server when it is missing, as `.ci/run` does, so that the
/// README's test command needs nothing but the Rust toolchain on a Debian
/// machine where it runs as root; elsewhere it fails with the one line that
/// says how. Once per test process.
fn ensure_installed() {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let runs = || {
        std::process::Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let result = INSTALLED.get_or_init(|| {
        if runs() {
            return Ok(());
        }
        eprintln!("redis-server is missing: installing it with apt-get");
        let installed = std::process::Command::new("sh")
            .args([
                "-c",
                "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server",
            ])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        match installed && runs() {
            true => Ok(()),
            false => Err(format!("redis-server is missing and apt-get could not install it: {INSTALL_HINT}")),
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A running redis-server.
pub struct RedisServer {
    pub port: u16,
    dir: super::TempDir,
    child: Option<Child>,
    /// Settings beyond the defaults (a cluster node's, a replica's).
    extra: Vec<String>,
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    /// Starts redis-server, or fails with a clear message when it is missing.
    pub async fn start() -> Self {
        Self::start_with(Vec::new()).await
    }

    /// Starts redis-server with `extra` settings (`--name value` pairs).
    pub async fn start_with(extra: Vec<String>) -> Self {
        let mut server = Self {
            port: free_port(),
            dir: super::temp_dir("redis"),
            child: None,
            extra,
        };
        server.spawn().await;
        server
    }

    /// Kills the server with SIGKILL: nothing it held in memory only is
    /// saved, nothing is handed to its replicas.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    /// Whether the server runs (it was not killed).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The server's folder (its data, a cluster node's config).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// `redis://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) {
        let port = self.port.to_string();
        let mut args: Vec<std::ffi::OsString> = [
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
        ]
        .iter()
        .map(Into::into)
        .collect();
        args.push(self.dir.as_os_str().to_owned());
        args.extend(self.extra.iter().map(Into::into));
        self.child = Some(spawn_redis(&args));
        self.wait_ready().await;
    }

    /// Waits until the server answers PING.
    async fn wait_ready(&self) {
        wait_ready(self.port).await;
    }

    /// Kills the server and starts it again on the same port and data.
    pub async fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
        self.spawn().await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// Waits until the server on `port` answers PING.
pub async fn wait_ready(port: u16) {
    for _ in 0..500 {
        if let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)).await {
            let mut reply = [0u8; 7];
            if conn.write_all(b"PING\r\n").await.is_ok()
                && conn.read_exact(&mut reply).await.is_ok()
                && &reply == b"+PONG\r\n"
            {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("redis-server did not become ready on port {port}");
}

/// Starts a process of `redis-server` with `args`, or fails with the line
/// that says how to install it.
pub fn spawn_redis(args: &[std::ffi::OsString]) -> Child {
    ensure_installed();
    Command::new("redis-server")
        .args(args)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run redis-server ({e}): {INSTALL_HINT}"))
}

/// A keyring for tests (`k1`, 32 bytes 0..=31).
pub const K1: &str = "k1=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Gateway settings for the Redis store at `url` under `prefix`, sealed with
/// [`K1`].
pub fn store_config(url: &str, prefix: &str) -> dcr_gateway::config::RawConfig {
    dcr_gateway::config::RawConfig {
        token_store: dcr_gateway::config::RawStoreConfig {
            backend: Some("redis".into()),
            redis_url: Some(url.parse().unwrap()),
            redis_prefix: Some(prefix.into()),
            keys: Some(K1.parse().unwrap()),
            ..Default::default()
        },
        ..Default::default()
    }
}

impl RedisServer {
    /// A connection of the test's own, for looking at or planting raw values.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// Every key matching `pattern`.
    pub async fn keys(&self, pattern: &str) -> Vec<String> {
        redis::cmd("KEYS")
            .arg(pattern)
            .query_async(&mut self.connection().await)
            .await
            .unwrap()
    }
}
