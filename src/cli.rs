//! The command line: `serve`, `dev-upstream` and `call`.
//!
//! Every `serve` flag has a `DCR_GATEWAY_*` environment variable and a key of the
//! same name (with `_`) in the `--config` TOML file; flags win over the
//! environment, which wins over the file, which wins over the defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::call::CallArgs;
use crate::config::{ConfigError, RawConfig};

/// dcr-gateway: a gRPC sidecar for OAuth 2.0 Dynamic Client Registration
/// (RFC 7591/7592) against SharkAuth.
#[derive(Debug, Parser)]
#[command(name = "dcr-gateway", version)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve(ServeArgs),
    /// Run the SharkAuth-compatible dev upstream on its own (not a real
    /// authorization server: for demos and tests only).
    DevUpstream(DevUpstreamArgs),
    /// Call a running gateway and print the reply as JSON.
    Call(CallArgs),
}

/// Flags of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys use `_`, e.g. `upstream_timeout = "5s"`).
    #[arg(long, env = "DCR_GATEWAY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:50051].
    #[arg(long, env = "DCR_GATEWAY_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Base URL of the authorization server, e.g. https://auth.example.com.
    #[arg(long, env = "DCR_GATEWAY_UPSTREAM", value_name = "URL")]
    pub upstream: Option<String>,
    /// Start the built-in dev upstream on a loopback port and use it instead of --upstream.
    #[arg(long, env = "DCR_GATEWAY_DEV_UPSTREAM", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub dev_upstream: Option<bool>,
    /// Limit for one upstream HTTP request, connection included [default: 10s].
    #[arg(long, env = "DCR_GATEWAY_UPSTREAM_TIMEOUT", value_name = "DURATION")]
    pub upstream_timeout: Option<String>,
    /// Limit for establishing an upstream connection [default: 3s].
    #[arg(long, env = "DCR_GATEWAY_CONNECT_TIMEOUT", value_name = "DURATION")]
    pub connect_timeout: Option<String>,
    /// Largest upstream response body read, in bytes [default: 1048576].
    #[arg(long, env = "DCR_GATEWAY_MAX_RESPONSE_BYTES", value_name = "BYTES")]
    pub max_response_bytes: Option<usize>,
    /// Largest gRPC request message accepted, in bytes [default: 1048576].
    #[arg(long, env = "DCR_GATEWAY_MAX_REQUEST_BYTES", value_name = "BYTES")]
    pub max_request_bytes: Option<usize>,
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

impl ServeArgs {
    /// Merges flags and environment over the config file, then validates.
    pub fn load(self) -> Result<crate::config::Config, ConfigError> {
        let file = match &self.config {
            Some(path) => RawConfig::from_file(path)?,
            None => RawConfig::default(),
        };
        let given = RawConfig {
            listen: self.listen,
            upstream: self.upstream,
            dev_upstream: self.dev_upstream,
            upstream_timeout: self.upstream_timeout,
            connect_timeout: self.connect_timeout,
            max_response_bytes: self.max_response_bytes,
            max_request_bytes: self.max_request_bytes,
            shutdown_delay: self.shutdown_delay,
            shutdown_grace: self.shutdown_grace,
            token_store_max_entries: self.token_store_max_entries,
        };
        given.over(file).validate()
    }
}

/// Flags of `dev-upstream`.
#[derive(Debug, Args)]
pub struct DevUpstreamArgs {
    /// Listen address.
    #[arg(
        long,
        env = "DCR_GATEWAY_DEV_UPSTREAM_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,
    /// Issuer used in every registration_client_uri [default: http://<listen address>].
    #[arg(long, env = "DCR_GATEWAY_DEV_UPSTREAM_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,
}
