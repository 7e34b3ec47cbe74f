//! Tower layers over the domain service, one file or folder per layer.
//!
//! The stack, outermost first: on the callers' path only, [`observe`] tells
//! managed clients what a call did to a client; then [`client_lock`]
//! serialises calls per client in this process, and
//! [`lease`] across replicas on a shared store; [`retry`] retries what is safe
//! to retry; [`masked_update`] turns a partial update into read, merge, write
//! (so a retry repeats the whole of it); [`tokens`] supplies and learns
//! registration access tokens; [`shed`] bounds upstream concurrency; then the
//! HTTP transport (`crate::upstream`), whose per-attempt timeout is the
//! `--upstream-timeout`. The caller's deadline bounds the whole call at the
//! gRPC edge, and the retry layer never waits past it.

pub mod client_lock;
pub mod lease;
pub mod masked_update;
pub mod observe;
pub mod retry;
pub mod shed;
pub mod tokens;

#[cfg(test)]
mod tests;

use futures_util::future::BoxFuture;
use tower::Service;

use crate::dcr::{DcrError, DcrRequest, DcrResponse};

/// The domain stack: every middleware layer over the HTTP transport, boxed so
/// the gRPC edge and managed clients do not depend on which layers are
/// configured.
pub type GatewayService = tower::util::BoxCloneSyncService<DcrRequest, DcrResponse, DcrError>;

/// The future every domain layer returns.
pub type DcrFuture = BoxFuture<'static, Result<DcrResponse, DcrError>>;

/// What every layer wraps: a cloneable domain service whose futures may move
/// between threads. One bound, instead of the same `where` clause per layer.
pub trait DomainService:
    Service<DcrRequest, Response = DcrResponse, Error = DcrError, Future: Send> + Clone + Send + 'static
{
}

impl<S> DomainService for S where
    S: Service<DcrRequest, Response = DcrResponse, Error = DcrError, Future: Send>
        + Clone
        + Send
        + 'static
{
}
