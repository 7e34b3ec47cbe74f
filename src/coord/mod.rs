//! Coordination of the work on one client or one managed name: keyed locks
//! in this process, and leases with fencing numbers across replicas on a
//! shared store. Below both the middleware (calls on a client) and managed
//! clients (operations on a name), which both stand on it.

mod keyed_lock;
mod lease;

pub use keyed_lock::{KeyedGuard, KeyedLocks};
pub use lease::LeaseHold;
