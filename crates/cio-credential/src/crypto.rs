//! The key file and the AEAD that seals every value at rest.
//!
//! Rules (DESIGN.md, "Encryption at rest"):
//! - a value is sealed with XChaCha20-Poly1305 under the 256-bit key of the key file, with a
//!   fresh random 24-byte nonce; the associated data binds the store id, the credential's name
//!   and its version, so a ciphertext moved elsewhere does not open;
//! - a key is known by its fingerprint (a hash of the key, never the key), which the store
//!   records, so that a wrong key file gets a precise error instead of garbage;
//! - a key file that group or others may read is refused, as ssh refuses such keys;
//! - a key file is created with `create_new`, mode 0600, in a folder created 0700, and only
//!   appears under its name once it is complete (written to a temporary name, then linked), so
//!   a crash never leaves a half-written key behind.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretBox};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::secret::SecretValue;

/// The first word of a key file; the rest of the line is the key in base64.
const KEY_FILE_TAG: &str = "cio-credential-key-v1";
const NONCE_LEN: usize = 24;
const AD_DOMAIN: &[u8] = b"cio-credential/value/v1\0";

/// What can go wrong with a key file. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "key file {path} does not exist, but the store holds values sealed by key {store_fingerprint}"
    )]
    Missing {
        path: PathBuf,
        store_fingerprint: String,
    },
    #[error(
        "key file {path} may be read by group or others (mode {mode:04o}); a key must be private"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("key file {path} is not a cio key file: {reason}")]
    Corrupt { path: PathBuf, reason: &'static str },
    #[error(
        "key file {path} (fingerprint {key_fingerprint}) is not the key of this store (which was sealed with key {store_fingerprint})"
    )]
    Mismatch {
        path: PathBuf,
        key_fingerprint: String,
        store_fingerprint: String,
    },
    #[error("key file {path} cannot be {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
}

impl KeyError {
    /// What the administrator should do next.
    pub fn hint(&self) -> String {
        match self {
            KeyError::Missing { path, .. } => format!(
                "copy the key that sealed this store to {} (mode 0600), or point --key-file / CIO_KEY_FILE at it; a new key cannot open the old values",
                path.display()
            ),
            KeyError::Permissions { path, .. } => {
                format!("run: chmod 600 {}", path.display())
            }
            KeyError::Corrupt { path, .. } => format!(
                "restore {} from your backup of the key; do not overwrite it with a new key while the store holds values",
                path.display()
            ),
            KeyError::Mismatch { path, .. } => format!(
                "copy the cluster's key file (the one whose fingerprint the store names) to {}, or point --key-file / CIO_KEY_FILE at it",
                path.display()
            ),
            KeyError::Io { path, .. } => format!(
                "check that {} and its folder exist and are readable by this user (cio runs as root on cluster nodes)",
                path.display()
            ),
        }
    }
}

/// The value does not open under this key, store id, name and version: the store was
/// tampered with, damaged, or a record was moved.
#[derive(Debug, thiserror::Error)]
#[error(
    "the stored value of {name} (version {version}) does not decrypt: the store is damaged or was altered"
)]
pub struct DoesNotOpen {
    pub name: String,
    pub version: u64,
}

/// A 256-bit key with its fingerprint. No `Debug` of the bytes, no `Clone`.
pub struct Key {
    bytes: SecretBox<[u8; 32]>,
    fingerprint: String,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.fingerprint)
    }
}

/// Where the parts of one sealed value belong: the associated data.
pub struct Binding<'a> {
    pub store_id: &'a str,
    pub name: &'a str,
    pub version: u64,
}

impl Binding<'_> {
    fn associated_data(&self) -> Vec<u8> {
        let mut ad =
            Vec::with_capacity(AD_DOMAIN.len() + self.store_id.len() + self.name.len() + 10);
        ad.extend_from_slice(AD_DOMAIN);
        ad.extend_from_slice(self.store_id.as_bytes());
        ad.push(0);
        ad.extend_from_slice(self.name.as_bytes());
        ad.push(0);
        ad.extend_from_slice(&self.version.to_be_bytes());
        ad
    }
}

impl Key {
    fn from_bytes(bytes: [u8; 32]) -> Key {
        let mut hasher = Sha256::new();
        hasher.update(b"cio-credential/key-fingerprint/v1\0");
        hasher.update(bytes);
        let digest = hasher.finalize();
        Key {
            fingerprint: hex::encode(&digest[..8]),
            bytes: SecretBox::new(Box::new(bytes)),
        }
    }

    /// A short public name of the key: 16 hex digits of a hash of it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.bytes.expose_secret().into())
    }

    /// A 256-bit key for another use than sealing values, derived for `domain` (HMAC-SHA256
    /// of the domain under this key), so that one key never serves two algorithms.
    pub fn derive(&self, domain: &[u8]) -> Zeroizing<[u8; 32]> {
        use hmac::{KeyInit, Mac};
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(self.bytes.expose_secret())
            .expect("HMAC takes a key of any length");
        mac.update(domain);
        Zeroizing::new(mac.finalize().into_bytes().into())
    }

    /// Seals `value` for `binding`: nonce || ciphertext+tag.
    pub fn seal(&self, binding: &Binding<'_>, value: &SecretValue) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        let ad = binding.associated_data();
        let sealed = self
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: value.expose().as_bytes(),
                    aad: &ad,
                },
            )
            .expect("XChaCha20-Poly1305 encryption only fails for messages over 256 GiB; values are at most 4 KiB");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a value sealed by [`Key::seal`] for the same binding.
    pub fn open(&self, binding: &Binding<'_>, sealed: &[u8]) -> Result<SecretValue, DoesNotOpen> {
        let fail = || DoesNotOpen {
            name: binding.name.to_string(),
            version: binding.version,
        };
        if sealed.len() < NONCE_LEN {
            return Err(fail());
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| fail())?;
        let ad = binding.associated_data();
        let plain = Zeroizing::new(
            self.cipher()
                .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad: &ad })
                .map_err(|_| fail())?,
        );
        let text = std::str::from_utf8(&plain).map_err(|_| fail())?;
        Ok(SecretValue::new(text.to_string()))
    }
}

fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf)
        .expect("the operating system's random source (getrandom) is always available on Linux");
}

/// Reads a key file, refusing one that group or others may read.
pub fn load_key(path: &Path) -> Result<Option<Key>, KeyError> {
    let io = |action, source| KeyError::Io {
        path: path.to_path_buf(),
        action,
        source,
    };
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("read", e)),
    };
    if meta.is_dir() {
        return Err(KeyError::Corrupt {
            path: path.to_path_buf(),
            reason: "it is a folder",
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let corrupt = |reason| KeyError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = Zeroizing::new(fs::read(path).map_err(|e| io("read", e))?);
    let text = std::str::from_utf8(&bytes).map_err(|_| corrupt("it is not text"))?;
    let encoded = text
        .trim_end()
        .strip_prefix(KEY_FILE_TAG)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or_else(|| corrupt("it does not start with 'cio-credential-key-v1 '"))?;
    let decoded = Zeroizing::new(
        STANDARD
            .decode(encoded)
            .map_err(|_| corrupt("the key is not valid base64"))?,
    );
    let bytes: [u8; 32] = decoded
        .as_slice()
        .try_into()
        .map_err(|_| corrupt("the key is not 32 bytes long"))?;
    Ok(Some(Key::from_bytes(bytes)))
}

/// Creates a new random key file at `path`, or loads the one another process created first.
pub fn create_key(path: &Path) -> Result<Key, KeyError> {
    let io = |action, source| KeyError::Io {
        path: path.to_path_buf(),
        action,
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io("created (its folder cannot be made)", e))?;
    }
    let mut bytes = Zeroizing::new([0u8; 32]);
    fill_random(bytes.as_mut_slice());
    let line = Zeroizing::new(format!(
        "{KEY_FILE_TAG} {}\n",
        STANDARD.encode(bytes.as_slice())
    ));

    // A name of its own per call: two threads of one process (two vaults) may create the
    // key at once, and must not remove each other's temporary file.
    let mut unique = [0u8; 8];
    fill_random(&mut unique);
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        hex::encode(unique)
    ));
    let tmp = PathBuf::from(tmp_name);
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(line.as_bytes())?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io("created", e));
    }
    // A hard link never replaces an existing file: of two processes creating the key at
    // once, exactly one wins and the other uses the winner's key.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| io("created (its folder cannot be synced)", e))?;
            }
            Ok(Key::from_bytes(*bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_key(path)?
            .ok_or_else(|| io("read", std::io::Error::from(std::io::ErrorKind::NotFound))),
        Err(e) => Err(io("created", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn binding(version: u64) -> Binding<'static> {
        Binding {
            store_id: "store-a",
            name: "cio_aws_secret_key",
            version,
        }
    }

    #[test]
    fn seal_open_round_trip_and_binding() {
        let dir = tempfile::tempdir().unwrap();
        let key = create_key(&dir.path().join("k")).unwrap();
        let value = SecretValue::new("0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8vZd".into());
        let sealed = key.seal(&binding(1), &value);
        assert!(!sealed.windows(8).any(|w| w == b"0aC91tg8"));
        assert_eq!(
            key.open(&binding(1), &sealed).unwrap().expose(),
            value.expose()
        );
        assert!(key.open(&binding(2), &sealed).is_err(), "other version");
        let other_name = Binding {
            name: "cio_aws_access_key",
            ..binding(1)
        };
        assert!(key.open(&other_name, &sealed).is_err(), "other name");
        let other_store = Binding {
            store_id: "store-b",
            ..binding(1)
        };
        assert!(key.open(&other_store, &sealed).is_err(), "other store");
        let other_key = create_key(&dir.path().join("k2")).unwrap();
        assert!(other_key.open(&binding(1), &sealed).is_err(), "other key");
        assert_ne!(key.fingerprint(), other_key.fingerprint());
    }

    #[test]
    fn key_files_are_private_and_reload_to_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/credential.key");
        let key = create_key(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let again = load_key(&path).unwrap().unwrap();
        assert_eq!(again.fingerprint(), key.fingerprint());
        // Creating again keeps the existing key.
        assert_eq!(create_key(&path).unwrap().fingerprint(), key.fingerprint());
        assert!(format!("{key:?}").starts_with("Key("));
    }

    #[test]
    fn threads_creating_one_key_at_once_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credential.key");
        let fingerprints: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| create_key(&path).unwrap().fingerprint().to_string()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(fingerprints.iter().all(|f| *f == fingerprints[0]));
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[test]
    fn readable_or_corrupt_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        create_key(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            load_key(&path),
            Err(KeyError::Permissions { mode: 0o640, .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, "nonsense\n").unwrap();
        assert!(matches!(load_key(&path), Err(KeyError::Corrupt { .. })));
        assert!(load_key(&dir.path().join("absent")).unwrap().is_none());
    }
}
