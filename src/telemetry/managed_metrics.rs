//! The managed clients' instruments: declared clients by state, reconciles
//! and rotations by outcome, and the age of each declared client's secret (an age past its rotation
//! period means rotation is not happening).

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Meter};

/// Outcomes a reconcile is counted by.
const RECONCILE_OUTCOMES: [&str; 5] = ["created", "unchanged", "updated", "recreated", "error"];
/// Results a rotation is counted by.
const ROTATION_RESULTS: [&str; 2] = ["ok", "error"];

#[derive(Debug)]
pub(super) struct ManagedMetrics {
    reconciles: Counter<u64>,
    rotations: Counter<u64>,
    secret_age: Gauge<u64>,
    clients: Gauge<u64>,
}

impl ManagedMetrics {
    pub(super) fn new(m: &Meter) -> Self {
        let this = Self {
            reconciles: m
                .u64_counter("dcr.managed.reconciles")
                .with_description(
                    "Reconciles of declared clients, by outcome: created, unchanged, updated, recreated, error",
                )
                .build(),
            rotations: m
                .u64_counter("dcr.managed.rotations")
                .with_description("Scheduled secret rotations, by result: ok, error")
                .build(),
            secret_age: m
                .u64_gauge("dcr.managed.secret_age_seconds")
                .with_unit("s")
                .with_description("Age of a declared client's current secret, by name")
                .build(),
            clients: m
                .u64_gauge("dcr.managed.clients")
                .with_description(
                    "Declared clients by state: ok (the last reconcile succeeded), failing",
                )
                .build(),
        };
        this.clients_by_state(0, 0);
        for outcome in RECONCILE_OUTCOMES {
            this.reconciles.add(0, &[KeyValue::new("outcome", outcome)]);
        }
        for result in ROTATION_RESULTS {
            this.rotations.add(0, &[KeyValue::new("result", result)]);
        }
        this
    }

    pub(super) fn reconciled(&self, outcome: &'static str) {
        self.reconciles.add(1, &[KeyValue::new("outcome", outcome)]);
    }

    pub(super) fn rotated(&self, result: &'static str) {
        self.rotations.add(1, &[KeyValue::new("result", result)]);
    }

    pub(super) fn clients_by_state(&self, ok: u64, failing: u64) {
        self.clients.record(ok, &[KeyValue::new("state", "ok")]);
        self.clients
            .record(failing, &[KeyValue::new("state", "failing")]);
    }

    /// Names are declared clients only (at most `MAX_DECLARED_CLIENTS`), so
    /// the series stay bounded.
    pub(super) fn secret_age(&self, name: &str, seconds: u64) {
        self.secret_age
            .record(seconds, &[KeyValue::new("name", name.to_owned())]);
    }
}
