//! The library's one error type.
//!
//! Rules, for every variant:
//! - kind: [`ErrorKind`] says which exit code the binary gives (2 usage, 1 failed, 3 the store
//!   or key cannot be used);
//! - guidance: [`Error::hint`] says what to do next, in one line;
//! - context: the message names the credential, file or store concerned, and never a value.

use std::path::PathBuf;

use crate::catalog::{CredentialName, RuleViolation, SetId, UnknownName};
use crate::credentials::{Absence, RekeyError};
use crate::crypto::{DoesNotOpen, KeyError};
use crate::integrity::Damage;
use crate::recovery::error::RecoveryError;
use crate::rotate::RotateError;
use crate::store::{SpecError, StoreError};

/// Which exit code an error maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Exit 2: the command line is wrong.
    Usage,
    /// Exit 1: the operation or a validation failed.
    Failed,
    /// Exit 3: the store or key cannot be used.
    Unusable,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    UnknownName(#[from] UnknownName),
    #[error("{name}: {violation}")]
    InvalidValue {
        name: CredentialName,
        violation: RuleViolation,
    },
    #[error("{name} does not exist")]
    NotFound { name: CredentialName },
    /// `name` holds no value, and the store told why ([`crate::CredentialStore::absent`]).
    #[error("{name} {}", match .why {
        Absence::Removed => "is already removed",
        Absence::Purged => "was purged: every version of it was destroyed, so it cannot be brought back",
        Absence::NeverWritten => "does not exist: this store has never held it",
        Absence::PurgedOrNeverWritten => "does not exist: it was purged or never created (this store's change log cannot tell which)",
    })]
    Absent { name: CredentialName, why: Absence },
    #[error("{name} has no version {version}")]
    NoSuchVersion { name: CredentialName, version: u64 },
    /// `log --acknowledge` of a log whose break is in the credentials, not in the log: they
    /// were put back from an earlier copy, and accepting it would hide changes they lack.
    #[error("the change log cannot be acknowledged: {broken}")]
    LogNotAcknowledgeable { broken: crate::audit::Broken },
    /// `removal`: the version asked for, when it is a removal (which holds no value).
    #[error("{name} {}", match .removal {
        Some(version) => format!("version {version} is its removal and holds no value to bring back"),
        None => "has no earlier value to bring back".to_string(),
    })]
    NothingToRestore {
        name: CredentialName,
        removal: Option<u64>,
    },
    #[error("the {set} set is incomplete: missing {}", list_names(.missing))]
    IncompleteSet {
        set: SetId,
        missing: Vec<CredentialName>,
    },
    #[error("{0}")]
    NoSuchSet(String),
    /// Several complete sets match where a command uses one (`exec`, `env`); the text lists
    /// them and the flags that choose each. A usage error: the command line must choose.
    #[error("{0}")]
    SeveralSets(String),
    /// The store key (the key file) is missing, unreadable or not the store's.
    #[error(transparent)]
    StoreKey(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    DoesNotOpen(#[from] DoesNotOpen),
    /// One credential's records were altered or damaged; the others are unaffected.
    #[error("{name} cannot be trusted: {damage}")]
    Damaged { name: String, damage: Damage },
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot migrate {name}: {reason}")]
    MigrationRefused { name: String, reason: String },
    #[error("cannot migrate: {0} is the source store itself")]
    MigrationIntoItself(String),
    /// Another writer changed the target while the migration wrote to it: `names` are the
    /// credentials whose newest version it changed (empty: it changed something else, such
    /// as the change log or the notes).
    #[error(
        "cannot migrate: another writer changed {} during the migration (the versions copied so far are kept)",
        if .names.is_empty() { .location.clone() } else { format!("{} in {}", .names.join(", "), .location) }
    )]
    MigrationRaced {
        location: String,
        names: Vec<String>,
    },
    /// The target is sealed with a key the key file lacks: the migration opens the source
    /// and seals the copy with keys of the one key file.
    /// `fingerprints`: the target's key, then the source's (boxed: errors stay small).
    #[error(
        "cannot migrate: {location} is sealed with key {}, which key file {} does not hold (it opens the source with key {})",
        .fingerprints.0,
        crate::shown_path(.key_file),
        .fingerprints.1
    )]
    MigrationKeyMissing {
        location: String,
        key_file: PathBuf,
        fingerprints: Box<(String, String)>,
    },
    /// A migration that failed after it made the target or copied versions into it:
    /// `copied` versions stay, in a store it `made` or not.
    #[error("{}; {}", store_unchanged(source), migration_left(.location, *.made, *.copied))]
    MigrationStopped {
        location: String,
        made: bool,
        copied: usize,
        source: Box<Error>,
    },
    #[error(transparent)]
    Recovery(#[from] RecoveryError),
    #[error("CIO_ETCD_USER is set but CIO_ETCD_PASSWORD is not")]
    EtcdPasswordMissing,
    /// `CIO_ETCD_PASSWORD=` (set, empty): etcd logs no user in with an empty password.
    #[error("CIO_ETCD_USER is set but CIO_ETCD_PASSWORD is empty")]
    EtcdPasswordEmpty,
    /// `CIO_ETCD_USER` holds a ':', as etcdctl's `--user user:password` does: likely a
    /// password, so it is neither sent nor repeated.
    #[error(
        "the user in CIO_ETCD_USER holds a ':' (etcdctl's user:password form); cio takes the user name alone there"
    )]
    EtcdUserWithPassword,
    #[error("cannot read the etcd password: {0}")]
    EtcdPasswordUnreadable(std::io::Error),
    #[error(transparent)]
    Rotate(#[from] RotateError),
    #[error(transparent)]
    Rekey(#[from] RekeyError),
    /// A plain `rekey` that added its new key to the key file and made it current, and then
    /// could not re-seal the store: the store is as it was, and the old key, which the key
    /// file keeps, still opens it.
    #[error(
        "the store was not re-sealed ({}), and is as it was; key file {} holds the new key already, as current, beside the old one, which still opens the store",
        store_unchanged(source),
        crate::shown_path(.path)
    )]
    RekeyUnfinished { path: PathBuf, source: Box<Error> },
}

/// What can go wrong with the node configuration file (`cio.toml`). Every message names the
/// file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file CIO_CONFIG names does not exist (without CIO_CONFIG none is needed).
    #[error("configuration file {path} does not exist", path = crate::shown_path(.path))]
    Missing { path: PathBuf },
    #[error("configuration file {path} cannot be read: {source}", path = crate::shown_path(.path))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path} is not valid: {detail}", path = crate::shown_path(.path))]
    Invalid { path: PathBuf, detail: String },
    /// Not a regular file of at most 64 KiB (a FIFO, a device, a folder, a huge file).
    #[error("configuration file {path} cannot be read: {detail}", path = crate::shown_path(.path))]
    NotAFile { path: PathBuf, detail: String },
    /// Others may change it, or a folder on its way ([`crate::files::check_trusted_path`]).
    #[error(transparent)]
    Untrusted(crate::files::Untrusted),
    /// A path setting that starts with `~`: only a shell makes that a home folder, so cio
    /// would use a folder named `~` under the current one. `setting` names where it is set.
    #[error(
        "{setting} starts with ~, which only a shell turns into a home folder (a systemd unit, a quoted value or cio.toml does not)"
    )]
    HomeFolder { setting: String },
    /// A setting that must be text (the store location, which may be an etcd URL; the etcd
    /// user and password) holds bytes that are not UTF-8. Read lossily it would name another
    /// file (U+FFFD for each such byte), so it is refused. `setting` names where it is set.
    #[error("{setting} is not UTF-8 text, and cio does not guess which file or login it means")]
    NotUtf8 { setting: String },
    /// TLS files for etcd are set while the store is `etcd://`, which speaks plain HTTP: the
    /// files would be ignored and everything sent in clear, the etcd password too. `settings`
    /// names the ones set.
    #[error(
        "the etcd TLS files are set ({settings}), but the cluster store is etcd://, which sends everything in clear (the etcd password too) and uses no TLS file"
    )]
    TlsFilesWithPlainEtcd { settings: String },
}

impl ConfigError {
    /// What the administrator should do next.
    pub fn hint(&self) -> String {
        match self {
            ConfigError::Missing { .. } => "check the path CIO_CONFIG names, or unset it: cio then reads its default file (/etc/cio/cio.toml as root) if there is one, and needs none".to_string(),
            ConfigError::Io { path, .. } => format!(
                "make {} readable by this user, or point CIO_CONFIG at another file",
                crate::shown_path(path)
            ),
            ConfigError::NotAFile { path, .. } => format!(
                "make {} a regular text file of at most 64 KiB, or point CIO_CONFIG at another file",
                crate::shown_path(path)
            ),
            ConfigError::Untrusted(untrusted) => untrusted.hint(),
            ConfigError::HomeFolder { .. } => {
                "give the whole path, e.g. /root/credential.key instead of ~/credential.key"
                    .to_string()
            }
            ConfigError::NotUtf8 { setting } if setting.starts_with("CIO_ETCD_") => format!("set {setting} again as UTF-8 text: etcd keeps users and passwords as UTF-8, so these bytes cannot log in"),
            ConfigError::NotUtf8 { .. } => "give it as UTF-8 text: rename the store file or a folder on its way, or point at it through a link whose path is UTF-8 (the key file and etcd TLS files may have any name)".to_string(),
            ConfigError::TlsFilesWithPlainEtcd { .. } => "name the store etcds://... to speak TLS with these files, or unset them (cio.toml's etcd_cacert, etcd_cert, etcd_key; CIO_ETCD_CACERT, CIO_ETCD_CERT, CIO_ETCD_KEY) for a cluster that takes plain connections".to_string(),
            ConfigError::Invalid { path, .. } => format!(
                "fix {}: it may hold only store, key_file, etcd_cacert, etcd_cert and etcd_key (TOML strings), recovery_recipients (a list of strings) and max_key_age_days (a number of days)",
                crate::shown_path(path)
            ),
        }
    }
}

/// Names as a comma-separated list, for messages.
pub(crate) fn list_names(names: &[CredentialName]) -> String {
    names
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::UnknownName(_)
            | Error::Spec(_)
            | Error::Config(_)
            | Error::EtcdUserWithPassword
            | Error::EtcdPasswordMissing
            | Error::EtcdPasswordEmpty
            | Error::SeveralSets(_) => ErrorKind::Usage,
            Error::InvalidValue { .. }
            | Error::NotFound { .. }
            | Error::Absent { .. }
            | Error::NoSuchVersion { .. }
            | Error::LogNotAcknowledgeable { .. }
            | Error::NothingToRestore { .. }
            | Error::IncompleteSet { .. }
            | Error::NoSuchSet(_)
            | Error::MigrationRefused { .. }
            | Error::MigrationIntoItself(_)
            | Error::MigrationRaced { .. }
            | Error::EtcdPasswordUnreadable(_) => ErrorKind::Failed,
            Error::Store(StoreError::Conflict { .. } | StoreError::Compacted { .. }) => {
                ErrorKind::Failed
            }
            Error::Recovery(e) if e.is_usage() => ErrorKind::Usage,
            Error::Recovery(_) => ErrorKind::Failed,
            Error::Rotate(e) if e.is_usage() => ErrorKind::Usage,
            Error::Rotate(_) | Error::Rekey(_) => ErrorKind::Failed,
            Error::RekeyUnfinished { source, .. } | Error::MigrationStopped { source, .. } => {
                source.kind()
            }
            Error::MigrationKeyMissing { .. } => ErrorKind::Unusable,
            Error::StoreKey(_)
            | Error::Store(_)
            | Error::DoesNotOpen(_)
            | Error::Damaged { .. } => ErrorKind::Unusable,
        }
    }

    /// What the administrator should do next.
    pub fn hint(&self) -> String {
        match self {
            Error::UnknownName(UnknownName {
                suggestion: Some(s),
                ..
            }) => format!("did you mean {s}? 'cio credential create --help' lists the 24 names"),
            Error::UnknownName(_) => {
                "the name comes first, as in 'cio credential create CREDENTIALNAME [VALUE]'; 'cio credential create --help' lists the 24 names".to_string()
            }
            Error::InvalidValue { name, violation } => violation.hint(*name),
            Error::NotFound { .. } => {
                "'cio credential list' shows what exists; 'cio credential restore NAME' brings back a removed one".to_string()
            }
            Error::Absent { name, why } => match why {
                Absence::Removed => format!(
                    "'cio credential restore {name}' brings it back ('cio credential history {name}' lists its versions)"
                ),
                Absence::Purged => format!(
                    "create it again with 'cio credential create {name}'; 'cio credential log' shows who purged it and when"
                ),
                Absence::NeverWritten => format!(
                    "create it with 'cio credential create {name}'; 'cio credential list' shows what exists"
                ),
                Absence::PurgedOrNeverWritten => format!(
                    "either way nothing brings it back: create it with 'cio credential create {name}'; 'cio credential list' shows what exists"
                ),
            },
            Error::LogNotAcknowledgeable { broken } => match broken.problem {
                crate::audit::Problem::Unanchored => format!(
                    "nothing was changed; {}; or put back a whole copy of the store taken after the log's newest entry",
                    crate::audit::UNANCHORED_WAY_OUT
                ),
                _ => "nothing was changed; put back a whole copy of the store taken after the log's newest entry, its credentials and its log together ('cio credential log' lists the changes the credentials lack)".into(),
            },
            Error::NoSuchVersion { name, .. } | Error::NothingToRestore { name, .. } => {
                format!("'cio credential history {name}' lists the versions that can be restored")
            }
            Error::IncompleteSet { missing, .. } => format!(
                "create the missing credentials first, e.g. cio credential create {}",
                missing.first().map(ToString::to_string).unwrap_or_default()
            ),
            Error::SeveralSets(_) => {
                "add the flags of the set to use; 'cio credential list' shows each set and what it holds".to_string()
            }
            Error::NoSuchSet(_) => {
                "create the set's four credentials ('cio credential create --help' lists them), or name another set with --provider aws|minio and --alternate".to_string()
            }
            Error::StoreKey(e) => e.hint(),
            Error::Store(e) => e.hint(),
            Error::Spec(e) => e.hint(),
            Error::Config(e) => e.hint(),
            Error::MigrationRefused { .. } => {
                "compare both stores with 'cio credential history NAME'; purge a name the target holds differently there, or migrate into an empty store. Running the migration again completes an interrupted one".to_string()
            }
            Error::MigrationRaced { location, .. } => format!(
                "run the migration again when nothing else writes to {location}: it keeps what was copied and completes the rest"
            ),
            Error::MigrationKeyMissing { key_file, .. } => format!(
                "the copy is sealed with the target's key, so one key file must hold the source's key and the target's: join them (cat {} TARGET-KEY-FILE > both.key; chmod 600 both.key) and run the migration with --key-file both.key (or CIO_KEY_FILE=both.key); or migrate into a new, empty store, which is sealed with the source's key",
                crate::shown_path(key_file)
            ),
            Error::MigrationStopped { location, made, source, .. } => format!(
                "{}; a migration run again keeps what was copied and completes the rest{}",
                source.hint(),
                if *made {
                    format!("; or delete {location}, which this migration made, to start over")
                } else {
                    String::new()
                }
            ),
            Error::MigrationIntoItself(_) => {
                "name the store to copy from with --store (e.g. --store /var/lib/cio/credentials.db) and the cluster store with --to".to_string()
            }
            Error::Recovery(e) => e.hint(),
            Error::EtcdUserWithPassword => "set CIO_ETCD_USER to the etcd user name alone, and put the password in CIO_ETCD_PASSWORD or give it at the prompt (run the command on a terminal); nothing was sent to etcd".into(),
            Error::EtcdPasswordMissing => {
                "export CIO_ETCD_PASSWORD with the etcd user's password too, or run the command on a terminal to be asked for it; nothing was sent to etcd".to_string()
            }
            Error::EtcdPasswordEmpty => {
                "put the etcd user's password in CIO_ETCD_PASSWORD, or unset CIO_ETCD_PASSWORD and run the command on a terminal to be asked for it; nothing was sent to etcd".to_string()
            }
            Error::EtcdPasswordUnreadable(_) => {
                "set CIO_ETCD_PASSWORD, or run the command on a terminal".to_string()
            }
            Error::Damaged { name, .. } => format!(
                "the other credentials are not affected; copy the whole store back from a backup, or destroy {name} and create it again: cio credential remove --purge {name}"
            ),
            Error::Rotate(e) => e.hint(),
            Error::Rekey(e) => e.hint(),
            Error::RekeyUnfinished { source, .. } => format!(
                "{}; 'cio credential rekey' run again finishes the rotation",
                source.hint()
            ),
            Error::DoesNotOpen(e) => format!(
                "restore the store from a backup, or create {} again",
                e.name
            ),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a stopped migration left in its target.
fn migration_left(location: &str, made: bool, copied: usize) -> String {
    match (made, copied) {
        (true, 0) => format!(
            "the migration made {location}, a new store with its id and no credential, which stays"
        ),
        (made, copied) => format!(
            "{copied} version{} {} copied into {location}{} before it stopped and stay; until the migration is run to its end, every other command refuses that store (a migration into it did not finish)",
            if copied == 1 { "" } else { "s" },
            if copied == 1 { "was" } else { "were" },
            if made {
                ", a new store this migration made,"
            } else {
                ""
            }
        ),
    }
}

/// Why a re-seal failed, without the "nothing was changed" its error ends with: a
/// [`Error::RekeyUnfinished`] says what did change.
fn store_unchanged(source: &Error) -> String {
    let text = source.to_string();
    text.strip_suffix("; nothing was changed")
        .unwrap_or(&text)
        .to_string()
}
