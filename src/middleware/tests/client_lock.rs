//! The client lock: one call at a time per (upstream, namespace, client),
//! and a cancelled waiter frees its place.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tower::{Layer, ServiceExt};

use super::{get, started};
use crate::dcr::{DcrError, DcrRequest, DcrResponse};
use crate::middleware::client_lock::ClientLockLayer;

/// An inner service that records the most calls it ran at once, each taking
/// 100 ms of (paused) time.
fn counting() -> (super::Inner, Arc<AtomicUsize>) {
    let now = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let seen = most.clone();
    let service = tower::service_fn(move |_req: DcrRequest| {
        let (now, most) = (now.clone(), most.clone());
        async move {
            let running = now.fetch_add(1, Ordering::AcqRel) + 1;
            most.fetch_max(running, Ordering::AcqRel);
            tokio::time::sleep(Duration::from_millis(100)).await;
            now.fetch_sub(1, Ordering::AcqRel);
            Ok::<_, DcrError>(DcrResponse::Deleted)
        }
    });
    (tower::util::BoxCloneSyncService::new(service), seen)
}

#[tokio::test(start_paused = true)]
async fn calls_on_one_client_run_one_at_a_time_and_others_in_parallel() {
    let layer = ClientLockLayer::new("http://127.0.0.1:9");
    let (inner, most) = counting();
    let same: Vec<_> = (0..5)
        .map(|_| tokio::spawn(layer.layer(inner.clone()).oneshot(get("c1", None))))
        .collect();
    for call in same {
        call.await.unwrap().unwrap();
    }
    assert_eq!(most.load(Ordering::Acquire), 1);
    let (inner, most) = counting();
    let different: Vec<_> = (0..5)
        .map(|i| {
            tokio::spawn(
                layer
                    .layer(inner.clone())
                    .oneshot(get(&format!("c{i}"), None)),
            )
        })
        .collect();
    for call in different {
        call.await.unwrap().unwrap();
    }
    assert_eq!(most.load(Ordering::Acquire), 5);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_does_not_hold_the_lock() {
    let layer = ClientLockLayer::new("http://127.0.0.1:9");
    let (inner, _) = counting();
    let first = started(layer.layer(inner.clone()), get("c1", None)).await;
    let waiter = started(layer.layer(inner.clone()), get("c1", None)).await;
    waiter.abort();
    let _ = waiter.await;
    first.await.unwrap().unwrap();
    let start = tokio::time::Instant::now();
    layer.layer(inner).oneshot(get("c1", None)).await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(100),
        "the next call waited for nobody"
    );
}
