//! The key file as a small keyring: one or more keys, one per line, the first the current
//! one. A one-line file is the key file as it always was.
//!
//! Rules:
//! - the store is sealed by exactly one key at any time (its fingerprint is recorded in the
//!   store); a node opens it with whichever key of its keyring has that fingerprint, so a
//!   keyring can hold the next key before the store is re-sealed with it, and the previous
//!   key after;
//! - the current key (the first line) is the one a re-seal seals with, and the one a new
//!   store is sealed with;
//! - the file is read under the key file's rules (regular, private, at most 4 KiB, safe
//!   owner and folders) and replaced whole: written under a temporary name beside it (mode
//!   0600), flushed, renamed over it, the folder flushed. A process killed at any moment
//!   leaves the old keyring or the new one, never a mix;
//! - keys are never printed; a key is named by its fingerprint.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::crypto::{Key, KeyError, key_file_error, key_folder, parse_key, read_key_file};

/// The keys of a key file, the current one first. No `Debug` of the keys (only their
/// fingerprints), no `Clone`.
pub(crate) struct Keyring {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({:?})", self.fingerprints())
    }
}

impl Keyring {
    /// Parses a key file's text: one key line per line (blank lines ignored).
    pub fn parse(bytes: &[u8]) -> Result<Keyring, &'static str> {
        let text = std::str::from_utf8(bytes).map_err(|_| "it is not text")?;
        let keys = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| parse_key(line.as_bytes()))
            .collect::<Result<Vec<Key>, _>>()?;
        if keys.is_empty() {
            return Err("it holds no key");
        }
        Ok(Keyring { keys })
    }

    /// Reads the keyring at `path`; `None` when there is no file.
    pub fn load(path: &Path) -> Result<Option<Keyring>, KeyError> {
        let Some(bytes) = read_key_file(path)? else {
            return Ok(None);
        };
        Keyring::parse(&bytes)
            .map(Some)
            .map_err(|reason| KeyError::Corrupt {
                path: path.to_path_buf(),
                reason,
            })
    }

    /// The key new seals are made with.
    pub fn current(&self) -> &Key {
        &self.keys[0]
    }

    /// Every key, the current one first.
    pub fn keys(&self) -> Vec<&Key> {
        self.keys.iter().collect()
    }

    /// The key of `fingerprint`, if the keyring holds it.
    pub fn find(&self, fingerprint: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.fingerprint() == fingerprint)
    }

    /// Every key, the one of fingerprint `first` first (else the current one), the others
    /// in their order.
    pub fn into_keys(mut self, first: Option<&str>) -> Vec<Key> {
        if let Some(i) = first.and_then(|fp| self.keys.iter().position(|k| k.fingerprint() == fp)) {
            let key = self.keys.remove(i);
            self.keys.insert(0, key);
        }
        self.keys
    }

    /// Every key's fingerprint, the current one first.
    pub fn fingerprints(&self) -> Vec<&str> {
        self.keys.iter().map(Key::fingerprint).collect()
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The keyring with `key` added after the others (open-only).
    pub fn with_added(mut self, key: Key) -> Keyring {
        self.keys.push(key);
        self
    }

    /// The keyring with the key `fingerprint` made current (moved first); unchanged when it
    /// holds no such key.
    pub fn with_current(mut self, fingerprint: &str) -> Keyring {
        if let Some(i) = self
            .keys
            .iter()
            .position(|k| k.fingerprint() == fingerprint)
        {
            let key = self.keys.remove(i);
            self.keys.insert(0, key);
        }
        self
    }

    /// The keyring with only its current key.
    pub fn retired(mut self) -> Keyring {
        self.keys.truncate(1);
        self
    }

    /// The file's text.
    fn text(&self) -> zeroize::Zeroizing<String> {
        let mut text = zeroize::Zeroizing::new(String::new());
        for key in &self.keys {
            text.push_str(&key.line());
            text.push('\n');
        }
        text
    }

    /// Replaces the key file at `path` with this keyring (see the module rules). A symbolic
    /// link at `path` is followed: the file it names is replaced and the link stays. Temporary
    /// copies a killed earlier write left beside the file (`NAME.new-*`, which may hold a key
    /// since retired) are removed first.
    pub fn write(&self, path: &Path) -> Result<(), KeyError> {
        let resolved;
        let path = match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                resolved = fs::canonicalize(path).map_err(|source| KeyError::Io {
                    path: path.to_path_buf(),
                    action: "followed",
                    source,
                })?;
                resolved.as_path()
            }
            _ => path,
        };
        remove_leftovers(path);
        let io = |action, source| key_file_error(path, action, source);
        let dir = key_folder(path);
        let mut unique = [0u8; 8];
        getrandom::fill(&mut unique).expect(
            "the operating system's random source (getrandom) is always available on Linux",
        );
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(format!(".new-{}", hex::encode(unique)));
        let tmp = std::path::PathBuf::from(tmp_name);
        let written = (|| {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(self.text().as_bytes())?;
            file.sync_all()?;
            fs::rename(&tmp, path)?;
            fs::File::open(dir)?.sync_all()
        })();
        if let Err(e) = written {
            // Only the temporary name can be left; the keyring itself is old or new.
            let _ = fs::remove_file(&tmp);
            return Err(io("replaced", e));
        }
        Ok(())
    }
}

/// Removes `path.new-*` files (temporary keyrings of a write that was killed before its
/// rename, which may hold a key retired since); nothing else. Each is overwritten with zeros
/// once its name is gone, unless another name links to it ([`crate::wipe`]). Only `rekey`
/// writes keyrings, holding the key folder's lock, so none of these is being written. A
/// failure to remove or wipe one only leaves it.
fn remove_leftovers(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut prefix = name.to_os_string();
    prefix.push(".new-");
    let prefix = prefix.as_encoded_bytes().to_vec();
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let bytes = file_name.as_encoded_bytes();
        // Exactly what `write` names them: 16 lower-case hex digits after the prefix.
        let leftover = bytes.starts_with(&prefix)
            && bytes.len() == prefix.len() + 16
            && bytes[prefix.len()..]
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            && entry.file_type().is_ok_and(|t| t.is_file());
        if leftover {
            crate::wipe::remove_and_wipe(&entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_follows_a_link_and_removes_what_a_killed_write_left() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("credential.key");
        let link = dir.path().join("link.key");
        let a = Key::generate();
        fs::write(&real, format!("{}\n", a.line().as_str())).unwrap();
        fs::set_permissions(&real, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        // What a write killed before its rename leaves, and a file that only looks alike.
        let leftover = dir.path().join("credential.key.new-0123456789abcdef");
        let other = dir.path().join("credential.key.new-notes");
        let short = dir.path().join("credential.key.new-0123");
        let upper = dir.path().join("credential.key.new-0123456789ABCDEF");
        fs::write(&short, "kept\n").unwrap();
        fs::write(&upper, "kept\n").unwrap();
        fs::write(&leftover, "a retired key\n").unwrap();
        fs::write(&other, "kept\n").unwrap();
        // Its bytes, as the blocks it frees would hold them: read through a handle kept open.
        let kept_open = fs::File::open(&leftover).unwrap();

        let ring = Keyring::load(&link)
            .unwrap()
            .unwrap()
            .with_added(Key::generate());
        ring.write(&link).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(Keyring::load(&real).unwrap().unwrap().len(), 2);
        assert!(!leftover.exists());
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut &kept_open, &mut bytes).unwrap();
        assert_eq!(
            bytes, [0u8; 14],
            "the leftover was zeroed before it was let go"
        );
        assert!(other.exists() && short.exists() && upper.exists());
    }

    #[test]
    fn keyrings_parse_reorder_retire_and_replace_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credential.key");
        let (a, b) = (Key::generate(), Key::generate());
        let (fa, fb) = (a.fingerprint().to_string(), b.fingerprint().to_string());
        // A one-line key file is a keyring of one.
        fs::write(&path, format!("{}\n", a.line().as_str())).unwrap();
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let ring = Keyring::load(&path).unwrap().unwrap();
        assert_eq!(ring.fingerprints(), [fa.as_str()]);
        let ring = ring.with_added(b);
        ring.write(&path).unwrap();
        let ring = Keyring::load(&path).unwrap().unwrap();
        assert_eq!(ring.fingerprints(), [fa.as_str(), fb.as_str()]);
        assert_eq!(ring.current().fingerprint(), fa);
        let ring = ring.with_current(&fb);
        assert_eq!(ring.fingerprints(), [fb.as_str(), fa.as_str()]);
        assert!(ring.find(&fa).is_some());
        let ring = ring.retired();
        ring.write(&path).unwrap();
        let ring = Keyring::load(&path).unwrap().unwrap();
        assert_eq!(ring.fingerprints(), [fb.as_str()]);
        // Replaced whole, private, nothing left beside it; no key in Debug.
        use std::os::unix::fs::MetadataExt;
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(!format!("{ring:?}").contains("cio-credential-key"));
        assert!(Keyring::parse(b"\n\n").is_err());
        assert!(Keyring::parse(b"cio-credential-key-v1 AAAA\n").is_err());
    }
}
