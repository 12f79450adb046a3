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
use std::path::{Path, PathBuf};

use super::RecoveryError;
use crate::replace::check_replaceable;

/// Writes `sealed` to `path` (see the module's rules). `force` replaces an existing regular
/// file, but never one of `own`, cio's own files with what each is
/// ([`crate::Settings::own_files`]): not by that name, nor by another name of the same
/// file (a hard link, a symbolic link to it).
pub fn write_bundle_file(
    path: &Path,
    sealed: &[u8],
    force: bool,
    own: &[(PathBuf, &'static str)],
) -> Result<(), RecoveryError> {
    let failed = |e: &std::io::Error| RecoveryError::Output {
        path: path.to_path_buf(),
        detail: io_detail(e),
    };
    check_bundle_output(path, force, own)?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // tempfile creates the file with O_EXCL and mode 0600.
    let mut temp = tempfile::Builder::new()
        .prefix(".cio-bundle-")
        .tempfile_in(folder)
        .map_err(|e| failed(&e))?;
    temp.write_all(sealed)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| failed(&e))?;
    let persisted = if force {
        // Looked at again just before the rename: the file may have changed meanwhile.
        check_bundle_output(path, force, own)?;
        temp.persist(path).map(drop)
    } else {
        temp.persist_noclobber(path).map(drop)
    };
    match persisted {
        Ok(()) => {}
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(RecoveryError::OutputExists(path.to_path_buf()));
        }
        Err(e) => return Err(failed(&e.error)),
    }
    // The rename is durable once the folder is.
    if let Ok(dir) = std::fs::File::open(folder) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Whether [`write_bundle_file`] may write `path` as things stand: for a command to ask
/// before its slow work (a passphrase typed twice, the sealing), as the write asks again.
pub fn check_bundle_output(
    path: &Path,
    force: bool,
    own: &[(PathBuf, &'static str)],
) -> Result<(), RecoveryError> {
    if let Some(what) = own_file(path, own) {
        return Err(RecoveryError::OutputIsOwnFile {
            path: path.to_path_buf(),
            what,
        });
    }
    if !force && std::fs::symlink_metadata(path).is_ok() {
        return Err(RecoveryError::OutputExists(path.to_path_buf()));
    }
    if force {
        check_replaceable(path).map_err(|why| RecoveryError::OutputNotReplaceable {
            path: path.to_path_buf(),
            why,
        })?;
    }
    Ok(())
}

/// What `path` is among `own` when it names one of them (the same file: device and inode),
/// as far as can be told; `None` when it names none, or nothing yet.
fn own_file(path: &Path, own: &[(PathBuf, &'static str)]) -> Option<&'static str> {
    use std::os::unix::fs::MetadataExt;
    let target = std::fs::metadata(path).ok()?;
    own.iter()
        .find(|(file, _)| {
            std::fs::metadata(file)
                .is_ok_and(|m| (m.dev(), m.ino()) == (target.dev(), target.ino()))
        })
        .map(|(_, what)| *what)
}

/// Why a write failed, in words, without the paths an error of the temporary file names
/// (the user never named that file).
fn io_detail(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::NotFound => "its folder does not exist".into(),
        ErrorKind::PermissionDenied => "this user may not write in its folder".into(),
        ErrorKind::StorageFull => "no space left on the device".into(),
        ErrorKind::ReadOnlyFilesystem => "its file system is read-only".into(),
        ErrorKind::NotADirectory => "a part of its path is not a folder".into(),
        kind => std::io::Error::from(kind).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_whole_and_never_over_another_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle.age");
        write_bundle_file(&path, b"sealed", false, &[]).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let err = write_bundle_file(&path, b"other", false, &[]).unwrap_err();
        assert!(matches!(err, RecoveryError::OutputExists(_)));
        assert_eq!(std::fs::read(&path).unwrap(), b"sealed");
        write_bundle_file(&path, b"other", true, &[]).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"other");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
        let err =
            write_bundle_file(&dir.path().join("no/such/dir/b"), b"x", false, &[]).unwrap_err();
        assert!(matches!(err, RecoveryError::Output { .. }));
        assert!(
            err.to_string().ends_with(": its folder does not exist"),
            "no temporary file's name: {err}"
        );
    }

    /// cio's own files are never replaced, by their names or by another name of the same
    /// file, `--force` or not.
    #[test]
    fn never_over_cios_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("credential.key");
        std::fs::write(&key, "the key").unwrap();
        let linked = dir.path().join("hard-link");
        std::fs::hard_link(&key, &linked).unwrap();
        let own = [
            (dir.path().join("cio.toml"), "configuration file"),
            (key.clone(), "key file"),
        ];
        for path in [&key, &linked] {
            for force in [false, true] {
                let err = write_bundle_file(path, b"sealed", force, &own).unwrap_err();
                assert_eq!(
                    err.to_string(),
                    format!(
                        "{} is cio's key file: a bundle never replaces it",
                        crate::shown_path(path)
                    )
                );
            }
        }
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "the key");
        // An own file that does not exist yet is no file to protect.
        write_bundle_file(&dir.path().join("cio.toml"), b"sealed", false, &own).unwrap();
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
            let err = write_bundle_file(path, b"sealed", true, &[]).unwrap_err();
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
