//! Renders collected OpenTelemetry metrics in the Prometheus text format.
//!
//! Names: dots become underscores; histograms in seconds get `_seconds`;
//! monotonic sums get `_total`; non-monotonic sums are gauges.

use std::fmt::Write as _;

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};

fn labels<'a>(attrs: impl Iterator<Item = &'a KeyValue>, extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = attrs
        .map(|kv| {
            format!(
                "{}=\"{}\"",
                kv.key.as_str().replace('.', "_"),
                escape(&kv.value.as_str())
            )
        })
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A metric value as Prometheus prints it.
trait Number: Copy {
    fn f(self) -> f64;
}

impl Number for u64 {
    fn f(self) -> f64 {
        self as f64
    }
}

impl Number for i64 {
    fn f(self) -> f64 {
        self as f64
    }
}

impl Number for f64 {
    fn f(self) -> f64 {
        self
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {}", help.replace('\n', " "));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes one metric's data under `base`.
fn write<T: Number>(out: &mut String, base: &str, unit: &str, help: &str, data: &MetricData<T>) {
    match data {
        MetricData::Sum(sum) if sum.is_monotonic() => {
            let name = format!("{base}_total");
            header(out, &name, help, "counter");
            for p in sum.data_points() {
                let _ = writeln!(
                    out,
                    "{name}{} {}",
                    labels(p.attributes(), None),
                    p.value().f()
                );
            }
        }
        MetricData::Sum(sum) => {
            header(out, base, help, "gauge");
            for p in sum.data_points() {
                let _ = writeln!(
                    out,
                    "{base}{} {}",
                    labels(p.attributes(), None),
                    p.value().f()
                );
            }
        }
        MetricData::Gauge(gauge) => {
            header(out, base, help, "gauge");
            for p in gauge.data_points() {
                let _ = writeln!(
                    out,
                    "{base}{} {}",
                    labels(p.attributes(), None),
                    p.value().f()
                );
            }
        }
        MetricData::Histogram(hist) => {
            let name = if unit == "s" {
                format!("{base}_seconds")
            } else {
                base.to_owned()
            };
            header(out, &name, help, "histogram");
            for p in hist.data_points() {
                let mut cumulative = 0;
                let bounds: Vec<f64> = p.bounds().collect();
                for (i, count) in p.bucket_counts().enumerate() {
                    cumulative += count;
                    let le = bounds.get(i).map_or("+Inf".to_owned(), |b| b.to_string());
                    let _ = writeln!(
                        out,
                        "{name}_bucket{} {cumulative}",
                        labels(p.attributes(), Some(("le", le)))
                    );
                }
                let _ = writeln!(
                    out,
                    "{name}_sum{} {}",
                    labels(p.attributes(), None),
                    p.sum().f()
                );
                let _ = writeln!(
                    out,
                    "{name}_count{} {}",
                    labels(p.attributes(), None),
                    p.count()
                );
            }
        }
        MetricData::ExponentialHistogram(_) => {}
    }
}

/// The whole collection as Prometheus text.
pub fn render(rm: &ResourceMetrics) -> String {
    let mut out = String::new();
    for scope in rm.scope_metrics() {
        for metric in scope.metrics() {
            let base = metric.name().replace('.', "_");
            let (unit, help) = (metric.unit(), metric.description());
            match metric.data() {
                AggregatedMetrics::U64(d) => write(&mut out, &base, unit, help, d),
                AggregatedMetrics::I64(d) => write(&mut out, &base, unit, help, d),
                AggregatedMetrics::F64(d) => write(&mut out, &base, unit, help, d),
            }
        }
    }
    out
}
