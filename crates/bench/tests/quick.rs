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

/// Runs `dcr-bench ARGS --out OUT --gateway GATEWAY`, which must succeed.
async fn run_bench(args: &[&str], out: &std::path::Path) {
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_dcr-bench"))
        .args(args)
        .arg("--out")
        .arg(out)
        .arg("--gateway")
        .arg(gateway_binary())
        .env_remove("RUST_LOG")
        // The gateways the benchmark starts get only its settings: an
        // operator's environment (a keyring, a store) must not reach them.
        .env("DCR_GATEWAY_TOKEN_STORE_KEYS", "not-a-keyring")
        .env("DCR_GATEWAY_TOKEN_STORE", "redis")
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success(), "dcr-bench {args:?} failed");
}

/// Runs `dcr-bench ARGS` ([`run_bench`]) and returns the report `file` it
/// wrote.
async fn bench(args: &[&str], file: &str) -> String {
    let out = tempfile::tempdir().unwrap();
    run_bench(args, out.path()).await;
    std::fs::read_to_string(out.path().join(file)).unwrap()
}

#[tokio::test]
async fn quick_benchmark_writes_a_well_formed_report() {
    let out = tempfile::tempdir().unwrap();
    let out = out.path();
    run_bench(&["--quick"], out).await;
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    let paths = [
        "a: direct HTTP",
        "b: gRPC echo",
        "c: minimal translation",
        "d: gateway, memory store",
        "d-file: gateway, default (file store)",
        "d+otel: gateway, memory, OTLP on",
    ];
    for path in paths {
        let rows: Vec<&str> = md
            .lines()
            .filter(|l| l.starts_with(&format!("| {path} |")))
            .collect();
        assert_eq!(
            rows.len(),
            4,
            "{path}: one row per workload and concurrency:\n{md}"
        );
        for row in rows {
            assert_eq!(row.matches('|').count(), 9, "{row}");
            let errors = row.trim_end_matches(" |").rsplit("| ").next().unwrap();
            assert_eq!(errors, "0", "{path} had errors: {row}");
        }
    }
    for heading in [
        "### Targets",
        "### mixed, many clients, concurrency 16",
        "### GetClient, one client, concurrency 1",
        "start to health SERVING",
        "RSS idle",
        "RSS peak",
        "binary size",
    ] {
        assert!(md.contains(heading), "the report lacks {heading:?}");
    }
    // Every target row has a measurement and a verdict; both stores and both
    // workloads are judged.
    let targets: Vec<&str> = md
        .lines()
        .skip_while(|l| !l.starts_with("### Targets"))
        .skip(4)
        .take_while(|l| l.starts_with('|'))
        .collect();
    for row in &targets {
        let verdict = row.trim_end_matches(" |").rsplit("| ").next().unwrap();
        assert!(
            ["met", "within noise", "not met"].contains(&verdict),
            "{row}"
        );
    }
    for config in ["memory store", "default (file store)"] {
        for workload in ["mixed, many clients", "GetClient, one client"] {
            let judged = targets
                .iter()
                .filter(|r| r.contains(&format!("{config}, {workload}")))
                .count();
            // CPU at c=1 and 16, p50 at c=1, calls/s at c=16.
            assert_eq!(judged, 4, "{config}, {workload}:\n{md}");
        }
        assert!(
            targets
                .iter()
                .any(|r| r.contains(&format!("{config}: RSS idle")))
        );
        assert!(
            targets
                .iter()
                .any(|r| r.contains(&format!("{config}: RSS peak")))
        );
    }
    let svg = std::fs::read_to_string(out.join("latency.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(
        svg.matches("<polyline").count(),
        paths.len(),
        "one CDF per path"
    );
}

#[tokio::test]
async fn managed_names_benchmark_writes_its_table() {
    let md = bench(&["--managed-names", "--quick"], "names.md").await;
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| managed"))
        .collect();
    assert_eq!(rows.len(), 3, "one row per number of names:\n{md}");
    for (row, names) in rows.iter().zip(["0", "100", "400"]) {
        assert!(row.starts_with(&format!("| {names} |")), "{row}");
        assert_eq!(row.matches('|').count(), 7, "{row}");
    }
    assert!(md.contains("p50 with 400 names / with none:"), "{md}");
}

#[tokio::test]
async fn scaling_benchmark_writes_both_tables_for_both_stores() {
    let md = bench(&["--scaling", "--quick"], "scaling.md").await;
    for (what, sizes) in [
        ("stored tokens", ["100", "1000", "10000"]),
        ("managed names", ["1", "10", "100"]),
    ] {
        let table: Vec<&str> = md
            .lines()
            .skip_while(|l| !l.contains(&format!("as the {what} grow")))
            .skip(4)
            .take_while(|l| l.starts_with('|'))
            .collect();
        assert_eq!(table.len(), 6, "two stores, three sizes:\n{md}");
        for (row, (store, size)) in table.iter().zip(
            ["memory", "default (file)"]
                .iter()
                .flat_map(|s| sizes.iter().map(move |n| (s, n))),
        ) {
            assert!(row.starts_with(&format!("| {store} | {size} |")), "{row}");
            // CPU per call, calls/s and RSS are measured, not zero.
            let figures: Vec<f64> = row
                .trim_matches('|')
                .split(" | ")
                .skip(2)
                .map(|c| c.trim().parse().unwrap())
                .collect();
            assert!(figures.iter().all(|&f| f > 0.0), "{row}");
        }
    }
}

#[tokio::test]
async fn access_tokens_benchmark_writes_its_table_and_makes_no_upstream_call() {
    let md = bench(&["--access-tokens", "--quick"], "tokens.md").await;
    assert!(
        md.contains("Token requests to the server during the run: 0."),
        "a cached token made an upstream call:\n{md}"
    );
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| 1 |")).collect();
    assert_eq!(rows.len(), 1, "{md}");
    assert_eq!(rows[0].matches('|').count(), 9, "{}", rows[0]);
    assert!(rows[0].ends_with("| 0 |"), "no call failed: {}", rows[0]);
}

#[tokio::test]
async fn redis_benchmark_compares_one_node_a_cluster_and_the_replica_wait() {
    let md = bench(&["--redis", "--quick"], "redis.md").await;
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| 1 |")).collect();
    assert_eq!(rows.len(), 3, "one row per store:\n{md}");
    for row in &rows {
        assert_eq!(row.matches('|').count(), 9, "{row}");
        assert!(row.ends_with("| 0 |"), "no call failed: {row}");
    }
    assert!(rows[2].contains("wait for 1 replica"), "{md}");
}
