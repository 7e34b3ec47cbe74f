//! The gateway's resident memory with many stored tokens, for each store: the
//! memory store filled by registrations through the gateway, the default file
//! store filled by `tokens import` (one transaction, instead of one fsync per
//! registration) and then opened, which loads every entry into its copy.

use std::time::Duration;

use tower::util::rng::{HasherRng, Rng};

use crate::fleet::{self, Path, Scratch, Store};
use crate::load::{self, Mix, Seed};
use crate::procfs;

/// Peak resident memory (VmHWM, MiB) of the gateway behind `path` after
/// `tokens` registrations through it (64 at a time), then `duration` of
/// GetClient from `seeds.len()` callers.
pub async fn peak_after_registrations(
    path: &Path,
    seeds: &mut [Seed],
    tokens: usize,
    duration: Duration,
) -> f64 {
    fill(&path.target, tokens).await;
    load::run(&path.target, Mix::GetOnly, seeds, duration).await;
    procfs::memory_mib(path.pid, "VmHWM:")
}

/// Registers `tokens` clients through `target`, 64 at a time.
pub async fn fill(target: &load::Target, tokens: usize) {
    let mut tasks = Vec::new();
    for i in 0..64 {
        let target = target.clone();
        let per = tokens / 64 + usize::from(i < tokens % 64);
        tasks.push(tokio::spawn(async move {
            for _ in 0..per {
                let _ = load::register(&target).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// What the default store's gateway used with `tokens` entries stored.
pub struct Filled {
    /// Resident memory once SERVING, every entry loaded (MiB).
    pub idle: f64,
    /// Peak after `duration` of GetClient at the given concurrency (MiB).
    pub peak: f64,
}

fn random_hex(rng: &mut HasherRng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(b"0123456789abcdef"[(rng.next_u64() % 16) as usize]))
        .collect()
}

/// Writes an export of `tokens` made-up entries for `upstream`, in the format
/// `tokens export --reveal` writes.
fn write_export(file: &std::path::Path, upstream: &str, tokens: usize) {
    let mut rng = HasherRng::new();
    let entries: Vec<serde_json::Value> = (0..tokens)
        .map(|_| {
            let id = random_hex(&mut rng, 32);
            serde_json::json!({
                "upstream": upstream,
                "namespace": "default",
                "client_id": id,
                "registration_client_uri": format!("{upstream}/oauth/register/{id}"),
                "learned_at": 1_700_000_000u64,
                "registration_access_token": random_hex(&mut rng, 43),
            })
        })
        .collect();
    let body = serde_json::json!({ "tokens": entries, "managed_clients": [] });
    std::fs::write(file, body.to_string()).expect("write the import");
}

/// Fills a fresh file store with `tokens` entries, starts a default gateway
/// on it, and measures it idle and under GetClient from `concurrency` callers.
pub async fn default_store_filled(
    gateway_exe: &str,
    upstream: &str,
    scratch: &Scratch,
    tokens: usize,
    concurrency: usize,
    duration: Duration,
) -> Filled {
    let (path, export) = (scratch.join("filled.redb"), scratch.join("filled.json"));
    let keys = scratch.keyring();
    let store = Store::File {
        path: &path,
        keys: &keys,
    };
    write_export(&export, upstream, tokens);
    let status = crate::servers::command(gateway_exe)
        .arg("tokens")
        .args(store.args())
        .arg("import")
        .arg("--file")
        .arg(&export)
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .expect("run tokens import");
    assert!(status.success(), "tokens import failed");
    let (proc, _) = fleet::gateway(gateway_exe, upstream, store, &[]).await;
    let path = fleet::gateway_path("filled", &proc).await;
    let idle = procfs::memory_mib(proc.pid, "VmRSS:");
    let mut seeds = fleet::seeds(&path.target, concurrency).await;
    load::run(&path.target, Mix::GetOnly, &mut seeds, duration).await;
    let peak = procfs::memory_mib(proc.pid, "VmHWM:");
    proc.kill().await;
    Filled { idle, peak }
}

/// The memory figures alone (`--memory`): each store's gateway idle, then
/// with `tokens` stored at `concurrency`; for comparing allocators, heap
/// profiles and the like without the whole comparison.
pub async fn figures(
    gateway_exe: &str,
    tokens: usize,
    concurrency: usize,
    duration: Duration,
) -> crate::targets::MemoryFigures {
    let (_dev, upstream) = fleet::dev_upstream(gateway_exe).await;
    let scratch = Scratch::new();
    let (memory, _) = fleet::gateway(gateway_exe, &upstream, Store::Memory, &[]).await;
    let (path, keys) = (scratch.join("tokens.redb"), scratch.keyring());
    let store = Store::File {
        path: &path,
        keys: &keys,
    };
    let (default, _) = fleet::gateway(gateway_exe, &upstream, store, &[]).await;
    let idle = [memory.pid, default.pid].map(|pid| procfs::memory_mib(pid, "VmRSS:"));
    default.kill().await;
    let path = fleet::gateway_path("memory", &memory).await;
    let mut seeds = fleet::seeds(&path.target, concurrency).await;
    let peak = peak_after_registrations(&path, &mut seeds, tokens, duration).await;
    memory.kill().await;
    let filled = default_store_filled(
        gateway_exe,
        &upstream,
        &scratch,
        tokens,
        concurrency,
        duration,
    )
    .await;
    crate::targets::MemoryFigures {
        idle,
        peak: [peak, filled.peak],
        tokens,
        concurrency,
    }
}
