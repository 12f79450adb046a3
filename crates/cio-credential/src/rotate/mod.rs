//! Rotation: changing a repository password in step with the repository, so that a rotation
//! never leaves the backups unable to open it.
//!
//! Rules (a password rotation, [`PasswordRotation`]):
//! - only a complete primary set is rotated: the alternate set is restore-only (its
//!   repository belongs to another cluster);
//! - cio drives the real restic (`restic key list --json`, `key add`, `key remove`) rather
//!   than writing restic's key files itself: see `docs/DESIGN-NOTES.md`, "Rotation";
//! - the order makes every moment safe. (1) restic names the key the stored password opens;
//!   (2) the new password and that key's id are staged, sealed, in the store; (3) restic adds
//!   a key for the new password; (4) restic proves the new password opens the repository and
//!   names its key; (5) the new password becomes the stored one (the old one stays in the
//!   history); (6) restic removes the old key (unless asked to keep it); (7) the staged record
//!   is removed. Until (5) the stored password is the old one and its key is untouched; from
//!   (5) on, the stored password is the new one, proven in (4). Killed anywhere, the stored
//!   password opens the repository;
//! - between (5) and (6) the set's recovery bundle is refreshed (an [`EscrowRefresh`] the caller
//!   gives: the escrow object beside the repository): while the old key is there, the old
//!   bundle still opens the repository, so a refresh that fails keeps the old key
//!   ([`Problem::EscrowNotRefreshed`]) and the next run refreshes, then removes it. A bundle
//!   in the bucket never holds a password the repository no longer has;
//! - a run that finds a staged rotation finishes it rather than starting another: it asks
//!   restic which of (3) to (6) already happened and does the rest; when the new key was
//!   never added, it starts again from (1) with the staged password;
//! - one rotation at a time on a node, the restic a killed rotation left running included
//!   ([`node_lock`]); one at a time in the store: step (2) is a compare-and-set on the
//!   staged record (it stages only if the record is still as the rotation read it, absent
//!   for a new one), so of two rotations started at once on nodes sharing the store, one
//!   proceeds and the other is refused before restic learns its password; step (7) removes
//!   only the record this rotation staged (or took over);
//! - a key is removed only when it is known to be the old password's: the key restic says
//!   the old password opened, or the only other key there is. With several other keys and
//!   none named, every key is kept and the report says so ([`OldKey::Unidentified`]).

mod age;
pub(crate) mod guard;
mod keys;
mod node_lock;
mod password;
mod pending;
mod restic_cli;

#[cfg(test)]
mod live_tests;

use serde::Serialize;

use crate::catalog::{CredentialName, Field, Warning};
use crate::secret::SecretValue;

pub use age::{DEFAULT_MAX_KEY_AGE_DAYS, age_days, warn_old_keys};
pub use guard::{
    PasswordChange, Refusal, check_password_change, check_password_import, check_password_restore,
    stored_password_is_stale,
};
pub use keys::{KeysRotated, rotate_access_key};
pub use password::PasswordRotation;

/// How long a generated password is, in random bytes (it is written as base64url: 43
/// characters, 256 bits).
const GENERATED_BYTES: usize = 32;

/// A strong random password: 32 random bytes as base64url without padding.
pub fn generate_password() -> SecretValue {
    use base64::Engine;
    let mut bytes = zeroize::Zeroizing::new([0u8; GENERATED_BYTES]);
    getrandom::fill(bytes.as_mut_slice())
        .expect("the operating system's random source (getrandom) is always available on Linux");
    SecretValue::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_slice()))
}

/// Where a rotation is, for progress reports and for what a failure left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Another rotation (or the restic a killed one started) runs on this node: waiting.
    Waiting,
    /// Checking the name, the set and the new password; nothing changed yet.
    Checking,
    /// Asking restic which key the stored password opens; nothing changed yet.
    Identifying,
    /// The new password is staged; restic adds its key.
    Adding,
    /// restic opens the repository with the new password.
    Verifying,
    /// The new password becomes the stored one.
    Storing,
    /// The new password is stored; the set's recovery bundle is refreshed.
    Escrowing,
    /// The new password is stored; restic removes the old key.
    RemovingOldKey,
    /// The new password is stored; the staged record is removed.
    Finishing,
}

impl Stage {
    /// What a rotation stopped at this stage left, for a hint.
    fn left_behind(self, name: CredentialName) -> String {
        match self {
            Stage::Waiting | Stage::Checking | Stage::Identifying => "nothing was changed".into(),
            Stage::Adding | Stage::Verifying | Stage::Storing => format!(
                "{name} still holds the old password, which still opens the repository; run 'cio credential rotate {name}' again to finish the rotation"
            ),
            Stage::Escrowing => format!(
                "{name} holds the new password, which opens the repository, and the old password's key is kept, so the bundle in the bucket still opens it too; run 'cio credential rotate {name}' again to refresh the bundle and remove the old key"
            ),
            Stage::RemovingOldKey | Stage::Finishing => format!(
                "{name} holds the new password, which opens the repository; run 'cio credential rotate {name}' again to remove the old key"
            ),
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Waiting => "waiting for another rotation on this node to end",
            Stage::Checking => "checking the set and the new password",
            Stage::Identifying => "asking restic which key the stored password opens",
            Stage::Adding => "adding a restic key for the new password",
            Stage::Verifying => "opening the repository with the new password",
            Stage::Storing => "storing the new password",
            Stage::Escrowing => "refreshing the set's recovery bundle",
            Stage::RemovingOldKey => "removing the old password's key",
            Stage::Finishing => "finishing",
        })
    }
}

/// What became of the old password's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum OldKey {
    /// restic removed it.
    Removed { id: String },
    /// Kept, as asked (`--keep-old-key`).
    Kept { id: String },
    /// It was already gone (an interrupted run removed it).
    AlreadyGone { id: String },
    /// restic named no key for the old password and the repository has several other keys:
    /// all are kept.
    Unidentified { other_keys: usize },
    /// restic named no key for the old password, and the new password's key is the only one.
    NoneLeft,
}

/// What a finished password rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordRotated {
    pub name: CredentialName,
    /// The version of `name` that holds the new password.
    pub version: u64,
    /// restic's id of the new password's key.
    pub new_key: String,
    /// This run added that key; `false`: the interrupted run it finished had added it.
    pub new_key_added_now: bool,
    pub old_key: OldKey,
    /// This run finished a rotation an earlier run started (and did not start one).
    pub resumed: bool,
    /// What the value rules say about the new password.
    pub warnings: Vec<Warning>,
    /// Why the set's recovery bundle was not refreshed, when no key was removed (so the
    /// earlier bundle still opens the repository): for a warning.
    pub escrow_not_refreshed: Option<String>,
}

/// Refreshes the rotated set's recovery bundle, between storing the new password and
/// removing the old key: `Ok(())` when it was refreshed or none is kept (no recovery
/// recipients), else why not (never a value).
pub type EscrowRefresh<'e> = &'e mut dyn FnMut() -> Result<(), String>;

/// A rotation that cannot go on, with the stage it stopped at. Never holds a value.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct RotateError {
    pub name: CredentialName,
    pub stage: Stage,
    pub problem: Problem,
}

/// What stopped a rotation.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error(
        "only a repository password (cio_aws_backup_password, cio_minio_backup_password) is rotated by name"
    )]
    NotAPassword,
    #[error(
        "the alternate set is restore-only: its repository belongs to another cluster, whose keys cio does not change"
    )]
    Alternate,
    #[error("no new password was given")]
    NoNewPassword,
    #[error("the new password is the one already stored")]
    SamePassword,
    /// White space at either end, a tab, a line break or an invisible character: what only
    /// `create --allow-whitespace` or `--allow-any-character` keeps. `restic key add
    /// --new-password-file` trims white space from either end of the file it reads, so
    /// rotate takes none of them (and has no such flag to name).
    #[error(
        "the new password holds white space, a line break or an invisible character ({violation}); rotate takes none: restic's key add trims white space from either end of the password it reads"
    )]
    NotForKeyAdd {
        violation: crate::catalog::RuleViolation,
    },
    #[error("the new access key and secret key are the ones already stored")]
    SameKeys,
    #[error("the new key pair does not pass the live check ({code}): {detail}")]
    NewKeysRefused { code: &'static str, detail: String },
    /// A new password given while an interrupted rotation, started at `started_ms`
    /// (milliseconds since the Unix epoch), is not finished, and it is not that rotation's.
    #[error(
        "the rotation started at {} was interrupted and is not finished yet, and it has another new password",
        crate::shown::shown_time(*started_ms)
    )]
    Interrupted { started_ms: i64 },
    #[error("restic is not installed (there is no 'restic' on PATH)")]
    ResticMissing,
    #[error("restic finds no repository config at the set's URL")]
    NoRepository,
    #[error("the repository cannot be reached: {0}")]
    Unreachable(String),
    #[error("the stored password opens none of the repository's keys")]
    StoredPasswordWrong,
    #[error("restic added a key, but the new password does not open the repository")]
    NewPasswordDoesNotOpen,
    #[error("the repository is locked by another restic ({0})")]
    Locked(String),
    #[error("restic {command} failed: {detail}")]
    Restic {
        command: &'static str,
        detail: String,
    },
    #[error(
        "the set's repository exists and answers: a new password stored without changing the repository's would break every backup"
    )]
    BarePasswordChange { alternate: bool },
    #[error("the new password {refusal}")]
    ForcedPasswordDoesNotOpen { refusal: Refusal },
    #[error(
        "that version's password {refusal}{}: restoring it would break every backup",
        refusal.because(" (a rotation removed its key)")
    )]
    RestoredPasswordDoesNotOpen { refusal: Refusal },
    #[error(
        "the bundle's password {refusal}{}: importing it would break every {}",
        refusal.because(" (its password was changed after the bundle was made)"),
        if *.alternate { "restore from it (the alternate set is for restores)" } else { "backup" }
    )]
    ImportedPasswordDoesNotOpen {
        /// Why the repository refuses it.
        refusal: Refusal,
        /// The store held no password for the set before: `import --force` stores it anyway.
        first: bool,
        /// The set is an alternate one: it never backs up, it restores.
        alternate: bool,
        /// The bundle is the escrow object beside the repository (`--from-repository`), so
        /// that object is the stale one.
        escrow: bool,
    },
    #[error(
        "the set's recovery bundle could not be refreshed ({0}), so the old password's key is kept: a bundle in the bucket holds the old password"
    )]
    EscrowNotRefreshed(String),
    #[error("the record of the interrupted rotation cannot be read: {0}")]
    PendingUnreadable(String),
    #[error(
        "another rotation of this password was started and finished while this one was starting"
    )]
    RotatedMeanwhile,
    #[error("a rotation of this password is in progress on node {host}")]
    InProgress { host: String, minutes_left: i64 },
    #[error("the node's rotation lock {path} cannot be taken: {source}", path = crate::shown_path(.path))]
    Lock {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl RotateError {
    /// Whether the command line was wrong (exit 2) rather than the rotation failing (exit 1).
    pub fn is_usage(&self) -> bool {
        matches!(self.problem, Problem::NotAPassword | Problem::NoNewPassword)
    }

    /// What the administrator should do next, and what the rotation left behind.
    pub fn hint(&self) -> String {
        let name = self.name;
        let fix = match &self.problem {
            Problem::NotAPassword if matches!(name.field, Field::AccessKey | Field::SecretKey) => format!(
                "rotate {name}'s pair with 'cio credential rotate {} --access-key', or name a cio_{{aws|minio}}_backup_password",
                name.set().options()
            ),
            Problem::NotAPassword => {
                "name a cio_{aws|minio}_backup_password, or rotate an access key pair with 'cio credential rotate --provider P --access-key'".to_string()
            }
            Problem::Alternate => format!(
                "rotate the password on the cluster that owns the repository, then set it here with 'cio credential create {name} --force'"
            ),
            Problem::NoNewPassword => {
                "type the new password when asked, pipe it on standard input, or use --generate".into()
            }
            Problem::SamePassword => {
                "choose another new password, or let cio make one with --generate".into()
            }
            Problem::NotForKeyAdd { .. } => {
                "choose a new password without white space at either end, tabs, line breaks or invisible characters, or let cio make one with --generate".into()
            }
            Problem::SameKeys => {
                "give the new pair: first the access key, then the secret key".into()
            }
            Problem::NewKeysRefused { .. } => {
                "create the new key on the server (with the old key's bucket policy), check what was typed, then run the command again".into()
            }
            Problem::Interrupted { .. } => format!(
                "run 'cio credential rotate {name}' without a new password to finish the interrupted rotation first"
            ),
            Problem::ResticMissing => "install restic (apt-get install restic) on this node".into(),
            Problem::Unreachable(_) => format!(
                "'cio credential validate {name}' says what is wrong with the endpoint; run the rotation again once it answers"
            ),
            Problem::NoRepository => format!(
                "run 'cio credential validate {name}': it tells a repository not created yet (which needs no rotation: create it with '{} restic init') from one that lost its config (restore the config from a backup of the bucket; never init over it), or a URL that points elsewhere",
                exec(name)
            ),
            Problem::StoredPasswordWrong => format!(
                "'cio credential validate {name}' says why; if the repository's password was changed elsewhere, store it with 'cio credential create {name} --force'"
            ),
            Problem::NewPasswordDoesNotOpen => {
                format!("check the repository with '{}'", name.set().keys_command())
            }
            Problem::Locked(_) => format!(
                "wait for the backup or other restic command to end; a lock left by a restic that no longer runs is removed by '{} restic unlock'",
                exec(name)
            ),
            Problem::Restic { .. } => {
                "'cio credential validate' checks the repository and the keys".into()
            }
            Problem::BarePasswordChange { alternate: false } => format!(
                "run 'cio credential rotate {name}' to change the repository's password with it; if it was already changed elsewhere, add --force"
            ),
            Problem::BarePasswordChange { alternate: true } => {
                "the repository belongs to another cluster: once that cluster has rotated its password, store the new one here with --force".to_string()
            }
            Problem::ForcedPasswordDoesNotOpen { .. } => {
                "--force stores only the password the repository has now; check the new password".into()
            }
            Problem::RestoredPasswordDoesNotOpen { .. } => format!(
                "restore a version whose password the repository still has ('cio credential history {name}'), or change the password with 'cio credential rotate {name}'; if the repository's password was changed back elsewhere, add --force"
            ),
            Problem::ImportedPasswordDoesNotOpen { first, escrow, .. } => {
                let fresher = if *escrow {
                    "this escrow object is older than the repository's last password change (its refresh failed): import a bundle made after that change from a file"
                } else {
                    "import a fresher bundle: the escrow bundle beside the repository, which every rotation refreshes ('cio credential import --from-repository URL --identity FILE'), or one made after the repository's last password change"
                };
                if *first {
                    format!("{fresher}; or add --force to store this password anyway")
                } else {
                    format!(
                        "{fresher}; or see the repository's keys with '{}'",
                        name.set().keys_command()
                    )
                }
            }
            Problem::EscrowNotRefreshed(_) => format!(
                "fix what the refresh needs (recovery_recipients in cio.toml, the bucket and its keys; 'cio credential export --to-repository' shows it), then run 'cio credential rotate {name}' again"
            ),
            Problem::PendingUnreadable(_) => format!(
                "use the cio version that started the rotation, or check the repository's keys with '{}'",
                name.set().keys_command()
            ),
            Problem::Lock { path, .. } => format!(
                "check that {}'s folder exists and is writable by this user",
                crate::shown_path(path)
            ),
            Problem::RotatedMeanwhile => format!(
                "'cio credential history {name}' shows the password it stored; run 'cio credential rotate {name}' again only to change it once more"
            ),
            Problem::InProgress { host, minutes_left } => format!(
                "let it finish there; if it was stopped, run 'cio credential rotate {name}' on {host} to finish it, or here in {minutes_left} minutes"
            ),
        };
        format!("{fix}; {}", self.stage.left_behind(name))
    }
}

/// `cio credential exec` with the options that name `name`'s set, up to the `--` before
/// the command: a bare `exec` picks the one complete set, which may be another (the
/// primary, or the other provider's) or none (a node with the alternate set alone).
fn exec(name: CredentialName) -> String {
    format!("cio credential exec {} --", name.set().options())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Role;

    #[test]
    fn generated_passwords_are_long_random_and_plain() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.expose().len(), 43);
        assert!(!a.ct_eq(&b));
        assert!(
            a.expose()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    /// Every problem at every stage: what was left behind is said once (the review found
    /// "...; nothing was written; nothing was changed"), and a restic command is run through
    /// an exec that names the set (a bare exec picks the primary set, or none on a node with
    /// the alternate set alone).
    #[test]
    fn hints_say_once_what_was_left_and_name_the_set_to_exec_with() {
        let problems = || {
            vec![
                Problem::NotAPassword,
                Problem::Alternate,
                Problem::NoNewPassword,
                Problem::SamePassword,
                Problem::SameKeys,
                Problem::NewKeysRefused {
                    code: "x",
                    detail: "y".into(),
                },
                Problem::Interrupted { started_ms: 0 },
                Problem::ResticMissing,
                Problem::NoRepository,
                Problem::Unreachable("x".into()),
                Problem::StoredPasswordWrong,
                Problem::NewPasswordDoesNotOpen,
                Problem::Locked("x".into()),
                Problem::Restic {
                    command: "key add",
                    detail: "x".into(),
                },
                Problem::BarePasswordChange { alternate: false },
                Problem::BarePasswordChange { alternate: true },
                Problem::ForcedPasswordDoesNotOpen {
                    refusal: Refusal::ForeignKey,
                },
                Problem::RestoredPasswordDoesNotOpen {
                    refusal: Refusal::NoKey,
                },
                Problem::ImportedPasswordDoesNotOpen {
                    first: true,
                    alternate: false,
                    escrow: false,
                    refusal: Refusal::NoKey,
                },
                Problem::ImportedPasswordDoesNotOpen {
                    first: false,
                    alternate: true,
                    escrow: true,
                    refusal: Refusal::NoKey,
                },
                Problem::EscrowNotRefreshed("x".into()),
                Problem::PendingUnreadable("x".into()),
                Problem::RotatedMeanwhile,
                Problem::InProgress {
                    host: "h".into(),
                    minutes_left: 3,
                },
            ]
        };
        let stages = [
            Stage::Waiting,
            Stage::Checking,
            Stage::Identifying,
            Stage::Adding,
            Stage::Verifying,
            Stage::Storing,
            Stage::Escrowing,
            Stage::RemovingOldKey,
            Stage::Finishing,
        ];
        for name in ["cio_minio_backup_password", "cio_aws_alt_backup_password"] {
            let name: CredentialName = name.parse().unwrap();
            for stage in stages {
                for problem in problems() {
                    let hint = RotateError {
                        name,
                        stage,
                        problem,
                    }
                    .hint();
                    assert!(hint.matches("nothing was").count() <= 1, "{hint}");
                    assert!(!hint.contains("exec -- "), "{hint}");
                    if name.role == Role::Alternate {
                        assert!(
                            !hint.contains("cio credential exec")
                                || hint.contains("exec --provider aws --alternate --"),
                            "{hint}"
                        );
                    }
                }
            }
        }
        let alternate: CredentialName = "cio_minio_alt_backup_password".parse().unwrap();
        assert_eq!(
            RotateError {
                name: alternate,
                stage: Stage::Checking,
                problem: Problem::ImportedPasswordDoesNotOpen {
                    first: false,
                    alternate: true,
                    escrow: false,
                    refusal: Refusal::NoKey,
                },
            }
            .hint(),
            "import a fresher bundle: the escrow bundle beside the repository, which every rotation refreshes ('cio credential import --from-repository URL --identity FILE'), or one made after the repository's last password change; or see the repository's keys with 'cio credential exec --provider minio --alternate -- restic list keys'; nothing was changed"
        );
    }

    #[test]
    fn hints_say_what_was_left_behind() {
        let name: CredentialName = "cio_minio_backup_password".parse().unwrap();
        let err = |stage, problem| RotateError {
            name,
            stage,
            problem,
        };
        assert_eq!(
            err(Stage::Identifying, Problem::NoRepository).hint(),
            "run 'cio credential validate cio_minio_backup_password': it tells a repository not created yet (which needs no rotation: create it with 'cio credential exec --provider minio -- restic init') from one that lost its config (restore the config from a backup of the bucket; never init over it), or a URL that points elsewhere; nothing was changed"
        );
        assert!(
            err(Stage::Adding, Problem::ResticMissing)
                .hint()
                .ends_with("still holds the old password, which still opens the repository; run 'cio credential rotate cio_minio_backup_password' again to finish the rotation")
        );
        let e = err(Stage::RemovingOldKey, Problem::Locked("PID 7".into()));
        assert_eq!(
            e.to_string(),
            "cio_minio_backup_password: the repository is locked by another restic (PID 7)"
        );
        assert!(e.hint().ends_with(
            "run 'cio credential rotate cio_minio_backup_password' again to remove the old key"
        ));
    }
}
