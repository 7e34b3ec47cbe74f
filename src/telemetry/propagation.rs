//! W3C trace context and baggage: read from gRPC metadata, written into
//! upstream HTTP headers, so the authorization server sees the caller's trace.

use std::sync::OnceLock;

use http::HeaderMap;
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use tonic::metadata::MetadataMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// `traceparent`/`tracestate` plus `baggage`, independent of global state so
/// propagation works whether or not traces are exported.
fn propagator() -> &'static TextMapCompositePropagator {
    static PROPAGATOR: OnceLock<TextMapCompositePropagator> = OnceLock::new();
    PROPAGATOR.get_or_init(|| {
        TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ])
    })
}

struct MetadataExtractor<'a>(&'a MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

/// The caller's trace context from gRPC metadata (empty when it sent none).
pub fn extract(metadata: &MetadataMap) -> Context {
    propagator().extract(&MetadataExtractor(metadata))
}

/// Writes the current span's context (or, when traces are off, the caller's
/// `fallback` context) into upstream request headers.
pub fn inject(fallback: &Context, headers: &mut HeaderMap) {
    let current = tracing::Span::current().context();
    let cx = if current.span().span_context().is_valid() {
        &current
    } else {
        fallback
    };
    propagator().inject_context(cx, &mut opentelemetry_http::HeaderInjector(headers));
}
