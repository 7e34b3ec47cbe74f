//! `dcr-bench`: what the sidecar costs, side by side with what a caller would
//! otherwise use, in one run on one machine.
//!
//! Paths, all driven by the same load generator over loopback:
//! (a) direct HTTP/JSON calls to the upstream; (b) a trivial gRPC echo service;
//! (c) minimal translation: the gRPC edge straight over the HTTP transport, no
//! middleware; (d) the gateway, whole stack, default configuration (memory
//! token store); (d+otel) the same with OTLP export on. Every server is its own
//! process, so CPU per call comes from /proc.
//!
//! `cargo run --release -p dcr-bench` (add `--quick` for a seconds-long run;
//! it runs the `dcr-gateway` binary next to its own, so build that first);
//! writes `results.md` and `latency.svg` to `--out` (default `bench-results`).
//! `--soak MINUTES` runs the soak (see `soak.rs`) and writes `soak.md`.
//! `--focus SECS` only compares (c) and (d), mixed at concurrency 16, for
//! quick A/B runs during speed work.
#![forbid(unsafe_code)]

mod load;
mod procfs;
mod report;
mod servers;
mod soak;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use dcr_gateway::pb::v1::dynamic_client_registration_client::DynamicClientRegistrationClient;
use dcr_gateway::reference::Reference;
use load::{Mix, Seed, Target};
use report::Stats;
use servers::{Proc, spawn};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

struct Settings {
    duration: Duration,
    reps: usize,
    concurrency: Vec<usize>,
    stored_tokens: usize,
}

async fn channel(addr: &str) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("address")
        .connect()
        .await
        .expect("connect")
}

/// Starts the gateway and measures spawn → health SERVING.
async fn gateway(exe: &str, upstream: &str, env: &[(&str, &str)]) -> (Proc, Duration) {
    let start = Instant::now();
    let args = [
        "serve",
        "--upstream",
        upstream,
        "--listen",
        "127.0.0.1:0",
        "--token-store",
        "memory",
        "--admin-listen",
        "off",
    ];
    let proc = spawn(exe, &args, env, "gRPC listening on ").await;
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

async fn seeds(target: &Target, n: usize) -> Vec<Seed> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(load::register(target).await.expect("seed registration"));
    }
    out
}

/// What the gateway costs, side by side with what a caller would otherwise
/// use, in one run on one machine.
#[derive(Debug, Parser)]
#[command(name = "dcr-bench")]
struct Args {
    /// A seconds-long run (fewer concurrencies, one repetition, 1,000 stored tokens).
    #[arg(long)]
    quick: bool,
    /// Run the soak for this many minutes instead, and write `soak.md`.
    #[arg(long, value_name = "MINUTES", conflicts_with_all = ["quick", "focus"])]
    soak: Option<u64>,
    /// Only compare (c) and (d), mixed at concurrency 16, for this many seconds each.
    #[arg(long, value_name = "SECS")]
    focus: Option<u64>,
    /// Folder for `results.md`, `latency.svg` and `soak.md`.
    #[arg(long, value_name = "DIR", default_value = "bench-results")]
    out: PathBuf,
    /// The gateway binary [default: `dcr-gateway` next to this binary].
    #[arg(long, value_name = "FILE")]
    gateway: Option<PathBuf>,
    /// Run one reference server instead (the benchmark starts these itself).
    #[arg(long, value_enum, hide = true)]
    serve: Option<ServeKind>,
    /// The upstream of `--serve minimal`.
    #[arg(long, hide = true, required_if_eq("serve", "minimal"))]
    upstream: Option<url::Url>,
}

/// The reference servers of `--serve`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ServeKind {
    Echo,
    Minimal,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Some(kind) = args.serve {
        let reference = match (kind, args.upstream) {
            (ServeKind::Minimal, Some(upstream)) => Reference::Minimal(upstream),
            _ => Reference::Echo,
        };
        dcr_gateway::reference::serve(reference).await;
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let gateway_exe = match args.gateway {
        Some(exe) => exe,
        None => std::env::current_exe()
            .expect("own path")
            .with_file_name("dcr-gateway"),
    };
    assert!(
        gateway_exe.is_file(),
        "no gateway binary at {} (build it: cargo build --release -p dcr-gateway, or give --gateway)",
        gateway_exe.display()
    );
    let out_dir = args.out;
    if let Some(minutes) = args.soak {
        let (md, passed) = soak::run(minutes, &gateway_exe.to_string_lossy()).await;
        std::fs::create_dir_all(&out_dir).expect("results folder");
        std::fs::write(out_dir.join("soak.md"), &md).expect("write soak.md");
        println!("{md}\nwrote {}", out_dir.join("soak.md").display());
        if !passed {
            std::process::exit(1);
        }
        return;
    }
    let settings = match args.quick {
        true => Settings {
            duration: Duration::from_millis(300),
            reps: 1,
            concurrency: vec![1, 16],
            stored_tokens: 1_000,
        },
        false => Settings {
            duration: Duration::from_secs(3),
            reps: 3,
            concurrency: vec![1, 16, 64],
            stored_tokens: 100_000,
        },
    };
    let me = std::env::current_exe().expect("own path");
    let (me, gateway_exe) = (
        me.to_string_lossy().into_owned(),
        gateway_exe.to_string_lossy().into_owned(),
    );

    let dev = spawn(
        &gateway_exe,
        &["dev-upstream", "--listen", "127.0.0.1:0"],
        &[],
        "dev upstream on ",
    )
    .await;
    let upstream = format!("http://{}", dev.addr);
    let echo = spawn(&me, &["--serve", "echo"], &[], "reference listening on ").await;
    let minimal = spawn(
        &me,
        &["--serve", "minimal", "--upstream", &upstream],
        &[],
        "reference listening on ",
    )
    .await;
    let (gw, serving_in) = gateway(&gateway_exe, &upstream, &[]).await;
    let idle_rss = procfs::memory_mib(gw.pid, "VmRSS:");
    let sink = otlp_sink().await;
    let otel_env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", sink.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    ];
    let (gw_otel, _) = gateway(&gateway_exe, &upstream, &otel_env).await;

    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .expect("HTTP client");
    let paths: Vec<(&str, Target, u32)> = vec![
        (
            "a: direct HTTP",
            Target::Http {
                http,
                base: upstream.clone(),
            },
            dev.pid,
        ),
        (
            "b: gRPC echo",
            Target::Grpc(DynamicClientRegistrationClient::new(
                channel(&echo.addr).await,
            )),
            echo.pid,
        ),
        (
            "c: minimal translation",
            Target::Grpc(DynamicClientRegistrationClient::new(
                channel(&minimal.addr).await,
            )),
            minimal.pid,
        ),
        (
            "d: gateway",
            Target::Grpc(DynamicClientRegistrationClient::new(
                channel(&gw.addr).await,
            )),
            gw.pid,
        ),
        (
            "d+otel: gateway, OTLP on",
            Target::Grpc(DynamicClientRegistrationClient::new(
                channel(&gw_otel.addr).await,
            )),
            gw_otel.pid,
        ),
    ];
    let max_c = *settings.concurrency.iter().max().unwrap_or(&1);
    let mut path_seeds = Vec::new();
    for (_, target, _) in &paths {
        path_seeds.push(seeds(target, max_c).await);
    }

    // `--focus SECS`: only (c) and (d), mixed, concurrency 16, alternating
    // twice, CPU per call printed: a quick A/B for speed work, with the pids
    // for `perf record -p`.
    if let Some(secs) = args.focus {
        println!("minimal pid {}, gateway pid {}", minimal.pid, gw.pid);
        for _ in 0..2 {
            for pi in [2, 3] {
                let (name, target, pid) = &paths[pi];
                let c = 16.min(path_seeds[pi].len());
                let cpu0 = procfs::cpu_seconds(*pid);
                let mut sample = load::run(
                    target,
                    Mix::Realistic,
                    &mut path_seeds[pi][..c],
                    Duration::from_secs(secs),
                )
                .await;
                let stats = report::stats(&mut sample, procfs::cpu_seconds(*pid) - cpu0);
                println!(
                    "{name}: {:.0} calls/s, p50 {:.3} ms, {:.1} µs CPU/call",
                    stats.throughput, stats.p50_ms, stats.cpu_us_per_call
                );
            }
        }
        return;
    }

    // results[mix][concurrency][path] = repetitions
    let mixes = [Mix::Realistic, Mix::GetOnly];
    let mut results =
        vec![vec![vec![Vec::<Stats>::new(); paths.len()]; settings.concurrency.len()]; mixes.len()];
    let mut cdf: Vec<Vec<u64>> = vec![Vec::new(); paths.len()];
    for _ in 0..settings.reps {
        for (mi, &mix) in mixes.iter().enumerate() {
            for (ci, &c) in settings.concurrency.iter().enumerate() {
                for (pi, (_, target, pid)) in paths.iter().enumerate() {
                    let cpu0 = procfs::cpu_seconds(*pid);
                    let mut sample =
                        load::run(target, mix, &mut path_seeds[pi][..c], settings.duration).await;
                    let cpu = procfs::cpu_seconds(*pid) - cpu0;
                    let stats = report::stats(&mut sample, cpu);
                    if mix == Mix::Realistic && c == 16 {
                        cdf[pi].extend(&sample.latencies_us);
                    }
                    results[mi][ci][pi].push(stats);
                }
            }
        }
    }

    // Peak memory: the gateway's store filled, then the highest concurrency.
    let gw_target = &paths[3].1;
    let fill: Vec<_> = (0..64).map(|_| gw_target.clone()).collect();
    let per = settings.stored_tokens / fill.len();
    let mut tasks = Vec::new();
    for target in fill {
        tasks.push(tokio::spawn(async move {
            for _ in 0..per {
                let _ = load::register(&target).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    load::run(
        gw_target,
        Mix::GetOnly,
        &mut path_seeds[3][..max_c],
        settings.duration,
    )
    .await;
    let peak_rss = procfs::memory_mib(gw.pid, "VmHWM:");
    let binary_mib =
        std::fs::metadata(&gateway_exe).map_or(0.0, |m| m.len() as f64 / (1 << 20) as f64);

    let mut md = String::new();
    let _ = writeln!(
        md,
        "## dcr-bench results{}\n",
        if args.quick { " (--quick)" } else { "" }
    );
    let _ = writeln!(
        md,
        "{} s per cell, {} repetition(s), interleaved; medians over repetitions, calls/s spread in brackets.\n",
        settings.duration.as_secs_f64(),
        settings.reps
    );
    for (mi, mix) in mixes.iter().enumerate() {
        for (ci, c) in settings.concurrency.iter().enumerate() {
            let _ = writeln!(md, "### {} mix, concurrency {c}\n", mix.name());
            md.push_str(report::HEADER);
            for (pi, (name, _, _)) in paths.iter().enumerate() {
                report::row(&mut md, name, &results[mi][ci][pi]);
            }
            md.push('\n');
        }
    }
    let m = |mi: usize, ci: usize, pi: usize| report::median(&results[mi][ci][pi]).0;
    let _ = writeln!(
        md,
        "### Ratios (mixed)\n\n| concurrency | p50 d/c | p99 d/c | calls/s d/c | CPU/call d/c | p50 d/(a+b) |\n|---|---|---|---|---|---|"
    );
    for (ci, c) in settings.concurrency.iter().enumerate() {
        let (a, b, cc, d) = (m(0, ci, 0), m(0, ci, 1), m(0, ci, 2), m(0, ci, 3));
        let _ = writeln!(
            md,
            "| {c} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            d.p50_ms / cc.p50_ms,
            d.p99_ms / cc.p99_ms,
            d.throughput / cc.throughput,
            d.cpu_us_per_call / cc.cpu_us_per_call,
            d.p50_ms / (a.p50_ms + b.p50_ms)
        );
    }
    let _ = writeln!(
        md,
        "\n### Gateway process\n\n| measure | value |\n|---|---|\n| start to health SERVING | {:.1} ms |\n| RSS idle | {idle_rss:.1} MiB |\n| RSS peak (VmHWM), {} tokens stored, concurrency {max_c} | {peak_rss:.1} MiB |\n| binary size | {binary_mib:.1} MiB |",
        serving_in.as_secs_f64() * 1000.0,
        settings.stored_tokens
    );
    let series: Vec<(&str, Vec<u64>)> = paths
        .iter()
        .zip(cdf)
        .map(|((name, _, _), mut l)| {
            l.sort_unstable();
            (*name, l)
        })
        .collect();
    let chart = report::svg("Latency CDF, mixed operations, concurrency 16", &series);
    std::fs::create_dir_all(&out_dir).expect("results folder");
    std::fs::write(out_dir.join("results.md"), &md).expect("write results.md");
    std::fs::write(out_dir.join("latency.svg"), chart).expect("write latency.svg");
    println!("{md}");
    println!(
        "wrote {} and {}",
        out_dir.join("results.md").display(),
        out_dir.join("latency.svg").display()
    );
    drop((dev, echo, minimal, gw, gw_otel));
}
