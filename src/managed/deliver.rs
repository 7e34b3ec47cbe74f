//! Credentials files, for services that read files rather than speak gRPC
//! (as Vault Agent and spiffe-helper deliver): `<dir>/<name>.json`, replaced
//! atomically on every change, owner-only or group-readable.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use secrecy::ExposeSecret;
use serde_json::json;

use super::settings::CredentialsDir;
use crate::dcr::Client;

/// Checks that the folder exists and the gateway can write files in it, by
/// writing and removing one; the error says which.
pub fn check_writable(dir: &CredentialsDir) -> std::io::Result<()> {
    if !dir.dir.is_dir() {
        return Err(std::io::Error::other("not an existing folder"));
    }
    let probe = dir
        .dir
        .join(format!(".dcr-gateway-probe-{}", std::process::id()));
    File::create(&probe)?;
    std::fs::remove_file(&probe)
}

/// Writes `client`'s credentials to `<dir>/<name>.json`: a temporary file in
/// the same folder, written, flushed to disk, then renamed over the old one
/// (and the folder flushed), so a reader sees the old file or the new one,
/// never part of one.
pub fn write(
    dir: &CredentialsDir,
    name: &str,
    client: &Client,
    secret_issued_at: u64,
    token_endpoint: Option<&str>,
) -> std::io::Result<()> {
    let body = json!({
        "client_id": client.client_id,
        "client_secret": client.client_secret.as_ref().map(|s| s.expose_secret()),
        "client_secret_expires_at": client.client_secret_expires_at.unwrap_or(0),
        "client_id_issued_at": client.client_id_issued_at.unwrap_or(0),
        "secret_issued_at": secret_issued_at,
        "token_endpoint": token_endpoint,
        "updated_at": crate::store::unix_now(),
    });
    let target = dir.dir.join(format!("{name}.json"));
    let temporary = dir.dir.join(format!(".{name}.json.tmp"));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(dir.mode)
        .open(&temporary)?;
    // The umask may have narrowed the mode at creation; an old temporary
    // file may have had another.
    file.set_permissions(std::fs::Permissions::from_mode(dir.mode))?;
    file.write_all(body.to_string().as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    std::fs::rename(&temporary, &target)?;
    sync_dir(&dir.dir)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
