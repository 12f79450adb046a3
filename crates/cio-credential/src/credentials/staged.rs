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

/// A staged record's name as one reading of the store found it: the version a stage over
/// it must find unchanged, and the live value, if any.
#[derive(Debug)]
pub(crate) struct Slot {
    /// The newest version of the name (0: nothing was ever staged under it); a finished
    /// stage (a remove) is a version too, so a stage and finish in between is seen.
    pub version: u64,
    pub live: Option<Staged>,
}

impl CredentialStore {
    /// What is staged under `name`, with the version a [`CredentialStore::stage`] over it
    /// expects.
    pub(crate) fn staged(&self, name: &str) -> Result<Slot> {
        let Some(verified) = self.verified()? else {
            return Ok(Slot {
                version: 0,
                live: None,
            });
        };
        let Some(record) = verified.newest(name)? else {
            return Ok(Slot {
                version: 0,
                live: None,
            });
        };
        let live = self
            .open_version(&verified.identity, record)?
            .map(|value| Staged {
                written_at_ms: record.written_at_ms,
                value,
            });
        Ok(Slot {
            version: record.version,
            live,
        })
    }

    /// Stages `value` under `name` as a new version, only if the name's newest version is
    /// still `expected` (as [`CredentialStore::staged`] read it; 0 when nothing was ever
    /// staged): a compare-and-set, so that of two commands that read the same slot, one
    /// stages and the other is told. Returns the version staged, or `None` (nothing written)
    /// when another command staged or finished under `name` since. The change log says
    /// `command` of the credential `about`, with `detail` (what the stage is to the
    /// operation: its start, or a later run taking it over).
    pub(crate) fn stage(
        &self,
        name: &str,
        value: &SecretValue,
        expected: u64,
        command: &'static str,
        about: CredentialName,
        detail: String,
    ) -> Result<Option<u64>> {
        let logged = Together {
            command,
            credentials: vec![about.to_string()],
            detail: Some(detail),
        };
        // Decided on the store as each attempt reads it (a retry reads again).
        let mut changed = false;
        let written = self.append_together(&logged, [name], |latest| {
            if latest[0].map_or(0, |r| r.version) != expected {
                changed = true;
                return Err(changed_meanwhile(name));
            }
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
        });
        match written {
            Err(_) if changed => Ok(None),
            other => other.map(|(versions, _)| Some(versions[0])),
        }
    }

    /// Removes what is staged under `name` if it is still the version `staged` (the one
    /// the caller staged or read): another command that staged since (one that took over a
    /// stopped run) keeps its record. Returns whether it removed it; nothing to do when
    /// nothing is staged. Logged as for [`CredentialStore::stage`].
    pub(crate) fn unstage(
        &self,
        name: &str,
        staged: u64,
        command: &'static str,
        about: CredentialName,
    ) -> Result<bool> {
        let ours =
            |record: Option<&Record>| record.is_some_and(|r| r.is_live() && r.version == staged);
        let found = match self.verified()? {
            Some(verified) => ours(verified.newest(name)?),
            None => false,
        };
        if !found {
            return Ok(false);
        }
        let logged = Together {
            command,
            credentials: vec![about.to_string()],
            detail: Some("finished: its staged value removed".into()),
        };
        // Decided on the store as each attempt reads it: another node may have finished
        // the same rotation meanwhile, and a removal is never appended to a removal.
        let mut not_ours = false;
        let written = self.append_together(&logged, [name], |latest| {
            if ours(latest[0]) {
                Ok([Next {
                    action: Action::Remove,
                    restored_from: None,
                    value: None,
                }])
            } else {
                not_ours = true;
                Err(changed_meanwhile(name))
            }
        });
        match written {
            Err(_) if not_ours => Ok(false),
            other => other.map(|_| true),
        }
    }
}

/// The error that stops a staged write whose slot changed since it was read (never shown:
/// the caller is told `None` / `false`).
fn changed_meanwhile(name: &str) -> Error {
    Error::Store(StoreError::Conflict {
        name: name.to_string(),
    })
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
        assert!(store.staged(name).unwrap().live.is_none());
        let version = store
            .stage(
                name,
                &SecretValue::new("staged secret".into()),
                0,
                "rotate",
                about,
                "started".into(),
            )
            .unwrap();
        assert_eq!(version, Some(1));
        let slot = store.staged(name).unwrap();
        assert_eq!(slot.version, 1);
        assert_eq!(slot.live.unwrap().value.expose(), "staged secret");
        assert!(store.list().unwrap().entries.is_empty());
        let raw = store.store.latest(name).unwrap().unwrap().unwrap();
        let sealed = raw.sealed.unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"staged"));
        assert!(store.unstage(name, 1, "rotate", about).unwrap());
        assert!(!store.unstage(name, 1, "rotate", about).unwrap());
        assert!(store.staged(name).unwrap().live.is_none());
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
                0,
                "rotate",
                about,
                "started".into(),
            )
            .unwrap();
        // The other finishes between this one's look (the first reading) and its write.
        let other = dir.path().to_path_buf();
        let finishing = CredentialStore::new(
            Box::new(Interleaved::new(
                Box::new(SqliteStore::new(dir.path().join("store.db"))),
                2,
                move || assert!(open(&other).unstage(name, 1, "rotate", about).unwrap()),
            )),
            dir.path().join("key"),
        );
        assert!(!finishing.unstage(name, 1, "rotate", about).unwrap());
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

    /// The review's finding: two rotations read "nothing staged", and both staged (the
    /// second over the first's record). A stage is a compare-and-set: the one whose reading
    /// is no longer the store's stages nothing, however the other got in between.
    #[test]
    fn of_two_commands_that_stage_over_one_reading_only_the_first_stages() {
        use crate::store::interleaved::Interleaved;
        let dir = tempfile::tempdir().unwrap();
        let name = "cio_minio_backup_password.rotation";
        let about = "cio_minio_backup_password".parse().unwrap();
        let staging = |store: &CredentialStore, what: &str, expected| {
            store
                .stage(
                    name,
                    &SecretValue::new(what.into()),
                    expected,
                    "rotate",
                    about,
                    "started".into(),
                )
                .unwrap()
        };
        let store = open(dir.path());
        store
            .put(
                "cio_minio_backup_repo".parse().unwrap(),
                &SecretValue::new("s3:http://127.0.0.1:9000/backups".into()),
            )
            .unwrap();
        // Both read "never staged" (version 0); the other stages between this one's
        // reading and its write (the write's first reading of the store).
        assert_eq!(store.staged(name).unwrap().version, 0);
        let other = dir.path().to_path_buf();
        let racing = CredentialStore::new(
            Box::new(Interleaved::new(
                Box::new(SqliteStore::new(dir.path().join("store.db"))),
                1,
                move || {
                    let theirs = open(&other)
                        .stage(
                            name,
                            &SecretValue::new("theirs".into()),
                            0,
                            "rotate",
                            about,
                            "started".into(),
                        )
                        .unwrap();
                    assert_eq!(theirs, Some(1));
                },
            )),
            dir.path().join("key"),
        );
        assert_eq!(staging(&racing, "ours", 0), None);
        let slot = store.staged(name).unwrap();
        assert_eq!(
            (slot.version, slot.live.unwrap().value.expose()),
            (1, "theirs")
        );
        // Staged and finished in between is a change too (the slot is empty again, but the
        // rotation it held is another's).
        assert!(store.unstage(name, 1, "rotate", about).unwrap());
        assert_eq!(staging(&store, "late", 1), None);
        assert_eq!(staging(&store, "next", 2), Some(3));
        // A finish removes only the version it staged: a record staged over it since stays.
        assert_eq!(staging(&store, "taken over", 3), Some(4));
        assert!(!store.unstage(name, 3, "rotate", about).unwrap());
        let slot = store.staged(name).unwrap();
        assert_eq!(slot.live.unwrap().value.expose(), "taken over");
    }
}
