//! How keys and values are laid out in the durable backends.
//!
//! A store key is `upstream US namespace US client_id` (US = the ASCII unit
//! separator, which none of the parts may contain). A value is the sealed JSON
//! `{"t": token, "u": registration_client_uri, "l": learned_at}`; its store key
//! and generation are authenticated with it.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::cipher::{self, Keyring};
use super::{StoreError, StoredToken, TokenKey};

/// Separates the parts of a store key.
const SEP: char = '\u{1f}';
/// Longest upstream base URL in a key.
const MAX_UPSTREAM_BYTES: usize = 2048;
/// Longest namespace in a key: a SPIFFE ID may be 2048 bytes.
const MAX_NAMESPACE_BYTES: usize = 2048;

/// A key part that would make the store key ambiguous or unbounded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct KeyPartError {
    /// `upstream`, `namespace` or `client_id`.
    pub field: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// Checks the parts of a key that comes from outside the gateway (`tokens
/// import`): each non-empty, bounded, and free of control characters, so no
/// part can hold the separator and every store key reads back as the key it was
/// written for. The client id follows the gateway's own client id limits.
pub fn check_key(key: &TokenKey) -> Result<(), KeyPartError> {
    let part = |field, value: &str, max: usize| {
        let reason = if value.is_empty() {
            "must not be empty".to_owned()
        } else if value.len() > max {
            format!("is longer than {max} bytes")
        } else if value.chars().any(char::is_control) {
            "must not contain control characters".to_owned()
        } else {
            return Ok(());
        };
        Err(KeyPartError { field, reason })
    };
    part("upstream", &key.upstream, MAX_UPSTREAM_BYTES)?;
    part("namespace", &key.namespace, MAX_NAMESPACE_BYTES)?;
    crate::dcr::limits::check_client_id(&key.client_id).map_err(|e| match e {
        crate::dcr::DcrError::InvalidArgument { reason, .. } => KeyPartError {
            field: "client_id",
            reason,
        },
        other => KeyPartError {
            field: "client_id",
            reason: other.to_string(),
        },
    })
}

/// The bytes a key is stored under.
pub fn key_bytes(key: &TokenKey) -> String {
    format!(
        "{}{SEP}{}{SEP}{}",
        key.upstream, key.namespace, key.client_id
    )
}

/// Reads a stored key back; `None` for anything this store did not write.
pub fn parse_key(text: &str) -> Option<TokenKey> {
    let mut parts = text.splitn(3, SEP);
    Some(TokenKey {
        upstream: parts.next()?.to_owned(),
        namespace: parts.next()?.to_owned(),
        client_id: parts.next()?.to_owned(),
    })
}

#[derive(Serialize, Deserialize)]
struct Plain {
    t: String,
    u: String,
    l: u64,
}

fn aad(key: &str, generation: u64) -> Vec<u8> {
    let mut aad = key.as_bytes().to_vec();
    aad.extend_from_slice(&generation.to_be_bytes());
    aad
}

/// Seals a value for `key` at `generation`.
pub fn seal_value(
    keyring: Option<&Keyring>,
    key: &str,
    generation: u64,
    token: &SecretString,
    uri: &str,
    learned_at: u64,
) -> Vec<u8> {
    let plain = Plain {
        t: token.expose_secret().to_owned(),
        u: uri.to_owned(),
        l: learned_at,
    };
    // A broken invariant must fail loudly, never store an empty record in
    // place of a token.
    let json = serde_json::to_vec(&plain).expect("a record of strings and a number serialises");
    cipher::seal(keyring, &json, &aad(key, generation))
}

/// `value` (stored under `key` at `generation`) sealed with `keyring`'s current
/// key if it is plaintext, else `None`. The generation stays: it is the same
/// token, so a writer that read the entry before may still replace it.
pub fn reseal_plain(
    keyring: &Keyring,
    key: &str,
    generation: u64,
    value: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    if !cipher::is_plain(value) {
        return Ok(None);
    }
    let t = open_value(None, key, generation, value)?;
    Ok(Some(seal_value(
        Some(keyring),
        key,
        generation,
        &t.token,
        &t.registration_client_uri,
        t.learned_at,
    )))
}

/// Opens a value stored under `key` at `generation`.
pub fn open_value(
    keyring: Option<&Keyring>,
    key: &str,
    generation: u64,
    value: &[u8],
) -> Result<StoredToken, StoreError> {
    let json = cipher::open(keyring, value, &aad(key, generation))
        .map_err(|e| StoreError::Unreadable(e.to_string()))?;
    let plain: Plain = serde_json::from_slice(&json)
        .map_err(|_| StoreError::Unreadable("value is not a token record".into()))?;
    Ok(StoredToken {
        token: SecretString::from(plain.t),
        registration_client_uri: plain.u,
        learned_at: plain.l,
        generation,
    })
}
