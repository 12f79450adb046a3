//! What we know of restic's repository format: key files, the `config` file, snapshot and lock
//! files, and the encryption that protects them — read as restic 0.14 reads them, so that what
//! it refuses is refused here, for the same reason, at the same point.
//!
//! Rules (restic's design document, "Keys, Encryption and MAC" and "Keys"; restic 0.14's
//! `repository.OpenKey`, `crypto.KDF`, `crypto.Key.Open`, `restic.LoadConfig`,
//! `Repository.LoadUnpacked`):
//! - a key file (`keys/<id>`) is JSON (read as Go reads it: `restic/gojson.rs`) with scrypt
//!   parameters (`N`, `r`, `p`), a base64 `salt` of exactly 64 bytes and a base64 `data`;
//!   scrypt(password, salt) gives 64 bytes: the AES-256 key (0..32), the Poly1305-AES `k`
//!   (32..48, an AES-128 key) and the Poly1305 `r` (48..64, masked);
//! - every encrypted file is `IV (16) || ciphertext || MAC (16)`; the MAC is Poly1305-AES over
//!   the ciphertext only, with `s = AES-128_k(IV)`; the ciphertext is AES-256 in CTR mode with
//!   the IV as the 128-bit big-endian counter; an all-zero IV is refused;
//! - a key file's `data` opens to the repository's master key (JSON `{mac:{k,r}, encrypt}`);
//!   `config` opens with the master key and is never compressed, in any repository version;
//!   its version must be one restic knows (1 or 2) and its chunker polynomial irreducible;
//! - only a MAC that does not match is "wrong password" ([`ResticError::WrongPassword`]):
//!   restic then tries the next key; anything else wrong with a key file stops its search;
//! - snapshot and lock files are named by the SHA-256 of their content, and in repository
//!   version 2 compressed (a version byte 2, then zstd) unless they begin with `{` or `[`;
//! - passwords stay in [`SecretValue`]; derived and master keys are zeroed when dropped and
//!   never reach `Debug`.

mod certificates;
mod chunker;
mod gojson;
mod unpacked;

pub(crate) use unpacked::{Lock, SnapshotFile};

use aes::cipher::{BlockCipherEncrypt, KeyInit, KeyIvInit, StreamCipher};
use poly1305::Poly1305;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::secret::SecretValue;

/// restic tries at most this many key files for one password (each costs one scrypt run),
/// besides the one a key hint names (`maxKeys` in restic 0.14's `cmd/restic/global.go`).
/// Every name listed under `keys/` counts, even one restic then skips as not an id.
pub const MAX_KEY_FILES: usize = 20;

/// The repository versions restic 0.14 opens (`restic.MinRepoVersion`, `MaxRepoVersion`;
/// unchanged up to restic 0.18).
pub const REPO_VERSIONS: std::ops::RangeInclusive<u64> = 1..=2;

/// simple-scrypt's `maxInt` (2^31 - 1), which bounds what restic accepts of a key file's
/// scrypt parameters (`Params.Check`): 128·N·r under 2 GiB of memory, r·p under 2^24.
/// restic's own keys ask for 60 MiB, with p raised when it had less memory to calibrate
/// with; the time a larger p takes is bounded by validate's deadline, not refused.
const SIMPLE_SCRYPT_MAX_INT: i64 = (1 << 31) - 1;

/// restic's salt length (`crypto.saltLength`): `crypto.KDF` refuses any other.
const SALT_LEN: usize = 64;

const IV_LEN: usize = 16;
const MAC_LEN: usize = 16;

/// Poly1305's clamp of `r`, as restic applies it to the MAC key.
const POLY1305_R_MASK: [u8; 16] = [
    0xff, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f,
];

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

/// Why a key file or another repository file could not be read. Never carries key material
/// or a password.
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
    /// `config` names a repository version restic 0.14 cannot open.
    #[error("unsupported repository version {0}")]
    UnsupportedVersion(u64),
    /// `config`'s chunker polynomial is not irreducible.
    #[error("invalid chunker polynomial {0:x}")]
    InvalidPolynomial(u64),
}

fn malformed(what: &'static str, why: impl ToString) -> ResticError {
    ResticError::Malformed {
        what,
        why: why.to_string(),
    }
}

/// Whether restic takes `name` for a file id (`restic.ParseID`): 64 hex digits, either case.
pub fn is_id(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A key file as stored under `keys/`, decoded as restic decodes it.
#[derive(Clone)]
pub struct KeyFile {
    pub username: String,
    pub hostname: String,
    pub kdf: String,
    pub n: i64,
    pub r: i64,
    pub p: i64,
    salt: Option<Vec<u8>>,
    data: Option<Vec<u8>>,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
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
    /// Parses a key file as `repository.LoadKey` does, and checks its key derivation is
    /// scrypt (`OpenKey`'s first check).
    pub fn parse(bytes: &[u8]) -> Result<KeyFile, ResticError> {
        let bad = |e: String| malformed("key file", e);
        let o = gojson::object(bytes).map_err(bad)?;
        let key = match o {
            None => KeyFile {
                username: String::new(),
                hostname: String::new(),
                kdf: String::new(),
                n: 0,
                r: 0,
                p: 0,
                salt: None,
                data: None,
            },
            Some(o) => {
                o.time("created").map_err(bad)?;
                KeyFile {
                    username: o.string("username").map_err(bad)?,
                    hostname: o.string("hostname").map_err(bad)?,
                    kdf: o.string("kdf").map_err(bad)?,
                    n: o.int("N").map_err(bad)?,
                    r: o.int("r").map_err(bad)?,
                    p: o.int("p").map_err(bad)?,
                    salt: o.bytes("salt").map_err(bad)?,
                    data: o.bytes("data").map_err(bad)?,
                }
            }
        };
        if key.kdf != "scrypt" {
            return Err(malformed(
                "key file",
                "only supported KDF is scrypt() (it names another key derivation, or none)",
            ));
        }
        Ok(key)
    }

    /// Derives the key from `password` and opens the master key, in `OpenKey`'s order. A MAC
    /// mismatch is [`ResticError::WrongPassword`]; anything else is what stops restic.
    pub fn open(&self, password: &SecretValue) -> Result<MasterKey, ResticError> {
        let salt = self.salt.as_deref().unwrap_or_default();
        if salt.len() != SALT_LEN {
            return Err(malformed(
                "key file",
                format!("its salt is {} bytes, not {SALT_LEN}", salt.len()),
            ));
        }
        let params = self.scrypt_params()?;
        let mut derived = Zeroizing::new([0u8; 64]);
        scrypt::scrypt(
            password.expose().as_bytes(),
            salt,
            &params,
            derived.as_mut_slice(),
        )
        .map_err(|e| malformed("key file", format!("scrypt: {e}")))?;
        let user_key = CryptoKey::from_parts(&derived[..32], &derived[32..48], &derived[48..64]);
        let data = self.data.as_deref().unwrap_or_default();
        let plain = match user_key.open(data) {
            Ok(plain) => plain,
            Err(Refused::Mac) => return Err(ResticError::WrongPassword),
            Err(Refused::Shape(why)) => return Err(malformed("key file", format!("data: {why}"))),
        };
        MasterKey::from_json(&plain)
    }

    /// simple-scrypt's `Params.Check` (with its `maxInt`), which is stricter than
    /// x/crypto/scrypt's own limits: what restic 0.14 accepts, and nothing more.
    fn scrypt_params(&self) -> Result<scrypt::Params, ResticError> {
        let (n, r, p) = (self.n, self.r, self.p);
        let max = SIMPLE_SCRYPT_MAX_INT;
        let valid = n > 1
            && n.count_ones() == 1
            && r >= 1
            && p >= 1
            && r.saturating_mul(p) < 1 << 30
            && r <= max / 128 / p
            && r <= max / 256
            && n <= max / 128 / r;
        if !valid {
            return Err(malformed(
                "key file",
                "its scrypt parameters are invalid (N must be a power of two above 1, r and p at least 1)",
            ));
        }
        let log_n = u8::try_from(n.trailing_zeros())
            .map_err(|_| malformed("key file", "N is too large"))?;
        let (r, p) = (
            u32::try_from(r).map_err(|_| malformed("key file", "r is too large"))?,
            u32::try_from(p).map_err(|_| malformed("key file", "p is too large"))?,
        );
        scrypt::Params::new(log_n, r, p)
            .map_err(|e| malformed("key file", format!("scrypt parameters: {e}")))
    }
}

/// Why [`CryptoKey::open`] refused: the MAC (`crypto.ErrUnauthenticated`), or the file's
/// shape, which restic refuses before any MAC (or crashes on).
#[derive(Debug)]
enum Refused {
    Mac,
    Shape(&'static str),
}

/// An encryption key and its MAC key (restic's `crypto.Key`), zeroed on drop.
struct CryptoKey {
    encrypt: Zeroizing<[u8; 32]>,
    mac_k: Zeroizing<[u8; 16]>,
    mac_r: Zeroizing<[u8; 16]>,
}

impl CryptoKey {
    /// Takes the three parts (each copied as far as it goes, as restic's JSON decoding does);
    /// `r` is masked as Poly1305 requires.
    fn from_parts(encrypt: &[u8], mac_k: &[u8], mac_r: &[u8]) -> CryptoKey {
        let mut key = CryptoKey {
            encrypt: Zeroizing::new([0; 32]),
            mac_k: Zeroizing::new([0; 16]),
            mac_r: Zeroizing::new([0; 16]),
        };
        for (to, from) in key.encrypt.iter_mut().zip(encrypt) {
            *to = *from;
        }
        for (to, from) in key.mac_k.iter_mut().zip(mac_k) {
            *to = *from;
        }
        for (i, (to, from)) in key.mac_r.iter_mut().zip(mac_r).enumerate() {
            *to = from & POLY1305_R_MASK[i];
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

    /// Checks and decrypts `IV || ciphertext || MAC` as restic's `crypto.Key.Open` does.
    fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, Refused> {
        if sealed.len() < IV_LEN {
            return Err(Refused::Shape("shorter than its IV (restic crashes on it)"));
        }
        let (iv, rest) = sealed.split_at(IV_LEN);
        if iv.iter().all(|b| *b == 0) {
            return Err(Refused::Shape("its IV is all zeros (nonce is invalid)"));
        }
        if rest.len() < MAC_LEN {
            return Err(Refused::Shape("ciphertext too small"));
        }
        let (ciphertext, mac) = rest.split_at(rest.len() - MAC_LEN);
        let mut iv_arr = [0u8; IV_LEN];
        iv_arr.copy_from_slice(iv);
        let expected = self.mac(&iv_arr, ciphertext);
        if !bool::from(expected.ct_eq(mac)) {
            return Err(Refused::Mac);
        }
        let mut plain = Zeroizing::new(ciphertext.to_vec());
        Aes256Ctr::new(&(*self.encrypt).into(), &iv_arr.into()).apply_keystream(&mut plain);
        Ok(plain)
    }

    /// restic's `crypto.Key.Valid`: no part all zeros.
    fn valid(&self) -> bool {
        let nonzero = |b: &[u8]| b.iter().any(|x| *x != 0);
        nonzero(self.encrypt.as_slice())
            && nonzero(self.mac_k.as_slice())
            && nonzero(self.mac_r.as_slice())
    }
}

/// The master key of a repository, opened from a key file. No `Debug` of its bytes.
pub struct MasterKey(CryptoKey);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

impl MasterKey {
    /// The master key from a key file's opened `data`, decoded as restic decodes it
    /// (`crypto.MACKey` and `crypto.EncryptionKey` copy what they get) and checked `Valid`.
    pub(crate) fn from_json(plain: &[u8]) -> Result<MasterKey, ResticError> {
        let bad = |e: String| malformed("master key", e);
        let part = |raw: &str| -> Result<Zeroizing<Vec<u8>>, String> {
            Ok(Zeroizing::new(gojson::bytes(raw)?.unwrap_or_default()))
        };
        let (mut encrypt, mut k, mut r) = (
            Zeroizing::new(Vec::new()),
            Zeroizing::new(Vec::new()),
            Zeroizing::new(Vec::new()),
        );
        if let Some(o) = gojson::object(plain).map_err(bad)? {
            encrypt = o.custom("encrypt", encrypt, part).map_err(bad)?;
            let mac = o
                .custom("mac", None, |raw| gojson::nested(raw).map(Some))
                .map_err(bad)?;
            if let Some(Some(mac)) = mac {
                k = Zeroizing::new(mac.bytes("k").map_err(bad)?.unwrap_or_default());
                r = Zeroizing::new(mac.bytes("r").map_err(bad)?.unwrap_or_default());
            }
        }
        let key = CryptoKey::from_parts(&encrypt, &k, &r);
        if !key.valid() {
            return Err(malformed("master key", "Invalid key for repository"));
        }
        Ok(MasterKey(key))
    }

    /// Opens and checks the repository's `config` as `restic.LoadConfig` does.
    pub fn open_config(&self, sealed: &[u8]) -> Result<RepoConfig, ResticError> {
        let plain = match self.0.open(sealed) {
            Ok(plain) => plain,
            Err(Refused::Mac) => return Err(ResticError::Unauthenticated("config")),
            Err(Refused::Shape(why)) => return Err(malformed("config", why)),
        };
        let bad = |e: String| malformed("config", e);
        let (mut version, mut id, mut polynomial) = (0, String::new(), 0);
        if let Some(o) = gojson::object(&plain).map_err(bad)? {
            version = o.uint("version", 64).map_err(bad)?;
            id = o.string("id").map_err(bad)?;
            polynomial = o
                .custom("chunker_polynomial", 0, |raw| {
                    // chunker's Pol.UnmarshalJSON: drops the first and last byte, reads hex.
                    let inner = raw
                        .as_bytes()
                        .get(1..raw.len().saturating_sub(1))
                        .filter(|_| raw.len() >= 2)
                        .ok_or("invalid string for polynomial")?;
                    std::str::from_utf8(inner)
                        .ok()
                        .filter(|t| !t.starts_with('+'))
                        .and_then(|t| u64::from_str_radix(t, 16).ok())
                        .ok_or_else(|| "invalid polynomial".to_string())
                })
                .map_err(bad)?;
        }
        if !REPO_VERSIONS.contains(&version) {
            return Err(ResticError::UnsupportedVersion(version));
        }
        if !chunker::irreducible(polynomial) {
            return Err(ResticError::InvalidPolynomial(polynomial));
        }
        Ok(RepoConfig { version, id })
    }

    /// Opens a snapshot, index or lock file named `id` as `Repository.LoadUnpacked` does:
    /// its content's hash must be its name, then the MAC, then (repository version 2) the
    /// compression byte. `what` names the kind of file in errors.
    pub(crate) fn open_unpacked(
        &self,
        what: &'static str,
        id: &str,
        sealed: &[u8],
        repo_version: u64,
    ) -> Result<Zeroizing<Vec<u8>>, ResticError> {
        use sha2::Digest;
        let named = hex::decode(id).map_err(|_| malformed(what, "its name is not an id"))?;
        if sha2::Sha256::digest(sealed).as_slice() != named.as_slice() {
            return Err(malformed(
                what,
                "its content does not match its id (invalid data returned)",
            ));
        }
        let plain = match self.0.open(sealed) {
            Ok(plain) => plain,
            Err(Refused::Mac) => return Err(ResticError::Unauthenticated(what)),
            Err(Refused::Shape(why)) => return Err(malformed(what, why)),
        };
        unpacked::decompress(what, plain, repo_version)
    }
}

/// The parts of a repository's `config` that validate reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RepoConfig {
    /// Repository format version: 1 (restic < 0.14) or 2 (compression).
    pub version: u64,
    /// The repository's id (64 hex digits).
    pub id: String,
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

pub use certificates::{MAX_CA_FILE, Unread as CaFileUnread};

/// A CA bundle and, when the caller's file could not be read, why (the bundle then holds
/// none of its certificates: say so).
#[derive(Debug)]
pub struct CaBundle {
    pub bytes: Vec<u8>,
    pub caller_unread: Option<CaFileUnread>,
}

/// The certificates a restic trusts for a set with the CA certificate `cacert_pem` (PEM):
/// those of `current_ca_file` (the caller's own `SSL_CERT_FILE`, when set) or of the
/// system's bundle, then `cacert_pem` — Go reads one file and trusts only what is in it, so
/// the set's CA is added to the others, never put in their place. Only the `CERTIFICATE`
/// blocks of the other file are taken (all Go takes of it), never the rest of it: it may be
/// any file the caller names, a secret one too.
pub fn ca_bundle(cacert_pem: &str, current_ca_file: Option<&std::path::Path>) -> CaBundle {
    let (mut bytes, caller_unread) = match current_ca_file {
        Some(path) => match certificates::certificates_of(path) {
            Ok(certs) => (certs, None),
            Err(unread) => (Vec::new(), Some(unread)),
        },
        None => (
            SYSTEM_CA_FILES
                .iter()
                .map(std::path::Path::new)
                .find(|f| f.is_file())
                .and_then(|f| certificates::certificates_of(f).ok())
                .unwrap_or_default(),
            None,
        ),
    };
    bytes.extend_from_slice(cacert_pem.as_bytes());
    if !cacert_pem.ends_with('\n') {
        bytes.push(b'\n');
    }
    CaBundle {
        bytes,
        caller_unread,
    }
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
    /// The caller's file whose certificates the bundle lacks, and why.
    pub caller_unread: Option<CaFileUnread>,
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
        let bundle = ca_bundle(cacert_pem, current_ca_file);
        file.write_all(&bundle.bytes)?;
        let fd = std::os::fd::OwnedFd::from(file);
        let value = format!("/dev/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        Ok(CaHandoff {
            fd,
            variable: CA_FILE_VARIABLE,
            value,
            caller_unread: bundle.caller_unread,
        })
    }

    /// The file descriptor the child inherits.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.fd)
    }
}

#[cfg(test)]
pub(crate) mod tests;
