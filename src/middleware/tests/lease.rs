//! The lease layer on paused time, over leases that play a shared store's:
//! the call carries its fence, waits for a lease held elsewhere, gives up at
//! its deadline, renews while it runs, and gives the lease back when done or
//! cancelled.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tower::{Layer, ServiceExt};

use super::{gated, get, scripted, started};
use crate::dcr::{ClientMetadata, DcrCall, DcrError, DcrRequest, DcrResponse, StoreError};
use crate::middleware::lease::LeaseLayer;
use crate::store::{LeaseKey, Leases, TokenKey};

const UPSTREAM: &str = "https://as.example";
const TTL: Duration = Duration::from_secs(3);

/// The leases a shared store has: one holder per key, fences that only
/// grow, and counts of every lease call.
#[derive(Default)]
struct FakeLeases {
    holders: Mutex<HashMap<LeaseKey, u64>>,
    fences: AtomicU64,
    renewals: AtomicUsize,
    releases: AtomicUsize,
}

impl FakeLeases {
    fn holder(&self, client_id: &str) -> Option<u64> {
        self.holders.lock().unwrap().get(&key(client_id)).copied()
    }
}

#[async_trait]
impl Leases for FakeLeases {
    async fn take_lease(&self, key: &LeaseKey, _ttl: Duration) -> Result<Option<u64>, StoreError> {
        let mut holders = self.holders.lock().unwrap();
        if holders.contains_key(key) {
            return Ok(None);
        }
        let fence = self.fences.fetch_add(1, Ordering::AcqRel) + 1;
        holders.insert(key.clone(), fence);
        Ok(Some(fence))
    }

    async fn renew_lease(
        &self,
        key: &LeaseKey,
        fence: u64,
        _: Duration,
    ) -> Result<bool, StoreError> {
        self.renewals.fetch_add(1, Ordering::AcqRel);
        Ok(self.holders.lock().unwrap().get(key) == Some(&fence))
    }

    async fn release_lease(&self, key: &LeaseKey, fence: u64) -> Result<(), StoreError> {
        self.releases.fetch_add(1, Ordering::AcqRel);
        let mut holders = self.holders.lock().unwrap();
        if holders.get(key) == Some(&fence) {
            holders.remove(key);
        }
        Ok(())
    }
}

fn key(client_id: &str) -> LeaseKey {
    LeaseKey::Client(TokenKey {
        upstream: UPSTREAM.into(),
        namespace: crate::dcr::DEFAULT_NAMESPACE.into(),
        client_id: client_id.into(),
    })
}

fn layer(store: &Arc<FakeLeases>) -> LeaseLayer {
    LeaseLayer::new(store.clone(), UPSTREAM, TTL)
}

#[tokio::test(start_paused = true)]
async fn a_call_carries_its_fence_and_gives_the_lease_back() {
    let store = Arc::new(FakeLeases::default());
    let (inner, seen) = scripted(vec![|| Ok(DcrResponse::Deleted)]);
    layer(&store)
        .layer(inner)
        .oneshot(get("c1", None))
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap()[0].fence, Some(1), "the call's fence");
    assert_eq!(store.holder("c1"), None, "the lease was given back");
    assert_eq!(store.releases.load(Ordering::Acquire), 1);
}

#[tokio::test(start_paused = true)]
async fn a_lease_held_by_another_replica_is_waited_for() {
    let store = Arc::new(FakeLeases::default());
    let elsewhere = store.take_lease(&key("c1"), TTL).await.unwrap().unwrap();
    let (inner, seen) = scripted(vec![|| Ok(DcrResponse::Deleted)]);
    let call = started(layer(&store).layer(inner), get("c1", None)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(seen.lock().unwrap().is_empty(), "ran without the lease");

    store.release_lease(&key("c1"), elsewhere).await.unwrap();
    call.await.unwrap().unwrap();
    assert_eq!(
        seen.lock().unwrap()[0].fence,
        Some(elsewhere + 1),
        "a newer fence than the previous holder's"
    );
}

#[tokio::test(start_paused = true)]
async fn the_deadline_ends_the_wait_and_nothing_is_sent() {
    let store = Arc::new(FakeLeases::default());
    store.take_lease(&key("c1"), TTL).await.unwrap().unwrap();
    let (inner, seen) = scripted(vec![|| Ok(DcrResponse::Deleted)]);
    let mut req = get("c1", None);
    req.deadline = Some(Instant::now() + Duration::from_millis(1));
    let err = layer(&store).layer(inner).oneshot(req).await.unwrap_err();
    assert!(matches!(err, DcrError::DeadlineExceeded), "{err:?}");
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_long_call_renews_its_lease_every_third_of_the_ttl() {
    let store = Arc::new(FakeLeases::default());
    let (inner, release) = gated();
    let call = started(layer(&store).layer(inner), get("c1", None)).await;
    tokio::time::sleep(TTL * 3 + Duration::from_millis(10)).await;
    assert!(
        store.renewals.load(Ordering::Acquire) >= 8,
        "renewed {} times in three TTLs",
        store.renewals.load(Ordering::Acquire)
    );
    assert_eq!(store.holder("c1"), Some(1), "still held while it runs");
    release.notify_one();
    call.await.unwrap().unwrap();
    assert_eq!(store.holder("c1"), None);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_call_gives_its_lease_back() {
    let store = Arc::new(FakeLeases::default());
    let (inner, _release) = gated();
    let call = started(layer(&store).layer(inner), get("c1", None)).await;
    assert_eq!(store.holder("c1"), Some(1));
    call.abort();
    let _ = call.await;
    // The release runs in a task of its own (a drop cannot wait).
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(store.holder("c1"), None, "the lease outlived its call");
}

#[tokio::test(start_paused = true)]
async fn a_registration_names_no_client_and_takes_no_lease() {
    let store = Arc::new(FakeLeases::default());
    let (inner, seen) = scripted(vec![|| Ok(DcrResponse::Deleted)]);
    let register = DcrRequest::new(DcrCall::Register {
        metadata: ClientMetadata::default(),
        initial_access_token: None,
    });
    layer(&store).layer(inner).oneshot(register).await.unwrap();
    assert_eq!(seen.lock().unwrap()[0].fence, None);
    assert_eq!(store.fences.load(Ordering::Acquire), 0, "a lease was taken");
}
