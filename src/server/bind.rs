//! Starting the gateway, in the order a failure should be found: the
//! sockets first (a port in use is the commonest mistake), then the upstream
//! (dev upstream, HTTP client, endpoints), then the credentials folder, the
//! store, the stack and the managed clients.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::{Config, UpstreamChoice};
use crate::dcr::SentExchanges;
use crate::managed::{Managed, ManagedConfig, prepare_credentials_dir, rotation_warnings};
use crate::telemetry::Metrics;
use crate::upstream::{Endpoints, HttpUpstream, RegistrationEndpoint, UpstreamHttp};

use super::endpoints::{Refresh, registration_endpoint, token_endpoint};
use super::listener::Bound;
use super::stack::{build_stack, callers_stack, lease_ttl};
use super::{Gateway, ServeError, SideSockets, Sockets, dev, exposure};

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
        for warning in rotation_warnings(&config.profile.capabilities(), &config.managed.clients) {
            tracing::warn!("{warning}");
        }
        let sockets = Sockets::bind(&config).await?;
        let upstream = Upstream::connect(&config, &metrics).await?;
        let folder_warning = credentials_folder(&config)?;
        let store = crate::store::open(&config.store).await?;
        if let Some(count) = &store.replica_shortfalls {
            metrics.count_replica_shortfalls(count.clone());
        }
        let store_reachable = store.reachable.clone();
        let upstream_id = upstream.http.base_url().as_str().to_owned();
        let token_endpoint = token_endpoint(
            config.profile,
            upstream.http.base_url(),
            upstream.discovered_token,
        );
        let stack = build_stack(upstream.http, &store, &upstream_id, &config, &metrics);
        let exchanges = SentExchanges::new(config.edge.max_detached);
        let managed = Managed::new(
            stack.clone(),
            store,
            managed_config(&config, upstream_id, exchanges.clone(), &metrics),
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
            sockets,
            config,
            stack: callers_stack(stack, &managed),
            managed,
            exchanges,
            token_endpoint,
            metrics,
            store_reachable,
            refresh: upstream.refresh,
            _dev: upstream.dev,
        })
    }
}

impl Sockets {
    /// Binds every listener that is on, each error naming its setting.
    async fn bind(config: &Config) -> Result<Self, ServeError> {
        let grpc = Bound::bind(&config.listen)
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
        Ok(Self {
            grpc,
            side: SideSockets {
                health,
                admin: bind_http("--admin-listen", config.admin_listen).await?,
                metrics: bind_http("--metrics-listen", config.metrics_listen).await?,
            },
        })
    }
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

/// The upstream, reached: its transport, the token endpoint its metadata
/// named, the re-discovery of a discovered registration endpoint, and the
/// dev upstream when it is the one.
struct Upstream {
    http: HttpUpstream,
    discovered_token: Option<url::Url>,
    refresh: Option<Refresh>,
    dev: Option<dev::DevGuard>,
}

impl Upstream {
    /// Starts the dev upstream if chosen, builds the one HTTP client, and
    /// finds the registration endpoint (discovering it when not configured).
    async fn connect(config: &Config, metrics: &Arc<Metrics>) -> Result<Self, ServeError> {
        let (base_url, dev) = match &config.upstream {
            UpstreamChoice::Url(url) => (url.clone(), None),
            UpstreamChoice::Dev => {
                let (url, dev) = dev::start().await?;
                (url, Some(dev))
            }
        };
        let http = UpstreamHttp::new(&config.http, &base_url)?;
        let (registration, discovered, discovered_token) =
            registration_endpoint(config, &http, &base_url).await?;
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
            token: discovered_token.clone(),
        };
        let http = HttpUpstream::new(
            http,
            config.profile,
            endpoints,
            config.http.max_response_bytes,
            metrics.clone(),
        );
        Ok(Self {
            http,
            discovered_token,
            refresh,
            dev,
        })
    }
}

/// Checks the credentials folder, when files are delivered: an error when
/// it cannot be used, a warning (logged and returned) when others could
/// tamper with it.
fn credentials_folder(config: &Config) -> Result<Option<String>, ServeError> {
    let Some(dir) = &config.managed.credentials else {
        return Ok(None);
    };
    let safety = prepare_credentials_dir(dir).map_err(|source| ServeError::Credentials {
        dir: dir.dir.display().to_string(),
        source,
    })?;
    if let Some(warning) = &safety.warning {
        tracing::warn!("--credentials-dir {}: {warning}", dir.dir.display());
    }
    Ok(safety.warning)
}

/// What managed clients need from the config.
fn managed_config(
    config: &Config,
    upstream: String,
    exchanges: SentExchanges,
    metrics: &Arc<Metrics>,
) -> ManagedConfig {
    ManagedConfig {
        upstream,
        server: config.profile.capabilities(),
        initial_access_token: config.initial_access_token.clone(),
        lease_ttl: lease_ttl(config),
        exchanges,
        policies: config
            .managed
            .clients
            .iter()
            .map(|c| ((c.namespace.clone(), c.name.clone()), c.rotation))
            .collect(),
        limits: config.managed.limits,
        metrics: metrics.clone(),
        retired_grace: config.managed.retired_grace,
    }
}
