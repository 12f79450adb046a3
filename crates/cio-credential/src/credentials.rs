//! The credentials of one store, sealed and opened with one key: what every command uses.
//!
//! Rules:
//! - every value is checked against the catalog before it is sealed; a refused value changes
//!   nothing;
//! - the key is loaded only when a value must be sealed or opened; a key file is created only
//!   for a store that has never been sealed, never for a store with data;
//! - a write that loses a race with another writer is retried from a fresh read, so no
//!   concurrent update is lost;
//! - remove and replace keep earlier versions; only [`CredentialStore::purge`] destroys;
//! - every change writes its change-log entry in the same transaction ([`log`]).

mod health;
pub(crate) mod log;

pub use self::health::{CheckResult, HealthRecord};

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use self::log::{Change, next_entry};
use crate::audit::Broken;
use crate::catalog::{Allow, CredentialName, Warning, check_value};
use crate::crypto::{Binding, Key, KeyError, create_key, load_key};
use crate::error::{Error, Result};
use crate::secret::SecretValue;
use crate::sets::{Listing, Purpose, SetFilter, SetValues, Stored, select};
use crate::store::{Action, Identity, Record, Store, StoreError, now_ms};

/// How often a write is retried after losing a race before it gives up.
const MAX_RETRIES: usize = 1000;

/// A live credential, opened.
#[derive(Debug)]
pub struct Entry {
    pub name: CredentialName,
    /// 1 for the first write of the name, one more for each write since.
    pub version: u64,
    pub action: Action,
    /// When the latest write happened, in milliseconds since the Unix epoch.
    pub updated_ms: i64,
    pub value: SecretValue,
}

impl Entry {
    /// The entry without its value.
    pub fn stored(&self) -> Stored {
        Stored {
            name: self.name,
            version: self.version,
            action: self.action,
            updated_ms: self.updated_ms,
        }
    }
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

/// A store with the key file whose store key seals and opens its values.
pub struct CredentialStore {
    store: Box<dyn Store>,
    key_file: PathBuf,
    key: OnceLock<Key>,
    /// The first break of the change log this command came across.
    log_damage: OnceLock<Broken>,
}

impl std::fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialStore")
            .field("location", &self.store.location())
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

impl CredentialStore {
    /// Pairs `store` with the store key in `key_file`. Touches neither: the key file is read
    /// (or created, by a store's first write) when a value is first sealed or opened.
    pub fn new(store: Box<dyn Store>, key_file: PathBuf) -> CredentialStore {
        CredentialStore {
            store,
            key_file,
            key: OnceLock::new(),
            log_damage: OnceLock::new(),
        }
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Where the store is, for messages (a path, or a URL without user or password).
    pub fn location(&self) -> String {
        self.store.location()
    }

    /// The key file that seals this store.
    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// The key for a store with this identity; creates one only if `create` and the store
    /// was never sealed.
    fn key(&self, identity: &Identity, create: bool) -> Result<&Key> {
        if let Some(key) = self.key.get() {
            return Ok(key);
        }
        let key = match (load_key(&self.key_file)?, &identity.key_fingerprint) {
            (Some(key), Some(fp)) if key.fingerprint() != fp => {
                return Err(KeyError::Mismatch {
                    path: self.key_file.clone(),
                    key_fingerprint: key.fingerprint().to_string(),
                    store_fingerprint: fp.clone(),
                }
                .into());
            }
            (Some(key), _) => key,
            (None, Some(fp)) => {
                return Err(KeyError::Missing {
                    path: self.key_file.clone(),
                    store_fingerprint: fp.clone(),
                }
                .into());
            }
            (None, None) if create => create_key(&self.key_file)?,
            (None, None) => {
                return Err(KeyError::Missing {
                    path: self.key_file.clone(),
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
        self.check_damage_note(key, &identity.store_id)?;
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
            let change = Change {
                command: action.as_str(),
                name: Some(&name_text),
                version: Some(version),
                detail: restored_from.map(|from| format!("value of version {from}")),
            };
            let (entry, damaged) =
                next_entry(self.store.as_ref(), key, &identity.store_id, &change)?;
            self.note_damage(damaged);
            match self
                .store
                .append_logged(expected, &record, key.fingerprint(), Some(&entry))
            {
                Ok(()) => return Ok((version, action)),
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::KeyMismatch {
                    key_fingerprint,
                    store_fingerprint,
                    ..
                }) => {
                    return Err(KeyError::Mismatch {
                        path: self.key_file.clone(),
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
        self.put_allowing(name, value, Allow::default())
    }

    /// [`CredentialStore::put`], letting through what `allow` names (e.g. a password's white space).
    pub fn put_allowing(
        &self,
        name: CredentialName,
        value: &SecretValue,
        allow: Allow,
    ) -> Result<Written> {
        let warnings = check_value(name, value.expose(), allow)
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

    /// Every live credential, in catalog order, without opening a value (and without the
    /// key): one read of the store.
    pub fn listing(&self) -> Result<Listing> {
        Ok(self
            .store
            .list_latest()?
            .iter()
            .filter_map(stored)
            .collect())
    }

    /// Every live credential, in catalog order, opened.
    pub fn list(&self) -> Result<Vec<Entry>> {
        let Some(identity) = self.read_identity()? else {
            return Ok(Vec::new());
        };
        let mut entries = Vec::new();
        for record in self.store.list_latest()? {
            let Ok(name) = record.name.parse::<CredentialName>() else {
                continue;
            };
            if let Some(entry) = self.entry(&identity, name, &record)? {
                entries.push(entry);
            }
        }
        entries.sort_by_key(|e| e.name);
        Ok(entries)
    }

    /// The values of the sets `filter` means for `purpose` (see [`select`]), in catalog
    /// order: the sets are chosen on one read of the store, and only their values are
    /// opened, each once.
    pub fn sets(&self, filter: &SetFilter, purpose: Purpose) -> Result<Vec<SetValues>> {
        let records = self.store.list_latest()?;
        let listing: Listing = records.iter().filter_map(stored).collect();
        let mut sets: Vec<SetValues> = select(&listing, filter, purpose)?
            .into_iter()
            .map(SetValues::empty)
            .collect();
        let Some(identity) = self.read_identity()? else {
            // A store without an id holds nothing.
            return Ok(sets);
        };
        for record in &records {
            let Ok(name) = record.name.parse::<CredentialName>() else {
                continue;
            };
            let Some(values) = sets.iter_mut().find(|v| v.set == name.set()) else {
                continue;
            };
            if let Some(value) = self.open_version(&identity, record)? {
                values.set_field(name.field, value);
            }
        }
        Ok(sets)
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
        let versions = self.purge_logged(name)?;
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

    /// Destroys every version of `name` with its change-log entry; how many there were.
    fn purge_logged(&self, name: CredentialName) -> Result<usize> {
        let Some(identity) = self.read_identity()? else {
            return Ok(0);
        };
        let name_text = name.to_string();
        let key = self.key(&identity, false)?;
        self.check_damage_note(key, &identity.store_id)?;
        for _ in 0..MAX_RETRIES {
            let Some(latest) = self.store.latest(&name_text)? else {
                return Ok(0);
            };
            let change = Change {
                command: "purge",
                name: Some(&name_text),
                version: Some(latest.version),
                detail: None,
            };
            let (entry, damaged) =
                next_entry(self.store.as_ref(), key, &identity.store_id, &change)?;
            self.note_damage(damaged);
            match self.store.purge_logged(&name_text, Some(&entry)) {
                Err(StoreError::Conflict { .. }) => continue,
                other => return Ok(other?),
            }
        }
        Err(StoreError::Conflict { name: name_text }.into())
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

/// A live record's metadata; `None` for a removed name or one outside the catalog.
fn stored(record: &Record) -> Option<Stored> {
    let name = record.name.parse().ok()?;
    record.is_live().then_some(Stored {
        name,
        version: record.version,
        action: record.action,
        updated_ms: record.written_at_ms,
    })
}
