//! What an operator sets for managed clients, checked (by `config`): the
//! declared clients, their rotation policies, where credentials files go,
//! and how much one caller may hold.

use std::path::PathBuf;
use std::time::Duration;

use super::access::ask::TokenAsk;
use crate::dcr::ClientMetadata;

/// When a managed client's secret is rotated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Every this long after it was issued.
    pub every: Option<Duration>,
    /// This long before it expires (for servers that set an expiry).
    pub before_expiry: Option<Duration>,
}

/// A declared client, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct DeclaredClient {
    /// Its name.
    pub name: String,
    /// Its caller namespace.
    pub namespace: String,
    /// The metadata it should have.
    pub metadata: ClientMetadata,
    /// When its secret is rotated.
    pub rotation: RotationPolicy,
    /// Whether its credentials file is written.
    pub credentials_file: bool,
    /// Whether its credentials file holds the client secret; without it,
    /// the service has the client id and its token files, and nothing it
    /// could leak that outlives a token.
    pub deliver_secret: bool,
    /// The access tokens delivered as files.
    pub tokens: Vec<TokenFile>,
}

impl DeclaredClient {
    /// The names of the files delivered for it in the credentials folder.
    pub fn file_names(&self) -> Vec<String> {
        let json = self.credentials_file.then(|| format!("{}.json", self.name));
        json.into_iter()
            .chain(self.tokens.iter().map(|t| t.file_name(&self.name)))
            .collect()
    }
}

/// An access token a declared client's service reads from a file: just the
/// token, for `Authorization: Bearer $(cat FILE)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenFile {
    /// Tells the client's token files apart: the file is
    /// `<name>.<label>.token`, or `<name>.token` without one.
    pub label: Option<String>,
    /// What the token is for.
    pub ask: TokenAsk,
}

impl TokenFile {
    /// The file's name for the client `name`.
    pub fn file_name(&self, name: &str) -> String {
        match &self.label {
            Some(label) => format!("{name}.{label}.token"),
            None => format!("{name}.token"),
        }
    }
}

/// Where credentials files go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialsDir {
    /// The folder (`--credentials-dir`); it must exist and be writable,
    /// unless `create`.
    pub dir: PathBuf,
    /// Each file's mode (`--credentials-file-mode`).
    pub mode: u32,
    /// Create the folder (its parent must exist), owner-only plus group
    /// read, so that nobody else can write in it even inside a volume every
    /// container of the pod can write (`--credentials-dir-create`).
    pub create: bool,
}

/// How much one caller namespace may hold, so that one caller cannot
/// exhaust the sidecar for the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManagedLimits {
    /// Managed names per namespace (`--max-managed-clients-per-namespace`);
    /// declared clients count toward it but are never refused.
    pub names_per_namespace: usize,
    /// Open WatchClient streams per namespace
    /// (`--max-watches-per-namespace`).
    pub watches_per_namespace: usize,
}

/// The managed-client settings, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagedSettings {
    /// The declared clients.
    pub clients: Vec<DeclaredClient>,
    /// How often they are reconciled.
    pub reconcile_interval: Duration,
    /// Where their credentials files go, if anywhere.
    pub credentials: Option<CredentialsDir>,
    /// How long a client no longer declared (or replaced after the server
    /// lost it) stays registered and listed before it is deleted at the
    /// server (`--retired-client-grace`).
    pub retired_grace: Duration,
    /// Per-namespace limits.
    pub limits: ManagedLimits,
}
