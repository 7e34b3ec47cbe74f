//! Encryption at rest: XChaCha20-Poly1305 with a keyring whose first key seals
//! new values and whose every key opens old ones, so keys can be rotated.
//!
//! A keyring is text, one key per line: `ID=BASE64`, where the key is 32 random
//! bytes (`head -c32 /dev/urandom | base64`) and the id is 1 to 32 characters of
//! `A-Z a-z 0-9 _ - .`. Blank lines and `#` comments are ignored; commas also
//! separate keys, for environment variables. Sealed values carry the key id, and
//! the value's store key and generation are authenticated with it, so a value
//! cannot be moved to another entry unnoticed.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{AeadCore, XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};

/// The first byte of a plaintext value (no keyring configured).
const PLAIN: u8 = 0;
/// The first byte of a sealed value.
const SEALED: u8 = 1;
/// Longest key id.
const MAX_ID_LEN: usize = 32;

/// A keyring problem; never contains key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The keyring text is malformed.
    #[error("keyring line {line}: {reason}")]
    Malformed {
        /// 1-based line (or comma-separated item) number.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The keyring has no key.
    #[error("the keyring holds no key")]
    Empty,
    /// A value was sealed with a key id the keyring lacks.
    #[error("value sealed with key id {0:?}, which the keyring does not hold")]
    UnknownKey(String),
    /// A value does not open with the key its id names: wrong key, or tampering.
    #[error("value does not decrypt with key id {0:?}: wrong key or tampered value")]
    WrongKey(String),
    /// A plaintext value where a keyring is configured: refused, never served,
    /// since a value planted in the store (or left from before the keyring)
    /// would otherwise be trusted as if the keyring had authenticated it.
    #[error(
        "value is stored in plaintext but a keyring is configured: refused; \
         run `dcr-gateway tokens seal` once to seal such entries"
    )]
    Plaintext,
    /// A sealed value with no keyring configured.
    #[error("value is encrypted but no keyring is configured")]
    NoKeyring,
    /// The value is not in a known format.
    #[error("value is malformed")]
    Corrupt,
}

/// Keys for sealing and opening store values.
pub struct Keyring {
    current: String,
    keys: HashMap<String, XChaCha20Poly1305>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<_> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("ids", &ids)
            .finish()
    }
}

impl Keyring {
    /// Parses keyring text (see the module documentation).
    pub fn parse(text: &SecretString) -> Result<Self, KeyError> {
        let mut current = None;
        let mut keys = HashMap::new();
        let items = text.expose_secret().split(['\n', ',']).map(str::trim);
        for (i, item) in items.enumerate() {
            if item.is_empty() || item.starts_with('#') {
                continue;
            }
            let line = i + 1;
            let bad = |reason| KeyError::Malformed { line, reason };
            let (id, b64) = item.split_once('=').ok_or(bad("expected ID=BASE64"))?;
            let valid_id = !id.is_empty()
                && id.len() <= MAX_ID_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
            if !valid_id {
                return Err(bad("the id must be 1 to 32 of A-Z a-z 0-9 _ - ."));
            }
            let bytes = STANDARD
                .decode(b64.trim())
                .map_err(|_| bad("the key is not base64"))?;
            let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
                .map_err(|_| bad("the key must be 32 bytes"))?;
            if keys.insert(id.to_owned(), cipher).is_some() {
                return Err(bad("the id appears twice"));
            }
            current.get_or_insert_with(|| id.to_owned());
        }
        let current = current.ok_or(KeyError::Empty)?;
        Ok(Self { current, keys })
    }

    /// The id of the key that seals new values.
    pub fn current_id(&self) -> &str {
        &self.current
    }
}

/// Seals `plaintext` with the keyring's current key, or marks it plaintext
/// when there is no keyring. `aad` is authenticated, not stored.
pub fn seal(keyring: Option<&Keyring>, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let Some(ring) = keyring else {
        let mut out = Vec::with_capacity(plaintext.len() + 1);
        out.push(PLAIN);
        out.extend_from_slice(plaintext);
        return out;
    };
    let cipher = &ring.keys[&ring.current];
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    // A broken invariant must fail loudly, never store an empty ciphertext
    // in place of a token.
    let sealed = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("XChaCha20-Poly1305 encrypts any in-memory buffer with a valid key and nonce");
    let id = ring.current.as_bytes();
    let mut out = Vec::with_capacity(2 + id.len() + nonce.len() + sealed.len());
    out.push(SEALED);
    out.push(id.len() as u8);
    out.extend_from_slice(id);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

/// Whether `value` was written by [`seal`] without a keyring.
pub fn is_plain(value: &[u8]) -> bool {
    value.first() == Some(&PLAIN)
}

/// Opens a value written by [`seal`]. Plaintext values open only without a
/// keyring ([`KeyError::Plaintext`] with one: a store moves to encryption with
/// `tokens seal`); sealed ones need their key.
pub fn open(keyring: Option<&Keyring>, value: &[u8], aad: &[u8]) -> Result<Vec<u8>, KeyError> {
    match value.split_first() {
        Some((&PLAIN, _)) if keyring.is_some() => Err(KeyError::Plaintext),
        Some((&PLAIN, rest)) => Ok(rest.to_vec()),
        Some((&SEALED, rest)) => {
            let (&id_len, rest) = rest.split_first().ok_or(KeyError::Corrupt)?;
            let id_len = usize::from(id_len);
            if rest.len() < id_len + 24 {
                return Err(KeyError::Corrupt);
            }
            let (id, rest) = rest.split_at(id_len);
            let id = String::from_utf8_lossy(id).into_owned();
            let (nonce, sealed) = rest.split_at(24);
            let ring = keyring.ok_or(KeyError::NoKeyring)?;
            let cipher = ring
                .keys
                .get(&id)
                .ok_or_else(|| KeyError::UnknownKey(id.clone()))?;
            cipher
                .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad })
                .map_err(|_| KeyError::WrongKey(id))
        }
        _ => Err(KeyError::Corrupt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(text: &str) -> Keyring {
        Keyring::parse(&SecretString::from(text)).unwrap()
    }

    const K1: &str = "k1=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "k2=HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4=";

    #[test]
    fn sealed_values_hide_the_plaintext_and_open_after_rotation() {
        let old = ring(K1);
        let sealed = seal(Some(&old), b"secret-token-bytes", b"key");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        let rotated = ring(&format!("{K2}\n{K1}"));
        assert_eq!(rotated.current_id(), "k2");
        assert_eq!(
            open(Some(&rotated), &sealed, b"key").unwrap(),
            b"secret-token-bytes"
        );
        assert!(seal(Some(&rotated), b"x", b"k")[2..4].starts_with(b"k2"));
    }

    #[test]
    fn wrong_key_missing_key_and_moved_value_are_errors() {
        let sealed = seal(Some(&ring(K1)), b"t", b"key-a");
        let impostor = ring("k1=HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4=");
        assert_eq!(
            open(Some(&impostor), &sealed, b"key-a"),
            Err(KeyError::WrongKey("k1".into()))
        );
        assert_eq!(
            open(Some(&ring(K2)), &sealed, b"key-a"),
            Err(KeyError::UnknownKey("k1".into()))
        );
        assert_eq!(
            open(Some(&ring(K1)), &sealed, b"key-b"),
            Err(KeyError::WrongKey("k1".into()))
        );
        assert_eq!(open(None, &sealed, b"key-a"), Err(KeyError::NoKeyring));
    }

    #[test]
    fn a_plaintext_value_opens_only_without_a_keyring() {
        let plain = seal(None, b"planted", b"key");
        assert!(is_plain(&plain));
        assert_eq!(open(None, &plain, b"key").unwrap(), b"planted");
        assert_eq!(
            open(Some(&ring(K1)), &plain, b"key"),
            Err(KeyError::Plaintext)
        );
        assert!(!is_plain(&seal(Some(&ring(K1)), b"t", b"key")));
    }

    #[test]
    fn keyring_errors_name_the_line_and_never_the_key() {
        let err = Keyring::parse(&SecretString::from("# comment\nk1=notbase64!")).unwrap_err();
        assert_eq!(
            err,
            KeyError::Malformed {
                line: 2,
                reason: "the key is not base64"
            }
        );
        let err = Keyring::parse(&SecretString::from("k1=AAAA")).unwrap_err();
        assert_eq!(
            err,
            KeyError::Malformed {
                line: 1,
                reason: "the key must be 32 bytes"
            }
        );
        assert_eq!(
            Keyring::parse(&SecretString::from("\n# none\n")).unwrap_err(),
            KeyError::Empty
        );
        assert!(!format!("{:?}", ring(K1)).contains("AAEC"));
    }
}
