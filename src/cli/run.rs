//! What each subcommand runs. The one place a command's error becomes a boxed
//! error: the binary prints it and exits non-zero.

use std::error::Error;

use super::{Cli, Command, ServeArgs};
use crate::server::{Gateway, shutdown_signal};
use crate::telemetry;

impl Cli {
    /// Runs the chosen subcommand to completion; a command that prints prints
    /// its result to standard output.
    pub async fn run(self) -> Result<(), Box<dyn Error>> {
        match self.command {
            Command::Serve(args) => serve(args).await,
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

async fn serve(args: ServeArgs) -> Result<(), Box<dyn Error>> {
    let config = args.load()?;
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
