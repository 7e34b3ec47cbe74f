//! What an operator sets for managed clients, checked (by `config`): the
//! declared clients, their rotation policies, and where credentials files go.

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
    /// The folder (`--credentials-dir`); it must exist and be writable.
    pub dir: PathBuf,
    /// Each file's mode (`--credentials-file-mode`).
    pub mode: u32,
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
}
