//! The moment a call's request goes to the server, shared between the gRPC edge
//! and the transport, so custody can hold whatever the caller does.
//!
//! A call that may bring back a credential runs in its own task. Until the
//! transport opens the gate, the call is only waiting (for its client lock,
//! an upstream slot, a place among the sent exchanges): when the caller's deadline passes, the
//! edge closes the gate and drops the task, and nothing was sent, so nothing
//! is lost. Once the transport has opened the gate, the request may be on the
//! wire: the edge answers the caller but leaves the task running, detached,
//! until the exchange and the store write are done. Which of the two happens
//! is decided by one compare-and-swap, so a request is never sent after the
//! edge gave up on it, and a sent one is never dropped.
//!
//! Every opened gate holds a permit of [`SentExchanges`] until its task ends,
//! so sent credential-bearing exchanges (detached or not) are capped by
//! `--max-detached`, and shutdown can wait for all of them.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::DcrError;

/// Nothing sent yet; the edge may still close the gate.
const WAITING: u8 = 0;
/// The transport opened the gate: a request may be on the wire.
const SENT: u8 = 1;
/// The edge gave up before anything was sent; nothing will be.
const CLOSED: u8 = 2;

/// Room for credential-bearing exchanges whose request may be on the wire
/// (`--max-detached`): each holds a permit from the moment it is sent until
/// its answer is read and its credential stored, whether its caller waited or
/// left (a caller's EnsureClient holds one for its whole run). Shutdown waits
/// until every permit is back.
#[derive(Clone, Debug)]
pub struct SentExchanges {
    permits: Arc<Semaphore>,
    total: u32,
}

impl SentExchanges {
    /// Room for `max` exchanges at once.
    pub fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            total: u32::try_from(max).unwrap_or(u32::MAX),
        }
    }

    /// A place for one exchange now, or `None` when all are taken.
    pub fn try_enter(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }

    /// A place for one exchange, waiting for one to end.
    pub async fn enter(&self) -> Result<OwnedSemaphorePermit, DcrError> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| DcrError::Internal("the sent-exchange semaphore was closed"))
    }

    /// Completes once every exchange has ended (no place is taken).
    pub async fn all_done(&self) {
        let _ = self.permits.acquire_many(self.total).await;
    }
}

/// See the module documentation. Shared by `Arc` between the edge's wait and
/// the call's task; what it holds is released when both are done.
pub struct SendGate {
    state: AtomicU8,
    exchanges: SentExchanges,
    /// The exchange's place, taken before the first send and held until the
    /// gate is dropped; `Mutex` only so `open` can take `&self`.
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    /// Kept while the call runs detached (a metric guard, dropped with the gate).
    detached: Mutex<Option<Box<dyn Send>>>,
}

impl std::fmt::Debug for SendGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendGate")
            .field("state", &self.state.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

impl SendGate {
    /// A closed-to-nobody gate whose sends take a place in `exchanges`.
    pub fn new(exchanges: SentExchanges) -> Self {
        Self {
            state: AtomicU8::new(WAITING),
            exchanges,
            permit: Mutex::new(None),
            detached: Mutex::new(None),
        }
    }

    /// Called by the transport right before it sends: waits for a place in
    /// the sent exchanges (under the caller's deadline, since the edge drops the task when that
    /// passes), then opens the gate. Fails when the edge has already given up,
    /// so nothing is sent for a caller that is gone. Later attempts of the same
    /// call (retries) pass at once.
    pub async fn open(&self) -> Result<(), DcrError> {
        match self.state.load(Ordering::Acquire) {
            SENT => return Ok(()),
            CLOSED => return Err(DcrError::DeadlineExceeded),
            _ => {}
        }
        let permit = self.exchanges.enter().await?;
        *lock(&self.permit) = Some(permit);
        match self
            .state
            .compare_exchange(WAITING, SENT, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) | Err(SENT) => Ok(()),
            Err(_) => Err(DcrError::DeadlineExceeded),
        }
    }

    /// Called by the edge when its caller is gone (deadline passed, or the
    /// call cancelled). `true`: nothing was sent and nothing will be, so the
    /// task may be dropped. `false`: the request may be on the wire, so the
    /// task must run on; the guard `detach` makes is kept until it ends.
    pub fn give_up<G: Send + 'static>(&self, detach: impl FnOnce() -> G) -> bool {
        match self
            .state
            .compare_exchange(WAITING, CLOSED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) | Err(CLOSED) => true,
            Err(_) => {
                *lock(&self.detached) = Some(Box::new(detach()));
                false
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each critical section is one assignment; a poisoned value is intact.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_gate_given_up_before_sending_never_opens() {
        let gate = SendGate::new(SentExchanges::new(1));
        assert!(gate.give_up(|| ()));
        assert!(matches!(gate.open().await, Err(DcrError::DeadlineExceeded)));
    }

    #[tokio::test]
    async fn a_sent_gate_is_detached_and_holds_its_permit_until_dropped() {
        let exchanges = SentExchanges::new(1);
        let gate = Arc::new(SendGate::new(exchanges.clone()));
        gate.open().await.unwrap();
        gate.open().await.unwrap();
        assert!(exchanges.try_enter().is_none());
        let dropped = Arc::new(());
        assert!(!gate.give_up(|| dropped.clone()));
        assert_eq!(Arc::strong_count(&dropped), 2);
        drop(gate);
        assert!(exchanges.try_enter().is_some());
        assert_eq!(Arc::strong_count(&dropped), 1);
    }

    #[tokio::test]
    async fn sends_wait_for_a_place() {
        let exchanges = SentExchanges::new(1);
        let first = SendGate::new(exchanges.clone());
        first.open().await.unwrap();
        let second = SendGate::new(exchanges.clone());
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(20), second.open());
        assert!(waiting.await.is_err(), "a second send passed a full cap");
        drop(first);
        second.open().await.unwrap();
    }
}
