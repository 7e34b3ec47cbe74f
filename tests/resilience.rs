//! Retries that never duplicate, deadlines, load shedding and per-client
//! serialisation, against the dev upstream's scripted faults over real sockets.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use dcr_dev_upstream::{DevUpstream, Fault, FaultKind, Route};
use dcr_gateway::config::RawConfig;
use dcr_gateway::pb::v1 as pb;
use prost_types::FieldMask;
use support::{Client, TestGateway, dev_upstream, eventually, get_req, machine_client, register};
use tonic::{Code, Request};
use tonic_types::StatusExt;

/// Fast retries so tests spend no time in backoff.
fn fast() -> RawConfig {
    RawConfig {
        retry_backoff_base: Some("1ms".into()),
        retry_backoff_max: Some("5ms".into()),
        ..Default::default()
    }
}

async fn gateway(dev: &DevUpstream, raw: RawConfig) -> (TestGateway, Client) {
    let gw = TestGateway::start_with(&dev.base_url(), raw).await;
    let client = gw.client().await;
    (gw, client)
}

fn fault(route: Route, times: Option<u32>, kind: FaultKind) -> Fault {
    Fault { route, times, kind }
}

fn status(code: u16, retry_after: Option<String>) -> FaultKind {
    FaultKind::Status {
        status: code,
        retry_after,
        body: None,
    }
}

fn requests(dev: &DevUpstream, route: Route) -> u64 {
    dev.stats().requests.get(&route).copied().unwrap_or(0)
}

fn update_req(id: &str, name: &str, mask: &[&str]) -> pb::UpdateClientRequest {
    pb::UpdateClientRequest {
        client_id: id.into(),
        registration_access_token: None,
        metadata: Some(machine_client(name)),
        update_mask: (!mask.is_empty()).then(|| FieldMask {
            paths: mask.iter().map(|p| p.to_string()).collect(),
        }),
    }
}

fn delete_req(id: &str) -> pb::DeleteClientRequest {
    pb::DeleteClientRequest {
        client_id: id.into(),
        registration_access_token: None,
    }
}

fn rotate_token_req(id: &str) -> pb::RotateRegistrationTokenRequest {
    pb::RotateRegistrationTokenRequest {
        client_id: id.into(),
        registration_access_token: None,
    }
}

fn rotate_secret_req(id: &str) -> pb::RotateClientSecretRequest {
    pb::RotateClientSecretRequest {
        client_id: id.into(),
        registration_access_token: None,
    }
}

#[tokio::test]
async fn safe_operations_succeed_through_two_transient_503s() {
    let dev = dev_upstream().await;
    let (_gw, mut client) = gateway(&dev, fast()).await;
    let id = register(&mut client, "flaky").await.client_id;

    dev.inject(fault(Route::Get, Some(2), status(503, None)));
    client
        .get_client(get_req(&id, None))
        .await
        .expect("get survives two 503s");
    assert_eq!(
        requests(&dev, Route::Get),
        3,
        "two failures and one success"
    );

    dev.inject(fault(Route::Update, Some(2), status(503, None)));
    client
        .update_client(update_req(&id, "flaky2", &[]))
        .await
        .expect("update survives two 503s");
    assert_eq!(requests(&dev, Route::Update), 3);

    // A masked update is retried whole: read, merge and write again.
    dev.inject(fault(Route::Get, Some(2), status(502, None)));
    let resp = client
        .update_client(update_req(&id, "flaky3", &["client_name"]))
        .await
        .expect("masked update");
    assert_eq!(
        resp.into_inner()
            .client
            .unwrap()
            .metadata
            .unwrap()
            .client_name
            .as_deref(),
        Some("flaky3")
    );
    assert_eq!(
        (requests(&dev, Route::Get), requests(&dev, Route::Update)),
        (6, 4)
    );

    dev.inject(fault(Route::Delete, Some(2), status(504, None)));
    client
        .delete_client(delete_req(&id))
        .await
        .expect("delete survives two 504s");
    assert_eq!(requests(&dev, Route::Delete), 3);
}

#[tokio::test]
async fn retries_stop_at_max_attempts() {
    let dev = dev_upstream().await;
    let (_gw, mut client) = gateway(
        &dev,
        RawConfig {
            max_attempts: Some(3),
            ..fast()
        },
    )
    .await;
    let id = register(&mut client, "down").await.client_id;
    dev.inject(fault(Route::Get, None, status(503, None)));
    let err = client.get_client(get_req(&id, None)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(
        err.message().contains("after 3 attempts"),
        "{}",
        err.message()
    );
    assert_eq!(requests(&dev, Route::Get), 3);
}

#[tokio::test]
async fn lost_register_and_rotation_answers_are_never_retried() {
    let dev = dev_upstream().await;
    let (_gw, mut client) = gateway(&dev, fast()).await;

    dev.inject(fault(
        Route::Register,
        Some(1),
        FaultKind::DropAfterProcessing,
    ));
    let req = pb::RegisterClientRequest {
        metadata: Some(machine_client("lost")),
        initial_access_token: None,
    };
    let err = client.register_client(req).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        err.message()
            .contains("RegisterClient may have taken effect"),
        "{}",
        err.message()
    );
    assert_eq!(dev.clients_created(), 1, "exactly one client: no retry");
    assert_eq!(requests(&dev, Route::Register), 1);

    let id = register(&mut client, "rotating").await.client_id;
    dev.inject(fault(
        Route::RotateToken,
        Some(1),
        FaultKind::DropAfterProcessing,
    ));
    let err = client
        .rotate_registration_token(rotate_token_req(&id))
        .await
        .unwrap_err();
    assert!(
        err.message()
            .contains("RotateRegistrationToken may have taken effect"),
        "{}",
        err.message()
    );
    assert_eq!(
        requests(&dev, Route::RotateToken),
        1,
        "exactly one rotation"
    );

    dev.inject(fault(Route::RotateSecret, Some(1), status(503, None)));
    let err = client
        .rotate_client_secret(rotate_secret_req(&id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(
        requests(&dev, Route::RotateSecret),
        1,
        "a sent rotation is never retried"
    );
}

#[tokio::test]
async fn delete_whose_answer_was_lost_reports_deleted() {
    let dev = dev_upstream().await;
    let (_gw, mut client) = gateway(&dev, fast()).await;
    let id = register(&mut client, "ghost").await.client_id;
    dev.inject(fault(
        Route::Delete,
        Some(1),
        FaultKind::DropAfterProcessing,
    ));
    client
        .delete_client(delete_req(&id))
        .await
        .expect("the retry finds it gone: deleted");
    assert_eq!(requests(&dev, Route::Delete), 2);
    let err = client.get_client(get_req(&id, None)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn connection_refused_then_up_is_retried_for_every_operation() {
    let mut dev = dev_upstream().await;
    let raw = RawConfig {
        retry_backoff_base: Some("50ms".into()),
        retry_backoff_max: Some("200ms".into()),
        max_attempts: Some(10),
        admin_listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    };
    let (gw, mut client) = gateway(&dev, raw).await;
    let id = register(&mut client, "refused").await.client_id;
    for op in [
        "register",
        "get",
        "update",
        "rotate_secret",
        "rotate_token",
        "delete",
    ] {
        dev.pause().await;
        let mut c = client.clone();
        let id = id.clone();
        let call = tokio::spawn(async move {
            match op {
                "register" => c
                    .register_client(pb::RegisterClientRequest {
                        metadata: Some(machine_client("r")),
                        initial_access_token: None,
                    })
                    .await
                    .map(drop),
                "get" => c.get_client(get_req(&id, None)).await.map(drop),
                "update" => c
                    .update_client(update_req(&id, "refused2", &[]))
                    .await
                    .map(drop),
                "rotate_secret" => c
                    .rotate_client_secret(rotate_secret_req(&id))
                    .await
                    .map(drop),
                "rotate_token" => c
                    .rotate_registration_token(rotate_token_req(&id))
                    .await
                    .map(drop),
                _ => c.delete_client(delete_req(&id)).await.map(drop),
            }
        });
        // Once an attempt has met the closed port and been retried, bring the
        // server back.
        let method = match op {
            "register" => "RegisterClient",
            "get" => "GetClient",
            "update" => "UpdateClient",
            "rotate_secret" => "RotateClientSecret",
            "rotate_token" => "RotateRegistrationToken",
            _ => "DeleteClient",
        };
        let series = format!("dcr_retries_total{{method=\"{method}\"}}");
        let gw = &gw;
        eventually(Duration::from_secs(10), || {
            let series = series.clone();
            async move { (gw.metric(&series).await >= 1.0).then_some(()) }
        })
        .await;
        dev.resume().await.unwrap();
        call.await
            .unwrap()
            .unwrap_or_else(|e| panic!("{op}: {e:?}"));
    }
}

#[tokio::test]
async fn retry_after_is_honoured_in_both_forms_and_capped() {
    let dev = dev_upstream().await;
    let raw = RawConfig {
        retry_after_max: Some("2s".into()),
        ..fast()
    };
    let (_gw, mut client) = gateway(&dev, raw).await;
    let id = register(&mut client, "patient").await.client_id;

    dev.inject(fault(Route::Get, Some(1), status(429, Some("1".into()))));
    let start = Instant::now();
    client.get_client(get_req(&id, None)).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        start.elapsed()
    );

    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    dev.inject(fault(Route::Get, Some(1), status(503, Some(at))));
    let start = Instant::now();
    client.get_client(get_req(&id, None)).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "HTTP-date honoured: waited {:?}",
        start.elapsed()
    );

    // A Retry-After of an hour is cut to the 2 s cap rather than obeyed.
    dev.inject(fault(Route::Get, Some(1), status(503, Some("3600".into()))));
    let start = Instant::now();
    client.get_client(get_req(&id, None)).await.unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(60),
        "capped: {waited:?}"
    );
}

#[tokio::test]
async fn retry_after_beyond_the_deadline_fails_fast_with_retry_info() {
    let dev = dev_upstream().await;
    let raw = RawConfig {
        retry_after_max: Some("60s".into()),
        ..fast()
    };
    let (_gw, mut client) = gateway(&dev, raw).await;
    let id = register(&mut client, "hurried").await.client_id;
    dev.inject(fault(Route::Get, Some(1), status(429, Some("30".into()))));
    let mut req = Request::new(get_req(&id, None));
    req.set_timeout(Duration::from_secs(5));
    let err = client.get_client(req).await.unwrap_err();
    // Not DEADLINE_EXCEEDED: the gateway gave up at once instead of sleeping.
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    let retry = err
        .get_error_details()
        .retry_info()
        .cloned()
        .expect("RetryInfo");
    assert_eq!(retry.retry_delay, Some(Duration::from_secs(30)));
    assert_eq!(requests(&dev, Route::Get), 1);
}

#[tokio::test]
async fn caller_deadline_cuts_a_slow_upstream_and_releases_the_connection() {
    let dev = dev_upstream().await;
    let (_gw, mut client) = gateway(&dev, fast()).await;
    let id = register(&mut client, "slow").await.client_id;
    dev.inject(fault(Route::Get, Some(1), FaultKind::Delay { ms: 2000 }));
    let start = Instant::now();
    let mut req = Request::new(get_req(&id, None));
    req.set_timeout(Duration::from_millis(200));
    let err = client.get_client(req).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    // The upstream request was dropped, not left to finish its 2 s.
    eventually(
        Duration::from_millis(1800).saturating_sub(start.elapsed()),
        || async { (dev.stats().in_flight == 0).then_some(()) },
    )
    .await;
    assert_eq!(requests(&dev, Route::Get), 1);
}

#[tokio::test]
async fn a_failing_upstream_gets_no_more_retries_than_the_budget() {
    let dev = dev_upstream().await;
    let raw = RawConfig {
        max_attempts: Some(10),
        retry_budget_percent: Some(20),
        retry_budget_min_per_second: Some(0),
        ..fast()
    };
    let (_gw, mut client) = gateway(&dev, raw).await;
    let id = register(&mut client, "storm").await.client_id;
    dev.inject(fault(Route::Get, None, status(503, None)));
    let calls = 50;
    let mut exhausted = 0;
    for _ in 0..calls {
        let err = client.get_client(get_req(&id, None)).await.unwrap_err();
        exhausted += usize::from(err.message().contains("retry budget exhausted"));
    }
    let sent = requests(&dev, Route::Get);
    assert!(
        sent <= calls + calls / 5 + 1,
        "{sent} upstream requests for {calls} calls"
    );
    assert!(exhausted > 0, "the budget ran out at least once");
}

#[tokio::test]
async fn load_is_shed_beyond_the_in_flight_limit_and_queue() {
    let dev = dev_upstream().await;
    let raw = RawConfig {
        max_in_flight: Some(4),
        max_queue: Some(0),
        ..fast()
    };
    let (_gw, client) = gateway(&dev, raw).await;
    dev.inject(fault(Route::Register, None, FaultKind::Delay { ms: 1500 }));
    let finished = Arc::new(AtomicUsize::new(0));
    let mut calls = Vec::new();
    for i in 0..50 {
        let mut c = client.clone();
        let finished = finished.clone();
        calls.push(tokio::spawn(async move {
            let req = pb::RegisterClientRequest {
                metadata: Some(machine_client(&format!("load{i}"))),
                initial_access_token: None,
            };
            let result = c.register_client(req).await;
            (result.map(drop), finished.fetch_add(1, Ordering::SeqCst))
        }));
    }
    let results = tokio::time::timeout(
        Duration::from_secs(30),
        futures_util::future::join_all(calls),
    )
    .await
    .expect("nothing hangs");
    let mut shed_order = Vec::new();
    let mut ok_order = Vec::new();
    for r in results {
        match r.unwrap() {
            (Ok(()), order) => ok_order.push(order),
            (Err(e), order) => {
                assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
                assert!(e.get_error_details().retry_info().is_some());
                shed_order.push(order);
            }
        }
    }
    assert_eq!((ok_order.len(), shed_order.len()), (4, 46));
    let last_shed = shed_order.iter().max().unwrap();
    assert!(
        ok_order.iter().all(|o| o > last_shed),
        "every shed call was answered before any slow one"
    );
    assert_eq!(dev.clients_created(), 4);
}

#[tokio::test]
async fn concurrent_rotations_and_reads_on_one_client_leave_a_working_token() {
    let dev = dev_upstream().await;
    let (_gw, mut client) = gateway(&dev, fast()).await;
    let id = register(&mut client, "busy").await.client_id;
    let mut calls = Vec::new();
    for i in 0..30 {
        let mut c = client.clone();
        let id = id.clone();
        calls.push(tokio::spawn(async move {
            match i % 3 {
                0 => c
                    .rotate_registration_token(rotate_token_req(&id))
                    .await
                    .map(drop),
                1 => c.get_client(get_req(&id, None)).await.map(drop),
                _ => c
                    .rotate_client_secret(rotate_secret_req(&id))
                    .await
                    .map(drop),
            }
        }));
    }
    for call in calls {
        call.await.unwrap().expect("no call fails from a race");
    }
    assert_eq!(requests(&dev, Route::RotateToken), 10);
    client
        .get_client(get_req(&id, None))
        .await
        .expect("the stored token works");
}

#[tokio::test]
async fn other_clients_are_not_serialised_behind_a_slow_one() {
    let dev = dev_upstream().await;
    let (_gw, mut client) = gateway(&dev, fast()).await;
    let a = register(&mut client, "a").await.client_id;
    let b = register(&mut client, "b").await.client_id;
    dev.inject(fault(
        Route::RotateSecret,
        Some(1),
        FaultKind::Delay { ms: 3000 },
    ));
    let mut c = client.clone();
    let slow = tokio::spawn(async move { c.rotate_client_secret(rotate_secret_req(&a)).await });
    eventually(Duration::from_secs(10), || async {
        (dev.stats().in_flight > 0).then_some(())
    })
    .await;
    client
        .get_client(get_req(&b, None))
        .await
        .expect("b is served");
    assert!(
        !slow.is_finished(),
        "b was answered while a's call still held a's lock"
    );
    slow.await.unwrap().expect("a's slow call completes");
}

#[tokio::test]
async fn a_cancelled_rotation_still_stores_the_new_token() {
    let dev = dev_upstream().await;
    let (_gw, mut client) = gateway(&dev, fast()).await;

    // Cancelled by its deadline.
    let id = register(&mut client, "cancelled").await.client_id;
    dev.inject(fault(
        Route::RotateToken,
        Some(1),
        FaultKind::Delay { ms: 500 },
    ));
    let mut req = Request::new(rotate_token_req(&id));
    req.set_timeout(Duration::from_millis(100));
    let err = client.rotate_registration_token(req).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
    // The next call on this client waits for the rotation, then uses its token.
    client
        .get_client(get_req(&id, None))
        .await
        .expect("the new token was stored");
    assert_eq!(requests(&dev, Route::RotateToken), 1);

    // Cancelled by the caller going away mid-call.
    let id = register(&mut client, "abandoned").await.client_id;
    dev.inject(fault(
        Route::RotateToken,
        Some(1),
        FaultKind::Delay { ms: 500 },
    ));
    let mut c = client.clone();
    let id2 = id.clone();
    let call =
        tokio::spawn(async move { c.rotate_registration_token(rotate_token_req(&id2)).await });
    eventually(Duration::from_secs(10), || async {
        (dev.stats().in_flight > 0).then_some(())
    })
    .await;
    call.abort();
    client
        .get_client(get_req(&id, None))
        .await
        .expect("the new token was stored");
    assert_eq!(requests(&dev, Route::RotateToken), 2);
}

#[tokio::test]
async fn garbage_body_is_internal_and_not_retried() {
    let dev = dev_upstream().await;
    let (_gw, mut client) = gateway(&dev, fast()).await;
    let id = register(&mut client, "garbled").await.client_id;
    dev.inject(fault(Route::Get, Some(1), FaultKind::GarbageBody));
    let err = client.get_client(get_req(&id, None)).await.unwrap_err();
    assert_eq!(err.code(), Code::Internal);
    assert!(err.message().contains("not JSON"), "{}", err.message());
    assert_eq!(requests(&dev, Route::Get), 1);
}

#[tokio::test]
async fn a_body_that_stalls_past_the_attempt_timeout_is_retried() {
    let dev = dev_upstream().await;
    let raw = RawConfig {
        upstream_timeout: Some("300ms".into()),
        ..fast()
    };
    let (_gw, mut client) = gateway(&dev, raw).await;
    let id = register(&mut client, "stalled").await.client_id;
    dev.inject(fault(
        Route::Get,
        Some(1),
        FaultKind::StallMidBody { ms: 3000 },
    ));
    client
        .get_client(get_req(&id, None))
        .await
        .expect("the second attempt succeeds");
    assert_eq!(requests(&dev, Route::Get), 2);
}

#[tokio::test]
async fn http2_to_the_upstream_when_configured() {
    let dev = dev_upstream().await;
    let raw = RawConfig {
        upstream_http2: Some(true),
        ..fast()
    };
    let (_gw, mut client) = gateway(&dev, raw).await;
    // Prior-knowledge HTTP/2 only works if both ends speak it.
    let created = register(&mut client, "h2").await;
    client
        .get_client(get_req(&created.client_id, None))
        .await
        .expect("get over HTTP/2");
    assert_eq!(dev.stats().http2_requests, 2, "both calls went over HTTP/2");
}
