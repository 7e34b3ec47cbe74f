//! The log layer: one line per event on standard error, text or JSON, each
//! carrying the fields of the spans it happened in.
//!
//! Unlike `tracing_subscriber::fmt`, which formats a span's fields when the
//! span opens so that any later line can reuse them, this layer keeps them raw
//! ([`Fields`]) and formats them only for a line that is written: a call that
//! logs nothing (every successful RPC at the default level) pays for copying
//! its span's values, not for rendering them. Each line is built in one buffer
//! and written with one `write`, so lines from concurrent calls never mix.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::LogFormat;
use super::log_fields::{Fields, Style, escape_controls, json_string};

/// Writes log lines to standard error in `format`.
pub struct LogLayer {
    style: Style,
}

impl LogLayer {
    /// A layer writing `format` lines.
    pub fn new(format: LogFormat) -> Self {
        let style = match format {
            LogFormat::Text => Style::Text,
            LogFormat::Json => Style::Json,
        };
        Self { style }
    }

    /// The whole line for `event`, newline included.
    fn line<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>) -> String
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields.take_str("message").unwrap_or_default();
        let meta = event.metadata();
        let mut out = String::with_capacity(256);
        match self.style {
            Style::Text => {
                timestamp(SystemTime::now(), &mut out);
                out.push_str(&format!(" {:>5} ", meta.level().as_str()));
                if let Some(scope) = ctx.event_scope(event) {
                    for span in scope.from_root() {
                        out.push_str(span.name());
                        let ext = span.extensions();
                        if let Some(f) = ext.get::<Fields>().filter(|f| !f.is_empty()) {
                            out.push('{');
                            f.write(Style::Text, &mut out);
                            out.push('}');
                        }
                        out.push_str(": ");
                    }
                }
                out.push_str(meta.target());
                out.push_str(": ");
                escape_controls(&message, &mut out);
                if !fields.is_empty() {
                    out.push(' ');
                    fields.write(Style::Text, &mut out);
                }
            }
            Style::Json => {
                out.push_str("{\"timestamp\":\"");
                timestamp(SystemTime::now(), &mut out);
                out.push_str("\",\"level\":\"");
                out.push_str(meta.level().as_str());
                out.push_str("\",\"fields\":{\"message\":");
                json_string(&message, &mut out);
                if !fields.is_empty() {
                    out.push(',');
                    fields.write(Style::Json, &mut out);
                }
                out.push_str("},\"target\":");
                json_string(meta.target(), &mut out);
                if let Some(scope) = ctx.event_scope(event) {
                    // `span` is the innermost, `spans` every one from the
                    // root, so a line in an upstream attempt still carries
                    // the call's trace id.
                    let mut spans = Vec::new();
                    for span in scope.from_root() {
                        let mut one = String::from("{");
                        let ext = span.extensions();
                        if let Some(f) = ext.get::<Fields>().filter(|f| !f.is_empty()) {
                            f.write(Style::Json, &mut one);
                            one.push(',');
                        }
                        one.push_str("\"name\":");
                        json_string(span.name(), &mut one);
                        one.push('}');
                        spans.push(one);
                    }
                    if let Some(leaf) = spans.last() {
                        out.push_str(",\"span\":");
                        out.push_str(leaf);
                        out.push_str(",\"spans\":[");
                        out.push_str(&spans.join(","));
                        out.push(']');
                    }
                }
                out.push('}');
            }
        }
        out.push('\n');
        out
    }
}

impl<S> tracing_subscriber::Layer<S> for LogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut fields = Fields::default();
            attrs.record(&mut fields);
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let line = self.line(event, &ctx);
        // A log line that cannot be written is dropped: there is nowhere left
        // to report it.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// `now` as RFC 3339 in UTC with microseconds: `2026-12-02T00:50:09.123456Z`.
fn timestamp(now: SystemTime, out: &mut String) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    out.push_str(&format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_micros()
    ));
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let mut out = String::new();
        let t = UNIX_EPOCH + Duration::from_micros(1_795_740_609_123_456);
        timestamp(t, &mut out);
        assert_eq!(out, "2026-11-27T00:50:09.123456Z");
        let mut out = String::new();
        timestamp(UNIX_EPOCH + Duration::from_secs(951_782_400), &mut out);
        assert_eq!(out, "2000-02-29T00:00:00.000000Z", "a leap day");
    }

    /// Lines written under `format`, by a layer that captures them.
    fn lines(format: LogFormat, body: impl FnOnce()) -> Vec<String> {
        struct Capture(LogLayer, Arc<Mutex<Vec<String>>>);
        impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Capture {
            fn on_new_span(&self, a: &Attributes<'_>, id: &Id, cx: Context<'_, S>) {
                self.0.on_new_span(a, id, cx)
            }
            fn on_record(&self, id: &Id, v: &Record<'_>, cx: Context<'_, S>) {
                self.0.on_record(id, v, cx)
            }
            fn on_event(&self, e: &Event<'_>, cx: Context<'_, S>) {
                self.1.lock().unwrap().push(self.0.line(e, &cx));
            }
        }
        let out = Arc::new(Mutex::new(Vec::new()));
        let layer = Capture(LogLayer::new(format), out.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, body);
        Arc::try_unwrap(out).ok().unwrap().into_inner().unwrap()
    }

    fn in_a_call() {
        let span = tracing::info_span!(
            "rpc",
            rpc.method = "GetClient",
            trace_id = tracing::field::Empty
        );
        span.record("trace_id", "81ec");
        let _g = span.enter();
        let inner = tracing::info_span!("upstream", attempt = 2u64);
        inner.in_scope(|| tracing::info!(code = ?tonic::Code::Unavailable, "retrying\nforged"));
    }

    #[test]
    fn text_lines_carry_every_span_in_scope() {
        let l = lines(LogFormat::Text, in_a_call);
        assert_eq!(l.len(), 1);
        let line = &l[0];
        assert!(
            line.ends_with('\n') && line.matches('\n').count() == 1,
            "{line:?}"
        );
        let rest = line.split_once(" INFO ").expect("a level").1;
        assert_eq!(
            rest,
            "rpc{rpc.method=\"GetClient\" trace_id=\"81ec\"}: upstream{attempt=2}: \
             dcr_gateway::telemetry::log_layer::tests: retrying\\nforged code=Unavailable\n"
        );
    }

    #[test]
    fn json_lines_are_objects_with_the_current_span() {
        let l = lines(LogFormat::Json, in_a_call);
        let v: serde_json::Value = serde_json::from_str(&l[0]).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["fields"]["message"], "retrying\nforged");
        assert_eq!(v["fields"]["code"], "Unavailable");
        assert_eq!(v["span"]["name"], "upstream");
        assert_eq!(v["span"]["attempt"], 2);
        assert_eq!(v["spans"][0]["name"], "rpc");
        assert_eq!(v["spans"][0]["trace_id"], "81ec");
        assert_eq!(v["spans"][1], v["span"]);
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
