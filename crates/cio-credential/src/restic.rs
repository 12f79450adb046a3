//! What we know of restic's repository format: key files, the `config` file, and the
//! encryption that protects them.
//!
//! Rules (restic's design document, "Keys, Encryption and MAC" and "Keys"):
//! - a key file (`keys/<id>`) is JSON with scrypt parameters (`N`, `r`, `p`), a base64 `salt`
//!   and a base64 `data`; scrypt(password, salt) gives 64 bytes: the AES-256 key (0..32), the
//!   Poly1305-AES `k` (32..48, an AES-128 key) and the Poly1305 `r` (48..64, masked);
//! - every encrypted file is `IV (16) || ciphertext || MAC (16)`; the MAC is Poly1305-AES over
//!   the ciphertext only, with `s = AES-128_k(IV)`; the ciphertext is AES-256 in CTR mode with
//!   the IV as the 128-bit big-endian counter;
//! - a key file's `data` opens to the repository's master key (JSON `{mac:{k,r}, encrypt}`);
//!   `config` opens with the master key and is never compressed, in any repository version;
//! - a MAC that does not match means the wrong password (for a key file), never garbage;
//! - passwords stay in [`SecretValue`]; derived and master keys are zeroed when dropped and
//!   never reach `Debug`.

use aes::cipher::{BlockCipherEncrypt, KeyInit, KeyIvInit, StreamCipher};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use poly1305::Poly1305;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::secret::SecretValue;

/// restic tries at most this many key files for one password (each costs one scrypt run),
/// besides the one a key hint names (`maxKeys` in restic 0.14's `cmd/restic/global.go`).
pub const MAX_KEY_FILES: usize = 20;

/// The largest scrypt memory (128·N·r bytes) a key file may ask for: restic itself asks for
/// at most 60 MiB; a larger request is a damaged or hostile file, not a key to try.
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;

const IV_LEN: usize = 16;
const MAC_LEN: usize = 16;

/// Poly1305's clamp of `r`, as restic applies it to the MAC key.
const POLY1305_R_MASK: [u8; 16] = [
    0xff, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f,
];

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

/// Why a key file or `config` could not be read. Never carries key material or a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResticError {
    /// The MAC of a key file did not match: this password does not open this key.
    #[error("the password does not open this key file")]
    WrongPassword,
    /// The MAC of a file encrypted with the master key did not match.
    #[error(
        "{0} does not open with the repository's master key (damaged or from another repository)"
    )]
    Unauthenticated(&'static str),
    /// The file is not what restic writes.
    #[error("{what} is not a restic {what}: {why}")]
    Malformed { what: &'static str, why: String },
}

fn malformed(what: &'static str, why: impl ToString) -> ResticError {
    ResticError::Malformed {
        what,
        why: why.to_string(),
    }
}

/// A key file as stored under `keys/`.
#[derive(Clone, Deserialize)]
pub struct KeyFile {
    #[serde(default)]
    pub created: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub hostname: String,
    pub kdf: String,
    #[serde(rename = "N")]
    pub n: u64,
    pub r: u32,
    pub p: u32,
    salt: String,
    data: String,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("created", &self.created)
            .field("username", &self.username)
            .field("hostname", &self.hostname)
            .field("kdf", &self.kdf)
            .field("n", &self.n)
            .field("r", &self.r)
            .field("p", &self.p)
            .finish_non_exhaustive()
    }
}

impl KeyFile {
    /// Parses a key file's JSON.
    pub fn parse(bytes: &[u8]) -> Result<KeyFile, ResticError> {
        let key: KeyFile = serde_json::from_slice(bytes).map_err(|e| malformed("key file", e))?;
        if key.kdf != "scrypt" {
            return Err(malformed(
                "key file",
                format!("unknown key derivation '{}'", key.kdf),
            ));
        }
        Ok(key)
    }

    /// Derives the key from `password` and opens the master key. A MAC mismatch is
    /// [`ResticError::WrongPassword`].
    pub fn open(&self, password: &SecretValue) -> Result<MasterKey, ResticError> {
        let params = self.scrypt_params()?;
        let salt = BASE64
            .decode(&self.salt)
            .map_err(|e| malformed("key file", format!("salt: {e}")))?;
        let data = BASE64
            .decode(&self.data)
            .map_err(|e| malformed("key file", format!("data: {e}")))?;
        let mut derived = Zeroizing::new([0u8; 64]);
        scrypt::scrypt(
            password.expose().as_bytes(),
            &salt,
            &params,
            derived.as_mut_slice(),
        )
        .map_err(|e| malformed("key file", format!("scrypt: {e}")))?;
        let user_key = CryptoKey::from_parts(&derived[..32], &derived[32..48], &derived[48..64]);
        let plain = user_key
            .open(&data)
            .map_err(|_| ResticError::WrongPassword)?;
        MasterKey::from_json(&plain)
    }

    fn scrypt_params(&self) -> Result<scrypt::Params, ResticError> {
        if self.n < 2 || !self.n.is_power_of_two() {
            return Err(malformed("key file", "N is not a power of two"));
        }
        let memory = 128u64
            .saturating_mul(self.n)
            .saturating_mul(u64::from(self.r));
        if memory > MAX_SCRYPT_MEMORY || self.p > 64 {
            return Err(malformed(
                "key file",
                "its scrypt parameters ask for more than 1 GiB of memory or 64 passes",
            ));
        }
        let log_n = u8::try_from(self.n.trailing_zeros())
            .map_err(|_| malformed("key file", "N is too large"))?;
        scrypt::Params::new(log_n, self.r, self.p)
            .map_err(|e| malformed("key file", format!("scrypt parameters: {e}")))
    }
}

/// An encryption key and its MAC key (restic's `crypto.Key`), zeroed on drop.
struct CryptoKey {
    encrypt: Zeroizing<[u8; 32]>,
    mac_k: Zeroizing<[u8; 16]>,
    mac_r: Zeroizing<[u8; 16]>,
}

impl CryptoKey {
    /// Takes the three parts; `r` is masked as Poly1305 requires.
    fn from_parts(encrypt: &[u8], mac_k: &[u8], mac_r: &[u8]) -> CryptoKey {
        let mut key = CryptoKey {
            encrypt: Zeroizing::new([0; 32]),
            mac_k: Zeroizing::new([0; 16]),
            mac_r: Zeroizing::new([0; 16]),
        };
        key.encrypt.copy_from_slice(encrypt);
        key.mac_k.copy_from_slice(mac_k);
        for (i, byte) in key.mac_r.iter_mut().enumerate() {
            *byte = mac_r[i] & POLY1305_R_MASK[i];
        }
        key
    }

    /// Poly1305-AES of `ciphertext` under this key and `iv`.
    fn mac(&self, iv: &[u8; IV_LEN], ciphertext: &[u8]) -> [u8; MAC_LEN] {
        let mut one_time = Zeroizing::new([0u8; 32]);
        one_time[..16].copy_from_slice(self.mac_r.as_slice());
        let mut s = aes::Block::from(*iv);
        aes::Aes128::new(&(*self.mac_k).into()).encrypt_block(&mut s);
        one_time[16..].copy_from_slice(s.as_slice());
        s.zeroize();
        let tag = Poly1305::new(&(*one_time).into()).compute_unpadded(ciphertext);
        tag.into()
    }

    /// Checks the MAC and decrypts `IV || ciphertext || MAC`; `Err(())` when the MAC does
    /// not match.
    fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, ()> {
        if sealed.len() < IV_LEN + MAC_LEN {
            return Err(());
        }
        let (iv, rest) = sealed.split_at(IV_LEN);
        let (ciphertext, mac) = rest.split_at(rest.len() - MAC_LEN);
        let mut iv_arr = [0u8; IV_LEN];
        iv_arr.copy_from_slice(iv);
        let expected = self.mac(&iv_arr, ciphertext);
        if !bool::from(expected.ct_eq(mac)) {
            return Err(());
        }
        let mut plain = Zeroizing::new(ciphertext.to_vec());
        Aes256Ctr::new(&(*self.encrypt).into(), &iv_arr.into()).apply_keystream(&mut plain);
        Ok(plain)
    }
}

/// The master key of a repository, opened from a key file. No `Debug` of its bytes.
pub struct MasterKey(CryptoKey);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

#[derive(Deserialize)]
struct MasterKeyJson {
    mac: MacJson,
    encrypt: String,
}

#[derive(Deserialize)]
struct MacJson {
    k: String,
    r: String,
}

impl MasterKey {
    pub(crate) fn from_json(plain: &[u8]) -> Result<MasterKey, ResticError> {
        let mut json: MasterKeyJson =
            serde_json::from_slice(plain).map_err(|e| malformed("master key", e))?;
        let decode = |field: &str, text: &str, len: usize| {
            let bytes = Zeroizing::new(
                BASE64
                    .decode(text)
                    .map_err(|e| malformed("master key", format!("{field}: {e}")))?,
            );
            if bytes.len() == len {
                Ok(bytes)
            } else {
                Err(malformed(
                    "master key",
                    format!("{field} is {} bytes, not {len}", bytes.len()),
                ))
            }
        };
        let encrypt = decode("encrypt", &json.encrypt, 32);
        let k = decode("mac.k", &json.mac.k, 16);
        let r = decode("mac.r", &json.mac.r, 16);
        json.encrypt.zeroize();
        json.mac.k.zeroize();
        json.mac.r.zeroize();
        Ok(MasterKey(CryptoKey::from_parts(&encrypt?, &k?, &r?)))
    }

    /// Opens the repository's `config` file.
    pub fn open_config(&self, sealed: &[u8]) -> Result<RepoConfig, ResticError> {
        let plain = self
            .0
            .open(sealed)
            .map_err(|()| ResticError::Unauthenticated("config"))?;
        serde_json::from_slice(&plain).map_err(|e| malformed("config", e))
    }
}

/// The parts of a repository's `config` that validate reports.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct RepoConfig {
    /// Repository format version: 1 (restic < 0.14) or 2 (compression).
    pub version: u32,
    /// The repository's id (64 hex digits).
    pub id: String,
}

/// Tries `password` on each key file in turn (the caller chooses which, and how many) and
/// returns the id of the first that opens, with the master key. `Ok(None)`: no key file opened with this
/// password. A malformed key file is skipped; if every file tried was malformed, its error is
/// returned.
pub fn open_any<'a>(
    keys: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    password: &SecretValue,
) -> Result<Option<(String, MasterKey)>, ResticError> {
    let mut last_malformed = None;
    let mut tried_ok = false;
    for (id, bytes) in keys {
        match KeyFile::parse(bytes).and_then(|k| k.open(password)) {
            Ok(master) => return Ok(Some((id.to_string(), master))),
            Err(ResticError::WrongPassword) => tried_ok = true,
            Err(e) => last_malformed = Some(e),
        }
    }
    match last_malformed {
        Some(e) if !tried_ok => Err(e),
        _ => Ok(None),
    }
}

/// The files Go's crypto/x509 reads the system's certificate authorities from on Linux, in
/// its order (`crypto/x509/root_linux.go`); the first that exists is used.
const SYSTEM_CA_FILES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The variable Go's crypto/x509 reads its trusted certificates from (restic 0.14 reads no
/// CA variable of its own; `--cacert` is a flag, and would put a file name in argv).
pub const CA_FILE_VARIABLE: &str = "SSL_CERT_FILE";

/// The certificates a restic trusts for a set with the CA certificate `cacert_pem` (PEM):
/// those of `current_ca_file` (the caller's own `SSL_CERT_FILE`, when set) or of the
/// system's bundle, then `cacert_pem` — Go reads one file and trusts only what is in it, so
/// the set's CA is added to the others, never put in their place.
pub fn ca_bundle(cacert_pem: &str, current_ca_file: Option<&std::path::Path>) -> Vec<u8> {
    let mut bundle = match current_ca_file {
        Some(path) => std::fs::read(path).unwrap_or_default(),
        None => SYSTEM_CA_FILES
            .iter()
            .find_map(|f| std::fs::read(f).ok())
            .unwrap_or_default(),
    };
    if !bundle.is_empty() && !bundle.ends_with(b"\n") {
        bundle.push(b'\n');
    }
    bundle.extend_from_slice(cacert_pem.as_bytes());
    if !cacert_pem.ends_with('\n') {
        bundle.push(b'\n');
    }
    bundle
}

/// A set's CA certificate handed to a child restic without a file the user must manage: the
/// PEM text, after the certificates the child would trust anyway, in an anonymous in-memory
/// file (memfd) the child inherits; set [`CaHandoff::variable`] to [`CaHandoff::value`]
/// (`/dev/fd/N`) in its environment. Keep this value alive until the child has started (for
/// `exec`, until `exec` replaces the process): dropping it closes the file.
#[derive(Debug)]
pub struct CaHandoff {
    fd: std::os::fd::OwnedFd,
    pub variable: &'static str,
    pub value: String,
}

impl CaHandoff {
    /// Writes the bundle ([`ca_bundle`]) into the memfd.
    pub fn new(
        cacert_pem: &str,
        current_ca_file: Option<&std::path::Path>,
    ) -> std::io::Result<CaHandoff> {
        use std::io::Write;
        // No MFD_CLOEXEC: the child must inherit it.
        let fd = rustix::fs::memfd_create("cio-cacert", rustix::fs::MemfdFlags::empty())?;
        let mut file = std::fs::File::from(fd);
        file.write_all(&ca_bundle(cacert_pem, current_ca_file))?;
        let fd = std::os::fd::OwnedFd::from(file);
        let value = format!("/dev/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        Ok(CaHandoff {
            fd,
            variable: CA_FILE_VARIABLE,
            value,
        })
    }

    /// The file descriptor the child inherits.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    /// Makes a real repository with `restic init` (password from the environment, never argv).
    fn restic_init(dir: &Path, password: &str) {
        restic(dir, password, &["init"]);
    }

    /// Runs the real restic on the local repository `dir`; secrets in the environment only.
    fn restic(dir: &Path, password: &str, args: &[&str]) {
        let restic = testkit::require_binary("restic");
        let out = Command::new(restic)
            .args(args)
            .arg("--repo")
            .arg(dir)
            .env_clear()
            .env("RESTIC_PASSWORD", password)
            .env("HOME", dir.parent().unwrap_or(dir))
            .output()
            .expect("running restic");
        assert!(
            out.status.success(),
            "restic {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn a_version_1_repository_with_two_keys_names_the_key_that_opened() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = tmp.path().join("repo");
        restic(
            &repo,
            "first password",
            &["init", "--repository-version", "1"],
        );
        let second = tmp.path().join("second");
        std::fs::write(&second, "second password\n").expect("password file");
        let second = second.to_str().expect("UTF-8 path");
        restic(
            &repo,
            "first password",
            &["key", "add", "--new-password-file", second],
        );

        let mut keys: Vec<(String, Vec<u8>)> = std::fs::read_dir(repo.join("keys"))
            .expect("keys/")
            .map(|e| {
                let e = e.expect("entry");
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).expect("key file"),
                )
            })
            .collect();
        keys.sort();
        assert_eq!(keys.len(), 2);
        let config = std::fs::read(repo.join("config")).expect("config");
        let try_password = |pw: &str| {
            open_any(
                keys.iter().map(|(id, b)| (id.as_str(), b.as_slice())),
                &SecretValue::new(pw.into()),
            )
            .expect("no malformed key")
        };
        let (first_id, master) = try_password("first password").expect("opens");
        let (second_id, master2) = try_password("second password").expect("opens");
        assert_ne!(first_id, second_id);
        let c1 = master.open_config(&config).expect("config");
        let c2 = master2.open_config(&config).expect("config");
        assert_eq!(c1, c2);
        assert_eq!(c1.version, 1);
        assert!(try_password("third password").is_none());
    }

    fn only_key(repo: &Path) -> (String, Vec<u8>) {
        let entry = std::fs::read_dir(repo.join("keys"))
            .expect("keys/")
            .next()
            .expect("one key file")
            .expect("dir entry");
        (
            entry.file_name().to_string_lossy().into_owned(),
            std::fs::read(entry.path()).expect("reading the key file"),
        )
    }

    #[test]
    fn opens_a_real_repository_with_the_right_password_only() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = tmp.path().join("repo");
        restic_init(&repo, "correct horse battery staple");
        let (id, key_bytes) = only_key(&repo);
        let key = KeyFile::parse(&key_bytes).expect("a restic key file");
        assert_eq!(key.kdf, "scrypt");

        let master = key
            .open(&SecretValue::new("correct horse battery staple".into()))
            .expect("the right password opens the key");
        let config = master
            .open_config(&std::fs::read(repo.join("config")).expect("config"))
            .expect("config opens");
        assert_eq!(config.version, 2);
        assert_eq!(config.id.len(), 64);
        assert!(config.id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!format!("{master:?}").contains(char::is_numeric));

        assert_eq!(
            key.open(&SecretValue::new("wrong password".into()))
                .map(|_| ()),
            Err(ResticError::WrongPassword)
        );

        let found = open_any(
            [("bogus", &b"{}"[..]), (id.as_str(), key_bytes.as_slice())],
            &SecretValue::new("correct horse battery staple".into()),
        )
        .expect("no error")
        .expect("a key opens");
        assert_eq!(found.0, id);
        let none = open_any(
            [(id.as_str(), key_bytes.as_slice())],
            &SecretValue::new("nope".into()),
        )
        .expect("no error");
        assert!(none.is_none());
    }

    #[test]
    fn the_ca_handoff_is_readable_through_dev_fd_and_ends_with_the_set_certificate() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        let system = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(system.path(), "SYSTEM BUNDLE").expect("write");
        let handoff = CaHandoff::new(pem, Some(system.path())).expect("memfd");
        assert_eq!(handoff.variable, "SSL_CERT_FILE");
        assert!(handoff.value.starts_with("/dev/fd/"));
        // A child reads it through /dev/fd/N as a new open file, from the start.
        let out = Command::new("cat")
            .arg(&handoff.value)
            .output()
            .expect("cat");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("SYSTEM BUNDLE\n{pem}\n")
        );
    }

    #[test]
    fn damaged_files_are_told_apart_from_a_wrong_password() {
        assert!(matches!(
            KeyFile::parse(b"not json"),
            Err(ResticError::Malformed { .. })
        ));
        let huge = br#"{"kdf":"scrypt","N":1099511627776,"r":8,"p":1,"salt":"","data":""}"#;
        let key = KeyFile::parse(huge).expect("parses");
        assert!(matches!(
            key.open(&SecretValue::new("x".into())),
            Err(ResticError::Malformed { .. })
        ));
        assert!(matches!(
            open_any([("a", &b"[]"[..])], &SecretValue::new("x".into())),
            Err(ResticError::Malformed { .. })
        ));
    }
}
