//! [`CredentialStore::purge`]: destroying every version of a name, and what the store may
//! still hold of them.

use super::Absence;
use super::log::LogChange;
use super::{CredentialStore, MAX_RETRIES};
use crate::catalog::CredentialName;
use crate::error::{Error, Result};
use crate::ledger;
use crate::store::StoreError;

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
    /// The store keeps no earlier revisions (the embedded store): the versions are gone from
    /// it, and the file it replaced is overwritten where it can be; the disk's free space may
    /// still hold older copies of the file (see [`Purged::note`]).
    NotKept,
    /// The store keeps them until its history is compacted (etcd).
    Kept,
    /// The store's history was compacted at this revision (etcd): they are gone from it.
    Compacted { revision: i64 },
}

impl Purged {
    /// What the administrator should know of where the destroyed versions' sealed bytes may
    /// still be: earlier revisions (etcd), or earlier copies of the store file in the device's
    /// free space (the embedded store, replaced whole by every write; only the file the purge
    /// replaced is overwritten), and what to do about them.
    pub fn note(&self) -> String {
        let name = self.name;
        match self.earlier_revisions {
            EarlierRevisions::NotKept => format!(
                "the destroyed versions of {name} may remain on the disk, in copies of the store file that earlier writes left in its free space (every write replaces the file whole; a purge overwrites only the file it replaces, and not when another name, such as a backup made with ln, links to it); they are sealed with this store's key: if that matters, rekey the store (cio credential rekey, with the same --store and --key-file) and make sure no copy of the old key survives, the old key file's freed blocks included"
            ),
            EarlierRevisions::Kept => format!(
                "etcd keeps the destroyed versions readable at earlier revisions until the cluster compacts its history; to compact it now, run: cio credential remove --purge --compact {name} (with the same --store; this drops the earlier revisions of every key in the cluster, not only cio's)"
            ),
            EarlierRevisions::Compacted { revision } => format!(
                "etcd's history was compacted at revision {revision}: no earlier revision holds the destroyed versions (the members' write-ahead logs and free database pages may hold their sealed bytes until etcd's next snapshot and 'etcdctl defrag')"
            ),
        }
    }
}

impl CredentialStore {
    /// Destroys every version of `name` (a damaged one too: that is how it is repaired);
    /// with `compact`, then also compacts the store's history ([`Store::compact`]), so that a
    /// store that keeps earlier revisions (etcd) no longer holds them either. The key is
    /// checked as for every write: a missing, wrong or exposed key file destroys nothing.
    /// Compacting after an earlier purge (nothing left of `name`, and the change log records
    /// its purge or cannot tell) is allowed; otherwise a name without versions is
    /// [`Error::Absent`], as for a purge without `compact`, and nothing is compacted.
    pub fn purge(&self, name: CredentialName, compact: bool) -> Result<Purged> {
        let keeps_revisions = self.store.keeps_revisions();
        let compacting = compact && keeps_revisions;
        let name_text = name.to_string();
        let mut versions = None;
        for _ in 0..MAX_RETRIES {
            let Some(verified) = self.verified()? else {
                return Err(self.absent(name));
            };
            if !verified.names().any(|n| n == name_text) {
                versions = Some(0);
                break;
            }
            let key = self.key(&verified.identity, false)?;
            let change = LogChange {
                command: "purge",
                name: Some(&name_text),
                names: Vec::new(),
                version: verified
                    .newest(&name_text)
                    .ok()
                    .flatten()
                    .map(|r| r.version),
                detail: None,
                digest_log: None,
            };
            let Some(entry) = self.next_log_entry(key, &verified, &change)? else {
                continue;
            };
            match ledger::purge(
                self.store.as_ref(),
                key,
                &verified,
                &name_text,
                Some(&entry),
            ) {
                Ok(n) => {
                    versions = Some(n);
                    break;
                }
                Err(e) if self.worth_retrying(&e) => continue,
                Err(e) => return Err(self.writing_error(e)),
            }
        }
        let versions =
            versions.ok_or_else(|| Error::from(StoreError::Conflict { name: name_text }))?;
        if versions == 0 {
            // Compacting is offered after a purge: a name the store may have held. A name it
            // never held fails as a purge of it does, and nothing is compacted.
            let absent = self.absent(name);
            let purged_before = matches!(
                absent,
                Error::Absent {
                    why: Absence::Purged | Absence::PurgedOrNeverWritten,
                    ..
                }
            );
            if !compacting || !purged_before {
                return Err(absent);
            }
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
}
