//! Writing several credentials at once, all or nothing: an import (and later a rotation or
//! a migration) must never leave half a set behind.
//!
//! Rules: every value is checked against the catalog before anything is sealed; the new
//! versions, signed and chained as every write's are, go to the store in one
//! [`Store::append_all`](crate::store::Store::append_all) with one manifest swap (one SQLite
//! write, one etcd transaction); a write that loses a race with another
//! writer is computed again from a fresh read and retried, as [`CredentialStore::put`] does; earlier
//! versions are kept.

use std::collections::HashMap;

use crate::catalog::{Allow, CredentialName, Warning, check_value};
use crate::error::{Error, Result};
use crate::ledger::{self, Next};
use crate::secret::SecretValue;
use crate::store::{Action, Record, StoreError, now_ms};

use super::{CredentialStore, MAX_RETRIES, Written};

/// One change of a batch: a new value for `name`, or its removal (`value: None`). A name may
/// appear several times: its changes become consecutive versions, in order.
#[derive(Debug, Clone, Copy)]
pub struct Change<'v> {
    pub name: CredentialName,
    pub value: Option<&'v SecretValue>,
    /// When the value was written where it comes from, in milliseconds since the Unix
    /// epoch: a bundled version's time on the cluster that wrote it, so that its age and
    /// "newer" compare like with like. `None`: written now. A time after now is taken as now
    /// (no version is dated in the future).
    pub written_at_ms: Option<i64>,
}

/// A name's live version as a decision read it: its number and the time it was written
/// (`live: None`: the name held no value). A name that has moved on since shows another pair:
/// a write appends a version, a purge restarts the numbers at another time. (One case
/// shows the same pair: a purge, then an import of the very version the decision saw, which
/// keeps its time on the cluster that wrote it. The name then holds what the decision saw.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub name: CredentialName,
    /// (version, milliseconds since the Unix epoch) of the live version.
    pub live: Option<(u64, i64)>,
}

impl Seen {
    /// What a decision sees of `record`, the newest of its name: its version when live.
    fn live(record: &Record) -> Option<(u64, i64)> {
        record
            .is_live()
            .then_some((record.version, record.written_at_ms))
    }
}

/// The value rules [`CredentialStore::write_all_as_seen`] applies before it writes anything
/// (an import's `--dry-run` applies them the same way): the catalog's
/// [`check_value`] with `allow`, on every value. Returns each change's warnings, in order;
/// the first value refused is [`Error::InvalidValue`], which names the credential and the
/// rule, never the value.
pub fn check_changes(changes: &[Change<'_>], allow: Allow) -> Result<Vec<Vec<Warning>>> {
    changes
        .iter()
        .map(|change| match change.value {
            Some(value) => check_value(change.name, value.expose(), allow).map_err(|violation| {
                Error::InvalidValue {
                    name: change.name,
                    violation,
                }
            }),
            None => Ok(Vec::new()),
        })
        .collect()
}

impl CredentialStore {
    /// Writes every change, or none: values are checked first (a refused value changes
    /// nothing), then all new versions are appended at once. Returns what each change
    /// wrote, in order. Removing a name that holds no value is [`Error::NotFound`].
    pub fn write_all(&self, changes: &[Change<'_>]) -> Result<Vec<Written>> {
        self.write_all_as_seen(changes, &[], Allow::default())
    }

    /// [`CredentialStore::write_all`] of changes decided from what `seen` says of the store
    /// (an import's plan): refused with [`StoreError::Conflict`] ("try again; nothing was
    /// changed") when any name in `seen` has moved on since, so that the decision is taken
    /// again on the store as it is. Without this, a value written between an import's plan
    /// and its write would be replaced without `--force`, or left in place of the bundle's.
    /// `allow` lets through what it names in every value (an import's `--allow-whitespace`).
    pub fn write_all_as_seen(
        &self,
        changes: &[Change<'_>],
        seen: &[Seen],
        allow: Allow,
    ) -> Result<Vec<Written>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let warnings = check_changes(changes, allow)?;
        self.key_for_writing()?;
        for _ in 0..MAX_RETRIES {
            let verified = self.verified()?.ok_or_else(|| StoreError::Unusable {
                location: self.store.location(),
                action: "read",
                detail: "it disappeared while being written".into(),
            })?;
            for s in seen {
                let name = s.name.to_string();
                if verified.newest(&name)?.and_then(Seen::live) != s.live {
                    return Err(StoreError::Conflict { name }.into());
                }
            }
            // The key of the store as read now: another node may have re-sealed it.
            let key = self.key(&verified.identity, false)?;
            // Per name, whether it holds a value as this attempt builds on it.
            let mut live: HashMap<CredentialName, bool> = HashMap::new();
            let mut nexts = Vec::with_capacity(changes.len());
            let mut names = Vec::with_capacity(changes.len());
            let now = now_ms();
            for change in changes {
                let text = change.name.to_string();
                let is_live = match live.get(&change.name) {
                    Some(l) => *l,
                    None => verified.newest(&text)?.is_some_and(Record::is_live),
                };
                let action = match (change.value, is_live) {
                    (Some(_), true) => Action::Update,
                    (Some(_), false) => Action::Create,
                    (None, true) => Action::Remove,
                    (None, false) => return Err(Error::NotFound { name: change.name }),
                };
                live.insert(change.name, change.value.is_some());
                names.push(text);
                nexts.push(Next {
                    action,
                    restored_from: None,
                    value: change.value,
                    written_at_ms: change.written_at_ms.map_or(now, |at| at.min(now)),
                });
            }
            let batch: Vec<(&str, Next<'_>)> =
                names.iter().map(String::as_str).zip(nexts).collect();
            // One change-log entry for the batch (an import of a recovery bundle), naming
            // what it wrote: the versions are the records' own, after the write.
            let mut distinct = names.clone();
            distinct.sort();
            distinct.dedup();
            let logged = super::log::LogChange {
                command: "import",
                name: None,
                names: distinct.clone(),
                version: None,
                detail: Some(format!(
                    "{} version{} of {}",
                    batch.len(),
                    if batch.len() == 1 { "" } else { "s" },
                    distinct.join(", ")
                )),
                digest_log: None,
            };
            let Some(entry) = self.next_log_entry(key, &verified, &logged)? else {
                continue;
            };
            match ledger::append_all_next(self.store.as_ref(), key, &verified, &batch, Some(&entry))
            {
                Ok(versions) => {
                    return Ok(changes
                        .iter()
                        .zip(versions)
                        .zip(&warnings)
                        .zip(&batch)
                        .map(|(((change, version), warnings), (_, next))| Written {
                            name: change.name,
                            version,
                            action: next.action,
                            restored_from: None,
                            warnings: warnings.clone(),
                        })
                        .collect());
                }
                Err(e) if self.worth_retrying(&e) => continue,
                Err(e) => return Err(self.writing_error(e)),
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
            written_at_ms: None,
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
                    written_at_ms: None,
                },
            ])
            .unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }));
        assert_eq!(vault.get(access).unwrap().unwrap().version, 3);
    }

    /// A value brought from elsewhere keeps its time there; a time after now is now.
    #[test]
    fn a_change_keeps_its_own_time_but_never_one_in_the_future() {
        let dir = tempfile::tempdir().unwrap();
        let vault = CredentialStore::new(
            Box::new(SqliteStore::new(dir.path().join("store.db"))),
            dir.path().join("key"),
        );
        let access = name("cio_minio_access_key");
        let (old, future, local) = (v("old-access"), v("future-access"), v("local-access"));
        let dated = |value, at| Change {
            name: access,
            value: Some(value),
            written_at_ms: at,
        };
        let before = now_ms();
        vault
            .write_all(&[
                dated(&old, Some(1_700_000_000_000)),
                dated(&future, Some(i64::MAX)),
                dated(&local, None),
            ])
            .unwrap();
        let after = now_ms();
        let times: Vec<i64> = vault
            .history(access)
            .unwrap()
            .iter()
            .map(|h| h.written_at_ms)
            .collect();
        assert_eq!(times[0], 1_700_000_000_000);
        for at in &times[1..] {
            assert!((before..=after).contains(at), "{times:?}");
        }
        assert_eq!(vault.get(access).unwrap().unwrap().updated_ms, times[2]);
    }
}
