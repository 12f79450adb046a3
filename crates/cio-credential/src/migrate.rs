//! Moving credentials from one store to another (e.g. from a node's SQLite file into the
//! cluster's etcd), with their whole history.
//!
//! Rules:
//! - every version of every name is copied with its number, action, `restored_from` and
//!   time; each value is opened with the source's key and sealed again for the target, whose
//!   store id is bound into the associated data (a ciphertext cannot simply be copied). The
//!   same key seals the target, so the key file keeps working after the move;
//! - nothing in the target is ever overwritten or lost. For a name the target already holds:
//!   - the same history (every version equal: number, action, origin, time and value) is
//!     left alone, so running a migration twice is harmless;
//!   - a shorter history that is the beginning of the source's (an interrupted migration) is
//!     completed;
//!   - anything else (other values, or versions the source does not have) is refused with
//!     [`Error::MigrationRefused`] ([`Error::MigrationIntoItself`] for the source itself);
//! - everything is checked before anything is written: a refusal writes nothing (not even
//!   the target's id). Only a writer changing the target during the migration, or the
//!   target failing, can stop it half-way; what was copied is then kept, each version whole,
//!   and running the migration again completes it;
//! - a target sealed with another key is refused ([`StoreError::KeyMismatch`]), as is a
//!   target that is the source itself;
//! - the source is only read; removing it afterwards is the administrator's decision.

use serde::Serialize;

use crate::credentials::CredentialStore;
use crate::crypto::{Binding, Key};
use crate::error::{Error, Result};
use crate::secret::SecretValue;
use crate::store::{Identity, Record, Store, StoreError};

/// What a migration did with one name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Migrated {
    pub name: String,
    /// Versions written into the target.
    pub copied: usize,
    /// Versions the target already held, identical.
    pub already_there: usize,
}

/// What a migration did, name by name (sorted by name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MigrationReport {
    pub names: Vec<Migrated>,
}

impl MigrationReport {
    /// How many versions were written into the target in all.
    pub fn copied(&self) -> usize {
        self.names.iter().map(|m| m.copied).sum()
    }
}

/// One source version, opened.
struct Opened {
    version: Record,
    value: Option<SecretValue>,
}

/// The plan for one name: its versions, and how many the target already holds.
struct Plan {
    name: String,
    versions: Vec<Opened>,
    already_there: usize,
}

/// Copies every credential of `source` with its whole history into `target`, sealing each
/// value for `target` with the source's key. See the module rules for what is refused.
pub fn migrate(source: &CredentialStore, target: &dyn Store) -> Result<MigrationReport> {
    let Some(source_id) = source.store().identity(false)? else {
        return Ok(MigrationReport::default());
    };
    let all = source.store().all_versions()?;
    if all.is_empty() {
        return Ok(MigrationReport::default());
    }
    let key = source.opening_key(&source_id)?;
    let target_id = target.identity(false)?;
    if let Some(t) = &target_id {
        if t.store_id == source_id.store_id {
            return Err(Error::MigrationIntoItself(target.location()));
        }
        if let Some(fp) = t
            .key_fingerprint
            .as_ref()
            .filter(|fp| *fp != key.fingerprint())
        {
            return Err(StoreError::KeyMismatch {
                location: target.location(),
                key_fingerprint: key.fingerprint().to_string(),
                store_fingerprint: fp.clone(),
            }
            .into());
        }
    }

    let mut plans: Vec<Plan> = Vec::new();
    for version in all {
        let value = open(key, &source_id, &version)?;
        match plans.last_mut() {
            Some(plan) if plan.name == version.name => {
                plan.versions.push(Opened { version, value })
            }
            _ => plans.push(Plan {
                name: version.name.clone(),
                versions: vec![Opened { version, value }],
                already_there: 0,
            }),
        }
    }
    for plan in &mut plans {
        check_numbering(plan)?;
        if let Some(t) = &target_id {
            plan.already_there = already_there(plan, key, t, target)?;
        }
    }

    let target_id = target.identity(true)?.ok_or_else(|| StoreError::Unusable {
        location: target.location(),
        action: "created",
        detail: "it did not record an id".into(),
    })?;
    let mut report = MigrationReport::default();
    for plan in &plans {
        let mut copied = 0;
        for opened in &plan.versions[plan.already_there..] {
            let v = &opened.version;
            let sealed = opened.value.as_ref().map(|value| {
                key.seal(
                    &Binding {
                        store_id: &target_id.store_id,
                        name: &v.name,
                        version: v.version,
                    },
                    value,
                )
            });
            let record = Record {
                sealed,
                ..v.clone()
            };
            match target.append(v.version - 1, &record, key.fingerprint()) {
                Ok(()) => {}
                Err(StoreError::Conflict { .. }) => {
                    return Err(Error::MigrationRefused {
                        name: plan.name.clone(),
                        reason: format!(
                            "another writer changed it in {} during the migration (the versions copied so far are kept)",
                            target.location()
                        ),
                    });
                }
                Err(e) => return Err(e.into()),
            }
            copied += 1;
        }
        report.names.push(Migrated {
            name: plan.name.clone(),
            copied,
            already_there: plan.already_there,
        });
    }
    Ok(report)
}

fn open(key: &Key, identity: &Identity, v: &Record) -> Result<Option<SecretValue>> {
    let Some(sealed) = &v.sealed else {
        return Ok(None);
    };
    let binding = Binding {
        store_id: &identity.store_id,
        name: &v.name,
        version: v.version,
    };
    Ok(Some(key.open(&binding, sealed)?))
}

/// The source's versions of a name must be 1, 2, ... n (as every store writes them).
fn check_numbering(plan: &Plan) -> Result<()> {
    for (i, opened) in plan.versions.iter().enumerate() {
        if opened.version.version != i as u64 + 1 {
            return Err(Error::MigrationRefused {
                name: plan.name.clone(),
                reason: format!(
                    "its versions in the source are not numbered 1 to {} (version {} is at place {})",
                    plan.versions.len(),
                    opened.version.version,
                    i + 1
                ),
            });
        }
    }
    Ok(())
}

/// How many of the plan's versions the target already holds, identical; refuses a target
/// history that is not the beginning of the source's.
fn already_there(
    plan: &Plan,
    key: &Key,
    target_id: &Identity,
    target: &dyn Store,
) -> Result<usize> {
    let existing = target.history(&plan.name)?;
    let refuse = |reason: String| Error::MigrationRefused {
        name: plan.name.clone(),
        reason,
    };
    if existing.len() > plan.versions.len() {
        return Err(refuse(format!(
            "{} already holds {} versions of it, more than the source's {}",
            target.location(),
            existing.len(),
            plan.versions.len()
        )));
    }
    for (theirs, ours) in existing.iter().zip(&plan.versions) {
        let mine = &ours.version;
        let same_record = theirs.version == mine.version
            && theirs.action == mine.action
            && theirs.restored_from == mine.restored_from
            && theirs.written_at_ms == mine.written_at_ms;
        let their_value = open(key, target_id, theirs)?;
        let same_value = match (&their_value, &ours.value) {
            (Some(a), Some(b)) => a.ct_eq(b),
            (None, None) => true,
            _ => false,
        };
        if !(same_record && same_value) {
            return Err(refuse(format!(
                "{} already holds a different version {} of it",
                target.location(),
                theirs.version
            )));
        }
    }
    Ok(existing.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::CredentialName;
    use crate::store::sqlite::SqliteStore;

    fn name(s: &str) -> CredentialName {
        s.parse().unwrap()
    }

    fn v(s: &str) -> SecretValue {
        SecretValue::new(s.to_string())
    }

    #[test]
    fn sqlite_to_sqlite_copies_history_resumes_and_refuses_divergence() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        let source = CredentialStore::new(
            Box::new(SqliteStore::new(dir.path().join("a.db"))),
            key.clone(),
        );
        let n = name("cio_minio_secret_key");
        source.put(n, &v("first-secret")).unwrap();
        source.put(n, &v("second-secret")).unwrap();
        source.remove(n).unwrap();
        source.restore(n, Some(1)).unwrap();
        source
            .put(name("cio_minio_access_key"), &v("minio"))
            .unwrap();

        let target_path = dir.path().join("b.db");
        let report = migrate(&source, &SqliteStore::new(target_path.clone())).unwrap();
        assert_eq!(report.copied(), 5);
        let target =
            CredentialStore::new(Box::new(SqliteStore::new(target_path.clone())), key.clone());
        assert_eq!(target.history(n).unwrap().len(), 4);
        let again = migrate(&source, &SqliteStore::new(target_path.clone())).unwrap();
        assert_eq!(again.copied(), 0, "a second run copies nothing");
        assert_eq!(again.names[1].already_there, 4);

        // The target is behind (as after an interrupted migration): the rest is copied.
        source.put(n, &v("third-secret")).unwrap();
        let more = migrate(&source, &SqliteStore::new(target_path.clone())).unwrap();
        assert_eq!(more.copied(), 1, "only the new version is copied");
        assert_eq!(
            target.get(n).unwrap().unwrap().value.expose(),
            "third-secret"
        );
        let history = target.history(n).unwrap();
        assert_eq!(history[3].restored_from, Some(1));
        assert_eq!(history[3].value.as_ref().unwrap().expose(), "first-secret");
        assert!(history[2].value.is_none());

        // The target diverges: refused, and nothing is written.
        target.put(n, &v("only-in-target")).unwrap();
        source.put(n, &v("only-in-source")).unwrap();
        let err = migrate(&source, &SqliteStore::new(target_path.clone())).unwrap_err();
        assert!(matches!(err, Error::MigrationRefused { .. }), "{err:?}");
        assert_eq!(
            target.get(n).unwrap().unwrap().value.expose(),
            "only-in-target"
        );

        // The source itself is refused.
        let err = migrate(&source, &SqliteStore::new(dir.path().join("a.db"))).unwrap_err();
        assert!(matches!(err, Error::MigrationIntoItself(_)), "{err:?}");
    }

    #[test]
    fn a_target_sealed_with_another_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let source = CredentialStore::new(
            Box::new(SqliteStore::new(dir.path().join("a.db"))),
            dir.path().join("key-a"),
        );
        source
            .put(name("cio_minio_access_key"), &v("minio"))
            .unwrap();
        let other = CredentialStore::new(
            Box::new(SqliteStore::new(dir.path().join("b.db"))),
            dir.path().join("key-b"),
        );
        other
            .put(name("cio_minio_access_key"), &v("other"))
            .unwrap();
        let err = migrate(&source, &SqliteStore::new(dir.path().join("b.db"))).unwrap_err();
        assert!(
            matches!(err, Error::Store(StoreError::KeyMismatch { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn an_empty_source_copies_nothing_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let source = CredentialStore::new(
            Box::new(SqliteStore::new(dir.path().join("a.db"))),
            dir.path().join("key"),
        );
        let report = migrate(&source, &SqliteStore::new(dir.path().join("b.db"))).unwrap();
        assert_eq!(report, MigrationReport::default());
        assert!(!dir.path().join("b.db").exists());
    }
}
