//! Latency histograms, all with the same bucket bounds, so that every
//! latency the gateway reports can be read against the others.

use opentelemetry::metrics::{Histogram, Meter};

/// Bucket bounds, in seconds, for every latency histogram.
const LATENCY_BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram in seconds.
pub fn histogram(meter: &Meter, name: &'static str, description: &'static str) -> Histogram<f64> {
    meter
        .f64_histogram(name)
        .with_unit("s")
        .with_description(description)
        .with_boundaries(LATENCY_BOUNDS.to_vec())
        .build()
}
