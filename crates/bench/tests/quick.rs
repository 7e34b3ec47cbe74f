//! `dcr-bench --quick` runs end to end and writes a well-formed report. It
//! checks that the benchmark works, never how fast anything is.

use std::path::{Path, PathBuf};

/// The gateway binary the benchmark runs: next to `dcr-bench`, where
/// `cargo test --workspace` has built it; built here when this crate's tests
/// run on their own.
fn gateway_binary() -> PathBuf {
    let exe = Path::new(env!("CARGO_BIN_EXE_dcr-bench")).with_file_name("dcr-gateway");
    if !exe.is_file() {
        let status = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "--locked",
                "-p",
                "dcr-gateway",
                "--bin",
                "dcr-gateway",
            ])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo build -p dcr-gateway failed");
    }
    assert!(exe.is_file(), "no gateway binary at {}", exe.display());
    exe
}

#[tokio::test]
async fn quick_benchmark_writes_a_well_formed_report() {
    let out = tempfile::tempdir().unwrap();
    let out = out.path();
    let gateway = gateway_binary();
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_dcr-bench"))
        .args(["--quick", "--out", out.to_str().unwrap()])
        .arg("--gateway")
        .arg(&gateway)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    for path in [
        "a: direct HTTP",
        "b: gRPC echo",
        "c: minimal translation",
        "d: gateway",
        "d+otel: gateway, OTLP on",
    ] {
        let rows: Vec<&str> = md
            .lines()
            .filter(|l| l.starts_with(&format!("| {path} |")))
            .collect();
        assert_eq!(
            rows.len(),
            4,
            "{path}: one row per mix and concurrency:\n{md}"
        );
        for row in rows {
            assert_eq!(row.matches('|').count(), 9, "{row}");
            let errors = row.trim_end_matches(" |").rsplit("| ").next().unwrap();
            assert_eq!(errors, "0", "{path} had errors: {row}");
        }
    }
    for heading in [
        "### Ratios (mixed)",
        "start to health SERVING",
        "RSS idle",
        "RSS peak",
        "binary size",
    ] {
        assert!(md.contains(heading), "the report lacks {heading:?}");
    }
    let svg = std::fs::read_to_string(out.join("latency.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 5, "one CDF per path");
}
