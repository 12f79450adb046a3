//! The credentials of one store, sealed and opened with one key: what every command uses.
//!
//! Rules:
//! - every value is checked against the catalog before it is sealed; a refused value changes
//!   nothing;
//! - the key is loaded only when a value must be sealed or opened; a key file is created only
//!   for a store that has never been sealed, never for a store with data;
//! - a write that loses a race with another writer is retried from a fresh read, so no
//!   concurrent update is lost;
//! - remove and replace keep earlier versions; only [`CredentialStore::purge`] destroys.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::catalog::{CredentialName, SetId, Warning, check_value};
use crate::crypto::{Binding, Key, KeyError, create_key, load_key};
use crate::error::{Error, Result};
use crate::secret::SecretValue;
use crate::store::{Action, Identity, Record, Store, StoreError, now_ms};

/// How often a write is retried after losing a race before it gives up.
const MAX_RETRIES: usize = 1000;

/// A live credential, opened.
#[derive(Debug)]
pub struct Entry {
    pub name: CredentialName,
    pub version: u64,
    pub action: Action,
    pub updated_ms: i64,
    pub value: SecretValue,
}

/// One version in a credential's history, opened where it holds a value.
#[derive(Debug)]
pub struct HistoryEntry {
    pub version: u64,
    pub action: Action,
    pub restored_from: Option<u64>,
    pub written_at_ms: i64,
    /// `None` for a remove.
    pub value: Option<SecretValue>,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub name: CredentialName,
    pub version: u64,
    pub action: Action,
    /// For a restore: the version whose value was brought back.
    pub restored_from: Option<u64>,
    pub warnings: Vec<Warning>,
}

/// What a purge destroyed, and whether the store still holds it in earlier revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purged {
    pub name: CredentialName,
    /// How many versions were destroyed (0 only when compacting after an earlier purge).
    pub versions: usize,
    pub earlier_revisions: EarlierRevisions,
}

/// Whether a store still holds purged versions in earlier revisions of itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlierRevisions {
    /// The store keeps no earlier revisions (the embedded store): the versions are gone.
    NotKept,
    /// The store keeps them until its history is compacted (etcd).
    Kept,
    /// The store's history was compacted at this revision (etcd): they are gone from it.
    Compacted { revision: i64 },
}

impl Purged {
    /// What the administrator should know when the store held or holds the destroyed
    /// versions in earlier revisions; `None` when they are simply gone.
    pub fn note(&self) -> Option<String> {
        let name = self.name;
        match self.earlier_revisions {
            EarlierRevisions::NotKept => None,
            EarlierRevisions::Kept => Some(format!(
                "etcd keeps the destroyed versions readable at earlier revisions until the cluster compacts its history; to compact it now, run: cio credential remove --purge --compact {name} (this drops the earlier revisions of every key in the cluster, not only cio's)"
            )),
            EarlierRevisions::Compacted { revision } => Some(format!(
                "etcd's history was compacted at revision {revision}: no earlier revision holds the destroyed versions (the members' write-ahead logs and free database pages may hold their sealed bytes until etcd's next snapshot and 'etcdctl defrag')"
            )),
        }
    }
}

/// A store with the key that opens it.
pub struct CredentialStore {
    store: Box<dyn Store>,
    key_path: PathBuf,
    key: OnceLock<Key>,
}

impl CredentialStore {
    pub fn new(store: Box<dyn Store>, key_path: PathBuf) -> CredentialStore {
        CredentialStore {
            store,
            key_path,
            key: OnceLock::new(),
        }
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub fn key_path(&self) -> &Path {
        &self.key_path
    }

    /// The key for a store with this identity; creates one only if `create` and the store
    /// was never sealed.
    fn key(&self, identity: &Identity, create: bool) -> Result<&Key> {
        if let Some(key) = self.key.get() {
            return Ok(key);
        }
        let key = match (load_key(&self.key_path)?, &identity.key_fingerprint) {
            (Some(key), Some(fp)) if key.fingerprint() != fp => {
                return Err(KeyError::Mismatch {
                    path: self.key_path.clone(),
                    key_fingerprint: key.fingerprint().to_string(),
                    store_fingerprint: fp.clone(),
                }
                .into());
            }
            (Some(key), _) => key,
            (None, Some(fp)) => {
                return Err(KeyError::Missing {
                    path: self.key_path.clone(),
                    store_fingerprint: fp.clone(),
                }
                .into());
            }
            (None, None) if create => create_key(&self.key_path)?,
            (None, None) => {
                return Err(KeyError::Missing {
                    path: self.key_path.clone(),
                    store_fingerprint: "(none yet)".into(),
                }
                .into());
            }
        };
        Ok(self.key.get_or_init(|| key))
    }

    /// The key that opens a store with this identity (never creates one), for migration.
    pub(crate) fn opening_key(&self, identity: &Identity) -> Result<&Key> {
        self.key(identity, false)
    }

    /// The store's identity for reading; `None` when it does not exist yet.
    fn read_identity(&self) -> Result<Option<Identity>> {
        Ok(self.store.identity(false)?)
    }

    fn open_version(&self, identity: &Identity, v: &Record) -> Result<Option<SecretValue>> {
        let Some(sealed) = &v.sealed else {
            return Ok(None);
        };
        let key = self.key(identity, false)?;
        let binding = Binding {
            store_id: &identity.store_id,
            name: &v.name,
            version: v.version,
        };
        Ok(Some(key.open(&binding, sealed)?))
    }

    /// Appends a new version of `name` computed from the latest one, retrying lost races.
    /// `make` returns the action and the value (None: remove) for the next version, or an
    /// error that stops the write.
    fn write<'v>(
        &self,
        name: CredentialName,
        mut make: impl FnMut(Option<&Record>) -> Result<(Action, Option<u64>, Option<&'v SecretValue>)>,
    ) -> Result<(u64, Action)> {
        // The key before the store: a first write whose key cannot be made or read leaves
        // no store behind.
        let (key, identity) = match self.store.identity(false)? {
            Some(identity) => (self.key(&identity, true)?, identity),
            None => {
                let unsealed = Identity {
                    store_id: String::new(),
                    key_fingerprint: None,
                };
                let key = self.key(&unsealed, true)?;
                let identity = self
                    .store
                    .identity(true)?
                    .ok_or_else(|| StoreError::Unusable {
                        location: self.store.location(),
                        action: "created",
                        detail: "it did not record an id".into(),
                    })?;
                (key, identity)
            }
        };
        let name_text = name.to_string();
        for _ in 0..MAX_RETRIES {
            let latest = self.store.latest(&name_text)?;
            let (action, restored_from, value) = make(latest.as_ref())?;
            let expected = latest.as_ref().map_or(0, |v| v.version);
            let version = expected + 1;
            let sealed = value.map(|value| {
                key.seal(
                    &Binding {
                        store_id: &identity.store_id,
                        name: &name_text,
                        version,
                    },
                    value,
                )
            });
            let record = Record {
                name: name_text.clone(),
                version,
                action,
                restored_from,
                written_at_ms: now_ms(),
                sealed,
            };
            match self.store.append(expected, &record, key.fingerprint()) {
                Ok(()) => return Ok((version, action)),
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::KeyMismatch {
                    key_fingerprint,
                    store_fingerprint,
                    ..
                }) => {
                    return Err(KeyError::Mismatch {
                        path: self.key_path.clone(),
                        key_fingerprint,
                        store_fingerprint,
                    }
                    .into());
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict { name: name_text }.into())
    }

    /// Creates or replaces `name` with `value`, after checking the value's rules.
    pub fn put(&self, name: CredentialName, value: &SecretValue) -> Result<Written> {
        let warnings = check_value(name, value.expose())
            .map_err(|violation| Error::InvalidValue { name, violation })?;
        let (version, action) = self.write(name, |latest| {
            let action = if latest.is_some_and(Record::is_live) {
                Action::Update
            } else {
                Action::Create
            };
            Ok((action, None, Some(value)))
        })?;
        Ok(Written {
            name,
            version,
            action,
            restored_from: None,
            warnings,
        })
    }

    /// The live value of `name`, if it has one.
    pub fn get(&self, name: CredentialName) -> Result<Option<Entry>> {
        let Some(identity) = self.read_identity()? else {
            return Ok(None);
        };
        match self.store.latest(&name.to_string())? {
            Some(v) => self.entry(&identity, name, &v),
            None => Ok(None),
        }
    }

    fn entry(
        &self,
        identity: &Identity,
        name: CredentialName,
        v: &Record,
    ) -> Result<Option<Entry>> {
        Ok(self.open_version(identity, v)?.map(|value| Entry {
            name,
            version: v.version,
            action: v.action,
            updated_ms: v.written_at_ms,
            value,
        }))
    }

    /// Every live credential, in catalog order.
    pub fn list(&self) -> Result<Vec<Entry>> {
        let Some(identity) = self.read_identity()? else {
            return Ok(Vec::new());
        };
        let mut entries = Vec::new();
        for v in self.store.list_latest()? {
            let Ok(name) = v.name.parse::<CredentialName>() else {
                continue;
            };
            if let Some(entry) = self.entry(&identity, name, &v)? {
                entries.push(entry);
            }
        }
        entries.sort_by_key(|e| e.name);
        Ok(entries)
    }

    /// The live values of a set's four names (`None` where missing), in field order.
    pub fn set(&self, set: SetId) -> Result<[Option<Entry>; 4]> {
        let mut out: [Option<Entry>; 4] = Default::default();
        for entry in self.list()? {
            if entry.name.set() == set {
                let slot = set.names().iter().position(|n| *n == entry.name);
                if let Some(i) = slot {
                    out[i] = Some(entry);
                }
            }
        }
        Ok(out)
    }

    /// Removes `name`; the value stays in the history and can be restored.
    pub fn remove(&self, name: CredentialName) -> Result<u64> {
        if self.read_identity()?.is_none() {
            return Err(Error::NotFound { name });
        }
        let (version, _) = self.write(name, |latest| {
            if latest.is_some_and(Record::is_live) {
                Ok((Action::Remove, None, None))
            } else {
                Err(Error::NotFound { name })
            }
        })?;
        Ok(version)
    }

    /// Destroys every version of `name`; with `compact`, then also compacts the store's
    /// history ([`Store::compact`]), so that a store that keeps earlier revisions (etcd) no
    /// longer holds them either. Compacting after an earlier purge (nothing left of `name`)
    /// is allowed in a store that exists; otherwise a name without versions is
    /// [`Error::NotFound`].
    pub fn purge(&self, name: CredentialName, compact: bool) -> Result<Purged> {
        let versions = self.store.purge(&name.to_string())?;
        let keeps_revisions = self.store.keeps_revisions();
        let compacting = compact && keeps_revisions;
        if versions == 0 && !(compacting && self.read_identity()?.is_some()) {
            return Err(Error::NotFound { name });
        }
        let earlier_revisions = if !keeps_revisions {
            EarlierRevisions::NotKept
        } else if !compacting {
            EarlierRevisions::Kept
        } else {
            match self.store.compact()? {
                Some(revision) => EarlierRevisions::Compacted { revision },
                None => EarlierRevisions::NotKept,
            }
        };
        Ok(Purged {
            name,
            versions,
            earlier_revisions,
        })
    }

    /// Every version of `name`, oldest first, opened.
    pub fn history(&self, name: CredentialName) -> Result<Vec<HistoryEntry>> {
        let Some(identity) = self.read_identity()? else {
            return Ok(Vec::new());
        };
        self.store
            .history(&name.to_string())?
            .iter()
            .map(|v| {
                Ok(HistoryEntry {
                    version: v.version,
                    action: v.action,
                    restored_from: v.restored_from,
                    written_at_ms: v.written_at_ms,
                    value: self.open_version(&identity, v)?,
                })
            })
            .collect()
    }

    /// Brings back the value of `version`, or without one: a removed credential's last value,
    /// or a live credential's previous value.
    pub fn restore(&self, name: CredentialName, version: Option<u64>) -> Result<Written> {
        let Some(identity) = self.read_identity()? else {
            return Err(Error::NotFound { name });
        };
        let history = self.store.history(&name.to_string())?;
        if history.is_empty() {
            return Err(Error::NotFound { name });
        }
        let (from, value) = match version {
            Some(n) => {
                let source = history
                    .iter()
                    .find(|v| v.version == n)
                    .ok_or(Error::NoSuchVersion { name, version: n })?;
                let value = self
                    .open_version(&identity, source)?
                    .ok_or(Error::NothingToRestore { name })?;
                (n, value)
            }
            None => self.previous_value(&identity, name, &history)?,
        };
        let (version, action) =
            self.write(name, |_| Ok((Action::Restore, Some(from), Some(&value))))?;
        Ok(Written {
            name,
            version,
            action,
            restored_from: Some(from),
            warnings: Vec::new(),
        })
    }

    /// The newest earlier value that differs from the live one (any value, when removed).
    fn previous_value(
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
        Err(Error::NothingToRestore { name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    fn vault(dir: &Path) -> CredentialStore {
        CredentialStore::new(
            Box::new(SqliteStore::new(dir.join("store.db"))),
            dir.join("key"),
        )
    }

    fn name(s: &str) -> CredentialName {
        s.parse().unwrap()
    }

    fn v(s: &str) -> SecretValue {
        SecretValue::new(s.to_string())
    }

    #[test]
    fn put_get_update_remove_restore() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(dir.path());
        let n = name("cio_minio_secret_key");
        assert!(vault.get(n).unwrap().is_none());
        let w = vault.put(n, &v("first-secret")).unwrap();
        assert_eq!((w.version, w.action), (1, Action::Create));
        let w = vault.put(n, &v("second-secret")).unwrap();
        assert_eq!((w.version, w.action), (2, Action::Update));
        assert_eq!(
            vault.get(n).unwrap().unwrap().value.expose(),
            "second-secret"
        );
        assert_eq!(vault.remove(n).unwrap(), 3);
        assert!(vault.get(n).unwrap().is_none());
        assert!(matches!(vault.remove(n), Err(Error::NotFound { .. })));
        let w = vault.restore(n, None).unwrap();
        assert_eq!((w.version, w.action), (4, Action::Restore));
        assert_eq!(
            vault.get(n).unwrap().unwrap().value.expose(),
            "second-secret"
        );
        vault.restore(n, None).unwrap();
        assert_eq!(
            vault.get(n).unwrap().unwrap().value.expose(),
            "first-secret"
        );
        vault.restore(n, Some(2)).unwrap();
        assert_eq!(
            vault.get(n).unwrap().unwrap().value.expose(),
            "second-secret"
        );
        assert!(matches!(
            vault.restore(n, Some(99)),
            Err(Error::NoSuchVersion { version: 99, .. })
        ));
        let history = vault.history(n).unwrap();
        assert_eq!(history.len(), 6);
        assert!(history[2].value.is_none());
        assert_eq!(history[5].restored_from, Some(2));
        let purged = vault.purge(n, false).unwrap();
        assert_eq!(
            (purged.versions, purged.earlier_revisions, purged.note()),
            (6, EarlierRevisions::NotKept, None)
        );
        assert!(vault.history(n).unwrap().is_empty());
        assert!(matches!(vault.purge(n, false), Err(Error::NotFound { .. })));
        assert!(matches!(vault.purge(n, true), Err(Error::NotFound { .. })));
    }

    #[test]
    fn bad_values_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(dir.path());
        let err = vault
            .put(name("cio_aws_access_key"), &v("not-a-key"))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidValue { .. }));
        assert!(!dir.path().join("store.db").exists());
        assert!(!dir.path().join("key").exists());
    }

    #[test]
    fn a_wrong_or_missing_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let n = name("cio_minio_access_key");
        vault(dir.path()).put(n, &v("minio")).unwrap();
        let key = std::fs::read(dir.path().join("key")).unwrap();
        std::fs::remove_file(dir.path().join("key")).unwrap();
        let err = vault(dir.path()).list().unwrap_err();
        assert!(
            matches!(err, Error::Key(KeyError::Missing { .. })),
            "{err:?}"
        );
        // Writing does not silently make a new key for old data.
        let err = vault(dir.path()).put(n, &v("other")).unwrap_err();
        assert!(
            matches!(err, Error::Key(KeyError::Missing { .. })),
            "{err:?}"
        );
        assert!(!dir.path().join("key").exists());

        create_key(&dir.path().join("key")).unwrap();
        let err = vault(dir.path()).get(n).unwrap_err();
        assert!(
            matches!(err, Error::Key(KeyError::Mismatch { .. })),
            "{err:?}"
        );
        std::fs::remove_file(dir.path().join("key")).unwrap();
        std::fs::write(dir.path().join("key"), key).unwrap();
        std::fs::set_permissions(
            dir.path().join("key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        assert_eq!(
            vault(dir.path()).get(n).unwrap().unwrap().value.expose(),
            "minio"
        );
    }
}
