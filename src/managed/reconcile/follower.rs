//! One declared client's loop: reconcile now, then again after the interval
//! (less a little jitter, so many clients do not all go at once) or sooner
//! when a rotation is due; after a failure, again after a backoff that
//! starts well under a second and grows to the interval, so a late or
//! restarted upstream gets a working file within seconds. A change to its
//! name anywhere in this process (a caller's rotation, a forget, a deletion)
//! wakes it at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tower::util::rng::{HasherRng, Rng};
use tracing::Instrument;

use super::Shared;
use crate::managed::board::FileState;
use crate::managed::deliver::{self, CredentialsFile, Written};
use crate::managed::rotate::next_rotation;
use crate::managed::settings::{CredentialsDir, DeclaredClient};
use crate::store::{ManagedKey, unix_now};

/// How long one reconcile step (an ensure, a rotation) may take.
pub(super) const STEP_DEADLINE: Duration = Duration::from_secs(30);
/// The first wait after a failure; each failure in a row doubles it, up to
/// the reconcile interval.
const FIRST_RETRY: Duration = Duration::from_millis(250);
/// Shortest wait before a due rotation is tried (the clock's second
/// granularity aside).
const MIN_WAIT: Duration = Duration::from_secs(1);

/// How a step ended.
#[derive(Debug, PartialEq)]
enum Step {
    /// Done; the next rotation is due in this long, if one is scheduled.
    Done(Option<Duration>),
    /// Something failed: try again after a backoff.
    Failed,
    /// The name has no client any more (forgotten, or deleted at the
    /// server by the gateway): ensure it at once.
    Reensure,
}

/// One declared client's loop.
pub(super) struct Follower {
    shared: Arc<Shared>,
    client: DeclaredClient,
    key: ManagedKey,
    wake: Arc<Notify>,
    /// Failed steps in a row.
    failures: u32,
    /// The record generation last delivered to the credentials file.
    written: Option<u64>,
    /// Whether the last delivery failed: scheduled rotation is held.
    delivery_failed: bool,
    /// When the file last changed, as last seen.
    changed_at: u64,
    /// How long until the next rotation, as of the last look at the record.
    due_in: Option<Duration>,
    rng: HasherRng,
    /// Told when a token of one of its token files is renewed.
    pub(super) token_wake: Arc<Notify>,
}

impl Follower {
    pub(super) fn new(shared: Arc<Shared>, client: DeclaredClient) -> Self {
        let key = shared.managed.key(&client.namespace, &client.name);
        let wake = shared.managed.inner.watchers.wake_up(&key);
        Self {
            shared,
            client,
            key,
            wake,
            failures: 0,
            written: None,
            delivery_failed: false,
            changed_at: 0,
            due_in: None,
            rng: HasherRng::new(),
            token_wake: Arc::new(Notify::new()),
        }
    }

    /// The declared client.
    pub(super) fn client(&self) -> &DeclaredClient {
        &self.client
    }

    /// What the loop shares with the others.
    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The folder, when this client's credentials are written to a file.
    fn file_dir(&self) -> Option<CredentialsDir> {
        match self.client.credentials_file {
            true => self.shared.credentials.clone(),
            false => None,
        }
    }

    pub(super) async fn run(mut self) {
        let managed = self.shared.managed.clone();
        let mut next_at = Instant::now();
        loop {
            tokio::select! {
                biased;
                () = managed.stopped() => return,
                () = tokio::time::sleep_until(next_at) => {
                    let step = self.reconcile().await;
                    next_at = Instant::now() + self.wait_after(step);
                }
                () = self.wake.notified() => match self.deliver(false).await {
                    Step::Reensure => next_at = Instant::now(),
                    Step::Failed => {
                        let retry = Instant::now() + self.wait_after(Step::Failed);
                        next_at = next_at.min(retry);
                    }
                    Step::Done(_) => {}
                },
                () = self.token_wake.notified() => {
                    if !self.deliver_tokens().await {
                        let retry = Instant::now() + self.wait_after(Step::Failed);
                        next_at = next_at.min(retry);
                    }
                }
            }
            if managed.is_stopping() {
                return;
            }
        }
    }

    /// How long to wait after `step`.
    fn wait_after(&mut self, step: Step) -> Duration {
        let interval = self.shared.interval;
        match step {
            Step::Reensure => Duration::ZERO,
            Step::Failed => {
                self.failures = self.failures.saturating_add(1);
                let exp = FIRST_RETRY.saturating_mul(1 << (self.failures - 1).min(20));
                // Half fixed, half random: never a tight loop, never in step
                // with the other clients.
                let cap = exp.min(interval);
                cap / 2 + (cap / 2).mul_f64(self.rng.next_f64())
            }
            Step::Done(rotation) => {
                self.failures = 0;
                let jittered = interval.mul_f64(0.9 + 0.1 * self.rng.next_f64());
                rotation.map_or(jittered, |r| r.max(MIN_WAIT).min(jittered))
            }
        }
    }

    /// Ensures the client, writes its file, and rotates its secret when due
    /// and its file can be delivered.
    async fn reconcile(&mut self) -> Step {
        let span = tracing::info_span!(
            "reconcile",
            otel.name = "dcr-gateway/reconcile",
            dcr.managed.name = self.client.name.as_str(),
            dcr.managed.namespace = self.client.namespace.as_str(),
        );
        let step = self.reconcile_step().instrument(span).await;
        let ok = matches!(step, Step::Done(_));
        let shared = &self.shared;
        shared.states.set(&self.client, ok, &shared.metrics);
        step
    }

    async fn reconcile_step(&mut self) -> Step {
        let shared = self.shared.clone();
        // Shutdown stops a loop still waiting for its turn; a step already
        // running finishes (what it sent is seen through).
        let permit = tokio::select! {
            biased;
            () = shared.managed.stopped() => return Step::Failed,
            permit = shared.permits.acquire() => permit,
        };
        let Ok(_permit) = permit else {
            return Step::Failed;
        };
        let metrics = shared.metrics.managed();
        let c = &self.client;
        let deadline = std::time::Instant::now() + STEP_DEADLINE;
        let ensured = shared
            .managed
            .ensure_declared(&c.namespace, &c.name, c.metadata.clone(), deadline)
            .await;
        match &ensured {
            Ok(e) => metrics.reconciled(e.outcome.label()),
            Err(err) => {
                metrics.reconciled("error");
                tracing::warn!(name = c.name, error = %err, "reconciling a declared client failed");
                return Step::Failed;
            }
        }
        let step = self.deliver(true).await;
        if !self.deliver_tokens().await && matches!(step, Step::Done(_)) {
            return Step::Failed;
        }
        let stopping = shared.managed.is_stopping();
        if stopping || step == Step::Reensure || self.due_in != Some(Duration::ZERO) {
            return step;
        }
        // A rotation is due: only while the new secret can reach the file,
        // else the only secret readers have would be rotated away.
        if let Some(why) = self.hold_reason().await {
            metrics.rotated("held");
            tracing::warn!(
                name = self.client.name,
                reason = why,
                "holding a declared client's scheduled rotation: its credentials cannot be delivered"
            );
            return Step::Failed;
        }
        let c = &self.client;
        let deadline = std::time::Instant::now() + STEP_DEADLINE;
        match shared
            .managed
            .rotate_if_due(&c.namespace, &c.name, c.rotation, deadline)
            .await
        {
            Ok(Some(_)) => metrics.rotated("ok"),
            Ok(None) => {}
            Err(err) => {
                metrics.rotated("error");
                tracing::warn!(name = c.name, error = %err, "rotating a declared client's secret failed");
                return Step::Failed;
            }
        }
        self.deliver(true).await
    }

    /// Why a due rotation must wait, if it must: the last delivery failed,
    /// or the folder cannot take a new file now.
    async fn hold_reason(&self) -> Option<String> {
        let dir = self.file_dir()?;
        if self.delivery_failed {
            return Some("the last delivery of its credentials file failed".into());
        }
        deliver::bounded(move || deliver::probe(&dir))
            .await
            .err()
            .map(|e| format!("the credentials folder cannot take a new file: {e}"))
    }

    /// Writes the credentials file when its content may have changed (the
    /// record changed since the last delivery, or `check`: the file is
    /// compared again, in case someone changed it); returns how long until
    /// the next rotation.
    async fn deliver(&mut self, check: bool) -> Step {
        let shared = self.shared.clone();
        let (record, generation) = match shared.managed.load(&self.key).await {
            Ok(Some(loaded)) => loaded,
            Ok(None) => return Step::Reensure,
            Err(err) => {
                tracing::warn!(name = self.client.name, error = %err, "reading a declared client failed");
                return Step::Failed;
            }
        };
        if record.deleted_at.is_some() {
            return Step::Reensure;
        }
        let metrics = shared.metrics.managed();
        let now = unix_now();
        metrics.secret_age(
            &self.client.name,
            now.saturating_sub(record.secret_issued_at),
        );
        let next = next_rotation(&record, self.client.rotation)
            .map(|at| Duration::from_secs(at.saturating_sub(now)));
        self.due_in = next;
        let Some(dir) = self.file_dir() else {
            return Step::Done(next);
        };
        if !check && self.written == Some(generation) {
            return Step::Done(next);
        }
        let endpoint = shared.token_endpoint.clone();
        let path = dir.dir.join(deliver::file_name(&self.client.name));
        let (name, client) = (self.client.name.clone(), record.client.clone());
        let (issued, with_secret) = (record.secret_issued_at, self.client.deliver_secret);
        let written = deliver::bounded(move || {
            let file = CredentialsFile {
                client: &client,
                secret_issued_at: issued,
                token_endpoint: endpoint.as_deref(),
                with_secret,
            };
            deliver::write(&dir, &name, &file)
        })
        .await;
        let error = match written {
            Ok(written) => {
                let (label, at) = match written {
                    Written::Unchanged(at) => ("unchanged", at),
                    Written::Replaced(at) => {
                        // Where the credentials went and for which client:
                        // never the secret, which the file holds.
                        tracing::info!(
                            name = self.client.name,
                            client_id = record.client.client_id,
                            path = %path.display(),
                            "wrote the credentials file"
                        );
                        ("written", at)
                    }
                };
                metrics.delivered(label);
                metrics.file_written(&self.client.name, Some(at));
                (self.written, self.delivery_failed, self.changed_at) =
                    (Some(generation), false, at);
                None
            }
            Err(err) => {
                metrics.delivered("error");
                tracing::warn!(name = self.client.name, error = %err, "writing a credentials file failed");
                self.delivery_failed = true;
                Some(err.to_string())
            }
        };
        let failed = error.is_some();
        let state = FileState {
            error,
            changed_at: self.changed_at,
        };
        shared.managed.inner.board.set_file(&self.key, state);
        match failed {
            true => Step::Failed,
            false => Step::Done(next),
        }
    }
}
