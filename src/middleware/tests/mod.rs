//! Unit tests for every layer, each against a scripted inner service (tower's
//! `service_fn`) and, where time matters, tokio's paused clock: they run in
//! milliseconds and cannot flake.

mod client_lock;
mod lease;
mod masked_update;
mod observe;
mod retry;
mod shed;
mod tokens;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use secrecy::SecretString;
use tower::util::BoxCloneSyncService;

use crate::dcr::{Client, ClientRef, DcrCall, DcrError, DcrRequest, DcrResponse, UpstreamFailure};

/// What an inner service was asked, in order.
pub type Seen = Arc<Mutex<Vec<DcrRequest>>>;

/// The inner service every test wraps.
pub type Inner = BoxCloneSyncService<DcrRequest, DcrResponse, DcrError>;

/// One scripted answer, made fresh each time it is given (errors are not
/// `Clone`).
pub type Answer = fn() -> Result<DcrResponse, DcrError>;

/// An inner service that answers each call with the next of `answers` (the
/// last repeats) and records every request.
pub fn scripted(answers: Vec<Answer>) -> (Inner, Seen) {
    let seen = Seen::default();
    let queue = Arc::new(Mutex::new(VecDeque::from(answers)));
    let log = seen.clone();
    let service = tower::service_fn(move |req: DcrRequest| {
        log.lock().unwrap().push(req);
        let mut q = queue.lock().unwrap();
        let answer = if q.len() > 1 {
            q.pop_front()
        } else {
            q.front().copied()
        };
        let answer = answer.expect("the script has an answer")();
        async move { answer }
    });
    (BoxCloneSyncService::new(service), seen)
}

/// A client answer, with a RAT when `rat` is given.
pub fn client(id: &str, rat: Option<&str>) -> DcrResponse {
    DcrResponse::Client(Box::new(Client {
        client_id: id.into(),
        registration_access_token: rat.map(SecretString::from),
        ..Client::default()
    }))
}

/// A management target, with an explicit RAT when `rat` is given.
pub fn target(id: &str, rat: Option<&str>) -> ClientRef {
    ClientRef {
        client_id: id.into(),
        registration_access_token: rat.map(SecretString::from),
        registration_client_uri: None,
    }
}

/// A GetClient request.
pub fn get(id: &str, rat: Option<&str>) -> DcrRequest {
    DcrRequest::new(DcrCall::Get(target(id, rat)))
}

/// An HTTP error answer; `proof` marks it as a proven token rejection.
pub fn http(status: u16, proof: bool) -> DcrError {
    DcrError::Upstream(UpstreamFailure {
        token_rejected: proof,
        ..UpstreamFailure::with_status(status)
    })
}

/// The RAT a recorded request carried.
pub fn sent_rat(req: &DcrRequest) -> Option<String> {
    use secrecy::ExposeSecret;
    req.target()
        .and_then(|t| t.registration_access_token.as_ref())
        .map(|t| t.expose_secret().to_owned())
}

/// An inner service whose calls finish only when `release` is notified.
pub fn gated() -> (Inner, Arc<tokio::sync::Notify>) {
    let release = Arc::new(tokio::sync::Notify::new());
    let gate = release.clone();
    let service = tower::service_fn(move |_req: DcrRequest| {
        let gate = gate.clone();
        async move {
            gate.notified().await;
            Ok::<_, DcrError>(DcrResponse::Deleted)
        }
    });
    (BoxCloneSyncService::new(service), release)
}

/// Starts `req` through `service` in a task of its own and lets it run up to
/// its first wait (a slot, a lock, the inner service), so the next call
/// meets it there.
pub async fn started<S>(
    service: S,
    req: DcrRequest,
) -> tokio::task::JoinHandle<Result<DcrResponse, DcrError>>
where
    S: tower::Service<DcrRequest, Response = DcrResponse, Error = DcrError> + Send + 'static,
    S::Future: Send,
{
    use tower::ServiceExt;
    let task = tokio::spawn(service.oneshot(req));
    tokio::task::yield_now().await;
    task
}
