//! The observe layer: what a caller's call did to a client, told to whoever
//! keeps state about that client (managed clients' records), outermost on
//! the callers' path. A new secret a call on an existing client brought back
//! (a caller's own RotateClientSecret, or a read on a server that rotates on
//! read) is observed; so is a client the call deleted. It runs in the call's
//! own task, so a caller that left after sending still has what its call
//! did reach the records.
//!
//! Managed clients' own calls do not pass here: they keep their records
//! themselves (and hold the name an observer would wait for).

use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use tower::{Layer, Service, ServiceExt};

use super::{DcrFuture, DomainService};
use crate::dcr::{Client, DcrError, DcrRequest, DcrResponse};

/// Who is told what calls did to clients.
pub trait ClientObserver: Send + Sync + 'static {
    /// A call on client `client.client_id` in `namespace` brought back a new
    /// secret. Best effort: the caller has it in its answer.
    fn secret_issued<'a>(&'a self, namespace: &'a str, client: &'a Client) -> BoxFuture<'a, ()>;

    /// A call deleted `client_id` in `namespace` at the server.
    fn client_deleted<'a>(&'a self, namespace: &'a str, client_id: &'a str) -> BoxFuture<'a, ()>;
}

/// Adds [`Observe`] around a service.
#[derive(Clone)]
pub struct ObserveLayer {
    observer: Arc<dyn ClientObserver>,
}

impl ObserveLayer {
    /// Tells `observer` what calls did.
    pub fn new(observer: Arc<dyn ClientObserver>) -> Self {
        Self { observer }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            observer: self.observer.clone(),
        }
    }
}

/// The observe middleware; see the module documentation.
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    observer: Arc<dyn ClientObserver>,
}

impl<S: DomainService> Service<DcrRequest> for Observe<S> {
    type Response = DcrResponse;
    type Error = DcrError;
    type Future = DcrFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), DcrError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: DcrRequest) -> DcrFuture {
        let inner = self.inner.clone();
        let observer = self.observer.clone();
        // Only a call on an existing client tells anything about one; a
        // registration's client is new to everyone.
        let existing = req.target().map(|t| t.client_id.clone());
        let namespace = req.namespace.clone();
        Box::pin(async move {
            let result = inner.oneshot(req).await;
            match (&existing, &result) {
                (Some(_), Ok(DcrResponse::Client(client))) if client.client_secret.is_some() => {
                    observer.secret_issued(&namespace, client).await;
                }
                (Some(client_id), Ok(DcrResponse::Deleted)) => {
                    observer.client_deleted(&namespace, client_id).await;
                }
                _ => {}
            }
            result
        })
    }
}
