//! A declared client's credentials file, `<name>.json`: its client id, its
//! secret unless the service is to have tokens only, and when they were
//! issued, as RFC 7591 names them.

use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};

use super::folder::{Written, open};
use crate::dcr::Client;
use crate::managed::settings::CredentialsDir;

/// Largest credentials file read back to compare (ours are well under 1 KiB).
pub(super) const MAX_FILE_BYTES: u64 = 64 * 1024;
/// The member that changes on every write, left out of the comparison.
pub(super) const UPDATED_AT: &str = "updated_at";

/// What a credentials file holds.
pub struct CredentialsFile<'a> {
    /// The client, with its current secret.
    pub client: &'a Client,
    /// When the secret was issued.
    pub secret_issued_at: u64,
    /// The token endpoint to use the credentials at, when known.
    pub token_endpoint: Option<&'a str>,
    /// Whether the secret is in the file.
    pub with_secret: bool,
}

/// The file name of `name`'s credentials.
pub fn file_name(name: &str) -> String {
    format!("{name}.json")
}

/// The file's members; `updated_at` is the time of this write. Without
/// `with_secret`, there is no `client_secret` member at all.
fn body(
    client: &Client,
    secret_issued_at: u64,
    token_endpoint: Option<&str>,
    with_secret: bool,
) -> Map<String, Value> {
    let secret = client.client_secret.as_ref().map(|s| s.expose_secret());
    let mut body = Map::from_iter([
        ("client_id".to_owned(), json!(client.client_id)),
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
    ]);
    if with_secret {
        body.insert("client_secret".to_owned(), json!(secret));
    }
    body
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
    file: &CredentialsFile<'_>,
) -> std::io::Result<Written> {
    let folder = open(dir)?;
    let target = file_name(name);
    let new = body(
        file.client,
        file.secret_issued_at,
        file.token_endpoint,
        file.with_secret,
    );
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
