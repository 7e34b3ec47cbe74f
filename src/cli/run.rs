//! What each subcommand runs. The one place a command's error becomes a boxed
//! error: the binary prints it and exits non-zero.

use std::error::Error;

use super::{Cli, Command, runtime};
use crate::config::{Config, ConfigError};
use crate::server::{Gateway, shutdown_signal};
use crate::telemetry;

/// A command ready to run, with what its runtime needs to be built.
#[derive(Debug)]
pub struct Prepared {
    command: Ready,
}

/// `serve` with its settings loaded and checked, or another command.
// Made once at start; boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Ready {
    Serve(Config),
    Other(Command),
}

impl Cli {
    /// Loads and checks `serve`'s settings (every other command is ready as
    /// parsed): they are needed before the runtime starts, as they say how
    /// many threads it has.
    pub fn prepare(self) -> Result<Prepared, ConfigError> {
        let command = match self.command {
            Command::Serve(args) => Ready::Serve(args.load()?),
            other => Ready::Other(other),
        };
        Ok(Prepared { command })
    }
}

impl Prepared {
    /// The runtime to run the command on: `serve`'s `--worker-threads`, one
    /// thread for the tools.
    pub fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        runtime::build(match &self.command {
            Ready::Serve(config) => config.worker_threads,
            Ready::Other(_) => 1,
        })
    }

    /// Runs the command to completion; a command that prints prints its
    /// result to standard output.
    pub async fn run(self) -> Result<(), Box<dyn Error>> {
        let command = match self.command {
            Ready::Serve(config) => return serve(config).await,
            Ready::Other(command) => command,
        };
        match command {
            Command::Serve(_) => Err("serve was not prepared: a broken invariant".into()),
            #[cfg(feature = "dev-upstream")]
            Command::DevUpstream(args) => dev_upstream(args).await,
            Command::Tokens(args) => {
                telemetry::init_logs("warn");
                println!("{}", super::tokens::run(args).await?);
                Ok(())
            }
            Command::Call(args) => {
                telemetry::init_logs("warn");
                println!("{}", super::call::run(args).await?);
                Ok(())
            }
        }
    }
}

async fn serve(config: Config) -> Result<(), Box<dyn Error>> {
    let telemetry = telemetry::init(&config.telemetry, "info")?;
    let result = match Gateway::bind_with(config, telemetry.metrics.clone()).await {
        Ok(gateway) => gateway.serve(shutdown_signal()).await,
        Err(e) => Err(e),
    };
    telemetry.shutdown();
    Ok(result?)
}

#[cfg(feature = "dev-upstream")]
async fn dev_upstream(args: super::DevUpstreamArgs) -> Result<(), Box<dyn Error>> {
    telemetry::init_logs("info");
    let dev = dcr_dev_upstream::DevUpstream::start(args.listen, args.issuer)
        .await
        .map_err(|e| format!("--listen {}: {e}", args.listen))?;
    tracing::warn!(
        "dev upstream on {}: NOT a real authorization server",
        dev.base_url()
    );
    tokio::select! {
        r = dev.wait() => Ok(r?),
        () = shutdown_signal() => Ok(()),
    }
}
