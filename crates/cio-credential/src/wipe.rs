//! Wiping a file that was just replaced, so that what it held (a purged value's ciphertext)
//! does not stay in the blocks the file system frees.
//!
//! Rules:
//! - only a file no name links to any more is wiped (`nlink` 0 after the rename over it): a
//!   hard link elsewhere (`ln credentials.db backup.db`) is someone's copy, kept whole;
//! - the whole length is overwritten with zeros through the open handle, then flushed;
//! - on a copy-on-write file system (btrfs, ZFS) the zeros may land on new blocks and the old
//!   ones be freed as they were: the callers' messages say "may".

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Overwrites `file` (the open handle of a file just renamed over) with zeros and flushes it,
/// if no name links to it any more. Returns whether it did.
pub(crate) fn wipe_unlinked(file: &File) -> io::Result<bool> {
    let meta = file.metadata()?;
    if meta.nlink() != 0 {
        return Ok(false);
    }
    let zeros = [0u8; 4096];
    let mut at = 0u64;
    while at < meta.len() {
        let n = usize::try_from((meta.len() - at).min(4096)).unwrap_or(4096);
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    file.sync_all()?;
    Ok(true)
}

/// Removes the leftover copy named `path` (it may hold a secret) and then zeroes it as
/// [`wipe_unlinked`] does. Only a regular file is a leftover copy: anything else named like
/// one (a symbolic link, a FIFO, a folder) is left alone, never opened. Best effort: what
/// cannot be removed or zeroed is left.
pub(crate) fn remove_and_wipe(path: &Path) {
    let Ok(named) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !named.file_type().is_file() {
        return;
    }
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let Ok(file) = OpenOptions::new()
        .write(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
    else {
        return;
    };
    // Still the file looked at (not replaced meanwhile by something else).
    let same = file
        .metadata()
        .is_ok_and(|m| m.dev() == named.dev() && m.ino() == named.ino());
    if same && std::fs::remove_file(path).is_ok() {
        let _ = wipe_unlinked(&file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_file_renamed_over_is_zeroed_and_a_hard_linked_one_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let replace = |with: &str| {
            let tmp = dir.path().join("key.new");
            std::fs::write(&tmp, with).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        };
        std::fs::write(&path, "old secret").unwrap();
        let old = File::options().read(true).write(true).open(&path).unwrap();
        replace("new");
        assert!(wipe_unlinked(&old).unwrap());
        let mut bytes = Vec::new();
        (&old).read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, [0u8; 10]);
        assert_eq!(std::fs::read(&path).unwrap(), b"new");

        let backup = dir.path().join("backup");
        std::fs::hard_link(&path, &backup).unwrap();
        let linked = File::options().read(true).write(true).open(&path).unwrap();
        replace("newer");
        assert!(!wipe_unlinked(&linked).unwrap());
        assert_eq!(std::fs::read(&backup).unwrap(), b"new");
    }
}
