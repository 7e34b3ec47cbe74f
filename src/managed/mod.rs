//! Managed clients: a caller names the client it needs, and the gateway keeps
//! it registered, current and delivered.
//!
//! A managed client is a record in the token store, keyed by (upstream,
//! caller namespace, name), next to the token entry of the client it has: the
//! client with its current secret, the metadata last applied, and what
//! happened to it. Every operation on one name runs alone, in this process
//! (a lock per name) and across replicas on a shared store (a lease per
//! name), and goes to the server through the same domain stack as the plain
//! RPCs, so registration access tokens are learned, kept and rotated as
//! always. A record write is a compare-and-set on its generation.

mod access;
mod asked;
mod board;
mod deliver;
mod drift;
mod ensure;
mod keys;
mod limits;
mod manage;
mod observe;
mod reconcile;
mod record;
mod register;
mod rotate;
mod settings;
mod watch;

pub use crate::dcr::check_name;
pub use deliver::prepare as prepare_credentials_dir;
pub use limits::WatchSlot;
pub use manage::Status;
pub use reconcile::Declared;
pub use record::{ManagedRecord, Outcome};
pub use rotate::rotation_warnings;
pub use settings::{
    CredentialsDir, DeclaredClient, ManagedLimits, ManagedSettings, RotationPolicy, TokenFile,
};
pub use watch::{Change, Published, Watch};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use tower::ServiceExt;

use crate::coord::{KeyedGuard, KeyedLocks, LeaseHold};
use crate::dcr::{
    Capabilities, ClientRef, DcrCall, DcrError, DcrRequest, DcrResponse, SentExchanges,
};
use crate::middleware::GatewayService;
use crate::store::{Cas, LeaseKey, ManagedKey, Store, StoredRecord, TokenKey, unix_now};
use crate::telemetry::Metrics;
pub use access::ask::TokenAsk;
use access::cache::TokenCache;
use board::Board;
use limits::WatchCounts;
use watch::Watchers;

/// How long taking in what a plain RPC showed (a new secret, a deletion)
/// waits for its name; also bounds deleting a registration that could not
/// be stored.
const OBSERVE_WAIT: Duration = Duration::from_secs(10);

/// Managed clients over one upstream; clones share everything.
#[derive(Clone)]
pub struct Managed {
    inner: Arc<Inner>,
}

struct Inner {
    stack: GatewayService,
    store: Store,
    upstream: String,
    server: Capabilities,
    initial_access_token: Option<SecretString>,
    lease_ttl: Duration,
    locks: KeyedLocks<ManagedKey>,
    /// Places for callers' ensures, which run on after their caller left.
    exchanges: SentExchanges,
    policies: HashMap<(String, String), RotationPolicy>,
    watchers: Watchers,
    limits: ManagedLimits,
    watches: WatchCounts,
    board: Board,
    metrics: Arc<Metrics>,
    /// How long a retired or replaced client stays before it is deleted.
    retired_grace: Duration,
    /// Set once shutdown starts: watch streams end, loops stop.
    stopping: tokio::sync::watch::Sender<bool>,
    /// The access tokens held for managed clients, in memory only.
    tokens: TokenCache,
}

/// What [`Managed::new`] needs besides the stack and the store.
pub struct ManagedConfig {
    /// The upstream's id, as the token store keys it (its base URL).
    pub upstream: String,
    /// What the server can do: how a secret is rotated, what proves a loss.
    pub server: Capabilities,
    /// Sent on a registration when the caller sends none.
    pub initial_access_token: Option<SecretString>,
    /// How long a name's lease is held at a time (renewed while in use).
    pub lease_ttl: Duration,
    /// Shared with the edge's sent calls (`--max-detached`).
    pub exchanges: SentExchanges,
    /// The declared clients' rotation policies, by (namespace, name), for
    /// ListClients' next rotation.
    pub policies: HashMap<(String, String), RotationPolicy>,
    /// What one caller namespace may hold.
    pub limits: ManagedLimits,
    /// Where drift, limits and watches are counted.
    pub metrics: Arc<Metrics>,
    /// How long a client no longer declared, or replaced, stays registered
    /// and listed before it is deleted.
    pub retired_grace: Duration,
}

/// Holds a name for one operation: the in-process lock, and the lease when
/// the store is shared.
struct Exclusive {
    _lock: KeyedGuard<ManagedKey>,
    lease: Option<LeaseHold>,
}

impl Exclusive {
    async fn release(self) {
        if let Some(lease) = self.lease {
            lease.release().await;
        }
    }
}

impl Managed {
    /// Managed clients that reach the server through `stack` and keep their
    /// records in `store`.
    pub fn new(stack: GatewayService, store: Store, config: ManagedConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                stack,
                store,
                upstream: config.upstream.trim_end_matches('/').to_owned(),
                server: config.server,
                initial_access_token: config.initial_access_token,
                lease_ttl: config.lease_ttl,
                locks: KeyedLocks::default(),
                exchanges: config.exchanges,
                policies: config.policies,
                watchers: Watchers::default(),
                limits: config.limits,
                watches: WatchCounts::default(),
                board: Board::default(),
                tokens: TokenCache::new(config.metrics.clone()),
                metrics: config.metrics,
                retired_grace: config.retired_grace,
                stopping: tokio::sync::watch::channel(false).0,
            }),
        }
    }

    /// Starts shutdown: every watch stream ends with UNAVAILABLE, and the
    /// declared clients' loops stop at their next step.
    pub fn stop(&self) {
        self.inner.stopping.send_replace(true);
        self.inner.tokens.stop();
    }

    /// Whether shutdown has started.
    pub fn is_stopping(&self) -> bool {
        *self.inner.stopping.borrow()
    }

    /// Records why the credentials folder is unsafe, if it is (ListClients
    /// and a metric show it).
    pub fn set_folder_warning(&self, warning: Option<String>) {
        self.inner
            .metrics
            .managed()
            .folder_unsafe(warning.is_some());
        self.inner.board.set_folder_warning(warning);
    }

    /// How many declared clients' credentials files cannot be delivered now
    /// (readiness fails while any cannot).
    pub fn failing_files(&self) -> usize {
        self.inner.board.failing_files()
    }

    /// Follows [`Managed::failing_files`].
    pub fn failing_files_changes(&self) -> tokio::sync::watch::Receiver<usize> {
        self.inner.board.failing()
    }

    /// Completes once shutdown has started.
    pub async fn stopped(&self) {
        let mut rx = self.inner.stopping.subscribe();
        let _ = rx.wait_for(|stopping| *stopping).await;
    }

    /// The record key of `name` in `namespace`.
    fn key(&self, namespace: &str, name: &str) -> ManagedKey {
        ManagedKey {
            upstream: self.inner.upstream.clone(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    /// Takes `key` for one operation, waiting until `deadline`.
    async fn exclusive(&self, key: &ManagedKey, deadline: Instant) -> Result<Exclusive, DcrError> {
        let lock = tokio::time::timeout_at(deadline.into(), self.inner.locks.acquire(key.clone()))
            .await
            .map_err(|_| DcrError::DeadlineExceeded)?;
        let lease = match &self.inner.store.leases {
            Some(leases) => {
                let (key, ttl) = (LeaseKey::Name(key.clone()), self.inner.lease_ttl);
                Some(LeaseHold::take(leases.clone(), key, ttl, Some(deadline)).await?)
            }
            None => None,
        };
        Ok(Exclusive { _lock: lock, lease })
    }

    /// Runs `work` holding `key` for one operation, waiting for it until
    /// `deadline`; the name is released however `work` ends.
    async fn holding<T>(
        &self,
        key: &ManagedKey,
        deadline: Instant,
        work: impl AsyncFnOnce() -> Result<T, DcrError>,
    ) -> Result<T, DcrError> {
        let held = self.exclusive(key, deadline).await?;
        let result = work().await;
        held.release().await;
        result
    }

    /// Writes `record` over generation `expected` when it differs from
    /// `before` (its stored form when read): the new generation, or `None`
    /// when nothing changed and nothing was written.
    async fn save_changed(
        &self,
        key: &ManagedKey,
        expected: u64,
        before: &SecretString,
        record: &ManagedRecord,
    ) -> Result<Option<u64>, DcrError> {
        use secrecy::ExposeSecret;
        if record.to_json().expose_secret() == before.expose_secret() {
            return Ok(None);
        }
        self.save(key, Some(expected), record).await.map(Some)
    }

    /// Sends one call down the domain stack in `namespace`.
    async fn call(
        &self,
        namespace: &str,
        deadline: Instant,
        call: DcrCall,
    ) -> Result<DcrResponse, DcrError> {
        let mut req = DcrRequest::new(call);
        req.namespace = namespace.to_owned();
        req.deadline = Some(deadline);
        self.inner.stack.clone().oneshot(req).await
    }

    /// The names of `namespace`'s records, from the store's index (no
    /// record opened), in order.
    async fn names_in(&self, namespace: &str) -> Result<Vec<String>, DcrError> {
        self.inner
            .store
            .records
            .record_names(&self.inner.upstream, namespace)
            .await
            .map_err(DcrError::Store)
    }

    /// Every stored record, as stored.
    async fn all_records(&self) -> Result<Vec<(ManagedKey, StoredRecord)>, DcrError> {
        self.inner
            .store
            .records
            .list_records()
            .await
            .map_err(DcrError::Store)
    }

    /// The stored record of `key`, with its generation.
    async fn load(&self, key: &ManagedKey) -> Result<Option<(ManagedRecord, u64)>, DcrError> {
        match self
            .inner
            .store
            .records
            .get_record(key)
            .await
            .map_err(DcrError::Store)?
        {
            Some(stored) => {
                let record = ManagedRecord::from_json(&stored.json).map_err(DcrError::Store)?;
                Ok(Some((record, stored.generation)))
            }
            None => Ok(None),
        }
    }

    /// Writes `record` over generation `expected` (indexed under its
    /// client); its new generation.
    async fn save(
        &self,
        key: &ManagedKey,
        expected: Option<u64>,
        record: &ManagedRecord,
    ) -> Result<u64, DcrError> {
        let cas = self
            .inner
            .store
            .records
            .put_record(key, expected, &record.to_json(), &record.client.client_id)
            .await;
        match cas.map_err(DcrError::Store)? {
            Cas::Stored(generation) => Ok(generation),
            Cas::Conflict => {
                tracing::error!(
                    name = key.name,
                    "a managed client's record changed under its lease: another replica's lease lapsed"
                );
                Err(DcrError::ManagedClientChanged(key.name.clone()))
            }
        }
    }
}

/// A management call's target: the client id, with the stored token.
fn target(client_id: &str) -> ClientRef {
    ClientRef {
        client_id: client_id.to_owned(),
        registration_access_token: None,
        registration_client_uri: None,
    }
}

/// The token store key of `client_id` in `key`'s namespace.
fn token_key(key: &ManagedKey, client_id: &str) -> TokenKey {
    TokenKey {
        upstream: key.upstream.clone(),
        namespace: key.namespace.clone(),
        client_id: client_id.to_owned(),
    }
}
