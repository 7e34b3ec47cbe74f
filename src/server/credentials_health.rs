//! The sidecar's readiness, as gRPC health service [`CREDENTIALS_HEALTH`]:
//! SERVING while every declared client's credentials file can be delivered
//! and the token store can be reached; NOT_SERVING while a file cannot be
//! delivered (the folder gone, a full disk, a folder in a file's place),
//! while no server of a store across the network answers, and once
//! shutdown starts. A pod's readiness probe points at it, so a sidecar that
//! cannot do its work says so where an operator looks; the startup and
//! liveness probes stay on the gateway's own service, so neither problem
//! restarts it. A store that answers on some nodes only (a Cluster mid
//! failover) keeps the gateway ready: calls ride the failover out.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use super::AbortOnDrop;
use crate::managed::Managed;
use crate::store::Reachable;

/// The health service name of the sidecar's readiness.
pub const CREDENTIALS_HEALTH: &str = "dcr-gateway.credentials";

/// How often a store across the network is asked whether it answers.
const STORE_PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// How long one such question may take.
const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether the store answers, as a watch: always `true` for a store on
/// this machine; for one across the network, asked every
/// [`STORE_PROBE_INTERVAL`] by a task that lives as long as the handle.
pub fn store_up(
    store: Option<Arc<dyn Reachable>>,
) -> (watch::Receiver<bool>, Option<AbortOnDrop<()>>) {
    let (up, store_up) = watch::channel(true);
    let task = store.map(|store| AbortOnDrop(tokio::spawn(probe(store, up))));
    (store_up, task)
}

/// Keeps [`CREDENTIALS_HEALTH`] in step with `managed`'s files and
/// `store_up` until shutdown.
pub async fn follow(health: HealthReporter, managed: Managed, mut store_up: watch::Receiver<bool>) {
    let mut failing = managed.failing_files_changes();
    // A store on this machine has no probe: its watch closes at once, and
    // a closed watch must not be polled again (it answers at once, for ever).
    let mut probed = true;
    loop {
        let ok = *failing.borrow_and_update() == 0
            && *store_up.borrow_and_update()
            && !managed.is_stopping();
        let status = match ok {
            true => ServingStatus::Serving,
            false => ServingStatus::NotServing,
        };
        health.set_service_status(CREDENTIALS_HEALTH, status).await;
        if managed.is_stopping() {
            return;
        }
        tokio::select! {
            changed = failing.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            changed = store_up.changed(), if probed => probed = changed.is_ok(),
            () = managed.stopped() => {}
        }
    }
}

/// Asks `store` every [`STORE_PROBE_INTERVAL`] whether it answers, and
/// tells `up` when that changes.
async fn probe(store: Arc<dyn Reachable>, up: watch::Sender<bool>) {
    loop {
        let answered = tokio::time::timeout(STORE_PROBE_TIMEOUT, store.reachable())
            .await
            .unwrap_or(false);
        up.send_if_modified(|was| {
            if *was != answered {
                match answered {
                    true => tracing::info!("token store reachable again: ready"),
                    false => tracing::warn!("token store unreachable: not ready until it answers"),
                }
            }
            std::mem::replace(was, answered) != answered
        });
        tokio::time::sleep(STORE_PROBE_INTERVAL).await;
    }
}
