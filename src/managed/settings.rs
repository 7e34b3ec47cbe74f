//! What an operator sets for managed clients, checked (by `config`): the
//! declared clients, their rotation policies, where credentials files go,
//! and how much one caller may hold.

use std::path::PathBuf;
use std::time::Duration;

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
