//! The entry point of every request: the dev admin API, fault injection, and
//! counters around SharkAuth's routes.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State as AxumState};
use axum::http::{HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use tokio::sync::Notify;

use super::faults::{Fault, FaultKind};
use super::routes::{self, MAX_BODY_BYTES};
use super::state::State;
use super::wire;

/// Closes the request's connection without an answer (set per connection by
/// the accept loop).
#[derive(Clone, Debug)]
pub struct ConnKill(pub Arc<Notify>);

/// `req` with `base` taken off the front of its path, or `None` when its
/// path is not under `base`.
fn under_base_path(base: &str, mut req: Request) -> Option<Request> {
    if base.is_empty() {
        return Some(req);
    }
    let rest = req.uri().path().strip_prefix(base)?;
    if !rest.starts_with('/') {
        return None;
    }
    let rest = match req.uri().query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    };
    *req.uri_mut() = rest.parse().ok()?;
    Some(req)
}

/// Admin API paths; not SharkAuth's.
const FAULTS_PATH: &str = "/_dev/faults";
const STATS_PATH: &str = "/_dev/stats";

/// Handles one request: admin calls, else counters and faults around the route.
pub async fn dispatch(AxumState(state): AxumState<Arc<State>>, req: Request) -> Response {
    let Some(req) = under_base_path(&state.base_path, req) else {
        return wire::not_found();
    };
    match (req.method(), req.uri().path()) {
        (&Method::POST, FAULTS_PATH) => return add_fault(&state, req).await,
        (&Method::DELETE, FAULTS_PATH) => {
            state.faults.clear();
            return StatusCode::NO_CONTENT.into_response();
        }
        (&Method::GET, STATS_PATH) => return wire::go_json(StatusCode::OK, &state.stats()),
        _ => {}
    }
    if req.version() == Version::HTTP_2 {
        state.faults.count_http2();
    }
    let Some(route) = routes::classify(req.method(), req.uri().path()) else {
        return routes::handle(&state, req).await;
    };
    let kill = req.extensions().get::<ConnKill>().cloned();
    if let Some(tp) = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
    {
        state.faults.record_traceparent(tp);
    }
    let (_in_flight, fault) = state.faults.on_request(route);
    match &fault {
        Some(FaultKind::Status {
            status,
            retry_after,
            body,
        }) => return injected(*status, retry_after, body),
        Some(FaultKind::Delay { ms }) => tokio::time::sleep(Duration::from_millis(*ms)).await,
        _ => {}
    }
    let resp = routes::handle(&state, req).await;
    match fault {
        Some(FaultKind::DropAfterProcessing) => match kill {
            Some(ConnKill(kill)) => {
                kill.notify_one();
                std::future::pending().await
            }
            None => resp,
        },
        Some(FaultKind::GarbageBody) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "\u{0}garbage{not json",
        )
            .into_response(),
        Some(FaultKind::StallMidBody { ms }) => stall(resp, Duration::from_millis(ms)).await,
        _ => resp,
    }
}

async fn add_fault(state: &State, req: Request) -> Response {
    let Ok(body) = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await else {
        return wire::error(StatusCode::BAD_REQUEST, "invalid_request", "body too large");
    };
    match serde_json::from_slice::<Fault>(&body) {
        Ok(fault) => {
            state.faults.inject(fault);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => wire::error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()),
    }
}

fn injected(status: u16, retry_after: &Option<String>, body: &Option<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = match body {
        Some(body) => (status, body.clone()).into_response(),
        None => wire::error(
            status,
            "injected_fault",
            "fault injected by the dev upstream",
        ),
    };
    if let Some(value) = retry_after
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, value);
    }
    resp
}

/// Sends the first half of the body, waits, then the rest.
async fn stall(resp: Response, pause: Duration) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let (first, second) = bytes.split_at(bytes.len() / 2);
    let (first, second) = (
        Bytes::copy_from_slice(first),
        Bytes::copy_from_slice(second),
    );
    let chunks = stream::unfold(0u8, move |step| {
        let (first, second) = (first.clone(), second.clone());
        async move {
            match step {
                0 => Some((Ok::<_, std::convert::Infallible>(first), 1)),
                1 => {
                    tokio::time::sleep(pause).await;
                    Some((Ok(second), 2))
                }
                _ => None,
            }
        }
    });
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from_stream(chunks))
}
