//! The per-client lock layer: a call that can change a client or its
//! credentials has the client to itself, so two rotations, or a rotation and
//! a read, can never interleave and strand a token (SharkAuth has no locking
//! of its own). Calls that change nothing and bring back no credential (reads,
//! on a server whose reads do not rotate: the operation table's
//! `may_share_client`) share the client with each other. A lock is keyed by
//! (upstream, caller namespace, client id), the same key the token store
//! uses: each caller holds its own token for a client, so one caller's flood on
//! an id never queues another caller's calls. Calls on different clients never
//! wait on each other, and a lock is freed as soon as no call holds or waits
//! for it. RegisterClient has no client yet and is never locked.

use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Layer, Service, ServiceExt};

use super::{DcrFuture, DomainService};
use crate::coord::KeyedLocks;
use crate::dcr::{Capabilities, DcrError, DcrRequest, DcrResponse};
use crate::store::TokenKey;

/// Adds [`ClientLock`] around a service. Clones share one lock table.
#[derive(Clone)]
pub struct ClientLockLayer {
    locks: KeyedLocks<TokenKey>,
    upstream: Arc<str>,
    server: Capabilities,
}

impl ClientLockLayer {
    /// A layer with an empty lock table, for the server identified by
    /// `upstream` (its base URL, as the tokens layer names it), which can do
    /// `server` (whose reads, if they may rotate a credential, have the
    /// client to themselves too).
    pub fn new(upstream: &str, server: Capabilities) -> Self {
        Self {
            locks: KeyedLocks::default(),
            upstream: upstream.trim_end_matches('/').into(),
            server,
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
            server: self.server,
        }
    }
}

/// The per-client lock middleware; see the module documentation.
#[derive(Clone)]
pub struct ClientLock<S> {
    inner: S,
    locks: KeyedLocks<TokenKey>,
    upstream: Arc<str>,
    server: Capabilities,
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
        let shared = req.operation().may_share_client(&self.server);
        let key = req.target().map(|t| TokenKey {
            upstream: self.upstream.to_string(),
            namespace: req.namespace.clone(),
            client_id: t.client_id.clone(),
        });
        Box::pin(async move {
            let Some(key) = key else {
                return inner.oneshot(req).await;
            };
            let _held = match shared {
                true => locks.acquire_shared(key).await,
                false => locks.acquire(key).await,
            };
            inner.oneshot(req).await
        })
    }
}
