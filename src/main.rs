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

fn main() -> ExitCode {
    // `serve`'s settings are read before the runtime starts: they say how
    // many threads it has.
    let prepared = match Cli::parse().prepare() {
        Ok(prepared) => prepared,
        Err(e) => {
            eprintln!("dcr-gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match prepared.runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("dcr-gateway: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(prepared.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dcr-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
