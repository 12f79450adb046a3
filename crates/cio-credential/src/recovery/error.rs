//! What can go wrong making, storing or opening a recovery bundle, and where a recipient was
//! given. Depends on the catalog (and `replace`'s error) only, so the library's one [`crate::Error`] can hold these
//! without a cycle (recovery's other modules use the credentials and the store).

use std::path::PathBuf;

use crate::catalog::{CredentialName, RuleViolation, SetId};
use crate::replace::NotReplaceable;

use super::escrow::ReadWith;
use crate::rotate::Refusal;

/// Passphrases shorter than this many characters are refused.
pub const MIN_PASSPHRASE: usize = 8;
/// Passphrases shorter than this many characters are accepted with a warning.
pub const GOOD_PASSPHRASE: usize = 12;
/// The largest scrypt work factor accepted when opening (about 16 times the work of the
/// `age` command's 2^18): a bundle demanding more is refused rather than run for minutes.
pub const MAX_SCRYPT_LOG_N: u8 = 22;

/// Where a recipient was given, for messages (never the recipient itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientSource {
    /// The n-th `--recipient` (from 1).
    Flag(usize),
    /// A line of a recipients file (from 1).
    FileLine(std::path::PathBuf, usize),
    /// The n-th entry of `recovery_recipients` in the node configuration (from 1).
    Config(usize),
}

impl std::fmt::Display for RecipientSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecipientSource::Flag(n) => write!(f, "--recipient number {n}"),
            RecipientSource::FileLine(path, n) => {
                write!(f, "line {n} of {}", crate::shown_path(path))
            }
            RecipientSource::Config(n) => write!(f, "recovery_recipients entry {n}"),
        }
    }
}

/// What can go wrong storing or reading an escrow object. Messages name the object (a
/// repository URL is not secret), never a key.
#[derive(Debug, thiserror::Error)]
pub enum EscrowError {
    #[error("{0}")]
    BadRepository(RuleViolation),
    #[error(
        "an escrow bundle goes beside this cluster's own (primary) repository; the alternate one belongs to another cluster"
    )]
    AlternateSet,
    #[error("no recovery bundle at {location}")]
    Missing { location: String },
    #[error(
        "the bundle at {location} is not that repository's: the URL given is {given}, the bundle's {set} set names {}",
        .theirs.as_deref().unwrap_or("a repository URL cio would not store")
    )]
    OtherRepository {
        location: String,
        set: SetId,
        given: String,
        /// The bundle's repository URL, when it is one cio would store (else not repeated).
        theirs: Option<String>,
    },
    #[error(
        "the bundle at {location} is not that repository's: the bundle's {set} set names no repository"
    )]
    NoRepository { location: String, set: SetId },
    #[error(
        "the bundle at {location} may have been planted or be stale: its {set} set holds no repository password, and only a password that opens the repository proves a bundle is that cluster's"
    )]
    NoPassword { location: String, set: SetId },
    #[error(
        "the bundle at {location} may have been planted or be stale: the repository refuses the password of its {set} set"
    )]
    PasswordRefused { location: String, set: SetId },
    #[error(
        "the bundle at {location} may have been planted or be stale: the repository could not be asked whether the password of its {set} set opens it ({why})"
    )]
    Unproven {
        location: String,
        set: SetId,
        why: String,
    },
    #[error(
        "the {set} set's stored password {refusal}; a bundle of it at {location} could not restore from that repository"
    )]
    StoredPasswordRefused {
        location: String,
        set: SetId,
        refusal: Refusal,
    },
    #[error(
        "the recovery bundle at {location} is sealed to other recipients than this node's recovery_recipients (another cluster's bundle, or one sealed before they changed)"
    )]
    SealedToOthers { location: String, set: SetId },
    #[error(
        "the recovery bundle at {location} does not say whom it is sealed to (an older cio wrote it, or another tool): it may be another cluster's"
    )]
    Unmarked { location: String, set: SetId },
    #[error("{location} refused the keys: {detail}")]
    Denied { location: String, detail: String },
    #[error("{location} refused {with}: {detail}")]
    ImportDenied {
        location: String,
        detail: String,
        with: ReadWith,
    },
    #[error("{location} cannot be {action}: {detail}")]
    Failed {
        location: String,
        action: &'static str,
        detail: String,
    },
}

impl EscrowError {
    /// What the administrator should do next.
    pub fn hint(&self) -> String {
        match self {
            EscrowError::BadRepository(_) => {
                "give the lost cluster's repository URL, as restic takes it: s3:https://HOST/BUCKET[/PREFIX]".into()
            }
            EscrowError::AlternateSet => {
                "leave out --alternate: --to-repository stores the primary sets' bundles".into()
            }
            EscrowError::Missing { .. } => {
                "check the URL is the repository the lost cluster backed up to; a bundle is there only if that cluster ran 'cio credential export --to-repository' or had recovery_recipients set".into()
            }
            EscrowError::OtherRepository { .. } | EscrowError::NoRepository { .. } => {
                "nothing was written; do not trust this object: anyone who may write to the bucket can replace it. Check the URL is the lost cluster's repository as it backed up to (cio compares them as restic reads them), or import the bundle kept off the cluster (the paper one)".into()
            }
            EscrowError::NoPassword { .. } | EscrowError::PasswordRefused { .. } => {
                "nothing was written; do not trust this object: anyone who may write to the bucket can put one there, and one written before the repository's last password change is stale (it cannot restore from it, so --force does not take it). Import the bundle kept off the cluster (the paper one: 'cio credential import FILE'), or check the URL is the lost cluster's repository".into()
            }
            EscrowError::Unproven { .. } => {
                "nothing was written; fix what stopped the check ('cio credential validate' names it; the keys that read the object must also list the repository), or import the bundle kept off the cluster (the paper one: 'cio credential import FILE'); add --force only if you have checked yourself that its password opens the repository (restic cat config)".into()
            }
            EscrowError::StoredPasswordRefused { set, .. } => format!(
                "nothing was written; the bundle there, if any, is as it was. 'cio credential validate {opts}' says why the password is refused; store the password the repository has ('cio credential create {password} --force'), then export again",
                opts = set.options(),
                password = set.name(crate::catalog::Field::BackupPassword),
            ),
            EscrowError::SealedToOthers { set, .. } | EscrowError::Unmarked { set, .. } => {
                format!(
                    "nothing was written there: the bundle is as it was. {}",
                    replace_escrow(*set)
                )
            }
            EscrowError::Denied { .. } => {
                "check the access and secret key: they must be allowed to read (to import) or write (to export) objects in the repository's bucket".into()
            }
            EscrowError::ImportDenied { with, .. } => match with {
                ReadWith::Given => "nothing was written; check the access and secret key given (first line, then second): they must be allowed to read objects in the repository's bucket".into(),
                ReadWith::Stored { set, named: true } => format!(
                    "nothing was written; to read with other keys, leave out --provider and give them on standard input (two lines: access key, secret key) or at the prompt, or name another set's with --provider; or correct the {set} set's keys ('cio credential validate --provider {} --alternate' checks them)",
                    set.provider
                ),
                ReadWith::Stored { set, named: false } => format!(
                    "nothing was written; to read with other keys, add --no-stored-keys and give them on standard input (two lines: access key, secret key) or at the prompt, or name another set's with --provider; or correct the {set} set's keys ('cio credential validate --provider {} --alternate' checks them)",
                    set.provider
                ),
            },
            EscrowError::Failed { .. } => {
                "check that the object storage is reachable from this node (cio credential validate checks the set), then try again".into()
            }
        }
    }
}

/// What replaces an escrow bundle this node did not seal ([`EscrowError::SealedToOthers`],
/// [`EscrowError::Unmarked`]) deliberately, and when not to.
pub fn replace_escrow(set: SetId) -> String {
    format!(
        "If it is this cluster's own and should be replaced, run 'cio credential export --to-repository --force --provider {}'; if it is another cluster's (its set imported here without --as-alternate), it is the only copy of that cluster's set: leave it",
        set.provider
    )
}

/// What can go wrong making, storing or opening a bundle. No message repeats a value, a
/// passphrase, a recipient or a line of a file.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error(
        "the passphrase is {chars} characters; a recovery bundle needs at least {} ({} or more recommended)",
        MIN_PASSPHRASE,
        GOOD_PASSPHRASE
    )]
    PassphraseTooShort { chars: usize },
    #[error("the passphrase {0}; a passphrase is one line that can be typed again")]
    PassphraseUntypable(&'static str),
    #[error("{place} is not a recipient cio can seal to: {why}")]
    UnknownRecipient {
        place: RecipientSource,
        why: &'static str,
    },
    #[error("{} holds no recipient", crate::shown_path(.0))]
    NoRecipientsInFile(PathBuf),
    #[error("recipients file {} cannot be read: {detail}", crate::shown_path(path))]
    RecipientsFileUnreadable { path: PathBuf, detail: String },
    #[error("there is no recipient to seal the bundle to")]
    NothingToSealTo,
    #[error(
        "a bundle is sealed to a passphrase or to recipients, not both (age allows a passphrase only alone)"
    )]
    PassphraseAndRecipients,
    #[error("cannot seal the bundle: {0}")]
    Seal(String),
    #[error("identity file {} cannot be read: {detail}", crate::shown_path(path))]
    IdentityUnreadable { path: PathBuf, detail: String },
    #[error(
        "identity file {} may be read by others (mode {mode:o})",
        crate::shown_path(path)
    )]
    IdentityExposed { path: PathBuf, mode: u32 },
    #[error("{} holds no age or SSH identity", crate::shown_path(.0))]
    NoIdentity(PathBuf),
    #[error("{} is a passphrase-protected SSH key", crate::shown_path(.0))]
    EncryptedSshIdentity(PathBuf),
    #[error("the passphrase does not open this bundle")]
    WrongPassphrase,
    #[error("none of the identities given opens this bundle")]
    WrongIdentity,
    #[error("this bundle is sealed to recipients, not to a passphrase")]
    SealedToRecipients,
    #[error("this bundle is sealed to a passphrase, not to recipients")]
    SealedToPassphrase,
    #[error("the bundle's passphrase work factor 2^{required} is more than cio accepts (2^{max})", max = MAX_SCRYPT_LOG_N)]
    ExcessiveWork { required: u8 },
    #[error("the bundle is damaged or was changed: {0}")]
    Damaged(String),
    #[error("the bundle is cut short: {detail}")]
    CutShort {
        /// An ASCII-armored copy (text), not a binary one.
        armored: bool,
        detail: &'static str,
    },
    #[error("the bundle opens, but what it holds is not a cio recovery bundle")]
    NotABundle,
    #[error("the bundle opens, but holds no credential")]
    EmptyBundle,
    #[error(
        "the bundle opens, but holds no credential to import: the newest version of each is a removal or has no value"
    )]
    NothingToImport,
    #[error("the bundle is format version {0}; this cio reads version 1")]
    UnknownFormatVersion(u32),
    #[error("credential {index} of the bundle has a name this cio does not know")]
    UnknownName { index: usize },
    #[error("{} exists", crate::shown_path(.0))]
    OutputExists(PathBuf),
    #[error("cannot write {}: {detail}", crate::shown_path(path))]
    Output { path: PathBuf, detail: String },
    #[error("{} cannot be replaced: {why}", crate::shown_path(path))]
    OutputNotReplaceable { path: PathBuf, why: NotReplaceable },
    /// `--output` names one of cio's own files (`what`: "key file", "credential store",
    /// ...), which no bundle replaces, `--force` or not.
    #[error(
        "{} is cio's {what}: a bundle never replaces it",
        crate::shown_path(path)
    )]
    OutputIsOwnFile { path: PathBuf, what: &'static str },
    #[error("the imported sets did not pass validation: {failed} of {total} failed")]
    NotValid { failed: usize, total: usize },
    #[error("the store holds newer, different values for {}", names(.0))]
    NewerInStore(Vec<CredentialName>),
    #[error("the bundle holds the {first} and the {second} set; with --as-alternate both would be written to the {} alternate set", .second.provider)]
    TwoSetsOneTarget { first: SetId, second: SetId },
    #[error(transparent)]
    Escrow(#[from] EscrowError),
}

fn names(names: &[CredentialName]) -> String {
    names
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl RecoveryError {
    /// Whether the command line (rather than the bundle or the world) is wrong.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            RecoveryError::UnknownRecipient { .. }
                | RecoveryError::NothingToSealTo
                | RecoveryError::PassphraseAndRecipients
                | RecoveryError::SealedToRecipients
                | RecoveryError::SealedToPassphrase
        )
    }

    /// What the administrator should do next.
    pub fn hint(&self) -> String {
        match self {
            RecoveryError::PassphraseTooShort { .. } => "nothing was written; choose a longer passphrase (a few random words; white space inside counts once) and run the command again".into(),
            RecoveryError::PassphraseUntypable(_) => "nothing was written; type the passphrase at the prompt, or pipe it as one line with at most one newline after it (printf '%s\\n' \"$PASSPHRASE\"), without white space at either end".into(),
            RecoveryError::UnknownRecipient { .. } | RecoveryError::NoRecipientsInFile(_) => {
                "give age X25519 recipients (age1..., made by age-keygen) or ssh-ed25519 / ssh-rsa public keys (the .pub file's line)".into()
            }
            RecoveryError::RecipientsFileUnreadable { path, .. } => format!(
                "nothing was written; check the path given to --recipients-file: {} must exist and this user may read it (one recipient per line, as age -R reads)",
                crate::shown_path(path)
            ),
            RecoveryError::NothingToSealTo => {
                "name recipients with --recipient or --recipients-file, or set recovery_recipients in cio.toml".into()
            }
            RecoveryError::PassphraseAndRecipients => {
                "make two bundles: one with --recipient, one with a passphrase".into()
            }
            RecoveryError::Seal(_) => "nothing was written; run the command again".into(),
            RecoveryError::IdentityUnreadable { path, .. } => format!(
                "check that {} exists and that this user may read it: a file, or a pipe (--identity <(pass show recovery-key))",
                crate::shown_path(path)
            ),
            RecoveryError::IdentityExposed { path, .. } => format!(
                "nothing was read; run 'chmod 600 {}' (as ssh demands of private keys), then try again",
                crate::shown_path(path)
            ),
            RecoveryError::NoIdentity(_) => {
                "give the private key that matches a recipient: an age identity file (AGE-SECRET-KEY-1...) or an unencrypted OpenSSH private key".into()
            }
            RecoveryError::EncryptedSshIdentity(path) => format!(
                "decrypt a private copy (cp {0} /root/rescue-key && ssh-keygen -p -N '' -f /root/rescue-key) and give that, or use an age identity",
                crate::shown_path(path)
            ),
            RecoveryError::WrongPassphrase => {
                "nothing was written; type the passphrase the bundle was made with (a bundle whose header was changed fails the same way)".into()
            }
            RecoveryError::WrongIdentity => {
                "nothing was written; give the identity whose recipient the bundle was sealed to (one named in recovery_recipients)".into()
            }
            RecoveryError::SealedToRecipients => {
                "give the matching private key with --identity FILE".into()
            }
            RecoveryError::SealedToPassphrase => {
                "leave out --identity: you will be asked for the bundle's passphrase".into()
            }
            RecoveryError::ExcessiveWork { .. } => {
                "open it with the age command (age -d) if you trust where it came from".into()
            }
            RecoveryError::Damaged(_) | RecoveryError::NotABundle => {
                "nothing was written; use an intact copy of the bundle (a printed one can be typed in again and checked with --dry-run)".into()
            }
            RecoveryError::CutShort { armored: true, .. } => {
                "nothing was written; copy the whole file again (its last line is -----END AGE ENCRYPTED FILE-----) and import that copy".into()
            }
            RecoveryError::CutShort { armored: false, .. } => {
                "nothing was written; copy the whole file again (as binary: its size must match the original's) and import that copy".into()
            }
            RecoveryError::EmptyBundle | RecoveryError::NothingToImport => {
                "nothing was written; import a bundle 'cio credential export' made on the lost cluster (it holds every complete set)".into()
            }
            RecoveryError::UnknownFormatVersion(_) | RecoveryError::UnknownName { .. } => {
                "nothing was written; import it with the cio version that made it, or a newer one".into()
            }
            RecoveryError::OutputExists(path) => format!(
                "nothing was written; choose another --output, or add --force to replace {}",
                crate::shown_path(path)
            ),
            RecoveryError::Output { .. } => {
                "nothing was written; check the folder exists and this user may write there".into()
            }
            RecoveryError::OutputIsOwnFile { .. } => {
                "nothing was written or changed; give --output a new file's path (or leave it out: standard output)".into()
            }
            RecoveryError::OutputNotReplaceable { .. } => {
                "nothing was written or changed; --force replaces only a regular file: give --output the path of a regular file, or of none yet (or leave --output out: standard output)".into()
            }
            RecoveryError::NotValid { .. } => {
                "nothing was written; the report above names the first failing check of each set. Import without --validate to write the sets anyway".into()
            }
            RecoveryError::NewerInStore(names) => format!(
                "nothing was written; compare with 'cio credential history {}', then add --force to replace them (their values stay in the history)",
                names.first().map(ToString::to_string).unwrap_or_default()
            ),
            RecoveryError::TwoSetsOneTarget { .. } => {
                "nothing was written; import without --as-alternate, or export each set into its own bundle (--provider, --alternate)".into()
            }
            RecoveryError::Escrow(e) => e.hint(),
        }
    }
}
