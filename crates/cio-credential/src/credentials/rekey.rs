//! `rekey`: replacing the key that seals the store, in four stages, the way Kubernetes
//! rotates its encryption-at-rest keys, with the key file as a keyring ([`crate::keyring`]).
//!
//! Rules:
//! - (1) **add**: a new random key is added to this node's keyring after the current one,
//!   open-only; the administrator copies the keyring to every node. (2) **switch**: the new
//!   key becomes the keyring's current key. (3) **reseal**: every version of every name is
//!   sealed and signed again under the current key, and the store records it as its key, in
//!   one write (SQLite: one file replaced; etcd: one transaction). (4) **retire**: the
//!   keyring keeps only its current key;
//! - the store is sealed by one key at every moment, so a node holding only the old key
//!   keeps working through stages 1 and 2 and is refused from stage 3 on (exit 3), with both
//!   fingerprints and where the new key lives (`host:path`, recorded with the re-seal);
//! - every stage is idempotent and each one's writes are whole (a keyring is replaced whole,
//!   a re-seal is one write), so a plain `rekey` (all four, for a store no other node uses)
//!   killed at any moment leaves a keyring that opens the store, and running it again
//!   finishes: it continues with the key the interrupted run added;
//! - retiring is refused while the store is still sealed with a key it would drop;
//! - a re-seal records the key it replaced in the store's signed manifest, so a node that never
//!   switched cannot re-seal the store back to that key (refused, as its retire is); its
//!   switch makes the store's key current instead;
//! - after retirement the old key opens nothing in the store (etcd keeps earlier revisions
//!   until its history is compacted: `remove --purge --compact` or etcd's own compaction).

use std::path::PathBuf;

use serde::Serialize;

use super::CredentialStore;
use super::log::{LogChange, entry_for};
use crate::audit;
use crate::crypto::Binding;
use crate::crypto::{Key, KeyError};
use crate::error::{Error, Result};
use crate::keyring::Keyring;
use crate::ledger;
use crate::store::Identity;
use crate::store::StoreError;

/// How often a re-seal that loses a race with a writer is tried again.
const MAX_RETRIES: usize = 100;

/// One stage of a key rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RekeyStage {
    Add,
    Switch,
    Reseal,
    Retire,
}

impl RekeyStage {
    pub const ALL: [RekeyStage; 4] = [
        RekeyStage::Add,
        RekeyStage::Switch,
        RekeyStage::Reseal,
        RekeyStage::Retire,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RekeyStage::Add => "add",
            RekeyStage::Switch => "switch",
            RekeyStage::Reseal => "reseal",
            RekeyStage::Retire => "retire",
        }
    }
}

/// What one stage did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RekeyStep {
    pub stage: RekeyStage,
    /// False when there was nothing left to do (an earlier run did it).
    pub changed: bool,
    /// The keyring's fingerprints afterwards, the current key first.
    pub keyring: Vec<String>,
    /// The fingerprint of the key that seals the store afterwards (`None`: never sealed).
    pub store_key: Option<String>,
    /// For a re-seal: how many versions were sealed again.
    pub versions: usize,
}

/// Why a stage cannot run. Never holds key material.
#[derive(Debug, thiserror::Error)]
pub enum RekeyError {
    #[error("key file {} holds no key yet (the store was never written)", crate::shown_path(.0))]
    NoKeyFile(PathBuf),
    #[error("key file {} holds one key only: there is no new key to switch to", crate::shown_path(.0))]
    NothingToSwitchTo(PathBuf),
    #[error(
        "the keyring's current key is the one that seals the store ({store_key}): there is nothing to re-seal with"
    )]
    NotSwitched {
        store_key: String,
        /// Whether the store records the keys its re-seals replaced (a store re-sealed only
        /// by a cio before that does not, and the hint then warns).
        recorded: bool,
    },
    #[error(
        "the store is still sealed with key {store_key}, which retiring would drop from this node's keyring"
    )]
    StillSealedWithOld { store_key: String, recorded: bool },
    #[error(
        "a plain rekey is for a store no other node uses, and the cluster store is every node's"
    )]
    Shared,
    #[error("another rekey on this node holds the key folder {} and did not finish in 30 s", crate::shown_path(.0))]
    Busy(PathBuf),
    #[error(
        "this node's current key {current} sealed the store before a re-seal replaced it with key {store_key}: this node has not switched, and a re-seal from it would go back to the old key"
    )]
    Behind { current: String, store_key: String },
}

impl RekeyError {
    /// What the administrator should do next.
    pub fn hint(&self) -> String {
        match self {
            RekeyError::NoKeyFile(_) => {
                "create a credential first; its first write makes the key".into()
            }
            RekeyError::NothingToSwitchTo(_) => {
                "run 'cio credential rekey --stage add' first, and copy the key file to every node".into()
            }
            RekeyError::NotSwitched { recorded: true, .. } => {
                "run 'cio credential rekey --stage switch' first (after the new key reached every node)".into()
            }
            RekeyError::NotSwitched { recorded: false, .. } => {
                "run 'cio credential rekey --stage switch' first (after the new key reached every node); but if the store was re-sealed with its current key already, by a cio before this one (which did not record the key it replaced), run --stage retire instead: the switch would go back to the old key".into()
            }
            RekeyError::Shared => {
                "rotate it in stages: 'cio credential rekey --stage add', copy the key file to every node, then --stage switch, --stage reseal (on one node), and --stage retire on every node".into()
            }
            RekeyError::StillSealedWithOld { recorded: true, .. } => {
                "run 'cio credential rekey --stage reseal' on one node (after every node ran --stage switch), then --stage retire on every node".into()
            }
            RekeyError::StillSealedWithOld { recorded: false, .. } => {
                "run 'cio credential rekey --stage reseal' on one node (after every node ran --stage switch), then --stage retire on every node; but if another node re-sealed the store already, with a cio before this one (which did not record the key it replaced), copy that node's key file here instead: a re-seal from here would go back to the old key".into()
            }
            RekeyError::Behind { .. } => {
                "run 'cio credential rekey --stage switch' on this node (it makes the store's key current), then --stage retire".into()
            }
            RekeyError::Busy(_) => {
                "wait for it to finish, then run the rekey again: it goes on from where the store and the key file are".into()
            }
        }
    }
}

/// The host name and key file path that tell another node where the new key lives.
fn key_home(key_file: &std::path::Path) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this node".to_string());
    // Absolute: a relative path means nothing on the node that reads it.
    let path = std::path::absolute(key_file).unwrap_or_else(|_| key_file.to_path_buf());
    format!("{host}:{}", crate::shown_path(&path))
}

impl CredentialStore {
    /// Why the keyring cannot open a store sealed with `store_fingerprint`: a store that
    /// `rekey` re-sealed names where its key lives; any other is the wrong key file.
    pub(super) fn not_in_keyring(
        &self,
        key_fingerprints: &[&str],
        identity: &Identity,
        store_fingerprint: &str,
    ) -> KeyError {
        let key_home = identity
            .manifest
            .as_deref()
            .and_then(|bytes| crate::integrity::decode_manifest(bytes).ok())
            .and_then(|(manifest, _)| manifest.key_home);
        let path = self.key_file.clone();
        let key_fingerprints = key_fingerprints.join(", ");
        let store_fingerprint = store_fingerprint.to_string();
        match key_home {
            Some(key_home) => KeyError::Rekeyed {
                path,
                key_fingerprints,
                store_fingerprint,
                key_home,
            },
            None => KeyError::Mismatch {
                path,
                key_fingerprint: key_fingerprints,
                store_fingerprint,
            },
        }
    }

    /// The keyring of this store's key file; an error when there is none.
    fn keyring(&self) -> Result<Keyring> {
        Keyring::load(self.key_file())?
            .ok_or_else(|| RekeyError::NoKeyFile(self.key_file().to_path_buf()).into())
    }

    /// The fingerprint of the key that seals the store; `None` when nothing was written.
    fn store_key(&self) -> Result<Option<String>> {
        Ok(self
            .store
            .identity(false)?
            .and_then(|identity| identity.key_fingerprint))
    }

    fn step(&self, stage: RekeyStage, changed: bool, versions: usize) -> Result<RekeyStep> {
        Ok(RekeyStep {
            stage,
            changed,
            keyring: self
                .keyring()?
                .fingerprints()
                .into_iter()
                .map(String::from)
                .collect(),
            store_key: self.store_key()?,
            versions,
        })
    }

    /// Stage 1: adds a new random key after the current one (open-only). A keyring that
    /// already holds a second key is left as it is (a rotation is under way).
    pub fn rekey_add(&self) -> Result<RekeyStep> {
        let _held = self.hold_key_folder()?;
        self.add_held()
    }

    fn add_held(&self) -> Result<RekeyStep> {
        let ring = self.keyring()?;
        // A node whose keyring cannot open the store (it has not received the key another
        // node re-sealed it with) changes nothing: its keyring would gain a key no other
        // node has.
        if let Some(identity) = self.store.identity(false)?
            && let Some(store_key) = &identity.key_fingerprint
            && ring.find(store_key).is_none()
        {
            return Err(self
                .not_in_keyring(&ring.fingerprints(), &identity, store_key)
                .into());
        }
        let changed = ring.len() == 1;
        if changed {
            ring.with_added(Key::generate()).write(self.key_file())?;
        }
        self.step(RekeyStage::Add, changed, 0)
    }

    /// Stage 2: makes the new key (the keyring's last one that does not seal the store)
    /// current.
    pub fn rekey_switch(&self) -> Result<RekeyStep> {
        let _held = self.hold_key_folder()?;
        self.switch_held()
    }

    fn switch_held(&self) -> Result<RekeyStep> {
        let ring = self.keyring()?;
        let store_key = self.store_key()?;
        let sealing = store_key.as_deref().unwrap_or(ring.current().fingerprint());
        if ring.current().fingerprint() != sealing {
            // Behind: another node re-sealed the store away from this node's current key.
            // The switch then makes the store's key current (the one it opens with).
            if self.resealed_away_from(ring.current().fingerprint())? {
                let sealing = sealing.to_string();
                ring.with_current(&sealing).write(self.key_file())?;
                return self.step(RekeyStage::Switch, true, 0);
            }
            return self.step(RekeyStage::Switch, false, 0);
        }
        // The new key: not the store's, nor one a re-seal replaced (after this rotation's
        // re-seal, the old key is still in the keyring until retired).
        let replaced = self.replaced_keys()?;
        let Some(new) = ring
            .fingerprints()
            .into_iter()
            .rfind(|fp| *fp != sealing && !replaced.iter().any(|r| r == fp))
            .map(String::from)
        else {
            if ring.len() > 1 {
                // Re-sealed already: the rest is retiring.
                return self.step(RekeyStage::Switch, false, 0);
            }
            return Err(RekeyError::NothingToSwitchTo(self.key_file().to_path_buf()).into());
        };
        ring.with_current(&new).write(self.key_file())?;
        self.step(RekeyStage::Switch, true, 0)
    }

    /// Stage 3: seals every version again under the keyring's current key, in one write.
    pub fn rekey_reseal(&self) -> Result<RekeyStep> {
        let _held = self.hold_key_folder()?;
        self.reseal_held()
    }

    fn reseal_held(&self) -> Result<RekeyStep> {
        let ring = self.keyring()?;
        let Some(store_key) = self.store_key()? else {
            return self.step(RekeyStage::Reseal, false, 0);
        };
        let new_key = ring.current();
        if new_key.fingerprint() == store_key {
            // Another key, not one a re-seal replaced: added and not yet made current.
            let replaced = self.replaced_keys()?;
            if ring
                .fingerprints()
                .iter()
                .any(|fp| *fp != store_key && !replaced.iter().any(|r| r == fp))
            {
                return Err(RekeyError::NotSwitched {
                    store_key,
                    recorded: !replaced.is_empty(),
                }
                .into());
            }
            return self.step(RekeyStage::Reseal, false, 0);
        }
        let Some(old_key) = ring.find(&store_key) else {
            // As any command of this node is told: where the key lives, when a re-seal said.
            return Err(match self.store.identity(false)? {
                Some(identity) => self.not_in_keyring(&ring.fingerprints(), &identity, &store_key),
                None => KeyError::Mismatch {
                    path: self.key_file().to_path_buf(),
                    key_fingerprint: ring.fingerprints().join(", "),
                    store_fingerprint: store_key,
                },
            }
            .into());
        };
        let home = key_home(self.key_file());
        for _ in 0..MAX_RETRIES {
            // Still sealed with the old key? Another node may have re-sealed it meanwhile:
            // then this re-seal starts over from the store as it is now.
            let read = ledger::read(
                self.store.as_ref(),
                |identity| {
                    if identity.key_fingerprint.as_deref() == Some(old_key.fingerprint()) {
                        Ok(old_key)
                    } else {
                        Err(StoreError::Conflict {
                            name: "(every name)".into(),
                        }
                        .into())
                    }
                },
                || ring.keys(),
            );
            let verified = match read {
                Err(Error::Store(StoreError::Conflict { .. })) => return self.reseal_held(),
                read => read?.ok_or_else(|| StoreError::Unusable {
                    location: self.store.location(),
                    action: "read",
                    detail: "it disappeared while being re-sealed".into(),
                })?,
            };
            if verified
                .replaced_keys()
                .iter()
                .any(|fp| fp == new_key.fingerprint())
            {
                return Err(RekeyError::Behind {
                    current: new_key.fingerprint().to_string(),
                    store_key,
                }
                .into());
            }
            // The change log and the notes are sealed under the store key too: tagged and
            // sealed again with the values, and the log says a re-seal happened.
            let store_id = &verified.identity.store_id;
            let old_log = self.store.log()?;
            let log_tail = old_log.last().map_or(0, |r| r.seq);
            let mut log = audit::reseal(old_key, new_key, store_id, &old_log);
            let change = LogChange {
                command: "rekey",
                name: None,
                names: Vec::new(),
                version: None,
                detail: Some(format!(
                    "every version, log entry and note sealed again under key {}",
                    new_key.fingerprint()
                )),
                digest_log: None,
            };
            log.push(audit::seal(
                new_key,
                store_id,
                &entry_for(log_tail + 1, &change),
                log.last(),
            ));
            // Only the notes the manifest vouches for: one put back from an earlier moment
            // stays as it is (sealed under the old key, pinned by nothing), never made good.
            let vouched = match self.read_notes()? {
                Some((reading, _)) => reading
                    .notes
                    .iter()
                    .filter(|(note, sealed)| reading.vouched(note, Some(sealed)))
                    .cloned()
                    .collect(),
                None => Vec::new(),
            };
            let notes = reseal_notes(old_key, new_key, store_id, vouched);
            let rest = ledger::Rest {
                log: &log,
                log_tail,
                notes: &notes,
            };
            match ledger::reseal(
                self.store.as_ref(),
                old_key,
                new_key,
                &verified,
                Some(home.clone()),
                &rest,
            ) {
                Ok(versions) => return self.step(RekeyStage::Reseal, true, versions),
                Err(Error::Store(StoreError::Conflict { .. })) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict {
            name: "(every name)".into(),
        }
        .into())
    }

    /// Stage 4: keeps only the current key. Refused while the store is sealed with another.
    pub fn rekey_retire(&self) -> Result<RekeyStep> {
        let _held = self.hold_key_folder()?;
        self.retire_held()
    }

    fn retire_held(&self) -> Result<RekeyStep> {
        let ring = self.keyring()?;
        if let Some(store_key) = self.store_key()?
            && store_key != ring.current().fingerprint()
        {
            let replaced = self.replaced_keys()?;
            if replaced.iter().any(|fp| fp == ring.current().fingerprint()) {
                return Err(RekeyError::Behind {
                    current: ring.current().fingerprint().to_string(),
                    store_key,
                }
                .into());
            }
            return Err(RekeyError::StillSealedWithOld {
                store_key,
                recorded: !replaced.is_empty(),
            }
            .into());
        }
        // Copies of the store a killed write left beside it (a re-seal's holds every value
        // under the old key) go before retiring says the old key opens nothing.
        self.store.tidy();
        let changed = ring.len() > 1;
        if changed {
            ring.retired().write(self.key_file())?;
        }
        self.step(RekeyStage::Retire, changed, 0)
    }

    /// All four stages in order, each only if still needed: for a store no other node
    /// uses. Run again after an interruption, it finishes.
    pub fn rekey_all(&self) -> Result<Vec<RekeyStep>> {
        let _held = self.hold_key_folder()?;
        let mut steps = Vec::with_capacity(6);
        // Several keys, the current one sealing the store: either a rotation re-sealed and
        // not retired, or one whose new key was added and not made current. The key file
        // cannot tell which, and the switch would then go back to the old key (a plain rekey
        // killed after its re-seal and run again did). On one node, retiring first is safe
        // either way (the other key seals nothing), and the rotation then goes to a new key.
        // A keyring behind the store (its current key is one a re-seal replaced) first makes
        // the store's key current, as its switch stage does.
        let ring = self.keyring()?;
        if self
            .store_key()?
            .is_some_and(|sealing| sealing != ring.current().fingerprint())
            && self.resealed_away_from(ring.current().fingerprint())?
        {
            steps.push(self.switch_held()?);
        }
        let ring = self.keyring()?;
        if ring.len() > 1
            && self
                .store_key()?
                .is_none_or(|sealing| sealing == ring.current().fingerprint())
        {
            steps.push(self.retire_held()?);
        }
        let added = self.add_held()?;
        let switched = self.switch_held()?;
        let resealed = self.reseal_held().map_err(|e| {
            if added.changed || switched.changed {
                Error::RekeyUnfinished {
                    path: self.key_file().to_path_buf(),
                    source: Box::new(e),
                }
            } else {
                e
            }
        })?;
        steps.extend([added, switched, resealed, self.retire_held()?]);
        Ok(steps)
    }

    /// The keys re-seals replaced as the store's key, as the store's manifest records them
    /// (read and verified under the store's key, from the key file as it is now: a stage
    /// may just have re-sealed the store, so not the key this command opened it with first).
    /// Empty for a store not written yet, or re-sealed only before cio recorded them.
    fn replaced_keys(&self) -> Result<Vec<String>> {
        let ring = self.keyring()?;
        let verified = ledger::read(
            self.store.as_ref(),
            |identity| {
                let Some(fingerprint) = &identity.key_fingerprint else {
                    return Ok(ring.current());
                };
                ring.find(fingerprint).ok_or_else(|| {
                    self.not_in_keyring(&ring.fingerprints(), identity, fingerprint)
                        .into()
                })
            },
            || ring.keys(),
        )?;
        Ok(verified
            .map(|verified| verified.replaced_keys().to_vec())
            .unwrap_or_default())
    }

    /// Whether a re-seal replaced the key `fingerprint` as the store's key.
    fn resealed_away_from(&self, fingerprint: &str) -> Result<bool> {
        Ok(self.replaced_keys()?.iter().any(|fp| fp == fingerprint))
    }

    /// An exclusive lock on the key file's folder for one rekey (all its stages): two rekeys
    /// on one node at once each loaded the keyring, and the second write could drop the key
    /// the first had re-sealed the store with. Waits up to 30 s for another rekey; released
    /// when dropped (or when the process ends).
    fn hold_key_folder(&self) -> Result<std::fs::File> {
        use rustix::fs::{FlockOperation, flock};
        let folder = crate::crypto::key_folder(self.key_file());
        let io = |source| KeyError::Io {
            path: self.key_file().to_path_buf(),
            action: "locked (through its folder)",
            source,
        };
        let file = match std::fs::File::open(folder) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RekeyError::NoKeyFile(self.key_file().to_path_buf()).into());
            }
            Err(e) => return Err(io(e).into()),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(file),
                Err(rustix::io::Errno::WOULDBLOCK) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    return Err(RekeyError::Busy(folder.to_path_buf()).into());
                }
                Err(e) => return Err(io(e.into()).into()),
            }
        }
    }
}

/// Every note that opens under `old_key`, sealed again under `new_key`; a note that does not
/// open is left out, so the store keeps it as it is (it stays unreadable, as it was).
fn reseal_notes(
    old_key: &Key,
    new_key: &Key,
    store_id: &str,
    notes: Vec<(String, Vec<u8>)>,
) -> Vec<(String, Vec<u8>)> {
    notes
        .into_iter()
        .filter_map(|(note, sealed)| {
            let binding = Binding {
                store_id,
                name: &note,
                version: 0,
            };
            let value = old_key.open(&binding, &sealed).ok()?;
            let resealed = new_key.seal(&binding, &value);
            Some((note, resealed))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::catalog::CredentialName;
    use crate::crypto::Binding;
    use crate::secret::SecretValue;
    use crate::store::sqlite::SqliteStore;

    fn open(dir: &Path, key: &str) -> CredentialStore {
        CredentialStore::new(
            Box::new(SqliteStore::new(dir.join("store.db"))),
            dir.join(key),
        )
    }

    fn name(s: &str) -> CredentialName {
        s.parse().unwrap()
    }

    fn values(store: &CredentialStore) -> Vec<(String, Vec<String>)> {
        ["cio_minio_access_key", "cio_minio_backup_password"]
            .into_iter()
            .map(|n| {
                let history = store.history(name(n)).unwrap();
                let values = history
                    .into_iter()
                    .map(|h| h.value.map_or("-".into(), |v| v.expose().to_string()))
                    .collect();
                (n.to_string(), values)
            })
            .collect()
    }

    fn copy_key(dir: &Path, from: &str, to: &str) {
        std::fs::copy(dir.join(from), dir.join(to)).unwrap();
    }

    /// Node A's view of a store in `dir` holding one value, cio_minio_access_key=minio-1.
    fn node_a_with_one_value(dir: &Path) -> CredentialStore {
        let a = open(dir, "node-a.key");
        a.put(
            name("cio_minio_access_key"),
            &SecretValue::new("minio-1".into()),
        )
        .unwrap();
        a
    }

    #[test]
    fn a_reseal_keeps_the_change_log_whole_and_the_recorded_checks_readable() {
        use crate::catalog::{Provider, Role, SetId};
        use crate::validate::{Check, SetReport, Status, Step};
        let dir = tempfile::tempdir().unwrap();
        let a = node_a_with_one_value(dir.path());
        a.remove(name("cio_minio_access_key")).unwrap();
        let set = SetId {
            provider: Provider::Minio,
            role: Role::Primary,
        };
        let report = SetReport {
            set,
            checks: vec![Check::new(Step::Completeness, Status::Ok, "ok", "")],
            duration_ms: 3,
        };
        a.record_checks(&[report], &a.listing().unwrap(), 1_800_000_000_000)
            .unwrap();
        let before = a.change_log().unwrap();
        assert_eq!(before.entries.len(), 2);
        a.rekey_all().unwrap();

        // A later command, with the new key file.
        let a = open(dir.path(), "node-a.key");
        let after = a.change_log().unwrap();
        assert_eq!(
            after.broken, None,
            "the re-sealed log checks under the new key"
        );
        let commands: Vec<_> = after.entries.iter().map(|e| e.command.as_str()).collect();
        assert_eq!(commands, ["create", "remove", "rekey"]);
        assert_eq!(after.entries[..2], before.entries[..]);
        let checks = a.checks().unwrap().records;
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].result.duration_ms, 3);
        assert_eq!(a.log_damage(), None);
    }

    #[test]
    fn a_command_that_read_the_store_before_another_node_re_sealed_it_still_writes() {
        let dir = tempfile::tempdir().unwrap();
        let a = node_a_with_one_value(dir.path());
        a.rekey_add().unwrap();
        a.rekey_switch().unwrap();
        copy_key(dir.path(), "node-a.key", "node-b.key");
        // B's command reads the store (under the old key), then A re-seals it.
        let b = open(dir.path(), "node-b.key");
        assert_eq!(b.list().unwrap().entries.len(), 1);
        open(dir.path(), "node-a.key").rekey_reseal().unwrap();
        // B's write opens the store with the new key of its keyring: it used to be told its
        // key file was not the store's.
        b.put(
            name("cio_minio_access_key"),
            &SecretValue::new("minio-2".into()),
        )
        .unwrap();
        assert_eq!(
            values(&open(dir.path(), "node-a.key"))[0],
            (
                "cio_minio_access_key".to_string(),
                vec!["minio-1".to_string(), "minio-2".to_string()]
            )
        );
    }

    #[test]
    fn retiring_removes_the_copies_a_killed_write_left_beside_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let a = node_a_with_one_value(dir.path());
        for stage in [
            CredentialStore::rekey_add,
            CredentialStore::rekey_switch,
            CredentialStore::rekey_reseal,
        ] {
            stage(&a).unwrap();
        }
        // What a write (a re-seal's: every value under the old key) killed before its
        // rename leaves, under a process id that runs no more.
        let leftover = dir.path().join("store.db.tmp-2147483646-0123456789abcdef");
        std::fs::write(&leftover, b"sealed under the old key").unwrap();
        a.rekey_retire().unwrap();
        assert!(!leftover.exists(), "retire says the old key opens nothing");
    }

    #[test]
    fn where_the_key_lives_is_an_absolute_path() {
        let home = key_home(Path::new("node-b/credential.key"));
        let (_, path) = home.split_once(':').unwrap();
        assert!(path.starts_with('/'), "{home}");
        assert!(path.ends_with("/node-b/credential.key"), "{home}");
    }

    #[test]
    fn a_store_that_records_no_replaced_key_gets_the_cautious_hints() {
        let dir = tempfile::tempdir().unwrap();
        let a = node_a_with_one_value(dir.path());
        // Never re-sealed by this cio: it cannot tell a node behind a re-seal of an earlier
        // cio from one ahead of the re-seal, and the hints say both.
        let caution = "with a cio before this one (which did not record the key it replaced), copy that node's key file here instead: a re-seal from here would go back to the old key";
        a.rekey_add().unwrap();
        let err = a.rekey_reseal().unwrap_err();
        assert!(
            err.hint().contains("by a cio before this one"),
            "{}",
            err.hint()
        );
        a.rekey_switch().unwrap();
        let err = a.rekey_retire().unwrap_err();
        assert!(err.hint().ends_with(caution), "{}", err.hint());
        // Once a re-seal of this cio recorded the key it replaced, the plain hints.
        a.rekey_reseal().unwrap();
        a.rekey_retire().unwrap();
        a.rekey_add().unwrap();
        let err = a.rekey_reseal().unwrap_err();
        assert_eq!(
            err.hint(),
            "run 'cio credential rekey --stage switch' first (after the new key reached every node)"
        );
        a.rekey_switch().unwrap();
        let err = a.rekey_retire().unwrap_err();
        assert_eq!(
            err.hint(),
            "run 'cio credential rekey --stage reseal' on one node (after every node ran --stage switch), then --stage retire on every node"
        );
    }

    #[test]
    fn the_four_stages_reseal_everything_and_the_old_key_opens_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let a = open(dir.path(), "node-a.key");
        for v in ["minio-1", "minio-2", "minio-3"] {
            a.put(name("cio_minio_access_key"), &SecretValue::new(v.into()))
                .unwrap();
        }
        a.put(
            name("cio_minio_backup_password"),
            &SecretValue::new("a long repository password".into()),
        )
        .unwrap();
        a.remove(name("cio_minio_backup_password")).unwrap();
        let before = values(&a);
        let old = a.store_key().unwrap().unwrap();
        // Node B holds the old key only; a copy of it is kept to try on the store at the end.
        copy_key(dir.path(), "node-a.key", "node-b.key");
        copy_key(dir.path(), "node-a.key", "old.key");
        let b = || open(dir.path(), "node-b.key");

        // Out of order: refused, nothing changed.
        assert!(matches!(
            a.rekey_switch(),
            Err(Error::Rekey(RekeyError::NothingToSwitchTo(_)))
        ));
        let step = a.rekey_add().unwrap();
        assert!(step.changed);
        let new = step.keyring[1].clone();
        assert_eq!(step.keyring[0], old);
        assert!(!a.rekey_add().unwrap().changed, "a second add adds nothing");
        assert!(matches!(
            a.rekey_reseal(),
            Err(Error::Rekey(RekeyError::NotSwitched { .. }))
        ));
        assert_eq!(values(&b()), before, "node B works after stage 1");
        let step = a.rekey_switch().unwrap();
        assert_eq!(step.keyring, [new.clone(), old.clone()]);
        assert_eq!(step.store_key.as_deref(), Some(old.as_str()));
        assert!(matches!(
            a.rekey_retire(),
            Err(Error::Rekey(RekeyError::StillSealedWithOld { .. }))
        ));
        assert_eq!(values(&b()), before, "node B works after stage 2");
        let step = open(dir.path(), "node-a.key").rekey_reseal().unwrap();
        assert_eq!(
            (step.versions, step.store_key.as_deref()),
            (5, Some(new.as_str()))
        );
        assert_eq!(values(&open(dir.path(), "node-a.key")), before);

        // Node B: refused, naming both keys and where the new one lives.
        let err = b().list().unwrap_err();
        let Error::StoreKey(KeyError::Rekeyed {
            key_fingerprints,
            store_fingerprint,
            key_home,
            ..
        }) = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!((key_fingerprints, store_fingerprint), (&old, &new));
        assert!(key_home.ends_with("node-a.key"), "{key_home}");
        assert_eq!(err.kind(), crate::error::ErrorKind::Unusable);
        // With node A's keyring, node B works again; both retire.
        copy_key(dir.path(), "node-a.key", "node-b.key");
        assert_eq!(values(&b()), before);
        for node in ["node-a.key", "node-b.key"] {
            let step = open(dir.path(), node).rekey_retire().unwrap();
            assert_eq!(step.keyring, std::slice::from_ref(&new));
        }
        // The old key opens no record of the store; the new one opens every one.
        let ring = |file: &str| Keyring::load(&dir.path().join(file)).unwrap().unwrap();
        let (old_ring, new_ring) = (ring("old.key"), ring("node-a.key"));
        let store = SqliteStore::new(dir.path().join("store.db"));
        let snapshot = crate::store::Store::read(&store).unwrap().unwrap();
        let mut opened = 0;
        for record in snapshot.records.iter().flatten() {
            let Some(sealed) = &record.sealed else {
                continue;
            };
            let binding = Binding {
                store_id: &snapshot.identity.store_id,
                name: &record.name,
                version: record.version,
            };
            assert!(old_ring.current().open(&binding, sealed).is_err());
            assert!(new_ring.current().open(&binding, sealed).is_ok());
            opened += 1;
        }
        assert_eq!(opened, 4);
    }

    #[test]
    fn a_plain_rekey_runs_every_stage_and_a_second_finishes_an_interrupted_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), "k");
        store
            .put(
                name("cio_aws_access_key"),
                &SecretValue::new("AKIAYHD623GGZX7VDFMJ".into()),
            )
            .unwrap();
        let old = store.store_key().unwrap().unwrap();
        // Interrupted after stage 2 (the keyring switched, the store not re-sealed).
        store.rekey_add().unwrap();
        store.rekey_switch().unwrap();
        let steps = open(dir.path(), "k").rekey_all().unwrap();
        let changed: Vec<_> = steps.iter().map(|s| (s.stage, s.changed)).collect();
        assert_eq!(
            changed,
            [
                (RekeyStage::Add, false),
                (RekeyStage::Switch, false),
                (RekeyStage::Reseal, true),
                (RekeyStage::Retire, true)
            ]
        );
        let store = open(dir.path(), "k");
        let new = store.store_key().unwrap().unwrap();
        assert_ne!(new, old);
        assert_eq!(
            store
                .get(name("cio_aws_access_key"))
                .unwrap()
                .unwrap()
                .value
                .expose(),
            "AKIAYHD623GGZX7VDFMJ"
        );
        // A plain rekey from rest rotates again, all four stages.
        let steps = store.rekey_all().unwrap();
        assert!(steps.iter().all(|s| s.changed));
        assert_ne!(open(dir.path(), "k").store_key().unwrap().unwrap(), new);
    }
}
