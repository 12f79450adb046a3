//! Moving credentials from one store to another (e.g. from a node's SQLite file into the
//! cluster's etcd), with their whole history.
//!
//! Rules:
//! - every version of every name is copied with its number, action, `restored_from` and
//!   time; each value is opened with the source's key and sealed again for the target, whose
//!   store id is bound into the associated data (a ciphertext cannot simply be copied). A new
//!   target is sealed with the same key, so the key file keeps working after the move;
//! - nothing in the target is ever overwritten or lost. For a name the target already holds:
//!   - the same history (every version equal: number, action, origin, time and value) is
//!     left alone, so running a migration twice is harmless;
//!   - a shorter history that is the beginning of the source's (an interrupted migration) is
//!     completed;
//!   - anything else (other values, or versions the source does not have) is refused with
//!     [`Error::MigrationRefused`] ([`Error::MigrationIntoItself`] for the source itself);
//! - everything is checked before anything is written: a refusal writes nothing (not even
//!   the target's id). Only a writer changing the target during the migration, or the
//!   target failing (or the migration being killed), can stop it half-way; what was copied
//!   is then kept, each version whole, and running the migration again completes it;
//! - a migration of more versions than one write carries leaves the target, between its
//!   writes, holding some names at their newest versions and others still old (the newest
//!   access key beside an old secret key): a state the source never had. Each of its writes
//!   but the last therefore marks the target's manifest as filled by an unfinished migration
//!   (where from), and the last write clears the mark in the same transaction as the last
//!   versions. Every reading but a migration's refuses a marked target
//!   ([`StoreError::MigrationUnfinished`]: no `list`, `env`, `exec` or write answers from it,
//!   and no other writer changes it) until a migration finishes it. A target marked with
//!   nothing left to copy (the rest was purged from the source since) is finished with a
//!   write of the manifest alone;
//! - a target sealed with another key is written with that key when the key file holds it
//!   beside the source's, else refused ([`Error::MigrationKeyMissing`], whose hint is to join
//!   the two key files); a target that is the source itself is refused;
//! - a failure after the target was made or written says what it left there
//!   ([`Error::MigrationStopped`]); another writer's change to the target names the
//!   credentials it changed, read back from the target ([`Error::MigrationRaced`]);
//! - the source is only read; removing it afterwards is the administrator's decision.

use serde::Serialize;

use crate::credentials::CredentialStore;
use crate::credentials::log::{LogChange, next_entry};
use crate::crypto::{Binding, Key};
use crate::error::{Error, Result};
use crate::ledger::{self, Next};
use crate::secret::SecretValue;
use crate::store::{Identity, Record, Store, StoreError};

/// What a migration did with one name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Migrated {
    pub name: String,
    /// Versions written into the target.
    pub copied: usize,
    /// Versions the target already held, identical.
    pub already_there: usize,
}

/// What a migration did, name by name (sorted by name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationReport {
    /// Where the target store is (a path, or a URL without user or password).
    pub target: String,
    pub names: Vec<Migrated>,
}

impl MigrationReport {
    /// How many versions were written into the target in all.
    pub fn copied(&self) -> usize {
        self.names.iter().map(|m| m.copied).sum()
    }
}

/// How many versions one write of a migration carries at most: few enough for one etcd
/// transaction (etcd's default `--max-txn-ops` is 128; each version is one put, with the
/// manifest's compare and put), many enough that a large history is not one write per
/// version.
const VERSIONS_PER_WRITE: usize = 48;

/// How many bytes of values one write of a migration carries at most (one version more if
/// the first is larger): an etcd request holds at most 1.5 MiB by default (`--max-request-bytes`),
/// and a sealed value grows by about 16/9 on the way (base64 in the record, base64 again in
/// the gateway's JSON). 64 KiB CA certificates go 8 to a write.
const VALUE_BYTES_PER_WRITE: usize = 512 * 1024;

/// `pending` cut into writes of at most [`VERSIONS_PER_WRITE`] versions and
/// [`VALUE_BYTES_PER_WRITE`] bytes (`size` of each; a larger single version alone), in order.
fn writes<T>(pending: &[T], size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in pending.iter().enumerate() {
        let full = i - start == VERSIONS_PER_WRITE || bytes + size(item) > VALUE_BYTES_PER_WRITE;
        if i > start && full {
            out.push(&pending[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size(item);
    }
    if start < pending.len() {
        out.push(&pending[start..]);
    }
    out
}

/// One source version, opened.
struct Opened {
    version: Record,
    value: Option<SecretValue>,
}

/// The plan for one name: its versions, and how many the target already holds.
struct Plan {
    name: String,
    versions: Vec<Opened>,
    already_there: usize,
}

impl CredentialStore {
    /// Copies every credential of this store with its whole history into `target`, sealing
    /// each value for `target` with this store's key. See [`crate::migrate`] for what is
    /// refused.
    pub fn migrate_to(&self, target: &dyn Store) -> Result<MigrationReport> {
        migrate(self, target)
    }
}

fn migrate(source: &CredentialStore, target: &dyn Store) -> Result<MigrationReport> {
    let mut report = MigrationReport {
        target: target.location(),
        names: Vec::new(),
    };
    // The source is read verified: a damaged name stops the migration before anything is
    // written, naming it.
    let Some(verified) = source.verified()? else {
        return Ok(report);
    };
    if let Some((name, damage)) = verified.damaged().next() {
        return Err(Error::Damaged {
            name: name.to_string(),
            damage: damage.clone(),
        });
    }
    let names: Vec<String> = verified.names().map(str::to_string).collect();
    if names.is_empty() {
        return Ok(report);
    }
    let source_id = verified.identity.clone();
    let key = source.opening_key(&source_id)?;
    // A target sealed already is written with its own key, which the key file must hold
    // beside the source's; a new one is sealed with the source's key.
    let target_key = |identity: &Identity| -> Result<&Key> {
        match &identity.key_fingerprint {
            Some(fp) if fp != key.fingerprint() => {
                source.key_of(fp).ok_or_else(|| Error::MigrationKeyMissing {
                    location: target.location(),
                    key_file: source.key_file().to_path_buf(),
                    fingerprints: Box::new((fp.clone(), key.fingerprint().to_string())),
                })
            }
            _ => Ok(key),
        }
    };
    let target_id = target.identity(false)?;
    let mut sealing = key;
    if let Some(t) = &target_id {
        if t.store_id == source_id.store_id {
            return Err(Error::MigrationIntoItself(target.location()));
        }
        sealing = target_key(t)?;
    }
    let key = sealing;

    let source_key = source.opening_key(&source_id)?;
    let mut plans: Vec<Plan> = Vec::new();
    for name in names {
        let mut versions = Vec::new();
        for version in verified.history(&name)?.iter().cloned() {
            let value = open(source_key, &source_id, &version)?;
            versions.push(Opened { version, value });
        }
        plans.push(Plan {
            name,
            versions,
            already_there: 0,
        });
    }
    for plan in &mut plans {
        check_numbering(plan)?;
        if let Some(t) = &target_id {
            plan.already_there = already_there(plan, key, t, target, target_key)?;
        }
    }

    // From here on the target may be made, and written a few versions at a time: a failure
    // says what it left there ([`stopped`]).
    let mut copied = 0;
    let copy = |copied: &mut usize| -> Result<()> {
        target.identity(true)?.ok_or_else(|| StoreError::Unusable {
            location: target.location(),
            action: "created",
            detail: "it did not record an id".into(),
        })?;
        // The versions to write, name by name, oldest first; written a few at a time ([`writes`]),
        // each write on top of the target as it is then (a version at a time made a store of n
        // versions cost n whole-store writes). Every write but the last leaves the target marked
        // as unfinished; the last one finishes it.
        let pending: Vec<(&Plan, &Opened)> = plans
            .iter()
            .flat_map(|plan| {
                plan.versions[plan.already_there..]
                    .iter()
                    .map(move |o| (plan, o))
            })
            .collect();
        let value_size =
            |(_, opened): &(&Plan, &Opened)| opened.value.as_ref().map_or(0, |v| v.expose().len());
        let copied_from = &verified;
        let writes = writes(&pending, value_size);
        let read_target = || -> Result<ledger::Verified> {
            Ok(
                ledger::read_unfinished(target, target_key, || source.loaded_keys())?
                    .ok_or_else(|| StoreError::Unusable {
                        location: target.location(),
                        action: "read",
                        detail: "it disappeared during the migration".into(),
                    })?
                    .with_key_history_of(copied_from),
            )
        };
        if writes.is_empty() {
            let verified = read_target()?;
            if verified.migrating_from().is_some() {
                ledger::finish_migration(target, key, &verified)?;
            }
        }
        for (i, &chunk) in writes.iter().enumerate() {
            let unfinished = (i + 1 < writes.len()).then(|| source.location());
            let verified = read_target()?.with_migration_from(unfinished);
            // Each name's newest in the target, as this chunk builds on it.
            let mut newest: Vec<(&str, u64)> = Vec::new();
            let mut batch = Vec::with_capacity(chunk.len());
            for (plan, opened) in chunk {
                let v = &opened.version;
                let before = match newest.iter().find(|(n, _)| *n == plan.name) {
                    Some((_, version)) => *version,
                    None => verified.newest(&plan.name)?.map_or(0, |r| r.version),
                };
                if before + 1 != v.version {
                    return Err(Error::MigrationRaced {
                        location: target.location(),
                        names: vec![plan.name.clone()],
                    });
                }
                newest.retain(|(n, _)| *n != plan.name);
                newest.push((&plan.name, v.version));
                batch.push((
                    plan.name.as_str(),
                    Next {
                        action: v.action,
                        restored_from: v.restored_from,
                        value: opened.value.as_ref(),
                        written_at_ms: v.written_at_ms,
                    },
                ));
            }
            // Each write carries its own change-log entry, in its transaction: a migration
            // stopped half-way leaves no copied version unlogged.
            let change = LogChange {
                command: "migrate",
                name: None,
                names: Vec::new(),
                version: None,
                detail: Some(format!(
                    "{} versions copied from {}",
                    chunk.len(),
                    source.location()
                )),
                digest_log: None,
            };
            let (entry, _) = next_entry(
                target,
                key,
                &verified.identity.store_id,
                verified.manifest(),
                &change,
            )?;
            match ledger::append_all_next(target, key, &verified, &batch, Some(&entry)) {
                Ok(_) => *copied += chunk.len(),
                // The name a store's conflict gives is the batch's (its first name, or the
                // log): which credential the other writer changed is read from the target.
                Err(Error::Store(StoreError::Conflict { .. })) => {
                    return Err(raced(target, &verified, read_target().ok()));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    };
    if let Err(e) = copy(&mut copied) {
        return Err(stopped(e, target, target_id.is_none(), copied));
    }
    // Every write went in (a failed one returned above): each name got all it lacked.
    for plan in &plans {
        report.names.push(Migrated {
            name: plan.name.clone(),
            copied: plan.versions.len() - plan.already_there,
            already_there: plan.already_there,
        });
    }
    Ok(report)
}

/// Another writer changed the target between the migration's reading (`before`) and its
/// write: the credentials whose newest version differs in the target as it is now (`after`,
/// when it can be read), else the store alone.
fn raced(target: &dyn Store, before: &ledger::Verified, after: Option<ledger::Verified>) -> Error {
    let head = |v: &ledger::Verified, name: &str| {
        v.newest(name)
            .ok()
            .flatten()
            .map(|r| (r.version, r.mac.clone()))
    };
    let names = after.map_or_else(Vec::new, |after| {
        let mut all: Vec<&str> = before.names().chain(after.names()).collect();
        all.sort_unstable();
        all.dedup();
        all.into_iter()
            .filter(|n| head(before, n) != head(&after, n))
            .map(str::to_string)
            .collect()
    });
    Error::MigrationRaced {
        location: target.location(),
        names,
    }
}

/// The error of a migration that failed after it may have made or written the target: said
/// as is when the target is as it was (nothing made, nothing copied; a race or a refusal says
/// what it kept itself), else with what it left ([`Error::MigrationStopped`]).
fn stopped(e: Error, target: &dyn Store, absent_before: bool, copied: usize) -> Error {
    if matches!(
        e,
        Error::MigrationRaced { .. } | Error::MigrationRefused { .. }
    ) {
        return e;
    }
    // A store file is made whole or not at all; one that cannot be read now is there too.
    let made = absent_before && !matches!(target.identity(false), Ok(None));
    if !made && copied == 0 {
        return e;
    }
    Error::MigrationStopped {
        location: target.location(),
        made,
        copied,
        source: Box::new(e),
    }
}

fn open(key: &Key, identity: &Identity, v: &Record) -> Result<Option<SecretValue>> {
    let Some(sealed) = &v.sealed else {
        return Ok(None);
    };
    let binding = Binding {
        store_id: &identity.store_id,
        name: &v.name,
        version: v.version,
    };
    Ok(Some(key.open(&binding, sealed)?))
}

/// The source's versions of a name must be 1, 2, ... n (as every store writes them).
fn check_numbering(plan: &Plan) -> Result<()> {
    for (i, opened) in plan.versions.iter().enumerate() {
        if opened.version.version != i as u64 + 1 {
            return Err(Error::MigrationRefused {
                name: plan.name.clone(),
                reason: format!(
                    "its versions in the source are not numbered 1 to {} (version {} is at place {})",
                    plan.versions.len(),
                    opened.version.version,
                    i + 1
                ),
            });
        }
    }
    Ok(())
}

/// How many of the plan's versions the target already holds, identical; refuses a target
/// history that is not the beginning of the source's.
fn already_there<'k>(
    plan: &Plan,
    key: &Key,
    target_id: &Identity,
    target: &dyn Store,
    target_key: impl Fn(&Identity) -> Result<&'k Key>,
) -> Result<usize> {
    // The target is read with the one key the migration writes with; the writes' own reads
    // check the log under the source's whole keyring.
    let Some(verified) = ledger::read_unfinished(target, target_key, Vec::new)? else {
        return Ok(0);
    };
    let existing = verified.history(&plan.name)?;
    let refuse = |reason: String| Error::MigrationRefused {
        name: plan.name.clone(),
        reason,
    };
    if existing.len() > plan.versions.len() {
        return Err(refuse(format!(
            "{} already holds {} versions of it, more than the source's {}",
            target.location(),
            existing.len(),
            plan.versions.len()
        )));
    }
    for (theirs, ours) in existing.iter().zip(&plan.versions) {
        let mine = &ours.version;
        let same_record = theirs.version == mine.version
            && theirs.action == mine.action
            && theirs.restored_from == mine.restored_from
            && theirs.written_at_ms == mine.written_at_ms;
        let their_value = open(key, target_id, theirs)?;
        let same_value = match (&their_value, &ours.value) {
            (Some(a), Some(b)) => a.ct_eq(b),
            (None, None) => true,
            _ => false,
        };
        if !(same_record && same_value) {
            return Err(refuse(format!(
                "{} already holds a different version {} of it",
                target.location(),
                theirs.version
            )));
        }
    }
    Ok(existing.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_cut_by_count_and_by_bytes() {
        let sizes = |pending: &[usize]| -> Vec<usize> {
            writes(pending, |s| *s).iter().map(|w| w.len()).collect()
        };
        assert_eq!(sizes(&[100; 100]), [48, 48, 4]);
        assert_eq!(sizes(&[64 * 1024; 20]), [8, 8, 4]);
        // A value larger than a write's bytes goes alone; nothing is dropped.
        assert_eq!(sizes(&[10, VALUE_BYTES_PER_WRITE + 1, 10]), [1, 1, 1]);
        assert_eq!(sizes(&[]), Vec::<usize>::new());
    }
}
