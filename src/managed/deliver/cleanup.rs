//! Removing what the gateway delivered for a client no longer declared: its
//! credentials file and its token files, and nothing else (a file is the
//! gateway's only when it is a regular file of its own user, named as the
//! gateway names them, holding what the gateway writes there).

use serde_json::Value;

use super::credentials::MAX_FILE_BYTES;
use super::credentials::{UPDATED_AT, file_name};
use super::folder::Folder;
use super::folder::open;
use super::token_file::{looks_like_token, owner};
use crate::managed::settings::CredentialsDir;

/// Removes `name`'s credentials file and token files; whether there were
/// any.
pub fn remove(dir: &CredentialsDir, name: &str) -> std::io::Result<bool> {
    let folder = open(dir)?;
    let mut removed = folder.remove(&file_name(name))?;
    for file in folder.names()? {
        if owner(&file) == Some(name) && ours(&folder, &file) {
            removed |= folder.remove(&file)?;
        }
    }
    if removed {
        folder.sync()?;
    }
    Ok(removed)
}

/// Removes every file of the gateway's own in the folder whose name is not
/// in `keep` (a credentials file `<name>.json` or a token file of a client
/// no longer declared, or a token no longer asked for). Returns the names
/// removed.
pub fn remove_undeclared(dir: &CredentialsDir, keep: &[String]) -> std::io::Result<Vec<String>> {
    let folder = open(dir)?;
    let mut removed = Vec::new();
    for file in folder.names()? {
        if keep.contains(&file) || !ours(&folder, &file) {
            continue;
        }
        if folder.remove(&file).unwrap_or(false) {
            removed.push(file);
        }
    }
    if !removed.is_empty() {
        folder.sync()?;
    }
    Ok(removed)
}

/// Whether `file` is one the gateway wrote: `<name>.json` for a valid name,
/// holding `client_id` and `secret_issued_at`, or a token file holding a
/// token; always a regular file of this user.
fn ours(folder: &Folder, file: &str) -> bool {
    let credentials = file
        .strip_suffix(".json")
        .is_some_and(|name| crate::dcr::check_name("name", name).is_ok());
    let token = owner(file).is_some();
    if !credentials && !token {
        return false;
    }
    let Ok(Some(existing)) = folder.read_own(file, MAX_FILE_BYTES) else {
        return false;
    };
    match credentials {
        true => matches!(
            serde_json::from_slice::<Value>(&existing.bytes),
            Ok(Value::Object(m)) if m.contains_key("client_id")
                && (m.contains_key("client_secret") || m.contains_key(UPDATED_AT))
        ),
        false => looks_like_token(&existing.bytes),
    }
}
