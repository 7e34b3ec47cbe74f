//! The `dcr-gateway` binary: parse the command line and run it; an error is
//! one line on standard error and a non-zero exit.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use dcr_gateway::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dcr-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
