//! `--scaling`: whether what a call costs grows with what the gateway
//! holds. For the memory and the default (file) store: CPU per call (the
//! mixed workload, 16 callers) and resident memory as the store grows to
//! 1,000, 10,000 and 100,000 tokens (registrations through the gateway, 64
//! at a time), then, on a fresh gateway, as its managed names grow to 1,
//! 100 and 5,000. A flat CPU column says a call does not pay for the size
//! of the store.

use std::fmt::Write as _;
use std::time::Duration;

use dcr_gateway::pb::v1::dynamic_client_registration_client::DynamicClientRegistrationClient;

use crate::compare;
use crate::fleet::{self, Scratch, Store};
use crate::load::WORKLOADS;
use crate::procfs;

/// Stored tokens at each step (`--quick`: a tenth of the last step only).
const TOKENS: [usize; 3] = [1_000, 10_000, 100_000];
const QUICK_TOKENS: [usize; 3] = [100, 1_000, 10_000];
/// Managed names at each step.
const NAMES: [usize; 3] = [1, 100, 5_000];
const QUICK_NAMES: [usize; 3] = [1, 10, 100];
/// Callers during each measurement.
const CALLERS: usize = 16;

/// Which size grows along a table.
#[derive(Clone, Copy)]
enum Grows {
    Tokens,
    Names,
}

/// One table's rows for one store: (size, CPU µs per call, calls/s, RSS MiB).
async fn rows(
    gateway_exe: &str,
    upstream: &str,
    store: Store<'_>,
    grows: Grows,
    steps: [usize; 3],
    duration: Duration,
) -> Vec<(usize, f64, f64, f64)> {
    // Above the default limit of names per caller namespace (1,000).
    let room = [("DCR_GATEWAY_MAX_MANAGED_CLIENTS_PER_NAMESPACE", "100000")];
    let (proc, _) = fleet::gateway(gateway_exe, upstream, store, &room).await;
    let path = fleet::gateway_path("scaling", &proc).await;
    let mut seeds = fleet::seeds(&path.target, CALLERS).await;
    let grpc = DynamicClientRegistrationClient::new(fleet::channel(&proc.addr).await);
    let (mut held, mut out) = (0, Vec::new());
    for size in steps {
        match grows {
            Grows::Tokens => crate::memory::fill(&path.target, size.saturating_sub(held)).await,
            Grows::Names => crate::names::ensure_names(&grpc, held, size).await,
        }
        held = size;
        let (stats, _) = compare::cell(&path, WORKLOADS[0], &mut seeds, CALLERS, duration).await;
        let rss = procfs::memory_mib(proc.pid, "VmRSS:");
        out.push((size, stats.cpu_us_per_call, stats.throughput, rss));
    }
    proc.kill().await;
    out
}

/// Runs the measurement; returns the report as Markdown.
pub async fn run(gateway_exe: &str, quick: bool, duration: Duration) -> String {
    let (_dev, upstream) = fleet::dev_upstream(gateway_exe).await;
    let mut md = String::new();
    let tables = [
        (
            "stored tokens",
            Grows::Tokens,
            if quick { QUICK_TOKENS } else { TOKENS },
        ),
        (
            "managed names",
            Grows::Names,
            if quick { QUICK_NAMES } else { NAMES },
        ),
    ];
    for (what, grows, steps) in tables {
        let _ = write!(
            md,
            "### The mixed workload, {CALLERS} callers, as the {what} grow\n\n\
             | store | {what} | CPU µs/call | calls/s | RSS MiB |\n|---|---|---|---|---|\n"
        );
        let mut growth = Vec::new();
        for name in ["memory", "default (file)"] {
            let scratch = Scratch::new();
            let (file, keys) = (scratch.join("tokens.redb"), scratch.keyring());
            let store = match name {
                "memory" => Store::Memory,
                _ => Store::File {
                    path: &file,
                    keys: &keys,
                },
            };
            let rows = rows(gateway_exe, &upstream, store, grows, steps, duration).await;
            for (size, cpu, calls, rss) in &rows {
                let _ = writeln!(md, "| {name} | {size} | {cpu:.1} | {calls:.0} | {rss:.1} |");
            }
            let (first, last) = (rows[0].1, rows[rows.len() - 1].1);
            growth.push((name, last / first.max(f64::MIN_POSITIVE)));
        }
        let _ = writeln!(
            md,
            "\nCPU per call at {} {what} / at {}: {} (one run, one machine; near 1 is flat).\n",
            steps[2],
            steps[0],
            growth
                .iter()
                .map(|(name, r)| format!("{name} {r:.2}×"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    md
}
