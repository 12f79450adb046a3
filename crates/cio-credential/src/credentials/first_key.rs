//! The key of a store's first seal, and taking it back when that first write fails.
//!
//! Rules:
//! - a first write that makes the key file (and its folders) and then fails leaves neither
//!   behind: "nothing was changed" stays true. The key file is removed only when this
//!   command made it, its name still leads to that file, and the store is not sealed with
//!   its key;
//! - another command may take up the new key file for its own first seal (two first writes
//!   at once): it holds a shared lock on the file from reading it until it is done, and the
//!   maker removes the file only under an exclusive lock (never waiting for it) and after
//!   reading the store once more under that lock. So a key that sealed anything is never
//!   removed; a command that took the lock on a file removed meanwhile reads again.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{FlockOperation, flock};

use super::CredentialStore;
use crate::crypto::{CreatedKey, Key, KeyError, MadeKey, create_key_once, key_folder};
use crate::error::Result;
use crate::files;
use crate::keyring::Keyring;
use std::os::unix::fs::OpenOptionsExt;

/// How many times a first seal reads the key file again after another process made it or
/// took it back meanwhile.
const ATTEMPTS: usize = 8;

impl CredentialStore {
    /// The keys for the first seal of a store: the key file's, read under a shared lock
    /// kept to the end of this command, or a key file made now (remembered, to be taken
    /// back if the store is not sealed with it: [`CredentialStore::take_back_made_key`]).
    pub(super) fn first_seal_keys(&self) -> Result<Vec<Key>> {
        for _ in 0..ATTEMPTS {
            if let Some(lock) = lock_shared(&self.key_file)? {
                let Some(ring) = Keyring::load(&self.key_file)? else {
                    continue;
                };
                let _ = self.first_seal_lock.set(lock);
                return Ok(ring.into_keys(None));
            }
            match create_key_once(&self.key_file)? {
                CreatedKey::Made(key, made) => {
                    let _ = self.made_key.set(made);
                    return Ok(vec![key]);
                }
                CreatedKey::Exists => continue,
            }
        }
        Err(KeyError::Io {
            path: self.key_file.clone(),
            action: "read (other processes made and removed it over and over)",
            source: std::io::Error::from(std::io::ErrorKind::WouldBlock),
        }
        .into())
    }

    /// Removes the key file this command made (and the folders made for it) unless the
    /// store is sealed with its key: see the module rules. Best effort: when the store
    /// cannot be read, or another command holds the file, the key stays.
    pub(super) fn take_back_made_key(&mut self) {
        let Some(made) = self.made_key.take() else {
            return;
        };
        let MadeKey {
            fingerprint,
            inode,
            first_folder_made,
        } = made;
        let Ok(file) = File::open(&self.key_file) else {
            return;
        };
        let same = |meta: std::io::Result<std::fs::Metadata>| meta.is_ok_and(|m| m.ino() == inode);
        if !same(file.metadata())
            || flock(&file, FlockOperation::NonBlockingLockExclusive).is_err()
            || !same(std::fs::symlink_metadata(&self.key_file))
        {
            return;
        }
        let sealed_with_it = match self.store.identity(false) {
            Ok(None) => false,
            Ok(Some(identity)) => identity.key_fingerprint.is_some_and(|fp| fp == fingerprint),
            Err(_) => true,
        };
        if sealed_with_it {
            return;
        }
        crate::wipe::remove_and_wipe(&self.key_file);
        let folder = key_folder(&self.key_file);
        files::remove_folders_made(folder, first_folder_made.as_deref());
        if let Ok(dir) = File::open(folder) {
            let _ = dir.sync_all();
        }
    }
}

/// The key file at `path` open with a shared lock, once its name still leads to the file
/// locked (the maker may have taken it back meanwhile: then `None`, as for no file).
fn lock_shared(path: &Path) -> Result<Option<File>, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        action: "locked",
        source,
    };
    // Without blocking on a FIFO; a file that is not regular is left to the key file's
    // reading to refuse, unlocked.
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let locked = file.metadata().map_err(io)?;
    if !locked.is_file() {
        return Ok(Some(file));
    }
    flock(&file, FlockOperation::LockShared).map_err(|e| io(e.into()))?;
    match std::fs::metadata(path) {
        Ok(now) if now.ino() == locked.ino() && now.dev() == locked.dev() => Ok(Some(file)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretValue;
    use crate::store::sqlite::SqliteStore;

    fn vault(dir: &Path) -> CredentialStore {
        CredentialStore::new(
            Box::new(SqliteStore::new(dir.join("store.db"))),
            dir.join("etc/cio/credential.key"),
        )
    }

    /// A key made for a first seal that did not happen is taken back with the folders made
    /// for it; one that sealed the store stays.
    #[test]
    fn a_made_key_goes_unless_it_sealed_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let unused = vault(dir.path());
        unused.first_seal_keys().unwrap();
        assert!(dir.path().join("etc/cio/credential.key").is_file());
        drop(unused);
        assert!(
            !dir.path().join("etc").exists(),
            "the key or its folders stayed"
        );
        let used = vault(dir.path());
        let name = "cio_minio_access_key".parse().unwrap();
        used.put(name, &SecretValue::new("minio-access".into()))
            .unwrap();
        drop(used);
        assert!(dir.path().join("etc/cio/credential.key").is_file());
    }

    /// Two first writes at once: the maker of the key file fails, the other took the file up
    /// and sealed the store with it. The maker must not take that key back: the store would
    /// be sealed with a key nobody has.
    #[test]
    fn a_made_key_another_write_took_up_stays() {
        let dir = tempfile::tempdir().unwrap();
        let maker = vault(dir.path());
        maker.first_seal_keys().unwrap();
        let other = vault(dir.path());
        let name = "cio_minio_access_key".parse().unwrap();
        // Taken up, not yet sealed: the other holds the file (its shared lock).
        other.first_seal_keys().unwrap();
        drop(maker);
        assert!(dir.path().join("etc/cio/credential.key").is_file());
        other
            .put(name, &SecretValue::new("minio-access".into()))
            .unwrap();
        drop(other);
        let again = vault(dir.path());
        assert_eq!(
            again.get(name).unwrap().unwrap().value.expose(),
            "minio-access"
        );
    }

    /// The maker fails after the other sealed the store with its key and was done.
    #[test]
    fn a_made_key_that_sealed_another_writes_store_stays() {
        let dir = tempfile::tempdir().unwrap();
        let maker = vault(dir.path());
        maker.first_seal_keys().unwrap();
        let other = vault(dir.path());
        let name = "cio_minio_access_key".parse().unwrap();
        other
            .put(name, &SecretValue::new("minio-access".into()))
            .unwrap();
        drop(other);
        drop(maker);
        assert!(dir.path().join("etc/cio/credential.key").is_file());
        assert!(vault(dir.path()).get(name).unwrap().is_some());
    }
}
