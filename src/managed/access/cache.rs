//! The access tokens a replica holds, in memory only: one per (caller
//! namespace, managed name, scopes, resources). Callers asking at once for a
//! token nobody holds share one token request; a held token is refreshed in
//! the background ahead of its expiry (at a jittered share of its lifetime,
//! so a fleet does not refresh in step) while callers keep getting it; a
//! token within its safety margin of expiry is never handed out; a token
//! nobody asked for since its last refresh is dropped instead of refreshed.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use tokio::sync::Notify;
use tower::util::rng::{HasherRng, Rng};

use super::ask::TokenAsk;
use crate::dcr::{AccessToken, DcrError, unix_now};
use crate::telemetry::Metrics;

/// Most tokens one replica holds; past it, a token nobody can use any more
/// is dropped to make room, or the ask is refused.
pub const MAX_HELD_TOKENS: usize = 10_000;
/// The lifetime assumed of a token whose answer gave none (RFC 6749 makes
/// `expires_in` optional): short, so a token is never kept past a lifetime
/// the server did not state for long.
pub const UNSTATED_LIFETIME: Duration = Duration::from_secs(60);
/// The most of a token's lifetime kept back as a safety margin: a token
/// with less than this (or a tenth of its lifetime) left is never handed
/// out, so a caller's request reaches the server with time to spare.
pub const MAX_MARGIN: Duration = Duration::from_secs(30);
/// A refresh starts at this share of the lifetime at the earliest...
const REFRESH_FROM: f64 = 0.70;
/// ...and at this share at the latest (uniformly between, per token).
const REFRESH_TO: f64 = 0.80;
/// The shortest wait between refreshes of one token, whatever it says.
const MIN_REFRESH: Duration = Duration::from_secs(1);
/// How long a background refresh may take.
const REFRESH_BUDGET: Duration = Duration::from_secs(30);
/// The first wait after a failed refresh; doubled per failure up to
/// [`MAX_MARGIN`].
const RETRY_BASE: Duration = Duration::from_secs(1);

/// Which token: whose, and for what.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The caller namespace.
    pub namespace: String,
    /// The managed client's name.
    pub name: String,
    /// What the token is for.
    pub ask: TokenAsk,
}

/// A token as a caller gets it.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The token.
    pub token: SecretString,
    /// Its type.
    pub token_type: String,
    /// When it expires, in Unix seconds.
    pub expires_at: u64,
    /// The scope granted (or asked for, when the server did not say).
    pub scope: String,
}

/// Gets a new token for a key from the server.
pub trait Fetcher: Clone + Send + Sync + 'static {
    /// A new token for `key`, asked for by `deadline`.
    fn fetch(
        &self,
        key: &CacheKey,
        deadline: Instant,
    ) -> impl Future<Output = Result<AccessToken, DcrError>> + Send;
}

/// What ListClients shows of one name's tokens.
#[derive(Clone, Debug, Default)]
pub struct NameTokens {
    /// Tokens held.
    pub held: usize,
    /// Whether token files are delivered for it.
    pub files: bool,
    /// When the last token was obtained, in Unix seconds.
    pub last_obtained_at: u64,
    /// Why the last token request failed; `None` after a success.
    pub last_error: Option<String>,
}

/// The tokens held; clones share them.
#[derive(Clone)]
pub struct TokenCache {
    shared: Arc<Shared>,
}

struct Shared {
    entries: Mutex<HashMap<CacheKey, Arc<Entry>>>,
    /// The last outcome per (namespace, name), for ListClients.
    names: Mutex<HashMap<(String, String), NameTokens>>,
    next_id: AtomicU64,
    metrics: Arc<Metrics>,
}

/// One held token and its refresher.
struct Entry {
    /// Its number in the expiry gauge.
    id: u64,
    /// Taken by whoever asks the server, so one request serves everyone
    /// waiting.
    turn: tokio::sync::Mutex<()>,
    held: RwLock<Option<Held>>,
    /// Asked for since the last refresh.
    used: AtomicBool,
    /// The background refresh, once the first token is in.
    refresher: Mutex<Option<tokio::task::AbortHandle>>,
    /// Told of every new token (a token file's writer); while one lives,
    /// the token counts as asked for.
    watchers: Mutex<Vec<Weak<Notify>>>,
}

#[derive(Clone)]
struct Held {
    issued: Issued,
    /// Handed out only before this.
    usable_until: Instant,
    /// Refreshed from this on.
    refresh_at: Instant,
}

impl Held {
    /// `token`, obtained `now`, refreshed at a share of its lifetime drawn
    /// from `unit` (uniform in `[0, 1)`).
    fn new(token: AccessToken, asked: &TokenAsk, now: Instant, unit: f64) -> Self {
        let lifetime = token.expires_in.unwrap_or(UNSTATED_LIFETIME);
        let margin = (lifetime / 10).min(MAX_MARGIN);
        let share = REFRESH_FROM + unit.clamp(0.0, 1.0) * (REFRESH_TO - REFRESH_FROM);
        let scope = token.scope.unwrap_or_else(|| asked.scopes.join(" "));
        Self {
            issued: Issued {
                token: token.token,
                token_type: token.token_type,
                expires_at: unix_now() + lifetime.as_secs(),
                scope,
            },
            usable_until: now + lifetime.saturating_sub(margin),
            refresh_at: now + lifetime.mul_f64(share).max(MIN_REFRESH),
        }
    }
}

impl Entry {
    /// The held token, if it may be handed out at `now`.
    fn usable(&self, now: Instant) -> Option<Issued> {
        let held = self.held.read().unwrap_or_else(|e| e.into_inner());
        held.as_ref()
            .filter(|h| now < h.usable_until)
            .map(|h| h.issued.clone())
    }

    fn refresh_at(&self) -> Option<Instant> {
        let held = self.held.read().unwrap_or_else(|e| e.into_inner());
        held.as_ref().map(|h| h.refresh_at)
    }

    /// After a failed refresh: try again after `wait`.
    fn retry_after(&self, wait: Duration) {
        let mut held = self.held.write().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = held.as_mut() {
            h.refresh_at = Instant::now() + wait.max(MIN_REFRESH);
        }
    }

    /// Whether a watcher still lives (dead ones are dropped).
    fn watched(&self) -> bool {
        let mut watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        watchers.retain(|w| w.strong_count() > 0);
        !watchers.is_empty()
    }

    /// Tells every live watcher a new token is held.
    fn tell_watchers(&self) {
        let watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        for wake in watchers.iter().filter_map(Weak::upgrade) {
            wake.notify_one();
        }
    }

    fn stop(&self) {
        if let Some(task) = self
            .refresher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

impl TokenCache {
    /// An empty cache, counting into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            shared: Arc::new(Shared {
                entries: Mutex::default(),
                names: Mutex::default(),
                next_id: AtomicU64::new(0),
                metrics,
            }),
        }
    }

    /// A token for `key`: a held one, or one `fetcher` gets (waiting for
    /// another caller's request rather than making a second), by `deadline`.
    pub async fn get<F: Fetcher>(
        &self,
        fetcher: &F,
        key: CacheKey,
        deadline: Instant,
    ) -> Result<Issued, DcrError> {
        let entry = self.shared.entry(&key)?;
        entry.used.store(true, Ordering::Relaxed);
        let metrics = self.shared.metrics.tokens();
        if let Some(issued) = entry.usable(Instant::now()) {
            metrics.lookup("hit");
            return Ok(issued);
        }
        metrics.lookup("miss");
        let _turn = tokio::time::timeout_at(deadline.into(), entry.turn.lock())
            .await
            .map_err(|_| DcrError::DeadlineExceeded)?;
        if let Some(issued) = entry.usable(Instant::now()) {
            return Ok(issued);
        }
        let fetched = self
            .shared
            .fetch_into(fetcher, &key, &entry, deadline)
            .await;
        let issued = match fetched {
            Ok(issued) => issued,
            Err(e) => {
                // Nothing to hold: the entry goes, so asks that fail (a
                // name nobody ensured) take no room.
                if entry.usable(Instant::now()).is_none() {
                    self.shared.evict(&key, &entry);
                }
                return Err(e);
            }
        };
        let mut refresher = entry.refresher.lock().unwrap_or_else(|e| e.into_inner());
        if refresher.is_none() {
            let task = tokio::spawn(refresh(
                self.shared.clone(),
                fetcher.clone(),
                key,
                entry.clone(),
            ));
            *refresher = Some(task.abort_handle());
        }
        Ok(issued)
    }

    /// Has `wake` told of every new token held for `key` (a token file's
    /// writer), and keeps the token fresh while `wake` lives, asked for or
    /// not.
    pub fn watch(&self, key: &CacheKey, wake: &Arc<Notify>) {
        let Some(entry) = self.shared.lock_entries().get(key).cloned() else {
            return;
        };
        let mut watchers = entry.watchers.lock().unwrap_or_else(|e| e.into_inner());
        if !watchers
            .iter()
            .any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(wake)))
        {
            watchers.push(Arc::downgrade(wake));
        }
    }

    /// Marks `name` of `namespace` as one whose tokens are delivered as
    /// files (ListClients shows it).
    pub fn delivers_files(&self, namespace: &str, name: &str) {
        self.shared
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((namespace.to_owned(), name.to_owned()))
            .or_default()
            .files = true;
    }

    /// Drops every token of `name` in `namespace` (forgotten, or replaced
    /// by a new registration).
    pub fn forget(&self, namespace: &str, name: &str) {
        let dropped: Vec<Arc<Entry>> = {
            let mut entries = self.shared.lock_entries();
            let keys: Vec<CacheKey> = entries
                .keys()
                .filter(|k| k.namespace == namespace && k.name == name)
                .cloned()
                .collect();
            keys.iter().filter_map(|k| entries.remove(k)).collect()
        };
        for entry in dropped {
            entry.stop();
            self.shared.metrics.tokens().dropped(entry.id);
        }
    }

    /// Stops every refresh (shutdown).
    pub fn stop(&self) {
        for entry in self.shared.lock_entries().values() {
            entry.stop();
        }
    }

    /// What ListClients shows of each name's tokens, by (namespace, name).
    pub fn by_name(&self) -> HashMap<(String, String), NameTokens> {
        let mut names = self
            .shared
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for key in self.shared.lock_entries().keys() {
            names
                .entry((key.namespace.clone(), key.name.clone()))
                .or_default()
                .held += 1;
        }
        names
    }
}

impl Shared {
    fn lock_entries(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Arc<Entry>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entry of `key`, made when there is room.
    fn entry(&self, key: &CacheKey) -> Result<Arc<Entry>, DcrError> {
        let mut entries = self.lock_entries();
        if let Some(entry) = entries.get(key) {
            return Ok(entry.clone());
        }
        if entries.len() >= MAX_HELD_TOKENS {
            let now = Instant::now();
            let spent: Vec<CacheKey> = entries
                .iter()
                .filter(|(_, e)| e.usable(now).is_none() && e.turn.try_lock().is_ok())
                .map(|(k, _)| k.clone())
                .collect();
            for k in spent {
                if let Some(e) = entries.remove(&k) {
                    e.stop();
                    self.metrics.tokens().dropped(e.id);
                }
            }
            if entries.len() >= MAX_HELD_TOKENS {
                return Err(DcrError::LimitReached {
                    what: "access tokens",
                    max: MAX_HELD_TOKENS,
                    setting: "a fixed limit per replica",
                });
            }
        }
        let entry = Arc::new(Entry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            turn: tokio::sync::Mutex::new(()),
            held: RwLock::new(None),
            used: AtomicBool::new(false),
            refresher: Mutex::new(None),
            watchers: Mutex::new(Vec::new()),
        });
        entries.insert(key.clone(), entry.clone());
        Ok(entry)
    }

    /// Asks `fetcher` for a new token and holds it; the caller holds the
    /// entry's turn.
    async fn fetch_into<F: Fetcher>(
        &self,
        fetcher: &F,
        key: &CacheKey,
        entry: &Entry,
        deadline: Instant,
    ) -> Result<Issued, DcrError> {
        let result = fetcher.fetch(key, deadline).await;
        let metrics = self.metrics.tokens();
        let name = (key.namespace.clone(), key.name.clone());
        let token = match result {
            Ok(token) => token,
            // A name nobody ensured has no state to show, and must not
            // grow the map.
            Err(e @ DcrError::ManagedClientNotFound(_)) => return Err(e),
            Err(e) => {
                self.names
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(name)
                    .or_default()
                    .last_error = Some(format!("{}: {e}", e.class().reason));
                return Err(e);
            }
        };
        let now = Instant::now();
        let held = Held::new(token, &key.ask, now, HasherRng::new().next_f64());
        if held.usable_until <= now {
            return Err(DcrError::MalformedResponse(
                "the token answer's expires_in leaves no time to use the token".into(),
            ));
        }
        let issued = held.issued.clone();
        metrics.held(entry.id, issued.expires_at);
        *entry.held.write().unwrap_or_else(|e| e.into_inner()) = Some(held);
        entry.tell_watchers();
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let state = names.entry(name).or_default();
        state.last_obtained_at = unix_now();
        state.last_error = None;
        Ok(issued)
    }

    /// Drops `entry` if it is still the one held for `key`.
    fn evict(&self, key: &CacheKey, entry: &Arc<Entry>) {
        let mut entries = self.lock_entries();
        if entries.get(key).is_some_and(|e| Arc::ptr_eq(e, entry)) {
            entries.remove(key);
            self.metrics.tokens().dropped(entry.id);
        }
        // A refresher keeps nobody's token fresh once its entry is gone.
        let refresher = entry
            .refresher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = refresher {
            task.abort();
        }
    }
}

/// Keeps `entry`'s token fresh while callers ask for it: at each refresh
/// point, a token asked for since the last one is replaced; one nobody
/// asked for is dropped. A failed refresh is tried again, sooner each time
/// than the token's end, while callers keep the token they have.
async fn refresh<F: Fetcher>(shared: Arc<Shared>, fetcher: F, key: CacheKey, entry: Arc<Entry>) {
    let mut failures: u32 = 0;
    while let Some(at) = entry.refresh_at() {
        tokio::time::sleep_until(at.into()).await;
        if !entry.used.swap(false, Ordering::AcqRel) && !entry.watched() {
            shared.evict(&key, &entry);
            return;
        }
        let _turn = entry.turn.lock().await;
        shared
            .metrics
            .tokens()
            .refresh_started(Instant::now().saturating_duration_since(at));
        let deadline = Instant::now() + REFRESH_BUDGET;
        match shared.fetch_into(&fetcher, &key, &entry, deadline).await {
            Ok(_) => failures = 0,
            Err(e) if entry.usable(Instant::now()).is_none() => {
                // Nothing left to hand out: the next caller asks afresh.
                tracing::warn!(name = key.name, error = %e, "refreshing an access token failed");
                shared.evict(&key, &entry);
                return;
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let wait = RETRY_BASE
                    .saturating_mul(1 << failures.min(5))
                    .min(MAX_MARGIN);
                tracing::warn!(
                    name = key.name,
                    error = %e,
                    retry_in = ?wait,
                    "refreshing an access token failed; callers keep the one held while it lasts"
                );
                // Still asked for: the retry must not count as unused.
                entry.used.store(true, Ordering::Relaxed);
                entry.retry_after(wait);
            }
        }
    }
}
