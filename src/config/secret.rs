//! A setting that holds secret material (a keyring, a Redis URL with a
//! password, caller tokens): parsed like any other, never shown by `Debug`.
//! The secret values themselves have no flag (any user can read a process's
//! command line): besides a file, they come from these environment variables.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

use super::check::{invalid, read_text};
use super::{ConfigError, RawConfig, RawStoreConfig};
use crate::api::Callers;

/// The initial access token, when not in `--initial-access-token-file`.
pub const INITIAL_ACCESS_TOKEN_ENV: &str = "DCR_GATEWAY_INITIAL_ACCESS_TOKEN";
/// The caller list, when not in `--callers-file`.
pub const CALLERS_ENV: &str = "DCR_GATEWAY_CALLERS";
/// The keyring, when not in `--token-store-keys-file`.
pub const TOKEN_STORE_KEYS_ENV: &str = "DCR_GATEWAY_TOKEN_STORE_KEYS";

/// A secret from environment variable `name`; `None` when unset or empty (as
/// clap treats the variables of flags).
fn from_env(name: &'static str) -> Result<Option<Secret>, ConfigError> {
    match std::env::var(name) {
        Ok(value) if value.is_empty() => Ok(None),
        Ok(value) => Ok(Some(Secret(SecretString::from(value)))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(invalid(name, "is not valid UTF-8")),
    }
}

impl RawConfig {
    /// The secret settings given in the environment, everything else unset: to
    /// be laid between the flags and the config file.
    pub fn secret_env() -> Result<Self, ConfigError> {
        Ok(Self {
            initial_access_token: from_env(INITIAL_ACCESS_TOKEN_ENV)?,
            callers: from_env(CALLERS_ENV)?,
            token_store: RawStoreConfig::secret_env()?,
            ..Self::default()
        })
    }
}

impl RawStoreConfig {
    /// The keyring given in the environment, everything else unset.
    pub fn secret_env() -> Result<Self, ConfigError> {
        Ok(Self {
            keys: from_env(TOKEN_STORE_KEYS_ENV)?,
            ..Self::default()
        })
    }
}

/// A secret setting value.
#[derive(Clone)]
pub struct Secret(pub SecretString);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.expose_secret() == other.0.expose_secret()
    }
}

impl Eq for Secret {}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(SecretString::from(s)))
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Self(SecretString::from(s)))
    }
}

/// The caller list, from a file or inline; `None` when neither is set.
pub(super) fn callers(
    file: Option<String>,
    inline: Option<Secret>,
) -> Result<Option<Arc<Callers>>, ConfigError> {
    let Some((setting, text)) = secret_setting((CALLERS_ENV, inline), ("--callers-file", file))?
    else {
        return Ok(None);
    };
    let callers = Callers::parse(&text).map_err(|e| invalid(setting, e.to_string()))?;
    Ok(Some(Arc::new(callers)))
}

/// The default initial access token, inline or from a file (whitespace around
/// it ignored, as `kubectl create secret --from-file` keeps a final newline).
pub(super) fn initial_access_token(
    inline: Option<Secret>,
    file: Option<String>,
) -> Result<Option<secrecy::SecretString>, ConfigError> {
    use secrecy::ExposeSecret;
    let Some((setting, text)) = secret_setting(
        (INITIAL_ACCESS_TOKEN_ENV, inline),
        ("--initial-access-token-file", file),
    )?
    else {
        return Ok(None);
    };
    let token = secrecy::SecretString::from(text.expose_secret().trim());
    crate::dcr::limits::check_token(setting, &token)
        .map_err(|e| invalid(setting, e.to_string()))?;
    Ok(Some(token))
}

/// A secret given inline or as a file (not both), with the setting it came
/// from; `None` when neither is set.
pub(super) fn secret_setting(
    (inline_setting, inline): (&'static str, Option<Secret>),
    (file_setting, file): (&'static str, Option<String>),
) -> Result<Option<(&'static str, secrecy::SecretString)>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(invalid(
            file_setting,
            format!("give {file_setting} or {inline_setting}, not both"),
        )),
        (Some(Secret(text)), None) => Ok(Some((inline_setting, text))),
        (None, Some(path)) => Ok(Some((file_setting, secret_file(file_setting, &path)?))),
        (None, None) => Ok(None),
    }
}

/// Reads a file of secret material; the error names the file, never its content.
fn secret_file(setting: &'static str, path: &str) -> Result<secrecy::SecretString, ConfigError> {
    read_text(Path::new(path))
        .map(secrecy::SecretString::from)
        .map_err(|e| invalid(setting, format!("cannot read {path}: {e}")))
}
