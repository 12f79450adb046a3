//! Catching a bare password change: `create cio_X_backup_password NEW` stores a password the
//! repository does not know, and every backup after it fails "wrong password".
//!
//! Rules:
//! - only a change is checked: a first password, or the same password again, is not (a
//!   password removed and created again is checked against the removed one), unless forced;
//! - the set's repository is asked live (`validate`, with a short deadline) with the stored
//!   values: a repository that exists and answers refuses the change
//!   ([`Problem::BarePasswordChange`], whose hint names `rotate`) unless forced;
//! - a password "does not open" the repository when no key opens with it, or when the key it
//!   opens is another repository's (its master key does not open the config: a key file
//!   copied in, [`PASSWORD_REFUSED`]); restic fails with either;
//! - forced, the new password must open that repository
//!   ([`Problem::ForcedPasswordDoesNotOpen`] otherwise): `--force` is for a repository whose
//!   password was already changed elsewhere, not for a typo;
//! - a repository that cannot be asked (unreachable, refused keys, ...) only warns
//!   ([`PasswordChange::Unchecked`]), and one that does not exist yet needs no check (only
//!   `repo_not_initialized` says so: restic's files without a `config`, `config_missing`,
//!   are a damaged repository, which cannot be asked and so warns);
//! - `restore` of an earlier password is a change too: the restored password must open the
//!   repository (a rotation removed the old password's key) unless forced.
//! - an import is checked with the set as the import leaves it (the stored values with the
//!   bundle's over them), once that set is complete: a changed password as above, and a first
//!   password too (a bundle older than the last rotation, imported into a fresh store, is the
//!   rescue that would otherwise fail at its first restore); only the first may be forced
//!   through (`import --force`: nothing in the store opens the repository either);
//! - an import whose password is dated before the stored one's may still replace it when the
//!   repository says the stored password is the stale one: it refuses the stored password
//!   and opens with the bundle's ([`stored_password_is_stale`]). The dates cannot tell that
//!   alone: a store's date is when *this* store wrote the value, and a value imported from
//!   an old bundle is dated by the import.

use std::time::Duration;

use crate::catalog::{CredentialName, Field, Role};
use crate::credentials::CredentialStore;
use crate::error::Result;
use crate::secret::SecretValue;
use crate::sets::{Purpose, SetFilter, SetValues};
use crate::validate::{FOREIGN_KEY, Options, SetReport, Status, Step, validate_set};

use super::{Problem, RotateError, Stage};

/// The longest the live check of a password change may take: `create` must stay quick when
/// the repository is down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// What the check of a password change found, when it does not refuse it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordChange {
    /// Nothing to check: not a password, no stored password yet, the same password, an
    /// incomplete set, or no repository at the URL yet.
    NotChecked,
    /// Forced, and the new password opens the repository.
    Verified,
    /// The repository could not be asked; why (never a value).
    Unchecked(String),
    /// Forced (`import --force` of a first password): the repository refused the password
    /// (why), and it is stored anyway.
    DoesNotOpen(Refusal),
}

/// Checks storing `new` as `name` (see the module rules); `force` is `create --force`.
pub fn check_password_change(
    store: &CredentialStore,
    name: CredentialName,
    new: &SecretValue,
    force: bool,
) -> Result<PasswordChange> {
    let Some(mut values) = to_check(store, name, new, force) else {
        return Ok(PasswordChange::NotChecked);
    };
    if force {
        values.set_field(
            Field::BackupPassword,
            SecretValue::new(new.expose().to_string()),
        );
    }
    let report = ask(&values);
    match (
        found(&report, Step::Repository, &["repo_not_initialized"]),
        found(&report, Step::Password, PASSWORD_REFUSED),
    ) {
        (Found::Yes, Found::Yes) if force => Ok(PasswordChange::Verified),
        (Found::Yes, Found::No(code)) if force => Err(refused(
            name,
            Problem::ForcedPasswordDoesNotOpen {
                refusal: Refusal::of(code),
            },
        )),
        (Found::Yes, Found::Unknown(why)) if force => Ok(PasswordChange::Unchecked(why)),
        (Found::Yes, _) => Err(refused(
            name,
            Problem::BarePasswordChange {
                alternate: name.role == Role::Alternate,
            },
        )),
        (Found::No(_), _) => Ok(PasswordChange::NotChecked),
        (Found::Unknown(why), _) => Ok(PasswordChange::Unchecked(why)),
    }
}

/// Checks `restore` of `name` bringing back the password `restored`: the repository must
/// still have a key for it ([`Problem::RestoredPasswordDoesNotOpen`] otherwise: a rotation
/// removed it), asked as for a change; a repository that cannot be asked only warns.
pub fn check_password_restore(
    store: &CredentialStore,
    name: CredentialName,
    restored: &SecretValue,
) -> Result<PasswordChange> {
    must_open(store, name, restored, |refusal| {
        Problem::RestoredPasswordDoesNotOpen { refusal }
    })
}

/// Checks an import that stores `imported` as `name`, with the set as the import leaves it:
/// the stored values with `bundled` (the bundle's other values of the same set) over them.
/// The repository must have a key for the password ([`Problem::ImportedPasswordDoesNotOpen`]
/// otherwise: a bundle older than the last rotation would break every backup, and its escrow
/// refresh would then spread the broken password). A first password (the store held none
/// for the set) is checked too; `force` stores it anyway ([`PasswordChange::DoesNotOpen`]).
/// A repository that cannot be asked only warns, one that does not exist yet needs no
/// check, and an incomplete set cannot be asked. `escrow`: the bundle is the escrow object
/// beside the repository (the refusal's hint then sends to another bundle).
pub fn check_password_import(
    store: &CredentialStore,
    name: CredentialName,
    imported: &SecretValue,
    bundled: &[(Field, &SecretValue)],
    force: bool,
    escrow: bool,
) -> Result<PasswordChange> {
    let Some(ImportCheck {
        values,
        previous: stored,
    }) = import_to_check(store, name, imported, bundled)
    else {
        return Ok(PasswordChange::NotChecked);
    };
    let first = stored.is_none();
    let report = ask(&values);
    match (
        found(&report, Step::Repository, &["repo_not_initialized"]),
        found(&report, Step::Password, PASSWORD_REFUSED),
    ) {
        (Found::Yes, Found::Yes) => Ok(PasswordChange::Verified),
        (Found::Yes, Found::No(code)) if first && force => {
            Ok(PasswordChange::DoesNotOpen(Refusal::of(code)))
        }
        (Found::Yes, Found::No(code)) => Err(refused(
            name,
            Problem::ImportedPasswordDoesNotOpen {
                first,
                alternate: name.role == Role::Alternate,
                escrow,
                refusal: Refusal::of(code),
            },
        )),
        (Found::Yes, Found::Unknown(why)) | (Found::Unknown(why), _) => {
            Ok(PasswordChange::Unchecked(why))
        }
        (Found::No(_), _) => Ok(PasswordChange::NotChecked),
    }
}

/// Whether the repository says that the stored password of `name` is stale and `imported`
/// is not: with the set as the import leaves it (the stored values, `bundled` over them),
/// the repository refuses the stored password (a certain `wrong_password`) and opens with
/// `imported`. Anything less certain (the repository cannot be asked, both passwords open
/// it, the set is incomplete) is `false`: the stored value is then kept as the newer.
pub fn stored_password_is_stale(
    store: &CredentialStore,
    name: CredentialName,
    imported: &SecretValue,
    bundled: &[(Field, &SecretValue)],
) -> bool {
    let Some(ImportCheck {
        mut values,
        previous: Some(stored),
    }) = import_to_check(store, name, imported, bundled)
    else {
        return false;
    };
    let opens = |values: &SetValues| {
        let report = ask(values);
        (
            found(&report, Step::Repository, &["repo_not_initialized"]),
            found(&report, Step::Password, PASSWORD_REFUSED),
        )
    };
    // The bundle's first: a repository that refuses it settles it with one question.
    if !matches!(opens(&values), (Found::Yes, Found::Yes)) {
        return false;
    }
    values.set_field(Field::BackupPassword, stored);
    matches!(opens(&values), (Found::Yes, Found::No(_)))
}

/// What an import's check asks: the set as the import leaves it, and the password the store
/// holds (or last held) for it, `None` for a first password.
struct ImportCheck {
    values: SetValues,
    previous: Option<SecretValue>,
}

/// The set of `name` as an import that stores `imported` leaves it, when that is something to
/// check: a password that differs from the stored one (or is the first), and a set complete
/// enough to reach its repository.
fn import_to_check(
    store: &CredentialStore,
    name: CredentialName,
    imported: &SecretValue,
    bundled: &[(Field, &SecretValue)],
) -> Option<ImportCheck> {
    if name.field != Field::BackupPassword {
        return None;
    }
    let mut values = stored_set(store, name).unwrap_or_else(|| SetValues::empty(name.set()));
    // A removed password is still the one the repository wants.
    let previous = values.backup_password.take().or_else(|| {
        store
            .history(name)
            .ok()
            .and_then(|h| h.into_iter().rev().find_map(|v| v.value))
    });
    if previous.as_ref().is_some_and(|old| old.ct_eq(imported)) {
        return None;
    }
    for (field, value) in bundled {
        values.set_field(*field, SecretValue::new(value.expose().to_string()));
    }
    values.set_field(
        Field::BackupPassword,
        SecretValue::new(imported.expose().to_string()),
    );
    let complete = [Field::BackupRepo, Field::AccessKey, Field::SecretKey]
        .into_iter()
        .all(|f| values.get(f).is_some());
    complete.then_some(ImportCheck { values, previous })
}

/// Whether `password`, stored as `name` in place of a different one, opens the set's
/// repository; `problem` of why not when it does not.
fn must_open(
    store: &CredentialStore,
    name: CredentialName,
    password: &SecretValue,
    problem: impl FnOnce(Refusal) -> Problem,
) -> Result<PasswordChange> {
    let Some(mut values) = to_check(store, name, password, false) else {
        return Ok(PasswordChange::NotChecked);
    };
    values.set_field(
        Field::BackupPassword,
        SecretValue::new(password.expose().to_string()),
    );
    let report = ask(&values);
    match (
        found(&report, Step::Repository, &["repo_not_initialized"]),
        found(&report, Step::Password, PASSWORD_REFUSED),
    ) {
        (Found::Yes, Found::Yes) => Ok(PasswordChange::Verified),
        (Found::Yes, Found::No(code)) => Err(refused(name, problem(Refusal::of(code)))),
        (Found::Yes, Found::Unknown(why)) | (Found::Unknown(why), _) => {
            Ok(PasswordChange::Unchecked(why))
        }
        (Found::No(_), _) => Ok(PasswordChange::NotChecked),
    }
}

/// The stored values of `name`'s set, for a check; `None` when it cannot be read or holds
/// nothing.
fn stored_set(store: &CredentialStore, name: CredentialName) -> Option<SetValues> {
    let filter = SetFilter {
        name: None,
        provider: Some(name.provider),
        role: Some(name.role),
    };
    store
        .sets(&filter, Purpose::Check)
        .ok()
        .and_then(|mut sets| sets.pop())
}

/// The stored set of `name` when storing `new` as `name` is a change to check: a password,
/// a stored one that differs (or any, `forced`: a forced password must open the repository
/// whatever is stored), and a set complete enough to reach its repository.
fn to_check(
    store: &CredentialStore,
    name: CredentialName,
    new: &SecretValue,
    forced: bool,
) -> Option<SetValues> {
    if name.field != Field::BackupPassword {
        return None;
    }
    let mut values = stored_set(store, name)?;
    // A removed password is still the one the repository wants: remove and create again
    // is a change like any other.
    if values.backup_password.is_none()
        && let Some(previous) = store
            .history(name)
            .ok()
            .and_then(|h| h.into_iter().rev().find_map(|v| v.value))
    {
        values.set_field(Field::BackupPassword, previous);
    }
    let unchanged = values
        .backup_password
        .as_ref()
        .is_none_or(|old| old.ct_eq(new));
    let complete = [Field::BackupRepo, Field::AccessKey, Field::SecretKey]
        .into_iter()
        .all(|f| values.get(f).is_some());
    ((forced || !unchanged) && complete).then_some(values)
}

fn refused(name: CredentialName, problem: Problem) -> crate::error::Error {
    RotateError {
        name,
        stage: Stage::Checking,
        problem,
    }
    .into()
}

/// The live report of `values`, with the short deadline.
fn ask(values: &SetValues) -> SetReport {
    // The proxies restic would see from here.
    let opts = Options {
        timeout: CHECK_TIMEOUT,
        ..Options::from_env()
    };
    validate_set(values, &opts)
}

/// What a report says of one step.
pub(crate) enum Found {
    Yes,
    /// The step said no for certain (its check has one of the codes `no`): that code.
    No(&'static str),
    /// The step could not tell (it was skipped, or failed otherwise): why.
    Unknown(String),
}

/// Why the repository refuses a password for certain, and the one wording of it that every
/// refusal (create --force, restore, import, escrow) uses: a password whose key file opens
/// but whose master key does not open the config does open a key file, so it is never
/// said to "not open" the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No key file opens with it (`wrong_password`).
    NoKey,
    /// A key file opens with it, but that key's master key does not open the repository's
    /// config (`foreign_key`: another repository's key file, or a damaged config).
    ForeignKey,
}

impl Refusal {
    /// The refusal a password step's code (one of [`PASSWORD_REFUSED`]) means.
    pub(crate) fn of(code: &str) -> Refusal {
        if code == FOREIGN_KEY {
            Refusal::ForeignKey
        } else {
            Refusal::NoKey
        }
    }

    /// `why`, the likely reason no key opens, for [`Refusal::NoKey`]; nothing for a
    /// foreign key, whose wording says why.
    pub(crate) fn because(self, why: &'static str) -> &'static str {
        match self {
            Refusal::NoKey => why,
            Refusal::ForeignKey => "",
        }
    }
}

/// What the password does, after its subject ("the new password ...").
impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::NoKey => "does not open the set's repository",
            Refusal::ForeignKey => {
                "opens a key file in the set's repository whose master key does not open its config (another repository's key file, or a damaged config), so restic cannot use it there"
            }
        })
    }
}

/// The codes of a password step that refuses the password for certain: no key opens with it
/// (`wrong_password`), or the key it opens is another repository's (`foreign_key`: its
/// master key does not open the config, and restic fails there too).
pub(crate) const PASSWORD_REFUSED: &[&str] = &["wrong_password", FOREIGN_KEY];

/// What `report` says of `step`: `no` holds the codes of its certain refusal.
pub(crate) fn found(report: &SetReport, step: Step, no: &[&str]) -> Found {
    match report.check(step) {
        Some(c) if c.status == Status::Ok => Found::Yes,
        Some(c) if no.contains(&c.code) => Found::No(c.code),
        _ => Found::Unknown(
            report
                .checks
                .iter()
                .find(|c| c.status == Status::Fail)
                .map_or_else(|| "it was not checked".to_string(), |c| c.detail.clone()),
        ),
    }
}
