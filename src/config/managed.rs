//! Managed-client settings: the declared clients (`[[clients]]` tables of the
//! config file), how often they are reconciled, where their credentials are
//! written, and what one caller namespace may hold.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::check::{duration_within, octal_mode};
use super::token_files::{RawTokenFile, token_files};
use super::{ConfigError, invalid};
use crate::dcr::{DEFAULT_NAMESPACE, json, limits};
use crate::managed::{
    CredentialsDir, DeclaredClient, ManagedLimits, ManagedSettings, RotationPolicy,
};

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
/// Default time a client no longer declared (or replaced) stays registered:
/// longer than a rollout, during which replicas of the older configuration
/// still use it.
pub const DEFAULT_RETIRED_CLIENT_GRACE: Duration = Duration::from_secs(3600);
/// Shortest and longest retired-client grace.
const RETIRED_GRACE_RANGE: (Duration, Duration) =
    (Duration::ZERO, Duration::from_secs(366 * 86_400));
/// Default most managed clients per caller namespace.
pub const DEFAULT_MAX_MANAGED_CLIENTS_PER_NAMESPACE: usize = 1000;
/// Default most open WatchClient streams per caller namespace (each holds
/// about 17 KiB).
pub const DEFAULT_MAX_WATCHES_PER_NAMESPACE: usize = 100;
/// Largest per-namespace limit accepted.
const MAX_LIMIT: usize = 1_000_000;

/// The managed-client settings as written, before they are checked.
pub struct RawManaged {
    /// The `[[clients]]` tables.
    pub clients: Vec<RawClient>,
    /// `--reconcile-interval`.
    pub reconcile_interval: Option<String>,
    /// `--credentials-dir`.
    pub credentials_dir: Option<String>,
    /// `--credentials-file-mode`.
    pub credentials_file_mode: Option<String>,
    /// `--credentials-dir-create`.
    pub credentials_dir_create: Option<bool>,
    /// `--retired-client-grace`.
    pub retired_client_grace: Option<String>,
    /// `--max-managed-clients-per-namespace`.
    pub max_names_per_namespace: Option<usize>,
    /// `--max-watches-per-namespace`.
    pub max_watches_per_namespace: Option<usize>,
}

impl super::RawConfig {
    /// Takes the managed-client settings out, for checking.
    pub(super) fn take_managed(&mut self) -> RawManaged {
        RawManaged {
            clients: std::mem::take(&mut self.clients),
            reconcile_interval: self.reconcile_interval.take(),
            credentials_dir: self.credentials_dir.take(),
            credentials_file_mode: self.credentials_file_mode.take(),
            credentials_dir_create: self.credentials_dir_create.take(),
            retired_client_grace: self.retired_client_grace.take(),
            max_names_per_namespace: self.max_managed_clients_per_namespace.take(),
            max_watches_per_namespace: self.max_watches_per_namespace.take(),
        }
    }
}

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
    /// Put the client secret in the credentials file [default: true]; with
    /// false the service has the client id and its token files only.
    #[serde(default)]
    pub deliver_secret: Option<bool>,
    /// Access tokens to deliver as files (`[[clients.tokens]]`).
    #[serde(default)]
    pub tokens: Vec<RawTokenFile>,
}

/// Reads the `[[clients]]` tables one by one, so that an error in one
/// (an unknown key, a value of the wrong type) names its place and name:
/// `clients[2] (billing-api): unknown field ...`.
pub fn clients_in_place<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<RawClient>, D::Error> {
    let tables = Vec::<toml::Value>::deserialize(d)?;
    tables
        .into_iter()
        .enumerate()
        .map(|(i, table)| {
            let name = table
                .get("name")
                .and_then(toml::Value::as_str)
                .unwrap_or("unnamed")
                .to_owned();
            let culprit = mistyped_key(&table).map_or(String::new(), |k| format!("{k}: "));
            RawClient::deserialize(table).map_err(|e| {
                let message = super::suggest::unknown_key(e.message());
                serde::de::Error::custom(format!("clients[{i}] ({name}): {culprit}{message}"))
            })
        })
        .collect()
}

/// The first key of a `[[clients]]` table whose value has the wrong type, as
/// written: serde's message names the type it wanted, not the key.
fn mistyped_key(table: &toml::Value) -> Option<&str> {
    let table = table.as_table()?;
    table.iter().find_map(|(key, value)| {
        let right = match key.as_str() {
            "name" | "namespace" | "rotate_secret_every" | "rotate_before_expiry" => value.is_str(),
            "metadata" => value.is_table(),
            "credentials_file" | "deliver_secret" => value.is_bool(),
            "tokens" => value.is_array(),
            // Unknown keys: serde's message names them.
            _ => true,
        };
        (!right).then_some(key.as_str())
    })
}

/// Checks the managed-client settings. A declared client's error names its
/// table and field, e.g. `clients[2] (billing-api): metadata.grant_types`.
pub fn managed_settings(raw: RawManaged) -> Result<ManagedSettings, ConfigError> {
    let clients = raw.clients;
    if clients.len() > MAX_DECLARED_CLIENTS {
        return Err(invalid(
            "[[clients]]",
            format!("at most {MAX_DECLARED_CLIENTS} clients may be declared"),
        ));
    }
    let credentials = credentials_dir(
        raw.credentials_dir,
        raw.credentials_file_mode,
        raw.credentials_dir_create,
    )?;
    let mut checked: Vec<DeclaredClient> = Vec::with_capacity(clients.len());
    for (i, raw) in clients.into_iter().enumerate() {
        let client = declared(i, raw, credentials.is_some())?;
        if checked
            .iter()
            .any(|c| c.name == client.name && c.namespace == client.namespace)
        {
            return Err(client_error(i, &client.name, "name", "is declared twice"));
        }
        let files = client.file_names();
        if let Some(file) = files.iter().find(|f| {
            checked
                .iter()
                .any(|c| c.file_names().iter().any(|other| &other == f))
        }) {
            let field = match file.ends_with(".json") {
                true => "credentials_file",
                false => "tokens",
            };
            return Err(client_error(
                i,
                &client.name,
                field,
                format!("another declared client of this name writes the same file, {file}"),
            ));
        }
        checked.push(client);
    }
    let limit = |setting, value: Option<usize>, default| match value.unwrap_or(default) {
        n @ 1..=MAX_LIMIT => Ok(n),
        _ => Err(invalid(setting, format!("must be 1 to {MAX_LIMIT}"))),
    };
    Ok(ManagedSettings {
        clients: checked,
        reconcile_interval: duration_within(
            "--reconcile-interval",
            raw.reconcile_interval,
            DEFAULT_RECONCILE_INTERVAL,
            RECONCILE_RANGE,
        )?,
        credentials,
        retired_grace: duration_within(
            "--retired-client-grace",
            raw.retired_client_grace,
            DEFAULT_RETIRED_CLIENT_GRACE,
            RETIRED_GRACE_RANGE,
        )?,
        limits: ManagedLimits {
            names_per_namespace: limit(
                "--max-managed-clients-per-namespace",
                raw.max_names_per_namespace,
                DEFAULT_MAX_MANAGED_CLIENTS_PER_NAMESPACE,
            )?,
            watches_per_namespace: limit(
                "--max-watches-per-namespace",
                raw.max_watches_per_namespace,
                DEFAULT_MAX_WATCHES_PER_NAMESPACE,
            )?,
        },
    })
}

/// The credentials folder settings, checked.
fn credentials_dir(
    dir: Option<String>,
    mode: Option<String>,
    create: Option<bool>,
) -> Result<Option<CredentialsDir>, ConfigError> {
    let Some(dir) = dir else {
        return match (mode, create) {
            (Some(_), _) => Err(invalid(
                "--credentials-file-mode",
                "needs --credentials-dir",
            )),
            (_, Some(true)) => Err(invalid(
                "--credentials-dir-create",
                "needs --credentials-dir",
            )),
            _ => Ok(None),
        };
    };
    if dir.is_empty() {
        return Err(invalid("--credentials-dir", "must not be empty"));
    }
    let mode = match mode {
        Some(m) => octal_mode("--credentials-file-mode", &m, "0640")?,
        None => DEFAULT_CREDENTIALS_FILE_MODE,
    };
    if mode & 0o600 != 0o600 || mode & 0o137 != 0 {
        return Err(invalid(
            "--credentials-file-mode",
            "must let the owner read and write, may let the group read, and nothing more (0600 or 0640)",
        ));
    }
    Ok(Some(CredentialsDir {
        dir: PathBuf::from(dir),
        mode,
        create: create.unwrap_or(false),
    }))
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
        .map_err(|e| client_error(index, &name, &format!("metadata.{}", e.field), e.reason))?;
    limits::check_metadata_in("metadata", "metadata", &metadata).map_err(|e| match e {
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
    let tokens = token_files(raw.tokens, files, |field, reason| {
        client_error(index, &name, field, reason)
    })?;
    Ok(DeclaredClient {
        name,
        namespace,
        metadata,
        rotation,
        credentials_file,
        deliver_secret: raw.deliver_secret.unwrap_or(true),
        tokens,
    })
}
