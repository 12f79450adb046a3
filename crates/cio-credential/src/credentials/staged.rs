//! Staged records: what an operation that spans the store and something outside it (a
//! rotation changes the repository too) writes before it starts, so that a run killed half
//! way can be finished by the next one.
//!
//! Rules: a staged record is sealed like every credential (bound to the store, its name and
//! version); its name is no catalog name, so it is never listed, validated or handed over;
//! finishing removes it the way every remove works (a version without a value), so nothing
//! but purge destroys it.

use crate::error::{Error, Result};
use crate::secret::SecretValue;
use crate::store::{Action, Record, StoreError};

use super::CredentialStore;
use super::together::{Next, Together};
use crate::catalog::CredentialName;

/// A staged record's live value.
#[derive(Debug)]
pub(crate) struct Staged {
    /// When it was staged, in milliseconds since the Unix epoch.
    pub written_at_ms: i64,
    pub value: SecretValue,
}

impl CredentialStore {
    /// The live value staged under `name`, if any.
    pub(crate) fn staged(&self, name: &str) -> Result<Option<Staged>> {
        let Some(verified) = self.verified()? else {
            return Ok(None);
        };
        let Some(record) = verified.newest(name)? else {
            return Ok(None);
        };
        Ok(self
            .open_version(&verified.identity, record)?
            .map(|value| Staged {
                written_at_ms: record.written_at_ms,
                value,
            }))
    }

    /// Stages `value` under `name` (a new version); the change log says `command` of the
    /// credential `about`.
    pub(crate) fn stage(
        &self,
        name: &str,
        value: &SecretValue,
        command: &'static str,
        about: CredentialName,
    ) -> Result<()> {
        let logged = Together {
            command,
            credentials: vec![about.to_string()],
            detail: Some("started: its new value staged".into()),
        };
        self.append_together(&logged, [name], |latest| {
            let action = if latest[0].is_some_and(Record::is_live) {
                Action::Update
            } else {
                Action::Create
            };
            Ok([Next {
                action,
                restored_from: None,
                value: Some(value),
            }])
        })?;
        Ok(())
    }

    /// Removes what is staged under `name`; nothing to do when nothing is. Logged as for
    /// [`CredentialStore::stage`].
    pub(crate) fn unstage(
        &self,
        name: &str,
        command: &'static str,
        about: CredentialName,
    ) -> Result<()> {
        let staged = match self.verified()? {
            Some(verified) => verified.newest(name)?.is_some_and(Record::is_live),
            None => false,
        };
        if !staged {
            return Ok(());
        }
        let logged = Together {
            command,
            credentials: vec![about.to_string()],
            detail: Some("finished: its staged value removed".into()),
        };
        // Decided on the store as each attempt reads it: another node may have finished
        // the same rotation meanwhile, and a removal is never appended to a removal.
        let mut nothing_staged = false;
        let written = self.append_together(&logged, [name], |latest| {
            if latest[0].is_some_and(Record::is_live) {
                Ok([Next {
                    action: Action::Remove,
                    restored_from: None,
                    value: None,
                }])
            } else {
                nothing_staged = true;
                Err(Error::Store(StoreError::Conflict {
                    name: name.to_string(),
                }))
            }
        });
        match written {
            Err(_) if nothing_staged => Ok(()),
            other => other.map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::credentials::CredentialStore;
    use crate::secret::SecretValue;
    use crate::store::sqlite::SqliteStore;

    /// The store of `dir` with its key beside it.
    fn open(dir: &std::path::Path) -> CredentialStore {
        CredentialStore::new(
            Box::new(SqliteStore::new(dir.join("store.db"))),
            dir.join("key"),
        )
    }

    #[test]
    fn staged_records_are_sealed_and_never_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let name = "cio_minio_backup_password.rotation";
        let about = "cio_minio_backup_password".parse().unwrap();
        assert!(store.staged(name).unwrap().is_none());
        store
            .stage(
                name,
                &SecretValue::new("staged secret".into()),
                "rotate",
                about,
            )
            .unwrap();
        assert_eq!(
            store.staged(name).unwrap().unwrap().value.expose(),
            "staged secret"
        );
        assert!(store.list().unwrap().entries.is_empty());
        let raw = store.store.latest(name).unwrap().unwrap().unwrap();
        let sealed = raw.sealed.unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"staged"));
        store.unstage(name, "rotate", about).unwrap();
        store.unstage(name, "rotate", about).unwrap();
        assert!(store.staged(name).unwrap().is_none());
        assert_eq!(store.store.history(name).unwrap().len(), 2);
        // The change log names the credential, never the staged record.
        let log = store.change_log().unwrap();
        let said: Vec<_> = log
            .entries
            .iter()
            .map(|e| (e.command.as_str(), e.name.as_deref(), e.version))
            .collect();
        assert_eq!(
            said,
            [
                ("rotate", Some("cio_minio_backup_password"), None),
                ("rotate", Some("cio_minio_backup_password"), None)
            ]
        );
    }

    #[test]
    fn two_commands_that_finish_one_rotation_at_once_remove_its_staged_value_once() {
        use crate::store::interleaved::Interleaved;
        let dir = tempfile::tempdir().unwrap();
        let name = "cio_minio_backup_password.rotation";
        let about = "cio_minio_backup_password".parse().unwrap();
        open(dir.path())
            .stage(
                name,
                &SecretValue::new("staged secret".into()),
                "rotate",
                about,
            )
            .unwrap();
        // The other finishes between this one's look (the first reading) and its write.
        let other = dir.path().to_path_buf();
        let finishing = CredentialStore::new(
            Box::new(Interleaved::new(
                Box::new(SqliteStore::new(dir.path().join("store.db"))),
                2,
                move || open(&other).unstage(name, "rotate", about).unwrap(),
            )),
            dir.path().join("key"),
        );
        finishing.unstage(name, "rotate", about).unwrap();
        let actions: Vec<_> = finishing
            .store
            .history(name)
            .unwrap()
            .into_iter()
            .map(|r| r.unwrap().action)
            .collect();
        assert_eq!(
            actions,
            [crate::store::Action::Create, crate::store::Action::Remove]
        );
    }
}
