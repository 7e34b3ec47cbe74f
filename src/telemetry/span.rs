//! The server span of one RPC, with the OpenTelemetry RPC conventions.

use opentelemetry::Context;

use opentelemetry::trace::TraceContextExt;
use tower::util::rng::{HasherRng, Rng};
use tracing::Span;
use tracing::field::{Empty, display};
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
/// caller's trace id (or a fresh one) and a fresh span id. Recorded as
/// `Display` values, so the hex is written once, into the log layer's own
/// buffer, and no `String` is made for them.
fn record_ids(span: &Span, parent: &Context) {
    let cx = span.context();
    let own = cx.span().span_context().clone();
    if own.is_valid() {
        span.record("trace_id", display(own.trace_id()));
        span.record("span_id", display(own.span_id()));
        return;
    }
    let mut rng = HasherRng::new();
    let caller = parent.span().span_context().clone();
    match caller.is_valid() {
        true => span.record("trace_id", display(caller.trace_id())),
        false => span.record(
            "trace_id",
            display(format_args!(
                "{:016x}{:016x}",
                rng.next_u64(),
                rng.next_u64()
            )),
        ),
    };
    span.record("span_id", display(format_args!("{:016x}", rng.next_u64())));
}
