//! The gateway's metrics: OpenTelemetry instruments, read by a manual reader
//! for the Prometheus endpoint and, when OTLP is configured, pushed by a
//! periodic reader too. Labels never carry a token or a client id (unbounded
//! cardinality); the names are listed in the README.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{
    Counter, Histogram, MeterProvider as _, ObservableCounter, UpDownCounter,
};

use super::histogram::histogram;
pub use super::managed_metrics::ManagedMetrics;
pub use super::token_metrics::TokenMetrics;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality,
};

use crate::dcr::Operation;

/// A manual reader the provider and the Prometheus endpoint share.
#[derive(Debug, Clone)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline)
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

/// Every instrument the gateway records.
#[derive(Debug)]
pub struct Metrics {
    provider: SdkMeterProvider,
    reader: SharedReader,
    rpc_requests: Counter<u64>,
    rpc_errors: Counter<u64>,
    rpc_duration: Histogram<f64>,
    rpc_in_flight: UpDownCounter<i64>,
    upstream_attempts: Counter<u64>,
    upstream_duration: Histogram<f64>,
    upstream_in_flight: UpDownCounter<i64>,
    retries: Counter<u64>,
    retry_budget_exhausted: Counter<u64>,
    retry_throttled: Counter<u64>,
    load_shed: Counter<u64>,
    detached: Counter<u64>,
    detached_in_flight: UpDownCounter<i64>,
    store_lookups: Counter<u64>,
    store_writes: Counter<u64>,
    store_write_duration: Histogram<f64>,
    /// The store's count of replica waits that fell short, once it has one.
    replica_shortfalls: Arc<OnceLock<Arc<AtomicU64>>>,
    _replica_shortfalls: ObservableCounter<u64>,
    managed: ManagedMetrics,
    tokens: TokenMetrics,
}

impl Metrics {
    /// Instruments on a fresh provider; `otlp` adds a push reader.
    pub fn new(
        otlp: Option<opentelemetry_otlp::MetricExporter>,
        resource: opentelemetry_sdk::Resource,
    ) -> Arc<Self> {
        let reader = SharedReader(Arc::new(ManualReader::builder().build()));
        let mut builder = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_reader(reader.clone());
        if let Some(exporter) = otlp {
            builder = builder.with_periodic_exporter(exporter);
        }
        let provider = builder.build();
        let m = provider.meter("dcr-gateway");
        let replica_shortfalls = Arc::new(OnceLock::<Arc<AtomicU64>>::new());
        let read = replica_shortfalls.clone();
        let metrics = Arc::new(Self {
            _replica_shortfalls: m
                .u64_observable_counter("dcr.token_store.replica_wait_short")
                .with_description(
                    "Credential writes that reached fewer replicas than asked: stored, \
                     but a failover may lose them",
                )
                .with_callback(move |observer| {
                    let short = read.get().map_or(0, |n| n.load(Ordering::Relaxed));
                    observer.observe(short, &[]);
                })
                .build(),
            replica_shortfalls,
            managed: ManagedMetrics::new(&m),
            tokens: TokenMetrics::new(&m),
            rpc_requests: m
                .u64_counter("dcr.rpc.requests")
                .with_description("RPCs received, by method")
                .build(),
            rpc_errors: m
                .u64_counter("dcr.rpc.errors")
                .with_description("RPCs answered with an error, by method and gRPC code")
                .build(),
            rpc_duration: histogram(
                &m,
                "dcr.rpc.duration",
                "RPC latency, by method and gRPC code",
            ),
            rpc_in_flight: m
                .i64_up_down_counter("dcr.rpc.in_flight")
                .with_description("RPCs being served")
                .build(),
            upstream_attempts: m
                .u64_counter("dcr.upstream.attempts")
                .with_description("Upstream HTTP attempts, by route and outcome")
                .build(),
            upstream_duration: histogram(
                &m,
                "dcr.upstream.duration",
                "Upstream attempt latency, by route",
            ),
            upstream_in_flight: m
                .i64_up_down_counter("dcr.upstream.in_flight")
                .with_description("Upstream calls holding a slot")
                .build(),
            retries: m
                .u64_counter("dcr.retries")
                .with_description("Retries made, by method")
                .build(),
            retry_budget_exhausted: m
                .u64_counter("dcr.retry.budget_exhausted")
                .with_description("Retries refused by the budget, by method")
                .build(),
            retry_throttled: m
                .u64_counter("dcr.retry.throttled")
                .with_description("Retries refused because the upstream is failing, by method")
                .build(),
            load_shed: m
                .u64_counter("dcr.load_shed")
                .with_description("Calls refused by load shedding")
                .build(),
            detached: m
                .u64_counter("dcr.detached")
                .with_description(
                    "Calls whose caller left after the request was sent; each ran on to store its credential",
                )
                .build(),
            detached_in_flight: m
                .i64_up_down_counter("dcr.detached.in_flight")
                .with_description("Detached calls still running")
                .build(),
            store_lookups: m
                .u64_counter("dcr.token_store.lookups")
                .with_description("Token store reads, by result: hit, miss, error")
                .build(),
            store_writes: m
                .u64_counter("dcr.token_store.writes")
                .with_description("Token store writes, by result: ok, conflict, error")
                .build(),
            store_write_duration: histogram(
                &m,
                "dcr.token_store.write.duration",
                "Token store write latency",
            ),
            provider,
            reader,
        });
        metrics.zero_series();
        metrics
    }

    /// Creates every counter series at zero, so dashboards and alerts see them
    /// before the first event.
    fn zero_series(&self) {
        for op in Operation::ALL {
            let label = [KeyValue::new("method", op.rpc_name())];
            self.rpc_requests.add(0, &label);
            self.retries.add(0, &label);
            self.retry_budget_exhausted.add(0, &label);
            self.retry_throttled.add(0, &label);
        }
        for result in ["hit", "miss", "error"] {
            self.store_lookups
                .add(0, &[KeyValue::new("result", result)]);
        }
        for result in ["ok", "conflict", "error"] {
            self.store_writes.add(0, &[KeyValue::new("result", result)]);
        }
        self.load_shed.add(0, &[]);
        self.detached.add(0, &[]);
        self.detached_in_flight.add(0, &[]);
        self.rpc_in_flight.add(0, &[]);
        self.upstream_in_flight.add(0, &[]);
    }

    /// Instruments that only the Prometheus endpoint reads (no OTLP).
    pub fn local() -> Arc<Self> {
        Self::new(None, opentelemetry_sdk::Resource::builder_empty().build())
    }

    /// The managed clients' instruments.
    pub fn managed(&self) -> &ManagedMetrics {
        &self.managed
    }

    /// The access tokens' instruments.
    pub fn tokens(&self) -> &TokenMetrics {
        &self.tokens
    }

    /// An RPC started; returns a guard that counts it in flight.
    pub fn rpc_started(&self, method: &'static str) -> InFlight<'_> {
        self.rpc_requests.add(1, &[KeyValue::new("method", method)]);
        InFlight::new(&self.rpc_in_flight)
    }

    /// An RPC finished with `code` (its gRPC code name) after `elapsed`.
    /// Labels are static strings, so recording allocates nothing.
    pub fn rpc_finished(&self, method: &'static str, code: &'static str, elapsed: Duration) {
        let labels = [KeyValue::new("method", method), KeyValue::new("code", code)];
        if code != "OK" {
            self.rpc_errors.add(1, &labels);
        }
        self.rpc_duration.record(elapsed.as_secs_f64(), &labels);
    }

    /// An upstream attempt on `route` ended with `outcome` (`success`, an
    /// HTTP status, or `connect_error`, `timeout`, `transport_error`); only an
    /// HTTP status is a string made for the call.
    pub fn upstream_attempt(
        &self,
        route: &'static str,
        outcome: Cow<'static, str>,
        elapsed: Duration,
    ) {
        let route = KeyValue::new("route", route);
        self.upstream_attempts
            .add(1, &[route.clone(), KeyValue::new("outcome", outcome)]);
        self.upstream_duration
            .record(elapsed.as_secs_f64(), &[route]);
    }

    /// A call took an upstream slot; the guard gives it back.
    pub fn upstream_slot(&self) -> InFlight<'_> {
        InFlight::new(&self.upstream_in_flight)
    }

    /// Counts a call that goes on after its caller left; the series of calls
    /// still running drops when the returned guard does.
    pub fn detached(&self) -> Detached {
        self.detached.add(1, &[]);
        self.detached_in_flight.add(1, &[]);
        Detached(self.detached_in_flight.clone())
    }

    /// A retry of `method` is about to wait and go again.
    pub fn retry(&self, method: &'static str) {
        self.retries.add(1, &[KeyValue::new("method", method)]);
    }

    /// The retry budget refused a retry of `method`.
    pub fn budget_exhausted(&self, method: &'static str) {
        self.retry_budget_exhausted
            .add(1, &[KeyValue::new("method", method)]);
    }

    /// The failure throttle refused a retry of `method`.
    pub fn retry_throttled(&self, method: &'static str) {
        self.retry_throttled
            .add(1, &[KeyValue::new("method", method)]);
    }

    /// Load shedding refused a call.
    pub fn shed(&self) {
        self.load_shed.add(1, &[]);
    }

    /// A token store read ended with `result`: `hit`, `miss` or `error`.
    pub fn store_lookup(&self, result: &'static str) {
        self.store_lookups
            .add(1, &[KeyValue::new("result", result)]);
    }

    /// A token store write ended with `result`: `ok`, `conflict` or `error`.
    pub fn store_write(&self, result: &'static str, elapsed: Duration) {
        self.store_writes.add(1, &[KeyValue::new("result", result)]);
        self.store_write_duration.record(elapsed.as_secs_f64(), &[]);
    }

    /// Reports `count` (the store's replica waits that fell short) as
    /// `dcr_token_store_replica_wait_short_total`.
    pub fn count_replica_shortfalls(&self, count: Arc<AtomicU64>) {
        let _ = self.replica_shortfalls.set(count);
    }

    /// Everything recorded so far, in the Prometheus text format.
    pub fn prometheus(&self) -> String {
        let mut rm = ResourceMetrics::default();
        match self.reader.collect(&mut rm) {
            Ok(()) => super::prometheus::render(&rm),
            Err(e) => format!("# metrics unavailable: {e}\n"),
        }
    }

    /// Pushes and stops the OTLP reader, if any.
    pub fn shutdown(&self) {
        let _ = self.provider.shutdown();
    }
}

/// One detached call still running, until dropped; owned, so it can live in
/// the call's task after the RPC has answered.
pub struct Detached(UpDownCounter<i64>);

impl Drop for Detached {
    fn drop(&mut self) {
        self.0.add(-1, &[]);
    }
}

/// Counts one unit in flight until dropped.
pub struct InFlight<'a>(&'a UpDownCounter<i64>);

impl<'a> InFlight<'a> {
    fn new(counter: &'a UpDownCounter<i64>) -> Self {
        counter.add(1, &[]);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.add(-1, &[]);
    }
}
