//! The managed clients' instruments: declared clients by state, reconciles,
//! rotations and deliveries by outcome, drift, the age of each declared
//! client's secret and credentials file (an age past its rotation period
//! means rotation is not happening), the credentials folder's safety, and
//! the per-namespace limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Meter, ObservableGauge, UpDownCounter};

/// Outcomes a reconcile is counted by.
const RECONCILE_OUTCOMES: [&str; 5] = ["created", "unchanged", "updated", "recreated", "error"];
/// Results a rotation is counted by.
const ROTATION_RESULTS: [&str; 3] = ["ok", "error", "held"];
/// Results a delivery is counted by.
const DELIVERY_RESULTS: [&str; 3] = ["written", "unchanged", "error"];
/// The per-namespace limits a refusal is counted by.
const LIMITS: [&str; 2] = ["names", "watches"];

/// When each declared client's credentials file last changed, by name, in
/// Unix seconds: the file age gauge reads it when metrics are collected.
type WrittenAt = Arc<Mutex<HashMap<String, u64>>>;

/// Every managed-client instrument.
#[derive(Debug)]
pub struct ManagedMetrics {
    reconciles: Counter<u64>,
    rotations: Counter<u64>,
    deliveries: Counter<u64>,
    drift: Counter<u64>,
    secret_age: Gauge<u64>,
    clients: Gauge<u64>,
    folder_unsafe: Gauge<u64>,
    watches: UpDownCounter<i64>,
    refusals: Counter<u64>,
    written_at: WrittenAt,
    _file_age: ObservableGauge<u64>,
}

impl ManagedMetrics {
    pub(super) fn new(m: &Meter) -> Self {
        let written_at = WrittenAt::default();
        let read = written_at.clone();
        let this = Self {
            reconciles: m
                .u64_counter("dcr.managed.reconciles")
                .with_description(
                    "Reconciles of declared clients, by outcome: created, unchanged, updated, recreated, error",
                )
                .build(),
            rotations: m
                .u64_counter("dcr.managed.rotations")
                .with_description(
                    "Scheduled secret rotations, by result: ok, error, held (due, but the last delivery failed)",
                )
                .build(),
            deliveries: m
                .u64_counter("dcr.managed.deliveries")
                .with_description(
                    "Credentials file deliveries, by result: written, unchanged (nothing rewritten), error",
                )
                .build(),
            drift: m
                .u64_counter("dcr.managed.drift")
                .with_description(
                    "Declared or ensured clients found changed at the server and put back",
                )
                .build(),
            secret_age: m
                .u64_gauge("dcr.managed.secret_age_seconds")
                .with_unit("s")
                .with_description("Age of a declared client's current secret, by name")
                .build(),
            clients: m
                .u64_gauge("dcr.managed.clients")
                .with_description(
                    "Declared clients by state: ok (reconciled and delivered), failing",
                )
                .build(),
            folder_unsafe: m
                .u64_gauge("dcr.managed.credentials_dir_unsafe")
                .with_description(
                    "1 when the credentials folder is writable by every user without the sticky bit",
                )
                .build(),
            watches: m
                .i64_up_down_counter("dcr.managed.watches")
                .with_description("WatchClient streams open")
                .build(),
            refusals: m
                .u64_counter("dcr.managed.limit_refusals")
                .with_description(
                    "Calls refused by a per-namespace limit, by limit: names, watches",
                )
                .build(),
            _file_age: m
                .u64_observable_gauge("dcr.managed.credentials_file_age_seconds")
                .with_unit("s")
                .with_description(
                    "Time since a declared client's credentials file last changed, by name",
                )
                .with_callback(move |observer| {
                    let now = crate::dcr::unix_now();
                    let written = read.lock().unwrap_or_else(|e| e.into_inner());
                    for (name, at) in written.iter() {
                        observer.observe(
                            now.saturating_sub(*at),
                            &[KeyValue::new("name", name.clone())],
                        );
                    }
                })
                .build(),
            written_at,
        };
        this.clients_by_state(0, 0);
        this.folder_unsafe.record(0, &[]);
        this.watches.add(0, &[]);
        this.drift.add(0, &[]);
        for outcome in RECONCILE_OUTCOMES {
            this.reconciles.add(0, &[KeyValue::new("outcome", outcome)]);
        }
        for result in ROTATION_RESULTS {
            this.rotations.add(0, &[KeyValue::new("result", result)]);
        }
        for result in DELIVERY_RESULTS {
            this.deliveries.add(0, &[KeyValue::new("result", result)]);
        }
        for limit in LIMITS {
            this.refusals.add(0, &[KeyValue::new("limit", limit)]);
        }
        this
    }

    /// A declared client was reconciled with `outcome`.
    pub fn reconciled(&self, outcome: &'static str) {
        self.reconciles.add(1, &[KeyValue::new("outcome", outcome)]);
    }

    /// A scheduled rotation ended with `result` (`ok`, `error`, `held`).
    pub fn rotated(&self, result: &'static str) {
        self.rotations.add(1, &[KeyValue::new("result", result)]);
    }

    /// A credentials file delivery ended with `result` (`written`,
    /// `unchanged`, `error`).
    pub fn delivered(&self, result: &'static str) {
        self.deliveries.add(1, &[KeyValue::new("result", result)]);
    }

    /// A client was found changed at the server.
    pub fn drifted(&self) {
        self.drift.add(1, &[]);
    }

    /// How many declared clients are ok, and how many failing.
    pub fn clients_by_state(&self, ok: u64, failing: u64) {
        self.clients.record(ok, &[KeyValue::new("state", "ok")]);
        self.clients
            .record(failing, &[KeyValue::new("state", "failing")]);
    }

    /// Names are declared clients only (at most `MAX_DECLARED_CLIENTS`), so
    /// the series stay bounded.
    pub fn secret_age(&self, name: &str, seconds: u64) {
        self.secret_age
            .record(seconds, &[KeyValue::new("name", name.to_owned())]);
    }

    /// Declared client `name`'s credentials file last changed at `at` (Unix
    /// seconds); `None` once it has none.
    pub fn file_written(&self, name: &str, at: Option<u64>) {
        let mut written = self.written_at.lock().unwrap_or_else(|e| e.into_inner());
        match at {
            Some(at) => written.insert(name.to_owned(), at),
            None => written.remove(name),
        };
    }

    /// Whether the credentials folder is unsafe (see `deliver::Safety`).
    pub fn folder_unsafe(&self, unsafe_: bool) {
        self.folder_unsafe.record(u64::from(unsafe_), &[]);
    }

    /// A watch stream opened (`1`) or closed (`-1`).
    pub fn watch_open(&self, delta: i64) {
        self.watches.add(delta, &[]);
    }

    /// A per-namespace limit (`names`, `watches`) refused a call.
    pub fn refused(&self, limit: &'static str) {
        self.refusals.add(1, &[KeyValue::new("limit", limit)]);
    }
}
