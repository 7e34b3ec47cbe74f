//! The server span of one RPC, with the OpenTelemetry RPC conventions.

use opentelemetry::Context;

use opentelemetry::trace::TraceContextExt;
use tower::util::rng::{HasherRng, Rng};
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// A server span for the RPC `method` (span name `name`), child of the
/// caller's context `parent`.
pub fn rpc_span(
    method: &'static str,
    name: &'static str,
    client_id: &str,
    parent: &Context,
) -> Span {
    let span = tracing::info_span!(
        "rpc",
        otel.name = name,
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system = "grpc",
        rpc.service = "dcr.v1.DynamicClientRegistration",
        rpc.method = method,
        rpc.grpc.status_code = Empty,
        dcr.client_id = client_id,
        trace_id = Empty,
        span_id = Empty,
    );
    let _ = span.set_parent(parent.clone());
    record_ids(&span, parent);
    span
}

/// Records `trace_id` and `span_id` on `span` so every log line inside it
/// carries them: the exported span's ids when traces are on, otherwise the
/// caller's trace id (or a fresh one) and a fresh span id.
pub fn record_ids(span: &Span, parent: &Context) {
    let cx = span.context();
    let own = cx.span().span_context().clone();
    let (trace_id, span_id) = if own.is_valid() {
        (own.trace_id().to_string(), own.span_id().to_string())
    } else {
        let mut rng = HasherRng::new();
        let caller = parent.span().span_context().clone();
        let trace_id = match caller.is_valid() {
            true => caller.trace_id().to_string(),
            false => format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64()),
        };
        (trace_id, format!("{:016x}", rng.next_u64()))
    };
    span.record("trace_id", trace_id.as_str());
    span.record("span_id", span_id.as_str());
}
