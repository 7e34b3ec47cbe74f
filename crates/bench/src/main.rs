//! `dcr-bench`: what the sidecar costs, side by side with what a caller would
//! otherwise use, in one run on one machine.
//!
//! Paths, all driven by the same load generator over loopback:
//! (a) direct HTTP/JSON calls to the upstream; (b) a trivial gRPC echo service;
//! (c) the floor, minimal translation: the gRPC edge straight over the HTTP
//! transport, no middleware; (d) the gateway, whole stack, memory token store;
//! (d-file) the gateway as shipped, with the default file store (in a scratch
//! folder); (d+otel) (d) with OTLP export on. Two workloads: mixed operations
//! over many clients, and GetClient over one client. Every server is its own
//! process, so CPU per call comes from /proc.
//!
//! `cargo run --release -p dcr-bench` (add `--quick` for a seconds-long run;
//! it runs the `dcr-gateway` binary next to its own, so build that first);
//! writes `results.md` (the targets table first) and `latency.svg` to `--out`
//! (default `bench-results`). `--soak MINUTES` runs the soak (see `soak.rs`)
//! and writes `soak.md`. `--focus SECS` only compares (c), (d) and (d-file) at
//! concurrency 1 and 16, for quick A/B runs during speed work; `--memory` only the
//! memory figures; `--managed-names` whether a plain RPC's latency grows with
//! the number of managed names (see `names.rs`), written to `names.md`;
//! `--access-tokens` a cached GetAccessToken (`tokens.md`); `--redis` the
//! Redis token stores and the replica wait (`redis.md`); `--startup-order`
//! writes the gateway's link order (see `startup_order.rs`).
#![forbid(unsafe_code)]

mod compare;
mod fleet;
mod load;
mod memory;
mod names;
mod procfs;
mod redis;
mod report;
mod scaling;
mod servers;
mod soak;
mod startup_order;
mod targets;
mod tokens;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use compare::{Grid, Settings};
use dcr_gateway::reference::Reference;
use fleet::{DEFAULT, FLOOR, Fleet, MEMORY};
use load::WORKLOADS;

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
    /// Only compare (c), (d) and (d-file) at concurrency 1 and 16, for this many seconds each.
    #[arg(long, value_name = "SECS")]
    focus: Option<u64>,
    /// Only measure memory: each store idle, then with the stored tokens of
    /// the run (100,000; 1,000 with --quick) at its highest concurrency.
    #[arg(long, conflicts_with_all = ["focus", "soak"])]
    memory: bool,
    /// Only measure a plain RPC's latency with 0, 1,000 and 5,000 managed
    /// names (0, 100 and 400 with --quick), and with one of them busy; write `names.md`.
    #[arg(long, conflicts_with_all = ["focus", "soak", "memory"])]
    managed_names: bool,
    /// Only measure how a call's CPU and the gateway's memory grow with the
    /// store: 1,000, 10,000 and 100,000 stored tokens, then 1, 100 and 5,000
    /// managed names, for the memory and the default store (a tenth of the
    /// tokens with --quick); write `scaling.md`.
    #[arg(long, conflicts_with_all = ["focus", "soak", "memory", "managed_names"])]
    scaling: bool,
    /// Only measure a cached GetAccessToken beside the gRPC echo at
    /// concurrency 16 (CPU per call and latency); write `tokens.md`.
    #[arg(long, conflicts_with_all = ["focus", "soak", "memory", "managed_names"])]
    access_tokens: bool,
    /// Only measure the Redis token stores (one node, a Cluster without and
    /// with the replica wait) on the mixed workload; write `redis.md`.
    /// Needs redis-server and redis-cli.
    #[arg(long, conflicts_with_all = ["focus", "soak", "memory", "managed_names", "access_tokens"])]
    redis: bool,
    /// Only trace the gateway's start-up and load under valgrind and write
    /// the symbol ordering file its build links with (`link/startup-order.txt`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["focus", "soak", "memory", "managed_names", "access_tokens", "redis"])]
    startup_order: Option<PathBuf>,
    /// With --startup-order: another build of the gateway to trace after
    /// `--gateway` (another profile or feature set, built with symbols).
    #[arg(long, value_name = "FILE", requires = "startup_order")]
    also: Vec<PathBuf>,
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
    let gateway_exe = gateway_exe(args.gateway);
    if let Some(out) = args.startup_order {
        let mut exes = vec![gateway_exe];
        exes.extend(
            args.also
                .into_iter()
                .map(|p| p.to_string_lossy().into_owned()),
        );
        startup_order::run(&exes, &out).await;
        return;
    }
    let out_dir = args.out;
    if let Some(minutes) = args.soak {
        let (md, passed) = soak::run(minutes, &gateway_exe).await;
        write_result(&out_dir, "soak.md", &md);
        if !passed {
            std::process::exit(1);
        }
        return;
    }
    let settings = Settings::new(args.quick);
    let max_c = *settings.concurrency.iter().max().unwrap_or(&1);
    if args.access_tokens {
        let me = std::env::current_exe().expect("own path");
        let md = tokens::run(&me.to_string_lossy(), &gateway_exe, args.quick).await;
        write_result(&out_dir, "tokens.md", &md);
        return;
    }
    if args.redis {
        let md = redis::run(&gateway_exe, args.quick).await;
        write_result(&out_dir, "redis.md", &md);
        return;
    }
    if args.managed_names {
        let md = names::run(&gateway_exe, args.quick).await;
        write_result(&out_dir, "names.md", &md);
        return;
    }
    if args.scaling {
        let md = scaling::run(&gateway_exe, args.quick, settings.duration).await;
        write_result(&out_dir, "scaling.md", &md);
        return;
    }
    if args.memory {
        let f = memory::figures(
            &gateway_exe,
            settings.stored_tokens,
            max_c,
            settings.duration,
        )
        .await;
        println!(
            "RSS idle: memory store {:.1} MiB, default store {:.1} MiB\n\
             RSS peak with {} tokens at concurrency {}: memory store {:.1} MiB, default store {:.1} MiB",
            f.idle[0], f.idle[1], f.tokens, f.concurrency, f.peak[0], f.peak[1]
        );
        return;
    }
    let me = std::env::current_exe().expect("own path");
    let mut fleet = fleet::start(&me.to_string_lossy(), &gateway_exe).await;
    let idle = [MEMORY, DEFAULT].map(|p| procfs::memory_mib(fleet.paths[p].pid, "VmRSS:"));
    let mut seeds = Vec::new();
    for path in &fleet.paths {
        seeds.push(fleet::seeds(&path.target, max_c).await);
    }
    if let Some(secs) = args.focus {
        focus(&fleet, &mut seeds, Duration::from_secs(secs)).await;
        return;
    }
    let run = Run {
        settings: &settings,
        gateway_exe: &gateway_exe,
        quick: args.quick,
        out_dir: &out_dir,
    };
    compare_all(&fleet, &mut seeds, idle, run).await;
    fleet.paths.clear();
}

/// The gateway binary: `--gateway`, or the one built next to this one.
fn gateway_exe(given: Option<PathBuf>) -> String {
    let exe = given.unwrap_or_else(|| {
        std::env::current_exe()
            .expect("own path")
            .with_file_name("dcr-gateway")
    });
    assert!(
        exe.is_file(),
        "no gateway binary at {} (build it: cargo build --release -p dcr-gateway, or give --gateway)",
        exe.display()
    );
    exe.to_string_lossy().into_owned()
}

/// Prints a result and writes it as `name` in the results folder.
fn write_result(out_dir: &Path, name: &str, md: &str) {
    std::fs::create_dir_all(out_dir).expect("results folder");
    std::fs::write(out_dir.join(name), md).unwrap_or_else(|e| panic!("write {name}: {e}"));
    println!("{md}\nwrote {}", out_dir.join(name).display());
}

/// What the full comparison is run with.
struct Run<'a> {
    settings: &'a Settings,
    gateway_exe: &'a str,
    quick: bool,
    out_dir: &'a Path,
}

/// The full comparison: every path at every concurrency, memory with
/// stored tokens, written as `results.md` and `latency.svg`.
/// `idle` is the two gateways' resident memory before any call.
async fn compare_all(fleet: &Fleet, seeds: &mut [Vec<load::Seed>], idle: [f64; 2], run: Run<'_>) {
    let Run {
        settings,
        gateway_exe,
        quick,
        out_dir,
    } = run;
    let max_c = *settings.concurrency.iter().max().unwrap_or(&1);
    let grid = compare::run(&fleet.paths, seeds, settings).await;
    let peak_memory = memory::peak_after_registrations(
        &fleet.paths[MEMORY],
        &mut seeds[MEMORY][..max_c],
        settings.stored_tokens,
        settings.duration,
    )
    .await;
    let filled = memory::default_store_filled(
        gateway_exe,
        &fleet.upstream,
        &fleet.scratch,
        settings.stored_tokens,
        max_c,
        settings.duration,
    )
    .await;
    let figures = targets::MemoryFigures {
        idle,
        peak: [peak_memory, filled.peak],
        tokens: settings.stored_tokens,
        concurrency: max_c,
    };
    let md = report_md(
        fleet,
        &grid,
        settings,
        &figures,
        filled.idle,
        gateway_exe,
        quick,
    );
    let series: Vec<(&str, Vec<u64>)> = fleet
        .paths
        .iter()
        .zip(&grid.cdf)
        .map(|(p, l)| (p.name, l.clone()))
        .collect();
    let chart = report::svg("Latency CDF, mixed operations, concurrency 16", &series);
    std::fs::create_dir_all(out_dir).expect("results folder");
    std::fs::write(out_dir.join("latency.svg"), chart).expect("write latency.svg");
    write_result(out_dir, "results.md", &md);
}

/// `--focus SECS`: (c), (d) and (d-file) at concurrency 1 and 16, each
/// workload, alternating twice, CPU per call printed: a quick A/B for speed
/// work, with the pids for `perf record -p`.
async fn focus(fleet: &Fleet, seeds: &mut [Vec<load::Seed>], duration: Duration) {
    for pi in [FLOOR, MEMORY, DEFAULT] {
        println!("{}: pid {}", fleet.paths[pi].name, fleet.paths[pi].pid);
    }
    for _ in 0..2 {
        for workload in WORKLOADS {
            for c in [1, 16] {
                for pi in [FLOOR, MEMORY, DEFAULT] {
                    let path = &fleet.paths[pi];
                    let c = c.min(seeds[pi].len());
                    let (s, _) = compare::cell(path, workload, &mut seeds[pi], c, duration).await;
                    println!(
                        "{} c={c} / {}: {:.0} calls/s, p50 {:.3} ms, {:.1} µs CPU/call",
                        workload.name, path.name, s.throughput, s.p50_ms, s.cpu_us_per_call
                    );
                }
            }
        }
    }
}

/// The Markdown report: the targets, then every cell, then the process.
fn report_md(
    fleet: &Fleet,
    grid: &Grid,
    settings: &Settings,
    figures: &targets::MemoryFigures,
    filled_idle: f64,
    gateway_exe: &str,
    quick: bool,
) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## dcr-bench results{}\n",
        if quick { " (--quick)" } else { "" }
    );
    let _ = writeln!(
        md,
        "{} s per cell, {} repetition(s), interleaved; medians over repetitions, calls/s spread in brackets.\n",
        settings.duration.as_secs_f64(),
        settings.reps
    );
    md.push_str(&targets::table(grid, figures));
    md.push('\n');
    for (wi, workload) in WORKLOADS.iter().enumerate() {
        for &c in &settings.concurrency {
            let _ = writeln!(md, "### {}, concurrency {c}\n", workload.name);
            md.push_str(report::HEADER);
            for (pi, path) in fleet.paths.iter().enumerate() {
                report::row(&mut md, path.name, grid.cell(wi, c, pi));
            }
            md.push('\n');
        }
    }
    let binary_mib =
        std::fs::metadata(gateway_exe).map_or(0.0, |m| m.len() as f64 / (1 << 20) as f64);
    let _ = writeln!(
        md,
        "### Gateway process\n\n| measure | value |\n|---|---|\n\
         | start to health SERVING (memory store) | {:.1} ms |\n\
         | RSS idle, memory store / default store | {:.1} / {:.1} MiB |\n\
         | RSS idle, default store opened with {} tokens | {filled_idle:.1} MiB |\n\
         | RSS peak (VmHWM), {} tokens stored, concurrency {}, memory store / default store | {:.1} / {:.1} MiB |\n\
         | binary size | {binary_mib:.1} MiB |",
        fleet.serving_in.as_secs_f64() * 1000.0,
        figures.idle[0],
        figures.idle[1],
        figures.tokens,
        figures.tokens,
        figures.concurrency,
        figures.peak[0],
        figures.peak[1],
    );
    md
}
