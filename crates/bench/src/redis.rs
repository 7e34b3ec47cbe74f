//! `--redis`: what the Redis topologies cost, on the mixed workload at
//! concurrency 16 (CPU per call of the gateway process, calls/s, latency):
//! one redis-server, a Cluster (three masters, a replica each) whose
//! credential writes do not wait for a replica, and the same Cluster with
//! the default wait for one replica. The last two differ only by the wait,
//! so their ratio is its cost. Every server runs on loopback, started here
//! (redis-server and redis-cli must be installed).

use std::fmt::Write as _;
use std::path::Path as FsPath;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::compare;
use crate::fleet::{self, Scratch, Store};
use crate::load::WORKLOADS;
use crate::report::Stats;
use crate::servers;

/// Concurrent callers.
const CONCURRENCY: usize = 16;
/// Masters of the Cluster (each with one replica).
const MASTERS: usize = 3;

/// One redis-server process, killed when dropped.
struct Server {
    _child: Child,
    port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Starts redis-server in its own folder under `dir`, with `extra` settings.
async fn server(dir: &FsPath, extra: &[String]) -> Server {
    let port = free_port();
    let folder = dir.join(format!("redis-{port}"));
    std::fs::create_dir_all(&folder).expect("redis folder");
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(&folder)
        .args(extra)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server runs (Debian: apt-get install redis-server)");
    wait_for(port, &["PING"], "PONG").await;
    Server {
        _child: child,
        port,
    }
}

/// `redis-cli -p port args...`'s output.
async fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .await
        .expect("redis-cli runs (it comes with redis-server)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits (up to a minute) until `redis-cli args` on `port` says `want`.
async fn wait_for(port: u16, args: &[&str], want: &str) {
    for _ in 0..6000 {
        if cli(port, args).await.contains(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("redis on port {port} never answered {args:?} with {want}");
}

/// A Cluster of [`MASTERS`] masters with a replica each, every slot served
/// and every replica in sync.
async fn cluster(dir: &FsPath) -> Vec<Server> {
    let mut nodes = Vec::new();
    for _ in 0..MASTERS * 2 {
        let settings = [
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            &free_port().to_string(),
            "--cluster-config-file",
            "nodes.conf",
        ]
        .map(str::to_owned);
        nodes.push(server(dir, &settings).await);
    }
    let mut create = Command::new("redis-cli");
    create.args(["--cluster", "create"]);
    for node in &nodes {
        create.arg(format!("127.0.0.1:{}", node.port));
    }
    let out = create
        .args(["--cluster-replicas", "1", "--cluster-yes"])
        .output()
        .await
        .expect("redis-cli runs");
    assert!(out.status.success(), "redis-cli --cluster create failed");
    for node in &nodes {
        wait_for(node.port, &["CLUSTER", "INFO"], "cluster_state:ok").await;
    }
    for node in &nodes {
        if cli(node.port, &["ROLE"]).await.starts_with("slave") {
            wait_for(node.port, &["INFO", "replication"], "master_link_status:up").await;
        }
    }
    nodes
}

/// Runs the measurement; returns the report as Markdown.
pub async fn run(gateway_exe: &str, quick: bool) -> String {
    servers::ensure_installed("redis-server", "redis-server").await;
    let duration = Duration::from_millis(if quick { 500 } else { 3_000 });
    let reps = if quick { 1 } else { 2 };
    let scratch = Scratch::new();
    let keys = scratch.keyring();
    let keys = keys.display().to_string();
    let (_dev, upstream) = fleet::dev_upstream(gateway_exe).await;
    let dir = scratch.join("redis");
    let one = server(&dir, &[]).await;
    let nodes = cluster(&dir).await;
    let seeds: Vec<String> = nodes
        .iter()
        .map(|n| format!("redis://127.0.0.1:{}", n.port))
        .collect();
    let seeds = seeds.join(",");
    let single = format!("redis://127.0.0.1:{}", one.port);
    let configs: [(&str, Vec<&str>); 3] = [
        ("redis, one node", vec!["redis", &single]),
        (
            "redis-cluster, no replica wait",
            vec!["redis-cluster", &seeds, "0"],
        ),
        (
            "redis-cluster, wait for 1 replica",
            vec!["redis-cluster", &seeds],
        ),
    ];
    let mut paths = Vec::new();
    for (name, config) in &configs {
        let mut args = vec![
            "--token-store".to_owned(),
            config[0].to_owned(),
            "--token-store-redis-url".into(),
            config[1].to_owned(),
            "--token-store-redis-prefix".into(),
            format!("bench-{}", paths.len()),
            "--token-store-keys-file".into(),
            keys.clone(),
        ];
        if let Some(n) = config.get(2) {
            args.extend(["--token-store-redis-min-replicas".into(), (*n).to_owned()]);
        }
        let (proc, _) = fleet::gateway(gateway_exe, &upstream, Store::Args(args), &[]).await;
        let path = fleet::gateway_path(name, &proc).await;
        let seeds = fleet::seeds(&path.target, CONCURRENCY).await;
        paths.push((proc, path, seeds));
    }
    let mut rows: Vec<Vec<Stats>> = Vec::new();
    for _ in 0..reps {
        let mut row = Vec::new();
        for (_, path, seeds) in &mut paths {
            let (stats, _) = compare::cell(path, WORKLOADS[0], seeds, CONCURRENCY, duration).await;
            row.push(stats);
        }
        rows.push(row);
    }
    report(&configs.map(|(name, _)| name), &rows, quick)
}

fn report(names: &[&str; 3], rows: &[Vec<Stats>], quick: bool) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# The token store on Redis: one node, a Cluster, and the replica wait\n\n\
         {} at concurrency {CONCURRENCY}, {} repetition(s), alternating; CPU is the gateway \
         process's user+system time per call; ratios are to the one-node store in the same \
         repetition.{}\n\n\
         | rep | store | calls/s | p50 / p99 ms | CPU µs/call | calls/s ratio | CPU ratio | errors |\n\
         |---|---|---|---|---|---|---|---|",
        WORKLOADS[0].name,
        rows.len(),
        if quick {
            " (--quick: short, for CI)"
        } else {
            ""
        },
    );
    for (i, row) in rows.iter().enumerate() {
        let base = &row[0];
        for (name, s) in names.iter().zip(row) {
            let _ = writeln!(
                md,
                "| {} | {name} | {:.0} | {:.2} / {:.2} | {:.1} | {:.2}× | {:.2}× | {} |",
                i + 1,
                s.throughput,
                s.p50_ms,
                s.p99_ms,
                s.cpu_us_per_call,
                s.throughput / base.throughput.max(f64::EPSILON),
                s.cpu_us_per_call / base.cpu_us_per_call.max(f64::EPSILON),
                s.errors,
            );
        }
    }
    md
}
