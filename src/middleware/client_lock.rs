//! The per-client lock layer: management calls on one `client_id` run one at a
//! time, so two rotations, or a rotation and a read, can never interleave and
//! strand a token (SharkAuth has no locking of its own). Calls on different
//! clients never wait on each other, and a lock is freed as soon as no call
//! holds or waits for it. RegisterClient has no client yet and is never locked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use tower::{Layer, Service, ServiceExt};

use super::{DcrFuture, DomainService};
use crate::dcr::{DcrError, DcrRequest, DcrResponse};

type Locks = Arc<Mutex<HashMap<String, Arc<AsyncMutex<()>>>>>;

/// Adds [`ClientLock`] around a service. Clones share one lock table.
#[derive(Clone, Default)]
pub struct ClientLockLayer {
    locks: Locks,
}

impl ClientLockLayer {
    /// A layer with an empty lock table.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many clients currently have a lock entry (held or awaited).
    pub fn active(&self) -> usize {
        table(&self.locks).len()
    }
}

impl<S> Layer<S> for ClientLockLayer {
    type Service = ClientLock<S>;

    fn layer(&self, inner: S) -> ClientLock<S> {
        ClientLock {
            inner,
            locks: self.locks.clone(),
        }
    }
}

/// The per-client lock middleware; see the module documentation.
#[derive(Clone)]
pub struct ClientLock<S> {
    inner: S,
    locks: Locks,
}

fn table(locks: &Locks) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AsyncMutex<()>>>> {
    // Every critical section is a single map operation; a poisoned table is intact.
    locks.lock().unwrap_or_else(|e| e.into_inner())
}

/// A held lock; on drop, releases it and removes the entry if nobody else holds
/// or waits for it. Clones of the entry are only made under the table lock, so
/// the count check cannot race.
struct Held {
    locks: Locks,
    client_id: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut table = table(&self.locks);
        if table
            .get(&self.client_id)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            table.remove(&self.client_id);
        }
    }
}

async fn acquire(locks: Locks, client_id: String) -> Held {
    let mutex = table(&locks).entry(client_id.clone()).or_default().clone();
    // Constructed before the wait, so a cancelled wait still cleans up.
    let mut held = Held {
        locks,
        client_id,
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
        Box::pin(async move {
            let Some(client_id) = req.target().map(|t| t.client_id.clone()) else {
                return inner.oneshot(req).await;
            };
            let _held = acquire(locks, client_id).await;
            inner.oneshot(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_are_freed_when_idle_even_after_a_cancelled_wait() {
        let locks = Locks::default();
        let first = acquire(locks.clone(), "a".into()).await;
        let waiter = tokio::spawn(acquire(locks.clone(), "a".into()));
        tokio::task::yield_now().await;
        waiter.abort();
        let _ = waiter.await;
        let other = acquire(locks.clone(), "b".into()).await;
        assert_eq!(table(&locks).len(), 2);
        drop(first);
        drop(other);
        assert_eq!(table(&locks).len(), 0);
    }
}
