//! Writing several credentials at once, all or nothing: an import (and later a rotation or
//! a migration) must never leave half a set behind.
//!
//! Rules: every value is checked against the catalog before anything is sealed; the new
//! versions go to the store in one [`Store::append_all`](crate::store::Store::append_all)
//! (one SQLite transaction, one etcd transaction); a write that loses a race with another
//! writer is computed again from a fresh read and retried, as [`CredentialStore::put`] does; earlier
//! versions are kept.

use std::collections::HashMap;

use crate::catalog::{Allow, CredentialName, check_value};
use crate::crypto::Binding;
use crate::error::{Error, Result};
use crate::secret::SecretValue;
use crate::store::{Action, Record, StoreError, now_ms};

use super::{CredentialStore, MAX_RETRIES, Written};

/// One change of a batch: a new value for `name`, or its removal (`value: None`). A name may
/// appear several times: its changes become consecutive versions, in order.
#[derive(Debug, Clone, Copy)]
pub struct Change<'v> {
    pub name: CredentialName,
    pub value: Option<&'v SecretValue>,
}

impl CredentialStore {
    /// Writes every change, or none: values are checked first (a refused value changes
    /// nothing), then all new versions are appended at once. Returns what each change
    /// wrote, in order. Removing a name that holds no value is [`Error::NotFound`].
    pub fn write_all(&self, changes: &[Change<'_>]) -> Result<Vec<Written>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let mut warnings = Vec::with_capacity(changes.len());
        for change in changes {
            warnings.push(match change.value {
                Some(value) => check_value(change.name, value.expose(), Allow::default()).map_err(
                    |violation| Error::InvalidValue {
                        name: change.name,
                        violation,
                    },
                )?,
                None => Vec::new(),
            });
        }
        let (key, identity) = self.sealing_key()?;
        for _ in 0..MAX_RETRIES {
            // Per name: (latest version number, whether it holds a value), as this attempt
            // builds on it.
            // One read of every name's latest record (not one per name).
            let mut heads: HashMap<CredentialName, (u64, bool)> =
                changes.iter().map(|c| (c.name, (0, false))).collect();
            for record in self.store.list_latest()? {
                if let Ok(name) = record.name.parse::<CredentialName>()
                    && let Some(head) = heads.get_mut(&name)
                {
                    *head = (record.version, record.is_live());
                }
            }
            let mut records = Vec::with_capacity(changes.len());
            let mut written = Vec::with_capacity(changes.len());
            for (change, warnings) in changes.iter().zip(&warnings) {
                let head = heads
                    .get_mut(&change.name)
                    .expect("every changed name's head was read just above");
                let (expected, live) = *head;
                let action = match (change.value, live) {
                    (Some(_), true) => Action::Update,
                    (Some(_), false) => Action::Create,
                    (None, true) => Action::Remove,
                    (None, false) => return Err(Error::NotFound { name: change.name }),
                };
                let name = change.name.to_string();
                let version = expected + 1;
                let sealed = change.value.map(|value| {
                    key.seal(
                        &Binding {
                            store_id: &identity.store_id,
                            name: &name,
                            version,
                        },
                        value,
                    )
                });
                records.push((
                    expected,
                    Record {
                        name,
                        version,
                        action,
                        restored_from: None,
                        written_at_ms: now_ms(),
                        sealed,
                    },
                ));
                *head = (version, change.value.is_some());
                written.push(Written {
                    name: change.name,
                    version,
                    action,
                    restored_from: None,
                    warnings: warnings.clone(),
                });
            }
            let batch: Vec<(u64, &Record)> = records.iter().map(|(e, v)| (*e, v)).collect();
            match self.store.append_all(&batch, key.fingerprint()) {
                Ok(()) => return Ok(written),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(self.append_error(e)),
            }
        }
        Err(StoreError::Conflict {
            name: changes[0].name.to_string(),
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    fn name(s: &str) -> CredentialName {
        s.parse().unwrap()
    }

    fn v(s: &str) -> SecretValue {
        SecretValue::new(s.to_string())
    }

    fn set<'v>(name: CredentialName, value: &'v SecretValue) -> Change<'v> {
        Change {
            name,
            value: Some(value),
        }
    }

    #[test]
    fn writes_all_or_nothing_and_keeps_versions() {
        let dir = tempfile::tempdir().unwrap();
        let vault = CredentialStore::new(
            Box::new(SqliteStore::new(dir.path().join("store.db"))),
            dir.path().join("key"),
        );
        let (repo, access) = (name("cio_minio_backup_repo"), name("cio_minio_access_key"));
        vault.put(access, &v("old-access")).unwrap();
        let (r, a1, a2) = (
            v("s3:http://127.0.0.1:9/bucket"),
            v("new-access"),
            v("newest"),
        );
        let written = vault
            .write_all(&[set(repo, &r), set(access, &a1), set(access, &a2)])
            .unwrap();
        let summary: Vec<_> = written.iter().map(|w| (w.version, w.action)).collect();
        assert_eq!(
            summary,
            vec![
                (1, Action::Create),
                (2, Action::Update),
                (3, Action::Update)
            ]
        );
        assert_eq!(vault.get(access).unwrap().unwrap().value.expose(), "newest");
        let history: Vec<_> = vault
            .history(access)
            .unwrap()
            .into_iter()
            .map(|h| h.value.unwrap().expose().to_string())
            .collect();
        assert_eq!(history, ["old-access", "new-access", "newest"]);

        // One refused value: nothing of the batch is written.
        let (good, bad) = (v("another-access"), v("s3:nothing"));
        let err = vault
            .write_all(&[set(access, &good), set(repo, &bad)])
            .unwrap_err();
        assert!(matches!(err, Error::InvalidValue { .. }), "{err}");
        assert_eq!(vault.get(access).unwrap().unwrap().version, 3);

        // A removal of a name without a value: nothing written either.
        let secret = name("cio_minio_secret_key");
        let err = vault
            .write_all(&[
                set(access, &good),
                Change {
                    name: secret,
                    value: None,
                },
            ])
            .unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }));
        assert_eq!(vault.get(access).unwrap().unwrap().version, 3);
    }
}
