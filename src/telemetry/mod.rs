//! Telemetry: logs (text or JSON, `RUST_LOG` filter, trace ids on every line in
//! a request), OpenTelemetry traces exported over OTLP when configured, W3C
//! propagation to the upstream, and metrics for Prometheus and OTLP.
//!
//! Nothing secret is recorded: span fields and metric labels are built from
//! method names, routes, client ids, codes and counts only, and every type that
//! holds a secret redacts its `Debug` output.

mod histogram;
mod init;
mod log_fields;
mod log_layer;
mod managed_metrics;
mod metrics;
mod prometheus;
pub mod propagation;
mod span;
mod token_metrics;

pub use init::{LogFormat, TelemetryConfig, init, init_logs};
pub use metrics::Metrics;
pub use span::rpc_span;
