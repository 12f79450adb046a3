//! [`CredentialStore::history`] and [`CredentialStore::restore`]: earlier versions, read and
//! brought back as a new version.

use super::{CredentialStore, HistoryEntry, Written};
use crate::catalog::CredentialName;
use crate::error::{Error, Result};
use crate::secret::SecretValue;
use crate::store::{Action, Identity, Record, StoreError};

impl CredentialStore {
    /// Every version of `name`, oldest first, opened.
    pub fn history(&self, name: CredentialName) -> Result<Vec<HistoryEntry>> {
        let Some(verified) = self.verified()? else {
            return Ok(Vec::new());
        };
        verified
            .history(&name.to_string())?
            .iter()
            .map(|v| {
                Ok(HistoryEntry {
                    version: v.version,
                    action: v.action,
                    restored_from: v.restored_from,
                    written_at_ms: v.written_at_ms,
                    value: self.open_version(&verified.identity, v)?,
                })
            })
            .collect()
    }

    /// Brings back the value of `version`, or without one: a removed credential's last value,
    /// or a live credential's previous value.
    pub fn restore(&self, name: CredentialName, version: Option<u64>) -> Result<Written> {
        let Some(verified) = self.verified()? else {
            return Err(self.absent(name));
        };
        let history = verified.history(&name.to_string())?;
        if history.is_empty() {
            return Err(self.absent(name));
        }
        let identity = &verified.identity;
        let (from, value) = match version {
            Some(n) => {
                let source = history
                    .iter()
                    .find(|v| v.version == n)
                    .ok_or(Error::NoSuchVersion { name, version: n })?;
                let value =
                    self.open_version(identity, source)?
                        .ok_or(Error::NothingToRestore {
                            name,
                            removal: Some(n),
                        })?;
                (n, value)
            }
            None => self.previous_value(identity, name, history)?,
        };
        let read = history.last();
        let (version, action) = self.write(name, None, |newest| {
            unmoved(name, read, newest)?;
            Ok((Action::Restore, Some(from), Some(&value)))
        })?;
        Ok(Written {
            name,
            version,
            action,
            restored_from: Some(from),
            warnings: Vec::new(),
        })
    }

    /// The newest earlier value that differs from the live one (any value, when removed).
    pub(super) fn previous_value(
        &self,
        identity: &Identity,
        name: CredentialName,
        history: &[Record],
    ) -> Result<(u64, SecretValue)> {
        let current = match history.last() {
            Some(v) => self.open_version(identity, v)?,
            None => None,
        };
        for v in history.iter().rev() {
            if let Some(value) = self.open_version(identity, v)?
                && !current.as_ref().is_some_and(|c| c.ct_eq(&value))
            {
                return Ok((v.version, value));
            }
        }
        Err(Error::NothingToRestore {
            name,
            removal: None,
        })
    }
}

/// Refuses a write decided from `read`, the newest record of `name` when the decision was
/// taken, now that the newest is `now`: when another writer or a purge has moved the name on
/// since, the decision (which version a restore brings back, what an unstaging removes) may
/// no longer hold. A restore that went ahead regardless could bring back a value a purge had
/// just destroyed. Refused as [`StoreError::Conflict`] ("try again; nothing was changed"):
/// run again, the command decides from the store as it is. Records are compared by their MAC,
/// which no two records share.
pub(super) fn unmoved(
    name: CredentialName,
    read: Option<&Record>,
    now: Option<&Record>,
) -> Result<()> {
    if read.map(|r| &r.mac) == now.map(|r| &r.mac) {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            name: name.to_string(),
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::catalog::CredentialName;
    use crate::credentials::CredentialStore;
    use crate::error::Error;
    use crate::secret::SecretValue;
    use crate::store::StoreError;
    use crate::store::interleaved::Interleaved;
    use crate::store::sqlite::SqliteStore;

    const NAME: &str = "cio_aws_backup_password";

    fn name() -> CredentialName {
        NAME.parse().unwrap()
    }

    fn open(dir: &Path) -> CredentialStore {
        CredentialStore::new(
            Box::new(SqliteStore::new(dir.join("store.db"))),
            dir.join("store.key"),
        )
    }

    /// The store of `dir`, where another command runs `between` just before this one's
    /// `at`-th reading of the store.
    fn racing(dir: &Path, at: usize, between: impl FnOnce() + Send + 'static) -> CredentialStore {
        CredentialStore::new(
            Box::new(Interleaved::new(
                Box::new(SqliteStore::new(dir.join("store.db"))),
                at,
                between,
            )),
            dir.join("store.key"),
        )
    }

    fn values(store: &CredentialStore) -> Vec<Option<String>> {
        store
            .history(name())
            .unwrap()
            .into_iter()
            .map(|h| h.value.map(|v| v.expose().to_string()))
            .collect()
    }

    #[test]
    fn a_restore_decided_before_a_purge_brings_nothing_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store
            .put(name(), &SecretValue::new("Race-Old-Secret-1".into()))
            .unwrap();
        store.remove(name()).unwrap();
        // Another administrator purges the name and sets a new value after the restore has
        // chosen version 1 and before it writes.
        let other = dir.path().to_path_buf();
        let restoring = racing(dir.path(), 2, move || {
            let other = open(&other);
            other.purge(name(), false).unwrap();
            other
                .put(name(), &SecretValue::new("Race-New-Secret-2".into()))
                .unwrap();
        });
        let err = restoring.restore(name(), None).unwrap_err();
        assert!(
            matches!(&err, Error::Store(StoreError::Conflict { name }) if name == NAME),
            "{err:?}"
        );
        // The purged value stays destroyed; the new one is live and alone.
        assert_eq!(
            values(&open(dir.path())),
            [Some("Race-New-Secret-2".into())]
        );
        // Run again, the restore decides on the store as it is: nothing earlier to bring back.
        assert!(matches!(
            open(dir.path()).restore(name(), None),
            Err(Error::NothingToRestore { .. })
        ));
    }

    #[test]
    fn a_restore_of_a_version_someone_else_moved_past_is_decided_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        for value in ["value-one-1", "value-two-2"] {
            store.put(name(), &SecretValue::new(value.into())).unwrap();
        }
        let other = dir.path().to_path_buf();
        let restoring = racing(dir.path(), 2, move || {
            open(&other)
                .put(name(), &SecretValue::new("value-three-3".into()))
                .unwrap();
        });
        // "The previous value" was version 1 when decided; it is version 2 now.
        let err = restoring.restore(name(), None).unwrap_err();
        assert!(
            matches!(err, Error::Store(StoreError::Conflict { .. })),
            "{err:?}"
        );
        assert_eq!(values(&open(dir.path())).len(), 3);
        // A write to another name in between changes nothing of the decision.
        let other = dir.path().to_path_buf();
        let restoring = racing(dir.path(), 2, move || {
            open(&other)
                .put(
                    "cio_aws_access_key".parse().unwrap(),
                    &SecretValue::new("AKIAYHD623GGZX7VDFMJ".into()),
                )
                .unwrap();
        });
        let written = restoring.restore(name(), None).unwrap();
        assert_eq!(written.restored_from, Some(2));
        assert_eq!(
            values(&open(dir.path())).last().unwrap().as_deref(),
            Some("value-two-2")
        );
    }
}
