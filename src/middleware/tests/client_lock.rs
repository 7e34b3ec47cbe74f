//! The client lock: one call at a time per (upstream, namespace, client)
//! for anything that can change it, reads shared where they cannot rotate,
//! and a cancelled waiter frees its place.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tower::{Layer, ServiceExt};

use super::{get, started, target};
use crate::dcr::{Capabilities, LossProof, SecretRotation};
use crate::dcr::{DcrCall, DcrError, DcrRequest, DcrResponse, Operation};
use crate::middleware::client_lock::ClientLockLayer;

/// A server whose reads may rotate a credential (RFC 7592), and one whose
/// reads never do (SharkAuth).
const READS_ROTATE: Capabilities = Capabilities {
    secret_rotation: SecretRotation::Update,
    reads_may_rotate: true,
    secret_grace: None,
    loss_proof: LossProof::GoneStatus,
    keeps_jwks: true,
};
const READS_DO_NOT_ROTATE: Capabilities = Capabilities {
    reads_may_rotate: false,
    ..READS_ROTATE
};

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
    let layer = ClientLockLayer::new("http://127.0.0.1:9", READS_ROTATE);
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
    let layer = ClientLockLayer::new("http://127.0.0.1:9", READS_ROTATE);
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

/// Each call's operation, and its (paused) start and end.
type Timeline = Arc<std::sync::Mutex<Vec<(Operation, Duration, Duration)>>>;

/// An inner service that notes each call on a [`Timeline`], each taking 100 ms.
fn timed() -> (super::Inner, Timeline) {
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = log.clone();
    let origin = tokio::time::Instant::now();
    let service = tower::service_fn(move |req: DcrRequest| {
        let log = log.clone();
        async move {
            let start = origin.elapsed();
            tokio::time::sleep(Duration::from_millis(100)).await;
            log.lock()
                .unwrap()
                .push((req.operation(), start, origin.elapsed()));
            Ok::<_, DcrError>(DcrResponse::Deleted)
        }
    });
    (tower::util::BoxCloneSyncService::new(service), seen)
}

#[tokio::test(start_paused = true)]
async fn reads_that_cannot_rotate_share_a_client_and_a_rotation_has_it_alone() {
    let layer = ClientLockLayer::new("http://127.0.0.1:9", READS_DO_NOT_ROTATE);
    let (inner, log) = timed();
    let rotate = || DcrRequest::new(DcrCall::RotateSecret(target("c1", None)));
    let mut calls = Vec::new();
    for _ in 0..3 {
        calls.push(started(layer.layer(inner.clone()), get("c1", None)).await);
    }
    calls.push(started(layer.layer(inner.clone()), rotate()).await);
    for _ in 0..3 {
        calls.push(started(layer.layer(inner.clone()), get("c1", None)).await);
    }
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let log = log.lock().unwrap().clone();
    let reads: Vec<_> = log
        .iter()
        .filter(|(op, ..)| *op == Operation::Get)
        .collect();
    assert_eq!(reads.len(), 6);
    let first_three_together = reads.iter().filter(|(_, start, _)| start.is_zero()).count();
    assert_eq!(
        first_three_together, 3,
        "the reads shared the client: {log:?}"
    );
    let (_, r_start, r_end) = log
        .iter()
        .find(|(op, ..)| *op == Operation::RotateSecret)
        .copied()
        .unwrap();
    for (op, start, end) in log.iter().filter(|(op, ..)| *op != Operation::RotateSecret) {
        assert!(
            *end <= r_start || *start >= r_end,
            "{op:?} ran beside the rotation: {log:?}"
        );
    }

    // Where reads may rotate, they have the client alone too.
    let layer = ClientLockLayer::new("http://127.0.0.1:9", READS_ROTATE);
    let (inner, most) = counting();
    let reads: Vec<_> = (0..3)
        .map(|_| tokio::spawn(layer.layer(inner.clone()).oneshot(get("c1", None))))
        .collect();
    for call in reads {
        call.await.unwrap().unwrap();
    }
    assert_eq!(most.load(Ordering::Acquire), 1);
}
