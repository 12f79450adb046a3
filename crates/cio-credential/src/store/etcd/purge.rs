//! Purge: every version of one name and its head destroyed in one transaction, and no other
//! key. The versions are deleted as the ranges of version keys found under `P/v/{name}/`, so
//! a key there that is no version's (a store made below this one's prefix before cio refused
//! that, or another program's) is left as it is; the transaction requires that no key there
//! changed since they were found.

use super::wire::{delete_from_to, delete_op, prefix_end, put_op, unchanged_since};
use super::{EtcdStore, gateway, wire};
use crate::store::{LogAppend, ManifestSwap, StoreError};

impl EtcdStore {
    pub(super) fn purge_in_one_txn(
        &self,
        name: &str,
        manifest: &ManifestSwap,
        log: Option<&LogAppend>,
    ) -> Result<usize, StoreError> {
        let deadline = self.gateway.deadline();
        let start = self.keys.versions(Some(name));
        let end = prefix_end(&start);
        let (found, revision) = gateway::at_one_revision(deadline, || {
            self.gateway.keys_all_at(&start, &end, 0, deadline)
        })?;
        let runs = runs(&found, |key| self.keys.is_version(key));
        let (log_compares, log_puts) = self.log_ops(log)?;
        let mut compares = Vec::from(self.swap_holds(manifest));
        compares.push(unchanged_since(&start, revision));
        compares.extend(log_compares);
        let mut ops: Vec<serde_json::Value> = runs
            .iter()
            .map(|(first, last)| delete_from_to(first, last))
            .collect();
        ops.push(delete_op(
            serde_json::json!({"key": wire::b64(&self.keys.head(name))}),
        ));
        ops.push(put_op(&self.keys.manifest(), &manifest.new));
        ops.extend(log_puts);
        let response = self.gateway.txn(compares, ops, Vec::new(), deadline)?;
        if !response.succeeded {
            return Err(StoreError::Conflict {
                name: name.to_string(),
            });
        }
        let deleted: i64 = (0..runs.len()).map(|i| response.deleted(i)).sum();
        Ok(usize::try_from(deleted).unwrap_or(0))
    }
}

/// The keys of `keys` (in key order) that `ours` accepts, as `(first, last)` of each row of
/// them with no other key between: deleting from each first to its last deletes them and
/// nothing else.
fn runs(keys: &[Vec<u8>], ours: impl Fn(&[u8]) -> bool) -> Vec<(&[u8], &[u8])> {
    let mut runs: Vec<(&[u8], &[u8])> = Vec::new();
    let mut in_run = false;
    for key in keys {
        if !ours(key) {
            in_run = false;
            continue;
        }
        match runs.last_mut() {
            Some(run) if in_run => run.1 = key,
            _ => runs.push((key, key)),
        }
        in_run = true;
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_hold_our_keys_and_no_other() {
        let keys: Vec<Vec<u8>> = ["a1", "a2", "x", "a3", "y", "z", "a4", "a5", "a6"]
            .iter()
            .map(|k| k.as_bytes().to_vec())
            .collect();
        let ours = |k: &[u8]| k.starts_with(b"a");
        let found: Vec<(&str, &str)> = runs(&keys, ours)
            .into_iter()
            .map(|(a, b)| {
                (
                    std::str::from_utf8(a).unwrap(),
                    std::str::from_utf8(b).unwrap(),
                )
            })
            .collect();
        assert_eq!(found, [("a1", "a2"), ("a3", "a3"), ("a4", "a6")]);
        assert!(runs(&[], ours).is_empty());
        assert!(runs(&keys[2..3], ours).is_empty());
    }
}
