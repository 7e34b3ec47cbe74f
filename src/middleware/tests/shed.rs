//! The load-shedding layer on paused time: full queue, queue timeout, and a
//! cancelled waiter giving its place back.

use std::time::Duration;

use tower::{Layer, ServiceExt};

use super::{gated, get, started};
use crate::dcr::DcrError;
use crate::middleware::shed::{ShedConfig, ShedLayer};
use crate::telemetry::Metrics;

fn layer(max_queue: usize) -> ShedLayer {
    ShedLayer::new(
        ShedConfig {
            max_in_flight: 1,
            max_queue,
            queue_timeout: Duration::from_secs(1),
        },
        Metrics::local(),
    )
}

#[tokio::test(start_paused = true)]
async fn beyond_the_slots_and_the_queue_calls_are_refused_at_once() {
    let (inner, _release) = gated();
    let layer = layer(0);
    let holder = started(layer.layer(inner.clone()), get("c1", None)).await;
    let err = layer
        .layer(inner)
        .oneshot(get("c2", None))
        .await
        .unwrap_err();
    assert!(matches!(err, DcrError::Overloaded(1)), "{err}");
    holder.abort();
}

#[tokio::test(start_paused = true)]
async fn a_queued_call_waits_at_most_the_queue_timeout() {
    let (inner, _release) = gated();
    let layer = layer(1);
    let holder = started(layer.layer(inner.clone()), get("c1", None)).await;
    let start = tokio::time::Instant::now();
    let err = layer
        .layer(inner)
        .oneshot(get("c2", None))
        .await
        .unwrap_err();
    assert!(matches!(err, DcrError::Overloaded(1)), "{err}");
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    holder.abort();
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_gives_its_queue_place_back() {
    let (inner, release) = gated();
    let layer = layer(1);
    let holder = started(layer.layer(inner.clone()), get("c1", None)).await;
    let waiter = started(layer.layer(inner.clone()), get("c2", None)).await;
    waiter.abort();
    let _ = waiter.await;
    // The place is free again: this one queues instead of being refused, and
    // runs once the holder finishes.
    let queued = started(layer.layer(inner), get("c3", None)).await;
    release.notify_one();
    holder.await.unwrap().unwrap();
    release.notify_one();
    queued
        .await
        .unwrap()
        .expect("the freed queue place was usable");
}
