//! Writing a sealed bundle to a file: whole or not at all, readable by its owner only.
//!
//! The bytes go to a new temporary file (mode 0600, `O_EXCL`) in the target's folder, are
//! flushed to disk, and the file is then renamed onto the target: a failure at any point
//! leaves no partial bundle behind. Without `force` the rename refuses an existing target
//! (a hard link that fails when the name exists, as `create_new` would), so a bundle never
//! silently replaces another file. With `force` only a regular file is replaced, never
//! through a symbolic link: a device, a FIFO, a link or a folder at the name is refused and
//! left as it is (the rule every file cio replaces follows: [`crate::replace`]).

use std::io::Write;
use std::path::Path;

use super::RecoveryError;
use crate::replace::check_replaceable;

/// Writes `sealed` to `path` (see the module's rules). `force` replaces an existing regular
/// file.
pub fn write_bundle_file(path: &Path, sealed: &[u8], force: bool) -> Result<(), RecoveryError> {
    let failed = |detail: String| RecoveryError::Output {
        path: path.to_path_buf(),
        detail,
    };
    let replaceable = || {
        check_replaceable(path).map_err(|why| RecoveryError::OutputNotReplaceable {
            path: path.to_path_buf(),
            why,
        })
    };
    if !force && std::fs::symlink_metadata(path).is_ok() {
        return Err(RecoveryError::OutputExists(path.to_path_buf()));
    }
    if force {
        replaceable()?;
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // tempfile creates the file with O_EXCL and mode 0600.
    let mut temp = tempfile::Builder::new()
        .prefix(".cio-bundle-")
        .tempfile_in(folder)
        .map_err(|e| failed(e.to_string()))?;
    temp.write_all(sealed)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| failed(e.to_string()))?;
    let persisted = if force {
        // Looked at again just before the rename: the bundle took a while to seal.
        replaceable()?;
        temp.persist(path).map(drop)
    } else {
        temp.persist_noclobber(path).map(drop)
    };
    match persisted {
        Ok(()) => {}
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(RecoveryError::OutputExists(path.to_path_buf()));
        }
        Err(e) => return Err(failed(e.error.to_string())),
    }
    // The rename is durable once the folder is.
    if let Ok(dir) = std::fs::File::open(folder) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_whole_and_never_over_another_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle.age");
        write_bundle_file(&path, b"sealed", false).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let err = write_bundle_file(&path, b"other", false).unwrap_err();
        assert!(matches!(err, RecoveryError::OutputExists(_)));
        assert_eq!(std::fs::read(&path).unwrap(), b"sealed");
        write_bundle_file(&path, b"other", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"other");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
        let err = write_bundle_file(&dir.path().join("no/such/dir/b"), b"x", false).unwrap_err();
        assert!(matches!(err, RecoveryError::Output { .. }));
    }

    #[test]
    fn force_replaces_only_a_regular_file_never_a_link_a_fifo_or_a_device() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("kept.txt");
        std::fs::write(&target, "kept").unwrap();
        let link = dir.path().join("link.age");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let fifo = dir.path().join("fifo.age");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        for (path, kind) in [
            (link.as_path(), "a symbolic link"),
            (fifo.as_path(), "a FIFO (named pipe)"),
            (Path::new("/dev/null"), "a device"),
        ] {
            let err = write_bundle_file(path, b"sealed", true).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "{} cannot be replaced: it is {kind}, not a regular file",
                    crate::shown_path(path)
                )
            );
        }
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "kept");
        assert!(fifo.symlink_metadata().unwrap().file_type().is_fifo());
        assert!(
            std::fs::symlink_metadata("/dev/null")
                .unwrap()
                .file_type()
                .is_char_device()
        );
        let names = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(names, 3, "no temporary file is left behind");
    }
}
