//! A SharkAuth-compatible Dynamic Client Registration server, for the demo, the
//! tests and the benchmarks. It is **not** an authorization server: it issues
//! credentials nobody should trust, and keeps them in memory.
//!
//! It follows `shared/upstreams/sharkauth-dcr.md`: the six routes and their
//! statuses, field presence per route, validation order and texts, defaults,
//! unknown members dropped, 401 `invalid_token` for every RAT failure, 64-hex
//! tokens, `shark_dcr_` ids, one previous secret valid for an hour, and RAT
//! rotation that kills the old RAT at once. It adds a minimal client_credentials
//! token endpoint (scopes within the client's, `resource` recorded, a lifetime
//! tests can shorten), RFC 7662 introspection, and `GET /_dev/resource`, a
//! resource that answers who a Bearer token is for, so the secret grace window
//! and the tokens a caller holds can be observed; and a small admin
//! API for tests: `POST /_dev/faults` scripts a [`Fault`] (e.g.
//! `{"route":"get","times":2,"kind":"status","status":503}`), `DELETE
//! /_dev/faults` clears them, and `GET /_dev/stats` returns [`Stats`].

mod faults;
mod handlers;
mod inject;
mod metadata;
mod routes;
mod serve;
mod state;
mod token;
mod wire;

pub use faults::{Fault, FaultKind, Route, Stats};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use state::{Agent, DcrRow, State, hash};

/// A running dev upstream. Dropping it stops the server.
#[derive(Debug)]
pub struct DevUpstream {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl DevUpstream {
    /// Binds `listen` and starts serving. `issuer` is the base of every
    /// `registration_client_uri`; by default `http://<bound address>`.
    pub async fn start(listen: SocketAddr, issuer: Option<String>) -> std::io::Result<Self> {
        Self::start_under(listen, issuer, "").await
    }

    /// [`Self::start`], serving every route under `base_path` (e.g.
    /// `/tenant1`; anything else is 404), as behind an ingress that routes a
    /// path to the server; the default issuer includes it.
    pub async fn start_under(
        listen: SocketAddr,
        issuer: Option<String>,
        base_path: &str,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let base_path = base_path.trim_end_matches('/').to_owned();
        let state = Arc::new(State::new(
            issuer.unwrap_or_else(|| format!("http://{addr}{base_path}")),
            base_path,
        ));
        let (stop, task) = spawn(listener, state.clone());
        Ok(Self {
            addr,
            state,
            stop: Some(stop),
            task,
        })
    }

    /// Stops listening and closes every connection, keeping all clients: until
    /// [`Self::resume`], connections to the address are refused, as when a
    /// server restarts.
    pub async fn pause(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Listens again on the same address, with the same clients.
    pub async fn resume(&mut self) -> std::io::Result<()> {
        let listener = TcpListener::bind(self.addr).await?;
        let (stop, task) = spawn(listener, self.state.clone());
        self.stop = Some(stop);
        self.task = task;
        Ok(())
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<bound address>` and the base path, the base URL to point the
    /// gateway at.
    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.addr, self.state.base_path)
    }

    /// Moves the server's clock forward (e.g. past the secret grace window).
    pub fn advance_clock(&self, by: Duration) {
        self.state.advance(by);
    }

    /// Starts [`Stats::peak_in_flight`] again from the requests in flight now.
    pub fn reset_peak(&self) {
        self.state.faults.reset_peak();
    }

    /// How many clients were ever registered (deleted ones included).
    pub fn clients_created(&self) -> usize {
        self.state.tables().agents.len()
    }

    /// Issues a new registration access token on every read and update, as
    /// Keycloak does (SharkAuth does not): for testing that callers follow.
    pub fn rotate_on_read_and_update(&self, on: bool) {
        self.state
            .rotate_on_read_and_update
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sets how long access tokens issued from now on live (`expires_in`,
    /// whole seconds, at least one), so refreshing ahead of expiry can be
    /// tested in seconds.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        *self
            .state
            .token_lifetime
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = lifetime.max(Duration::from_secs(1));
    }

    /// The access tokens issued so far that are still active (by the
    /// server's clock), for tests that check which one a caller holds.
    pub fn active_tokens(&self) -> usize {
        let now = self.state.now();
        self.state
            .tables()
            .issued
            .values()
            .filter(|t| t.expires_at > now)
            .count()
    }

    /// Scripts a fault (see [`Fault`]); faults apply in the order added.
    pub fn inject(&self, fault: Fault) {
        self.state.faults.inject(fault);
    }

    /// Removes every scripted fault.
    pub fn clear_faults(&self) {
        self.state.faults.clear();
    }

    /// Request counters, clients created, requests in flight.
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// Creates a client directly under `client_id`, bypassing the register
    /// route, so tests can exercise ids SharkAuth itself would never issue.
    pub fn seed_client(&self, client_id: &str, registration_access_token: &str, client_name: &str) {
        let snapshot = metadata::Meta {
            client_name: client_name.into(),
            grant_types: vec!["client_credentials".into()],
            response_types: vec!["code".into()],
            token_endpoint_auth_method: "client_secret_basic".into(),
            ..Default::default()
        };
        let created_at = self.state.unix_now();
        let mut t = self.state.tables();
        t.agents.insert(
            client_id.into(),
            Agent {
                secret_hash: String::new(),
                old_secret: None,
                active: true,
            },
        );
        let rat_hash = hash(registration_access_token);
        t.dcr.insert(
            client_id.into(),
            DcrRow {
                rat_hash,
                snapshot,
                created_at,
            },
        );
    }

    /// Stops accepting, closes every connection, and waits.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap_or(Ok(()))
    }

    /// Serves until the process is stopped (for `dcr-gateway dev-upstream`).
    pub async fn wait(mut self) -> std::io::Result<()> {
        (&mut self.task).await.unwrap_or(Ok(()))
    }
}

/// Starts the accept loop; returns its stop switch and task.
fn spawn(
    listener: TcpListener,
    state: Arc<State>,
) -> (oneshot::Sender<()>, JoinHandle<std::io::Result<()>>) {
    let app = axum::Router::new()
        .fallback(inject::dispatch)
        .with_state(state);
    let (stop, stopped) = oneshot::channel::<()>();
    (
        stop,
        tokio::spawn(serve::accept_loop(listener, app, stopped)),
    )
}

impl Drop for DevUpstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
