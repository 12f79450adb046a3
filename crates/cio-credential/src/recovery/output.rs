//! Writing a sealed bundle to a file: whole or not at all, readable by its owner only.
//!
//! The bytes go to a new temporary file (mode 0600, `O_EXCL`) in the target's folder, are
//! flushed to disk, and the file is then renamed onto the target: a failure at any point
//! leaves no partial bundle behind. Without `force` the rename refuses an existing target
//! (a hard link that fails when the name exists, as `create_new` would), so a bundle never
//! silently replaces another file.

use std::io::Write;
use std::path::Path;

use super::RecoveryError;

/// Writes `sealed` to `path` (see the module's rules). `force` replaces an existing file.
pub fn write_bundle_file(path: &Path, sealed: &[u8], force: bool) -> Result<(), RecoveryError> {
    let failed = |detail: String| RecoveryError::Output {
        path: path.to_path_buf(),
        detail,
    };
    if !force && std::fs::symlink_metadata(path).is_ok() {
        return Err(RecoveryError::OutputExists(path.to_path_buf()));
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
}
