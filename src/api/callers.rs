//! Caller authentication: static bearer tokens mapped to caller names. The name
//! becomes the namespace stored tokens are kept under, so one service cannot
//! manage another's clients through the gateway's store.
//!
//! The list is text, one `NAME=TOKEN` per line (or comma-separated); names are 1
//! to 64 of `A-Z a-z 0-9 _ - . :`, tokens at least 16 visible ASCII characters.

use std::fmt;

use ring::digest::{SHA256, digest};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;

use crate::dcr::DcrError;

/// Shortest caller token accepted: guessing must be hopeless.
const MIN_TOKEN_LEN: usize = 16;

/// The configured callers.
pub struct Callers {
    /// (name, SHA-256 of the token): only digests are kept and compared.
    entries: Vec<(String, [u8; 32])>,
}

impl fmt::Debug for Callers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.entries.iter().map(|(n, _)| n).collect();
        f.debug_struct("Callers").field("names", &names).finish()
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

/// Compares two digests in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Why the caller list was refused; names the line, never a token.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallersError {
    /// A line without `=`.
    #[error("line {0}: expected NAME=TOKEN")]
    NotNameToken(usize),
    /// A name outside the allowed characters or length.
    #[error("line {0}: the name must be 1 to 64 of A-Z a-z 0-9 _ - . :")]
    BadName(usize),
    /// A token too short or with invisible characters.
    #[error("line {0}: the token must be at least {MIN_TOKEN_LEN} visible ASCII characters")]
    BadToken(usize),
    /// A name or a token given twice.
    #[error("line {0}: the name or token appears twice")]
    Duplicate(usize),
    /// No entries at all.
    #[error("the caller list is empty")]
    Empty,
}

impl Callers {
    /// Parses the caller list; errors name the line, never a token.
    pub fn parse(text: &SecretString) -> Result<Self, CallersError> {
        let mut entries: Vec<(String, [u8; 32])> = Vec::new();
        for (i, item) in text
            .expose_secret()
            .split(['\n', ','])
            .map(str::trim)
            .enumerate()
        {
            if item.is_empty() || item.starts_with('#') {
                continue;
            }
            let line = i + 1;
            let (name, token) = item
                .split_once('=')
                .ok_or(CallersError::NotNameToken(line))?;
            let valid_name = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b));
            if !valid_name {
                return Err(CallersError::BadName(line));
            }
            if token.len() < MIN_TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(CallersError::BadToken(line));
            }
            let hash = sha256(token.as_bytes());
            if entries
                .iter()
                .any(|(n, h)| n == name || constant_time_eq(h, &hash))
            {
                return Err(CallersError::Duplicate(line));
            }
            entries.push((name.to_owned(), hash));
        }
        if entries.is_empty() {
            return Err(CallersError::Empty);
        }
        Ok(Self { entries })
    }

    /// The caller named by the call's `authorization: Bearer` token. Every entry
    /// is compared, in constant time, whatever matches.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<String, DcrError> {
        let token = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(DcrError::CallerUnauthenticated(
                "send authorization: Bearer <caller token>",
            ))?;
        let presented = sha256(token.as_bytes());
        let mut found = None;
        for (name, hash) in &self.entries {
            if constant_time_eq(hash, &presented) {
                found = Some(name.clone());
            }
        }
        found.ok_or(DcrError::CallerUnauthenticated(
            "the caller token is not recognised",
        ))
    }
}

#[cfg(test)]
mod tests {
    use tonic::metadata::MetadataValue;

    use super::*;

    #[test]
    fn callers_authenticate_by_token_and_errors_hide_tokens() {
        let callers = Callers::parse(&SecretString::from(
            "billing=0123456789abcdef0123,\nshop=fedcba9876543210fedc",
        ))
        .unwrap();
        let mut md = MetadataMap::new();
        md.insert(
            "authorization",
            MetadataValue::from_static("Bearer fedcba9876543210fedc"),
        );
        assert_eq!(callers.authenticate(&md).unwrap(), "shop");
        md.insert(
            "authorization",
            MetadataValue::from_static("Bearer nope-nope-nope-nope"),
        );
        assert!(callers.authenticate(&md).is_err());
        assert!(callers.authenticate(&MetadataMap::new()).is_err());
        let err = Callers::parse(&SecretString::from("a=short")).unwrap_err();
        assert_eq!(err, CallersError::BadToken(1));
        let text = err.to_string();
        assert!(text.contains("line 1") && !text.contains("short"), "{text}");
        let twice = "a=0123456789abcdef0123\na=fedcba9876543210fedc";
        assert_eq!(
            Callers::parse(&SecretString::from(twice)).unwrap_err(),
            CallersError::Duplicate(2)
        );
        assert_eq!(
            Callers::parse(&SecretString::from("# nobody\n")).unwrap_err(),
            CallersError::Empty
        );
        assert!(!format!("{callers:?}").contains("0123456789"));
    }
}
