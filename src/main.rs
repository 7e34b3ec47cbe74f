//! The `dcr-gateway` binary: parse the command line, run it.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use dcr_gateway::cli::{Cli, Command};
use dcr_gateway::dev_upstream::DevUpstream;
use dcr_gateway::server::{Gateway, shutdown_signal};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_filter = if matches!(cli.command, Command::Call(_) | Command::Tokens(_)) {
        "warn"
    } else {
        "info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let result: Result<(), String> = match cli.command {
        Command::Serve(args) => match args.load() {
            Ok(config) => match Gateway::bind(config).await {
                Ok(gateway) => gateway
                    .serve(shutdown_signal())
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        },
        Command::DevUpstream(args) => match DevUpstream::start(args.listen, args.issuer).await {
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
        },
        Command::Tokens(args) => dcr_gateway::tokens_cmd::run(args)
            .await
            .map(|out| println!("{out}")),
        Command::Call(args) => dcr_gateway::call::run(args)
            .await
            .map(|json| println!("{json}"))
            .map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dcr-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
