//! The processes under test: the dev upstream, the gateway, and two reference
//! servers this binary runs as child processes of itself (`--serve echo` and
//! `--serve minimal`).

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use dcr_gateway::api::{Admission, Custody, DcrService, GatewayService};
use dcr_gateway::config::{
    DEFAULT_MAX_CONCURRENT_CALLS, DEFAULT_MAX_DEADLINE, DEFAULT_MAX_DETACHED,
};
use dcr_gateway::dcr::{Client, ClientMetadata, DcrError, DcrRequest, DcrResponse};
use dcr_gateway::pb::v1::dynamic_client_registration_server::DynamicClientRegistrationServer;
use dcr_gateway::telemetry::Metrics;
use dcr_gateway::upstream::{
    Endpoints, HttpUpstream, Profile, RegistrationEndpoint, UpstreamConfig, http_client,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;
use tower::util::BoxCloneSyncService;

/// A server process and its address.
pub struct Proc {
    /// Killed when dropped.
    _child: Child,
    pub addr: String,
    pub pid: u32,
}

impl Proc {
    /// Kills the process and waits until it is gone (its ports are free).
    pub async fn kill(mut self) {
        let _ = self._child.kill().await;
    }
}

/// Spawns `program args` and waits for a line containing `marker ADDR`.
pub async fn spawn(program: &str, args: &[&str], env: &[(&str, &str)], marker: &str) -> Proc {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let pid = child.id().unwrap_or_default();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = tokio::select! {
            l = err.next_line() => l,
            l = out.next_line() => l,
        };
        match line {
            Ok(Some(line)) => {
                if let Some(rest) = line.split(marker).nth(1) {
                    let addr = rest
                        .trim()
                        .split(|c: char| c == '"' || c.is_whitespace())
                        .next()
                        .unwrap_or_default();
                    break addr
                        .trim_start_matches("http://")
                        .trim_end_matches(':')
                        .to_owned();
                }
            }
            _ => panic!("{program} exited before printing {marker:?}"),
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = err.next_line().await {} });
    tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
    Proc {
        _child: child,
        addr,
        pid,
    }
}

/// A fixed client, the echo service's every answer.
fn canned() -> Client {
    Client {
        client_id: "shark_dcr_echo_echo_echo_echo_e".into(),
        client_secret: Some("0".repeat(64).into()),
        registration_access_token: Some("1".repeat(64).into()),
        registration_client_uri: "http://127.0.0.1/oauth/register/shark_dcr_echo_echo_echo_echo_e"
            .into(),
        client_id_issued_at: Some(1_765_000_000),
        metadata: ClientMetadata {
            client_name: Some("echo".into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Runs a reference server until killed: `echo` answers every RPC at once;
/// `minimal` is the gateway's gRPC edge straight over its HTTP transport,
/// with no middleware at all.
pub async fn serve_reference(kind: &str, upstream: Option<String>) {
    let stack: GatewayService = match kind {
        "echo" => BoxCloneSyncService::new(tower::service_fn(|req: DcrRequest| async move {
            Ok::<_, DcrError>(match req.operation() {
                dcr_gateway::dcr::Operation::Delete => DcrResponse::Deleted,
                _ => DcrResponse::Client(Box::new(canned())),
            })
        })),
        _ => {
            let base: url::Url = upstream.expect("--upstream").parse().expect("upstream URL");
            let endpoints = Endpoints {
                registration: RegistrationEndpoint::new(base.join("oauth/register").expect("URL")),
                base,
                allowed_origins: Vec::new(),
            };
            let config = dcr_gateway::config::RawConfig {
                dev_upstream: Some(true),
                ..Default::default()
            }
            .validate()
            .expect("defaults")
            .http;
            let upstream: UpstreamConfig = config;
            let client = http_client(&upstream, &endpoints.base).expect("HTTP client");
            let http = HttpUpstream::new(
                client,
                Profile::SharkAuth {
                    use_client_uri: false,
                },
                endpoints,
                upstream,
                Metrics::local(),
            );
            BoxCloneSyncService::new(http)
        }
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    println!(
        "reference listening on {}",
        listener.local_addr().expect("address")
    );
    let admission = Admission {
        calls: Arc::new(Semaphore::new(DEFAULT_MAX_CONCURRENT_CALLS)),
        max_deadline: DEFAULT_MAX_DEADLINE,
    };
    let custody = Custody {
        tails: Arc::new(Semaphore::new(DEFAULT_MAX_DETACHED)),
        reads_may_rotate: false,
    };
    let service = DcrService::new(
        stack,
        Duration::from_secs(30),
        None,
        Metrics::local(),
        admission,
        custody,
    );
    tonic::transport::Server::builder()
        .add_service(DynamicClientRegistrationServer::new(service))
        .serve_with_incoming(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
        )
        .await
        .expect("serve");
}
