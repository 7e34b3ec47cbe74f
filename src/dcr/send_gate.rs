//! The moment a call's request goes to the server, shared between the gRPC edge
//! and the transport, so custody can hold whatever the caller does.
//!
//! A call that may bring back a credential runs in its own task. Until the
//! transport opens the gate, the call is only waiting (for its client lock,
//! an upstream slot, a tail permit): when the caller's deadline passes, the
//! edge closes the gate and drops the task, and nothing was sent, so nothing
//! is lost. Once the transport has opened the gate, the request may be on the
//! wire: the edge answers the caller but leaves the task running, detached,
//! until the exchange and the store write are done. Which of the two happens
//! is decided by one compare-and-swap, so a request is never sent after the
//! edge gave up on it, and a sent one is never dropped.
//!
//! Every opened gate holds a permit of the tail semaphore until its task ends,
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

/// See the module documentation. Shared by `Arc` between the edge's wait and
/// the call's task; what it holds is released when both are done.
pub struct SendGate {
    state: AtomicU8,
    tails: Arc<Semaphore>,
    /// The tail permit, taken before the first send and held until the gate
    /// is dropped; `Mutex` only so `open` can take `&self`.
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
    /// A closed-to-nobody gate whose sends count against `tails`.
    pub fn new(tails: Arc<Semaphore>) -> Self {
        Self {
            state: AtomicU8::new(WAITING),
            tails,
            permit: Mutex::new(None),
            detached: Mutex::new(None),
        }
    }

    /// Called by the transport right before it sends: waits for a tail permit
    /// (under the caller's deadline, since the edge drops the task when that
    /// passes), then opens the gate. Fails when the edge has already given up,
    /// so nothing is sent for a caller that is gone. Later attempts of the same
    /// call (retries) pass at once.
    pub async fn open(&self) -> Result<(), DcrError> {
        match self.state.load(Ordering::Acquire) {
            SENT => return Ok(()),
            CLOSED => return Err(DcrError::DeadlineExceeded),
            _ => {}
        }
        let permit = self
            .tails
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| DcrError::Internal("the tail semaphore was closed"))?;
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
        let tails = Arc::new(Semaphore::new(1));
        let gate = SendGate::new(tails.clone());
        assert!(gate.give_up(|| ()));
        assert!(matches!(gate.open().await, Err(DcrError::DeadlineExceeded)));
    }

    #[tokio::test]
    async fn a_sent_gate_is_detached_and_holds_its_permit_until_dropped() {
        let tails = Arc::new(Semaphore::new(1));
        let gate = Arc::new(SendGate::new(tails.clone()));
        gate.open().await.unwrap();
        gate.open().await.unwrap();
        assert_eq!(tails.available_permits(), 0);
        let dropped = Arc::new(());
        assert!(!gate.give_up(|| dropped.clone()));
        assert_eq!(Arc::strong_count(&dropped), 2);
        drop(gate);
        assert_eq!(tails.available_permits(), 1);
        assert_eq!(Arc::strong_count(&dropped), 1);
    }

    #[tokio::test]
    async fn sends_wait_for_a_tail_permit() {
        let tails = Arc::new(Semaphore::new(1));
        let first = SendGate::new(tails.clone());
        first.open().await.unwrap();
        let second = SendGate::new(tails.clone());
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(20), second.open());
        assert!(
            waiting.await.is_err(),
            "a second send passed a full tail cap"
        );
        drop(first);
        second.open().await.unwrap();
    }
}
