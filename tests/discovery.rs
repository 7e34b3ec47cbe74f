//! Discovery of the registration endpoint (rfc7592 profile) goes through the
//! one upstream client, believes only a document of the configured issuer
//! that names its own origin, and waits for the server instead of exiting.

mod support;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::pki::{Ca, write};
use support::scripted::{Answer, Scripted};
use support::{eventually, temp_dir};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Starts `serve` with the rfc7592 profile against `upstream` and collects
/// its log; the process is killed on drop.
fn discovering(
    upstream: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (tokio::process::Child, Arc<Mutex<String>>) {
    let mut child = support::process::gateway()
        .args([
            "serve",
            "--upstream",
            upstream,
            "--upstream-profile",
            "rfc7592",
        ])
        .args(args)
        .args([
            "--token-store",
            "memory",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "off",
        ])
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    (child, log)
}

async fn logged(log: &Arc<Mutex<String>>, needle: &str) {
    eventually(Duration::from_secs(20), || async {
        log.lock().unwrap().contains(needle).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_foreign_registration_endpoint_is_refused_and_gets_nothing() {
    let foreign = Scripted::start(vec![Answer::json(201, r#"{"client_id":"c1"}"#)]).await;
    let doc = format!(
        r#"{{"issuer":"{{self}}","registration_endpoint":"{}/register"}}"#,
        foreign.url()
    );
    let upstream = Scripted::start(vec![Answer::json(200, &doc)]).await;
    let (mut child, log) = discovering(&upstream.url(), &[], &[]);
    logged(&log, "neither the issuer's origin").await;
    logged(&log, "discovery failed; retrying").await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the gateway exited instead of waiting"
    );
    assert!(
        !log.lock().unwrap().contains("gRPC listening"),
        "it served with a foreign endpoint"
    );
    assert!(foreign.requests().is_empty());
}

#[tokio::test]
async fn a_document_of_another_issuer_is_refused() {
    let doc = r#"{"issuer":"https://auth.example","registration_endpoint":"{self}/register"}"#;
    let upstream = Scripted::start(vec![Answer::json(200, doc)]).await;
    let (mut child, log) = discovering(&upstream.url(), &[], &[]);
    logged(
        &log,
        "the document's issuer is not the configured --upstream",
    )
    .await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the gateway exited instead of waiting"
    );
}

#[tokio::test]
async fn discovery_waits_for_the_server_then_serves() {
    let doc = r#"{"issuer":"{self}","registration_endpoint":"{self}/register"}"#;
    let down = Answer::json(503, r#"{"error":"temporarily_unavailable"}"#);
    // Both candidate documents fail once, then the first one answers.
    let upstream = Scripted::start(vec![down.clone(), down, Answer::json(200, doc)]).await;
    let (_child, log) = discovering(&upstream.url(), &[], &[]);
    logged(&log, "discovered the registration endpoint").await;
    logged(&log, "gRPC listening").await;
}

#[tokio::test]
async fn discovery_uses_the_upstream_ca_ignores_proxies_and_caps_the_document() {
    let dir = temp_dir("discovery-tls");
    let ca = Ca::new("private issuer CA");
    let ca_file = write(&dir, "ca.pem", &ca.pem);
    let doc = r#"{"issuer":"{self}","registration_endpoint":"{self}/register"}"#;
    let tls = support::pki::server_config(&ca.server(), None);
    let upstream = Scripted::start_tls(vec![Answer::json(200, doc)], tls).await;
    // A proxy that would see the traffic if proxy variables were honoured.
    let proxy = Scripted::start(vec![Answer::json(200, "{}")]).await;
    let proxy_url = proxy.url();
    let (_child, log) = discovering(
        &upstream.https_url(),
        &["--upstream-ca-file", ca_file.to_str().unwrap()],
        &[("HTTPS_PROXY", &proxy_url), ("ALL_PROXY", &proxy_url)],
    );
    logged(&log, "discovered the registration endpoint").await;
    assert_eq!(
        upstream.requests().len(),
        1,
        "discovery trusted the upstream CA"
    );
    assert!(
        proxy.requests().is_empty(),
        "discovery went through a proxy"
    );

    let huge = format!(
        r#"{{"issuer":"{{self}}","registration_endpoint":"{{self}}/register","pad":"{}"}}"#,
        "x".repeat(2 << 20)
    );
    let upstream = Scripted::start(vec![Answer::json(200, &huge)]).await;
    let (_child, log) = discovering(&upstream.url(), &[], &[]);
    logged(&log, "larger than").await;
}

#[tokio::test]
async fn a_moved_endpoint_is_found_by_the_refresh() {
    let first = r#"{"issuer":"{self}","registration_endpoint":"{self}/reg-a"}"#;
    let moved = r#"{"issuer":"{self}","registration_endpoint":"{self}/reg-b"}"#;
    let upstream = Scripted::start(vec![Answer::json(200, first), Answer::json(200, moved)]).await;
    let (_child, log) = discovering(
        &upstream.url(),
        &["--discovery-refresh-interval", "1s"],
        &[],
    );
    logged(&log, "the registration endpoint moved").await;
    assert!(
        log.lock().unwrap().contains("reg-b"),
        "{}",
        log.lock().unwrap()
    );
}
