//! Rotating a set's access key pair: the new access key and secret key are checked live,
//! then written as one.
//!
//! Rules:
//! - the set must be complete (its repository is where the pair is checked); primary and
//!   alternate sets alike (changing the keys this cluster reads with changes nothing in the
//!   other cluster's repository);
//! - the new pair is checked against the real object storage before anything is written:
//!   endpoint, credentials, bucket and permissions must pass (a primary set's key must also
//!   write and delete a probe object: it backs up; an alternate set's key only reads);
//! - a failed check writes nothing; a passed one writes both names in one operation
//!   ([`CredentialStore::put_key_pair`]), and `restore` of either brings back the pair;
//! - the pair already stored is no rotation.

use std::time::Duration;

use crate::catalog::{Allow, Field, Role, SetId, Warning, check_value};
use crate::credentials::CredentialStore;
use crate::error::{Error, Result};
use crate::secret::SecretValue;
use crate::sets::{Purpose, SetFilter};
use crate::validate::{Options, Status, Step, validate_set};

use super::{Problem, RotateError, Stage};

/// The longest the live check of a new pair may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// What a finished access key rotation wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysRotated {
    pub set: SetId,
    /// The new versions of the access key and the secret key.
    pub versions: [u64; 2],
    /// What passed live: the checks' details, in step order (endpoint to permissions).
    pub checked: Vec<String>,
    /// What the value rules say of the new access key and secret key.
    pub warnings: Vec<Warning>,
}

/// Replaces `set`'s access key and secret key with `access` and `secret`, after checking
/// them live (see the module rules).
pub fn rotate_access_key(
    store: &CredentialStore,
    set: SetId,
    access: &SecretValue,
    secret: &SecretValue,
) -> Result<KeysRotated> {
    let name = set.name(Field::AccessKey);
    let refuse = |problem| -> Error {
        RotateError {
            name,
            stage: Stage::Checking,
            problem,
        }
        .into()
    };
    let filter = SetFilter {
        name: None,
        provider: Some(set.provider),
        role: Some(set.role),
    };
    for (field, value) in [(Field::AccessKey, access), (Field::SecretKey, secret)] {
        let name = set.name(field);
        check_value(name, value.expose(), Allow::default())
            .map_err(|violation| Error::InvalidValue { name, violation })?;
    }
    let mut values = store
        .sets(&filter, Purpose::Use)?
        .pop()
        .expect("select() gives exactly one set for Purpose::Use, or an error");
    let same = |field, new: &SecretValue| values.get(field).is_some_and(|old| old.ct_eq(new));
    if same(Field::AccessKey, access) && same(Field::SecretKey, secret) {
        return Err(refuse(Problem::SameKeys));
    }
    values.set_field(Field::AccessKey, copy(access));
    values.set_field(Field::SecretKey, copy(secret));
    // The proxies restic would see from here.
    let opts = Options {
        timeout: CHECK_TIMEOUT,
        write_check: set.role == Role::Primary,
        new_keys: true,
        ..Options::from_env()
    };
    let report = validate_set(&values, &opts);
    let passed = report
        .check(Step::Permissions)
        .is_some_and(|c| c.status == Status::Ok);
    if !passed {
        let failed = report
            .checks
            .iter()
            .find(|c| c.status == Status::Fail)
            .or_else(|| report.check(Step::Permissions));
        return Err(refuse(Problem::NewKeysRefused {
            code: failed.map_or("skipped", |c| c.code),
            detail: failed.map_or_else(|| "it was not checked".to_string(), |c| c.detail.clone()),
        }));
    }
    let checked = report
        .checks
        .iter()
        .filter(|c| c.step >= Step::Endpoint && c.step <= Step::Permissions)
        .map(|c| c.detail.clone())
        .collect();
    let written = store.put_key_pair(set, access, secret)?;
    Ok(KeysRotated {
        set,
        versions: [written[0].version, written[1].version],
        checked,
        warnings: written.into_iter().flat_map(|w| w.warnings).collect(),
    })
}

fn copy(value: &SecretValue) -> SecretValue {
    SecretValue::new(value.expose().to_string())
}
