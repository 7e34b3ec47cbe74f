//! Assembles the gateway: the domain stack, the gRPC server with health and
//! reflection, the listeners, and graceful shutdown.

mod admin;
mod bind;
mod conn;
mod credentials_health;
mod dev;
mod endpoints;
mod error;
mod exposure;
mod listener;
mod serve;
mod stack;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::Server;

pub use credentials_health::CREDENTIALS_HEALTH;
use endpoints::Refresh;
pub use error::ServeError;
use listener::Bound;

use crate::config::{Config, EdgeLimits, KEEPALIVE_TIMEOUT};
use crate::dcr::SentExchanges;
use crate::managed::Managed;
use crate::middleware::GatewayService;
use crate::telemetry::Metrics;

/// Pause after a failed accept (e.g. out of file descriptors) before the
/// next, on every listener.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The gateway's sockets, bound before anything else starts.
struct Sockets {
    /// The gRPC listener callers reach.
    grpc: Bound,
    /// The others, each when on.
    side: SideSockets,
}

/// The listeners beside the gRPC one, each when on.
struct SideSockets {
    /// The health-only gRPC listener, when on.
    health: Option<TcpListener>,
    /// The admin HTTP listener, when on.
    admin: Option<TcpListener>,
    /// The metrics-only listener, reachable from outside the pod.
    metrics: Option<TcpListener>,
}

/// A gateway with its listener bound, ready to serve.
pub struct Gateway {
    sockets: Sockets,
    config: Config,
    /// The callers' path: the stack under the observe layer.
    stack: GatewayService,
    managed: Managed,
    /// The token endpoint credentials files name, when known.
    token_endpoint: Option<String>,
    /// Places for sent credential-bearing exchanges: the edge's calls and
    /// managed clients' ensures; shutdown waits for them.
    exchanges: SentExchanges,
    metrics: Arc<Metrics>,
    /// Whether the token store answers, when it is across the network:
    /// readiness follows it.
    store_reachable: Option<Arc<dyn crate::store::Reachable>>,
    /// Re-discovery of a discovered registration endpoint.
    refresh: Option<Refresh>,
    /// Kept alive for as long as the gateway runs.
    _dev: Option<dev::DevGuard>,
}

impl Gateway {
    /// The bound gRPC address (useful with port 0); an error for a Unix socket.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.sockets.grpc.local_addr()
    }

    /// The bound health-only address, when `--health-listen` is set.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.sockets
            .side
            .health
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The bound admin address (`/metrics`), when `--admin-listen` is on.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.sockets
            .side
            .admin
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }
}

/// The tonic server with the edge's connection limits: streams per
/// connection, keepalive pings, and a lifetime after which a connection is
/// closed gracefully (in-flight calls get the shutdown grace period).
fn grpc_server(edge: &EdgeLimits, grace: std::time::Duration) -> Server {
    Server::builder()
        .max_concurrent_streams(edge.max_streams_per_connection)
        .http2_keepalive_interval(Some(edge.keepalive_interval))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .max_connection_age(edge.idle_timeout)
        .max_connection_age_grace(grace)
}

/// Aborts a background task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reflection over the dcr.v1 and grpc.health.v1 descriptors.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// Completes on SIGTERM (what Kubernetes sends) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
