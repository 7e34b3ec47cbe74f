//! The speed and memory targets, each beside what this run measured and
//! whether it was met. A ratio is taken within each repetition (the gateway's
//! cell over the floor's cell that ran beside it), so machine noise between
//! repetitions moves both sides; the median of those ratios decides, and a
//! target that only some repetitions meet is "within noise".

use std::fmt::Write as _;

use crate::compare::Grid;
use crate::fleet::{DEFAULT, FLOOR, MEMORY};
use crate::load::WORKLOADS;
use crate::report::Stats;

/// What a measurement must be.
#[derive(Clone, Copy)]
enum Goal {
    AtMost(f64),
    AtLeast(f64),
}

impl Goal {
    fn meets(self, x: f64) -> bool {
        match self {
            Goal::AtMost(t) => x <= t,
            Goal::AtLeast(t) => x >= t,
        }
    }

    fn text(self) -> String {
        match self {
            Goal::AtMost(t) => format!("≤ {t:.2}"),
            Goal::AtLeast(t) => format!("≥ {t:.2}"),
        }
    }
}

/// Memory measured for the targets, in MiB.
pub struct MemoryFigures {
    /// Idle, nothing stored: memory store, default store.
    pub idle: [f64; 2],
    /// Peak with `tokens` stored at `concurrency`: memory store, default store.
    pub peak: [f64; 2],
    pub tokens: usize,
    pub concurrency: usize,
}

/// A measure's name and how to read it from a cell.
type Measure = (&'static str, fn(&Stats) -> f64);

const MEASURES: [Measure; 3] = [
    ("server CPU per call", |s| s.cpu_us_per_call),
    ("p50", |s| s.p50_ms),
    ("calls/s", |s| s.throughput),
];

/// One row: the target in words, the ratios of each repetition.
fn ratio_row(out: &mut String, what: String, goal: Goal, ratios: &[f64]) {
    if ratios.is_empty() {
        return;
    }
    let mut sorted = ratios.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let measured = match sorted.len() {
        1 => format!("{median:.2}"),
        _ => format!(
            "{median:.2} ({:.2}–{:.2})",
            sorted[0],
            sorted[sorted.len() - 1]
        ),
    };
    let verdict = if goal.meets(median) {
        "met"
    } else if sorted.iter().any(|&r| goal.meets(r)) {
        "within noise"
    } else {
        "not met"
    };
    let _ = writeln!(out, "| {what} {} | {measured} | {verdict} |", goal.text());
}

fn value_row(out: &mut String, what: String, goal: Goal, value: f64) {
    let verdict = if goal.meets(value) { "met" } else { "not met" };
    let _ = writeln!(
        out,
        "| {what} {} MiB | {value:.1} | {verdict} |",
        goal.text()
    );
}

/// The targets table, in Markdown.
pub fn table(grid: &Grid, memory: &MemoryFigures) -> String {
    let mut out = String::from(
        "### Targets (gateway / floor (c), per repetition)\n\n| target | measured: median (range) | verdict |\n|---|---|---|\n",
    );
    let configs = [(MEMORY, "memory store"), (DEFAULT, "default (file store)")];
    // (measure index, goal, concurrencies): below the floor, in CPU per call,
    // latency alone and throughput under load.
    let goals: [(usize, Goal, &[usize]); 3] = [
        (0, Goal::AtMost(0.90), &[1, 16]),
        (1, Goal::AtMost(0.95), &[1]),
        (2, Goal::AtLeast(1.05), &[16]),
    ];
    for (pi, config) in configs {
        for (wi, workload) in WORKLOADS.iter().enumerate() {
            for &(mi, goal, concurrencies) in &goals {
                let (measure, f) = MEASURES[mi];
                for &c in concurrencies {
                    let (gw, floor) = (grid.cell(wi, c, pi), grid.cell(wi, c, FLOOR));
                    let ratios: Vec<f64> =
                        gw.iter().zip(floor).map(|(g, fl)| f(g) / f(fl)).collect();
                    let what = format!("{config}, {}, c={c}: {measure} d/c", workload.name);
                    ratio_row(&mut out, what, goal, &ratios);
                }
            }
        }
    }
    for (i, config) in ["memory store", "default (file store)"].iter().enumerate() {
        value_row(
            &mut out,
            format!("{config}: RSS idle"),
            Goal::AtMost(10.0),
            memory.idle[i],
        );
        value_row(
            &mut out,
            format!(
                "{config}: RSS peak, {} tokens, c={}",
                memory.tokens, memory.concurrency
            ),
            Goal::AtMost(48.0),
            memory.peak[i],
        );
    }
    out
}
