//! One validated configuration for `dcr-gateway serve`.
//!
//! Sources, lowest precedence first: the defaults below, an optional TOML file
//! (`--config`), `DCR_GATEWAY_*` environment variables, then flags. Everything is
//! checked here, at start, so a bad value is one clear line naming the setting,
//! never a failure on the first call.

mod duration;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

pub use duration::{format_duration, parse_duration};

/// Default gRPC listen address: loopback, as a sidecar is called from its pod.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// Default limit for one upstream HTTP request, connection included.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// Default limit for establishing an upstream connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default cap on an upstream response body (SharkAuth caps requests at 1 MiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Default cap on one gRPC request message.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1 << 20;
/// Default time in-flight calls get to finish after SIGTERM; below Kubernetes'
/// default 30 s termination grace so the drain completes before SIGKILL.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(25);
/// Default time between a shutdown signal and the stop of accepting calls, during
/// which health already answers NOT_SERVING so load balancers and probes can
/// steer callers away first.
pub const DEFAULT_SHUTDOWN_DELAY: Duration = Duration::ZERO;
/// Default capacity of the in-memory token store.
pub const DEFAULT_TOKEN_STORE_MAX_ENTRIES: usize = crate::store::DEFAULT_MAX_ENTRIES;

/// Shortest timeout or grace period accepted.
const MIN_DURATION: Duration = Duration::from_millis(1);
/// Longest timeout, delay or grace period accepted.
const MAX_DURATION: Duration = Duration::from_secs(600);
/// Byte limits accepted, for both the request and the response cap.
const BYTE_LIMITS: std::ops::RangeInclusive<usize> = 1024..=64 << 20;

/// Which authorization server the gateway talks to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamChoice {
    /// A real server at this base URL.
    Url(Url),
    /// The in-process dev upstream (`--dev-upstream`), on an ephemeral loopback port.
    Dev,
}

/// The validated configuration of `serve`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// The authorization server.
    pub upstream: UpstreamChoice,
    /// Limit for one upstream HTTP request.
    pub upstream_timeout: Duration,
    /// Limit for establishing an upstream connection.
    pub connect_timeout: Duration,
    /// Cap on an upstream response body, in bytes.
    pub max_response_bytes: usize,
    /// Cap on one gRPC request message, in bytes.
    pub max_request_bytes: usize,
    /// Time health reports NOT_SERVING, still serving, before draining starts.
    pub shutdown_delay: Duration,
    /// Time in-flight calls get to finish once draining starts.
    pub shutdown_grace: Duration,
    /// Capacity of the in-memory token store.
    pub token_store_max_entries: usize,
}

/// Settings as given, before defaults and validation: the shape of the TOML file
/// and of the flags (which clap fills from flags or `DCR_GATEWAY_*`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// See [`Config::listen`].
    pub listen: Option<String>,
    /// Base URL of the authorization server.
    pub upstream: Option<String>,
    /// Use the in-process dev upstream.
    pub dev_upstream: Option<bool>,
    /// See [`Config::upstream_timeout`], e.g. `10s`.
    pub upstream_timeout: Option<String>,
    /// See [`Config::connect_timeout`].
    pub connect_timeout: Option<String>,
    /// See [`Config::max_response_bytes`].
    pub max_response_bytes: Option<usize>,
    /// See [`Config::max_request_bytes`].
    pub max_request_bytes: Option<usize>,
    /// See [`Config::shutdown_delay`].
    pub shutdown_delay: Option<String>,
    /// See [`Config::shutdown_grace`].
    pub shutdown_grace: Option<String>,
    /// See [`Config::token_store_max_entries`].
    pub token_store_max_entries: Option<usize>,
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

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

impl RawConfig {
    /// Reads a TOML file of settings.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.message().to_owned(),
        })
    }

    /// `self` with every unset setting taken from `lower`.
    pub fn over(self, lower: RawConfig) -> RawConfig {
        RawConfig {
            listen: self.listen.or(lower.listen),
            upstream: self.upstream.or(lower.upstream),
            dev_upstream: self.dev_upstream.or(lower.dev_upstream),
            upstream_timeout: self.upstream_timeout.or(lower.upstream_timeout),
            connect_timeout: self.connect_timeout.or(lower.connect_timeout),
            max_response_bytes: self.max_response_bytes.or(lower.max_response_bytes),
            max_request_bytes: self.max_request_bytes.or(lower.max_request_bytes),
            shutdown_delay: self.shutdown_delay.or(lower.shutdown_delay),
            shutdown_grace: self.shutdown_grace.or(lower.shutdown_grace),
            token_store_max_entries: self
                .token_store_max_entries
                .or(lower.token_store_max_entries),
        }
    }

    /// Applies defaults and validates every setting.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let listen = self.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = listen.parse().map_err(|_| {
            invalid(
                "--listen",
                format!("{listen:?} is not an address such as 127.0.0.1:50051"),
            )
        })?;
        let upstream = match (self.upstream, self.dev_upstream.unwrap_or(false)) {
            (Some(_), true) => {
                return Err(invalid(
                    "--upstream",
                    "give --upstream or --dev-upstream, not both",
                ));
            }
            (None, false) => {
                return Err(invalid(
                    "--upstream",
                    "required: the authorization server's base URL (or --dev-upstream for the built-in dev server)",
                ));
            }
            (None, true) => UpstreamChoice::Dev,
            (Some(url), false) => UpstreamChoice::Url(upstream_url(&url)?),
        };
        Ok(Config {
            listen,
            upstream,
            upstream_timeout: duration(
                "--upstream-timeout",
                self.upstream_timeout,
                DEFAULT_UPSTREAM_TIMEOUT,
                MIN_DURATION,
            )?,
            connect_timeout: duration(
                "--connect-timeout",
                self.connect_timeout,
                DEFAULT_CONNECT_TIMEOUT,
                MIN_DURATION,
            )?,
            max_response_bytes: bytes(
                "--max-response-bytes",
                self.max_response_bytes,
                DEFAULT_MAX_RESPONSE_BYTES,
            )?,
            max_request_bytes: bytes(
                "--max-request-bytes",
                self.max_request_bytes,
                DEFAULT_MAX_REQUEST_BYTES,
            )?,
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
            token_store_max_entries: match self.token_store_max_entries {
                Some(0) => return Err(invalid("--token-store-max-entries", "must be at least 1")),
                Some(n) => n,
                None => DEFAULT_TOKEN_STORE_MAX_ENTRIES,
            },
        })
    }
}

/// The upstream base URL: http(s), a host, no credentials, query or fragment
/// (a URL with credentials would put them in every log line that names it).
fn upstream_url(text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text)
        .map_err(|e| invalid("--upstream", format!("{text:?} is not a URL: {e}")))?;
    let reason = if !matches!(url.scheme(), "http" | "https") {
        "must be an http:// or https:// URL"
    } else if url.host().is_none() {
        "must name a host"
    } else if !url.username().is_empty() || url.password().is_some() {
        "must not contain credentials"
    } else if url.query().is_some() || url.fragment().is_some() {
        "must not have a query or fragment"
    } else {
        return Ok(url);
    };
    Err(invalid("--upstream", reason))
}

fn duration(
    setting: &'static str,
    value: Option<String>,
    default: Duration,
    min: Duration,
) -> Result<Duration, ConfigError> {
    let Some(text) = value else {
        return Ok(default);
    };
    let d = parse_duration(&text).map_err(|e| invalid(setting, e))?;
    if d < min || d > MAX_DURATION {
        let (min, max) = (format_duration(min), format_duration(MAX_DURATION));
        return Err(invalid(setting, format!("must be between {min} and {max}")));
    }
    Ok(d)
}

fn bytes(
    setting: &'static str,
    value: Option<usize>,
    default: usize,
) -> Result<usize, ConfigError> {
    match value {
        None => Ok(default),
        Some(n) if BYTE_LIMITS.contains(&n) => Ok(n),
        Some(_) => Err(invalid(
            setting,
            format!(
                "must be between {} and {} bytes",
                BYTE_LIMITS.start(),
                BYTE_LIMITS.end()
            ),
        )),
    }
}

#[cfg(test)]
mod tests;
