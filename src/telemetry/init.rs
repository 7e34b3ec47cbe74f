//! Installs logging and, when configured, OTLP export of traces and metrics.
//!
//! Export is on when `--otlp-endpoint`, `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (and `OTEL_SDK_DISABLED` is not
//! `true`). The protocol is `--otlp-protocol`, else `OTEL_EXPORTER_OTLP_PROTOCOL`,
//! else `http/protobuf`. Every other `OTEL_*` variable (headers, timeouts,
//! sampler, resource attributes, batch settings) is read by the SDK. Exports run
//! on background threads: a slow or absent collector never delays an RPC.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{
    MetricExporter, Protocol, SpanExporter, WithExportConfig, WithHttpConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use super::Metrics;
use super::log_layer::LogLayer;
use crate::tls::{Alpn, client_config};

/// How log lines are written (to standard error).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, span fields included.
    Json,
}

/// Telemetry settings from flags (the `OTEL_*` environment fills the rest).
#[derive(Clone, Debug, Default)]
pub struct TelemetryConfig {
    /// Log line format.
    pub log_format: LogFormat,
    /// OTLP collector base URL; overrides `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub otlp_endpoint: Option<String>,
    /// `grpc` or `http/protobuf`; overrides `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub otlp_protocol: Option<String>,
    /// Service name; overrides `OTEL_SERVICE_NAME`.
    pub service_name: Option<String>,
}

/// Telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// An unsupported OTLP protocol.
    #[error("--otlp-protocol: {0:?} is not grpc or http/protobuf")]
    Protocol(String),
    /// An exporter could not be built.
    #[error("OTLP exporter: {0}")]
    Exporter(String),
}

/// What [`init`] started; [`Telemetry::shutdown`] flushes it.
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    /// The metrics every layer records into.
    pub metrics: Arc<Metrics>,
}

impl Telemetry {
    /// Exports what is buffered and stops the exporters.
    pub fn shutdown(&self) {
        if let Some(tracer) = &self.tracer {
            let _ = tracer.shutdown();
        }
        self.metrics.shutdown();
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The OTLP protocol when export is on, `None` when it is off.
fn protocol(config: &TelemetryConfig) -> Result<Option<Protocol>, TelemetryError> {
    let disabled = env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let endpoint = config.otlp_endpoint.is_some()
        || env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some();
    if disabled || !endpoint {
        return Ok(None);
    }
    let name = config
        .otlp_protocol
        .clone()
        .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"));
    match name.as_deref().unwrap_or("http/protobuf") {
        "grpc" => Ok(Some(Protocol::Grpc)),
        "http/protobuf" => Ok(Some(Protocol::HttpBinary)),
        other => Err(TelemetryError::Protocol(other.to_owned())),
    }
}

fn resource(config: &TelemetryConfig) -> Resource {
    let builder = Resource::builder();
    match (&config.service_name, env("OTEL_SERVICE_NAME")) {
        (Some(name), _) => builder.with_service_name(name.clone()).build(),
        (None, Some(_)) => builder.build(),
        (None, None) => builder.with_service_name("dcr-gateway").build(),
    }
}

fn exporters(
    protocol: Protocol,
    endpoint: Option<&str>,
) -> Result<(SpanExporter, MetricExporter), TelemetryError> {
    let err = |e: opentelemetry_otlp::ExporterBuildError| TelemetryError::Exporter(e.to_string());
    let base = endpoint.map(|e| e.trim_end_matches('/').to_owned());
    Ok(match protocol {
        Protocol::Grpc => {
            let (mut spans, mut metrics) = (
                SpanExporter::builder().with_tonic(),
                MetricExporter::builder().with_tonic(),
            );
            if let Some(base) = &base {
                spans = spans.with_endpoint(base.clone());
                metrics = metrics.with_endpoint(base.clone());
            }
            (spans.build().map_err(err)?, metrics.build().map_err(err)?)
        }
        _ => {
            let client = std::sync::Arc::new(otlp_http_client()?);
            let mut spans = SpanExporter::builder()
                .with_http()
                .with_shared_http_client(client.clone())
                .with_protocol(Protocol::HttpBinary);
            let mut metrics = MetricExporter::builder()
                .with_http()
                .with_shared_http_client(client)
                .with_protocol(Protocol::HttpBinary);
            if let Some(base) = &base {
                spans = spans.with_endpoint(format!("{base}/v1/traces"));
                metrics = metrics.with_endpoint(format!("{base}/v1/metrics"));
            }
            (spans.build().map_err(err)?, metrics.build().map_err(err)?)
        }
    })
}

/// The OTLP/HTTP exporters' client, with the gateway's TLS (`tls::client_config`:
/// system roots, the explicit crypto provider). Blocking, as the batch
/// exporters run on threads of their own; built on a thread of its own, as a
/// blocking client cannot be built inside the async runtime. Its request
/// timeout is `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds), as the exporter's
/// own client would have it.
fn otlp_http_client() -> Result<reqwest::blocking::Client, TelemetryError> {
    let tls = client_config(&[], None, Alpn::Http2OrHttp1)
        .map_err(|e| TelemetryError::Exporter(format!("OTLP TLS: {e}")))?;
    let timeout = std::env::var(opentelemetry_otlp::OTEL_EXPORTER_OTLP_TIMEOUT)
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(opentelemetry_otlp::OTEL_EXPORTER_OTLP_TIMEOUT_DEFAULT);
    std::thread::spawn(move || {
        reqwest::blocking::Client::builder()
            .timeout(timeout)
            .tls_backend_preconfigured(tls)
            .build()
    })
    .join()
    .map_err(|_| TelemetryError::Exporter("building the OTLP HTTP client panicked".into()))?
    .map_err(|e| TelemetryError::Exporter(format!("OTLP HTTP client: {e}")))
}

/// Installs the global log subscriber only: text logs, no export (for the
/// command-line tools).
pub fn init_logs(default_filter: &str) {
    install_subscriber(LogFormat::Text, default_filter, None);
}

/// The log filter: `RUST_LOG` (`LEVEL` and `TARGET=LEVEL` directives,
/// comma-separated), else `default_filter`; and why `RUST_LOG` was not
/// used, when it is set but is not such a filter. `Targets`, not
/// `EnvFilter`: its span and field directives need a regex engine, half a
/// megabyte of the binary's code, compiled at every start.
fn log_filter(default_filter: &str) -> (Targets, Option<String>) {
    let fallback = || default_filter.parse().unwrap_or_default();
    match std::env::var("RUST_LOG") {
        Ok(text) if !text.trim().is_empty() => match text.parse() {
            Ok(filter) => (filter, None),
            Err(e) => (
                fallback(),
                Some(format!(
                    "RUST_LOG is not a filter ({e}); logging at {default_filter}"
                )),
            ),
        },
        _ => (fallback(), None),
    }
}

fn install_subscriber(format: LogFormat, default_filter: &str, tracer: Option<&SdkTracerProvider>) {
    let (filter, refused) = log_filter(default_filter);
    // Spans always carry the gateway's own debug events (token-store reads and
    // the like), whatever RUST_LOG keeps out of the log lines.
    let otel = tracer.map(|t| {
        let events = Targets::new()
            .with_default(Level::INFO)
            .with_target("dcr_gateway", Level::DEBUG);
        tracing_opentelemetry::layer()
            .with_tracer(t.tracer("dcr-gateway"))
            .with_filter(events)
    });
    let _ = tracing_subscriber::registry()
        .with(LogLayer::new(format).with_filter(filter))
        .with(otel)
        .try_init();
    if let Some(why) = refused {
        tracing::warn!("{why}");
    }
}

/// Installs the global log subscriber and, when configured, OTLP export.
/// `default_filter` applies when `RUST_LOG` is unset.
pub fn init(config: &TelemetryConfig, default_filter: &str) -> Result<Telemetry, TelemetryError> {
    let protocol = protocol(config)?;
    let resource = resource(config);
    let (tracer, metrics) = match protocol {
        Some(protocol) => {
            let (spans, metric_exporter) = exporters(protocol, config.otlp_endpoint.as_deref())?;
            let tracer = SdkTracerProvider::builder()
                .with_resource(resource.clone())
                .with_batch_exporter(spans)
                .build();
            (Some(tracer), Metrics::new(Some(metric_exporter), resource))
        }
        None => (None, Metrics::new(None, resource)),
    };
    install_subscriber(config.log_format, default_filter, tracer.as_ref());
    if let Some(protocol) = protocol {
        tracing::info!(?protocol, "exporting traces and metrics over OTLP");
    }
    Ok(Telemetry { tracer, metrics })
}
