//! The async runtime `dcr-gateway` runs on, built from `--worker-threads`.
//!
//! One worker (the default) is a current-thread runtime, as linkerd2-proxy
//! runs when given one core: every task of a call (the gRPC connection, the
//! call, the upstream connection) is polled on one thread, so a call never
//! pays for waking a task on another thread or for an idle worker spinning
//! to steal it. Measured with `dcr-bench --focus`, that cut CPU per call by
//! about a quarter at concurrency 1 and a third at 16, and served more calls
//! per second at 16 than two workers did on two cores (README,
//! Performance). More workers are a multi-thread runtime, for a gateway
//! given more than one core and more calls than one core serves.

use tokio::runtime::{Builder, Runtime};

/// Most threads for blocking work: file-store reads of records and lists,
/// credentials files, name resolution (file-store writes have the store's
/// writer thread). With tokio's default (512), a burst of blocking work
/// held a thread per call, each with its stack and its own allocator heap:
/// 64 concurrent registrations, when writes waited on these threads, grew
/// the gateway's resident memory by tens of MiB. Past this many, blocking
/// work queues for a thread.
pub const MAX_BLOCKING_THREADS: usize = 8;

/// The runtime for `worker_threads` workers (at least one).
pub fn build(worker_threads: usize) -> std::io::Result<Runtime> {
    let mut builder = if worker_threads <= 1 {
        Builder::new_current_thread()
    } else {
        let mut builder = Builder::new_multi_thread();
        builder.worker_threads(worker_threads);
        builder
    };
    builder
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
}
