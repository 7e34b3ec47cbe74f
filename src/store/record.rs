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
    let json = serde_json::to_vec(&plain).unwrap_or_default();
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
