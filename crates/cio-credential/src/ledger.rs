//! A store read and written through its manifest: every answer verified, every write signed
//! and chained ([`crate::integrity`] says what is checked; this module does the reading and
//! writing around it, for [`crate::credentials`] and [`crate::migrate`]).
//!
//! Rules:
//! - a reading is one [`Store::read`]: the manifest and every record, of one moment; every
//!   name's whole history is verified on every reading;
//! - a store that was never written has no key fingerprint, no manifest and no record, and
//!   reads as empty without a key; any other combination without a fingerprint or a manifest
//!   was altered, and the whole store is refused ([`StoreError::Corrupt`], exit 3), as is a
//!   manifest that does not verify;
//! - a write is signed on top of the reading it follows: the new record's `prev_mac` is the
//!   name's newest `mac`, its `seq` one more than the manifest's, and the manifest it
//!   replaces is the one read; a store that changed in between refuses the write
//!   ([`StoreError::Conflict`]) and the caller reads again.

use std::collections::BTreeMap;

use crate::audit::tag_of;
use crate::crypto::{Binding, Key};
use crate::error::{Error, Result};
use crate::integrity::{
    Authenticator, Damage, Head, MAX_SEALED_BEFORE, MacKey, Manifest, check_store, note_digest,
};
use crate::secret::SecretValue;
use crate::store::{
    Action, Identity, LogAppend, LogRecord, ManifestSwap, Record, Resealed, Snapshot, Store,
    StoreError,
};

/// A store's manifest and every name's history, verified under its key.
pub(crate) struct Verified {
    pub identity: Identity,
    manifest: Manifest,
    /// Every name's versions (live or removed), oldest first, or why it cannot be answered
    /// from; by name.
    names: BTreeMap<String, Result<Vec<Record>, Damage>>,
    /// Change-log entries numbered past the manifest's `log_seq` that do not open under the
    /// store's key: junk, or entries another key of the keyring sealed (a copy put back
    /// across a rekey), which [`check_log_past`] with that key tells apart.
    pub log_unopened: Vec<LogRecord>,
}

impl Verified {
    /// The fingerprints of the keys that sealed the store before re-seals replaced them,
    /// oldest first, as the verified manifest records them.
    pub fn replaced_keys(&self) -> &[String] {
        &self.manifest.sealed_before
    }

    /// This store as read, with the key history of `source` (a store sealed with the same
    /// key, being copied into this one) added to its manifest for the next write: the keys
    /// re-seals replaced, and where the key lives. A copy must not let a node behind the
    /// rotation re-seal it back to an old key.
    pub fn with_key_history_of(mut self, source: &Verified) -> Verified {
        let own = std::mem::take(&mut self.manifest.sealed_before);
        self.manifest.sealed_before =
            key_history(source.manifest.sealed_before.iter().cloned().chain(own));
        if self.manifest.key_home.is_none() {
            self.manifest.key_home.clone_from(&source.manifest.key_home);
        }
        self
    }

    /// Where the unfinished migration into this store copies from (`None`: none is under
    /// way), as the verified manifest says.
    pub fn migrating_from(&self) -> Option<&str> {
        self.manifest.migrating_from.as_deref()
    }

    /// This store as read, for a write of a migration from `source` that leaves it
    /// unfinished (`Some`: readers refuse it until a later write) or finishes it (`None`).
    pub fn with_migration_from(mut self, source: Option<String>) -> Verified {
        self.manifest.migrating_from = source;
        self
    }

    /// The verified manifest of this reading.
    pub(crate) fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The number of the change-log entry of the newest logged change, as the manifest says
    /// (0: none): the log must reach it.
    pub fn log_seq(&self) -> u64 {
        self.manifest.log_seq
    }

    /// The versions of `name`, oldest first (empty if it has none); an error if damaged.
    pub fn history(&self, name: &str) -> Result<&[Record]> {
        match self.names.get(name) {
            None => Ok(&[]),
            Some(Ok(records)) => Ok(records),
            Some(Err(damage)) => Err(Error::Damaged {
                name: name.to_string(),
                damage: damage.clone(),
            }),
        }
    }

    /// The newest record of `name`: `None` if it has none, an error if it is damaged.
    pub fn newest(&self, name: &str) -> Result<Option<&Record>> {
        Ok(self.history(name)?.last())
    }

    /// Every name the store holds (damaged or not), by name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(String::as_str)
    }

    /// The newest record of every undamaged name, by name.
    pub fn newest_records(&self) -> impl Iterator<Item = &Record> {
        self.names
            .values()
            .filter_map(|r| r.as_ref().ok())
            .filter_map(|records| records.last())
    }

    /// The damaged names, with why, by name.
    pub fn damaged(&self) -> impl Iterator<Item = (&str, &Damage)> {
        self.names
            .iter()
            .filter_map(|(name, r)| r.as_ref().err().map(|d| (name.as_str(), d)))
    }
}

/// The store refused as a whole, for `detail`.
fn corrupt(store: &dyn Store, detail: impl Into<String>) -> Error {
    StoreError::Corrupt {
        location: store.location(),
        detail: detail.into(),
    }
    .into()
}

/// The authenticator of a sealed store with this key.
fn authenticator<'a>(
    mac_key: &'a MacKey,
    identity: &'a Identity,
    key: &'a Key,
) -> Authenticator<'a> {
    Authenticator::new(mac_key, &identity.store_id, key.fingerprint())
}

/// Refuses a store whose record of its key's fingerprint is not a fingerprint (altered below
/// cio: every cio writes 16 hex digits), as damaged, before the fingerprint is compared with
/// the key file's or quoted in an error: a record of any length and any bytes would be
/// repeated whole in the mismatch message, and its text proves nothing about any key.
pub(crate) fn check_fingerprint(store: &dyn Store, identity: &Identity) -> Result<()> {
    match &identity.key_fingerprint {
        Some(fp) if !crate::crypto::is_fingerprint(fp) => Err(corrupt(
            store,
            "its record of the key's fingerprint is not a fingerprint",
        )),
        _ => Ok(()),
    }
}

/// Why a store without a key fingerprint that was written to is refused.
const FINGERPRINT_REMOVED: &str = "its key fingerprint was removed";

/// Checks that a store whose identity, as read, records no key fingerprint was never written
/// to: its first write records the fingerprint in the same transaction as its first record
/// and first change-log entry. `Ok(None)`: it holds nothing. `Ok(Some(identity))`: another
/// writer sealed it since it was read (the identity now has a fingerprint). Records or log
/// entries while the fingerprint is still missing mean it (and the records, perhaps) were
/// removed below cio: sealing such a store with whatever key is at hand would mix two keys
/// in one store, so it is refused as damaged.
pub(crate) fn unsealed(store: &dyn Store) -> Result<Option<Identity>> {
    if store.log_tail()?.is_none() && store.list_latest()?.is_empty() {
        return Ok(None);
    }
    match store.identity(false)? {
        Some(identity) if identity.key_fingerprint.is_some() => Ok(Some(identity)),
        _ => Err(corrupt(store, FINGERPRINT_REMOVED)),
    }
}

/// Verifies the manifest of `identity` (with `key`, which the caller checked against the
/// fingerprint); `None` for a store never written (`Err` with [`SEALED_MEANWHILE`] when
/// another writer sealed it since it was read). `had_records`: the reading found records.
fn manifest_of<'k>(
    store: &dyn Store,
    identity: &Identity,
    had_records: bool,
    key: impl FnOnce(&Identity) -> Result<&'k Key>,
) -> Result<Option<(&'k Key, Manifest)>> {
    check_fingerprint(store, identity)?;
    match (&identity.key_fingerprint, &identity.manifest) {
        (None, None) if !had_records => match unsealed(store)? {
            None => Ok(None),
            Some(_) => Err(StoreError::Conflict {
                name: SEALED_MEANWHILE.into(),
            }
            .into()),
        },
        (None, _) => Err(corrupt(store, FINGERPRINT_REMOVED)),
        (Some(_), None) => Err(corrupt(
            store,
            "its manifest was removed (or an earlier cio wrote it, before records were authenticated)",
        )),
        (Some(_), Some(bytes)) => {
            let key = key(identity)?;
            Ok(Some((key, open_manifest(store, identity, key, bytes)?)))
        }
    }
}

/// Reads and verifies the store: its manifest and every name's whole history. `key` gives
/// the store key for an identity (checking its fingerprint); it is only asked for a store
/// that was written. `None` when the store does not exist. A store a migration is still
/// filling (or one that stopped half-way) is refused ([`StoreError::MigrationUnfinished`]):
/// it may hold a name's newest version beside another's old one.
pub(crate) fn read<'k>(
    store: &dyn Store,
    key: impl Fn(&Identity) -> Result<&'k Key>,
    keyring: impl Fn() -> Vec<&'k Key>,
) -> Result<Option<Verified>> {
    let verified = read_unfinished(store, key, keyring)?;
    if let Some(source) = verified
        .as_ref()
        .and_then(|v| v.manifest.migrating_from.as_ref())
    {
        return Err(StoreError::MigrationUnfinished {
            location: store.location(),
            from: source.clone(),
        }
        .into());
    }
    Ok(verified)
}

/// [`read`], also of a store a migration has not finished filling: for the migration, which
/// goes on from what it finds ([`Verified::migrating_from`] says where it came from).
pub(crate) fn read_unfinished<'k>(
    store: &dyn Store,
    key: impl Fn(&Identity) -> Result<&'k Key>,
    keyring: impl Fn() -> Vec<&'k Key>,
) -> Result<Option<Verified>> {
    let verified = match read_once(store, &key) {
        // Sealed by another writer's first write just after it was read empty: read again.
        Err(Error::Store(StoreError::Conflict { name })) if name == SEALED_MEANWHILE => {
            read_once(store, &key)
        }
        other => other,
    }?;
    // Log entries past the manifest that its key does not open may be another key's of the
    // keyring (`keyring`, asked once the store's key was): a copy put back across a rekey
    // (re-sealed, then rolled back to the copy sealed with the old key, while the log stayed).
    if let Some(v) = &verified
        && !v.log_unopened.is_empty()
    {
        for other in keyring() {
            check_log_past(
                store,
                other,
                &v.identity.store_id,
                v.log_seq(),
                v.log_unopened.clone(),
            )?;
        }
    }
    Ok(verified)
}

/// What [`manifest_of`] says of a store read empty and unsealed that another writer sealed
/// before the emptiness could be confirmed: [`read`] reads it again.
const SEALED_MEANWHILE: &str = "the store, sealed by another writer while it was read";

fn read_once<'k>(
    store: &dyn Store,
    key: &impl Fn(&Identity) -> Result<&'k Key>,
) -> Result<Option<Verified>> {
    let Some(Snapshot {
        identity,
        records,
        log_past,
    }) = store.read()?
    else {
        return Ok(None);
    };
    let Some((key, manifest)) = manifest_of(store, &identity, !records.is_empty(), key)? else {
        return Ok(Some(Verified {
            identity,
            manifest: Manifest::default(),
            names: BTreeMap::new(),
            log_unopened: Vec::new(),
        }));
    };
    let mac_key = key.mac_key();
    let names = check_store(&authenticator(&mac_key, &identity, key), &manifest, records)
        .map_err(|outrun| corrupt(store, outrun.to_string()))?;
    let past: Vec<LogRecord> = if manifest.log_seq == 0 {
        Vec::new()
    } else {
        log_past
            .into_iter()
            .filter(|e| e.seq > manifest.log_seq)
            .collect()
    };
    let log_unopened = check_log_past(store, key, &identity.store_id, manifest.log_seq, past)?;
    Ok(Some(Verified {
        identity,
        manifest,
        names,
        log_unopened,
    }))
}

/// Refuses the store when its change log has an entry the manifest does not reach: every
/// logged write replaces the manifest in the same transaction as its entry, so an entry that
/// opens under `key`, numbered past the manifest's `log_seq`, shows a manifest put back from
/// an earlier copy while the log stayed (a name's newest version deleted with it brings back
/// a rotated-out secret). A whole earlier copy holds its own log, which its manifest reaches.
/// `past` are the entries numbered past `log_seq` (none for a manifest without one, written
/// before cio kept it); returns those that do not open under `key` (junk, said by the log's
/// own checks, or sealed by another key of the keyring: the caller tries those).
pub(crate) fn check_log_past(
    store: &dyn Store,
    key: &Key,
    store_id: &str,
    log_seq: u64,
    past: Vec<LogRecord>,
) -> Result<Vec<LogRecord>> {
    let (opened, unopened): (Vec<LogRecord>, Vec<LogRecord>) =
        past.into_iter().partition(|entry| {
            !crate::audit::open(key, store_id, std::slice::from_ref(entry))
                .entries
                .is_empty()
        });
    match opened.first() {
        Some(entry) => Err(StoreError::RolledBack {
            location: store.location(),
            entry: entry.seq,
            log_seq,
        }
        .into()),
        None => Ok(unopened),
    }
}

/// The next version of a name, as a write asks for it.
pub(crate) struct Next<'v> {
    pub action: Action,
    pub restored_from: Option<u64>,
    /// `None` for a removal.
    pub value: Option<&'v SecretValue>,
    pub written_at_ms: i64,
}

/// Appends the next version of `name` on top of `verified` (which must hold the newest state
/// the caller decided on), sealed and signed with `key`. Returns the new version number;
/// [`StoreError::Conflict`] when the store changed since `verified` was read.
pub(crate) fn append_next(
    store: &dyn Store,
    key: &Key,
    verified: &Verified,
    name: &str,
    next: Next<'_>,
    log: Option<&LogAppend>,
) -> Result<u64> {
    let versions = append_all_next(store, key, verified, &[(name, next)], log)?;
    Ok(versions[0])
}

/// Appends the next versions of several names (a name may come several times: its versions
/// follow each other, in order) on top of `verified`, all or nothing: one store write, one
/// manifest swap, each record chained to its name's previous one and numbered after it
/// (`seq`). Returns each new version number, in order.
pub(crate) fn append_all_next(
    store: &dyn Store,
    key: &Key,
    verified: &Verified,
    nexts: &[(&str, Next<'_>)],
    log: Option<&LogAppend>,
) -> Result<Vec<u64>> {
    let identity = &verified.identity;
    let mac_key = key.mac_key();
    let auth = authenticator(&mac_key, identity, key);
    let mut manifest = verified.manifest.clone();
    // Per name: the newest (version, mac) as the batch builds on it.
    let mut newest: BTreeMap<&str, (u64, Vec<u8>)> = BTreeMap::new();
    let mut records = Vec::with_capacity(nexts.len());
    for (name, next) in nexts {
        let (expected, prev_mac) = match newest.get(name) {
            Some(head) => head.clone(),
            None => verified
                .newest(name)?
                .map_or((0, Vec::new()), |r| (r.version, r.mac.clone())),
        };
        let version = expected
            .checked_add(1)
            .ok_or_else(|| corrupt(store, format!("{name} has no version number left")))?;
        let seq = manifest
            .seq
            .checked_add(1)
            .ok_or_else(|| corrupt(store, "it has no write number left"))?;
        let sealed = next.value.map(|value| {
            key.seal(
                &Binding {
                    store_id: &identity.store_id,
                    name,
                    version,
                },
                value,
            )
        });
        let mut record = Record {
            name: name.to_string(),
            version,
            action: next.action,
            restored_from: next.restored_from,
            written_at_ms: next.written_at_ms,
            sealed,
            seq,
            prev_mac,
            mac: Vec::new(),
        };
        auth.sign(&mut record);
        manifest.seq = seq;
        manifest.heads.insert(
            name.to_string(),
            Head {
                version,
                mac: record.mac.clone(),
            },
        );
        newest.insert(name, (version, record.mac.clone()));
        records.push((expected, record));
    }
    if let Some(log) = log {
        manifest.logging(log);
    }
    let swap = ManifestSwap {
        store_id: identity.store_id.clone(),
        expected: identity.manifest.clone(),
        new: auth.seal_manifest(&manifest),
    };
    let batch: Vec<(u64, &Record)> = records.iter().map(|(e, r)| (*e, r)).collect();
    store.append_all_logged(&batch, key.fingerprint(), &swap, log)?;
    Ok(records.iter().map(|(_, r)| r.version).collect())
}

/// Destroys every version of `name` on top of `verified` (a damaged name too: purging is
/// how it is repaired); returns how many there were. [`StoreError::Conflict`] when the store
/// changed since `verified` was read.
pub(crate) fn purge(
    store: &dyn Store,
    key: &Key,
    verified: &Verified,
    name: &str,
    log: Option<&LogAppend>,
) -> Result<usize> {
    let identity = &verified.identity;
    let mut manifest = verified.manifest.clone();
    manifest.heads.remove(name);
    manifest.seq = manifest
        .seq
        .checked_add(1)
        .ok_or_else(|| corrupt(store, "it has no write number left"))?;
    if let Some(log) = log {
        manifest.logging(log);
    }
    let mac_key = key.mac_key();
    let swap = ManifestSwap {
        store_id: identity.store_id.clone(),
        expected: identity.manifest.clone(),
        new: authenticator(&mac_key, identity, key).seal_manifest(&manifest),
    };
    Ok(store.purge_logged(name, &swap, log)?)
}

/// Clears the mark of an unfinished migration from the manifest of `verified` (read with
/// [`read_unfinished`]), writing nothing else: for a migration that finds nothing left to
/// copy into a target still marked. [`StoreError::Conflict`] when the store changed since.
pub(crate) fn finish_migration(store: &dyn Store, key: &Key, verified: &Verified) -> Result<()> {
    let mut manifest = verified.manifest.clone();
    manifest.migrating_from = None;
    put_notes(store, key, &verified.identity, Some(&manifest), &[], None)
}

/// The manifest of `identity`, verified under `key` (the key of its fingerprint): what pins
/// the store's notes ([`Manifest::notes`]). `None` for a store that has none (never written:
/// nothing pins its notes; a store that lost its manifest is refused by every reading).
pub(crate) fn verified_manifest(
    store: &dyn Store,
    identity: &Identity,
    key: &Key,
) -> Result<Option<Manifest>> {
    check_fingerprint(store, identity)?;
    let (Some(_), Some(bytes)) = (&identity.key_fingerprint, &identity.manifest) else {
        return Ok(None);
    };
    open_manifest(store, identity, key, bytes).map(Some)
}

/// The manifest `bytes` of `identity`, verified under `key`: one a newer cio wrote is said as
/// such ([`StoreError::Newer`]), any other that does not verify is damage.
fn open_manifest(
    store: &dyn Store,
    identity: &Identity,
    key: &Key,
    bytes: &[u8],
) -> Result<Manifest> {
    let mac_key = key.mac_key();
    authenticator(&mac_key, identity, key)
        .open_manifest(bytes)
        .map_err(|why| match why {
            crate::integrity::NEWER_MANIFEST => StoreError::Newer {
                location: store.location(),
                detail: why.into(),
            }
            .into(),
            why => corrupt(store, why),
        })
}

/// Writes `notes` (sealed, by key), with `manifest` (the verified manifest of `identity`,
/// its pins already updated for `notes`) replacing the one read, in one write; `None`: a
/// store with no manifest yet, whose notes nothing pins. [`StoreError::Conflict`] when the
/// store changed since `identity` was read.
pub(crate) fn put_notes(
    store: &dyn Store,
    key: &Key,
    identity: &Identity,
    manifest: Option<&Manifest>,
    notes: &[(String, Vec<u8>)],
    log: Option<&LogAppend>,
) -> Result<()> {
    let Some(manifest) = manifest else {
        return Ok(store.put_notes_logged(notes, None, log)?);
    };
    let mac_key = key.mac_key();
    let swap = ManifestSwap {
        store_id: identity.store_id.clone(),
        expected: identity.manifest.clone(),
        new: authenticator(&mac_key, identity, key).seal_manifest(manifest),
    };
    Ok(store.put_notes_logged(notes, Some(&swap), log)?)
}

/// The keys a store re-sealed from `old_key` to `new_key` was sealed with before: the
/// manifest's list, then `old_key`, without `new_key` ([`key_history`]).
fn sealed_before(manifest: &Manifest, old_key: &Key, new_key: &Key) -> Vec<String> {
    key_history(
        manifest
            .sealed_before
            .iter()
            .cloned()
            .chain([old_key.fingerprint().to_string()])
            .filter(|fp| fp != new_key.fingerprint()),
    )
}

/// Key fingerprints, oldest first, as a manifest keeps them: each once (at its newest
/// place), the newest [`MAX_SEALED_BEFORE`].
fn key_history(fingerprints: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for fp in fingerprints {
        keys.retain(|k| *k != fp);
        keys.push(fp);
    }
    let excess = keys.len().saturating_sub(MAX_SEALED_BEFORE);
    keys.drain(..excess);
    keys
}

/// What a re-seal writes besides the versions, already sealed under the new key: the whole
/// change log (with its newest entry's number when read) and every note the manifest
/// vouched for (each is pinned anew; any other note is left as it is, and stays unpinned).
pub(crate) struct Rest<'a> {
    pub log: &'a [LogRecord],
    pub log_tail: u64,
    pub notes: &'a [(String, Vec<u8>)],
}

/// Re-seals every version of every name, and re-signs it, under `new_key`, replacing the
/// whole store in one write ([`Store::replace_all`]) on top of `verified` (read and checked
/// under `old_key`): the same names, versions, actions, times and write numbers, each value
/// opened with the old key and sealed with the new one, the chains and the manifest signed
/// anew, and the store's key fingerprint the new key's. `key_home` (where the new key lives)
/// goes into the manifest for nodes that lack the key. A damaged name stops it (repair or
/// purge it first); [`StoreError::Conflict`] when the store changed since `verified`.
/// Returns how many versions were re-sealed.
pub(crate) fn reseal(
    store: &dyn Store,
    old_key: &Key,
    new_key: &Key,
    verified: &Verified,
    key_home: Option<String>,
    rest: &Rest<'_>,
) -> Result<usize> {
    if let Some((name, damage)) = verified.damaged().next() {
        return Err(Error::Damaged {
            name: name.to_string(),
            damage: damage.clone(),
        });
    }
    let identity = &verified.identity;
    let mac_key = new_key.mac_key();
    let auth = authenticator(&mac_key, identity, new_key);
    let mut manifest = Manifest {
        seq: verified.manifest.seq,
        heads: BTreeMap::new(),
        key_home,
        log_seq: rest.log.last().map_or(0, |e| e.seq),
        log_tag: rest.log.last().and_then(tag_of).unwrap_or_default(),
        sealed_before: sealed_before(&verified.manifest, old_key, new_key),
        notes: rest
            .notes
            .iter()
            .map(|(key, sealed)| (key.clone(), note_digest(sealed)))
            .collect(),
        migrating_from: verified.manifest.migrating_from.clone(),
    };
    let mut records = Vec::new();
    for name in verified.names() {
        let mut prev_mac = Vec::new();
        for old in verified.history(name)? {
            let binding = Binding {
                store_id: &identity.store_id,
                name,
                version: old.version,
            };
            let sealed = match &old.sealed {
                Some(sealed) => Some(new_key.seal(&binding, &old_key.open(&binding, sealed)?)),
                None => None,
            };
            let mut record = Record {
                sealed,
                prev_mac: std::mem::take(&mut prev_mac),
                mac: Vec::new(),
                ..old.clone()
            };
            auth.sign(&mut record);
            prev_mac.clone_from(&record.mac);
            manifest.heads.insert(
                name.to_string(),
                Head {
                    version: record.version,
                    mac: record.mac.clone(),
                },
            );
            records.push(record);
        }
    }
    let swap = ManifestSwap {
        store_id: identity.store_id.clone(),
        expected: identity.manifest.clone(),
        new: auth.seal_manifest(&manifest),
    };
    let whole = Resealed {
        records: &records,
        log: rest.log,
        log_tail: rest.log_tail,
        notes: rest.notes,
    };
    store.replace_all(&whole, new_key.fingerprint(), &swap)?;
    Ok(records.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reseal_remembers_the_newest_sixteen_earlier_keys_once_each() {
        let keys: Vec<Key> = (0..20).map(|_| Key::generate()).collect();
        let fp = |i: usize| keys[i].fingerprint().to_string();
        let mut manifest = Manifest::default();
        for i in 0..19 {
            manifest.sealed_before = sealed_before(&manifest, &keys[i], &keys[i + 1]);
        }
        let expected: Vec<String> = (3..19).map(fp).collect();
        assert_eq!(manifest.sealed_before, expected);
        // Back to a key it had (a plain rekey that retires first never does; an old keyring
        // put back might): listed once, and the new key not at all.
        manifest.sealed_before = sealed_before(&manifest, &keys[19], &keys[10]);
        assert_eq!(manifest.sealed_before.len(), 16);
        assert!(!manifest.sealed_before.contains(&fp(10)));
        assert_eq!(manifest.sealed_before.last(), Some(&fp(19)));
        assert_eq!(
            manifest
                .sealed_before
                .iter()
                .filter(|k| **k == fp(18))
                .count(),
            1
        );
    }
}
