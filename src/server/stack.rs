//! The domain stack and the callers' path over it, built once from the
//! config and the opened store.

use std::sync::Arc;

use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceBuilder};

use crate::config::Config;
use crate::managed::Managed;
use crate::middleware::GatewayService;
use crate::middleware::client_lock::ClientLockLayer;
use crate::middleware::lease::LeaseLayer;
use crate::middleware::masked_update::MaskedUpdateLayer;
use crate::middleware::observe::ObserveLayer;
use crate::middleware::retry::RetryLayer;
use crate::middleware::shed::ShedLayer;
use crate::middleware::tokens::TokensLayer;
use crate::store::Store;
use crate::telemetry::Metrics;
use crate::upstream::HttpUpstream;

/// Slack added to the worst-case call for a lease's TTL: the store writes
/// and the renewal's own round trip.
const LEASE_SLACK: std::time::Duration = std::time::Duration::from_secs(5);

/// The domain stack, outermost first: per-client lock, the cross-replica
/// lease (on a shared store), retry, masked update, tokens, load shedding,
/// then the HTTP transport.
pub(super) fn build_stack(
    upstream: HttpUpstream,
    store: &Store,
    upstream_id: &str,
    config: &Config,
    metrics: &Arc<Metrics>,
) -> GatewayService {
    // Leases only on a store that has them: a shared one.
    let lease = store
        .leases
        .clone()
        .map(|leases| LeaseLayer::new(leases, upstream_id, lease_ttl(config)));
    let stack = ServiceBuilder::new()
        .layer(ClientLockLayer::new(
            upstream_id,
            config.profile.capabilities(),
        ))
        .option_layer(lease)
        .layer(RetryLayer::new(config.retry.clone(), metrics.clone()))
        .layer(MaskedUpdateLayer)
        .layer(TokensLayer::new(
            store.tokens.clone(),
            upstream_id,
            metrics.clone(),
        ))
        .layer(ShedLayer::new(config.shed.clone(), metrics.clone()))
        .service(upstream);
    BoxCloneSyncService::new(stack)
}

/// The callers' path: `stack` under the observe layer, which tells managed
/// clients what a caller's call did to a client (managed clients' own calls
/// go through `stack` alone).
pub(super) fn callers_stack(stack: GatewayService, managed: &Managed) -> GatewayService {
    let observe = ObserveLayer::new(Arc::new(managed.clone()));
    BoxCloneSyncService::new(observe.layer(stack))
}

/// A lease's TTL: above the worst-case call (every attempt timing out after
/// the longest backoff, a wait for a slot, a masked update's read and write),
/// so it only expires when its holder is gone, not while it works.
pub(super) fn lease_ttl(config: &Config) -> std::time::Duration {
    let attempt = config.http.request_timeout + config.retry.backoff_max;
    (attempt * config.retry.max_attempts) * 2 + config.shed.queue_timeout + LEASE_SLACK
}
