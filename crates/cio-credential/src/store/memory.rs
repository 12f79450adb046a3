//! A store in memory, for tests: the third backend the shared suites run on (with SQLite and
//! etcd), and the one whose faults a test can choose.
//!
//! Rules:
//! - it keeps the [`Store`] contract exactly as the other backends do (conditional appends,
//!   one key per store, removes are records, only purge destroys); the suites prove it;
//! - clones share one store, as two processes share a file or a cluster;
//! - faults are injected, never random: a test says which call fails and how, so every
//!   failure path of [`crate::credentials`] can be reached without a broken disk or network.

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{
    Identity, LogAppend, LogRecord, ManifestSwap, ReadRecord, Record, Resealed, Snapshot, Store,
    StoreError, new_store_id,
};

/// A fault the next append meets, before it changes anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendFault {
    /// Another writer appended first: [`StoreError::Conflict`], nothing written.
    LoseRace,
    /// Another writer sealed the (new) store with the key of this fingerprint first: the
    /// append meets [`StoreError::KeyMismatch`].
    OtherKeyFirst(String),
}

#[derive(Default)]
struct State {
    identity: Option<Identity>,
    /// Every record of every name, by name, oldest first.
    records: BTreeMap<String, Vec<Record>>,
    /// The change log, by number.
    log: Vec<LogRecord>,
    notes: BTreeMap<String, Vec<u8>>,
    append_faults: VecDeque<AppendFault>,
    unavailable: bool,
    reads: usize,
}

/// A store in memory; clones share it.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock left consistent data: every change
        // below is one push or one assignment.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next appends meet these faults, one each, in order.
    pub fn fail_appends(&self, faults: impl IntoIterator<Item = AppendFault>) {
        self.state().append_faults.extend(faults);
    }

    /// While `true`, every call fails with [`StoreError::Unreachable`], as a cluster without
    /// quorum does.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.state().unavailable = unavailable;
    }

    /// Flips one bit of the sealed value of `name` at `version`, as a damaged disk would:
    /// the record still reads, its value no longer opens. `false` when there is no such
    /// value.
    pub fn damage(&self, name: &str, version: u64) -> bool {
        let mut state = self.state();
        let sealed = state
            .records
            .get_mut(name)
            .and_then(|records| records.iter_mut().find(|r| r.version == version))
            .and_then(|r| r.sealed.as_mut())
            .and_then(|sealed| sealed.last_mut());
        match sealed {
            Some(byte) => {
                *byte ^= 1;
                true
            }
            None => false,
        }
    }

    /// Edits the store below the [`Store`] contract, as a hand with write access to a file
    /// or a cluster can: its identity (id, fingerprint, manifest) and its records.
    pub fn tamper(
        &self,
        f: impl FnOnce(&mut Option<Identity>, &mut BTreeMap<String, Vec<Record>>),
    ) {
        let mut state = self.state();
        let State {
            identity, records, ..
        } = &mut *state;
        f(identity, records);
        records.retain(|_, r| !r.is_empty());
    }

    /// Edits the change log below cio, as [`MemoryStore::tamper`] edits the records.
    pub fn tamper_log(&self, f: impl FnOnce(&mut Vec<LogRecord>)) {
        f(&mut self.state().log);
    }

    /// Lets a test change the notes below the store's own rules (no manifest swap).
    pub fn tamper_notes(&self, f: impl FnOnce(&mut BTreeMap<String, Vec<u8>>)) {
        f(&mut self.state().notes);
    }

    /// How many reads of records (`latest`, `list_latest`, `history`, `all_versions`) the
    /// store has answered: a network round trip each on a cluster store.
    pub fn reads(&self) -> usize {
        self.state().reads
    }

    /// The state for a call: counts a read, fails while unavailable.
    fn call(&self, read: bool) -> Result<MutexGuard<'_, State>, StoreError> {
        let mut state = self.state();
        if state.unavailable {
            return Err(StoreError::Unreachable {
                location: self.location(),
                detail: "the test made it unavailable".into(),
            });
        }
        if read {
            state.reads += 1;
        }
        Ok(state)
    }
}

/// Records without an identity: as the other backends say it.
fn id_removed() -> StoreError {
    StoreError::Corrupt {
        location: "memory".into(),
        detail: "its store id was removed".into(),
    }
}

impl Store for MemoryStore {
    fn location(&self) -> String {
        "memory".to_string()
    }

    fn identity(&self, create: bool) -> Result<Option<Identity>, StoreError> {
        let mut state = self.call(false)?;
        if state.identity.is_none() && !state.records.is_empty() {
            return Err(id_removed());
        }
        if create && state.identity.is_none() {
            state.identity = Some(Identity {
                store_id: new_store_id(),
                key_fingerprint: None,
                manifest: None,
            });
        }
        Ok(state.identity.clone())
    }

    fn read(&self) -> Result<Option<Snapshot>, StoreError> {
        let state = self.call(true)?;
        let Some(identity) = state.identity.clone() else {
            return if state.records.is_empty() {
                Ok(None)
            } else {
                Err(id_removed())
            };
        };
        let records = state.records.values().flatten().cloned().map(Ok).collect();
        Ok(Some(Snapshot {
            identity,
            records,
            log_past: log_past(&state.log, identity_manifest_log_seq(&state.identity)),
        }))
    }

    fn latest(&self, name: &str) -> Result<Option<ReadRecord>, StoreError> {
        let state = self.call(true)?;
        Ok(state
            .records
            .get(name)
            .and_then(|r| r.last())
            .cloned()
            .map(Ok))
    }

    fn list_latest(&self) -> Result<Vec<ReadRecord>, StoreError> {
        let state = self.call(true)?;
        Ok(state
            .records
            .values()
            .filter_map(|r| r.last())
            .cloned()
            .map(Ok)
            .collect())
    }

    fn history(&self, name: &str) -> Result<Vec<ReadRecord>, StoreError> {
        let state = self.call(true)?;
        Ok(state
            .records
            .get(name)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(Ok)
            .collect())
    }

    fn all_versions(&self) -> Result<Vec<ReadRecord>, StoreError> {
        let state = self.call(true)?;
        Ok(state.records.values().flatten().cloned().map(Ok).collect())
    }

    fn append_all_logged(
        &self,
        batch: &[(u64, &Record)],
        key_fingerprint: &str,
        manifest: &ManifestSwap,
        log: Option<&LogAppend>,
    ) -> Result<(), StoreError> {
        let Some((_, first)) = batch.first() else {
            return Ok(());
        };
        let location = self.location();
        let mut state = self.call(false)?;
        if log.is_some_and(|entry| !follows(&state.log, entry)) {
            return Err(log_conflict());
        }
        let fault = state.append_faults.pop_front();
        if fault == Some(AppendFault::LoseRace) {
            return Err(StoreError::Conflict {
                name: first.name.clone(),
            });
        }
        let State {
            identity,
            records,
            log: change_log,
            ..
        } = &mut *state;
        // An append creates the store, as SQLite's and etcd's do.
        let identity = identity.get_or_insert_with(|| Identity {
            store_id: new_store_id(),
            key_fingerprint: None,
            manifest: None,
        });
        if let Some(AppendFault::OtherKeyFirst(fingerprint)) = fault {
            identity.key_fingerprint = Some(fingerprint);
        }
        if let Some(fp) = identity
            .key_fingerprint
            .as_ref()
            .filter(|fp| *fp != key_fingerprint)
        {
            return Err(StoreError::KeyMismatch {
                location,
                key_fingerprint: key_fingerprint.to_string(),
                store_fingerprint: fp.clone(),
            });
        }
        if identity.manifest != manifest.expected || identity.store_id != manifest.store_id {
            return Err(StoreError::Conflict {
                name: first.name.clone(),
            });
        }
        // Every condition first, each name's later entries against its earlier ones: a
        // failed one writes nothing.
        let mut heads: BTreeMap<&str, u64> = BTreeMap::new();
        for (expected, record) in batch {
            let latest = *heads.entry(&record.name).or_insert_with(|| {
                records
                    .get(&record.name)
                    .and_then(|r| r.last())
                    .map_or(0, |r| r.version)
            });
            if latest != *expected || Some(record.version) != expected.checked_add(1) {
                return Err(StoreError::Conflict {
                    name: record.name.clone(),
                });
            }
            heads.insert(&record.name, record.version);
        }
        identity.key_fingerprint = Some(key_fingerprint.to_string());
        identity.manifest = Some(manifest.new.clone());
        for (_, record) in batch {
            records
                .entry(record.name.clone())
                .or_default()
                .push((*record).clone());
        }
        if let Some(log) = log {
            add_entry(change_log, log);
        }
        Ok(())
    }

    fn replace_all(
        &self,
        whole: &Resealed<'_>,
        key_fingerprint: &str,
        manifest: &ManifestSwap,
    ) -> Result<(), StoreError> {
        let mut state = self.call(false)?;
        if state.log.last().map_or(0, |last| last.seq) != whole.log_tail {
            return Err(log_conflict());
        }
        let State {
            identity,
            records,
            log,
            notes,
            ..
        } = &mut *state;
        let Some(identity) = identity.as_mut() else {
            return Err(StoreError::Conflict {
                name: "(every name)".into(),
            });
        };
        if identity.manifest != manifest.expected || identity.store_id != manifest.store_id {
            return Err(StoreError::Conflict {
                name: "(every name)".into(),
            });
        }
        records.clear();
        for record in whole.records {
            records
                .entry(record.name.clone())
                .or_default()
                .push(record.clone());
        }
        *log = whole.log.to_vec();
        for (key, sealed) in whole.notes {
            notes.insert(key.clone(), sealed.clone());
        }
        identity.key_fingerprint = Some(key_fingerprint.to_string());
        identity.manifest = Some(manifest.new.clone());
        Ok(())
    }

    fn purge_logged(
        &self,
        name: &str,
        manifest: &ManifestSwap,
        log: Option<&LogAppend>,
    ) -> Result<usize, StoreError> {
        let mut state = self.call(false)?;
        if log.is_some_and(|entry| !follows(&state.log, entry)) {
            return Err(log_conflict());
        }
        let State {
            identity,
            records,
            log: change_log,
            ..
        } = &mut *state;
        let Some(identity) = identity.as_mut() else {
            return Ok(0);
        };
        if identity.manifest != manifest.expected || identity.store_id != manifest.store_id {
            return Err(StoreError::Conflict {
                name: name.to_string(),
            });
        }
        identity.manifest = Some(manifest.new.clone());
        if let Some(log) = log {
            add_entry(change_log, log);
        }
        Ok(records.remove(name).map_or(0, |r| r.len()))
    }

    fn append_log(&self, log: &LogAppend) -> Result<(), StoreError> {
        let mut state = self.call(false)?;
        if !follows(&state.log, log) {
            return Err(log_conflict());
        }
        add_entry(&mut state.log, log);
        Ok(())
    }

    fn log_tail(&self) -> Result<Option<LogRecord>, StoreError> {
        Ok(self.call(true)?.log.last().cloned())
    }

    fn log(&self) -> Result<Vec<LogRecord>, StoreError> {
        Ok(self.call(true)?.log.clone())
    }

    fn notes(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let state = self.call(true)?;
        Ok(state
            .notes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn put_notes_logged(
        &self,
        notes: &[(String, Vec<u8>)],
        manifest: Option<&ManifestSwap>,
        log: Option<&LogAppend>,
    ) -> Result<(), StoreError> {
        let mut state = self.call(false)?;
        if log.is_some_and(|entry| !follows(&state.log, entry)) {
            return Err(log_conflict());
        }
        if let Some(swap) = manifest {
            let Some(identity) = state.identity.as_mut() else {
                return Err(id_removed());
            };
            if identity.manifest != swap.expected || identity.store_id != swap.store_id {
                return Err(StoreError::Conflict {
                    name: "the store's manifest".into(),
                });
            }
            identity.manifest = Some(swap.new.clone());
        }
        for (key, sealed) in notes {
            state.notes.insert(key.clone(), sealed.clone());
        }
        if let Some(log) = log {
            add_entry(&mut state.log, log);
        }
        Ok(())
    }
}

/// Whether `log.entry` may go after `log.after` in `entries`, as
/// [`Store::append_all_logged`] says.
fn follows(entries: &[LogRecord], log: &LogAppend) -> bool {
    log.after < log.entry.seq
        && (log.after == 0 || entries.iter().any(|e| e.seq == log.after))
        && !entries
            .iter()
            .any(|e| e.seq > log.after && e.seq <= log.entry.seq)
}

/// Adds `log.entry` to `entries` (checked by [`follows`]) in its place by number.
fn add_entry(entries: &mut Vec<LogRecord>, log: &LogAppend) {
    let at = entries.partition_point(|e| e.seq < log.entry.seq);
    entries.insert(at, log.entry.clone());
}

fn log_conflict() -> StoreError {
    StoreError::Conflict {
        name: "the change log".into(),
    }
}

/// The `log_seq` the manifest of `identity` claims (0: none).
fn identity_manifest_log_seq(identity: &Option<Identity>) -> u64 {
    identity
        .as_ref()
        .and_then(|i| i.manifest.as_deref())
        .map_or(0, crate::integrity::claimed_log_seq)
}

/// The entries of `log` numbered past `log_seq` (none when it is 0).
fn log_past(log: &[LogRecord], log_seq: u64) -> Vec<LogRecord> {
    if log_seq == 0 {
        return Vec::new();
    }
    log.iter().filter(|e| e.seq > log_seq).cloned().collect()
}
