//! The masked-update layer: an update with a non-empty mask becomes a read, a
//! merge of the masked fields, and a full-replacement write, so a caller can
//! change one field without wiping the others (RFC 7592 PUT replaces everything).

use std::task::{Context, Poll};

use tower::{Layer, Service, ServiceExt};

use super::{DcrFuture, DomainService};
use crate::dcr::{DcrCall, DcrError, DcrRequest, DcrResponse, mask};

/// Adds [`MaskedUpdate`] around a service.
#[derive(Clone, Copy, Debug, Default)]
pub struct MaskedUpdateLayer;

impl<S> Layer<S> for MaskedUpdateLayer {
    type Service = MaskedUpdate<S>;

    fn layer(&self, inner: S) -> MaskedUpdate<S> {
        MaskedUpdate { inner }
    }
}

/// The masked-update middleware; see the module documentation.
#[derive(Clone, Debug)]
pub struct MaskedUpdate<S> {
    inner: S,
}

impl<S: DomainService> Service<DcrRequest> for MaskedUpdate<S> {
    type Response = DcrResponse;
    type Error = DcrError;
    type Future = DcrFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), DcrError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: DcrRequest) -> DcrFuture {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (target, metadata, mask) = match &req.call {
            DcrCall::Update {
                target,
                metadata,
                mask,
            } if !mask.is_empty() => (target.clone(), metadata.clone(), mask.clone()),
            _ => return Box::pin(inner.call(req)),
        };
        Box::pin(async move {
            let current = inner
                .call(req.with_call(DcrCall::Get(target.clone())))
                .await?;
            let DcrResponse::Client(current) = current else {
                return Err(DcrError::MalformedResponse(
                    "the read before a masked update returned no client".into(),
                ));
            };
            let mut merged = current.metadata;
            mask::apply_mask(&mut merged, &metadata, &mask);
            let write = req.with_call(DcrCall::Update {
                target,
                metadata: merged,
                mask: Vec::new(),
            });
            inner.ready().await?.call(write).await
        })
    }
}
