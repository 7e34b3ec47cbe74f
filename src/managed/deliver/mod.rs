//! Credentials and token files, for services that read files rather than
//! speak gRPC (as Vault Agent and spiffe-helper deliver): `<dir>/<name>.json`
//! and `<dir>/<name>[.<label>].token`, each replaced atomically when its
//! content changes and never rewritten when it does not, owner-only or
//! group-readable. Every file operation goes through
//! [`folder::Folder`], which never follows a link nor opens anything that
//! could block, and runs off the async threads within [`WRITE_TIMEOUT`].

mod cleanup;
mod credentials;
mod folder;
mod token_file;

pub use cleanup::{remove, remove_undeclared};
pub use credentials::{CredentialsFile, file_name, write};
pub use folder::{Safety, Written};
pub use token_file::write_token;

use std::time::Duration;

use super::settings::CredentialsDir;
use folder::{is_leftover_temp, open};

/// Longest a file operation may take (a hung disk or network volume): past
/// it the delivery counts as failed, and the next attempt starts afresh.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

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
