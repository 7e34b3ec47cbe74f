//! The dev upstream's two stores, as SharkAuth keeps them: an agent row (used by
//! the token endpoint) and a DCR row (the RAT hash and a metadata snapshot).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

use super::faults::{Faults, Stats};
use super::metadata::Meta;

/// How long an access token lives unless a test sets another lifetime
/// (SharkAuth's default).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// How long a rotated-out client secret keeps working.
pub const SECRET_GRACE: Duration = Duration::from_secs(3600);

/// The agent row: what the token endpoint checks.
#[derive(Clone, Debug)]
pub struct Agent {
    pub secret_hash: String,
    /// The previous secret's hash and when it stops working.
    pub old_secret: Option<(String, SystemTime)>,
    pub active: bool,
}

/// The DCR row: the RAT hash, the metadata snapshot (raw scope, defaults
/// applied), and the creation time in Unix seconds.
#[derive(Clone, Debug)]
pub struct DcrRow {
    pub rat_hash: String,
    pub snapshot: Meta,
    pub created_at: i64,
}

/// An access token the token endpoint issued, by its hash.
#[derive(Clone, Debug)]
pub struct Issued {
    pub client_id: String,
    /// The granted scope, space-separated (may be empty).
    pub scope: String,
    /// The `resource` values it was asked for (RFC 8707), its audience.
    pub resources: Vec<String>,
    /// When it stops being active.
    pub expires_at: SystemTime,
}

/// Everything the dev upstream remembers, behind one lock.
#[derive(Debug, Default)]
pub struct Tables {
    pub agents: HashMap<String, Agent>,
    pub dcr: HashMap<String, DcrRow>,
    pub issued: HashMap<String, Issued>,
}

/// Shared state: the tables, a clock tests can move forward, and the issuer.
#[derive(Debug)]
pub struct State {
    pub tables: Mutex<Tables>,
    clock_offset: Mutex<Duration>,
    pub issuer: String,
    /// The path every route is served under (`""`: the root), as behind an
    /// ingress that routes `/<tenant>/...` to the server.
    pub base_path: String,
    pub faults: Faults,
    /// Issue a new RAT on every read and update, as Keycloak does (not SharkAuth).
    pub rotate_on_read_and_update: AtomicBool,
    /// How long an access token lives (`expires_in`).
    pub token_lifetime: Mutex<Duration>,
    rng: SystemRandom,
}

impl State {
    pub fn new(issuer: String, base_path: String) -> Self {
        Self {
            tables: Mutex::new(Tables::default()),
            clock_offset: Mutex::new(Duration::ZERO),
            issuer,
            base_path,
            faults: Faults::default(),
            rotate_on_read_and_update: AtomicBool::new(false),
            token_lifetime: Mutex::new(TOKEN_LIFETIME),
            rng: SystemRandom::new(),
        }
    }

    /// The tables; a panic elsewhere cannot leave them half-written in a way
    /// that matters to a dev server, so a poisoned lock is used as is.
    pub fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Request counters and clients created so far.
    pub fn stats(&self) -> Stats {
        let created = self.tables().agents.len();
        self.faults.stats(created)
    }

    /// The dev upstream's notion of now.
    pub fn now(&self) -> SystemTime {
        SystemTime::now() + *self.clock_offset.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Now in Unix seconds.
    pub fn unix_now(&self) -> i64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }

    /// Moves the clock forward, e.g. past the secret grace window.
    pub fn advance(&self, by: Duration) {
        *self.clock_offset.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }

    /// With rotation on read and update on, a new RAT for `id`, stored (the
    /// old one dies at once); otherwise `""`, as SharkAuth answers.
    pub fn rotate_if_configured(&self, id: &str) -> String {
        if !self.rotate_on_read_and_update.load(Ordering::Relaxed) {
            return String::new();
        }
        let Some(rat) = self.token() else {
            return String::new();
        };
        match self.tables().dcr.get_mut(id) {
            Some(row) => {
                row.rat_hash = hash(&rat);
                rat
            }
            None => String::new(),
        }
    }

    /// 32 random bytes as 64 lowercase hex characters: a secret or a RAT.
    /// `None` when the OS random source fails (SharkAuth then answers 500).
    pub fn token(&self) -> Option<String> {
        let mut buf = [0u8; 32];
        self.rng.fill(&mut buf).ok()?;
        Some(hex(&buf))
    }

    /// `prefix` followed by a 21-character nanoid; `None` as for [`Self::token`].
    pub fn nanoid(&self, prefix: &str) -> Option<String> {
        const ALPHABET: &[u8; 64] =
            b"_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut buf = [0u8; 21];
        self.rng.fill(&mut buf).ok()?;
        let id: String = buf
            .iter()
            .map(|b| ALPHABET[(b & 63) as usize] as char)
            .collect();
        Some(format!("{prefix}{id}"))
    }

    /// `issuer/oauth/register/<id>`, concatenated as SharkAuth does.
    pub fn client_uri(&self, client_id: &str) -> String {
        format!("{}/oauth/register/{client_id}", self.issuer)
    }
}

/// Lowercase hex SHA-256 of the token's ASCII text, as SharkAuth stores it.
pub fn hash(token: &str) -> String {
    hex(digest(&SHA256, token.as_bytes()).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
