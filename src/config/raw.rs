//! Settings as given, before defaults and validation. One struct is both the
//! `serve` flags (each with a `DCR_GATEWAY_*` variable) and the TOML file, so
//! the two can never drift apart.

use clap::Args;
use serde::Deserialize;

/// Every `serve` setting, unset when not given. Doc comments are the `--help`
/// text; defaults live in `config.rs` and are shown here for the reader.
#[derive(Args, Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// gRPC listen address [default: 127.0.0.1:50051].
    #[arg(long, env = "DCR_GATEWAY_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Base URL of the authorization server, e.g. https://auth.example.com.
    #[arg(long, env = "DCR_GATEWAY_UPSTREAM", value_name = "URL")]
    pub upstream: Option<String>,
    /// Start the built-in dev upstream on a loopback port and use it instead of --upstream.
    #[arg(long, env = "DCR_GATEWAY_DEV_UPSTREAM", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub dev_upstream: Option<bool>,
    /// Limit for one upstream HTTP attempt, connection included [default: 10s].
    #[arg(long, env = "DCR_GATEWAY_UPSTREAM_TIMEOUT", value_name = "DURATION")]
    pub upstream_timeout: Option<String>,
    /// Limit for establishing an upstream connection [default: 3s].
    #[arg(long, env = "DCR_GATEWAY_CONNECT_TIMEOUT", value_name = "DURATION")]
    pub connect_timeout: Option<String>,
    /// Speak HTTP/2 to the upstream (prior knowledge on http://, ALPN on https://) [default: false].
    #[arg(long, env = "DCR_GATEWAY_UPSTREAM_HTTP2", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
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
    /// After SIGTERM or SIGINT, keep serving this long with health NOT_SERVING before draining [default: 0s].
    #[arg(long, env = "DCR_GATEWAY_SHUTDOWN_DELAY", value_name = "DURATION")]
    pub shutdown_delay: Option<String>,
    /// Time in-flight calls get to finish once draining starts [default: 25s].
    #[arg(long, env = "DCR_GATEWAY_SHUTDOWN_GRACE", value_name = "DURATION")]
    pub shutdown_grace: Option<String>,
    /// Most registration access tokens kept in memory [default: 100000].
    #[arg(long, env = "DCR_GATEWAY_TOKEN_STORE_MAX_ENTRIES", value_name = "N")]
    pub token_store_max_entries: Option<usize>,
}

/// Takes each unset field of `$high` from `$low`.
macro_rules! overlay {
    ($high:expr, $low:expr, $($field:ident),+ $(,)?) => {
        RawConfig { $($field: $high.$field.or($low.$field)),+ }
    };
}

impl RawConfig {
    /// `self` with every unset setting taken from `lower`.
    pub fn over(self, lower: RawConfig) -> RawConfig {
        overlay!(
            self,
            lower,
            listen,
            upstream,
            dev_upstream,
            upstream_timeout,
            connect_timeout,
            upstream_http2,
            upstream_pool_max_idle,
            upstream_pool_idle_timeout,
            max_response_bytes,
            max_request_bytes,
            default_deadline,
            max_attempts,
            retry_backoff_base,
            retry_backoff_max,
            retry_after_max,
            retry_budget_percent,
            retry_budget_min_per_second,
            max_in_flight,
            max_queue,
            queue_timeout,
            shutdown_delay,
            shutdown_grace,
            token_store_max_entries,
        )
    }
}
