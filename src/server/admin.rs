//! The admin HTTP listener: `/metrics` (Prometheus text), `/healthz` (the
//! process is up) and `/readyz` (serving; 503 once shutdown starts, while a
//! declared client's credentials file cannot be delivered, or while a Redis
//! token store answers on no node), for tools
//! that do not speak gRPC health. Loopback by default; `--admin-listen off`
//! turns it off. `--metrics-listen` serves `/metrics` alone on an address a
//! scraper outside the pod can reach, so readiness stays private to the pod.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::managed::Managed;
use crate::telemetry::Metrics;

/// What the admin endpoints read.
#[derive(Clone)]
pub struct AdminState {
    /// The gateway's metrics.
    pub metrics: Arc<Metrics>,
    /// False once shutdown starts.
    pub ready: Arc<AtomicBool>,
    /// The managed clients, whose credentials files readiness follows.
    pub managed: Managed,
    /// Whether the token store answers (see `credentials_health`).
    pub store_up: tokio::sync::watch::Receiver<bool>,
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.prometheus(),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, String) {
    if !state.ready.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into());
    }
    if !*state.store_up.borrow() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the token store cannot be reached\n".into(),
        );
    }
    match state.managed.failing_files() {
        0 => (StatusCode::OK, "ready\n".into()),
        n => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{n} credentials file(s) cannot be delivered (ListClients says why)\n"),
        ),
    }
}

/// How long an admin connection may take: to send its request headers, and
/// in all (the endpoints answer at once, so nothing needs longer).
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Time a connection has to send a request's headers.
    pub header_read: Duration,
    /// Time after which a connection is closed, busy or not.
    pub connection: Duration,
}

/// Every admin endpoint, for the loopback admin listener.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// `/metrics` alone (anything else is 404), for the listener a scraper reaches.
pub fn metrics_only(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Serves `app` on `listener` until the task is dropped. Each connection runs
/// in its own task under `timeouts`, so silent or idle sockets are closed
/// rather than held.
pub async fn serve(listener: TcpListener, app: Router, timeouts: Timeouts) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "admin: accepting a connection failed");
                tokio::time::sleep(super::ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| app.clone().oneshot(req));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeouts.header_read)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(timeouts.connection, conn).await;
        });
    }
}
