//! What [`super::CredentialStore::purge`] destroyed, and what the store may still hold.

use crate::catalog::CredentialName;

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
