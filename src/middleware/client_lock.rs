//! The per-client lock layer: management calls on one client run one at a
//! time, so two rotations, or a rotation and a read, can never interleave and
//! strand a token (SharkAuth has no locking of its own). A lock is keyed by
//! (upstream, caller namespace, client id), the same key the token store
//! uses: each caller holds its own token for a client, so one caller's flood on
//! an id never queues another caller's calls. Calls on different clients never
//! wait on each other, and a lock is freed as soon as no call holds or waits
//! for it. RegisterClient has no client yet and is never locked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use tower::{Layer, Service, ServiceExt};

use super::{DcrFuture, DomainService};
use crate::dcr::{DcrError, DcrRequest, DcrResponse};
use crate::store::TokenKey;

type Locks = Arc<Mutex<HashMap<TokenKey, Arc<AsyncMutex<()>>>>>;

/// Adds [`ClientLock`] around a service. Clones share one lock table.
#[derive(Clone)]
pub struct ClientLockLayer {
    locks: Locks,
    upstream: Arc<str>,
}

impl ClientLockLayer {
    /// A layer with an empty lock table, for the server identified by
    /// `upstream` (its base URL, as the tokens layer names it).
    pub fn new(upstream: &str) -> Self {
        Self {
            locks: Locks::default(),
            upstream: upstream.trim_end_matches('/').into(),
        }
    }
}

impl<S> Layer<S> for ClientLockLayer {
    type Service = ClientLock<S>;

    fn layer(&self, inner: S) -> ClientLock<S> {
        ClientLock {
            inner,
            locks: self.locks.clone(),
            upstream: self.upstream.clone(),
        }
    }
}

/// The per-client lock middleware; see the module documentation.
#[derive(Clone)]
pub struct ClientLock<S> {
    inner: S,
    locks: Locks,
    upstream: Arc<str>,
}

fn table(locks: &Locks) -> std::sync::MutexGuard<'_, HashMap<TokenKey, Arc<AsyncMutex<()>>>> {
    // Every critical section is a single map operation; a poisoned table is intact.
    locks.lock().unwrap_or_else(|e| e.into_inner())
}

/// A held lock; on drop, releases it and removes the entry if nobody else holds
/// or waits for it. Clones of the entry are only made under the table lock, so
/// the count check cannot race.
struct Held {
    locks: Locks,
    key: TokenKey,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut table = table(&self.locks);
        if table
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            table.remove(&self.key);
        }
    }
}

async fn acquire(locks: Locks, key: TokenKey) -> Held {
    let mutex = table(&locks).entry(key.clone()).or_default().clone();
    // Constructed before the wait, so a cancelled wait still cleans up.
    let mut held = Held {
        locks,
        key,
        guard: None,
    };
    held.guard = Some(mutex.lock_owned().await);
    held
}

impl<S: DomainService> Service<DcrRequest> for ClientLock<S> {
    type Response = DcrResponse;
    type Error = DcrError;
    type Future = DcrFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), DcrError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: DcrRequest) -> DcrFuture {
        let inner = self.inner.clone();
        let locks = self.locks.clone();
        let key = req.target().map(|t| TokenKey {
            upstream: self.upstream.to_string(),
            namespace: req.namespace.clone(),
            client_id: t.client_id.clone(),
        });
        Box::pin(async move {
            let Some(key) = key else {
                return inner.oneshot(req).await;
            };
            let _held = acquire(locks, key).await;
            inner.oneshot(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(namespace: &str, client_id: &str) -> TokenKey {
        TokenKey {
            upstream: "http://127.0.0.1:9".into(),
            namespace: namespace.into(),
            client_id: client_id.into(),
        }
    }

    #[tokio::test]
    async fn entries_are_freed_when_idle_even_after_a_cancelled_wait() {
        let locks = Locks::default();
        let first = acquire(locks.clone(), key("n", "a")).await;
        let waiter = tokio::spawn(acquire(locks.clone(), key("n", "a")));
        tokio::task::yield_now().await;
        waiter.abort();
        let _ = waiter.await;
        let other = acquire(locks.clone(), key("n", "b")).await;
        assert_eq!(table(&locks).len(), 2);
        drop(first);
        drop(other);
        assert_eq!(table(&locks).len(), 0);
    }

    #[tokio::test]
    async fn another_namespace_never_waits_on_the_same_client_id() {
        let locks = Locks::default();
        let _flood = acquire(locks.clone(), key("mallory", "c1")).await;
        let owner = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            acquire(locks.clone(), key("owner", "c1")),
        )
        .await;
        assert!(
            owner.is_ok(),
            "the owner's call queued behind another caller's lock"
        );
        let same = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            acquire(locks.clone(), key("mallory", "c1")),
        )
        .await;
        assert!(
            same.is_err(),
            "one caller's calls on one client must serialise"
        );
    }
}
