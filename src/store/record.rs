//! How keys and values are laid out in the durable backends.
//!
//! A store key is `upstream US namespace US client_id` (US = the ASCII unit
//! separator, which none of the parts may contain); a managed client record's
//! is `upstream US namespace US name`, in a space of its own. A token value is
//! the sealed JSON `{"t": token, "u": registration_client_uri, "l":
//! learned_at}`, a record value the sealed record JSON; each is authenticated
//! with its store key, its generation and which of the two it is, so neither
//! can be moved to another key or space and still open.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::cipher::{self, Keyring};
use super::{ManagedKey, StoreError, StoredRecord, StoredToken, TokenKey};

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
    join(&key.upstream, &key.namespace, &key.client_id)
}

/// Reads a stored key back; `None` for anything this store did not write.
pub fn parse_key(text: &str) -> Option<TokenKey> {
    let (upstream, namespace, client_id) = split(text)?;
    Some(TokenKey {
        upstream,
        namespace,
        client_id,
    })
}

/// The bytes a managed client record is stored under.
pub fn record_key_bytes(key: &ManagedKey) -> String {
    join(&key.upstream, &key.namespace, &key.name)
}

/// Reads a stored record key back.
pub fn parse_record_key(text: &str) -> Option<ManagedKey> {
    let (upstream, namespace, name) = split(text)?;
    Some(ManagedKey {
        upstream,
        namespace,
        name,
    })
}

/// The start of every record key of `namespace` on `upstream`: a record
/// key is this followed by the name.
pub fn record_prefix(upstream: &str, namespace: &str) -> String {
    join(upstream, namespace, "")
}

/// The key of the index entry that finds the records holding `client_id`
/// (the records of one client, see `TokenStore::records_of_client`).
pub fn client_index_key(upstream: &str, namespace: &str, client_id: &str) -> String {
    join(upstream, namespace, client_id)
}

/// The start of every index entry of the client with `index_key` (see
/// [`client_index_key`]), for a store that keeps one entry per record: the
/// entry is this followed by the name.
pub fn client_index_entries(index_key: &str) -> String {
    format!("{index_key}{SEP}")
}

fn join(a: &str, b: &str, c: &str) -> String {
    format!("{a}{SEP}{b}{SEP}{c}")
}

fn split(text: &str) -> Option<(String, String, String)> {
    let mut parts = text.splitn(3, SEP);
    Some((
        parts.next()?.to_owned(),
        parts.next()?.to_owned(),
        parts.next()?.to_owned(),
    ))
}

#[derive(Serialize, Deserialize)]
struct Plain {
    t: String,
    u: String,
    l: u64,
}

/// Which space a sealed value belongs to, in its associated data.
#[derive(Clone, Copy)]
enum Space {
    Tokens,
    Records,
}

fn aad_in(space: Space, key: &str, generation: u64) -> Vec<u8> {
    // Token values keep the associated data they always had, so existing
    // stores read on; records add a tag no store key can start with.
    let mut aad = match space {
        Space::Tokens => Vec::new(),
        Space::Records => b"record\x1f".to_vec(),
    };
    aad.extend_from_slice(key.as_bytes());
    aad.extend_from_slice(&generation.to_be_bytes());
    aad
}

fn aad(key: &str, generation: u64) -> Vec<u8> {
    aad_in(Space::Tokens, key, generation)
}

/// Seals a managed client record for `key` at `generation`.
pub fn seal_record(
    keyring: Option<&Keyring>,
    key: &str,
    generation: u64,
    json: &SecretString,
) -> Vec<u8> {
    cipher::seal(
        keyring,
        json.expose_secret().as_bytes(),
        &aad_in(Space::Records, key, generation),
    )
}

/// Opens a record stored under `key` at `generation`.
pub fn open_record(
    keyring: Option<&Keyring>,
    key: &str,
    generation: u64,
    value: &[u8],
) -> Result<StoredRecord, StoreError> {
    let json = cipher::open(keyring, value, &aad_in(Space::Records, key, generation))
        .map_err(|e| StoreError::Unreadable(e.to_string()))?;
    let json = String::from_utf8(json)
        .map_err(|_| StoreError::Unreadable("record is not UTF-8".into()))?;
    Ok(StoredRecord {
        json: SecretString::from(json),
        generation,
        client_id: None,
    })
}

/// A plaintext record sealed with `keyring`'s current key, else `None`.
pub fn reseal_plain_record(
    keyring: &Keyring,
    key: &str,
    generation: u64,
    value: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    if !cipher::is_plain(value) {
        return Ok(None);
    }
    let record = open_record(None, key, generation, value)?;
    Ok(Some(seal_record(
        Some(keyring),
        key,
        generation,
        &record.json,
    )))
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
