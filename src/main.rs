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

/// Most threads for blocking work: file-store writes waiting for their
/// group's commit, credentials files, name resolution. With tokio's default
/// (512), 64 concurrent registrations on the file store held 64 threads,
/// each with its stack and its own allocator heap: the gateway's resident
/// memory grew by tens of MiB. Past this many, blocking work queues for a
/// thread, and a write group takes every writer that has one.
const MAX_BLOCKING_THREADS: usize = 8;

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(Cli::parse().run()),
        Err(e) => {
            eprintln!("dcr-gateway: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
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
