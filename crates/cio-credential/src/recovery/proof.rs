//! Proving an escrow object is its repository's own.
//!
//! An escrow object is sealed to the recovery recipient, which is public (it is in
//! `cio.toml`): anyone who may write to the bucket can put a bundle there. Naming the
//! repository ([`super::escrow::check_origin`]) proves nothing, since the URL is public too.
//! What proves it is a repository password that opens the repository the object sits beside:
//! a planter without the repository's master key cannot add a restic key file for a
//! password of theirs.
//!
//! Rules:
//! - every set the bundle holds must carry a repository password
//!   ([`EscrowError::NoPassword`]), and that password must open the repository at the URL
//!   the object was read from ([`EscrowError::PasswordRefused`] when the repository says no,
//!   and when the password opens a key file whose master key does not open the repository's
//!   config: a planter can copy in a key file of a repository of their own, never damage);
//! - the repository is asked with the bundle's own keys (its region and CA certificate) first;
//!   when they cannot ask (a planted bundle holds keys of its own choosing), it is asked again
//!   with the keys that just read the object, which work;
//! - a repository that cannot be asked at all, or no repository there, proves nothing:
//!   refused ([`EscrowError::Unproven`]) unless forced, since a genuine object is then
//!   refused too (a key that may only read the object, a TLS server validate cannot speak)
//!   and the administrator may have checked it with restic. A refused password or a set
//!   without one is never forced through: such a bundle cannot restore from that
//!   repository whoever wrote it.

use std::time::Duration;

use super::bundle::Bundle;
use super::error::EscrowError;
use super::escrow::{BucketKeys, location};
use crate::catalog::{Field, SetId};
use crate::rotate::guard::{Found, PASSWORD_REFUSED, Refusal, found};
use crate::secret::SecretValue;
use crate::sets::SetValues;
use crate::validate::{Options, Step, validate_set};

/// The longest one question to the repository may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// A set of the bundle taken unproven (`force`): its repository could not be asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unproven {
    pub set: SetId,
    /// Why it could not be asked (never a value).
    pub why: String,
}

/// Checks that each set of `bundle`, read from the escrow object beside `repo_url` with
/// `reader`, carries a password that opens that repository (see the module rules). Returns
/// the sets taken unproven with `force`.
pub fn prove(
    bundle: &Bundle,
    repo_url: &str,
    reader: &BucketKeys<'_>,
    force: bool,
) -> Result<Vec<Unproven>, EscrowError> {
    let location = location(repo_url);
    let mut unproven = Vec::new();
    for set in bundle.sets() {
        let own = bundled_set(bundle, set, repo_url);
        if own.backup_password.is_none() {
            return Err(EscrowError::NoPassword { location, set });
        }
        let mut answer = opens(&own);
        if let Found::Unknown(_) = answer {
            answer = opens(&with_reader(own, reader));
        }
        match answer {
            Found::Yes => {}
            Found::No(_) => return Err(EscrowError::PasswordRefused { location, set }),
            Found::Unknown(why) if force => unproven.push(Unproven { set, why }),
            Found::Unknown(why) => return Err(EscrowError::Unproven { location, set, why }),
        }
    }
    Ok(unproven)
}

/// Checks, before the stored values of a primary set are sealed beside its repository,
/// that their password opens that repository: a bundle holding a password the repository
/// refuses restores nothing (and an import `--from-repository` refuses it), yet it would
/// replace the bundle there. A repository that cannot be asked does not stop the write: the
/// write itself then says what is wrong, or the repository is not made yet.
pub(crate) fn check_stored(values: &SetValues) -> Result<(), EscrowError> {
    match opens(values) {
        Found::No(code) => Err(EscrowError::StoredPasswordRefused {
            refusal: Refusal::of(code),
            location: values
                .backup_repo
                .as_ref()
                .map_or_else(String::new, |repo| location(repo.expose())),
            set: values.set,
        }),
        Found::Yes | Found::Unknown(_) => Ok(()),
    }
}

/// The bundle's newest values of `set`, with the repository URL the object was read from
/// (which [`super::escrow::check_origin`] found the bundle names).
fn bundled_set(bundle: &Bundle, set: SetId, repo_url: &str) -> SetValues {
    let mut values = SetValues::empty(set);
    for credential in bundle.credentials.iter().filter(|c| c.name.set() == set) {
        if let Some(value) = credential.latest().and_then(|v| v.value.as_ref()) {
            values.set_field(
                credential.name.field,
                SecretValue::new(value.expose().to_string()),
            );
        }
    }
    values.set_field(Field::BackupRepo, SecretValue::new(repo_url.to_string()));
    values
}

/// `values` with the reader's keys, region and CA certificate in place of the bundle's.
fn with_reader(mut values: SetValues, reader: &BucketKeys<'_>) -> SetValues {
    values.access_key = Some(SecretValue::new(reader.access_key.expose().to_string()));
    values.secret_key = Some(SecretValue::new(reader.secret_key.expose().to_string()));
    values.region = reader.region.map(|r| SecretValue::new(r.to_string()));
    values.cacert = reader.cacert.map(|c| SecretValue::new(c.to_string()));
    values
}

/// Whether the set's password opens its repository, as validate (restic's search) asks it.
/// A password whose key file opens but whose master key does not open the repository's
/// config (`foreign_key`: a key file of another repository, copied in by whoever wrote
/// the bucket) does not open it: restic cannot use it there either.
fn opens(values: &SetValues) -> Found {
    let opts = Options {
        timeout: ASK_TIMEOUT,
        ..Options::from_env()
    };
    let report = validate_set(values, &opts);
    found(&report, Step::Password, PASSWORD_REFUSED)
}
