//! The gRPC health of the declared clients' credentials files, as service
//! [`CREDENTIALS_HEALTH`]: SERVING while every file can be delivered,
//! NOT_SERVING while one cannot (the folder gone, a full disk, a folder in
//! a file's place) and once shutdown starts. A pod's readiness probe points
//! at it, so a sidecar that cannot deliver credentials says so where an
//! operator looks; the startup and liveness probes stay on the gateway's
//! own service, so a delivery problem never restarts it.

use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::managed::Managed;

/// The health service name of the credentials files.
pub const CREDENTIALS_HEALTH: &str = "dcr-gateway.credentials";

/// Keeps [`CREDENTIALS_HEALTH`] in step with `managed`'s files until shutdown.
pub async fn follow(health: HealthReporter, managed: Managed) {
    let mut failing = managed.failing_files_changes();
    loop {
        let ok = *failing.borrow_and_update() == 0 && !managed.is_stopping();
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
            () = managed.stopped() => {}
        }
    }
}
