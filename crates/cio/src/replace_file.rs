//! Replacing a small file that other programs read (node_exporter's metrics, the CA bundle
//! `env` hands to restic) so that a reader never sees half of it, and only when what has the
//! name is a regular file (the library's [`check_replaceable`], the rule of every file cio
//! replaces): a device, a FIFO or a symbolic link given by mistake (`/dev/null`, a link into
//! `/etc`) is refused and left as it is.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use cio_credential::{NotReplaceable, check_replaceable};

/// Why a file was not replaced.
#[derive(Debug, thiserror::Error)]
pub enum ReplaceError {
    /// Something other than a regular file has the name; nothing was written.
    #[error(transparent)]
    NotReplaceable(#[from] NotReplaceable),
    /// The operating system's reason; the previous file is as it was.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<ReplaceError> for std::io::Error {
    fn from(e: ReplaceError) -> std::io::Error {
        match e {
            ReplaceError::NotReplaceable(why) => {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, why)
            }
            ReplaceError::Io(e) => e,
        }
    }
}

/// Replaces `path` with `text` atomically: a temporary file in the same folder (a rename is
/// atomic only within one file system), written, made 0644, flushed to disk, renamed; on any
/// failure the temporary file is removed and `path` is untouched. Something other than a
/// regular file at `path` is refused before anything is written, and looked at again just
/// before the rename.
///
/// Written here rather than with the tempfile crate: its errors name the random temporary
/// file, where the administrator needs the operating system's reason alone.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), ReplaceError> {
    check_replaceable(path)?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // One process writes one temporary name at a time; a leftover of a crashed run with the
    // same process id is replaced (create_new never follows a planted symbolic link).
    let temporary = folder.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temporary)
    };
    let result = (|| -> Result<(), ReplaceError> {
        let mut file = match create() {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::remove_file(&temporary)?;
                create()?
            }
            other => other?,
        };
        // The mode given at creation is narrowed by the umask (the service's is 0077).
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        check_replaceable(path)?;
        std::fs::rename(&temporary, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}
