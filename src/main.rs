//! The `dcr-gateway` binary: parse the command line, set up telemetry, run.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use dcr_gateway::cli::{Cli, Command, ServeArgs};
use dcr_gateway::dev_upstream::DevUpstream;
use dcr_gateway::server::{Gateway, shutdown_signal};
use dcr_gateway::telemetry;

#[tokio::main]
async fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::DevUpstream(args) => {
            logs_only("info");
            match DevUpstream::start(args.listen, args.issuer).await {
                Ok(dev) => {
                    tracing::warn!(
                        "dev upstream on {}: NOT a real authorization server",
                        dev.base_url()
                    );
                    tokio::select! {
                        r = dev.wait() => r.map_err(|e| e.to_string()),
                        () = shutdown_signal() => Ok(()),
                    }
                }
                Err(e) => Err(format!("--listen {}: {e}", args.listen)),
            }
        }
        Command::Tokens(args) => {
            logs_only("warn");
            dcr_gateway::tokens_cmd::run(args)
                .await
                .map(|out| println!("{out}"))
        }
        Command::Call(args) => {
            logs_only("warn");
            dcr_gateway::call::run(args)
                .await
                .map(|json| println!("{json}"))
                .map_err(|e| e.to_string())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dcr-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Text logs to standard error, for the commands that export nothing.
fn logs_only(default_filter: &str) {
    telemetry::init_logs(default_filter);
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let config = args.load().map_err(|e| e.to_string())?;
    let telemetry = telemetry::init(&config.telemetry, "info").map_err(|e| e.to_string())?;
    let result = match Gateway::bind_with(config, telemetry.metrics.clone()).await {
        Ok(gateway) => gateway
            .serve(shutdown_signal())
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    telemetry.shutdown();
    result
}
