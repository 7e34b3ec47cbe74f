//! What a call learns of how durable its writes were, and by when it must
//! answer.
//!
//! A store that replicates (Redis with replicas) waits for replicas after
//! each credential write; when the wait falls short, the credential is
//! stored but may not survive a failover, and the caller must be told. The
//! store knows nothing of the call and the edge nothing of the store: both
//! meet here, in a report the edge opens around a call and the store writes
//! into. The report is task-local, and [`carried`] takes it into the tasks a
//! call spawns (its detached send, an ensure), so writes made there count.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

tokio::task_local! {
    static REPORT: Arc<WriteReport>;
}

/// One call's writes: whether any fell short of its replicas, and the
/// call's deadline (a replica wait must not outlast it).
#[derive(Debug, Default)]
pub struct WriteReport {
    deadline: Option<Instant>,
    short: AtomicBool,
}

impl WriteReport {
    /// A report for a call that must answer by `deadline`.
    pub fn new(deadline: Option<Instant>) -> Arc<Self> {
        Arc::new(Self {
            deadline,
            short: AtomicBool::new(false),
        })
    }

    /// Whether a credential this call stored may not survive a failover.
    pub fn short(&self) -> bool {
        self.short.load(Ordering::Acquire)
    }

    /// Runs `fut` with `self` as the current report.
    pub async fn around<F: Future>(self: Arc<Self>, fut: F) -> F::Output {
        REPORT.scope(self, fut).await
    }
}

/// `fut` with the current report (if any) as its own: for a task a call
/// spawns, whose writes are the call's.
pub fn carried<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    let report = REPORT.try_with(Arc::clone).ok();
    async move {
        match report {
            Some(report) => report.around(fut).await,
            None => fut.await,
        }
    }
}

/// Tells the current call (if any) that a credential it stored reached
/// fewer replicas than asked.
pub fn note_short() {
    let _ = REPORT.try_with(|r| r.short.store(true, Ordering::Release));
}

/// The current call's deadline, if it has one.
pub fn deadline() -> Option<Instant> {
    REPORT.try_with(|r| r.deadline).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_short_write_in_a_spawned_task_reaches_the_call() {
        let report = WriteReport::new(None);
        report
            .clone()
            .around(async {
                tokio::spawn(carried(async { note_short() })).await.unwrap();
            })
            .await;
        assert!(report.short());
        // Outside any call, nothing to tell and nothing breaks.
        note_short();
        assert_eq!(deadline(), None);
    }
}
