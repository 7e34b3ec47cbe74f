//! `--managed-names`: whether a plain RPC pays for managed names it has
//! nothing to do with. A RotateClientSecret brings a secret back, which the
//! gateway takes into the records of that client's managed names (if any);
//! this measures its latency on a client no managed name has, with 0 and
//! then more and more managed names in the caller's namespace, and again
//! while one of those names is busy (its ensure held up by a slow server).
//! The gateway is the one shipped: the default file store, sealed.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use dcr_gateway::pb::v1 as pb;
use dcr_gateway::pb::v1::dynamic_client_registration_client::DynamicClientRegistrationClient;
use tonic::transport::Channel;

use crate::fleet::{self, Scratch, Store};

type Grpc = DynamicClientRegistrationClient<Channel>;

/// How long the busy name's read is held up at the server.
const BUSY_FOR: Duration = Duration::from_secs(3);

/// Latency percentiles of `samples`, in milliseconds: (p50, p99, max).
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    (at(0.5), at(0.99), at(1.0))
}

/// `calls` RotateClientSecrets of `id`, one after another.
async fn rotations(c: &mut Grpc, id: &str, calls: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(calls);
    for _ in 0..calls {
        let req = pb::RotateClientSecretRequest {
            client_id: id.to_owned(),
            registration_access_token: None,
        };
        let t = Instant::now();
        c.rotate_client_secret(req).await.expect("a rotation");
        out.push(t.elapsed());
    }
    out
}

/// Ensures names `from..to` (`name-N`), 32 at a time.
pub async fn ensure_names(c: &Grpc, from: usize, to: usize) {
    let mut next = from;
    while next < to {
        let batch: Vec<_> = (next..to.min(next + 32))
            .map(|i| {
                let mut c = c.clone();
                tokio::spawn(async move {
                    let req = pb::EnsureClientRequest {
                        name: format!("name-{i}"),
                        metadata: Some(pb::ClientMetadata {
                            client_name: Some(format!("name-{i}")),
                            grant_types: vec!["client_credentials".into()],
                            ..Default::default()
                        }),
                        initial_access_token: None,
                    };
                    c.ensure_client(req).await.expect("an ensure");
                })
            })
            .collect();
        for task in batch {
            task.await.expect("the ensure task");
        }
        next = to.min(next + 32);
    }
}

/// Holds up the upstream's next read for [`BUSY_FOR`], through the dev
/// upstream's fault API.
async fn slow_next_read(upstream: &str) {
    let fault = serde_json::json!({
        "route": "get", "times": 1, "kind": "delay", "ms": BUSY_FOR.as_millis() as u64,
    });
    let resp = reqwest::Client::new()
        .post(format!("{upstream}/_dev/faults"))
        .header("content-type", "application/json")
        .body(fault.to_string())
        .send()
        .await
        .expect("the fault API answers");
    assert!(
        resp.status().is_success(),
        "fault refused: {}",
        resp.status()
    );
}

/// Runs the measurement; returns the report as Markdown.
pub async fn run(gateway_exe: &str, quick: bool) -> String {
    let steps: &[usize] = match quick {
        true => &[0, 100, 400],
        false => &[0, 1_000, 5_000],
    };
    let calls = if quick { 50 } else { 300 };
    let (_dev, upstream) = fleet::dev_upstream(gateway_exe).await;
    let scratch = Scratch::new();
    let (path, keys) = (scratch.join("tokens.redb"), scratch.keyring());
    let store = Store::File {
        path: &path,
        keys: &keys,
    };
    // Above the default limit of names per caller namespace (1,000).
    let room = [("DCR_GATEWAY_MAX_MANAGED_CLIENTS_PER_NAMESPACE", "100000")];
    let (gateway, _) = fleet::gateway(gateway_exe, &upstream, store, &room).await;
    let mut c = Grpc::new(fleet::channel(&gateway.addr).await);
    let plain = c
        .register_client(pb::RegisterClientRequest {
            metadata: Some(pb::ClientMetadata {
                client_name: Some("plain".into()),
                grant_types: vec!["client_credentials".into()],
                ..Default::default()
            }),
            initial_access_token: None,
        })
        .await
        .expect("a registration")
        .into_inner()
        .client
        .expect("a client")
        .client_id;

    let mut md = String::from(
        "### RotateClientSecret on a client no managed name has\n\n\
         | managed names | p50 ms | p99 ms | max ms | one name busy: p50 ms | max ms |\n\
         |---|---|---|---|---|---|\n",
    );
    let mut medians = Vec::new();
    let mut done = 0;
    for &names in steps {
        ensure_names(&c, done, names).await;
        done = names;
        let (p50, p99, max) = percentiles(rotations(&mut c, &plain, calls).await);
        // One name busy: its ensure waits on a held-up read while the
        // rotations run.
        let busy = match names {
            0 => None,
            _ => {
                slow_next_read(&upstream).await;
                let mut held = c.clone();
                let ensure = tokio::spawn(async move {
                    let req = pb::EnsureClientRequest {
                        name: "name-0".into(),
                        metadata: Some(pb::ClientMetadata {
                            client_name: Some("name-0".into()),
                            grant_types: vec!["client_credentials".into()],
                            ..Default::default()
                        }),
                        initial_access_token: None,
                    };
                    held.ensure_client(req).await
                });
                tokio::time::sleep(Duration::from_millis(100)).await;
                let sample = percentiles(rotations(&mut c, &plain, calls / 5).await);
                ensure.await.expect("the busy ensure").expect("it succeeds");
                Some(sample)
            }
        };
        let busy = busy.map_or("n/a | n/a".to_owned(), |(p50, _, max)| {
            format!("{p50:.2} | {max:.1}")
        });
        let _ = writeln!(md, "| {names} | {p50:.2} | {p99:.2} | {max:.1} | {busy} |");
        medians.push(p50);
    }
    let (first, last) = (medians[0], medians[medians.len() - 1]);
    let _ = writeln!(
        md,
        "\np50 with {} names / with none: {:.2}× (one run, one machine; a ratio near 1 \
         means the call does not grow with the number of managed names). A busy name's \
         read is held {} s: a call serialised behind it would show a max near that.",
        steps[steps.len() - 1],
        last / first.max(f64::MIN_POSITIVE),
        BUSY_FOR.as_secs()
    );
    md
}
