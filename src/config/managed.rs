//! Managed-client settings: the declared clients (`[[clients]]` tables of the
//! config file), how often they are reconciled, and where their credentials
//! are written.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::check::{duration_within, octal_mode};
use super::{ConfigError, invalid};
use crate::dcr::{DEFAULT_NAMESPACE, json, limits};
use crate::managed::{CredentialsDir, DeclaredClient, ManagedSettings, RotationPolicy};

/// Default interval between reconciles of the declared clients.
pub const DEFAULT_RECONCILE_INTERVAL: Duration = Duration::from_secs(300);
/// Shortest and longest reconcile interval.
const RECONCILE_RANGE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(86_400));
/// Default mode of a credentials file: the owner only.
pub const DEFAULT_CREDENTIALS_FILE_MODE: u32 = 0o600;
/// Shortest and longest secret rotation period, and margin before expiry.
const ROTATION_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(366 * 86_400));
/// Most declared clients: each has a task and its own metric series.
pub const MAX_DECLARED_CLIENTS: usize = 256;
/// Longest namespace a declared client may name.
const MAX_NAMESPACE_BYTES: usize = 2048;

/// One `[[clients]]` table as written.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    /// The client's name (see EnsureClient).
    pub name: String,
    /// The caller namespace it belongs to [default: default].
    #[serde(default)]
    pub namespace: Option<String>,
    /// RFC 7591 metadata, e.g. `{ client_name = "billing", grant_types = ["client_credentials"] }`.
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// Rotate the secret this often, e.g. `30d` [default: never].
    #[serde(default)]
    pub rotate_secret_every: Option<String>,
    /// Rotate this long before the secret expires, e.g. `1d` [default: never].
    #[serde(default)]
    pub rotate_before_expiry: Option<String>,
    /// Write `<credentials_dir>/<name>.json` [default: true when credentials_dir is set].
    #[serde(default)]
    pub credentials_file: Option<bool>,
}

/// Checks the managed-client settings. A declared client's error names its
/// table and field, e.g. `[[clients]] 2 (billing-api): metadata.grant_types`.
pub fn managed_settings(
    clients: Vec<RawClient>,
    reconcile_interval: Option<String>,
    credentials_dir: Option<String>,
    credentials_file_mode: Option<String>,
) -> Result<ManagedSettings, ConfigError> {
    if clients.len() > MAX_DECLARED_CLIENTS {
        return Err(invalid(
            "[[clients]]",
            format!("at most {MAX_DECLARED_CLIENTS} clients may be declared"),
        ));
    }
    let credentials = match credentials_dir {
        Some(dir) if dir.is_empty() => {
            return Err(invalid("--credentials-dir", "must not be empty"));
        }
        Some(dir) => {
            let mode = match credentials_file_mode {
                Some(m) => octal_mode("--credentials-file-mode", &m, "0640")?,
                None => DEFAULT_CREDENTIALS_FILE_MODE,
            };
            if mode & 0o600 != 0o600 || mode & 0o137 != 0 {
                return Err(invalid(
                    "--credentials-file-mode",
                    "must let the owner read and write, may let the group read, and nothing more (0600 or 0640)",
                ));
            }
            Some(CredentialsDir {
                dir: PathBuf::from(dir),
                mode,
            })
        }
        None if credentials_file_mode.is_some() => {
            return Err(invalid(
                "--credentials-file-mode",
                "needs --credentials-dir",
            ));
        }
        None => None,
    };
    let mut checked: Vec<DeclaredClient> = Vec::with_capacity(clients.len());
    for (i, raw) in clients.into_iter().enumerate() {
        let client = declared(i + 1, raw, credentials.is_some())?;
        if checked
            .iter()
            .any(|c| c.name == client.name && c.namespace == client.namespace)
        {
            return Err(client_error(
                i + 1,
                &client.name,
                "name",
                "is declared twice",
            ));
        }
        if client.credentials_file
            && checked
                .iter()
                .any(|c| c.credentials_file && c.name == client.name)
        {
            return Err(client_error(
                i + 1,
                &client.name,
                "credentials_file",
                "another declared client of this name writes the same file",
            ));
        }
        checked.push(client);
    }
    Ok(ManagedSettings {
        clients: checked,
        reconcile_interval: duration_within(
            "--reconcile-interval",
            reconcile_interval,
            DEFAULT_RECONCILE_INTERVAL,
            RECONCILE_RANGE,
        )?,
        credentials,
    })
}

fn client_error(
    index: usize,
    name: &str,
    field: &str,
    reason: impl std::fmt::Display,
) -> ConfigError {
    ConfigError::Client {
        index,
        name: name.to_owned(),
        field: field.to_owned(),
        reason: reason.to_string(),
    }
}

fn declared(index: usize, raw: RawClient, files: bool) -> Result<DeclaredClient, ConfigError> {
    let name = raw.name;
    crate::dcr::check_name("name", &name).map_err(|e| client_error(index, &name, "name", e))?;
    let namespace = raw
        .namespace
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
    if namespace.is_empty()
        || namespace.len() > MAX_NAMESPACE_BYTES
        || namespace.chars().any(char::is_control)
    {
        return Err(client_error(
            index,
            &name,
            "namespace",
            format!("must be 1 to {MAX_NAMESPACE_BYTES} bytes without control characters"),
        ));
    }
    let metadata = json::metadata_from_json(raw.metadata)
        .map_err(|e| client_error(index, &name, "metadata", e))?;
    limits::check_metadata("metadata", &metadata).map_err(|e| match e {
        crate::dcr::DcrError::InvalidArgument { field, reason } => {
            client_error(index, &name, &field, reason)
        }
        other => client_error(index, &name, "metadata", other),
    })?;
    let period = |field: &str, text: Option<String>| -> Result<Option<Duration>, ConfigError> {
        let Some(text) = text else {
            return Ok(None);
        };
        let d = super::parse_duration(&text).map_err(|e| client_error(index, &name, field, e))?;
        if d < ROTATION_RANGE.0 || d > ROTATION_RANGE.1 {
            return Err(client_error(
                index,
                &name,
                field,
                "must be between 1s and 366d",
            ));
        }
        Ok(Some(d))
    };
    let rotation = RotationPolicy {
        every: period("rotate_secret_every", raw.rotate_secret_every)?,
        before_expiry: period("rotate_before_expiry", raw.rotate_before_expiry)?,
    };
    let credentials_file = match raw.credentials_file {
        Some(true) if !files => {
            return Err(client_error(
                index,
                &name,
                "credentials_file",
                "needs --credentials-dir",
            ));
        }
        Some(on) => on,
        None => files,
    };
    Ok(DeclaredClient {
        name,
        namespace,
        metadata,
        rotation,
        credentials_file,
    })
}
