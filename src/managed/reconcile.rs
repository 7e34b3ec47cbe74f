//! Declared clients: each `[[clients]]` table is ensured at start and every
//! `--reconcile-interval`, its secret rotated when due, and its credentials
//! file rewritten whenever the client changes, so a service needs no code.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tracing::Instrument;

use super::rotate::next_rotation;
use super::settings::{CredentialsDir, DeclaredClient, ManagedSettings};
use super::{Managed, deliver};
use crate::store::unix_now;
use crate::telemetry::Metrics;

/// How long one reconcile step (an ensure, a rotation) may take.
const STEP_DEADLINE: Duration = Duration::from_secs(30);
/// Shortest wait between two reconciles of one client, failures included.
const MIN_WAIT: Duration = Duration::from_secs(1);

/// The declared clients' reconcile loops.
pub struct Declared {
    managed: Managed,
    settings: ManagedSettings,
    token_endpoint: Option<String>,
    metrics: Arc<Metrics>,
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

    /// Runs every client's loop until the returned set is dropped.
    pub fn spawn(self) -> JoinSet<()> {
        let mut set = JoinSet::new();
        let states = States::default();
        for client in self.settings.clients.iter().cloned() {
            let this = Follower {
                states: states.clone(),
                managed: self.managed.clone(),
                client,
                interval: self.settings.reconcile_interval,
                credentials: self.settings.credentials.clone(),
                token_endpoint: self.token_endpoint.clone(),
                metrics: self.metrics.clone(),
                written: None,
            };
            set.spawn(this.run());
        }
        set
    }
}

/// Whether each declared client's last reconcile succeeded, by (namespace,
/// name): the clients-by-state gauge.
#[derive(Clone, Default)]
struct States(Arc<std::sync::Mutex<HashMap<(String, String), bool>>>);

impl States {
    /// Sets one client's state; returns (ok, failing) counts.
    fn set(&self, client: &DeclaredClient, ok: bool) -> (u64, u64) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.insert((client.namespace.clone(), client.name.clone()), ok);
        let good = map.values().filter(|ok| **ok).count() as u64;
        (good, map.len() as u64 - good)
    }
}

/// One declared client's loop.
struct Follower {
    states: States,
    managed: Managed,
    client: DeclaredClient,
    interval: Duration,
    credentials: Option<CredentialsDir>,
    token_endpoint: Option<String>,
    metrics: Arc<Metrics>,
    /// The record generation last written to the credentials file.
    written: Option<u64>,
}

impl Follower {
    async fn run(mut self) {
        loop {
            let next = self.reconcile().await;
            let wait = next.unwrap_or(self.interval).clamp(MIN_WAIT, self.interval);
            // A change made in this process (a caller's rotation, another
            // name's ensure) is written at once; others at the next reconcile.
            let watch = self
                .managed
                .watch(&self.client.namespace, &self.client.name)
                .await;
            match watch {
                Ok((_, mut rx)) => {
                    rx.borrow_and_update();
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        changed = rx.changed() => {
                            if changed.is_ok() {
                                self.deliver().await;
                            }
                        }
                    }
                }
                Err(_) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Ensures the client, rotates its secret when due and rewrites its
    /// file; returns how long until its next rotation, if one is scheduled.
    async fn reconcile(&mut self) -> Option<Duration> {
        let span = tracing::info_span!(
            "reconcile",
            otel.name = "dcr-gateway/reconcile",
            dcr.managed.name = self.client.name.as_str(),
            dcr.managed.namespace = self.client.namespace.as_str(),
        );
        self.reconcile_step().instrument(span).await
    }

    async fn reconcile_step(&mut self) -> Option<Duration> {
        let c = &self.client;
        let deadline = Instant::now() + STEP_DEADLINE;
        let ensured = self
            .managed
            .ensure(&c.namespace, &c.name, c.metadata.clone(), None, deadline)
            .await;
        let (ok, failing) = self.states.set(c, ensured.is_ok());
        self.metrics.managed_clients(ok, failing);
        match &ensured {
            Ok(e) => self.metrics.managed_reconciled(e.outcome.label()),
            Err(err) => {
                self.metrics.managed_reconciled("error");
                tracing::warn!(name = c.name, error = %err, "reconciling a declared client failed");
                return None;
            }
        }
        let deadline = Instant::now() + STEP_DEADLINE;
        match self
            .managed
            .rotate_if_due(&c.namespace, &c.name, c.rotation, deadline)
            .await
        {
            Ok(Some(_)) => self.metrics.managed_rotated("ok"),
            Ok(None) => {}
            Err(err) => {
                self.metrics.managed_rotated("error");
                tracing::warn!(name = c.name, error = %err, "rotating a declared client's secret failed");
            }
        }
        self.deliver().await
    }

    /// Writes the credentials file when the record changed since the last
    /// write; returns how long until the next rotation.
    async fn deliver(&mut self) -> Option<Duration> {
        let c = &self.client;
        let key = self.managed.key(&c.namespace, &c.name);
        let (record, generation) = match self.managed.load(&key).await {
            Ok(Some(loaded)) => loaded,
            Ok(None) => return None,
            Err(err) => {
                tracing::warn!(name = c.name, error = %err, "reading a declared client failed");
                return None;
            }
        };
        self.metrics
            .managed_secret_age(&c.name, unix_now().saturating_sub(record.secret_issued_at));
        let next = next_rotation(&record, c.rotation)
            .map(|at| Duration::from_secs(at.saturating_sub(unix_now())));
        if let (Some(dir), true) = (&self.credentials, c.credentials_file)
            && self.written != Some(generation)
        {
            let endpoint = self.token_endpoint.clone();
            let (dir, name, client) = (dir.clone(), c.name.clone(), record.client.clone());
            let issued = record.secret_issued_at;
            let written = tokio::task::spawn_blocking(move || {
                deliver::write(&dir, &name, &client, issued, endpoint.as_deref())
            })
            .await;
            match written {
                Ok(Ok(())) => self.written = Some(generation),
                Ok(Err(err)) => {
                    tracing::warn!(name = c.name, error = %err, "writing a credentials file failed")
                }
                Err(_) => tracing::error!(name = c.name, "the credentials file writer panicked"),
            }
        }
        next
    }
}
