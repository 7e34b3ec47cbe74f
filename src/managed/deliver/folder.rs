//! The credentials folder, reached only through its open descriptor.
//!
//! The folder may be writable by others (a pod's emptyDir is 0777), so every
//! name in it may have been planted: a symbolic link, a hard link to a file
//! someone else reads, a FIFO, a folder. Nothing here follows a link, opens
//! anything that could block, or writes into a file it did not just create:
//! a new file gets a random name, `O_CREAT | O_EXCL | O_NOFOLLOW` relative to
//! the folder's descriptor, and reaches its final name by `renameat`, which
//! replaces whatever was planted there rather than writing through it.

use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};
use rustix::fs::{AtFlags, CWD, Mode, OFlags};

use crate::managed::settings::CredentialsDir;

/// Ends the name of every temporary file this module creates.
const TEMP_SUFFIX: &str = ".tmp";
/// Mode of a folder the gateway creates: the owner, and the group may read
/// (the files' group-read mode needs it).
const CREATED_FOLDER_MODE: u32 = 0o750;

/// What a delivery did, and when the file last changed (Unix seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// The file already held this content, with this mode: untouched
    /// since then.
    Unchanged(u64),
    /// A new file replaced the old one, now.
    Replaced(u64),
}

/// Opens the credentials folder `dir` (creating it, with `create`).
pub fn open(dir: &CredentialsDir) -> std::io::Result<Folder> {
    match dir.create {
        true => Folder::create(&dir.dir),
        false => Folder::open(&dir.dir),
    }
}

/// An open credentials folder.
pub struct Folder {
    fd: OwnedFd,
}

/// A file of the gateway's own, as read.
pub struct Existing {
    /// Its contents.
    pub bytes: Vec<u8>,
    /// Its permission bits.
    pub mode: u32,
    /// When it last changed, in Unix seconds.
    pub modified: u64,
}

/// What the folder's permissions allow others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Safety {
    /// Why the folder is unsafe to hold credentials, if it is.
    pub warning: Option<String>,
}

impl Folder {
    /// Opens the folder at `path`, which must be a folder (never anything
    /// that could block).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = rustix::fs::openat(CWD, path, flags, Mode::empty())?;
        Ok(Self { fd })
    }

    /// Creates the folder at `path` (its parent must exist) owner-only plus
    /// group read, or opens it when it is there; either way it must be a
    /// real folder, not a link, owned by this process's user and writable by
    /// nobody else, since a folder someone planted in a shared parent is
    /// theirs to read.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        match rustix::fs::mkdirat(CWD, path, Mode::from_raw_mode(CREATED_FOLDER_MODE)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let flags = OFlags::RDONLY
            | OFlags::DIRECTORY
            | OFlags::NOFOLLOW
            | OFlags::CLOEXEC
            | OFlags::NONBLOCK;
        let fd = rustix::fs::openat(CWD, path, flags, Mode::empty()).map_err(|e| match e {
            rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => {
                std::io::Error::other("is not a folder (a link or a file is in its place)")
            }
            e => e.into(),
        })?;
        let folder = Self { fd };
        let meta = folder.metadata()?;
        if meta.uid() != rustix::process::geteuid().as_raw() {
            return Err(std::io::Error::other(
                "belongs to another user: remove it, or let the gateway create it",
            ));
        }
        // The umask may have narrowed the mode; a folder left by an earlier
        // run may have another. The set-group-ID bit is kept: files made
        // inside then belong to the volume's group.
        let now = meta.permissions().mode() & 0o7777;
        let mode = (now & 0o2000) | CREATED_FOLDER_MODE;
        // Only when it differs: a chmod changes the folder's ctime, which
        // folder watchers see.
        if now != mode {
            rustix::fs::fchmod(&folder.fd, Mode::from_raw_mode(mode))?;
        }
        Ok(folder)
    }

    fn metadata(&self) -> std::io::Result<Metadata> {
        // A second descriptor of the folder, for std's fstat.
        File::from(self.fd.try_clone()?).metadata()
    }

    /// Whether others may write in the folder: writable by every user and
    /// without the sticky bit, anyone in the pod may replace or remove the
    /// files (though never make the gateway write through a link).
    pub fn safety(&self) -> std::io::Result<Safety> {
        let mode = self.metadata()?.permissions().mode();
        let warning = (mode & 0o002 != 0 && mode & 0o1000 == 0).then(|| {
            format!(
                "the folder is writable by every user (mode {:04o}) without the sticky bit: \
                 anyone who can write there can replace or remove the credentials files; \
                 use a folder only the gateway can write (--credentials-dir-create makes one)",
                mode & 0o7777
            )
        });
        Ok(Safety { warning })
    }

    /// Writes `body` to a new file with a random name, mode `mode`, flushed
    /// to disk; returns its name. Nothing is ever written into an existing
    /// file.
    pub fn create_temp(&self, stem: &str, mode: u32, body: &[u8]) -> std::io::Result<String> {
        let name = format!(".{stem}.{}{TEMP_SUFFIX}", random_hex()?);
        let flags = OFlags::WRONLY
            | OFlags::CREATE
            | OFlags::EXCL
            | OFlags::NOFOLLOW
            | OFlags::NONBLOCK
            | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, &name, flags, Mode::from_raw_mode(mode))?;
        let written = (|| {
            // The umask may have narrowed the mode at creation.
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
            let mut file = File::from(fd);
            file.write_all(body)?;
            file.sync_all()
        })();
        match written {
            Ok(()) => Ok(name),
            Err(e) => {
                let _ = self.remove(&name);
                Err(e)
            }
        }
    }

    /// Renames `from` over `to` in the folder, then flushes the folder, so
    /// the new name survives a crash. A link or a FIFO at `to` is replaced,
    /// never followed; a folder there is an error.
    pub fn replace(&self, from: &str, to: &str) -> std::io::Result<()> {
        if let Err(e) = rustix::fs::renameat(&self.fd, from, &self.fd, to) {
            let _ = self.remove(from);
            return Err(e.into());
        }
        self.sync()
    }

    /// Flushes the folder's entries to disk.
    pub fn sync(&self) -> std::io::Result<()> {
        Ok(rustix::fs::fsync(&self.fd)?)
    }

    /// Removes the entry `name` (a link itself, never what it points to);
    /// whether there was one.
    pub fn remove(&self, name: &str) -> std::io::Result<bool> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// `name` when it is a regular file of at most `max` bytes, owned by
    /// this process's user; `None` for anything else (a link, a FIFO, a
    /// folder, someone else's file, or nothing).
    pub fn read_own(&self, name: &str, max: u64) -> std::io::Result<Option<Existing>> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        // Whatever cannot be opened (nothing there, a link, someone else's
        // file, a socket) is not the gateway's file: it is replaced.
        let Ok(fd) = rustix::fs::openat(&self.fd, name, flags, Mode::empty()) else {
            return Ok(None);
        };
        let file = File::from(fd);
        let meta = file.metadata()?;
        let own = meta.uid() == rustix::process::geteuid().as_raw();
        if !meta.file_type().is_file() || !own || meta.len() > max {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        file.take(max + 1).read_to_end(&mut bytes)?;
        Ok(Some(Existing {
            bytes,
            mode: meta.permissions().mode() & 0o7777,
            modified: u64::try_from(meta.mtime()).unwrap_or(0),
        }))
    }

    /// Names in the folder, without `.` and `..`.
    pub fn names(&self) -> std::io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in rustix::fs::Dir::read_from(&self.fd)? {
            let entry = entry?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if let Some(name) = name.to_str().filter(|n| *n != "." && *n != "..") {
                out.push(name.to_owned());
            }
        }
        Ok(out)
    }

    /// Checks the gateway can create (and remove) a file here.
    pub fn probe(&self) -> std::io::Result<()> {
        let name = self.create_temp("dcr-gateway-probe", 0o600, b"")?;
        self.remove(&name).map(drop)
    }
}

/// Whether `name` is a temporary file this module (`.<stem>.<16 hex>.tmp`)
/// or an older gateway (`.<name>.json.tmp`) may have left behind after a
/// crash; anything else in the folder is someone else's.
pub fn is_leftover_temp(name: &str) -> bool {
    let Some(inner) = name
        .strip_prefix('.')
        .and_then(|n| n.strip_suffix(TEMP_SUFFIX))
    else {
        return false;
    };
    if inner.ends_with(".json") {
        return true;
    }
    inner.rsplit_once('.').is_some_and(|(stem, random)| {
        !stem.is_empty() && random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Sixteen random hex digits: a temporary name nobody can plant in advance.
fn random_hex() -> std::io::Result<String> {
    let mut bytes = [0u8; 8];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| std::io::Error::other("no randomness for a temporary name"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::is_leftover_temp;

    #[test]
    fn only_the_gateways_own_temporary_names_are_leftovers() {
        for ours in [
            ".billing.json.0123456789abcdef.tmp",
            ".dcr-gateway-probe.0123456789abcdef.tmp",
            ".billing.json.tmp",
        ] {
            assert!(is_leftover_temp(ours), "{ours}");
        }
        for theirs in [
            ".x.tmp",
            ".editor.swp.tmp",
            "billing.json",
            ".billing.json.0123.tmp",
            "..0123456789abcdef.tmp",
        ] {
            assert!(!is_leftover_temp(theirs), "{theirs}");
        }
    }
}
