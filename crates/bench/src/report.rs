//! Statistics, the Markdown report and the SVG latency chart.

use std::fmt::Write as _;

use crate::load::Sample;

/// One measurement, summarised.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub throughput: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub cpu_us_per_call: f64,
    pub errors: u64,
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Summarises a sample; `cpu_seconds` is the server's CPU time during it.
pub fn stats(sample: &mut Sample, cpu_seconds: f64) -> Stats {
    sample.latencies_us.sort_unstable();
    let l = &sample.latencies_us;
    let calls = l.len().max(1) as f64;
    Stats {
        throughput: l.len() as f64 / sample.elapsed.as_secs_f64(),
        p50_ms: percentile(l, 0.5),
        p90_ms: percentile(l, 0.9),
        p99_ms: percentile(l, 0.99),
        p999_ms: percentile(l, 0.999),
        cpu_us_per_call: cpu_seconds * 1e6 / calls,
        errors: sample.errors,
    }
}

/// The median of each field over repetitions, and the throughput spread.
pub fn median(reps: &[Stats]) -> (Stats, f64, f64) {
    let pick = |f: fn(&Stats) -> f64| {
        let mut v: Vec<f64> = reps.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    let tp: Vec<f64> = reps.iter().map(|s| s.throughput).collect();
    let (lo, hi) = tp
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), &t| (lo.min(t), hi.max(t)));
    let stats = Stats {
        throughput: pick(|s| s.throughput),
        p50_ms: pick(|s| s.p50_ms),
        p90_ms: pick(|s| s.p90_ms),
        p99_ms: pick(|s| s.p99_ms),
        p999_ms: pick(|s| s.p999_ms),
        cpu_us_per_call: pick(|s| s.cpu_us_per_call),
        errors: reps.iter().map(|s| s.errors).sum(),
    };
    (stats, lo, hi)
}

/// A Markdown table row for one path.
pub fn row(out: &mut String, path: &str, reps: &[Stats]) {
    let (s, lo, hi) = median(reps);
    let _ = writeln!(
        out,
        "| {path} | {:.0} ({:.0}–{:.0}) | {:.3} | {:.3} | {:.3} | {:.3} | {:.1} | {} |",
        s.throughput, lo, hi, s.p50_ms, s.p90_ms, s.p99_ms, s.p999_ms, s.cpu_us_per_call, s.errors
    );
}

/// The table header.
pub const HEADER: &str = "| path | calls/s (spread) | p50 ms | p90 ms | p99 ms | p99.9 ms | server CPU µs/call | errors |\n|---|---|---|---|---|---|---|---|\n";

/// An SVG chart of latency CDFs, one line per path, log-scale latency axis.
pub fn svg(title: &str, series: &[(&str, Vec<u64>)]) -> String {
    let (w, h, left, bottom) = (760.0, 420.0, 60.0, 40.0);
    let max_us = series
        .iter()
        .filter_map(|(_, l)| l.last())
        .copied()
        .max()
        .unwrap_or(1000)
        .max(10) as f64;
    let min_us = series
        .iter()
        .filter_map(|(_, l)| l.first())
        .copied()
        .min()
        .unwrap_or(1)
        .max(1) as f64;
    let (lmin, lmax) = (min_us.log10(), max_us.log10().max(min_us.log10() + 0.1));
    let x = |us: f64| left + (us.max(1.0).log10() - lmin) / (lmax - lmin) * (w - left - 20.0);
    let y = |q: f64| (h - bottom) - q * (h - bottom - 30.0);
    let colors = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    ];
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{left}\" y=\"18\">{title}</text>\n"
    );
    let _ = writeln!(
        out,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>",
        y(0.0),
        w - 20.0,
        y(0.0)
    );
    let _ = writeln!(
        out,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>",
        y(0.0),
        y(1.0)
    );
    let mut decade = 10f64.powf(lmin.floor());
    while decade <= max_us * 10.0 {
        if decade >= min_us / 10.0 && x(decade) <= w - 20.0 && x(decade) >= left {
            let label = if decade >= 1000.0 {
                format!("{} ms", decade / 1000.0)
            } else {
                format!("{decade} µs")
            };
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
                x(decade),
                h - 20.0
            );
        }
        decade *= 10.0;
    }
    for q in [0.5, 0.9, 0.99] {
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">p{}</text>",
            left - 4.0,
            y(q),
            q * 100.0
        );
    }
    for (i, (name, lat)) in series.iter().enumerate() {
        let color = colors[i % colors.len()];
        let n = lat.len().max(1) as f64;
        let step = (lat.len() / 400).max(1);
        let points: Vec<String> = lat
            .iter()
            .enumerate()
            .step_by(step)
            .map(|(j, &us)| format!("{:.1},{:.1}", x(us as f64), y((j + 1) as f64 / n)))
            .collect();
        let _ = writeln!(
            out,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>",
            points.join(" ")
        );
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" fill=\"{color}\">{name}</text>",
            left + 10.0,
            40.0 + 16.0 * i as f64
        );
    }
    out.push_str("</svg>\n");
    out
}
