//! Admission at the gRPC edge: no caller, connection or crowd of silent
//! sockets holds the gateway, and one caller's flood on a client id neither
//! grows the gateway nor keeps another caller waiting.

mod support;

use std::time::Duration;

use dcr_dev_upstream::{Fault, FaultKind, Route};
use dcr_gateway::config::RawConfig;
use dcr_gateway::pb::v1 as pb;
use support::scripted::{Answer, Scripted};
use support::{TestGateway, concurrent_gets, eventually, get_req, most_at_once, reason};
use tokio::io::AsyncReadExt;
use tonic::{Code, Request, Status};

const RAT: &str = "rat-one-0123456789";

#[tokio::test]
async fn a_deadline_past_the_cap_is_cut_to_it() {
    let upstream = Scripted::start(vec![
        Answer::json(200, r#"{"client_id":"c1"}"#).delayed(Duration::from_secs(3)),
    ])
    .await;
    let raw = RawConfig {
        default_deadline: Some("500ms".into()),
        max_deadline: Some("1s".into()),
        ..RawConfig::default()
    };
    let gw = TestGateway::start_with(&upstream.url(), raw).await;
    let mut client = gw.client().await;
    let mut req = Request::new(get_req("c1", Some(RAT)));
    req.set_timeout(Duration::from_secs(115 * 86_400));
    let err = client.get_client(req).await.unwrap_err();
    assert_eq!(
        err.code(),
        Code::DeadlineExceeded,
        "a 115-day deadline was honoured: {err:?}"
    );
}

#[tokio::test]
async fn calls_past_the_admission_limit_are_refused_at_once() {
    let upstream = Scripted::start(vec![
        Answer::json(200, r#"{"client_id":"c1"}"#).delayed(Duration::from_secs(1)),
    ])
    .await;
    let raw = RawConfig {
        max_concurrent_calls: Some(2),
        ..RawConfig::default()
    };
    let gw = TestGateway::start_with(&upstream.url(), raw).await;
    let calls = concurrent_gets(&gw.client().await, 6, RAT);
    let mut refused = 0;
    for call in calls {
        // The admitted calls get the scripted answer (for `c1` only); the
        // others must be refused at once.
        if let Err(status) = call.await.unwrap()
            && reason(&status) == "TOO_MANY_CALLS"
        {
            assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
            refused += 1;
        }
    }
    assert!(
        refused >= 4,
        "only {refused} of 6 calls were refused with 2 admitted"
    );
}

/// Resident memory of process `pid`, in KiB, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status")
}

/// Sends a caller's bearer token on every call.
#[derive(Clone)]
struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

type CallerClient = pb::dynamic_client_registration_client::DynamicClientRegistrationClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Bearer>,
>;

/// A client that calls as the caller holding `token`.
fn as_caller(channel: tonic::transport::Channel, token: &str) -> CallerClient {
    let bearer = Bearer(format!("Bearer {token}").parse().unwrap());
    pb::dynamic_client_registration_client::DynamicClientRegistrationClient::with_interceptor(
        channel, bearer,
    )
}

#[tokio::test]
async fn a_flood_of_cut_rotations_holds_no_memory_and_starves_no_other_caller() {
    let dev = support::dev_upstream().await;
    let dir = support::temp_dir("flood");
    let callers = dir.join("callers");
    std::fs::write(
        &callers,
        "owner=owner-token-0123456789\nmallory=mallory-token-0123456789\n",
    )
    .unwrap();
    let served = support::process::serve_with(
        &[
            "--upstream",
            &dev.base_url(),
            "--token-store",
            "memory",
            "--callers-file",
            callers.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let pid = served.child.id().unwrap();
    let addr: std::net::SocketAddr = served.addr.parse().unwrap();
    let mut owner = as_caller(support::channel(addr).await, "owner-token-0123456789");
    let registered = owner
        .register_client(pb::RegisterClientRequest {
            metadata: Some(support::machine_client("owned")),
            initial_access_token: None,
        })
        .await
        .expect("the owner registers");
    let id = registered.into_inner().client.unwrap().client_id;
    // Every rotation now takes two seconds upstream.
    dev.inject(Fault {
        route: Route::RotateSecret,
        times: None,
        kind: FaultKind::Delay { ms: 2000 },
    });
    let before = rss_kib(pid);
    const CALLS: usize = 20_000;
    const WORKERS: usize = 200;
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(support::channel(addr).await);
    }
    let flood: Vec<_> = (0..WORKERS)
        .map(|w| {
            let mut mallory = as_caller(
                channels[w % channels.len()].clone(),
                "mallory-token-0123456789",
            );
            let id = id.clone();
            tokio::spawn(async move {
                for _ in 0..CALLS / WORKERS {
                    let mut req = Request::new(pb::RotateClientSecretRequest {
                        client_id: id.clone(),
                        registration_access_token: Some("guessed-token-0123456789".into()),
                    });
                    req.set_timeout(Duration::from_millis(30));
                    let _ = mallory.rotate_client_secret(req).await;
                }
            })
        })
        .collect();
    // While the flood runs, the owner's own calls on the same id answer.
    for _ in 0..5 {
        let mut req = Request::new(get_req(&id, None));
        req.set_timeout(Duration::from_secs(3));
        owner
            .get_client(req)
            .await
            .expect("the owner's call answered within its deadline during another caller's flood");
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut peak = before;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                peak = peak.max(rss_kib(pid));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            peak.max(rss_kib(pid))
        })
    };
    for worker in flood {
        worker.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let growth = sampler.await.unwrap().saturating_sub(before);
    assert!(
        growth < 32 * 1024,
        "RSS grew by {growth} KiB under {CALLS} cut rotations"
    );
    // Only the few rotations that were sent ran on, so the upstream is idle
    // soon after the last caller had its answer.
    let settled = tokio::time::timeout(Duration::from_secs(15), async {
        while dev.stats().in_flight > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let stats = dev.stats();
    assert!(
        settled.is_ok(),
        "the upstream was still busy 15 s after the flood: {} in flight, {:?}; gateway log: {}",
        stats.in_flight,
        stats.requests,
        served.log.lock().unwrap()
    );
    let sent = dev
        .stats()
        .requests
        .get(&Route::RotateSecret)
        .copied()
        .unwrap_or(0);
    assert!(
        sent < 100,
        "{sent} of {CALLS} cut rotations reached the upstream"
    );
}

#[tokio::test]
async fn silent_connections_are_closed_on_every_listener() {
    let dev = support::dev_upstream().await;
    let served = support::process::serve_with(
        &[
            "--upstream",
            &dev.base_url(),
            "--token-store",
            "memory",
            "--header-read-timeout",
            "300ms",
            "--admin-listen",
            "127.0.0.1:0",
            "--health-listen",
            "127.0.0.1:0",
        ],
        &[],
    )
    .await;
    let admin = eventually(Duration::from_secs(10), || async {
        served.logged_addr("admin")
    })
    .await;
    let health = eventually(Duration::from_secs(10), || async {
        served.logged_addr("health")
    })
    .await;
    for addr in [served.addr.clone(), admin, health] {
        let mut silent = Vec::new();
        for _ in 0..20 {
            silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
        }
        for mut conn in silent {
            let mut buf = [0u8; 64];
            let closed = tokio::time::timeout(Duration::from_secs(10), async {
                // The server may send its own preface first; closed is EOF or reset.
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => continue,
                    }
                }
            })
            .await;
            assert!(
                closed.is_ok(),
                "a silent connection to {addr} was kept open"
            );
        }
    }
}

#[tokio::test]
async fn one_connection_holds_no_more_calls_than_its_stream_limit() {
    let dev = support::dev_upstream().await;
    dev.inject(Fault {
        route: Route::Get,
        times: None,
        kind: FaultKind::Delay { ms: 300 },
    });
    let raw = RawConfig {
        max_streams_per_connection: Some(4),
        ..RawConfig::default()
    };
    let gw = TestGateway::start_with(&dev.base_url(), raw).await;
    // One connection, forty calls at once.
    let client = gw.client().await;
    dev.reset_peak();
    let calls = concurrent_gets(&client, 40, RAT);
    let most_at_once = most_at_once(&dev, &calls).await;
    // Streams past the limit are refused by HTTP/2 (UNAVAILABLE, which gRPC
    // clients may retry at once); the admitted ones reach the upstream, whose
    // dev server knows none of these ids.
    for call in calls {
        let code = call.await.unwrap().unwrap_err().code();
        assert!(
            matches!(code, Code::Unauthenticated | Code::Unavailable),
            "{code:?}"
        );
    }
    assert!(most_at_once >= 1, "no call reached the upstream");
    assert!(
        most_at_once <= 4,
        "{most_at_once} calls of one connection ran at once"
    );
}
