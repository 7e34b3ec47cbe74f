//! Declared clients: each `[[clients]]` table is ensured at start and every
//! `--reconcile-interval`, retried with backoff when that fails, its secret
//! rotated when due (and only while its file can be delivered), and its
//! credentials file rewritten whenever its content changes, so a service
//! needs no code. Names no longer declared are retired (`retire`).
//!
//! Reconciles run at most [`RECONCILE_CONCURRENCY`] at once, a budget of
//! their own: callers' calls and sent exchanges never starve them, nor they
//! the callers.

mod follower;
mod retire;
mod token_files;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::Managed;
use super::settings::{CredentialsDir, DeclaredClient, ManagedSettings};
use crate::telemetry::Metrics;
use follower::Follower;

/// Most declared clients reconciled at once.
pub const RECONCILE_CONCURRENCY: usize = 16;

/// The declared clients' loops, before they start.
pub struct Declared {
    managed: Managed,
    settings: ManagedSettings,
    token_endpoint: Option<String>,
    metrics: Arc<Metrics>,
}

/// The running loops; they stop once [`Managed::stop`] is called (each
/// after the step it is in, so nothing sent is abandoned), and are aborted
/// if this is dropped first.
pub struct DeclaredHandle {
    set: JoinSet<()>,
}

impl DeclaredHandle {
    /// Waits for every loop to stop.
    pub async fn join(mut self) {
        while self.set.join_next().await.is_some() {}
    }
}

/// What every declared client's loop shares.
struct Shared {
    managed: Managed,
    interval: Duration,
    credentials: Option<CredentialsDir>,
    token_endpoint: Option<String>,
    metrics: Arc<Metrics>,
    permits: Semaphore,
    states: States,
}

impl Declared {
    /// Loops for `settings`' clients over `managed`; credentials files name
    /// `token_endpoint` when it is known.
    pub fn new(
        managed: Managed,
        settings: ManagedSettings,
        token_endpoint: Option<String>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            managed,
            settings,
            token_endpoint,
            metrics,
        }
    }

    /// Starts every client's loop, and the sweep that retires names no
    /// longer declared.
    pub fn spawn(self) -> DeclaredHandle {
        let shared = Arc::new(Shared {
            managed: self.managed,
            interval: self.settings.reconcile_interval,
            credentials: self.settings.credentials,
            token_endpoint: self.token_endpoint,
            metrics: self.metrics,
            permits: Semaphore::new(RECONCILE_CONCURRENCY),
            states: States::default(),
        });
        let mut set = JoinSet::new();
        set.spawn(retire::Sweep::new(shared.clone(), &self.settings.clients).run());
        for client in self.settings.clients {
            set.spawn(Follower::new(shared.clone(), client).run());
        }
        DeclaredHandle { set }
    }
}

/// Whether each declared client is ok (its last reconcile succeeded and its
/// file, if any, was delivered), by (namespace, name): the clients-by-state
/// gauge.
#[derive(Default)]
struct States(std::sync::Mutex<HashMap<(String, String), bool>>);

impl States {
    /// Sets one client's state and the gauge.
    fn set(&self, client: &DeclaredClient, ok: bool, metrics: &Metrics) {
        let (good, failing) = {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            map.insert((client.namespace.clone(), client.name.clone()), ok);
            let good = map.values().filter(|ok| **ok).count() as u64;
            (good, map.len() as u64 - good)
        };
        metrics.managed().clients_by_state(good, failing);
    }
}
