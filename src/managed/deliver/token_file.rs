//! A token file: just the access token, no newline, for
//! `Authorization: Bearer $(cat FILE)`; named `<name>.token` or
//! `<name>.<label>.token`, so the files of a client no longer declared are
//! known by their names.

use secrecy::{ExposeSecret, SecretString};

use super::folder::{Written, open};
use crate::dcr::{check_name, limits};
use crate::managed::settings::CredentialsDir;

/// The ending of every token file.
const SUFFIX: &str = ".token";

/// The client name a token file belongs to, when `file` is named as token
/// files are.
pub(super) fn owner(file: &str) -> Option<&str> {
    let stem = file.strip_suffix(SUFFIX)?;
    let (name, label) = match stem.split_once('.') {
        Some((name, label)) => (name, Some(label)),
        None => (stem, None),
    };
    check_name("name", name).ok()?;
    if let Some(label) = label {
        check_name("label", label).ok()?;
    }
    Some(name)
}

/// Whether `bytes`, a file's content, is a token as the gateway writes one.
pub(super) fn looks_like_token(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.len() <= limits::MAX_TOKEN_BYTES
        && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// Writes `token` to `<dir>/<file>` unless the file already holds it, as
/// credentials files are written: a new file renamed over the old one.
pub fn write_token(
    dir: &CredentialsDir,
    file: &str,
    token: &SecretString,
) -> std::io::Result<Written> {
    let folder = open(dir)?;
    let bytes = token.expose_secret().as_bytes();
    if let Some(old) = folder.read_own(file, limits::MAX_TOKEN_BYTES as u64)?
        && old.mode == dir.mode
        && old.bytes == bytes
    {
        return Ok(Written::Unchanged(old.modified));
    }
    let temporary = folder.create_temp(file, dir.mode, bytes)?;
    folder.replace(&temporary, file)?;
    Ok(Written::Replaced(crate::store::unix_now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_are_known_by_their_names() {
        assert_eq!(owner("billing-api.token"), Some("billing-api"));
        assert_eq!(owner("billing-api.read.token"), Some("billing-api"));
        for not in [
            "billing-api.json",
            ".token",
            "Billing.token",
            "a.b.c.token",
            "a..token",
            "billing-api.token.tmp",
        ] {
            assert_eq!(owner(not), None, "{not}");
        }
    }
}
