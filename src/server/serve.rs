//! Serving: the side listeners (health, admin, metrics), the gRPC server
//! with health and reflection, and the drain, each its own step.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tonic::transport::server::Router;
use tonic_health::server::HealthReporter;

use crate::api::{DcrService, EdgeSettings};
use crate::config::Config;
use crate::dcr::SentExchanges;
use crate::managed::{Declared, Managed};
use crate::middleware::GatewayService;
use crate::pb::v1::dynamic_client_registration_server::DynamicClientRegistrationServer;
use crate::telemetry::Metrics;

use super::admin::{self, AdminState};
use super::listener::Bound;
use super::{
    AbortOnDrop, Gateway, ServeError, SideSockets, credentials_health, grpc_server, reflection,
};

/// The gRPC service callers reach.
type DcrServer = DynamicClientRegistrationServer<DcrService>;

impl Gateway {
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
        health.set_serving::<DcrServer>().await;
        let ready = Arc::new(AtomicBool::new(true));
        // Background tasks: aborted when `serve` returns.
        let (store_up, probe) = credentials_health::store_up(self.store_reachable.clone());
        let mut tasks = vec![AbortOnDrop(tokio::spawn(credentials_health::follow(
            health.clone(),
            self.managed.clone(),
            store_up.clone(),
        )))];
        tasks.extend(probe);
        // The declared clients' loops run while the gateway serves.
        let declared = Declared::new(
            self.managed.clone(),
            self.config.managed.clone(),
            self.token_endpoint.clone(),
            self.metrics.clone(),
        )
        .spawn();
        let dcr = dcr_server(
            &self.config,
            self.stack,
            self.managed.clone(),
            &self.metrics,
            &self.exchanges,
        );
        let config = &self.config;
        let edge = &config.edge;
        let state = AdminState {
            metrics: self.metrics.clone(),
            ready: ready.clone(),
            managed: self.managed.clone(),
            store_up,
        };
        let health_only =
            grpc_server(&config.edge, config.shutdown_grace).add_service(health_service.clone());
        tasks.extend(side_listeners(
            config,
            self.sockets.side,
            health_only,
            state,
        ));
        if let Some(refresh) = self.refresh {
            tasks.push(AbortOnDrop(tokio::spawn(refresh.run())));
        }
        let draining = Arc::new(Notify::new());
        let signal = announce_shutdown(
            shutdown,
            Stopping {
                managed: self.managed,
                ready,
                health,
                delay: config.shutdown_delay,
                draining: draining.clone(),
            },
        );
        let described = self.sockets.grpc.describe();
        let incoming = self
            .sockets
            .grpc
            .incoming(tls.clone(), edge.header_read_timeout);
        let server = grpc_server(edge, config.shutdown_grace)
            .add_service(health_service)
            .add_service(reflection().build_v1()?)
            .add_service(reflection().build_v1alpha()?)
            .add_service(dcr)
            .serve_with_incoming_shutdown(incoming, signal);
        let scheme = match &tls {
            Some(t) if t.mutual => "mutual TLS",
            Some(_) => "TLS",
            None => "plaintext",
        };
        tracing::info!("gRPC listening on {described} ({scheme})");
        // Calls first, then the sent exchanges that outlived their callers:
        // each holds its place until its credential is stored, so every place
        // back means no sent exchange is left.
        let exchanges = self.exchanges;
        let drained = async {
            server.await?;
            declared.join().await;
            exchanges.all_done().await;
            Ok::<_, ServeError>(())
        };
        drain(drained, &draining, config.shutdown_grace).await?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The edge service over the callers' path, with the edge's settings.
fn dcr_server(
    config: &Config,
    stack: GatewayService,
    managed: Managed,
    metrics: &Arc<Metrics>,
    exchanges: &SentExchanges,
) -> DcrServer {
    let edge = &config.edge;
    DynamicClientRegistrationServer::new(
        DcrService::new(
            stack,
            managed,
            metrics.clone(),
            EdgeSettings {
                default_deadline: config.default_deadline,
                max_deadline: edge.max_deadline,
                calls: Arc::new(Semaphore::new(edge.max_concurrent_calls)),
                callers: config.callers.clone(),
                exchanges: exchanges.clone(),
                server: config.profile.capabilities(),
            },
        )
        .with_initial_access_token(config.initial_access_token.clone()),
    )
    .max_decoding_message_size(config.max_request_bytes)
}

/// Starts the side listeners that are on: health-only gRPC (serving
/// `health_only`), admin, and metrics-only HTTP.
fn side_listeners(
    config: &Config,
    side: SideSockets,
    health_only: Router,
    state: AdminState,
) -> Vec<AbortOnDrop<()>> {
    let edge = &config.edge;
    let mut tasks = Vec::new();
    // The health-only listener answers probes until the process ends, so
    // NOT_SERVING stays visible through the drain.
    if let Some(listener) = side.health {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!("health listening on {addr}");
        }
        // The same accept path as the gRPC port: silent probes' sockets are
        // closed after the header-read timeout.
        let incoming = Bound::Tcp(listener).incoming(None, edge.header_read_timeout);
        let server = health_only.serve_with_incoming(incoming);
        tasks.push(AbortOnDrop(tokio::spawn(async move {
            let _ = server.await;
        })));
    }
    let timeouts = admin::Timeouts {
        header_read: edge.header_read_timeout,
        connection: edge.idle_timeout,
    };
    let routes = [
        (side.admin, "admin", admin::router(state.clone())),
        (side.metrics, "metrics", admin::metrics_only(state)),
    ];
    tasks.extend(routes.into_iter().filter_map(|(listener, what, app)| {
        let listener = listener?;
        if let Ok(addr) = listener.local_addr() {
            tracing::info!("{what} listening on {addr}");
        }
        Some(AbortOnDrop(tokio::spawn(admin::serve(
            listener, app, timeouts,
        ))))
    }));
    tasks
}

/// What changes once shutdown is requested.
struct Stopping {
    managed: Managed,
    ready: Arc<AtomicBool>,
    health: HealthReporter,
    /// How long to keep serving while NOT_SERVING spreads.
    delay: Duration,
    /// Told when the delay is over and the drain starts.
    draining: Arc<Notify>,
}

/// Completes when the gRPC server should stop accepting: after `shutdown`,
/// with watch streams ended, readiness and health NOT_SERVING, and the
/// shutdown delay passed.
async fn announce_shutdown(shutdown: impl Future<Output = ()>, stopping: Stopping) {
    shutdown.await;
    // Watch streams end (UNAVAILABLE), so the drain need not wait for them;
    // declared loops stop after their step.
    stopping.managed.stop();
    stopping.ready.store(false, Ordering::Release);
    stopping.health.set_not_serving::<DcrServer>().await;
    stopping
        .health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    if !stopping.delay.is_zero() {
        tracing::info!(
            delay = ?stopping.delay,
            "shutdown requested: health is NOT_SERVING; still serving"
        );
        tokio::time::sleep(stopping.delay).await;
    }
    tracing::info!("draining in-flight calls");
    stopping.draining.notify_one();
}

/// Waits for `drained`, but once the drain starts only up to `grace`; past
/// it, what is still in flight is abandoned (and said so).
async fn drain(
    drained: impl Future<Output = Result<(), ServeError>>,
    draining: &Notify,
    grace: Duration,
) -> Result<(), ServeError> {
    let grace_ends = async {
        draining.notified().await;
        tokio::time::Instant::now() + grace
    };
    tokio::pin!(grace_ends, drained);
    tokio::select! {
        result = &mut drained => result,
        ends = &mut grace_ends => match tokio::time::timeout_at(ends, drained).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(
                    ?grace,
                    "shutdown grace period passed; abandoning calls still in flight"
                );
                Ok(())
            }
        },
    }
}
