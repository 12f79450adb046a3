//! Sealing a bundle with age, and opening one: recipients, identities and passphrases.
//!
//! Rules:
//! - the crypto is age's (rage's library), never our own; a sealed bundle is a standard,
//!   ASCII-armored age file that the `age` command opens, and any age file (armored or not)
//!   whose plaintext is a bundle opens here;
//! - age seals a file to one passphrase or to recipients, never both in one file (its
//!   format allows an scrypt stanza only alone);
//! - a passphrase is one line someone can type again: a line break, a tab, a control or an
//!   invisible character, or white space at either end is refused, to seal and to open (a
//!   piped `printf 'words\n\n'` would otherwise seal to a passphrase nobody can type);
//! - its length is what a person types: a run of white space inside counts as one
//!   character. Shorter than [`MIN_PASSPHRASE`] is refused, shorter than [`GOOD_PASSPHRASE`]
//!   accepted with a warning (when sealing: opening takes any passphrase of the right form,
//!   such as that of a bundle the `age` command made); its scrypt work factor is the `age`
//!   command's ([`SCRYPT_LOG_N`]), so a bundle costs what `age -p` costs;
//! - recipients are `age1…` X25519 keys and `ssh-ed25519` / `ssh-rsa` public keys; identities
//!   are age identity files (`AGE-SECRET-KEY-1…` lines) and unencrypted OpenSSH private keys;
//!   an identity file that others may read is refused, as ssh refuses such keys;
//! - errors never repeat a recipient, a line of a file or a passphrase: they say where
//!   (which `--recipient`, which line of which file).

use std::io::{BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::str::FromStr;

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age::secrecy::SecretString;
use age::{DecryptError, Decryptor, Encryptor};
use zeroize::Zeroizing;

use super::RecoveryError;
use super::bundle::Bundle;
pub use super::error::{GOOD_PASSPHRASE, MAX_SCRYPT_LOG_N, MIN_PASSPHRASE, RecipientSource};
use crate::secret::SecretValue;

/// The scrypt work factor (log2 N) of a passphrase bundle: the one the `age` command uses.
pub const SCRYPT_LOG_N: u8 = 18;

/// A public key a bundle can be sealed to (checked when parsed; kept as its text so that it
/// can be copied).
#[derive(Clone)]
pub struct Recipient {
    text: String,
    ssh: bool,
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.ssh {
            "Recipient(ssh)"
        } else {
            "Recipient(age)"
        })
    }
}

impl Recipient {
    /// Parses an `age1…` X25519 recipient or an `ssh-ed25519` / `ssh-rsa` public key.
    pub fn parse(text: &str, source: RecipientSource) -> Result<Recipient, RecoveryError> {
        let text = text.trim();
        let unknown = |why: &'static str| RecoveryError::UnknownRecipient {
            place: source.clone(),
            why,
        };
        // A private key pasted where its public key belongs: said so, never repeated.
        if text.starts_with("AGE-SECRET-KEY-") {
            return Err(unknown(
                "it is an age identity, a private key: give its recipient, which 'age-keygen -y FILE' prints (and keep the identity secret)",
            ));
        }
        if text.starts_with("-----BEGIN") {
            return Err(unknown(
                "it is a PEM block, such as a private key: give the public key, the line of the .pub file (and keep the private key secret)",
            ));
        }
        if text.starts_with("age1") {
            if age::x25519::Recipient::from_str(text).is_ok() {
                return Ok(Recipient {
                    text: text.to_string(),
                    ssh: false,
                });
            }
            return Err(unknown(
                "it starts like an age X25519 key (age1...) but is not one; plugin and post-quantum recipients are not supported",
            ));
        }
        if text.starts_with("ssh-") {
            return age::ssh::Recipient::from_str(text)
                .map(|_| Recipient {
                    text: text.to_string(),
                    ssh: true,
                })
                .map_err(|_| {
                    unknown("it is not an ssh-ed25519 or ssh-rsa (2048 bits or more) public key")
                });
        }
        Err(unknown(
            "a recipient is an age X25519 key (age1...) or an ssh-ed25519 / ssh-rsa public key",
        ))
    }

    /// The public key alone, as a fingerprint of the recipients counts it: an SSH key's
    /// type and key without its comment, an age key as written.
    pub(crate) fn key_text(&self) -> String {
        if self.ssh {
            self.text
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            self.text.clone()
        }
    }

    /// The age recipient.
    fn to_age(&self) -> Box<dyn age::Recipient + Send> {
        if self.ssh {
            Box::new(
                age::ssh::Recipient::from_str(&self.text)
                    .expect("the text was checked to be an SSH recipient when parsed"),
            )
        } else {
            Box::new(
                age::x25519::Recipient::from_str(&self.text)
                    .expect("the text was checked to be an X25519 recipient when parsed"),
            )
        }
    }

    /// The recipients in the file at `path` (a pipe such as `<(...)` or a named FIFO too,
    /// whose writer is waited for: [`crate::open_input`]), read up to 1 MiB.
    pub fn load_file(path: &Path) -> Result<Vec<Recipient>, RecoveryError> {
        let unreadable = |detail: String| RecoveryError::RecipientsFileUnreadable {
            path: path.to_path_buf(),
            detail,
        };
        let file = crate::open_input(path).map_err(|e| unreadable(e.to_string()))?;
        let mut text = String::new();
        file.take(1 << 20)
            .read_to_string(&mut text)
            .map_err(|e| unreadable(e.to_string()))?;
        Recipient::parse_file(path, &text)
    }

    /// The recipients of a recipients file's text (age's `-R` format: one per line, `#`
    /// comments and blank lines skipped).
    pub fn parse_file(path: &Path, text: &str) -> Result<Vec<Recipient>, RecoveryError> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            out.push(Recipient::parse(
                line,
                RecipientSource::FileLine(path.to_path_buf(), i + 1),
            )?);
        }
        if out.is_empty() {
            return Err(RecoveryError::NoRecipientsInFile(path.to_path_buf()));
        }
        Ok(out)
    }
}

/// What a bundle is sealed to.
pub enum SealTo {
    Passphrase(SecretValue),
    Recipients(Vec<Recipient>),
}

/// A doubtful passphrase, accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortPassphrase {
    pub chars: usize,
}

impl std::fmt::Display for ShortPassphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the passphrase is {} characters; {GOOD_PASSPHRASE} or more are much harder to guess, and this bundle holds every secret of its sets",
            self.chars
        )
    }
}

/// Checks the form of a bundle passphrase (to seal or to open): one line that can be typed
/// again (see the module's rules). The error never holds any of it.
pub fn check_passphrase_form(passphrase: &SecretValue) -> Result<(), RecoveryError> {
    use crate::catalog::RuleViolation as V;
    crate::catalog::check_line(passphrase.expose()).map_err(|violation| {
        RecoveryError::PassphraseUntypable(match violation {
            V::Empty => "is empty",
            V::TooLong { .. } => "is longer than 4096 bytes",
            V::SurroundingLineBreak | V::LineBreak => "holds a line break",
            V::SurroundingWhitespace => "starts or ends with white space",
            V::Tab(_) => "holds a tab",
            V::InvisibleCharacter(..) => "holds an invisible character",
            _ => "holds a control character",
        })
    })
}

/// The characters of a passphrase that count towards its length: a run of white space
/// inside counts once (its ends hold none: [`check_passphrase_form`]).
fn typed_chars(passphrase: &str) -> usize {
    let mut count = 0;
    let mut in_space = false;
    for c in passphrase.chars() {
        let space = c.is_whitespace();
        if !(space && in_space) {
            count += 1;
        }
        in_space = space;
    }
    count
}

/// Checks a passphrase to seal a bundle with: its form ([`check_passphrase_form`]); too
/// short is refused, short is a warning.
pub fn check_passphrase(
    passphrase: &SecretValue,
) -> Result<Option<ShortPassphrase>, RecoveryError> {
    check_passphrase_form(passphrase)?;
    let chars = typed_chars(passphrase.expose());
    if chars < MIN_PASSPHRASE {
        return Err(RecoveryError::PassphraseTooShort { chars });
    }
    Ok((chars < GOOD_PASSPHRASE).then_some(ShortPassphrase { chars }))
}

/// Seals `bundle` to `to`: an ASCII-armored age file.
pub fn seal(bundle: &Bundle, to: &SealTo) -> Result<String, RecoveryError> {
    let encryptor = match to {
        SealTo::Passphrase(passphrase) => {
            check_passphrase(passphrase)?;
            let mut recipient =
                age::scrypt::Recipient::new(SecretString::from(passphrase.expose().to_string()));
            recipient.set_work_factor(SCRYPT_LOG_N);
            Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
        }
        SealTo::Recipients(recipients) if recipients.is_empty() => {
            return Err(RecoveryError::NothingToSealTo);
        }
        SealTo::Recipients(recipients) => {
            let boxed: Vec<_> = recipients.iter().map(Recipient::to_age).collect();
            Encryptor::with_recipients(boxed.iter().map(|r| r.as_ref() as &dyn age::Recipient))
        }
    }
    .map_err(|e| RecoveryError::Seal(e.to_string()))?;
    let plaintext = bundle.to_json();
    let seal_io = |e: std::io::Error| RecoveryError::Seal(e.to_string());
    let mut armored = Vec::with_capacity(plaintext.len() * 2 + 1024);
    let armor = ArmoredWriter::wrap_output(&mut armored, Format::AsciiArmor).map_err(seal_io)?;
    let mut writer = encryptor.wrap_output(armor).map_err(seal_io)?;
    writer.write_all(&plaintext).map_err(seal_io)?;
    writer
        .finish()
        .and_then(ArmoredWriter::finish)
        .map_err(seal_io)?;
    String::from_utf8(armored).map_err(|_| RecoveryError::Seal("the armor is not text".into()))
}

/// Private keys that open bundles sealed to their recipients.
pub struct Identities(Vec<Box<dyn age::Identity>>);

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identities({})", self.0.len())
    }
}

impl Identities {
    /// The identities in the file at `path`: an age identity file or an unencrypted OpenSSH
    /// private key, from a regular file or a pipe (`--identity <(pass show recovery-key)`, a
    /// named FIFO, whose writer is waited for: [`crate::InputFile`]), read up to 1 MiB. A
    /// file or named FIFO that group or others may read is refused (an anonymous pipe is
    /// 0600).
    pub fn load(path: &Path) -> Result<Identities, RecoveryError> {
        let unreadable = |detail: String| RecoveryError::IdentityUnreadable {
            path: path.to_path_buf(),
            detail,
        };
        let input = crate::InputFile::open(path).map_err(|e| unreadable(e.to_string()))?;
        // Before a named FIFO's writer is waited for. Refused, the probe is closed unread,
        // which lets a writer waiting in its open go ([`crate::release_fifo`] says how).
        let mode = input.metadata().permissions().mode();
        if mode & 0o077 != 0 {
            return Err(RecoveryError::IdentityExposed {
                path: path.to_path_buf(),
                mode: mode & 0o777,
            });
        }
        let file = input.reader(path).map_err(|e| unreadable(e.to_string()))?;
        let mut text = Zeroizing::new(String::new());
        file.take(1 << 20)
            .read_to_string(&mut text)
            .map_err(|e| unreadable(e.to_string()))?;
        Identities::parse(path, &text)
    }

    fn parse(path: &Path, text: &str) -> Result<Identities, RecoveryError> {
        let none = || RecoveryError::NoIdentity(path.to_path_buf());
        if text.contains("-----BEGIN") {
            return match age::ssh::Identity::from_buffer(BufReader::new(text.as_bytes()), None) {
                Ok(age::ssh::Identity::Unencrypted(key)) => Ok(Identities(vec![Box::new(
                    age::ssh::Identity::Unencrypted(key),
                )])),
                Ok(age::ssh::Identity::Encrypted(_)) => {
                    Err(RecoveryError::EncryptedSshIdentity(path.to_path_buf()))
                }
                Ok(age::ssh::Identity::Unsupported(_)) | Err(_) => Err(none()),
            };
        }
        let file =
            age::IdentityFile::from_buffer(BufReader::new(text.as_bytes())).map_err(|_| none())?;
        let identities = file.into_identities().map_err(|_| none())?;
        if identities.is_empty() {
            return Err(none());
        }
        Ok(Identities(
            identities
                .into_iter()
                .map(|i| i as Box<dyn age::Identity>)
                .collect(),
        ))
    }

    /// Adds the identities of another file.
    pub fn extend(&mut self, other: Identities) {
        self.0.extend(other.0);
    }
}

/// What opens a bundle.
pub enum OpenWith {
    Passphrase(SecretValue),
    Identities(Identities),
}

/// Whether the sealed bundle needs a passphrase (`true`) or an identity (`false`). Reads only
/// its header.
pub fn needs_passphrase(sealed: &[u8]) -> Result<bool, RecoveryError> {
    check_armor_end(sealed)?;
    let decryptor = Decryptor::new(ArmoredReader::new(sealed)).map_err(damaged)?;
    Ok(decryptor.is_scrypt())
}

/// Opens a sealed bundle (armored or binary age). A bundle whose header or payload was
/// changed or cut short, a wrong passphrase and a wrong identity are each a precise error.
pub fn open(sealed: &[u8], with: &OpenWith) -> Result<Bundle, RecoveryError> {
    check_armor_end(sealed)?;
    let decryptor = Decryptor::new(ArmoredReader::new(sealed)).map_err(damaged)?;
    let mut reader = match (with, decryptor.is_scrypt()) {
        (OpenWith::Passphrase(passphrase), true) => {
            check_passphrase_form(passphrase)?;
            let mut identity =
                age::scrypt::Identity::new(SecretString::from(passphrase.expose().to_string()));
            identity.set_max_work_factor(MAX_SCRYPT_LOG_N);
            decryptor
                .decrypt(std::iter::once(&identity as &dyn age::Identity))
                .map_err(|e| match e {
                    DecryptError::DecryptionFailed | DecryptError::KeyDecryptionFailed => {
                        RecoveryError::WrongPassphrase
                    }
                    DecryptError::ExcessiveWork { required, .. } => {
                        RecoveryError::ExcessiveWork { required }
                    }
                    other => damaged(other),
                })?
        }
        (OpenWith::Identities(identities), false) => decryptor
            .decrypt(identities.0.iter().map(|i| i.as_ref()))
            .map_err(|e| match e {
                DecryptError::NoMatchingKeys => RecoveryError::WrongIdentity,
                other => damaged(other),
            })?,
        (OpenWith::Passphrase(_), false) => return Err(RecoveryError::SealedToRecipients),
        (OpenWith::Identities(_), true) => return Err(RecoveryError::SealedToPassphrase),
    };
    let mut plaintext = Zeroizing::new(Vec::with_capacity(sealed.len()));
    reader
        .read_to_end(&mut plaintext)
        .map_err(|e| payload_damage(&e))?;
    Bundle::from_json(&plaintext)
}

/// The line an armored age file begins with.
const ARMOR_BEGIN: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
/// The line an armored age file ends with.
const ARMOR_END: &[u8] = b"-----END AGE ENCRYPTED FILE-----";

/// An armored bundle must end with its end line (white space a copy added aside): without
/// it the copy was cut short, which age's reader reports as a wrapping fault of the last
/// line it read.
fn check_armor_end(sealed: &[u8]) -> Result<(), RecoveryError> {
    let text = sealed.trim_ascii();
    if text.starts_with(ARMOR_BEGIN) && !text.ends_with(ARMOR_END) {
        return Err(RecoveryError::CutShort {
            armored: true,
            detail: "its end line (-----END AGE ENCRYPTED FILE-----) is missing",
        });
    }
    Ok(())
}

fn damaged(e: DecryptError) -> RecoveryError {
    match e {
        DecryptError::InvalidMac => {
            RecoveryError::Damaged("its header does not match its authentication code".into())
        }
        DecryptError::InvalidHeader => {
            RecoveryError::Damaged("its header is not a valid age header".into())
        }
        DecryptError::UnknownFormat => {
            RecoveryError::Damaged("it is not an age file this cio can read".into())
        }
        DecryptError::Io(e) => payload_damage(&e),
        other => RecoveryError::Damaged(other.to_string()),
    }
}

/// A read fault of the bundle: an end reached too early is a copy cut short. A binary
/// payload cut inside its last part fails to decrypt as a changed byte does (age cannot
/// tell them apart), and says both.
fn payload_damage(e: &std::io::Error) -> RecoveryError {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => RecoveryError::CutShort {
            armored: false,
            detail: "it ends before its last part",
        },
        std::io::ErrorKind::InvalidData => RecoveryError::Damaged(format!(
            "{e}: a byte of it was changed, or the copy was cut short"
        )),
        _ => RecoveryError::Damaged(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::bundle::{BundledCredential, BundledVersion};
    use crate::store::Action;

    fn bundle() -> Bundle {
        Bundle {
            created_at_ms: 1,
            created_by: "cio test".into(),
            history: false,
            credentials: vec![BundledCredential {
                name: "cio_minio_backup_password".parse().unwrap(),
                versions: vec![BundledVersion {
                    version: 1,
                    action: Action::Create,
                    written_at_ms: 1,
                    value: Some(SecretValue::new("the repository password".into())),
                }],
            }],
        }
    }

    fn secret_of(b: &Bundle) -> String {
        b.credentials[0]
            .latest()
            .unwrap()
            .value
            .as_ref()
            .unwrap()
            .expose()
            .to_string()
    }

    #[test]
    fn recipients_round_trip_and_wrong_identities_are_named() {
        let id = age::x25519::Identity::generate();
        let other = age::x25519::Identity::generate();
        let public = id.to_public().to_string();
        let r = Recipient::parse(&public, RecipientSource::Flag(1)).unwrap();
        let sealed = seal(&bundle(), &SealTo::Recipients(vec![r])).unwrap();
        assert!(sealed.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));
        assert!(!sealed.contains("repository password"));
        let with = |i: &age::x25519::Identity| {
            use age::secrecy::ExposeSecret;
            let text = i.to_string();
            OpenWith::Identities(Identities::parse(Path::new("id"), text.expose_secret()).unwrap())
        };
        let opened = open(sealed.as_bytes(), &with(&id)).unwrap();
        assert_eq!(secret_of(&opened), "the repository password");
        assert!(!needs_passphrase(sealed.as_bytes()).unwrap());
        let err = open(sealed.as_bytes(), &with(&other)).unwrap_err();
        assert!(matches!(err, RecoveryError::WrongIdentity), "{err:?}");
        let err = open(
            sealed.as_bytes(),
            &OpenWith::Passphrase(SecretValue::new("whatever passphrase".into())),
        )
        .unwrap_err();
        assert!(matches!(err, RecoveryError::SealedToRecipients), "{err:?}");
    }

    #[test]
    fn one_changed_byte_or_a_cut_is_damage() {
        let id = age::x25519::Identity::generate();
        let r = Recipient::parse(&id.to_public().to_string(), RecipientSource::Flag(1)).unwrap();
        let sealed = seal(&bundle(), &SealTo::Recipients(vec![r])).unwrap();
        let with = {
            use age::secrecy::ExposeSecret;
            OpenWith::Identities(
                Identities::parse(Path::new("id"), id.to_string().expose_secret()).unwrap(),
            )
        };
        let body_start = sealed.find('\n').unwrap() + 1;
        let lines = sealed.len() - body_start;
        // Every position of the armored body, one character changed to another base64 one.
        for at in (body_start..body_start + lines - 40).step_by(7) {
            let mut bytes = sealed.clone().into_bytes();
            if bytes[at] == b'\n' || bytes[at] == b'=' {
                continue;
            }
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let err = open(&bytes, &with).unwrap_err();
            assert!(
                matches!(
                    err,
                    RecoveryError::Damaged(_) | RecoveryError::WrongIdentity
                ),
                "byte {at}: {err:?}"
            );
        }
        let cut = &sealed.as_bytes()[..sealed.len() - 60];
        assert!(matches!(
            open(cut, &with),
            Err(RecoveryError::CutShort { armored: true, .. })
        ));
    }

    #[test]
    fn passphrases_round_trip_and_are_checked() {
        let pass = SecretValue::new("correct horse battery".into());
        let sealed = seal(&bundle(), &SealTo::Passphrase(pass)).unwrap();
        assert!(needs_passphrase(sealed.as_bytes()).unwrap());
        let opened = open(
            sealed.as_bytes(),
            &OpenWith::Passphrase(SecretValue::new("correct horse battery".into())),
        )
        .unwrap();
        assert_eq!(secret_of(&opened), "the repository password");
        let err = open(
            sealed.as_bytes(),
            &OpenWith::Passphrase(SecretValue::new("wrong horse battery".into())),
        )
        .unwrap_err();
        assert!(matches!(err, RecoveryError::WrongPassphrase), "{err:?}");

        let short = SecretValue::new("seven77".into());
        assert!(matches!(
            seal(&bundle(), &SealTo::Passphrase(short)),
            Err(RecoveryError::PassphraseTooShort { chars: 7 })
        ));
        let warn = check_passphrase(&SecretValue::new("elevenchars".into())).unwrap();
        assert_eq!(warn, Some(ShortPassphrase { chars: 11 }));
        assert_eq!(
            check_passphrase(&SecretValue::new("twelve chars".into())).unwrap(),
            None
        );
    }

    #[test]
    fn a_passphrase_is_one_line_that_can_be_typed_and_its_length_is_what_is_typed() {
        for (text, why) in [
            ("twelve-chars-ok\n", "holds a line break"),
            ("twelve\nchars-ok", "holds a line break"),
            ("short12      ", "starts or ends with white space"),
            ("            ", "starts or ends with white space"),
            (" leading space here", "starts or ends with white space"),
            ("a tab\tinside it", "holds a tab"),
            ("a bell\u{7}inside it", "holds a control character"),
            ("zero\u{200B}width inside", "holds an invisible character"),
            ("", "is empty"),
        ] {
            let pass = SecretValue::new(text.into());
            let err = check_passphrase(&pass).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("the passphrase {why}; a passphrase is one line that can be typed again"),
                "{text:?}"
            );
            assert!(matches!(
                seal(&bundle(), &SealTo::Passphrase(pass)),
                Err(RecoveryError::PassphraseUntypable(_))
            ));
        }
        // White space inside counts once per run: 7 characters typed, not 12.
        assert!(matches!(
            check_passphrase(&SecretValue::new("short  \u{3000} 1".into())),
            Err(RecoveryError::PassphraseTooShort { chars: 7 })
        ));
        assert_eq!(
            check_passphrase(&SecretValue::new("eleven    char".into())).unwrap(),
            Some(ShortPassphrase { chars: 11 })
        );
        // Opening refuses what no one can type, before any scrypt work.
        let sealed = seal(
            &bundle(),
            &SealTo::Passphrase(SecretValue::new("correct horse battery".into())),
        )
        .unwrap();
        let err = open(
            sealed.as_bytes(),
            &OpenWith::Passphrase(SecretValue::new("correct horse battery\n".into())),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            RecoveryError::PassphraseUntypable("holds a line break")
        ));
        // A short one of the right form opens (a bundle the age command made).
        let short = SecretValue::new("short".into());
        let err = open(sealed.as_bytes(), &OpenWith::Passphrase(short)).unwrap_err();
        assert!(matches!(err, RecoveryError::WrongPassphrase), "{err:?}");
    }

    #[test]
    fn recipients_are_parsed_without_repeating_them() {
        let ssh = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN cio@test";
        assert!(Recipient::parse(ssh, RecipientSource::Flag(1)).is_ok());
        for (text, why) in [
            ("age1notakey", "it starts like an age X25519 key"),
            ("ssh-dss AAAAB3Nza", "it is not an ssh-ed25519 or ssh-rsa"),
            ("AKIAIOSFODNN7EXAMPLE", "a recipient is an age X25519 key"),
            (
                "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ",
                "it is an age identity, a private key: give its recipient, which 'age-keygen -y FILE' prints",
            ),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----",
                "it is a PEM block, such as a private key: give the public key",
            ),
        ] {
            let err = Recipient::parse(text, RecipientSource::Flag(2)).unwrap_err();
            let shown = err.to_string();
            assert!(shown.starts_with("--recipient number 2 is not a recipient cio can seal to: "));
            assert!(shown.contains(why), "{shown}");
            assert!(!shown.contains(text), "{shown}");
        }
        let err = Recipient::parse_file(Path::new("/r.txt"), "# only a comment\n\n").unwrap_err();
        assert_eq!(err.to_string(), "/r.txt holds no recipient");
        let err = Recipient::parse_file(Path::new("/r.txt"), "# c\nbogus\n").unwrap_err();
        assert!(err.to_string().starts_with("line 2 of /r.txt is not"));
    }

    #[test]
    fn identity_files_must_be_private_and_hold_identities() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.txt");
        let id = age::x25519::Identity::generate();
        {
            use age::secrecy::ExposeSecret;
            std::fs::write(
                &path,
                format!("# a comment\n{}\n", id.to_string().expose_secret()),
            )
            .unwrap();
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Identities::load(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "identity file {} may be read by others (mode 644)",
                crate::shown_path(&path)
            )
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(Identities::load(&path).unwrap().0.len(), 1);
        std::fs::write(&path, "AKIAIOSFODNN7EXAMPLE\n").unwrap();
        let err = Identities::load(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{} holds no age or SSH identity", crate::shown_path(&path))
        );
        assert!(!err.to_string().contains("AKIA"));
    }
}
