//! Settings as given, before defaults and validation. One struct is both the
//! `serve` flags (each with a `DCR_GATEWAY_*` variable) and the TOML file, so
//! the two can never drift apart. The three secret values (initial access
//! token, caller list, keyring) have no flag, as `/proc/PID/cmdline` is readable
//! by every user: they come from a file setting, their variable (read by
//! [`RawConfig::secret_env`]) or the TOML file.

use clap::Args;
use serde::Deserialize;

use super::Secret;
use crate::telemetry::LogFormat;

/// Every `serve` setting, unset when not given. Doc comments are the `--help`
/// text; defaults live in `config.rs` and are shown here for the reader.
#[derive(Args, Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// gRPC listen address [default: 127.0.0.1:50051].
    #[arg(long, env = "DCR_GATEWAY_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Permissions of a unix: --listen socket, octal [default: 0660].
    #[arg(long, env = "DCR_GATEWAY_UNIX_SOCKET_MODE", value_name = "MODE")]
    pub unix_socket_mode: Option<String>,
    /// Extra plaintext listener serving only grpc.health.v1, for kubelet gRPC probes [default: off].
    #[arg(long, env = "DCR_GATEWAY_HEALTH_LISTEN", value_name = "ADDR")]
    pub health_listen: Option<String>,
    /// PEM certificate chain: the gRPC listener speaks TLS (with --tls-key).
    #[arg(long, env = "DCR_GATEWAY_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<String>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "DCR_GATEWAY_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<String>,
    /// PEM CA bundle: mutual TLS; the client certificate's SPIFFE ID or DNS name is the caller namespace.
    #[arg(long, env = "DCR_GATEWAY_TLS_CLIENT_CA", value_name = "FILE")]
    pub tls_client_ca: Option<String>,
    /// How often the TLS files are checked for a change and reloaded [default: 10s].
    #[arg(long, env = "DCR_GATEWAY_TLS_RELOAD_INTERVAL", value_name = "DURATION")]
    pub tls_reload_interval: Option<String>,
    /// Base URL of the authorization server, e.g. https://auth.example.com.
    #[arg(long, env = "DCR_GATEWAY_UPSTREAM", value_name = "URL")]
    pub upstream: Option<String>,
    /// Start the built-in dev upstream on a loopback port and use it instead of --upstream.
    #[arg(long, env = "DCR_GATEWAY_DEV_UPSTREAM", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub dev_upstream: Option<bool>,
    /// Extra PEM CA bundle trusted for the upstream, besides the system's.
    #[arg(long, env = "DCR_GATEWAY_UPSTREAM_CA_FILE", value_name = "FILE")]
    pub upstream_ca_file: Option<String>,
    /// PEM client certificate presented to the upstream (with --upstream-client-key).
    #[arg(long, env = "DCR_GATEWAY_UPSTREAM_CLIENT_CERT", value_name = "FILE")]
    pub upstream_client_cert: Option<String>,
    /// PEM private key of --upstream-client-cert.
    #[arg(long, env = "DCR_GATEWAY_UPSTREAM_CLIENT_KEY", value_name = "FILE")]
    pub upstream_client_key: Option<String>,
    /// Refuse plain http:// upstreams, discovery and client URIs [default: false].
    #[arg(long, env = "DCR_GATEWAY_REQUIRE_UPSTREAM_TLS", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub require_upstream_tls: Option<bool>,
    /// Initial access token sent on RegisterClient when the caller gives none. No
    /// flag, as any user can read a command line: `DCR_GATEWAY_INITIAL_ACCESS_TOKEN`
    /// ([`INITIAL_ACCESS_TOKEN_ENV`](crate::config::INITIAL_ACCESS_TOKEN_ENV)) or the config file.
    #[arg(skip)]
    pub initial_access_token: Option<Secret>,
    /// File holding the initial access token sent on RegisterClient when the caller gives
    /// none (surrounding whitespace ignored); or the token itself in DCR_GATEWAY_INITIAL_ACCESS_TOKEN.
    #[arg(
        long,
        env = "DCR_GATEWAY_INITIAL_ACCESS_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub initial_access_token_file: Option<String>,
    /// Limit for one upstream HTTP attempt, connection included [default: 10s].
    #[arg(long, env = "DCR_GATEWAY_UPSTREAM_TIMEOUT", value_name = "DURATION")]
    pub upstream_timeout: Option<String>,
    /// Limit for establishing an upstream connection [default: 3s].
    #[arg(long, env = "DCR_GATEWAY_CONNECT_TIMEOUT", value_name = "DURATION")]
    pub connect_timeout: Option<String>,
    /// Speak HTTP/2 to the upstream (prior knowledge on http://, ALPN on https://) [default: false].
    #[arg(long, env = "DCR_GATEWAY_UPSTREAM_HTTP2", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub upstream_http2: Option<bool>,
    /// Idle upstream connections kept per host [default: 32].
    #[arg(long, env = "DCR_GATEWAY_UPSTREAM_POOL_MAX_IDLE", value_name = "N")]
    pub upstream_pool_max_idle: Option<usize>,
    /// How long an idle upstream connection is kept [default: 90s].
    #[arg(
        long,
        env = "DCR_GATEWAY_UPSTREAM_POOL_IDLE_TIMEOUT",
        value_name = "DURATION"
    )]
    pub upstream_pool_idle_timeout: Option<String>,
    /// Largest upstream response body read, in bytes [default: 1048576].
    #[arg(long, env = "DCR_GATEWAY_MAX_RESPONSE_BYTES", value_name = "BYTES")]
    pub max_response_bytes: Option<usize>,
    /// Largest gRPC request message accepted, in bytes [default: 1048576].
    #[arg(long, env = "DCR_GATEWAY_MAX_REQUEST_BYTES", value_name = "BYTES")]
    pub max_request_bytes: Option<usize>,
    /// Deadline for calls that arrive without grpc-timeout, retries included [default: 30s].
    #[arg(long, env = "DCR_GATEWAY_DEFAULT_DEADLINE", value_name = "DURATION")]
    pub default_deadline: Option<String>,
    /// Most upstream attempts for one call, the first included [default: 4].
    #[arg(long, env = "DCR_GATEWAY_MAX_ATTEMPTS", value_name = "N")]
    pub max_attempts: Option<u32>,
    /// First retry backoff; each retry doubles it, with full jitter [default: 50ms].
    #[arg(long, env = "DCR_GATEWAY_RETRY_BACKOFF_BASE", value_name = "DURATION")]
    pub retry_backoff_base: Option<String>,
    /// Longest retry backoff [default: 2s].
    #[arg(long, env = "DCR_GATEWAY_RETRY_BACKOFF_MAX", value_name = "DURATION")]
    pub retry_backoff_max: Option<String>,
    /// Longest Retry-After honoured; longer ones are cut to this [default: 10s].
    #[arg(long, env = "DCR_GATEWAY_RETRY_AFTER_MAX", value_name = "DURATION")]
    pub retry_after_max: Option<String>,
    /// Retries may add at most this percentage to the request rate [default: 20].
    #[arg(long, env = "DCR_GATEWAY_RETRY_BUDGET_PERCENT", value_name = "PERCENT")]
    pub retry_budget_percent: Option<u32>,
    /// Retries allowed per second whatever the request rate [default: 10].
    #[arg(
        long,
        env = "DCR_GATEWAY_RETRY_BUDGET_MIN_PER_SECOND",
        value_name = "N"
    )]
    pub retry_budget_min_per_second: Option<u32>,
    /// Most upstream calls in flight at once [default: 64].
    #[arg(long, env = "DCR_GATEWAY_MAX_IN_FLIGHT", value_name = "N")]
    pub max_in_flight: Option<usize>,
    /// Calls that may wait for an upstream slot; beyond, RESOURCE_EXHAUSTED at once [default: 32].
    #[arg(long, env = "DCR_GATEWAY_MAX_QUEUE", value_name = "N")]
    pub max_queue: Option<usize>,
    /// Longest wait for an upstream slot [default: 1s].
    #[arg(long, env = "DCR_GATEWAY_QUEUE_TIMEOUT", value_name = "DURATION")]
    pub queue_timeout: Option<String>,
    /// Most RPCs served at once; beyond, RESOURCE_EXHAUSTED at once [default: 1024].
    #[arg(long, env = "DCR_GATEWAY_MAX_CONCURRENT_CALLS", value_name = "N")]
    pub max_concurrent_calls: Option<usize>,
    /// Most concurrent calls (HTTP/2 streams) on one gRPC connection [default: 128].
    #[arg(long, env = "DCR_GATEWAY_MAX_STREAMS_PER_CONNECTION", value_name = "N")]
    pub max_streams_per_connection: Option<u32>,
    /// Longest deadline honoured; a longer grpc-timeout is cut to it [default: 5m].
    #[arg(long, env = "DCR_GATEWAY_MAX_DEADLINE", value_name = "DURATION")]
    pub max_deadline: Option<String>,
    /// Most sent register/rotate calls in flight; each finishes and stores its credential even after its caller left [default: 64].
    #[arg(long, env = "DCR_GATEWAY_MAX_DETACHED", value_name = "N")]
    pub max_detached: Option<usize>,
    /// Time a new gRPC or admin connection has to send its first bytes [default: 10s].
    #[arg(long, env = "DCR_GATEWAY_HEADER_READ_TIMEOUT", value_name = "DURATION")]
    pub header_read_timeout: Option<String>,
    /// Interval of HTTP/2 keepalive pings; an unanswered ping closes the connection [default: 30s].
    #[arg(long, env = "DCR_GATEWAY_KEEPALIVE_INTERVAL", value_name = "DURATION")]
    pub keepalive_interval: Option<String>,
    /// Age after which a gRPC connection is closed gracefully, and an admin connection closed [default: 10m].
    #[arg(long, env = "DCR_GATEWAY_IDLE_TIMEOUT", value_name = "DURATION")]
    pub idle_timeout: Option<String>,
    /// After SIGTERM or SIGINT, keep serving this long with health NOT_SERVING before draining [default: 0s].
    #[arg(long, env = "DCR_GATEWAY_SHUTDOWN_DELAY", value_name = "DURATION")]
    pub shutdown_delay: Option<String>,
    /// Time in-flight calls get to finish once draining starts [default: 25s].
    #[arg(long, env = "DCR_GATEWAY_SHUTDOWN_GRACE", value_name = "DURATION")]
    pub shutdown_grace: Option<String>,
    /// Threads that poll calls: 1 runs them all on one thread, the cheapest per call; more for a gateway given more than one core [default: 1].
    #[arg(long, env = "DCR_GATEWAY_WORKER_THREADS", value_name = "N")]
    pub worker_threads: Option<usize>,
    /// File of caller tokens, one `NAME=TOKEN` per line; when set, callers must send
    /// `authorization: Bearer TOKEN` and stored tokens are kept per caller. Or the list
    /// itself in DCR_GATEWAY_CALLERS (comma- or newline-separated).
    #[arg(long, env = "DCR_GATEWAY_CALLERS_FILE", value_name = "FILE")]
    pub callers_file: Option<String>,
    /// Caller tokens inline (`NAME=TOKEN`, comma- or newline-separated). No flag:
    /// `DCR_GATEWAY_CALLERS` ([`CALLERS_ENV`](crate::config::CALLERS_ENV)) or the config file.
    #[arg(skip)]
    pub callers: Option<Secret>,
    /// Upstream profile: sharkauth or rfc7592 [default: sharkauth].
    #[arg(long, env = "DCR_GATEWAY_UPSTREAM_PROFILE", value_name = "PROFILE")]
    pub upstream_profile: Option<String>,
    /// Registration endpoint (rfc7592 profile); unset: discovered from the --upstream issuer.
    #[arg(long, env = "DCR_GATEWAY_REGISTRATION_ENDPOINT", value_name = "URL")]
    pub registration_endpoint: Option<String>,
    /// How often the rfc7592 profile re-discovers a discovered registration endpoint [default: 1h].
    #[arg(
        long,
        env = "DCR_GATEWAY_DISCOVERY_REFRESH_INTERVAL",
        value_name = "DURATION"
    )]
    pub discovery_refresh_interval: Option<String>,
    /// Other origins a registration_client_uri may point to, comma-separated (e.g. https://mgmt.example).
    #[arg(
        long,
        env = "DCR_GATEWAY_ALLOWED_CLIENT_URI_ORIGINS",
        value_name = "ORIGINS"
    )]
    pub allowed_client_uri_origins: Option<String>,
    /// SharkAuth profile: manage clients at the returned registration_client_uri, not the base URL [default: false].
    #[arg(long, env = "DCR_GATEWAY_SHARKAUTH_USE_CLIENT_URI", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub sharkauth_use_client_uri: Option<bool>,
    /// Admin HTTP listener for /metrics, /healthz and /readyz, or `off` [default: 127.0.0.1:9464].
    #[arg(long, env = "DCR_GATEWAY_ADMIN_LISTEN", value_name = "ADDR|off")]
    pub admin_listen: Option<String>,
    /// HTTP listener serving /metrics only, for a scraper outside the pod (probes stay on the admin and health listeners), or `off` [default: off].
    #[arg(long, env = "DCR_GATEWAY_METRICS_LISTEN", value_name = "ADDR|off")]
    pub metrics_listen: Option<String>,
    /// Log line format: text or json [default: text].
    #[arg(long, env = "DCR_GATEWAY_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// OTLP collector base URL; turns on trace and metric export (else OTEL_EXPORTER_OTLP_ENDPOINT).
    #[arg(long, env = "DCR_GATEWAY_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// OTLP protocol: grpc or http/protobuf (else OTEL_EXPORTER_OTLP_PROTOCOL) [default: http/protobuf].
    #[arg(long, env = "DCR_GATEWAY_OTLP_PROTOCOL", value_name = "PROTOCOL")]
    pub otlp_protocol: Option<String>,
    /// Service name in traces and metrics (else OTEL_SERVICE_NAME) [default: dcr-gateway].
    #[arg(long, env = "DCR_GATEWAY_SERVICE_NAME", value_name = "NAME")]
    pub service_name: Option<String>,
    /// How often the declared clients are reconciled (ensured, rotated when due, files rewritten) [default: 5m].
    #[arg(long, env = "DCR_GATEWAY_RECONCILE_INTERVAL", value_name = "DURATION")]
    pub reconcile_interval: Option<String>,
    /// Folder where each declared client's credentials are written as <name>.json; must exist and be writable [default: off].
    #[arg(long, env = "DCR_GATEWAY_CREDENTIALS_DIR", value_name = "DIR")]
    pub credentials_dir: Option<String>,
    /// Mode of the credentials files, octal: 0600, or 0640 for a group-shared volume [default: 0600].
    #[arg(long, env = "DCR_GATEWAY_CREDENTIALS_FILE_MODE", value_name = "MODE")]
    pub credentials_file_mode: Option<String>,
    /// Create --credentials-dir (its parent must exist) mode 0750, so only the gateway can write in it, even inside a volume every container can write (a pod's emptyDir) [default: false].
    #[arg(long, env = "DCR_GATEWAY_CREDENTIALS_DIR_CREATE", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub credentials_dir_create: Option<bool>,
    /// How long a client no longer declared (or replaced after the server lost it) stays registered and listed before it is deleted at the server [default: 1h].
    #[arg(
        long,
        env = "DCR_GATEWAY_RETIRED_CLIENT_GRACE",
        value_name = "DURATION"
    )]
    pub retired_client_grace: Option<String>,
    /// Most managed clients one caller namespace may hold; EnsureClient of one more is RESOURCE_EXHAUSTED [default: 1000].
    #[arg(
        long,
        env = "DCR_GATEWAY_MAX_MANAGED_CLIENTS_PER_NAMESPACE",
        value_name = "N"
    )]
    pub max_managed_clients_per_namespace: Option<usize>,
    /// Most WatchClient streams one caller namespace may hold open [default: 100].
    #[arg(long, env = "DCR_GATEWAY_MAX_WATCHES_PER_NAMESPACE", value_name = "N")]
    pub max_watches_per_namespace: Option<usize>,
    /// Where registration access tokens are kept (the `[token_store]` table in the file).
    #[command(flatten)]
    #[serde(default)]
    pub token_store: RawStoreConfig,
    /// Declared clients: the `[[clients]]` tables of the config file, ensured
    /// at start and every --reconcile-interval. No flag.
    #[arg(skip)]
    #[serde(default, deserialize_with = "super::managed::clients_in_place")]
    pub clients: Vec<super::RawClient>,
}

/// Token store settings: flags `--token-store*`, or the `[token_store]` table of
/// the config file.
#[derive(Args, Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawStoreConfig {
    /// Token store backend: memory, file, redis, redis-cluster or redis-sentinel [default: file; memory with --dev-upstream].
    #[arg(
        global = true,
        long = "token-store",
        env = "DCR_GATEWAY_TOKEN_STORE",
        value_name = "BACKEND"
    )]
    pub backend: Option<String>,
    /// Database file of the file backend [default: dcr-gateway-tokens.redb].
    #[arg(
        global = true,
        long = "token-store-path",
        env = "DCR_GATEWAY_TOKEN_STORE_PATH",
        value_name = "FILE"
    )]
    pub path: Option<String>,
    /// URL of the redis backend, redis:// or rediss:// (may carry a password); for redis-cluster,
    /// the seed nodes, and for redis-sentinel the sentinels, comma-separated.
    #[arg(
        global = true,
        long = "token-store-redis-url",
        env = "DCR_GATEWAY_TOKEN_STORE_REDIS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub redis_url: Option<Secret>,
    /// File holding the URL of the redis backend (surrounding whitespace ignored): a
    /// mounted Secret, so a password need be neither in the environment nor on the command line.
    #[arg(
        global = true,
        long = "token-store-redis-url-file",
        env = "DCR_GATEWAY_TOKEN_STORE_REDIS_URL_FILE",
        value_name = "FILE"
    )]
    pub redis_url_file: Option<String>,
    /// The master name the sentinels watch (redis-sentinel only).
    #[arg(
        global = true,
        long = "token-store-redis-sentinel-master",
        env = "DCR_GATEWAY_TOKEN_STORE_REDIS_SENTINEL_MASTER",
        value_name = "NAME"
    )]
    pub redis_sentinel_master: Option<String>,
    /// Replicas every credential write waits for before it is answered (WAIT), 0 to 16
    /// [default: 1 where the servers have replicas at start, 0 on a lone node].
    #[arg(
        global = true,
        long = "token-store-redis-min-replicas",
        env = "DCR_GATEWAY_TOKEN_STORE_REDIS_MIN_REPLICAS",
        value_name = "N"
    )]
    pub redis_min_replicas: Option<u32>,
    /// Longest wait for those replicas (the call's deadline may cut it shorter), 1ms to 1500ms
    /// [default: 1s].
    #[arg(
        global = true,
        long = "token-store-redis-replica-wait",
        env = "DCR_GATEWAY_TOKEN_STORE_REDIS_REPLICA_WAIT",
        value_name = "DURATION"
    )]
    pub redis_replica_wait: Option<String>,
    /// Name before every key of the redis backend (keys are NAME:...): 1 to 64 of A-Z a-z 0-9 _ -,
    /// so no deployment's keys fall inside another's [default: dcr-gateway].
    #[arg(
        global = true,
        long = "token-store-redis-prefix",
        env = "DCR_GATEWAY_TOKEN_STORE_REDIS_PREFIX",
        value_name = "PREFIX"
    )]
    pub redis_prefix: Option<String>,
    /// Keyring file for encryption at rest: one `ID=BASE64` 32-byte key per line; the first
    /// seals new values. Or the keyring itself in DCR_GATEWAY_TOKEN_STORE_KEYS (comma-separated).
    #[arg(
        global = true,
        long = "token-store-keys-file",
        env = "DCR_GATEWAY_TOKEN_STORE_KEYS_FILE",
        value_name = "FILE"
    )]
    pub keys_file: Option<String>,
    /// The keyring inline (`ID=BASE64`, comma-separated). No flag:
    /// `DCR_GATEWAY_TOKEN_STORE_KEYS` ([`TOKEN_STORE_KEYS_ENV`](crate::config::TOKEN_STORE_KEYS_ENV))
    /// or the config file.
    #[arg(skip)]
    pub keys: Option<Secret>,
    /// Allow a file or redis store without a keyring, tokens in the clear (a loud warning at start) [default: false].
    #[arg(global = true, long = "allow-plaintext-store", env = "DCR_GATEWAY_ALLOW_PLAINTEXT_STORE", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub allow_plaintext_store: Option<bool>,
    /// Most tokens kept by the memory backend [default: 100000].
    #[arg(
        global = true,
        long = "token-store-max-entries",
        env = "DCR_GATEWAY_TOKEN_STORE_MAX_ENTRIES",
        value_name = "N"
    )]
    pub max_entries: Option<usize>,
}

/// Builds `$ty` taking each listed field from `$high`, or from `$low` when
/// unset; fields after `;` are given as is.
macro_rules! overlay {
    ($ty:ident, $high:expr, $low:expr, $($field:ident),+ ; $($other:ident: $value:expr),* $(,)?) => {
        $ty { $($field: $high.$field.or($low.$field),)+ $($other: $value),* }
    };
}

impl RawConfig {
    /// `self` with every unset setting taken from `lower`.
    pub fn over(self, lower: RawConfig) -> RawConfig {
        let token_store = self.token_store.over(lower.token_store);
        overlay!(
            RawConfig, self, lower, listen, unix_socket_mode, health_listen, tls_cert, tls_key,
            tls_client_ca, tls_reload_interval, upstream_ca_file, upstream_client_cert,
            upstream_client_key, require_upstream_tls, initial_access_token,
            initial_access_token_file, upstream, dev_upstream, upstream_timeout, connect_timeout,
            upstream_http2, upstream_pool_max_idle, upstream_pool_idle_timeout, max_response_bytes,
            max_request_bytes, default_deadline, max_attempts, retry_backoff_base, retry_backoff_max,
            retry_after_max, retry_budget_percent, retry_budget_min_per_second, max_in_flight, max_queue,
            queue_timeout, max_concurrent_calls, max_streams_per_connection, max_deadline, max_detached,
            header_read_timeout, keepalive_interval, idle_timeout, shutdown_delay, shutdown_grace, worker_threads, callers_file, callers, admin_listen, metrics_listen, log_format,
            otlp_endpoint, otlp_protocol, service_name, upstream_profile, registration_endpoint,
            discovery_refresh_interval, allowed_client_uri_origins, sharkauth_use_client_uri,
            reconcile_interval, credentials_dir, credentials_file_mode, credentials_dir_create,
            retired_client_grace, max_managed_clients_per_namespace, max_watches_per_namespace;
            token_store: token_store,
            // Declared clients come whole from one source: the first that has any.
            clients: if self.clients.is_empty() { lower.clients } else { self.clients }
        )
    }
}

impl RawStoreConfig {
    /// `self` with every unset setting taken from `lower`.
    pub fn over(self, lower: RawStoreConfig) -> RawStoreConfig {
        overlay!(
            RawStoreConfig, self, lower, backend, path, redis_url, redis_url_file, redis_sentinel_master,
            redis_min_replicas, redis_replica_wait, redis_prefix, keys_file, keys,
            allow_plaintext_store, max_entries;
        )
    }
}
