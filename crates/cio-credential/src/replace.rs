//! Replacing a file cio writes whole (a recovery bundle, the metrics of `validate
//! --prometheus`, the CA bundle of `env`): a new file is renamed onto the name, and a rename
//! replaces whatever has that name.
//!
//! Rules:
//! - only a regular file is replaced: a symbolic link (even to a regular file: the rename
//!   would put a file in place of the link, never write through it), a device (`/dev/null`,
//!   `/dev/full`), a FIFO, a socket or a folder at the name is refused and left as it is;
//! - the name itself is looked at, never what a link points to;
//! - a name that cannot be looked at (a folder this user may not search) is left to the write
//!   itself, which then fails with the operating system's reason.
//!
//! One function for every file cio replaces, so the rule is the same everywhere.

use std::path::Path;

/// Why a name is not replaced: what it is, in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("it is {0}, not a regular file")]
pub struct NotReplaceable(pub &'static str);

/// Whether a new file may be renamed onto `path`: nothing is there, or a regular file.
pub fn check_replaceable(path: &Path) -> Result<(), NotReplaceable> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if meta.file_type().is_symlink() {
        return Err(NotReplaceable("a symbolic link"));
    }
    match crate::files::kind_of(&meta) {
        None => Ok(()),
        Some(kind) => Err(NotReplaceable(kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_regular_file_or_nothing_is_replaceable() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        assert_eq!(check_replaceable(&file), Ok(()));
        std::fs::write(&file, "x").unwrap();
        assert_eq!(check_replaceable(&file), Ok(()));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(
            check_replaceable(&link),
            Err(NotReplaceable("a symbolic link"))
        );
        assert_eq!(
            check_replaceable(dir.path()),
            Err(NotReplaceable("a folder"))
        );
        assert_eq!(
            check_replaceable(Path::new("/dev/null")),
            Err(NotReplaceable("a device"))
        );
        assert_eq!(
            check_replaceable(&link).unwrap_err().to_string(),
            "it is a symbolic link, not a regular file"
        );
    }
}
