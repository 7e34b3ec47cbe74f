//! The retry layer on paused time: policy, budget, deadline, Retry-After,
//! throttling, and the delete-after-lost-answer rule.

use std::time::Duration;

use tower::{Layer, ServiceExt};

use super::{client, get, http, scripted, target};
use crate::dcr::{ClientMetadata, DcrCall, DcrError, DcrRequest, DcrResponse, UpstreamFailure};
use crate::middleware::retry::{RetryConfig, RetryLayer};
use crate::telemetry::Metrics;

fn config() -> RetryConfig {
    RetryConfig {
        max_attempts: 4,
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_secs(2),
        retry_after_max: Duration::from_secs(5),
        budget_percent: 20,
        budget_min_per_second: 10,
    }
}

fn unavailable_after(secs: u64) -> DcrError {
    DcrError::Upstream(UpstreamFailure {
        retry_after: Some(Duration::from_secs(secs)),
        ..match http(503, false) {
            DcrError::Upstream(f) => f,
            _ => unreachable!(),
        }
    })
}

#[tokio::test(start_paused = true)]
async fn idempotent_calls_retry_through_transient_failures() {
    let (inner, seen) = scripted(vec![
        || Err(http(503, false)),
        || Err(http(502, false)),
        || Ok(client("c1", None)),
    ]);
    let layer = RetryLayer::new(config(), Metrics::local());
    layer
        .layer(inner)
        .oneshot(get("c1", Some("rat")))
        .await
        .unwrap();
    let attempts: Vec<u32> = seen.lock().unwrap().iter().map(|r| r.attempt).collect();
    assert_eq!(attempts, [0, 1, 2]);
}

#[tokio::test(start_paused = true)]
async fn a_register_is_retried_only_when_nothing_left() {
    let layer = RetryLayer::new(config(), Metrics::local());
    let register = || {
        DcrRequest::new(DcrCall::Register {
            metadata: ClientMetadata::default(),
            initial_access_token: None,
        })
    };
    let (inner, seen) = scripted(vec![|| Err(http(503, false))]);
    layer.layer(inner).oneshot(register()).await.unwrap_err();
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "a sent register was repeated"
    );
    let (inner, seen) = scripted(vec![|| Err(DcrError::Connect("refused".into())), || {
        Ok(client("c1", None))
    }]);
    layer.layer(inner).oneshot(register()).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_empty_budget_stops_retries() {
    let none = RetryConfig {
        budget_percent: 0,
        budget_min_per_second: 0,
        ..config()
    };
    let (inner, seen) = scripted(vec![|| Err(http(503, false)), || Ok(client("c1", None))]);
    let err = RetryLayer::new(none, Metrics::local())
        .layer(inner)
        .oneshot(get("c1", Some("rat")))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DcrError::RetryStopped {
                reason: "retry budget exhausted",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn no_retry_waits_past_the_deadline() {
    let (inner, seen) = scripted(vec![|| Err(unavailable_after(3)), || {
        Ok(client("c1", None))
    }]);
    let mut req = get("c1", Some("rat"));
    req.deadline = Some(std::time::Instant::now() + Duration::from_secs(1));
    let err = RetryLayer::new(config(), Metrics::local())
        .layer(inner)
        .oneshot(req)
        .await
        .unwrap_err();
    let DcrError::RetryStopped { retry_after, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        *retry_after,
        Some(Duration::from_secs(3)),
        "RetryInfo carries the wait"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_up_to_its_cap() {
    let (inner, _) = scripted(vec![|| Err(unavailable_after(60)), || {
        Ok(client("c1", None))
    }]);
    let start = tokio::time::Instant::now();
    RetryLayer::new(config(), Metrics::local())
        .layer(inner)
        .oneshot(get("c1", Some("rat")))
        .await
        .unwrap();
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(5), "waited {waited:?}");
    assert!(
        waited < Duration::from_secs(6),
        "Retry-After was not cut to 5 s: {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_upstream_throttles_retries() {
    // A budget that never runs out, so only the throttle can stop retries.
    let generous = RetryConfig {
        budget_percent: 1000,
        budget_min_per_second: 100_000,
        ..config()
    };
    let (inner, seen) = scripted(vec![|| Err(http(503, false))]);
    let layer = RetryLayer::new(generous, Metrics::local());
    for _ in 0..200 {
        layer
            .layer(inner.clone())
            .oneshot(get("c1", Some("rat")))
            .await
            .unwrap_err();
    }
    let attempts = seen.lock().unwrap().len();
    assert!(attempts <= 320, "{attempts} attempts for 200 calls");
}

#[tokio::test(start_paused = true)]
async fn a_delete_whose_answer_was_lost_and_is_then_gone_succeeded() {
    let (inner, _) = scripted(vec![
        || Err(DcrError::Timeout(Duration::from_secs(10))),
        || Err(http(404, false)),
    ]);
    let delete = DcrRequest::new(DcrCall::Delete(target("c1", Some("rat"))));
    let answer = RetryLayer::new(config(), Metrics::local())
        .layer(inner)
        .oneshot(delete)
        .await
        .unwrap();
    assert!(matches!(answer, DcrResponse::Deleted));
    // Without a lost answer first, a 404 is just a 404.
    let (inner, _) = scripted(vec![|| Err(http(404, false))]);
    let delete = DcrRequest::new(DcrCall::Delete(target("c1", Some("rat"))));
    let err = RetryLayer::new(config(), Metrics::local())
        .layer(inner)
        .oneshot(delete)
        .await;
    assert!(err.is_err());
}
