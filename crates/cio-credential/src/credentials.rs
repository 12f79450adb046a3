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
mod notes;

pub use self::health::{CheckResult, Checks, HealthRecord};

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use self::log::LogChange;
use crate::audit::{Broken, Problem};
use crate::catalog::{Allow, CredentialName, SetId, Warning, check_value};
use crate::crypto::{Binding, Key, KeyError, create_key};
use crate::error::{Error, Result};
use crate::integrity::Manifest;
use crate::keyring::Keyring;
use crate::ledger::{self, Next, Verified};
use crate::secret::SecretValue;
use crate::sets::{Listing, Purpose, SetFilter, SetValues, Stored, select};
use crate::store::{Action, Identity, Record, Store, StoreError, now_ms};

mod absence;
mod batch;
mod purged;
mod restore;
pub use absence::Absence;
pub use batch::{Change, Seen, check_changes};
pub use log::Acknowledged;
pub use purged::{EarlierRevisions, Purged};

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

/// Every live credential, opened, and the damaged ones ([`CredentialStore::list`]).
#[derive(Debug, Default)]
pub struct Listed {
    /// The live credentials, in catalog order.
    pub entries: Vec<Entry>,
    /// One [`Error::Damaged`] per credential that cannot be answered from, by name.
    pub damaged: Vec<Error>,
}

impl Listed {
    /// The live credentials without their values (the damaged ones left out).
    pub fn listing(&self) -> Listing {
        self.entries.iter().map(Entry::stored).collect()
    }

    /// Whether a credential of one of `sets` is damaged: such a set is neither complete
    /// nor missing it, and nothing may leave it out silently.
    pub fn damages(&self, sets: &[SetId]) -> bool {
        self.damaged.iter().any(|e| damaged_in(e, sets))
    }

    /// Takes out the [`Error::Damaged`] of a credential of one of `sets`, if any.
    pub fn take_damage_in(&mut self, sets: &[SetId]) -> Option<Error> {
        let found = self.damaged.iter().position(|e| damaged_in(e, sets))?;
        Some(self.damaged.swap_remove(found))
    }
}

/// Whether `error` is the damage of a credential of one of `sets`.
fn damaged_in(error: &Error, sets: &[SetId]) -> bool {
    matches!(error, Error::Damaged { name, .. }
        if name.parse::<CredentialName>().is_ok_and(|n| sets.contains(&n.set())))
}

/// A store with the key file whose store key seals and opens its values.
pub struct CredentialStore {
    store: Box<dyn Store>,
    key_file: PathBuf,
    /// The key file's keys as this command first read them, the one it first opened or
    /// sealed the store with first (or the key it created).
    keys: OnceLock<Vec<Key>>,
    /// The key file's keys read a second time, when the store turned out sealed with a key
    /// the first reading did not hold (a `rekey` on this node added it meanwhile).
    keys_again: OnceLock<Vec<Key>>,
    /// The first break of the change log this command came across.
    log_damage: OnceLock<Broken>,
    /// The manifest this command last verified in a reading of the store, with the identity
    /// it came in: a later look at the same identity (the notes') needs no second check.
    manifest_seen: Mutex<Option<(Identity, Manifest)>>,
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
            keys: OnceLock::new(),
            keys_again: OnceLock::new(),
            log_damage: OnceLock::new(),
            manifest_seen: Mutex::new(None),
        }
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
    /// was never sealed. The key file is read once per command (again when the store turns
    /// out sealed with a key the first reading lacked: see [`Self::key_of`]).
    fn key(&self, identity: &Identity, create: bool) -> Result<&Key> {
        if let Some(keys) = self.keys.get() {
            let Some(fp) = &identity.key_fingerprint else {
                return self.first_key(keys);
            };
            return self.key_of(fp).ok_or_else(|| {
                let fingerprints: Vec<&str> = keys.iter().map(Key::fingerprint).collect();
                self.not_in_keyring(&fingerprints, identity, fp).into()
            });
        }
        // The key file is a keyring (see `keyring`): the store opens with the key of its
        // fingerprint; a store never sealed is sealed with the current key.
        let keys = match (Keyring::load(&self.key_file)?, &identity.key_fingerprint) {
            (Some(ring), Some(fp)) if ring.find(fp).is_none() => {
                return Err(self
                    .not_in_keyring(&ring.fingerprints(), identity, fp)
                    .into());
            }
            (Some(ring), fp) => ring.into_keys(fp.as_deref()),
            (None, Some(fp)) => {
                return Err(KeyError::Missing {
                    path: self.key_file.clone(),
                    store_fingerprint: fp.clone(),
                }
                .into());
            }
            (None, None) if create => vec![create_key(&self.key_file)?],
            (None, None) => {
                return Err(KeyError::Missing {
                    path: self.key_file.clone(),
                    store_fingerprint: "(none yet)".into(),
                }
                .into());
            }
        };
        self.first_key(self.keys.get_or_init(|| keys))
    }

    /// The key of fingerprint `fp` among the key file's keys as this command read them, or
    /// else as the file holds them now: a rekey on this node may have added the store's new
    /// key after this command read the file, and re-sealed the store with it.
    pub(crate) fn key_of(&self, fp: &str) -> Option<&Key> {
        let has = |keys: &'_ Vec<Key>| keys.iter().any(|k| k.fingerprint() == fp);
        let keys = self.keys.get().filter(|keys| has(keys)).or_else(|| {
            Some(self.keys_again.get_or_init(|| {
                Keyring::load(&self.key_file)
                    .ok()
                    .flatten()
                    .map(|ring| ring.into_keys(None))
                    .unwrap_or_default()
            }))
        })?;
        keys.iter().find(|k| k.fingerprint() == fp)
    }

    /// The first of `keys` (a keyring holds at least one key).
    fn first_key<'k>(&self, keys: &'k [Key]) -> Result<&'k Key> {
        keys.first().ok_or_else(|| {
            KeyError::Missing {
                path: self.key_file.clone(),
                store_fingerprint: "(none yet)".into(),
            }
            .into()
        })
    }

    /// The key that opens a store with this identity (never creates one), for migration.
    pub(crate) fn opening_key(&self, identity: &Identity) -> Result<&Key> {
        self.key(identity, false)
    }

    /// One verified reading of the store (every name's whole history); `None` when the store
    /// does not exist. The key is loaded (and checked) only for a store that was written.
    pub(crate) fn verified(&self) -> Result<Option<Verified>> {
        let verified = self.again_if_resealed(|| {
            ledger::read(
                self.store.as_ref(),
                |identity| self.key(identity, false),
                || self.loaded_keys(),
            )
        })?;
        // Entries past the manifest that no key opens: said by every command that says the
        // log's damage (the review's finding: a rollback with such entries in place of those
        // that would show it was served without a word).
        if let Some(entry) = verified.as_ref().and_then(|v| v.log_unopened.first()) {
            self.note_damage(Some(Broken {
                seq: entry.seq,
                problem: Problem::Unanchored,
                through: None,
            }));
        }
        if let Some(v) = &verified
            && v.identity.key_fingerprint.is_some()
            && v.identity.manifest.is_some()
        {
            *self
                .manifest_seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner) =
                Some((v.identity.clone(), v.manifest().clone()));
        }
        Ok(verified)
    }

    /// The manifest of `identity`, verified under `key` ([`ledger::verified_manifest`]); the
    /// one this command's last reading verified when `identity` is the one it came in (the
    /// same store id, key fingerprint and manifest bytes: the same check, the same answer).
    pub(crate) fn verified_manifest(
        &self,
        identity: &Identity,
        key: &Key,
    ) -> Result<Option<Manifest>> {
        let seen = self
            .manifest_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((seen_identity, manifest)) = seen.as_ref()
            && seen_identity == identity
        {
            return Ok(Some(manifest.clone()));
        }
        drop(seen);
        ledger::verified_manifest(self.store.as_ref(), identity, key)
    }

    /// `read` (a reading of the store, then of the key file), done again once when the key
    /// file lacked the store's key because a rekey on this node re-sealed the store between
    /// the two and retired the old key: the store as it is now opens with the file's key.
    fn again_if_resealed<T>(&self, read: impl Fn() -> Result<T>) -> Result<T> {
        match read() {
            Err(Error::StoreKey(
                KeyError::Mismatch {
                    store_fingerprint, ..
                }
                | KeyError::Rekeyed {
                    store_fingerprint, ..
                },
            )) if self.resealed_since(&store_fingerprint)? => read(),
            read => read,
        }
    }

    /// Whether the store is now sealed with another key than `fingerprint`.
    fn resealed_since(&self, fingerprint: &str) -> Result<bool> {
        Ok(self
            .store
            .identity(false)?
            .and_then(|identity| identity.key_fingerprint)
            .is_some_and(|now| now != fingerprint))
    }

    /// The keys of the key file, once a command opened the store with one of them (none
    /// before): every key a log entry past the manifest may be sealed with.
    pub(crate) fn loaded_keys(&self) -> Vec<&Key> {
        self.keys
            .get()
            .into_iter()
            .chain(self.keys_again.get())
            .flatten()
            .collect()
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

    /// The key for writing, and the store (created, with its id, when it does not exist).
    /// The key before the store: a first write whose key cannot be made or read leaves no
    /// store behind.
    fn key_for_writing(&self) -> Result<&Key> {
        self.again_if_resealed(|| self.key_for_writing_as_read())
    }

    /// [`Self::key_for_writing`] from one reading of the store's identity.
    fn key_for_writing_as_read(&self) -> Result<&Key> {
        let unsealed = Identity {
            store_id: String::new(),
            key_fingerprint: None,
            manifest: None,
        };
        match self.store.identity(false)? {
            Some(identity) if identity.key_fingerprint.is_some() => {
                // Before the key file is compared with it (a read checks it the same way).
                ledger::check_fingerprint(self.store.as_ref(), &identity)?;
                self.key(&identity, false)
            }
            Some(_) => match ledger::unsealed(self.store.as_ref())? {
                // Without a fingerprint, a key is made only for a store that holds nothing.
                None => {
                    self.verified()?;
                    self.key(&unsealed, true)
                }
                // Another writer sealed it meanwhile: its key, as above.
                Some(identity) => {
                    ledger::check_fingerprint(self.store.as_ref(), &identity)?;
                    self.key(&identity, false)
                }
            },
            None => {
                let key = self.key(&unsealed, true)?;
                self.store
                    .identity(true)?
                    .ok_or_else(|| StoreError::Unusable {
                        location: self.store.location(),
                        action: "created",
                        detail: "it did not record an id".into(),
                    })?;
                Ok(key)
            }
        }
    }

    /// Whether a write that failed with `e` is tried again on the store as it is now: another
    /// writer got there first, or another node re-sealed the store meanwhile with a key of
    /// this keyring (the next read opens it with that key). A store sealed first by a key
    /// this keyring lacks is an error ([`Self::writing_error`]).
    fn worth_retrying(&self, e: &Error) -> bool {
        match e {
            Error::Store(StoreError::Conflict { .. }) => true,
            Error::Store(StoreError::KeyMismatch {
                store_fingerprint, ..
            }) => self.key_of(store_fingerprint).is_some(),
            _ => false,
        }
    }

    /// A store error met while writing, with a key mismatch said as the key file's.
    fn writing_error(&self, e: Error) -> Error {
        match e {
            Error::Store(StoreError::KeyMismatch {
                key_fingerprint,
                store_fingerprint,
                ..
            }) => KeyError::Mismatch {
                path: self.key_file.clone(),
                key_fingerprint,
                store_fingerprint,
            }
            .into(),
            e => e,
        }
    }

    /// Appends a new version of `name` computed from the latest one, retrying lost races.
    /// `make` returns the action and the value (None: remove) for the next version, or an
    /// error that stops the write. A damaged name is not written to (it is purged first).
    /// The change-log entry names `command` (`None`: the action, e.g. `update`).
    fn write<'v>(
        &self,
        name: CredentialName,
        command: Option<&'static str>,
        mut make: impl FnMut(Option<&Record>) -> Result<(Action, Option<u64>, Option<&'v SecretValue>)>,
    ) -> Result<(u64, Action)> {
        self.key_for_writing()?;
        let name_text = name.to_string();
        for _ in 0..MAX_RETRIES {
            let verified = self.verified()?.ok_or_else(|| StoreError::Unusable {
                location: self.store.location(),
                action: "read",
                detail: "it disappeared while being written".into(),
            })?;
            // The key of the store as read now: another node may have re-sealed it.
            let key = self.key(&verified.identity, false)?;
            let newest = verified.newest(&name_text)?;
            let version = newest.map_or(0, |r| r.version) + 1;
            let (action, restored_from, value) = make(newest)?;
            let next = Next {
                action,
                restored_from,
                value,
                written_at_ms: now_ms(),
            };
            let change = LogChange {
                command: command.unwrap_or(action.as_str()),
                name: Some(&name_text),
                names: Vec::new(),
                version: Some(version),
                detail: restored_from.map(|from| format!("value of version {from}")),
                digest_log: None,
            };
            let Some(entry) = self.next_log_entry(key, &verified, &change)? else {
                continue;
            };
            match ledger::append_next(
                self.store.as_ref(),
                key,
                &verified,
                &name_text,
                next,
                Some(&entry),
            ) {
                Ok(version) => return Ok((version, action)),
                Err(e) if self.worth_retrying(&e) => continue,
                Err(e) => return Err(self.writing_error(e)),
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
        self.put_as(name, value, allow, None)
    }

    /// [`CredentialStore::put`] of a password `rotate` has put in the repository: the change
    /// log says `rotate`.
    pub(crate) fn put_rotated(&self, name: CredentialName, value: &SecretValue) -> Result<Written> {
        self.put_as(name, value, Allow::default(), Some("rotate"))
    }

    fn put_as(
        &self,
        name: CredentialName,
        value: &SecretValue,
        allow: Allow,
        command: Option<&'static str>,
    ) -> Result<Written> {
        let warnings = check_value(name, value.expose(), allow)
            .map_err(|violation| Error::InvalidValue { name, violation })?;
        let (version, action) = self.write(name, command, |latest| {
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
        let Some(verified) = self.verified()? else {
            return Ok(None);
        };
        match verified.newest(&name.to_string())? {
            Some(v) => self.entry(&verified.identity, name, v),
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

    /// Every live credential, in catalog order, without opening a value: one read of the
    /// store (its records verified under the key). Damaged names are left out.
    pub fn listing(&self) -> Result<Listing> {
        let Some(verified) = self.verified()? else {
            return Ok(Listing::default());
        };
        Ok(verified.newest_records().filter_map(stored).collect())
    }

    /// Every live credential, in catalog order, opened; and every credential that cannot
    /// be answered from (each an [`Error::Damaged`] naming it), which does not keep the
    /// others from being listed.
    pub fn list(&self) -> Result<Listed> {
        let Some(verified) = self.verified()? else {
            return Ok(Listed::default());
        };
        let mut listed = Listed::default();
        for name_text in verified.names() {
            let Ok(name) = name_text.parse::<CredentialName>() else {
                continue;
            };
            match verified.newest(name_text) {
                Ok(Some(record)) => {
                    if let Some(entry) = self.entry(&verified.identity, name, record)? {
                        listed.entries.push(entry);
                    }
                }
                Ok(None) => {}
                Err(damaged) => listed.damaged.push(damaged),
            }
        }
        listed.entries.sort_by_key(|e| e.name);
        Ok(listed)
    }

    /// The values of the sets `filter` means for `purpose` (see [`select`]), in catalog
    /// order: the sets are chosen on one read of the store, and only their values are
    /// opened, each once. A chosen set with a damaged credential is [`Error::Damaged`];
    /// damage elsewhere does not matter.
    pub fn sets(&self, filter: &SetFilter, purpose: Purpose) -> Result<Vec<SetValues>> {
        self.sets_and_listing(filter, purpose).map(|(sets, _)| sets)
    }

    /// [`CredentialStore::sets`], and the [`Listing`] of the same read of the store (when
    /// each credential was set, its version: what `validate` records its checks against).
    pub fn sets_and_listing(
        &self,
        filter: &SetFilter,
        purpose: Purpose,
    ) -> Result<(Vec<SetValues>, Listing)> {
        let verified = self.verified()?;
        let listing: Listing = verified
            .iter()
            .flat_map(Verified::newest_records)
            .filter_map(stored)
            .collect();
        let damaged_in = |set: SetId| {
            verified.as_ref().and_then(|v| {
                v.damaged()
                    .find(|(n, _)| n.parse::<CredentialName>().is_ok_and(|n| n.set() == set))
                    .map(|(name, damage)| Error::Damaged {
                        name: name.to_string(),
                        damage: damage.clone(),
                    })
            })
        };
        // A set the command names outright, damaged, is refused as such rather than as
        // incomplete.
        if let Some(set) = filter.name.map(CredentialName::set).or_else(|| {
            filter
                .provider
                .zip(filter.role)
                .map(|(provider, role)| SetId { provider, role })
        }) && let Some(err) = damaged_in(set)
        {
            return Err(err);
        }
        // The one set meant, incomplete because a credential of it is damaged: refused as damaged.
        let chosen = select(&listing, filter, purpose).map_err(|e| match e {
            Error::IncompleteSet { set, .. } => damaged_in(set).unwrap_or(e),
            // A name the filter gives that holds no value: why, as the store can tell.
            Error::NotFound { name } => self.absent(name),
            e => e,
        })?;
        if let Some(err) = chosen.iter().find_map(|set| damaged_in(*set)) {
            return Err(err);
        }
        let mut sets: Vec<SetValues> = chosen.into_iter().map(SetValues::empty).collect();
        let Some(verified) = verified else {
            // A store without an id holds nothing.
            return Ok((sets, listing));
        };
        for record in verified.newest_records() {
            let Ok(name) = record.name.parse::<CredentialName>() else {
                continue;
            };
            let Some(values) = sets.iter_mut().find(|v| v.set == name.set()) else {
                continue;
            };
            if let Some(value) = self.open_version(&verified.identity, record)? {
                values.set_field(name.field, value);
            }
        }
        Ok((sets, listing))
    }

    /// Removes `name`; the value stays in the history and can be restored.
    pub fn remove(&self, name: CredentialName) -> Result<u64> {
        if self.store.identity(false)?.is_none() {
            return Err(self.absent(name));
        }
        let written = self.write(name, None, |latest| {
            if latest.is_some_and(Record::is_live) {
                Ok((Action::Remove, None, None))
            } else {
                Err(Error::NotFound { name })
            }
        });
        match written {
            Ok((version, _)) => Ok(version),
            Err(Error::NotFound { .. }) => Err(self.absent(name)),
            Err(e) => Err(e),
        }
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

// Records outside the catalog that an interrupted operation leaves for its next run; writes
// of several names as one; a set's access key and secret key as a pair; the store key's
// rotation.
mod pair;
mod rekey;
mod staged;
mod together;

pub use rekey::{RekeyError, RekeyStage, RekeyStep};
