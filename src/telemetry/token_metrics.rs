//! The access tokens' instruments: token requests by result, cache lookups
//! by result, how late a refresh ahead of expiry started, and the time left
//! on the soonest-expiring token held (a value near zero means refreshing is
//! not keeping up). Never a token, a client id or a name as a label.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, ObservableGauge};

use super::histogram::histogram;

/// Results a token request is counted by.
const REQUEST_RESULTS: [&str; 2] = ["ok", "error"];
/// Results a cache lookup is counted by.
const LOOKUP_RESULTS: [&str; 2] = ["hit", "miss"];

/// When each held token expires, by a number the cache gives it, in Unix
/// seconds: the gauge reads the soonest when metrics are collected.
type Expiries = Arc<Mutex<HashMap<u64, u64>>>;

/// Every access-token instrument.
#[derive(Debug)]
pub struct TokenMetrics {
    requests: Counter<u64>,
    lookups: Counter<u64>,
    refresh_lag: Histogram<f64>,
    expiries: Expiries,
    _soonest: ObservableGauge<u64>,
}

impl TokenMetrics {
    pub(super) fn new(m: &Meter) -> Self {
        let expiries = Expiries::default();
        let read = expiries.clone();
        let this = Self {
            requests: m
                .u64_counter("dcr.access_token.requests")
                .with_description("Token requests to the token endpoint, by result: ok, error")
                .build(),
            lookups: m
                .u64_counter("dcr.access_token.cache_lookups")
                .with_description(
                    "GetAccessToken lookups, by result: hit (a held token), miss (one was asked for)",
                )
                .build(),
            refresh_lag: histogram(
                m,
                "dcr.access_token.refresh_lag",
                "How long after its planned time a refresh ahead of expiry started",
            ),
            _soonest: m
                .u64_observable_gauge("dcr.access_token.soonest_expiry_seconds")
                .with_unit("s")
                .with_description("Time left on the held access token that expires first")
                .with_callback(move |observer| {
                    let now = crate::dcr::unix_now();
                    let held = read.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(soonest) = held.values().min() {
                        observer.observe(soonest.saturating_sub(now), &[]);
                    }
                })
                .build(),
            expiries,
        };
        for result in REQUEST_RESULTS {
            this.requests.add(0, &[KeyValue::new("result", result)]);
        }
        for result in LOOKUP_RESULTS {
            this.lookups.add(0, &[KeyValue::new("result", result)]);
        }
        this
    }

    /// A token request ended (`ok` or `error`).
    pub fn request(&self, result: &'static str) {
        self.requests.add(1, &[KeyValue::new("result", result)]);
    }

    /// A lookup found a token (`hit`) or had to ask for one (`miss`).
    pub fn lookup(&self, result: &'static str) {
        self.lookups.add(1, &[KeyValue::new("result", result)]);
    }

    /// A refresh ahead of expiry started `lag` after its planned time.
    pub fn refresh_started(&self, lag: std::time::Duration) {
        self.refresh_lag.record(lag.as_secs_f64(), &[]);
    }

    /// The token held under `id` expires at `at` (Unix seconds).
    pub fn held(&self, id: u64, at: u64) {
        self.expiries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, at);
    }

    /// The token held under `id` is held no more.
    pub fn dropped(&self, id: u64) {
        self.expiries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }
}
