//! The key file and the AEAD that seals every value at rest.
//!
//! Rules (DESIGN.md, "Encryption at rest"):
//! - a value is sealed with XChaCha20-Poly1305 under the 256-bit key of the key file, with a
//!   fresh random 24-byte nonce; the associated data binds the store id, the credential's name
//!   and its version, so a ciphertext moved elsewhere does not open;
//! - a key is known by its fingerprint (a hash of the key, never the key), which the store
//!   records, so that a wrong key file gets a precise error instead of garbage;
//! - a key file is read only when it is a regular file of at most 4 KiB (a FIFO would hang,
//!   `/dev/zero` would never end), and refused when group or others may read it, when it
//!   belongs to another user than root or this one, or when a folder on its way may be
//!   written by others: OpenSSH's rules for a private key;
//! - a key file is created mode 0600, in a folder created 0700, and only appears under its
//!   name once it is complete and synced (an unnamed file, then linked), so a process killed
//!   at any moment leaves no key, or the complete key under its own name, never a key under
//!   a temporary name.

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

use crate::files::{self, ReadError, STICKY, Unsafe};
use crate::integrity::MacKey;
use crate::secret::SecretValue;

/// The first word of a key file; the rest of the line is the key in base64.
const KEY_FILE_TAG: &str = "cio-credential-key-v1";
/// The first word of a key file whose creation was interrupted (see
/// [`link_via_temporary_name`]): never a usable key.
const INTERRUPTED_TAG: &str = "xio-credential-key-v1";
const NONCE_LEN: usize = 24;
const AD_DOMAIN: &[u8] = b"cio-credential/value/v1\0";

/// What can go wrong with a key file. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "key file {path} does not exist, but the store holds values sealed by key {store_fingerprint}", path = crate::shown_path(.path)
    )]
    Missing {
        path: PathBuf,
        store_fingerprint: String,
    },
    #[error(
        "key file {path} may be read or changed by group or others (mode {mode:04o}); a key must be private", path = crate::shown_path(.path)
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("key file {path} is not safe to use: {reason}", path = crate::shown_path(.path))]
    Unsafe { path: PathBuf, reason: Unsafe },
    #[error("key file {path} is not a cio key file: {reason}", path = crate::shown_path(.path))]
    Corrupt { path: PathBuf, reason: &'static str },
    /// The path names what can never be a key file: a folder, a FIFO, socket or device, or
    /// a file of a kernel file system (/proc, /sys). `what`: which, in words.
    #[error("key file {path} is not a cio key file: it is {what}", path = crate::shown_path(.path))]
    NotAFile { path: PathBuf, what: String },
    #[error(
        "key file {path} (fingerprint {key_fingerprint}) is not the key of this store (which was sealed with key {store_fingerprint})", path = crate::shown_path(.path)
    )]
    Mismatch {
        path: PathBuf,
        key_fingerprint: String,
        store_fingerprint: String,
    },
    #[error(
        "key file {path} (keys {key_fingerprints}) does not hold key {store_fingerprint}, which the store was re-sealed with", path = crate::shown_path(.path)
    )]
    Rekeyed {
        path: PathBuf,
        key_fingerprints: String,
        store_fingerprint: String,
        /// Where the key lives, as the store says (unverified: the manifest that says it
        /// cannot be checked without the key): `host:path` of the key file of the node
        /// that re-sealed.
        key_home: String,
    },
    #[error("no space left on the device for key file {path}; nothing was changed", path = crate::shown_path(.path))]
    NoSpace { path: PathBuf },
    /// A write past this process's file-size limit (`RLIMIT_FSIZE`, `ulimit -f`): EFBIG.
    #[error(
        "key file {path} cannot be written past this process's file-size limit (ulimit -f); nothing was changed", path = crate::shown_path(.path)
    )]
    FileSizeLimit { path: PathBuf },
    #[error("key file {path} cannot be {action}: {source}", path = crate::shown_path(.path))]
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
                crate::shown_path(path)
            ),
            KeyError::Permissions { path, .. } => {
                format!("run: chmod 600 {}", crate::shown_path(path))
            }
            KeyError::Unsafe { path, reason } => match reason {
                Unsafe::Owner { .. } => format!(
                    "make {} belong to root or to this user (chown), after checking that it is the key you expect",
                    crate::shown_path(path)
                ),
                // A folder every user shares (/tmp, /dev/shm: sticky) must keep its mode.
                Unsafe::Folder { folder, mode, .. } if mode & STICKY != 0 => format!(
                    "keep the key in a folder only root or this user may write, not in {}, which every user shares (leave that folder's mode as it is: others need it)",
                    crate::shown_path(folder)
                ),
                Unsafe::Folder { folder, .. } => format!(
                    "run: chmod go-w {} (or move the key to a private folder)",
                    crate::shown_path(folder)
                ),
                Unsafe::FolderOwner { folder, .. } => format!(
                    "keep the key in a folder that belongs to root or to this user, not in {}",
                    crate::shown_path(folder)
                ),
                Unsafe::Writable { .. } | Unsafe::Readable { .. } => {
                    format!("run: chmod 600 {}", crate::shown_path(path))
                }
            },
            KeyError::NotAFile { .. } => "point --key-file / CIO_KEY_FILE at the store's key file: a regular file on a disk (mode 0600), or a path where no file is yet for a new store's key".into(),
            KeyError::Corrupt { path, .. } => format!(
                "restore {} from your backup of the key; do not overwrite it with a new key while the store holds values",
                crate::shown_path(path)
            ),
            KeyError::Mismatch { path, .. } => format!(
                "copy the cluster's key file (the one whose fingerprint the store names) to {}, or point --key-file / CIO_KEY_FILE at it",
                crate::shown_path(path)
            ),
            KeyError::Rekeyed {
                path,
                store_fingerprint,
                key_home,
                ..
            } => format!(
                "the store says a rekey on {key_home} re-sealed it with key {store_fingerprint}, which this node cannot check without that key (whoever can write the store can write that too); if your cluster re-keyed there, copy that keyring to {} (mode 0600) on this node, and check that it holds key {store_fingerprint}; if nobody did, the store was replaced: put back your copy of it",
                crate::shown_path(path)
            ),
            KeyError::NoSpace { path } => format!(
                "free some space on the device that holds {} (df -h shows it), then run the command again",
                crate::shown_path(path)
            ),
            KeyError::FileSizeLimit { .. } => crate::store::FILE_SIZE_LIMIT_HINT.to_string(),
            KeyError::Io { path, .. } => format!(
                "check that {} and its folder exist and are readable by this user (cio runs as root on cluster nodes)",
                crate::shown_path(path)
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

/// The length of a key fingerprint: 8 bytes in hex.
const FINGERPRINT_LEN: usize = 16;

/// Whether `text` is a key fingerprint as [`Key::fingerprint`] writes it (16 lowercase hex
/// digits): a store's record of its key that is not is damaged, and is never shown.
pub(crate) fn is_fingerprint(text: &str) -> bool {
    text.len() == FINGERPRINT_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
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

    /// A new random key.
    pub(crate) fn generate() -> Key {
        let mut bytes = Zeroizing::new([0u8; 32]);
        fill_random(bytes.as_mut_slice());
        Key::from_bytes(*bytes)
    }

    /// The key as one line of a key file (`cio-credential-key-v1 <base64>`, no newline).
    pub(crate) fn line(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{KEY_FILE_TAG} {}",
            STANDARD.encode(self.bytes.expose_secret())
        ))
    }

    /// The key that authenticates records and manifests ([`crate::integrity`]), derived
    /// from this one.
    pub(crate) fn mac_key(&self) -> MacKey {
        MacKey::derive(self.bytes.expose_secret())
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

/// The longest key file read: a key line is under 80 bytes; anything much longer is not one.
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Reads a key file: a regular file (not a FIFO or device) of at most 4 KiB, owned by root or
/// this user, private (mode & 077 == 0), in folders nobody else may write, as OpenSSH
/// requires of a private key.
pub fn load_key(path: &Path) -> Result<Option<Key>, KeyError> {
    let Some(bytes) = read_key_file(path)? else {
        return Ok(None);
    };
    parse_key(&bytes)
        .map_err(|reason| KeyError::Corrupt {
            path: path.to_path_buf(),
            reason,
        })
        .map(Some)
}

/// The bytes of the key file at `path`, read under [`load_key`]'s rules; `None` when there
/// is no file.
pub(crate) fn read_key_file(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, KeyError> {
    let corrupt = |reason| KeyError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let not_a_file = |what: String| KeyError::NotAFile {
        path: path.to_path_buf(),
        what,
    };
    if files::names_a_folder(path) {
        return Err(not_a_file(files::FOLDER_NAME.into()));
    }
    // A kernel file (/proc, /sys) reads as the kernel's text, or not at all.
    if let Some(system) = files::kernel_file_system(path) {
        return Err(not_a_file(format!(
            "a file of the kernel's {system} file system, not one on a disk"
        )));
    }
    let (meta, bytes) = match files::read_regular(path, MAX_KEY_FILE_BYTES) {
        Ok(Some(read)) => read,
        Ok(None) => return Ok(None),
        Err(ReadError::NotRegular(kind)) => return Err(not_a_file(kind.to_string())),
        Err(ReadError::TooLarge { .. }) => {
            return Err(corrupt("it is far longer than a key (over 4 KiB)"));
        }
        Err(ReadError::Io(e)) => {
            return Err(KeyError::Io {
                path: path.to_path_buf(),
                action: "read",
                source: e,
            });
        }
    };
    files::check_private_path(path, &meta).map_err(|reason| KeyError::Unsafe {
        path: path.to_path_buf(),
        reason,
    })?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(Some(bytes))
}

/// Parses the text of a key file: `cio-credential-key-v1 <base64 of 32 bytes>`, one line.
/// The error says what is wrong, without any of the text.
pub fn parse_key(bytes: &[u8]) -> Result<Key, &'static str> {
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not text")?;
    if text.starts_with(INTERRUPTED_TAG) {
        return Err(
            "its creation was interrupted (it never sealed anything): delete it and run the command again",
        );
    }
    let encoded = text
        .trim_end()
        .strip_prefix(KEY_FILE_TAG)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or("it does not start with 'cio-credential-key-v1 '")?;
    let decoded = Zeroizing::new(
        STANDARD
            .decode(encoded)
            .map_err(|_| "the key is not valid base64")?,
    );
    let bytes: [u8; 32] = decoded
        .as_slice()
        .try_into()
        .map_err(|_| "the key is not 32 bytes long")?;
    Ok(Key::from_bytes(bytes))
}

/// The error of an I/O `action` on the key file at `path`: a full disk said as such.
pub(crate) fn key_file_error(
    path: &Path,
    action: &'static str,
    source: std::io::Error,
) -> KeyError {
    if source.kind() == std::io::ErrorKind::StorageFull {
        KeyError::NoSpace {
            path: path.to_path_buf(),
        }
    } else if source.kind() == std::io::ErrorKind::FileTooLarge {
        KeyError::FileSizeLimit {
            path: path.to_path_buf(),
        }
    } else {
        KeyError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}

/// The folder of the key file at `path` (`.` for a bare file name).
pub(crate) fn key_folder(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Creates a new random key file at `path`, or loads the one another process created first.
///
/// The key never exists under another name: it is written to an unnamed file (`O_TMPFILE`)
/// in the key's folder, synced, and only then given its name with `linkat`, which never
/// replaces an existing file (of two processes creating the key at once, exactly one wins
/// and the other loads the winner's key). A process killed at any point leaves either no
/// key or the complete key. Where the filesystem has no unnamed files, a temporary name is
/// used, holding only an unusable (not yet valid) line until the key is complete.
pub fn create_key(path: &Path) -> Result<Key, KeyError> {
    let io = |action, source| key_file_error(path, action, source);
    let dir = key_folder(path);
    let unsafe_path = |reason| KeyError::Unsafe {
        path: path.to_path_buf(),
        reason,
    };
    // Before and after the folder is made: a refused path leaves no folder behind.
    files::check_private_folder(dir).map_err(unsafe_path)?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io("created (its folder cannot be made)", e))?;
    files::check_private_folder(dir).map_err(unsafe_path)?;
    let mut bytes = Zeroizing::new([0u8; 32]);
    fill_random(bytes.as_mut_slice());
    let line = Zeroizing::new(format!(
        "{KEY_FILE_TAG} {}\n",
        STANDARD.encode(bytes.as_slice())
    ));
    let linked = match link_unnamed(dir, path, line.as_bytes()) {
        Some(result) => result,
        None => link_via_temporary_name(path, line.as_bytes()),
    };
    match linked {
        Ok(()) => {
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io("created (its folder cannot be synced)", e))?;
            Ok(Key::from_bytes(*bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_key(path)?
            .ok_or_else(|| io("read", std::io::Error::from(std::io::ErrorKind::NotFound))),
        Err(e) => Err(io("created", e)),
    }
}

/// Writes `line` to an unnamed file in `dir` and links it as `path`. `None` when the
/// filesystem (or the kernel) has no unnamed files, or the link cannot be made for lack of
/// `/proc`: the caller then uses a temporary name.
fn link_unnamed(dir: &Path, path: &Path, line: &[u8]) -> Option<std::io::Result<()>> {
    use rustix::fs::{AtFlags, CWD, Mode, OFlags};
    let fd = match rustix::fs::openat(
        CWD,
        dir,
        OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::ISDIR | rustix::io::Errno::INVAL) => {
            return None;
        }
        Err(e) => return Some(Err(e.into())),
    };
    let mut file = fs::File::from(fd);
    if let Err(e) = file.write_all(line).and_then(|()| file.sync_all()) {
        return Some(Err(e));
    }
    // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH (root has it); /proc/self/fd works for anyone.
    let by_fd = rustix::fs::linkat(&file, "", CWD, path, AtFlags::EMPTY_PATH);
    let result = match by_fd {
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::PERM | rustix::io::Errno::ACCESS) => {
            use std::os::fd::AsRawFd;
            let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
            match rustix::fs::linkat(CWD, proc_path.as_str(), CWD, path, AtFlags::SYMLINK_FOLLOW) {
                Err(rustix::io::Errno::NOENT) if !Path::new("/proc/self/fd").exists() => {
                    return None;
                }
                other => other,
            }
        }
        other => other,
    };
    Some(result.map_err(Into::into))
}

/// The fallback of [`link_unnamed`], for filesystems without unnamed files. The key's first
/// letter is written last, through the open file, after the file has its final name and its
/// temporary name is gone: until then the line starts with [`INTERRUPTED_TAG`], which no
/// reader accepts as a key. So neither name ever holds a complete key that is not the key.
/// (The temporary name is unique per call: two threads of one process may create the key.)
fn link_via_temporary_name(path: &Path, line: &[u8]) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut unique = [0u8; 8];
    fill_random(&mut unique);
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        hex::encode(unique)
    ));
    let tmp = PathBuf::from(tmp_name);
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&INTERRUPTED_TAG.as_bytes()[..1])?;
        f.write_all(&line[1..])?;
        f.sync_all()?;
        fs::hard_link(&tmp, path)?;
        fs::remove_file(&tmp)?;
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&line[..1])?;
        f.sync_all()
    })();
    let _ = fs::remove_file(&tmp);
    result
}

#[cfg(test)]
#[path = "crypto_tests.rs"]
mod tests;
