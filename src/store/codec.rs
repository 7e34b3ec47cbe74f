//! Values at rest: one codec seals and opens both spaces, tokens and
//! records. A token value is the sealed JSON `{"t": token, "u":
//! registration_client_uri, "l": learned_at}`, a record value the sealed
//! record JSON; each is authenticated with its store key, its generation and
//! its space, so neither can be moved to another key or space and still open.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::cipher::{self, Keyring};
use super::{StoreError, StoredRecord, StoredToken};

/// Which space a sealed value belongs to, in its associated data.
#[derive(Clone, Copy, Debug)]
pub enum Space {
    /// Registration access tokens.
    Tokens,
    /// Managed client records.
    Records,
}

fn aad(space: Space, key: &str, generation: u64) -> Vec<u8> {
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

/// Seals `plain` for `key` at `generation` in `space` (plaintext, marked so,
/// without a keyring).
pub fn seal(
    keyring: Option<&Keyring>,
    space: Space,
    key: &str,
    generation: u64,
    plain: &[u8],
) -> Vec<u8> {
    cipher::seal(keyring, plain, &aad(space, key, generation))
}

/// Opens a value stored under `key` at `generation` in `space`.
pub fn open(
    keyring: Option<&Keyring>,
    space: Space,
    key: &str,
    generation: u64,
    value: &[u8],
) -> Result<Vec<u8>, StoreError> {
    cipher::open(keyring, value, &aad(space, key, generation))
        .map_err(|e| StoreError::Unreadable(e.to_string()))
}

/// `value` (stored under `key` at `generation` in `space`) sealed with
/// `keyring`'s current key if it is plaintext, else `None`. The generation
/// stays: it is the same value, so a writer that read the entry before may
/// still replace it.
pub fn reseal_plain(
    keyring: &Keyring,
    space: Space,
    key: &str,
    generation: u64,
    value: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    if !cipher::is_plain(value) {
        return Ok(None);
    }
    let plain = open(None, space, key, generation, value)?;
    Ok(Some(seal(Some(keyring), space, key, generation, &plain)))
}

#[derive(Serialize, Deserialize)]
struct Plain {
    t: String,
    u: String,
    l: u64,
}

/// Seals a token for `key` at `generation`.
pub fn seal_token(
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
    seal(keyring, Space::Tokens, key, generation, &json)
}

/// Opens a token stored under `key` at `generation`.
pub fn open_token(
    keyring: Option<&Keyring>,
    key: &str,
    generation: u64,
    value: &[u8],
) -> Result<StoredToken, StoreError> {
    let json = open(keyring, Space::Tokens, key, generation, value)?;
    let plain: Plain = serde_json::from_slice(&json)
        .map_err(|_| StoreError::Unreadable("value is not a token record".into()))?;
    Ok(StoredToken {
        token: SecretString::from(plain.t),
        registration_client_uri: plain.u,
        learned_at: plain.l,
        generation,
    })
}

/// Seals a managed client record for `key` at `generation`.
pub fn seal_record(
    keyring: Option<&Keyring>,
    key: &str,
    generation: u64,
    json: &SecretString,
) -> Vec<u8> {
    seal(
        keyring,
        Space::Records,
        key,
        generation,
        json.expose_secret().as_bytes(),
    )
}

/// Opens a record stored under `key` at `generation`.
pub fn open_record(
    keyring: Option<&Keyring>,
    key: &str,
    generation: u64,
    value: &[u8],
) -> Result<StoredRecord, StoreError> {
    let json = open(keyring, Space::Records, key, generation, value)?;
    let json = String::from_utf8(json)
        .map_err(|_| StoreError::Unreadable("record is not UTF-8".into()))?;
    Ok(StoredRecord {
        json: SecretString::from(json),
        generation,
        client_id: None,
    })
}
