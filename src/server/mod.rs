//! Assembles the gateway: the domain stack, the gRPC server with health and
//! reflection, the listeners, and graceful shutdown.

mod admin;
mod conn;
mod credentials_health;
mod dev;
mod endpoints;
mod exposure;
mod listener;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tonic::transport::Server;

use admin::AdminState;
pub use credentials_health::CREDENTIALS_HEALTH;
use endpoints::{Refresh, registration_endpoint, token_endpoint};
use listener::Bound;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceBuilder};

use crate::api::{DcrService, EdgeSettings};
use crate::config::{Config, EdgeLimits, KEEPALIVE_TIMEOUT, UpstreamChoice};
use crate::dcr::SentExchanges;
use crate::managed::{
    Declared, Managed, ManagedConfig, prepare_credentials_dir, rotation_warnings,
};
use crate::middleware::GatewayService;
use crate::middleware::client_lock::ClientLockLayer;
use crate::middleware::lease::LeaseLayer;
use crate::middleware::masked_update::MaskedUpdateLayer;
use crate::middleware::observe::ObserveLayer;
use crate::middleware::retry::RetryLayer;
use crate::middleware::shed::ShedLayer;
use crate::middleware::tokens::TokensLayer;
use crate::pb::v1::dynamic_client_registration_server::DynamicClientRegistrationServer;
use crate::store::{Store, StoreError};
use crate::telemetry::Metrics;
use crate::upstream::{
    Endpoints, HttpClientError, HttpUpstream, RegistrationEndpoint, http_client,
};

/// Pause after a failed accept (e.g. out of file descriptors) before the
/// next, on every listener.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listen address could not be bound (e.g. already in use).
    #[error("{setting} {addr}: cannot bind: {source}")]
    Bind {
        /// The setting, as a flag name.
        setting: &'static str,
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The listener's TLS files could not be loaded.
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The registration endpoint could not be discovered.
    #[error("--upstream: {0}")]
    Discovery(String),
    /// An HTTP listener's address (admin or metrics) could not be bound.
    #[error("{setting} {addr}: cannot bind: {source}")]
    HttpBind {
        /// The setting that names the address.
        setting: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The credentials folder does not exist or cannot be written.
    #[error("--credentials-dir {dir}: {source}")]
    Credentials {
        /// The folder.
        dir: String,
        /// Why.
        source: std::io::Error,
    },
    /// The built-in dev upstream could not start.
    #[error("--dev-upstream: cannot start: {0}")]
    DevUpstream(std::io::Error),
    /// The token store could not be opened or read.
    #[error("token store: {0}")]
    Store(#[from] StoreError),
    /// The upstream HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] HttpClientError),
    /// The reflection service could not be built from the descriptors.
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Slack added to the worst-case call for a lease's TTL: the store writes
/// and the renewal's own round trip.
const LEASE_SLACK: std::time::Duration = std::time::Duration::from_secs(5);

/// The domain stack, outermost first: per-client lock, the cross-replica
/// lease (on a shared store), retry, masked update, tokens, load shedding,
/// then the HTTP transport.
pub fn build_stack(
    upstream: HttpUpstream,
    store: &Store,
    upstream_id: &str,
    config: &Config,
    metrics: &Arc<Metrics>,
) -> GatewayService {
    // Leases only on a store that has them: a shared one.
    let lease = store
        .leases
        .clone()
        .map(|leases| LeaseLayer::new(leases, upstream_id, lease_ttl(config)));
    let stack = ServiceBuilder::new()
        .layer(ClientLockLayer::new(
            upstream_id,
            config.profile.capabilities(),
        ))
        .option_layer(lease)
        .layer(RetryLayer::new(config.retry.clone(), metrics.clone()))
        .layer(MaskedUpdateLayer)
        .layer(TokensLayer::new(
            store.tokens.clone(),
            upstream_id,
            metrics.clone(),
        ))
        .layer(ShedLayer::new(config.shed.clone(), metrics.clone()))
        .service(upstream);
    BoxCloneSyncService::new(stack)
}

/// The callers' path: `stack` under the observe layer, which tells managed
/// clients what a caller's call did to a client (managed clients' own calls
/// go through `stack` alone).
fn callers_stack(stack: GatewayService, managed: &Managed) -> GatewayService {
    let observe = ObserveLayer::new(Arc::new(managed.clone()));
    BoxCloneSyncService::new(observe.layer(stack))
}

/// A lease's TTL: above the worst-case call (every attempt timing out after
/// the longest backoff, a wait for a slot, a masked update's read and write),
/// so it only expires when its holder is gone, not while it works.
fn lease_ttl(config: &Config) -> std::time::Duration {
    let attempt = config.http.request_timeout + config.retry.backoff_max;
    (attempt * config.retry.max_attempts) * 2 + config.shed.queue_timeout + LEASE_SLACK
}

/// Binds an HTTP listener (admin or metrics), when it is on.
async fn bind_http(
    setting: &'static str,
    addr: Option<SocketAddr>,
) -> Result<Option<TcpListener>, ServeError> {
    let Some(addr) = addr else { return Ok(None) };
    TcpListener::bind(addr)
        .await
        .map(Some)
        .map_err(|source| ServeError::HttpBind {
            setting,
            addr,
            source,
        })
}

/// A gateway with its listener bound, ready to serve.
pub struct Gateway {
    listener: Bound,
    health: Option<TcpListener>,
    admin: Option<TcpListener>,
    /// The metrics-only listener, reachable from outside the pod.
    metrics_listener: Option<TcpListener>,
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
    /// Re-discovery of a discovered registration endpoint.
    refresh: Option<Refresh>,
    /// Kept alive for as long as the gateway runs.
    _dev: Option<dev::DevGuard>,
}

impl Gateway {
    /// [`Gateway::bind_with`] metrics of its own (not exported over OTLP).
    pub async fn bind(config: Config) -> Result<Self, ServeError> {
        Self::bind_with(config, Metrics::local()).await
    }

    /// Binds the listeners, starts the dev upstream if chosen, opens the token
    /// store and builds the stack, recording into `metrics`.
    pub(crate) async fn bind_with(
        config: Config,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ServeError> {
        for warning in exposure::warnings(&config) {
            tracing::warn!("{warning}");
        }
        let server = config.profile.capabilities();
        for warning in rotation_warnings(&server, &config.managed.clients) {
            tracing::warn!("{warning}");
        }
        let listener = Bound::bind(&config.listen)
            .await
            .map_err(|source| ServeError::Bind {
                setting: "--listen",
                addr: config.listen.to_string(),
                source,
            })?;
        let health = match config.health_listen {
            Some(addr) => {
                Some(
                    TcpListener::bind(addr)
                        .await
                        .map_err(|source| ServeError::Bind {
                            setting: "--health-listen",
                            addr: addr.to_string(),
                            source,
                        })?,
                )
            }
            None => None,
        };
        let (base_url, dev) = match &config.upstream {
            UpstreamChoice::Url(url) => (url.clone(), None),
            UpstreamChoice::Dev => {
                let (url, dev) = dev::start().await?;
                (url, Some(dev))
            }
        };
        let admin = bind_http("--admin-listen", config.admin_listen).await?;
        let metrics_listener = bind_http("--metrics-listen", config.metrics_listen).await?;
        let http = http_client(&config.http, &base_url)?;
        let (registration, discovered, discovered_token) =
            registration_endpoint(&config, &http, &base_url).await?;
        let registration = RegistrationEndpoint::new(registration);
        let refresh = discovered.then(|| Refresh {
            http: http.clone(),
            issuer: base_url.clone(),
            allowed: config.allowed_client_uri_origins.clone(),
            endpoint: registration.clone(),
            every: config.discovery_refresh_interval,
        });
        let endpoints = Endpoints {
            base: base_url,
            registration,
            allowed_origins: config.allowed_client_uri_origins.clone(),
        };
        let upstream = HttpUpstream::new(
            http,
            config.profile,
            endpoints,
            config.http.clone(),
            metrics.clone(),
        );
        let folder_warning = match &config.managed.credentials {
            Some(dir) => {
                let safety =
                    prepare_credentials_dir(dir).map_err(|source| ServeError::Credentials {
                        dir: dir.dir.display().to_string(),
                        source,
                    })?;
                if let Some(warning) = &safety.warning {
                    tracing::warn!("--credentials-dir {}: {warning}", dir.dir.display());
                }
                safety.warning
            }
            None => None,
        };
        let store = crate::store::open(&config.store).await?;
        let upstream_id = upstream.base_url().as_str().to_owned();
        let token_endpoint = token_endpoint(config.profile, upstream.base_url(), discovered_token);
        let stack = build_stack(upstream, &store, &upstream_id, &config, &metrics);
        let exchanges = SentExchanges::new(config.edge.max_detached);
        let managed = Managed::new(
            stack.clone(),
            store,
            ManagedConfig {
                upstream: upstream_id,
                server: config.profile.capabilities(),
                initial_access_token: config.initial_access_token.clone(),
                lease_ttl: lease_ttl(&config),
                exchanges: exchanges.clone(),
                policies: config
                    .managed
                    .clients
                    .iter()
                    .map(|c| ((c.namespace.clone(), c.name.clone()), c.rotation))
                    .collect(),
                limits: config.managed.limits,
                metrics: metrics.clone(),
                retired_grace: config.managed.retired_grace,
            },
        );
        managed.set_folder_warning(folder_warning);
        match managed.index_records().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "indexed managed client records by client"),
            Err(e) => {
                tracing::warn!(error = %e, "could not index managed client records by client")
            }
        }
        Ok(Self {
            listener,
            health,
            admin,
            metrics_listener,
            config,
            stack: callers_stack(stack, &managed),
            managed,
            exchanges,
            token_endpoint,
            metrics,
            refresh,
            _dev: dev,
        })
    }

    /// The bound gRPC address (useful with port 0); an error for a Unix socket.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The bound health-only address, when `--health-listen` is set.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The bound admin address (`/metrics`), when `--admin-listen` is on.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then reports NOT_SERVING, stops
    /// accepting, and gives in-flight calls up to the configured grace period.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        let tls = match &self.config.tls {
            Some(t) => Some(crate::tls::ReloadingTls::start(
                t.files.clone(),
                t.reload_interval,
            )?),
            None => None,
        };
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<DynamicClientRegistrationServer<DcrService>>()
            .await;
        let _credentials_health = AbortOnDrop(tokio::spawn(credentials_health::follow(
            health.clone(),
            self.managed.clone(),
        )));
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;
        let edge = &self.config.edge;
        let exchanges = self.exchanges;
        // The declared clients' loops run while the gateway serves.
        let declared = Declared::new(
            self.managed.clone(),
            self.config.managed.clone(),
            self.token_endpoint.clone(),
            self.metrics.clone(),
        )
        .spawn();
        let managed = self.managed.clone();
        let dcr = DynamicClientRegistrationServer::new(
            DcrService::new(
                self.stack,
                self.managed,
                self.metrics.clone(),
                EdgeSettings {
                    default_deadline: self.config.default_deadline,
                    max_deadline: edge.max_deadline,
                    calls: Arc::new(Semaphore::new(edge.max_concurrent_calls)),
                    callers: self.config.callers.clone(),
                    exchanges: exchanges.clone(),
                    server: self.config.profile.capabilities(),
                },
            )
            .with_initial_access_token(self.config.initial_access_token.clone()),
        )
        .max_decoding_message_size(self.config.max_request_bytes);
        // The health-only listener answers probes until the process ends, so
        // NOT_SERVING stays visible through the drain.
        let _health = self.health.map(|listener| {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!("health listening on {addr}");
            }
            // The same accept path as the gRPC port: silent probes' sockets are
            // closed after the header-read timeout.
            let incoming = Bound::Tcp(listener).incoming(None, edge.header_read_timeout);
            let server = grpc_server(edge, self.config.shutdown_grace)
                .add_service(health_service.clone())
                .serve_with_incoming(incoming);
            AbortOnDrop(tokio::spawn(server))
        });

        let _refresh = self.refresh.map(|r| AbortOnDrop(tokio::spawn(r.run())));
        let ready = Arc::new(AtomicBool::new(true));
        let admin_state = AdminState {
            metrics: self.metrics.clone(),
            ready: ready.clone(),
            managed: managed.clone(),
        };
        let timeouts = admin::Timeouts {
            header_read: edge.header_read_timeout,
            connection: edge.idle_timeout,
        };
        let _admin = self.admin.map(|listener| {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!("admin listening on {addr}");
            }
            let app = admin::router(admin_state.clone());
            AbortOnDrop(tokio::spawn(admin::serve(listener, app, timeouts)))
        });
        let _metrics = self.metrics_listener.map(|listener| {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!("metrics listening on {addr}");
            }
            let app = admin::metrics_only(admin_state);
            AbortOnDrop(tokio::spawn(admin::serve(listener, app, timeouts)))
        });
        let draining = Arc::new(Notify::new());
        let delay = self.config.shutdown_delay;
        let signal = {
            let draining = draining.clone();
            async move {
                shutdown.await;
                // Watch streams end (UNAVAILABLE), so the drain need not
                // wait for them; declared loops stop after their step.
                managed.stop();
                ready.store(false, Ordering::Release);
                health
                    .set_not_serving::<DynamicClientRegistrationServer<DcrService>>()
                    .await;
                health
                    .set_service_status("", tonic_health::ServingStatus::NotServing)
                    .await;
                if !delay.is_zero() {
                    tracing::info!(
                        ?delay,
                        "shutdown requested: health is NOT_SERVING; still serving"
                    );
                    tokio::time::sleep(delay).await;
                }
                tracing::info!("draining in-flight calls");
                draining.notify_one();
            }
        };
        let described = self.listener.describe();
        let incoming = self
            .listener
            .incoming(tls.clone(), edge.header_read_timeout);
        let server = grpc_server(edge, self.config.shutdown_grace)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(dcr)
            .serve_with_incoming_shutdown(incoming, signal);
        let scheme = match &tls {
            Some(t) if t.mutual => "mutual TLS",
            Some(_) => "TLS",
            None => "plaintext",
        };
        tracing::info!("gRPC listening on {described} ({scheme})");
        let grace = self.config.shutdown_grace;
        let grace_ends = async {
            draining.notified().await;
            tokio::time::Instant::now() + grace
        };
        // Calls first, then the sent exchanges that outlived their callers:
        // each holds its place until its credential is stored, so every place
        // back means no sent exchange is left.
        let drained = async {
            server.await?;
            declared.join().await;
            exchanges.all_done().await;
            Ok::<_, ServeError>(())
        };
        tokio::pin!(grace_ends, drained);
        tokio::select! {
            result = &mut drained => result?,
            ends = &mut grace_ends => {
                match tokio::time::timeout_at(ends, drained).await {
                    Ok(result) => result?,
                    Err(_) => tracing::warn!(
                        ?grace,
                        "shutdown grace period passed; abandoning calls still in flight"
                    ),
                }
            }
        }
        tracing::info!("stopped");
        Ok(())
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
