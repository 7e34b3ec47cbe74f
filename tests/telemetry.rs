//! Telemetry end to end: the gateway binary exports to in-test OTLP receivers
//! (gRPC and HTTP), continues the caller's trace into the dev upstream, keeps
//! every secret out of spans, logs and metrics, is not slowed by a dead
//! collector, and exposes the metrics the README documents.

mod support;

use std::time::{Duration, Instant};

use dcr_dev_upstream::{DevUpstream, Fault, FaultKind, Route};
use dcr_gateway::pb::v1 as pb;
use opentelemetry_proto::tonic::trace::v1::Span;
use support::otlp::{attr, grpc_receiver, hex, http_receiver};
use support::process::{Served, serve_with};
use support::{Client, channel, dev_upstream, get_req, machine_client};
use tonic::Request;
use tonic::metadata::MetadataValue;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// Fast export, so tests wait milliseconds, not the default seconds.
const FAST_EXPORT: [(&str, &str); 2] = [
    ("OTEL_BSP_SCHEDULE_DELAY", "50"),
    ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
];

fn traced<T>(msg: T, trace_id: &str) -> Request<T> {
    let mut req = Request::new(msg);
    let traceparent = format!("00-{trace_id}-{CALLER_SPAN}-01");
    req.metadata_mut().insert(
        "traceparent",
        MetadataValue::try_from(traceparent.as_str()).unwrap(),
    );
    req
}

async fn gateway(
    dev: &DevUpstream,
    protocol: &str,
    endpoint: &str,
    extra: &[(&str, &str)],
) -> (Served, Client) {
    let upstream = dev.base_url();
    let args = [
        "--upstream",
        upstream.as_str(),
        "--token-store",
        "memory",
        "--retry-backoff-base",
        "1ms",
    ];
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
    ];
    env.extend(FAST_EXPORT);
    env.extend(extra);
    let served = serve_with(&args, &env).await;
    let client = Client::new(channel(served.addr.parse().unwrap()).await);
    (served, client)
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[tokio::test]
async fn otlp_grpc_spans_continue_the_callers_trace_into_the_upstream() {
    let dev = dev_upstream().await;
    let (addr, received) = grpc_receiver().await;
    let (_gw, mut client) = gateway(&dev, "grpc", &format!("http://{addr}"), &[]).await;

    let id = support::register(&mut client, "traced").await.client_id;
    dev.inject(Fault {
        route: Route::Get,
        times: Some(1),
        kind: FaultKind::Status {
            status: 503,
            retry_after: None,
            body: None,
        },
    });
    client
        .get_client(traced(get_req(&id, None), TRACE_ID))
        .await
        .expect("get succeeds on retry");

    let get_name = "dcr.v1.DynamicClientRegistration/GetClient";
    let spans = received
        .wait_for("the GetClient server span and its two attempts", |spans| {
            named(spans, get_name).len() == 1
                && named(spans, "GET /oauth/register/{client_id}").len() == 2
        })
        .await;
    let server = named(&spans, get_name)[0];
    assert_eq!(
        hex(&server.trace_id),
        TRACE_ID,
        "the caller's trace continues"
    );
    assert_eq!(
        hex(&server.parent_span_id),
        CALLER_SPAN,
        "the server span is the caller span's child"
    );
    assert_eq!(attr(server, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(attr(server, "rpc.method").as_deref(), Some("GetClient"));
    assert_eq!(attr(server, "rpc.grpc.status_code").as_deref(), Some("0"));
    assert_eq!(attr(server, "dcr.client_id").as_deref(), Some(id.as_str()));

    let mut attempts = named(&spans, "GET /oauth/register/{client_id}");
    attempts.sort_by_key(|s| s.start_time_unix_nano);
    for attempt in &attempts {
        assert_eq!(
            attempt.parent_span_id, server.span_id,
            "attempts are children of the server span"
        );
        assert_eq!(attempt.trace_id, server.trace_id);
        assert_eq!(
            attr(attempt, "url.template").as_deref(),
            Some("/oauth/register/{client_id}")
        );
        assert_eq!(attr(attempt, "http.request.method").as_deref(), Some("GET"));
        assert_eq!(
            attr(attempt, "server.address").as_deref(),
            Some("127.0.0.1")
        );
    }
    assert_eq!(
        attr(attempts[0], "http.response.status_code").as_deref(),
        Some("503")
    );
    assert_eq!(attr(attempts[0], "http.request.resend_count"), None);
    assert_eq!(
        attr(attempts[1], "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        attr(attempts[1], "http.request.resend_count").as_deref(),
        Some("1")
    );
    assert!(
        server.events.iter().any(|e| e.name == "retrying"),
        "the retry wait is a span event"
    );
    assert!(
        server.events.iter().any(|e| e.name == "token store read"),
        "token-store reads are span events"
    );

    // The dev upstream saw the caller's trace id on both attempts.
    let traceparents = dev.stats().traceparents;
    let with_trace = traceparents
        .iter()
        .filter(|tp| tp.contains(TRACE_ID))
        .count();
    assert_eq!(with_trace, 2, "{traceparents:?}");
}

#[tokio::test]
async fn otlp_http_export_carries_the_server_span() {
    let dev = dev_upstream().await;
    let (addr, received) = http_receiver().await;
    let (_gw, mut client) = gateway(&dev, "http/protobuf", &format!("http://{addr}"), &[]).await;
    let reg = pb::RegisterClientRequest {
        metadata: Some(machine_client("http-traced")),
        initial_access_token: None,
    };
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    client.register_client(traced(reg, trace_id)).await.unwrap();
    let spans = received
        .wait_for("the RegisterClient span", |s| {
            !named(s, "dcr.v1.DynamicClientRegistration/RegisterClient").is_empty()
        })
        .await;
    let server = named(&spans, "dcr.v1.DynamicClientRegistration/RegisterClient")[0];
    assert_eq!(hex(&server.trace_id), trace_id);
    assert!(
        dev.stats()
            .traceparents
            .iter()
            .any(|tp| tp.contains(trace_id))
    );
}

fn leaks(corpus: &str, text: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret appears in the {corpus}"
        );
    }
}

#[tokio::test]
async fn no_secret_reaches_spans_logs_or_metrics() {
    let dev = dev_upstream().await;
    let (addr, received) = grpc_receiver().await;
    let upstream = dev.base_url();
    let args = [
        "--upstream",
        upstream.as_str(),
        "--token-store",
        "memory",
        "--admin-listen",
        "127.0.0.1:0",
    ];
    let endpoint = format!("http://{addr}");
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("RUST_LOG", "trace"),
    ];
    env.extend(FAST_EXPORT);
    let gw = serve_with(&args, &env).await;
    let mut c = Client::new(channel(gw.addr.parse().unwrap()).await);

    let iat = "initial-access-token-0123456789".to_string();
    let reg = pb::RegisterClientRequest {
        metadata: Some(machine_client("secretive")),
        initial_access_token: Some(iat.clone()),
    };
    let created = c
        .register_client(reg)
        .await
        .unwrap()
        .into_inner()
        .client
        .unwrap();
    let id = created.client_id.clone();
    let mut secrets = vec![
        iat,
        created.client_secret.unwrap(),
        created.registration_access_token.unwrap(),
    ];
    c.get_client(get_req(&id, None)).await.unwrap();
    let update = pb::UpdateClientRequest {
        client_id: id.clone(),
        registration_access_token: None,
        metadata: Some(machine_client("secretive2")),
        update_mask: None,
    };
    c.update_client(update).await.unwrap();
    secrets.push(
        support::rotate_secret(&mut c, &id)
            .await
            .client_secret
            .unwrap(),
    );
    let rotated = support::rotate_token(&mut c, &id).await;
    secrets.push(rotated.registration_access_token.unwrap());
    c.get_client(get_req(&id, Some(&secrets[2])))
        .await
        .expect_err("the old RAT is rejected");
    c.delete_client(pb::DeleteClientRequest {
        client_id: id.clone(),
        registration_access_token: None,
    })
    .await
    .unwrap();

    received
        .wait_for("the DeleteClient span", |s| {
            !named(s, "dcr.v1.DynamicClientRegistration/DeleteClient").is_empty()
        })
        .await;
    let admin = gw
        .logged_addr("admin")
        .expect("the admin listener logs its address");
    let metrics = support::http_get(format!("http://{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("dcr_rpc_requests_total"), "{metrics}");
    let spans = String::from_utf8_lossy(&received.wire_bytes()).into_owned();
    let log = gw.log.lock().unwrap().clone();
    assert!(log.lines().count() > 50, "TRACE logs were captured");
    leaks("exported spans", &spans, &secrets);
    leaks("logs", &log, &secrets);
    leaks("metrics", &metrics, &secrets);
}

async fn mean_latency(client: &mut Client, id: &str, calls: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..calls {
        client
            .get_client(get_req(id, None))
            .await
            .expect("no error reaches the caller");
    }
    start.elapsed() / calls
}

#[tokio::test]
async fn a_dead_collector_neither_slows_nor_fails_calls() {
    let dev = dev_upstream().await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (_on, mut exporting) = gateway(&dev, "grpc", &format!("http://{dead}"), &[]).await;
    let upstream = dev.base_url();
    let off = serve_with(
        &["--upstream", upstream.as_str(), "--token-store", "memory"],
        &[],
    )
    .await;
    let mut quiet = Client::new(channel(off.addr.parse().unwrap()).await);
    let reg = || pb::RegisterClientRequest {
        metadata: Some(machine_client("dead")),
        initial_access_token: None,
    };
    let a = exporting
        .register_client(reg())
        .await
        .unwrap()
        .into_inner()
        .client
        .unwrap()
        .client_id;
    let b = quiet
        .register_client(reg())
        .await
        .unwrap()
        .into_inner()
        .client
        .unwrap()
        .client_id;
    let with_dead_collector = mean_latency(&mut exporting, &a, 40).await;
    let without_export = mean_latency(&mut quiet, &b, 40).await;
    // A generous bound: exporting happens off the request path.
    assert!(
        with_dead_collector < without_export * 5 + Duration::from_millis(50),
        "{with_dead_collector:?} with a dead collector vs {without_export:?} without export"
    );
}

/// The metric names and label keys the README's metrics table documents.
fn documented_metrics() -> Vec<(String, Vec<String>)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("### Metrics")
        .nth(1)
        .expect("a Metrics section")
        .split("\n#")
        .next()
        .unwrap()
        .to_owned();
    section
        .lines()
        .filter(|l| l.starts_with("| `dcr_"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let name = cells[1].trim_matches('`').to_owned();
            let labels = cells[3]
                .split(',')
                .map(|s| s.trim().trim_matches('`').to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            (name, labels)
        })
        .collect()
}

#[tokio::test]
async fn metrics_endpoint_exposes_what_the_readme_documents() {
    let dev = dev_upstream().await;
    // Tokens refreshed within seconds, for the access tokens' series.
    dev.set_token_lifetime(Duration::from_secs(2));
    let upstream = dev.base_url();
    // A declared client with a token file, for the managed clients' and the
    // access tokens' series.
    let dir = support::temp_dir("metrics");
    let config = dir.join("gateway.toml");
    let credentials = dir.join("credentials");
    std::fs::create_dir(&credentials).unwrap();
    std::fs::write(
        &config,
        format!(
            "credentials_dir = {:?}\n[[clients]]\nname = \"measured-app\"\n\
             metadata = {{ client_name = \"m\", grant_types = [\"client_credentials\"] }}\n\
             [[clients.tokens]]\n",
            credentials.to_str().unwrap()
        ),
    )
    .unwrap();
    let gw = serve_with(
        &[
            "--upstream",
            upstream.as_str(),
            "--token-store",
            "memory",
            "--admin-listen",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let mut c = Client::new(channel(gw.addr.parse().unwrap()).await);
    let id = support::register(&mut c, "measured").await.client_id;
    c.get_client(get_req(&id, None)).await.unwrap();
    c.get_client(get_req("shark_dcr_unknown_client_abcdef", Some("wrong")))
        .await
        .expect_err("an error, for the error series");
    let admin = gw.logged_addr("admin").expect("admin address");
    // The declared client's first reconcile sets its series; its token's
    // first refresh (within two seconds) the refresh lag's.
    let metrics = support::eventually(Duration::from_secs(10), || async {
        let text = support::http_get(format!("http://{admin}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (text.contains("dcr_managed_secret_age_seconds{")
            && text.contains("dcr_managed_credentials_file_age_seconds{")
            && text.contains("dcr_access_token_refresh_lag_seconds_count"))
        .then_some(text)
    })
    .await;
    let documented = documented_metrics();
    assert!(
        documented.len() >= 10,
        "the README documents the metrics: {documented:?}"
    );
    for (name, labels) in documented {
        let series: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with(&name) && !l.starts_with('#'))
            .collect();
        assert!(
            !series.is_empty(),
            "{name} is documented but not exposed:\n{metrics}"
        );
        for label in labels {
            assert!(
                series.iter().any(|s| s.contains(&format!("{label}=\""))),
                "{name} lacks label {label}"
            );
        }
    }
    for path in ["healthz", "readyz"] {
        let resp = support::http_get(format!("http://{admin}/{path}"))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "/{path}");
    }
}

/// `RUST_LOG` takes a level and `TARGET=LEVEL` directives; a value that is
/// not such a filter is said at start, and the default (info) applies: the
/// info line with the gRPC address is still logged.
#[tokio::test]
async fn a_rust_log_that_is_not_a_filter_is_reported_and_the_default_applies() {
    let served = serve_with(&["--dev-upstream"], &[("RUST_LOG", "dcr_gateway=loud")]).await;
    let log = served.log.lock().unwrap().clone();
    assert!(log.contains("RUST_LOG is not a filter"), "{log}");
    assert!(log.contains("logging at info"), "{log}");
}
