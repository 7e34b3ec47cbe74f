//! `--access-tokens`: what a cached GetAccessToken costs, beside the gRPC
//! echo (the floor any gRPC service pays per call), measured in one run at
//! concurrency 16: CPU per call of each server process, and latency. The
//! gateway is the one shipped (the default file store, sealed); its token is
//! held after the first call, so the run makes no upstream call, which the
//! dev upstream's counter proves.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use dcr_gateway::pb::v1 as pb;
use dcr_gateway::pb::v1::dynamic_client_registration_client::DynamicClientRegistrationClient;
use tonic::transport::Channel;

use crate::fleet::{self, Scratch, Store};
use crate::load::Sample;
use crate::procfs::cpu_seconds;
use crate::report::{Stats, stats};
use crate::servers::spawn;

type Grpc = DynamicClientRegistrationClient<Channel>;

/// Concurrent callers.
const CONCURRENCY: usize = 16;
/// The managed client whose token is asked for.
const NAME: &str = "bench-tokens";

/// Which call a caller makes.
#[derive(Clone, Copy)]
enum Call {
    /// GetClient on the echo server.
    Echo,
    /// GetAccessToken on the gateway.
    Token,
}

async fn once(c: &mut Grpc, call: Call) -> Result<(), tonic::Status> {
    match call {
        Call::Echo => c
            .get_client(pb::GetClientRequest {
                client_id: "c".into(),
                registration_access_token: Some("rat".into()),
            })
            .await
            .map(drop),
        Call::Token => c
            .get_access_token(pb::GetAccessTokenRequest {
                name: NAME.into(),
                scopes: Vec::new(),
                resource: Vec::new(),
            })
            .await
            .map(drop),
    }
}

/// [`CONCURRENCY`] callers making `call` on `c` for `duration`; the server
/// process `pid`'s CPU time is measured around it.
async fn measure(c: &Grpc, pid: u32, call: Call, duration: Duration) -> Stats {
    let cpu = cpu_seconds(pid);
    let start = Instant::now();
    let stop = start + duration;
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let mut c = c.clone();
            tokio::spawn(async move {
                let mut sample = Sample::default();
                while Instant::now() < stop {
                    let t = Instant::now();
                    match once(&mut c, call).await {
                        Ok(()) => sample.latencies_us.push(t.elapsed().as_micros() as u64),
                        Err(_) => sample.errors += 1,
                    }
                }
                sample
            })
        })
        .collect();
    let mut total = Sample::default();
    for task in tasks {
        let s = task.await.expect("a caller");
        total.latencies_us.extend(s.latencies_us);
        total.errors += s.errors;
    }
    total.elapsed = start.elapsed();
    stats(&mut total, cpu_seconds(pid) - cpu)
}

/// Token requests the dev upstream at `upstream` has answered.
async fn token_requests(upstream: &str) -> u64 {
    let body = reqwest::get(format!("{upstream}/_dev/stats"))
        .await
        .expect("the dev upstream's stats")
        .bytes()
        .await
        .expect("its body");
    let stats: serde_json::Value = serde_json::from_slice(&body).expect("JSON stats");
    stats["requests"]["token"].as_u64().unwrap_or(0)
}

/// Runs the measurement; returns the report as Markdown.
pub async fn run(me: &str, gateway_exe: &str, quick: bool) -> String {
    let duration = Duration::from_millis(if quick { 500 } else { 3_000 });
    let reps = if quick { 1 } else { 3 };
    let (_dev, upstream) = fleet::dev_upstream(gateway_exe).await;
    let echo = spawn(me, &["--serve", "echo"], &[], "reference listening on ").await;
    let scratch = Scratch::new();
    let (path, keys) = (scratch.join("tokens.redb"), scratch.keyring());
    let store = Store::File {
        path: &path,
        keys: &keys,
    };
    let (gateway, _) = fleet::gateway(gateway_exe, &upstream, store, &[]).await;
    let echo_c = Grpc::new(fleet::channel(&echo.addr).await);
    let mut gw_c = Grpc::new(fleet::channel(&gateway.addr).await);
    gw_c.ensure_client(pb::EnsureClientRequest {
        name: NAME.into(),
        metadata: Some(pb::ClientMetadata {
            client_name: Some(NAME.into()),
            grant_types: vec!["client_credentials".into()],
            ..Default::default()
        }),
        initial_access_token: None,
    })
    .await
    .expect("the managed client");
    once(&mut gw_c, Call::Token).await.expect("the first token");
    let before = token_requests(&upstream).await;
    let mut rows: Vec<(Stats, Stats)> = Vec::new();
    for _ in 0..reps {
        let e = measure(&echo_c, echo.pid, Call::Echo, duration).await;
        let t = measure(&gw_c, gateway.pid, Call::Token, duration).await;
        rows.push((e, t));
    }
    let upstream_calls = token_requests(&upstream).await - before;
    report(&rows, upstream_calls, quick)
}

fn report(rows: &[(Stats, Stats)], upstream_calls: u64, quick: bool) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Cached GetAccessToken beside the gRPC echo\n\n\
         Concurrency {CONCURRENCY}, {} repetition(s), alternating; CPU is the server process's \
         user+system time per call. Token requests to the server during the run: \
         {upstream_calls}.{}\n\n\
         | rep | echo CPU µs/call | token CPU µs/call | ratio | echo p50 / p99 ms | token p50 / p99 ms | token calls/s | errors |\n\
         |---|---|---|---|---|---|---|---|",
        rows.len(),
        if quick {
            " (--quick: short, for CI)"
        } else {
            ""
        },
    );
    for (i, (e, t)) in rows.iter().enumerate() {
        let ratio = t.cpu_us_per_call / e.cpu_us_per_call.max(f64::EPSILON);
        let _ = writeln!(
            md,
            "| {} | {:.1} | {:.1} | {:.2}× | {:.2} / {:.2} | {:.2} / {:.2} | {:.0} | {} |",
            i + 1,
            e.cpu_us_per_call,
            t.cpu_us_per_call,
            ratio,
            e.p50_ms,
            e.p99_ms,
            t.p50_ms,
            t.p99_ms,
            t.throughput,
            e.errors + t.errors,
        );
    }
    md
}
