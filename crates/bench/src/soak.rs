//! `dcr-bench --soak MINUTES`: steady load on the gateway for a long time,
//! with faults injected for a fifth of it and the dev upstream restarted
//! halfway, sampling RSS, open descriptors and errors every interval.
//!
//! Timeline, as fractions of the run: warm-up to 0.2 (the RSS and descriptor
//! baseline is taken there); faults from 0.2 to 0.4 (503s, lost answers,
//! delays); the upstream killed and restarted at 0.5; quiet after. Passes when
//! RSS at the end is within 10% of the baseline, descriptors have not grown,
//! and the last intervals have no errors.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::fleet::{self, Store};
use crate::load::{self, Mix, Seed, Target};
use crate::procfs;
use crate::servers::{Proc, spawn};

/// Concurrent callers.
const CALLERS: usize = 8;
/// One sample per interval.
const INTERVAL: Duration = Duration::from_secs(10);
/// RSS growth allowed after warm-up.
const MAX_RSS_GROWTH: f64 = 0.10;
/// Descriptors the gateway may hold above the baseline (pooled connections
/// come and go).
const FD_SLACK: usize = 4;
/// Intervals at the end that must be error-free.
const QUIET_INTERVALS: usize = 3;

/// One interval's measurements.
struct Row {
    at: Duration,
    phase: &'static str,
    calls: usize,
    errors: u64,
    rss_mib: f64,
    fds: usize,
}

async fn dev_upstream(exe: &str, listen: &str) -> Proc {
    spawn(
        exe,
        &["dev-upstream", "--listen", listen],
        &[],
        "dev upstream on ",
    )
    .await
}

async fn add_fault(http: &reqwest::Client, upstream: &str, fault: serde_json::Value) {
    let _ = http
        .post(format!("{upstream}/_dev/faults"))
        .header("content-type", "application/json")
        .body(fault.to_string())
        .send()
        .await;
}

async fn reseed(target: &Target, seeds: &mut [Seed]) {
    for seed in seeds.iter_mut() {
        if let Ok(fresh) = load::register(target).await {
            *seed = fresh;
        }
    }
}

/// A loopback port free right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs the soak; returns the Markdown report and whether it passed.
pub async fn run(minutes: u64, exe: &str) -> (String, bool) {
    let total = Duration::from_secs(minutes * 60);
    let listen = format!("127.0.0.1:{}", free_port());
    let upstream = format!("http://{listen}");
    let mut dev = Some(dev_upstream(exe, &listen).await);
    let (gw, _) = fleet::gateway(exe, &upstream, Store::Memory, &[]).await;
    let target = fleet::gateway_path("soak", &gw).await.target;
    let http = reqwest::Client::new();
    let mut seeds = Vec::new();
    for _ in 0..CALLERS {
        seeds.push(load::register(&target).await.expect("seed registration"));
    }
    let start = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    let mut baseline: Option<(f64, usize)> = None;
    let (mut faults_cleared, mut restarted) = (false, false);
    while start.elapsed() < total {
        let f = start.elapsed().as_secs_f64() / total.as_secs_f64();
        let phase = match f {
            f if f < 0.2 => "warm-up",
            f if f < 0.4 => {
                // Each interval: a burst of 503s, a few lost answers, slow answers.
                for fault in [
                    serde_json::json!({"route": "any", "times": 40, "kind": "status", "status": 503}),
                    serde_json::json!({"route": "get", "times": 5, "kind": "drop_after_processing"}),
                    serde_json::json!({"route": "any", "times": 20, "kind": "delay", "ms": 300}),
                ] {
                    add_fault(&http, &upstream, fault).await;
                }
                "faults"
            }
            f if f < 0.5 => {
                if !faults_cleared {
                    let _ = http.delete(format!("{upstream}/_dev/faults")).send().await;
                    faults_cleared = true;
                }
                "quiet"
            }
            _ if !restarted => {
                if let Some(old) = dev.take() {
                    old.kill().await;
                }
                dev = Some(dev_upstream(exe, &listen).await);
                // It forgot every client: the callers register anew.
                reseed(&target, &mut seeds).await;
                restarted = true;
                "upstream restarted"
            }
            _ => "quiet",
        };
        let sample = load::run(&target, Mix::Steady, &mut seeds, INTERVAL).await;
        if sample.errors > 0 {
            // A lost rotation answer leaves a caller without its token.
            reseed(&target, &mut seeds).await;
        }
        let row = Row {
            at: start.elapsed(),
            phase,
            calls: sample.latencies_us.len() + sample.errors as usize,
            errors: sample.errors,
            rss_mib: procfs::memory_mib(gw.pid, "VmRSS:"),
            fds: procfs::open_fds(gw.pid),
        };
        if baseline.is_none() && row.at.as_secs_f64() >= 0.2 * total.as_secs_f64() {
            baseline = Some((row.rss_mib, row.fds));
        }
        rows.push(row);
    }
    report(minutes, &rows, baseline)
}

fn report(minutes: u64, rows: &[Row], baseline: Option<(f64, usize)>) -> (String, bool) {
    let mut md = format!(
        "## dcr-bench soak: {minutes} min, {CALLERS} callers, steady mix (no new clients)\n\n\
         | time s | phase | calls/s | errors % | RSS MiB | open fds |\n|---|---|---|---|---|---|\n"
    );
    for r in rows {
        let _ = writeln!(
            md,
            "| {:.0} | {} | {:.0} | {:.2} | {:.1} | {} |",
            r.at.as_secs_f64(),
            r.phase,
            r.calls as f64 / INTERVAL.as_secs_f64(),
            100.0 * r.errors as f64 / r.calls.max(1) as f64,
            r.rss_mib,
            r.fds
        );
    }
    let (Some((rss0, fds0)), Some(last)) = (baseline, rows.last()) else {
        return (md + "\nToo short to judge.\n", false);
    };
    let growth = last.rss_mib / rss0 - 1.0;
    let quiet_errors: u64 = rows
        .iter()
        .rev()
        .take(QUIET_INTERVALS)
        .map(|r| r.errors)
        .sum();
    let checks = [
        (
            growth < MAX_RSS_GROWTH,
            format!(
                "RSS after warm-up {rss0:.1} MiB, at the end {:.1} MiB ({:+.1}%, limit +{:.0}%)",
                last.rss_mib,
                growth * 100.0,
                MAX_RSS_GROWTH * 100.0
            ),
        ),
        (
            last.fds <= fds0 + FD_SLACK,
            format!(
                "open descriptors after warm-up {fds0}, at the end {} (limit +{FD_SLACK})",
                last.fds
            ),
        ),
        (
            quiet_errors == 0,
            format!("errors in the last {QUIET_INTERVALS} intervals: {quiet_errors}"),
        ),
    ];
    md.push('\n');
    for (ok, text) in &checks {
        let _ = writeln!(md, "- {}: {text}", if *ok { "pass" } else { "FAIL" });
    }
    (md, checks.iter().all(|(ok, _)| *ok))
}
