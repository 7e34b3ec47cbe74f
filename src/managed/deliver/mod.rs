//! Credentials files, for services that read files rather than speak gRPC
//! (as Vault Agent and spiffe-helper deliver): `<dir>/<name>.json`, replaced
//! atomically when its content changes and never rewritten when it does not,
//! owner-only or group-readable. Every file operation goes through
//! [`folder::Folder`], which never follows a link nor opens anything that
//! could block, and runs off the async threads within [`WRITE_TIMEOUT`].

mod folder;

pub use folder::Safety;

use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};

use super::settings::CredentialsDir;
use crate::dcr::Client;
use folder::{Folder, is_leftover_temp};

/// Longest a file operation may take (a hung disk or network volume): past
/// it the delivery counts as failed, and the next attempt starts afresh.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest credentials file read back to compare (ours are well under 1 KiB).
const MAX_FILE_BYTES: u64 = 64 * 1024;
/// The member that changes on every write, left out of the comparison.
const UPDATED_AT: &str = "updated_at";

/// What a delivery did, and when the file last changed (Unix seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// The file already held these credentials, with this mode: untouched
    /// since then.
    Unchanged(u64),
    /// A new file replaced the old one, now.
    Replaced(u64),
}

/// Runs blocking file work off the async threads, failing after
/// [`WRITE_TIMEOUT`] (the work itself then finishes on its thread).
pub async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    match tokio::time::timeout(WRITE_TIMEOUT, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(std::io::Error::other("the file writer panicked")),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("took longer than {WRITE_TIMEOUT:?}"),
        )),
    }
}

fn open(dir: &CredentialsDir) -> std::io::Result<Folder> {
    match dir.create {
        true => Folder::create(&dir.dir),
        false => Folder::open(&dir.dir),
    }
}

/// Checks the folder at start: it exists (or is created, with
/// `create`), the gateway can write in it, and whether others can too.
/// Temporary files a crash left behind (which hold secrets) are removed.
pub fn prepare(dir: &CredentialsDir) -> std::io::Result<Safety> {
    let folder = open(dir)?;
    folder.probe()?;
    for name in folder.names()? {
        // A folder planted under such a name, or someone else's file in a
        // sticky folder, stays: it holds no secret of the gateway's.
        if is_leftover_temp(&name)
            && let Err(e) = folder.remove(&name)
        {
            tracing::warn!(name, error = %e, "could not remove a leftover temporary file");
        }
    }
    folder.safety()
}

/// The folder's safety now (a metric and ListClients show it).
pub fn safety(dir: &CredentialsDir) -> std::io::Result<Safety> {
    open(dir)?.safety()
}

/// Checks a file can be created in the folder now, before a rotation that
/// would leave readers with a secret they cannot be given.
pub fn probe(dir: &CredentialsDir) -> std::io::Result<()> {
    open(dir)?.probe()
}

/// The file name of `name`'s credentials.
fn file_name(name: &str) -> String {
    format!("{name}.json")
}

/// The file's members; `updated_at` is the time of this write.
fn body(
    client: &Client,
    secret_issued_at: u64,
    token_endpoint: Option<&str>,
) -> Map<String, Value> {
    let secret = client.client_secret.as_ref().map(|s| s.expose_secret());
    Map::from_iter([
        ("client_id".to_owned(), json!(client.client_id)),
        ("client_secret".to_owned(), json!(secret)),
        (
            "client_secret_expires_at".to_owned(),
            json!(client.client_secret_expires_at.unwrap_or(0)),
        ),
        (
            "client_id_issued_at".to_owned(),
            json!(client.client_id_issued_at.unwrap_or(0)),
        ),
        ("secret_issued_at".to_owned(), json!(secret_issued_at)),
        ("token_endpoint".to_owned(), json!(token_endpoint)),
        (UPDATED_AT.to_owned(), json!(crate::store::unix_now())),
    ])
}

/// Whether `old` (a file's bytes) holds the same members as `new`, the time
/// of writing aside.
fn same_content(old: &[u8], new: &Map<String, Value>) -> bool {
    let Ok(Value::Object(mut old)) = serde_json::from_slice::<Value>(old) else {
        return false;
    };
    old.remove(UPDATED_AT);
    old.len() + 1 == new.len() && old.iter().all(|(k, v)| new.get(k) == Some(v))
}

/// Writes `client`'s credentials to `<dir>/<name>.json`, unless the file
/// already holds them: a new file with a random name in the same folder,
/// written and flushed to disk, then renamed over the old one and the folder
/// flushed, so a reader sees the old file or the new one, never part of one,
/// and a file's inode and modification time change only with its content.
pub fn write(
    dir: &CredentialsDir,
    name: &str,
    client: &Client,
    secret_issued_at: u64,
    token_endpoint: Option<&str>,
) -> std::io::Result<Written> {
    let folder = open(dir)?;
    let target = file_name(name);
    let new = body(client, secret_issued_at, token_endpoint);
    if let Some(old) = folder.read_own(&target, MAX_FILE_BYTES)?
        && old.mode == dir.mode
        && same_content(&old.bytes, &new)
    {
        return Ok(Written::Unchanged(old.modified));
    }
    let mut text = Value::Object(new).to_string();
    text.push('\n');
    let temporary = folder.create_temp(&target, dir.mode, text.as_bytes())?;
    folder.replace(&temporary, &target)?;
    Ok(Written::Replaced(crate::store::unix_now()))
}

/// Removes `<dir>/<name>.json`; whether there was one.
pub fn remove(dir: &CredentialsDir, name: &str) -> std::io::Result<bool> {
    let folder = open(dir)?;
    let removed = folder.remove(&file_name(name))?;
    if removed {
        folder.sync()?;
    }
    Ok(removed)
}

/// Removes every credentials file in the folder whose name is not in
/// `keep`: a file of the gateway's own (a regular file it owns, named
/// `<name>.json` for a valid name, holding a `client_id` and a
/// `client_secret`), left by a client no longer declared. Anything else in
/// the folder is left alone. Returns the names removed.
pub fn remove_undeclared(dir: &CredentialsDir, keep: &[String]) -> std::io::Result<Vec<String>> {
    let folder = open(dir)?;
    let mut removed = Vec::new();
    for entry in folder.names()? {
        let Some(name) = entry.strip_suffix(".json") else {
            continue;
        };
        if keep.iter().any(|k| k == name) || crate::dcr::check_name("name", name).is_err() {
            continue;
        }
        let Ok(Some(file)) = folder.read_own(&entry, MAX_FILE_BYTES) else {
            continue;
        };
        let ours = matches!(
            serde_json::from_slice::<Value>(&file.bytes),
            Ok(Value::Object(m)) if m.contains_key("client_id") && m.contains_key("client_secret")
        );
        if ours && folder.remove(&entry).unwrap_or(false) {
            removed.push(name.to_owned());
        }
    }
    if !removed.is_empty() {
        folder.sync()?;
    }
    Ok(removed)
}
