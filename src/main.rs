//! The `dcr-gateway` binary: parse the command line and run it; an error is
//! one line on standard error and a non-zero exit.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use dcr_gateway::cli::Cli;

/// mimalloc, not glibc's malloc: with glibc the runtime's threads contend on
/// the allocator's arena locks on every call (feature `mimalloc`, on by
/// default; docs/performance/memory.md has the measurements).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
