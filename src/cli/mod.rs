//! The command line: `serve`, `dev-upstream`, `call` and `tokens`, and what
//! each runs (`run.rs`; the tools in `call.rs` and `tokens.rs`).
//!
//! Every `serve` flag has a `DCR_GATEWAY_*` environment variable and a key of the
//! same name (with `_`) in the `--config` TOML file; flags win over the
//! environment, which wins over the file, which wins over the defaults. Secret
//! values have a variable and a key but no flag (see `config::secret`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod call;
mod managed_records;
mod run;
mod runtime;
mod tokens;

pub use call::CallArgs;
pub use run::Prepared;
pub use tokens::TokensArgs;

use crate::config::{ConfigError, RawConfig};

/// dcr-gateway: a gRPC sidecar for OAuth 2.0 Dynamic Client Registration
/// (RFC 7591/7592) against any RFC 7591/7592 authorization server, SharkAuth
/// included.
#[derive(Debug, Parser)]
#[command(name = "dcr-gateway", version)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// Parsed once at start; boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve(ServeArgs),
    /// Run the SharkAuth-compatible dev upstream on its own (not a real
    /// authorization server: for demos and tests only).
    #[cfg(feature = "dev-upstream")]
    DevUpstream(DevUpstreamArgs),
    /// Call a running gateway and print the reply as JSON.
    Call(CallArgs),
    /// Inspect and manage the stored registration access tokens.
    Tokens(TokensArgs),
}

/// Flags of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys use `_`, e.g. `upstream_timeout = "5s"`).
    #[arg(long, env = "DCR_GATEWAY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The settings given as flags or environment variables.
    #[command(flatten)]
    pub settings: RawConfig,
}

impl ServeArgs {
    /// Merges flags and environment over the config file, then validates.
    pub fn load(self) -> Result<crate::config::Config, ConfigError> {
        let file = match &self.config {
            Some(path) => RawConfig::from_file(path)?,
            None => RawConfig::default(),
        };
        self.settings
            .over(RawConfig::secret_env()?)
            .over(file)
            .validate()
    }
}

/// Flags of `dev-upstream`.
#[cfg(feature = "dev-upstream")]
#[derive(Debug, Args)]
pub struct DevUpstreamArgs {
    /// Listen address.
    #[arg(
        long,
        env = "DCR_GATEWAY_DEV_UPSTREAM_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: std::net::SocketAddr,
    /// Issuer used in every registration_client_uri [default: http://<listen address>].
    #[arg(long, env = "DCR_GATEWAY_DEV_UPSTREAM_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,
}
