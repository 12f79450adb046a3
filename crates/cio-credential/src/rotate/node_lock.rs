//! One rotation at a time on a node, including the restic a killed rotation left running.
//!
//! The lock is an advisory `flock` on a file beside the key file. Its descriptor is made
//! inheritable, so every restic the rotation starts holds the lock too: when cio is killed
//! while restic adds or removes a key, that restic finishes its step and releases the lock
//! only when it exits. A rotation run again waits for it instead of racing it (which could
//! add a second key for the same new password, one that a later rotation would not know to
//! remove).

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The node's rotation lock, held until dropped (and by the restic children started while
/// it is held, until they exit).
#[derive(Debug)]
pub(crate) struct NodeLock {
    _file: File,
}

/// The lock file for the key file `key_file`: beside it, `<key file>.lock`.
pub(crate) fn lock_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl NodeLock {
    /// Takes the lock at `path` (created 0600 if missing), calling `on_wait` first when
    /// another process holds it, then waiting for it.
    pub fn acquire(path: &Path, on_wait: impl FnOnce()) -> std::io::Result<NodeLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                on_wait();
                file.lock()?;
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
        // Inheritable: the restic children hold the lock as long as they run.
        rustix::io::fcntl_setfd(&file, rustix::io::FdFlags::empty())?;
        Ok(NodeLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_and_the_lock_passes_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(&dir.path().join("credential.key"));
        assert!(path.ends_with("credential.key.lock"));
        let first = NodeLock::acquire(&path, || panic!("nobody holds it yet")).unwrap();
        let waited = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let second = s.spawn(|| {
                NodeLock::acquire(&path, || {
                    waited.store(true, std::sync::atomic::Ordering::SeqCst);
                })
                .unwrap()
            });
            while !waited.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::yield_now();
            }
            drop(first);
            second.join().unwrap();
        });
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    }
}
