//! The README's two quick-start commands, parsed from the README so they
//! cannot drift: the first is run as written, on free ports instead of its
//! default gRPC and admin ones (which a reader's own quick-start gateway may
//! hold: the test holds them too), and must serve gRPC health; the second
//! must be what `.ci/run` runs (it is this very suite, so it is not run from
//! inside it).

use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use dcr_gateway::config::{DEFAULT_ADMIN_LISTEN, DEFAULT_LISTEN};
use tokio::io::{AsyncBufReadExt, BufReader};

const README: &str = include_str!("../README.md");
const CI: &str = include_str!("../.ci/run");
/// What `cargo test` sets in its tests' environment (beside `CARGO` and
/// `OUT_DIR`), which a person's shell does not have.
const SET_FOR_TESTS: [&str; 6] = [
    "CARGO_MANIFEST_",
    "CARGO_PKG_",
    "CARGO_CRATE_",
    "CARGO_BIN_",
    "CARGO_TARGET_TMPDIR",
    "CARGO_PRIMARY_PACKAGE",
];
/// Longest the first command may take, its release build included.
const BUILD_AND_START: Duration = Duration::from_secs(1500);

/// The commands of the quick start's code block, comments removed.
fn quick_start() -> Vec<String> {
    let start = README
        .find("## Quick start")
        .expect("a Quick start section");
    README[start..]
        .lines()
        .skip_while(|l| !l.starts_with("```"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .map(|l| l.split('#').next().unwrap_or_default().trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Stops the command's whole process group (cargo and the gateway it runs).
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.0)])
            .status();
    }
}

#[tokio::test]
async fn the_quick_start_runs_as_written() {
    let commands = quick_start();
    assert_eq!(
        commands.len(),
        2,
        "the quick start has two commands: {commands:?}"
    );
    assert!(
        CI.lines()
            .any(|l| l.trim().starts_with(commands[1].as_str())),
        ".ci/run does not run the README's test command {:?}",
        commands[1]
    );

    // The documented address is the default one; the run takes free ports
    // for gRPC and the admin listener while their defaults are held (by this
    // test, or by a gateway the reader left running), so the suite never
    // depends on a fixed port.
    assert!(
        README.contains(&format!("the gateway on {DEFAULT_LISTEN}")),
        "the README's quick start says where the gateway listens"
    );
    let _held = [DEFAULT_LISTEN, DEFAULT_ADMIN_LISTEN].map(std::net::TcpListener::bind);
    let command = format!(
        "{} --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0",
        commands[0]
    );

    let mut child = std::process::Command::new("sh");
    // Run as a person at a shell would: without what `cargo test` sets for
    // its tests. (A build script reruns when CARGO_MANIFEST_DIR appears,
    // so with it every run rebuilt ring, and the quick start's next run
    // rebuilt it again.)
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        let set_for_tests = name_text == "CARGO"
            || name_text == "OUT_DIR"
            || SET_FOR_TESTS.iter().any(|p| name_text.starts_with(p));
        if set_for_tests {
            child.env_remove(&name);
        }
    }
    child
        .args(["-c", &command])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = tokio::process::Command::from(child)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let _group = Group(child.id().unwrap());
    let started = std::time::Instant::now();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let listening = tokio::time::timeout(BUILD_AND_START, async {
        let mut seen = String::new();
        let mut compiled = 0;
        while let Ok(Some(line)) = lines.next_line().await {
            compiled += usize::from(line.trim_start().starts_with("Compiling "));
            if let Some(addr) = line.split("gRPC listening on ").nth(1) {
                match compiled {
                    0 => eprintln!("the quick start reused the current release build"),
                    n => eprintln!(
                        "the quick start built the release binary ({n} crates compiled) in {} s",
                        started.elapsed().as_secs()
                    ),
                }
                return addr
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        panic!("{:?} exited before serving:\n{seen}", commands[0]);
    })
    .await
    .expect("the first command serves within its time");
    let channel = tonic::transport::Channel::from_shared(format!("http://{listening}"))
        .expect("the logged address")
        .connect()
        .await
        .expect("the quick-start gateway accepts connections");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "dcr.v1.DynamicClientRegistration".into(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}
