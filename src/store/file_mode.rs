//! Who may read the file store. The database holds every registration access
//! token (sealed with a keyring, or in the clear with `--allow-plaintext-store`),
//! so the file is only ever the gateway user's: created 0600, tightened to 0600
//! when found looser, in a folder created 0700 when the gateway creates it. A
//! folder the operator made is theirs: a readable one gets a warning, no chmod.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::StoreError;

/// Mode of the database file: read and write for its owner only.
const STORE_FILE_MODE: u32 = 0o600;
/// Mode of a folder the gateway creates for the database.
const STORE_DIR_MODE: u32 = 0o700;
/// Every permission bit of group and other.
const GROUP_OTHER: u32 = 0o077;
/// The read bits of group and other.
const GROUP_OTHER_READ: u32 = 0o044;

fn failed(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Backend(crate::dcr::Cause::of(format!("{}: {e}", path.display()), e))
}

/// Makes `path`'s folder (if missing) and the file itself owner-only, before
/// redb opens it, so no token is ever written to a file others can read.
pub fn prepare(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        prepare_dir(dir)?;
    }
    prepare_file(path)
}

fn prepare_dir(dir: &Path) -> Result<(), StoreError> {
    match std::fs::metadata(dir) {
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & GROUP_OTHER_READ != 0 {
                tracing::warn!(
                    "token store folder {} is mode {mode:04o}: group or other can list it \
                     (the store file itself is {STORE_FILE_MODE:04o}); consider chmod 700",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::NotFound => DirBuilder::new()
            .recursive(true)
            .mode(STORE_DIR_MODE)
            .create(dir)
            .map_err(|e| failed(dir, e)),
        Err(e) => Err(failed(dir, e)),
    }
}

fn prepare_file(path: &Path) -> Result<(), StoreError> {
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(STORE_FILE_MODE)
        .open(path);
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let meta = std::fs::metadata(path).map_err(|e| failed(path, e))?;
            let mode = meta.permissions().mode() & 0o777;
            if mode & GROUP_OTHER != 0 {
                std::fs::set_permissions(path, Permissions::from_mode(STORE_FILE_MODE))
                    .map_err(|e| failed(path, e))?;
                tracing::warn!(
                    "token store file {} was mode {mode:04o}, open to group or other: set to {STORE_FILE_MODE:04o}",
                    path.display()
                );
            }
            Ok(())
        }
        Err(e) => Err(failed(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_created_folder_is_0700_a_found_file_is_tightened_an_operators_folder_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let file = root.join("made/by/gateway/t.redb");
        prepare(&file).unwrap();
        assert_eq!(mode(&root.join("made/by/gateway")), STORE_DIR_MODE);
        assert_eq!(mode(&file), STORE_FILE_MODE);

        let loose = root.join("operator");
        std::fs::create_dir(&loose).unwrap();
        std::fs::set_permissions(&loose, Permissions::from_mode(0o755)).unwrap();
        let old = loose.join("old.redb");
        std::fs::write(&old, b"").unwrap();
        std::fs::set_permissions(&old, Permissions::from_mode(0o644)).unwrap();
        prepare(&old).unwrap();
        assert_eq!(mode(&old), STORE_FILE_MODE);
        assert_eq!(mode(&loose), 0o755, "an existing folder is not changed");
    }
}
