//! Custody: a token the gateway has seen is not lost to an answer that proves
//! nothing, to a caller who stops waiting, or to a server that answers for
//! another client; and a URL a server returns cannot turn one call into
//! another.

mod support;

use std::time::Duration;

use dcr_dev_upstream::{Fault, FaultKind, Route};
use dcr_gateway::config::RawConfig;
use dcr_gateway::pb::v1 as pb;
use support::scripted::{Answer, Scripted};
use support::{TestGateway, eventually, get_req, machine_client, reason};
use tonic::{Code, Request};

const RAT: &str = "rat-one-0123456789";

fn register_req() -> pb::RegisterClientRequest {
    pb::RegisterClientRequest {
        metadata: Some(machine_client("custody")),
        initial_access_token: None,
    }
}

fn registered(id: &str, rat: &str) -> Answer {
    Answer::json(
        201,
        &format!(r#"{{"client_id":"{id}","registration_access_token":"{rat}"}}"#),
    )
}

#[tokio::test]
async fn only_proof_of_rejection_forgets_a_stored_token() {
    let upstream = Scripted::start(vec![
        registered("c1", RAT),
        Answer::raw(
            401,
            "text/html",
            b"<html><body>401 Authorization Required</body></html>".to_vec(),
        ),
        Answer::json(
            401,
            r#"{"error":"invalid_client","error_description":"client certificate expired"}"#,
        ),
        Answer::json(403, r#"{"error":"access_denied"}"#),
        Answer::json(200, r#"{"client_id":"c1"}"#),
        Answer::json(
            401,
            r#"{"error":"invalid_token","error_description":"invalid registration access token"}"#,
        ),
    ])
    .await;
    let gw = TestGateway::start(&upstream.url()).await;
    let mut client = gw.client().await;
    client.register_client(register_req()).await.unwrap();
    for what in ["an HTML 401", "401 invalid_client", "403 access_denied"] {
        let err = client.get_client(get_req("c1", None)).await.unwrap_err();
        assert_ne!(
            reason(&err),
            "MISSING_REGISTRATION_ACCESS_TOKEN",
            "{what}: {err:?}"
        );
    }
    client
        .get_client(get_req("c1", None))
        .await
        .expect("the stored token survived answers that prove nothing");
    let sent = upstream.requests();
    assert_eq!(
        sent[4].header("authorization"),
        Some(format!("Bearer {RAT}").as_str())
    );
    let err = client.get_client(get_req("c1", None)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = client.get_client(get_req("c1", None)).await.unwrap_err();
    assert_eq!(
        reason(&err),
        "MISSING_REGISTRATION_ACCESS_TOKEN",
        "invalid_token is proof: {err:?}"
    );
    assert_eq!(
        upstream.requests().len(),
        6,
        "a forgotten token sends nothing"
    );
}

#[tokio::test]
async fn a_bearer_challenge_naming_invalid_token_is_proof() {
    let challenge = Answer::raw(401, "text/html", b"<html>no</html>".to_vec()).header(
        "WWW-Authenticate",
        r#"Bearer realm="dcr", error="invalid_token""#,
    );
    let upstream = Scripted::start(vec![registered("c2", RAT), challenge]).await;
    let gw = TestGateway::start(&upstream.url()).await;
    let mut client = gw.client().await;
    client.register_client(register_req()).await.unwrap();
    client.get_client(get_req("c2", None)).await.unwrap_err();
    let err = client.get_client(get_req("c2", None)).await.unwrap_err();
    assert_eq!(reason(&err), "MISSING_REGISTRATION_ACCESS_TOKEN", "{err:?}");
}

#[tokio::test]
async fn a_register_cut_by_the_deadline_still_stores_its_token() {
    let upstream = Scripted::start(vec![
        registered("late", "rat-late-0123456789").delayed(Duration::from_secs(1)),
        Answer::json(200, r#"{"client_id":"late"}"#),
    ])
    .await;
    let gw = TestGateway::start(&upstream.url()).await;
    let mut client = gw.client().await;
    let mut req = Request::new(register_req());
    req.set_timeout(Duration::from_millis(300));
    let err = client.register_client(req).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert_eq!(reason(&err), "DEADLINE_EXCEEDED_AFTER_SEND");
    assert!(
        err.message().contains("may have taken effect"),
        "{}",
        err.message()
    );
    let got = eventually(Duration::from_secs(10), || {
        let mut client = client.clone();
        async move { client.get_client(get_req("late", None)).await.ok() }
    })
    .await;
    assert_eq!(got.into_inner().client.unwrap().client_id, "late");
    let sent = upstream.requests();
    assert_eq!(
        sent.last().unwrap().header("authorization"),
        Some("Bearer rat-late-0123456789"),
        "the detached register stored its token"
    );
}

#[tokio::test]
async fn a_read_that_rotates_cut_by_the_deadline_keeps_the_client_managed() {
    let dev = support::dev_upstream().await;
    dev.rotate_on_read_and_update(true);
    let raw = RawConfig {
        upstream_profile: Some("rfc7592".into()),
        registration_endpoint: Some(format!("{}/oauth/register", dev.base_url())),
        ..RawConfig::default()
    };
    let gw = TestGateway::start_with(&dev.base_url(), raw).await;
    let mut client = gw.client().await;
    let id = support::register(&mut client, "rotates-on-read")
        .await
        .client_id;
    dev.inject(Fault {
        route: Route::Get,
        times: Some(1),
        kind: FaultKind::Delay { ms: 1000 },
    });
    let mut cut = Request::new(get_req(&id, None));
    cut.set_timeout(Duration::from_millis(300));
    let err = client.get_client(cut).await.unwrap_err();
    assert_eq!(reason(&err), "DEADLINE_EXCEEDED_AFTER_SEND", "{err:?}");
    // The next call waits for the detached read's lock, then uses the token
    // that read brought back; had it been dropped, the old token is dead.
    let mut next = Request::new(get_req(&id, None));
    next.set_timeout(Duration::from_secs(10));
    client
        .get_client(next)
        .await
        .expect("the rotated token of the cut read was stored");
}

#[tokio::test]
async fn answers_for_another_client_are_refused_and_not_stored() {
    let upstream = Scripted::start(vec![
        Answer::json(
            200,
            r#"{"client_id":"other","registration_access_token":"rat-planted-0123456789"}"#,
        ),
        registered("bad\\u001b[31mid", RAT),
    ])
    .await;
    let gw = TestGateway::start(&upstream.url()).await;
    let mut client = gw.client().await;
    let err = client
        .get_client(get_req("c1", Some(RAT)))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "UPSTREAM_CLIENT_MISMATCH", "{err:?}");
    let err = client.get_client(get_req("other", None)).await.unwrap_err();
    assert_eq!(
        reason(&err),
        "MISSING_REGISTRATION_ACCESS_TOKEN",
        "nothing was planted: {err:?}"
    );
    let err = client.register_client(register_req()).await.unwrap_err();
    assert_eq!(reason(&err), "UPSTREAM_MALFORMED_RESPONSE", "{err:?}");
    assert!(!err.message().contains('\u{1b}'), "{:?}", err.message());
    assert_eq!(upstream.requests().len(), 2);
}

#[tokio::test]
async fn a_client_uri_with_a_query_or_fragment_is_never_used() {
    let foreign = Scripted::start(vec![Answer::json(200, r#"{"client_id":"c23"}"#)]).await;
    let uri = |id: &str, tail: &str| format!("{}/oauth/register/{id}{tail}", foreign.url());
    let answer = |id: &str, tail: &str| {
        Answer::json(
            201,
            &format!(
                r#"{{"client_id":"{id}","registration_access_token":"{RAT}","registration_client_uri":"{}"}}"#,
                uri(id, tail)
            ),
        )
    };
    let upstream = Scripted::start(vec![answer("c23", "?v=1"), answer("c24", "#frag")]).await;
    let raw = RawConfig {
        sharkauth_use_client_uri: Some(true),
        allowed_client_uri_origins: Some(foreign.url()),
        ..RawConfig::default()
    };
    let gw = TestGateway::start_with(&upstream.url(), raw).await;
    let mut client = gw.client().await;
    for id in ["c23", "c24"] {
        client.register_client(register_req()).await.unwrap();
        let err = client
            .rotate_registration_token(pb::RotateRegistrationTokenRequest {
                client_id: id.into(),
                registration_access_token: None,
            })
            .await
            .unwrap_err();
        assert_eq!(
            reason(&err),
            "FOREIGN_REGISTRATION_CLIENT_URI",
            "{id}: {err:?}"
        );
    }
    assert!(
        foreign.requests().is_empty(),
        "nothing was sent to a query or fragment URI"
    );
}

#[tokio::test]
async fn retries_against_a_failing_upstream_stay_near_one_attempt_per_call() {
    let upstream = Scripted::start(vec![Answer::json(503, r#"{"error":"unavailable"}"#)]).await;
    let gw = TestGateway::start(&upstream.url()).await;
    let mut client = gw.client().await;
    for _ in 0..200 {
        let err = client
            .get_client(get_req("c1", Some(RAT)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
    }
    let attempts = upstream.requests().len();
    assert!(
        attempts >= 200,
        "every call made its first attempt: {attempts}"
    );
    assert!(attempts <= 320, "{attempts} attempts for 200 calls");
}

#[tokio::test]
async fn shutdown_waits_for_a_detached_register_to_store_its_token() {
    let dir = support::temp_dir("tail-shutdown");
    let keys = dir.join("keys");
    std::fs::write(&keys, "k1=MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=\n").unwrap();
    let db = dir.join("tokens.redb");
    let file_store = || RawConfig {
        token_store: dcr_gateway::config::RawStoreConfig {
            backend: Some("file".into()),
            path: Some(db.to_str().unwrap().into()),
            keys_file: Some(keys.to_str().unwrap().into()),
            ..Default::default()
        },
        ..RawConfig::default()
    };
    let upstream = Scripted::start(vec![
        registered("tail", "rat-tail-0123456789").delayed(Duration::from_millis(1500)),
        Answer::json(200, r#"{"client_id":"tail"}"#),
    ])
    .await;
    let mut gw = TestGateway::start_with(&upstream.url(), file_store()).await;
    let mut client = gw.client().await;
    let mut req = Request::new(register_req());
    req.set_timeout(Duration::from_millis(200));
    let err = client.register_client(req).await.unwrap_err();
    assert_eq!(reason(&err), "DEADLINE_EXCEEDED_AFTER_SEND", "{err:?}");
    gw.signal_shutdown();
    tokio::time::timeout(Duration::from_secs(20), &mut gw.task)
        .await
        .expect("the gateway stops within its grace period")
        .unwrap();
    let gw = TestGateway::start_with(&upstream.url(), file_store()).await;
    let mut client = gw.client().await;
    client
        .get_client(get_req("tail", None))
        .await
        .expect("shutdown waited for the detached register to store its token");
}

#[tokio::test]
async fn upstream_text_never_reaches_the_log_raw() {
    // A description that forges a log line, carries an escape sequence and
    // echoes part of the token the call sent.
    let forged = r#"{"error":"temporarily_unavailable","error_description":"busy\n2026-12-01T00:00:00Z  INFO forged=\"line\" \u001b[31m red 0123456789"}"#;
    let upstream =
        Scripted::start(vec![Answer::json(400, forged), Answer::json(503, forged)]).await;
    let served = support::process::serve_with(
        &["--upstream", &upstream.url(), "--token-store", "memory"],
        &[("RUST_LOG", "debug")],
    )
    .await;
    let addr = served.addr.parse().unwrap();
    let mut client = support::Client::new(support::channel(addr).await);
    let err = client
        .get_client(get_req("c1", Some(RAT)))
        .await
        .unwrap_err();
    let message = err.message();
    assert!(message.contains("[redacted]"), "{message}");
    assert!(
        !message.contains("0123456789"),
        "a run of the sent token reached the caller: {message}"
    );
    assert!(
        !message.contains('\u{1b}') && !message.contains('\n'),
        "{message:?}"
    );
    client
        .get_client(get_req("c1", Some(RAT)))
        .await
        .unwrap_err();
    eventually(Duration::from_secs(10), || async {
        let log = served.log.lock().unwrap();
        log.contains("code=Unavailable").then_some(())
    })
    .await;
    let log = served.log.lock().unwrap().clone();
    assert!(log.contains("retrying"), "the retry was logged: {log}");
    assert!(!log.contains('\u{1b}'), "a raw escape reached the log");
    assert!(
        !log.lines().any(|l| l.starts_with("2026-12-01T00:00:00Z")),
        "a forged line reached the log"
    );
    assert!(
        !log.contains("forged") && !log.contains("busy"),
        "a description reached the log: {log}"
    );
    assert!(
        !log.contains("0123456789"),
        "a run of the token reached the log"
    );
}
