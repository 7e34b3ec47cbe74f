//! Shared test support: a gateway and a dev upstream on ephemeral loopback ports,
//! a gRPC client, and a scripted HTTP server for answers the dev upstream never
//! gives.
#![allow(dead_code)]

pub mod managed;
pub mod otlp;
pub mod pki;
pub mod process;
pub mod redis;
pub mod redis_ha;
pub mod scripted;

use std::net::SocketAddr;
use std::time::Duration;

use dcr_dev_upstream::DevUpstream;
use dcr_gateway::Gateway;
use dcr_gateway::config::{Config, RawConfig};
use dcr_gateway::pb::v1 as pb;
use dcr_gateway::pb::v1::dynamic_client_registration_client::DynamicClientRegistrationClient;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// The gRPC client every test uses.
pub type Client = DynamicClientRegistrationClient<Channel>;

/// A gateway running in this process on a real loopback socket.
pub struct TestGateway {
    pub addr: SocketAddr,
    /// The admin listener (`/metrics`), when the settings turned it on.
    pub admin: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<()>,
}

impl TestGateway {
    /// Starts a gateway in front of `upstream` with default settings.
    pub async fn start(upstream: &str) -> Self {
        Self::start_with(upstream, RawConfig::default()).await
    }

    /// Starts a gateway in front of `upstream`, with `raw` settings over the
    /// defaults (and the memory token store unless `raw` names another).
    pub async fn start_with(upstream: &str, mut raw: RawConfig) -> Self {
        raw.token_store
            .backend
            .get_or_insert_with(|| "memory".into());
        raw.admin_listen.get_or_insert_with(|| "off".into());
        let raw = RawConfig {
            listen: Some("127.0.0.1:0".into()),
            upstream: Some(upstream.into()),
            ..raw
        };
        Self::start_config(raw.validate().expect("valid test config")).await
    }

    /// Starts a gateway from a full configuration.
    pub async fn start_config(config: Config) -> Self {
        let gateway = Gateway::bind(config).await.expect("gateway binds");
        let addr = gateway.local_addr().expect("bound address");
        let admin = gateway.admin_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            gateway
                .serve(async move {
                    let _ = stopped.await;
                })
                .await
                .expect("gateway serves");
        });
        Self {
            addr,
            admin,
            stop: Some(stop),
            task,
        }
    }

    /// A connected gRPC client.
    pub async fn client(&self) -> Client {
        DynamicClientRegistrationClient::new(channel(self.addr).await)
    }

    /// Sends the shutdown signal (as SIGTERM would).
    pub fn signal_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An empty folder `dcr-<name>-…` under the system's temporary folder, removed
/// when the returned guard is dropped.
pub fn temp_dir(name: &str) -> TempDir {
    TempDir(
        tempfile::Builder::new()
            .prefix(&format!("dcr-{name}-"))
            .tempdir()
            .expect("a temporary folder"),
    )
}

/// A temporary folder, removed with everything in it when dropped; reads as
/// the folder's path.
pub struct TempDir(tempfile::TempDir);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl AsRef<std::path::Path> for TempDir {
    fn as_ref(&self) -> &std::path::Path {
        self.0.path()
    }
}

/// A channel to `addr`, connected before it is returned.
pub async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("gateway accepts connections")
}

/// A dev upstream on an ephemeral loopback port.
/// Installs ring as the process's rustls provider, for the test's own HTTPS
/// and gRPC-over-TLS clients (the gateway passes its provider explicitly).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Whether `secret` authenticates `id` at the dev upstream's token
/// endpoint: a client_credentials token, or (for a client without that
/// grant) 400 `unauthorized_client`, which only an authenticated client gets.
pub async fn secret_works(base: &str, id: &str, secret: &str) -> bool {
    install_crypto_provider();
    let body = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    let resp = reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("token endpoint answers");
    match resp.status().as_u16() {
        200 => true,
        400 => {
            let bytes = resp.bytes().await.expect("a body");
            let body: serde_json::Value = serde_json::from_slice(&bytes).expect("a JSON error");
            body["error"] == "unauthorized_client"
        }
        _ => false,
    }
}

/// `reqwest::get`, with the provider installed first.
pub async fn http_get(url: String) -> reqwest::Result<reqwest::Response> {
    install_crypto_provider();
    reqwest::get(url).await
}

pub async fn dev_upstream() -> DevUpstream {
    DevUpstream::start("127.0.0.1:0".parse().unwrap(), None)
        .await
        .expect("dev upstream starts")
}

/// A dev upstream and a gateway in front of it.
pub async fn stack() -> (DevUpstream, TestGateway, Client) {
    let dev = dev_upstream().await;
    let gw = TestGateway::start(&dev.base_url()).await;
    let client = gw.client().await;
    (dev, gw, client)
}

/// Metadata for a client_credentials client, which needs no redirect URI.
pub fn machine_client(name: &str) -> pb::ClientMetadata {
    pb::ClientMetadata {
        client_name: Some(name.into()),
        grant_types: vec!["client_credentials".into()],
        ..Default::default()
    }
}

/// Registers a client_credentials client and returns it.
pub async fn register(client: &mut Client, name: &str) -> pb::Client {
    let req = pb::RegisterClientRequest {
        metadata: Some(machine_client(name)),
        initial_access_token: None,
    };
    client
        .register_client(req)
        .await
        .expect("register succeeds")
        .into_inner()
        .client
        .expect("a client")
}

/// Rotates `id`'s secret with the stored RAT and returns the client.
pub async fn rotate_secret(client: &mut Client, id: &str) -> pb::Client {
    let req = pb::RotateClientSecretRequest {
        client_id: id.into(),
        registration_access_token: None,
    };
    client
        .rotate_client_secret(req)
        .await
        .expect("secret rotation succeeds")
        .into_inner()
        .client
        .expect("a client")
}

/// Rotates `id`'s RAT with the stored one and returns the client.
pub async fn rotate_token(client: &mut Client, id: &str) -> pb::Client {
    let req = pb::RotateRegistrationTokenRequest {
        client_id: id.into(),
        registration_access_token: None,
    };
    client
        .rotate_registration_token(req)
        .await
        .expect("token rotation succeeds")
        .into_inner()
        .client
        .expect("a client")
}

/// `msg` as the caller whose `authorization` header is `token` (e.g.
/// `Bearer billing-token-…`).
pub fn as_caller<T>(msg: T, token: &'static str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        tonic::metadata::MetadataValue::from_static(token),
    );
    req
}

/// A GetClient request, with or without an explicit token.
pub fn get_req(id: &str, rat: Option<&str>) -> pb::GetClientRequest {
    pb::GetClientRequest {
        client_id: id.into(),
        registration_access_token: rat.map(Into::into),
    }
}

/// Polls `check` until it yields `Some`, for at most `limit`, and panics
/// naming the limit otherwise: a bounded wait on a condition, never a sleep
/// that hopes.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `n` GetClients at once over `client`'s connection, each on its own client
/// id (`c0`, `c1`, ...) so no client lock orders them.
pub fn concurrent_gets(
    client: &Client,
    n: usize,
    rat: &'static str,
) -> Vec<JoinHandle<Result<tonic::Response<pb::GetClientResponse>, tonic::Status>>> {
    (0..n)
        .map(|i| {
            let mut client = client.clone();
            tokio::spawn(async move {
                client
                    .get_client(get_req(&format!("c{i}"), Some(rat)))
                    .await
            })
        })
        .collect()
}

/// The most requests `dev` worked on at once since its peak was last reset
/// ([`DevUpstream::reset_peak`], before `tasks` were spawned), once every
/// task has finished (at most a minute). The dev upstream records the peak as
/// each request arrives, so no overlap is missed.
pub async fn most_at_once<T>(dev: &DevUpstream, tasks: &[JoinHandle<T>]) -> usize {
    tokio::time::timeout(Duration::from_secs(60), async {
        while !tasks.iter().all(|t| t.is_finished()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the calls finish within a minute");
    dev.stats().peak_in_flight
}

/// The `ErrorInfo.reason` of a status, or empty.
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

impl TestGateway {
    /// The value of the Prometheus series `series` (name and labels, as
    /// written) on the admin listener, or 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let admin = self.admin.expect("the admin listener is on");
        let text = http_get(format!("http://{admin}/metrics"))
            .await
            .expect("the admin listener answers")
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }
}
