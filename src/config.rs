//! One validated configuration for `dcr-gateway serve`.
//!
//! Sources, lowest precedence first: the defaults below, an optional TOML file
//! (`--config`), `DCR_GATEWAY_*` environment variables, then flags. Everything is
//! checked here, at start, so a bad value is one clear line naming the setting,
//! never a failure on the first call.

mod calls;
mod check;
mod edge;
mod listen;
mod managed;
mod raw;
mod secret;
mod store;
mod suggest;
mod tls;
mod token_files;
mod upstream;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

pub use crate::duration::{DurationError, format_duration, parse_duration};
pub use check::read_text;
use check::{bytes, duration, invalid};
pub use edge::{
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_KEEPALIVE_INTERVAL,
    DEFAULT_MAX_CONCURRENT_CALLS, DEFAULT_MAX_DEADLINE, DEFAULT_MAX_DETACHED,
    DEFAULT_MAX_STREAMS_PER_CONNECTION, EdgeLimits, KEEPALIVE_TIMEOUT,
};
pub use listen::{DEFAULT_UNIX_SOCKET_MODE, Listen};
pub use managed::{
    DEFAULT_CREDENTIALS_FILE_MODE, DEFAULT_MAX_MANAGED_CLIENTS_PER_NAMESPACE,
    DEFAULT_MAX_WATCHES_PER_NAMESPACE, DEFAULT_RECONCILE_INTERVAL, DEFAULT_RETIRED_CLIENT_GRACE,
    MAX_DECLARED_CLIENTS, RawClient,
};
pub use raw::{RawConfig, RawStoreConfig};
pub use secret::{CALLERS_ENV, INITIAL_ACCESS_TOKEN_ENV, Secret, TOKEN_STORE_KEYS_ENV};
pub use store::{
    DEFAULT_ALLOW_PLAINTEXT_STORE, DEFAULT_REDIS_PREFIX, DEFAULT_STORE_PATH, store_config,
};
pub use tls::{DEFAULT_TLS_RELOAD_INTERVAL, ListenerTls};
pub use token_files::{MAX_TOKEN_FILES, RawTokenFile};

use std::sync::Arc;

use crate::api::Callers;
use crate::managed::ManagedSettings;
use crate::middleware::retry::RetryConfig;
use crate::middleware::shed::ShedConfig;
use crate::store::StoreConfig;
use crate::telemetry::TelemetryConfig;
use crate::upstream::{Profile, UpstreamConfig};

/// Default gRPC listen address: loopback, as a sidecar is called from its pod.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// Default limit for one upstream HTTP attempt, connection included.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// Default limit for establishing an upstream connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default: HTTP/1.1 to the upstream, which every DCR server speaks.
pub const DEFAULT_UPSTREAM_HTTP2: bool = false;
/// Default idle upstream connections kept per host.
pub const DEFAULT_UPSTREAM_POOL_MAX_IDLE: usize = 32;
/// Default time an idle upstream connection is kept.
pub const DEFAULT_UPSTREAM_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Default cap on an upstream response body (SharkAuth caps requests at 1 MiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Default cap on one gRPC request message.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1 << 20;
/// Default deadline for calls that arrive without `grpc-timeout`.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);
/// Default most attempts per call: the first and up to three retries.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;
/// Default first backoff before a retry.
pub const DEFAULT_RETRY_BACKOFF_BASE: Duration = Duration::from_millis(50);
/// Default longest backoff before a retry.
pub const DEFAULT_RETRY_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Default longest `Retry-After` honoured.
pub const DEFAULT_RETRY_AFTER_MAX: Duration = Duration::from_secs(10);
/// Default share retries may add to the request rate, in percent.
pub const DEFAULT_RETRY_BUDGET_PERCENT: u32 = 20;
/// Default retries per second allowed whatever the request rate.
pub const DEFAULT_RETRY_BUDGET_MIN_PER_SECOND: u32 = 10;
/// Default most upstream calls in flight.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
/// Default most calls waiting for an upstream slot.
pub const DEFAULT_MAX_QUEUE: usize = 32;
/// Default longest wait for an upstream slot.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(1);
/// Default time between a shutdown signal and the stop of accepting calls, during
/// which health already answers NOT_SERVING so probes can steer callers away.
pub const DEFAULT_SHUTDOWN_DELAY: Duration = Duration::ZERO;
/// Default time in-flight calls get to finish after a shutdown signal; below
/// Kubernetes' default 30 s termination grace so the drain ends before SIGKILL.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(25);
/// Default interval between re-discoveries of a discovered registration
/// endpoint: metadata documents change rarely, and a moved endpoint should
/// not need a restart.
pub const DEFAULT_DISCOVERY_REFRESH_INTERVAL: Duration = Duration::from_secs(3600);
/// Default worker threads: one, a current-thread runtime (`cli/runtime.rs`
/// says why): a sidecar is sized by its pod's CPU, and one core serves
/// more calls per second than the benchmark's callers send on two.
pub const DEFAULT_WORKER_THREADS: usize = 1;
/// Most worker threads accepted: more than a sidecar's cores only adds
/// stacks and wake-ups.
pub const MAX_WORKER_THREADS: usize = 64;
/// Default capacity of the in-memory token store.
pub const DEFAULT_TOKEN_STORE_MAX_ENTRIES: usize = crate::store::DEFAULT_MAX_ENTRIES;

/// Default admin listener: loopback, the port Prometheus exporters commonly use.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9464";
/// The metrics-only listener is off unless asked for: only a scraper outside
/// the pod needs it, and it must be admitted to the pod explicitly.
pub const DEFAULT_METRICS_LISTEN: &str = "off";

/// Shortest timeout accepted.
const MIN_DURATION: Duration = Duration::from_millis(1);

/// Which authorization server the gateway talks to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamChoice {
    /// A real server at this base URL.
    Url(Url),
    /// The in-process dev upstream (`--dev-upstream`), on an ephemeral loopback port.
    Dev,
}

/// The validated configuration of `serve`.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the gRPC server listens.
    pub listen: Listen,
    /// TLS on the gRPC listener; `None` is plaintext.
    pub tls: Option<ListenerTls>,
    /// A plaintext listener serving only `grpc.health.v1`, for probes that
    /// cannot speak TLS or reach loopback (kubelet's); `None` when off.
    pub health_listen: Option<SocketAddr>,
    /// Initial access token sent on RegisterClient when the caller gives none.
    pub initial_access_token: Option<secrecy::SecretString>,
    /// The authorization server.
    pub upstream: UpstreamChoice,
    /// How the HTTP client reaches it.
    pub http: UpstreamConfig,
    /// Retry policy.
    pub retry: RetryConfig,
    /// Load shedding.
    pub shed: ShedConfig,
    /// Cap on one gRPC request message, in bytes.
    pub max_request_bytes: usize,
    /// Deadline for calls without `grpc-timeout`.
    pub default_deadline: Duration,
    /// Admission at the gRPC edge (calls, streams, deadlines, connections).
    pub edge: EdgeLimits,
    /// Time health reports NOT_SERVING, still serving, before draining starts.
    pub shutdown_delay: Duration,
    /// Time in-flight calls get to finish once draining starts.
    pub shutdown_grace: Duration,
    /// Threads polling calls: 1 runs every call on one thread.
    pub worker_threads: usize,
    /// Where registration access tokens are kept.
    pub store: StoreConfig,
    /// Caller authentication; `None` runs every call in one namespace.
    pub callers: Option<Arc<Callers>>,
    /// How the upstream lays out its API.
    pub profile: Profile,
    /// The registration endpoint, when configured (else SharkAuth's route, or
    /// discovered for rfc7592).
    pub registration_endpoint: Option<Url>,
    /// How often a discovered registration endpoint is discovered again.
    pub discovery_refresh_interval: Duration,
    /// Extra origins a `registration_client_uri` may point to.
    pub allowed_client_uri_origins: Vec<url::Origin>,
    /// The admin HTTP listener; `None` when off.
    pub admin_listen: Option<SocketAddr>,
    /// The metrics-only HTTP listener; `None` when off.
    pub metrics_listen: Option<SocketAddr>,
    /// Logs and OTLP export.
    pub telemetry: TelemetryConfig,
    /// Declared clients, their reconcile interval and credentials files.
    pub managed: ManagedSettings,
}

/// A configuration problem: one line, naming the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting has a bad value.
    #[error("{setting}: {reason}")]
    Invalid {
        /// The setting, as a flag name.
        setting: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A file or redis store would keep tokens in the clear, and the operator
    /// has not said that is meant.
    #[error(
        "token store: {store} has no keyring: configure --token-store-keys-file \
         (or DCR_GATEWAY_TOKEN_STORE_KEYS), or pass --allow-plaintext-store"
    )]
    PlaintextStore {
        /// Which store, with its location.
        store: String,
    },
    /// A declared client (`[[clients]]` in the config file) is invalid.
    #[error("clients[{index}] ({name}): {field}: {reason}")]
    Client {
        /// Its position among the tables, from 0.
        index: usize,
        /// Its name as written.
        name: String,
        /// The field at fault.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The config file cannot be read.
    #[error("--config {path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for these settings.
    #[error("--config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key.
        message: String,
    },
}

impl RawConfig {
    /// Reads a TOML file of settings.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = read_text(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| {
            // Where, as the line the parser points at, and what.
            let line = e
                .span()
                .and_then(|at| text.as_bytes().get(..at.start))
                .map(|before| 1 + before.iter().filter(|&&b| b == b'\n').count());
            let message = suggest::unknown_key(e.message());
            ConfigError::Parse {
                path: path.into(),
                message: match line {
                    Some(line) => format!("line {line}: {message}"),
                    None => message,
                },
            }
        })
    }

    /// Applies defaults and validates every setting, section by section.
    pub fn validate(mut self) -> Result<Config, ConfigError> {
        let upstream = self.take_upstream().validate()?;
        let (retry, shed) = self.take_calls().validate()?;
        let managed = managed::managed_settings(self.take_managed())?;
        let default_deadline = duration(
            "--default-deadline",
            self.default_deadline,
            DEFAULT_DEADLINE,
            MIN_DURATION,
        )?;
        let edge = edge::RawEdge {
            max_concurrent_calls: self.max_concurrent_calls,
            max_streams_per_connection: self.max_streams_per_connection,
            max_deadline: self.max_deadline,
            max_detached: self.max_detached,
            header_read_timeout: self.header_read_timeout,
            keepalive_interval: self.keepalive_interval,
            idle_timeout: self.idle_timeout,
        }
        .validate(default_deadline)?;
        let listeners = listen::RawListeners {
            listen: self.listen,
            unix_socket_mode: self.unix_socket_mode,
            tls: tls::RawListenerTls {
                cert: self.tls_cert,
                key: self.tls_key,
                client_ca: self.tls_client_ca,
                reload_interval: self.tls_reload_interval,
            },
            health_listen: self.health_listen,
            admin_listen: self.admin_listen,
            metrics_listen: self.metrics_listen,
        }
        .validate()?;
        let dev = upstream.upstream == UpstreamChoice::Dev;
        Ok(Config {
            listen: listeners.listen,
            tls: listeners.tls,
            health_listen: listeners.health_listen,
            initial_access_token: secret::initial_access_token(
                self.initial_access_token,
                self.initial_access_token_file,
            )?,
            upstream: upstream.upstream,
            http: upstream.http,
            retry,
            shed,
            max_request_bytes: bytes(
                "--max-request-bytes",
                self.max_request_bytes,
                DEFAULT_MAX_REQUEST_BYTES,
            )?,
            default_deadline,
            edge,
            shutdown_delay: duration(
                "--shutdown-delay",
                self.shutdown_delay,
                DEFAULT_SHUTDOWN_DELAY,
                Duration::ZERO,
            )?,
            shutdown_grace: duration(
                "--shutdown-grace",
                self.shutdown_grace,
                DEFAULT_SHUTDOWN_GRACE,
                MIN_DURATION,
            )?,
            worker_threads: check::count(
                "--worker-threads",
                self.worker_threads,
                DEFAULT_WORKER_THREADS,
                1..=MAX_WORKER_THREADS,
            )?,
            store: store_config(self.token_store, dev)?,
            managed,
            callers: secret::callers(self.callers_file, self.callers)?,
            profile: upstream.profile,
            registration_endpoint: upstream.registration_endpoint,
            discovery_refresh_interval: upstream.discovery_refresh_interval,
            allowed_client_uri_origins: upstream.allowed_client_uri_origins,
            admin_listen: listeners.admin_listen,
            metrics_listen: listeners.metrics_listen,
            telemetry: TelemetryConfig {
                log_format: self.log_format.unwrap_or_default(),
                otlp_endpoint: self.otlp_endpoint,
                otlp_protocol: self.otlp_protocol,
                service_name: self.service_name,
            },
        })
    }
}

#[cfg(test)]
mod tests;
