//! The processes one comparison drives, and the paths to them: the dev
//! upstream, the two reference servers, and the gateway three ways (memory
//! store, the default file store, memory store with OTLP export on).

use std::path::{Path as FsPath, PathBuf};
use std::time::{Duration, Instant};

use dcr_gateway::pb::v1::dynamic_client_registration_client::DynamicClientRegistrationClient;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::load::{self, Seed, Target};
use crate::servers::{Proc, spawn};

// The paths in order: (a) direct HTTP/JSON to the upstream, (b) a trivial
// gRPC echo, then these, then (d+otel).

/// (c): the floor, minimal translation.
pub const FLOOR: usize = 2;
/// (d): the gateway with the memory store.
pub const MEMORY: usize = 3;
/// (d-file): the gateway as shipped, file store (in a scratch folder).
pub const DEFAULT: usize = 4;

/// One path under load: a name for the report, where calls go, and the pid
/// whose CPU time they cost.
pub struct Path {
    pub name: &'static str,
    pub target: Target,
    pub pid: u32,
}

/// A folder under the system's temporary folder, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    /// A fresh folder named for this process.
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("dcr-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        Self(dir)
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Which token store a gateway runs with.
pub enum Store<'a> {
    /// `--token-store memory`.
    Memory,
    /// The default (file) store at `path`, sealed with the keyring in `keys`
    /// (a file store without one is a start error).
    File { path: &'a FsPath, keys: &'a FsPath },
    /// Any store, by its flags (`--redis` runs the Redis ones).
    Args(Vec<String>),
}

/// The benchmark's keyring (`k1`, bytes 0..=31): it seals made-up tokens.
const KEYRING: &str = "k1=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";

impl Scratch {
    /// Writes the benchmark's keyring (mode 0600) and returns its path.
    pub fn keyring(&self) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let file = self.join("keys");
        std::fs::write(&file, KEYRING).expect("write the keyring");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
            .expect("keyring mode");
        file
    }
}

impl Store<'_> {
    /// The flags that select this store.
    pub fn args(&self) -> Vec<String> {
        match self {
            Store::Memory => vec!["--token-store".into(), "memory".into()],
            Store::File { path, keys } => vec![
                "--token-store-path".into(),
                path.display().to_string(),
                "--token-store-keys-file".into(),
                keys.display().to_string(),
            ],
            Store::Args(args) => args.clone(),
        }
    }
}

/// Everything running, in the order [`Path`]s are indexed.
pub struct Fleet {
    pub paths: Vec<Path>,
    /// The dev upstream's base URL.
    pub upstream: String,
    /// The memory-store gateway's spawn → health SERVING.
    pub serving_in: Duration,
    /// Killed before the scratch folder goes (fields drop in order).
    _procs: Vec<Proc>,
    pub scratch: Scratch,
}

pub async fn channel(addr: &str) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("address")
        .connect()
        .await
        .expect("connect")
}

fn grpc(channel: Channel) -> Target {
    Target::Grpc(DynamicClientRegistrationClient::new(channel))
}

/// Starts the gateway and measures spawn → health SERVING.
pub async fn gateway(
    exe: &str,
    upstream: &str,
    store: Store<'_>,
    env: &[(&str, &str)],
) -> (Proc, Duration) {
    gateway_under(&[], exe, upstream, store, env).await
}

/// [`gateway`], run by `wrapper` (a program and its flags, such as valgrind's)
/// when it is not empty.
pub async fn gateway_under(
    wrapper: &[&str],
    exe: &str,
    upstream: &str,
    store: Store<'_>,
    env: &[(&str, &str)],
) -> (Proc, Duration) {
    let start = Instant::now();
    let mut args: Vec<String> = wrapper.iter().skip(1).map(|&a| a.to_owned()).collect();
    if !wrapper.is_empty() {
        args.push(exe.to_owned());
    }
    args.extend([
        "serve".to_owned(),
        "--upstream".into(),
        upstream.into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--admin-listen".into(),
        "off".into(),
    ]);
    args.extend(store.args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let program = wrapper.first().copied().unwrap_or(exe);
    let proc = spawn(program, &args, env, "gRPC listening on ").await;
    let mut health = HealthClient::new(channel(&proc.addr).await);
    loop {
        let req = HealthCheckRequest {
            service: String::new(),
        };
        if let Ok(resp) = health.check(req).await
            && resp.into_inner().status() == ServingStatus::Serving
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    (proc, start.elapsed())
}

/// A gRPC path to a gateway process.
pub async fn gateway_path(name: &'static str, proc: &Proc) -> Path {
    Path {
        name,
        target: grpc(channel(&proc.addr).await),
        pid: proc.pid,
    }
}

/// An OTLP/HTTP sink that accepts and drops everything.
async fn otlp_sink() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let app = axum::Router::new().fallback(|| async { "" });
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// `n` clients registered through `target`.
pub async fn seeds(target: &Target, n: usize) -> Vec<Seed> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(load::register(target).await.expect("seed registration"));
    }
    out
}

/// Starts the dev upstream (`gateway_exe dev-upstream`) on an ephemeral
/// port; returns it with its base URL.
pub async fn dev_upstream(gateway_exe: &str) -> (Proc, String) {
    let dev = spawn(
        gateway_exe,
        &["dev-upstream", "--listen", "127.0.0.1:0"],
        &[],
        "dev upstream on ",
    )
    .await;
    let upstream = format!("http://{}", dev.addr);
    (dev, upstream)
}

/// Starts every process; `me` is this binary (it runs the reference servers).
pub async fn start(me: &str, gateway_exe: &str) -> Fleet {
    let (dev, upstream) = dev_upstream(gateway_exe).await;
    let echo = spawn(me, &["--serve", "echo"], &[], "reference listening on ").await;
    let minimal = spawn(
        me,
        &["--serve", "minimal", "--upstream", &upstream],
        &[],
        "reference listening on ",
    )
    .await;
    let scratch = Scratch::new();
    let (memory, serving_in) = gateway(gateway_exe, &upstream, Store::Memory, &[]).await;
    let (path, keys) = (scratch.join("tokens.redb"), scratch.keyring());
    let store = Store::File {
        path: &path,
        keys: &keys,
    };
    let (default, _) = gateway(gateway_exe, &upstream, store, &[]).await;
    let sink = otlp_sink().await;
    let otel_env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", sink.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    ];
    let (otel, _) = gateway(gateway_exe, &upstream, Store::Memory, &otel_env).await;

    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .expect("HTTP client");
    let paths = vec![
        Path {
            name: "a: direct HTTP",
            target: Target::Http {
                http,
                base: upstream.clone(),
            },
            pid: dev.pid,
        },
        Path {
            name: "b: gRPC echo",
            target: grpc(channel(&echo.addr).await),
            pid: echo.pid,
        },
        Path {
            name: "c: minimal translation",
            target: grpc(channel(&minimal.addr).await),
            pid: minimal.pid,
        },
        gateway_path("d: gateway, memory store", &memory).await,
        gateway_path("d-file: gateway, default (file store)", &default).await,
        gateway_path("d+otel: gateway, memory, OTLP on", &otel).await,
    ];
    Fleet {
        paths,
        upstream,
        serving_in,
        _procs: vec![dev, echo, minimal, memory, default, otel],
        scratch,
    }
}
