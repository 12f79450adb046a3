//! A write of new versions to a store in etcd: every version, head, the manifest and the
//! change-log entry in one transaction on the revisions just read.

use super::wire::{absent, put_op, range_op, value_is};
use super::{EtcdStore, MAX_TXN_OPS, codec};
use crate::store::{LogAppend, ManifestSwap, Record, Store, StoreError};

impl EtcdStore {
    /// [`Store::append_all_logged`](crate::store::Store::append_all_logged) in one
    /// transaction (see the module rules in `mod.rs`).
    pub(super) fn append_in_one_txn(
        &self,
        batch: &[(u64, &Record)],
        key_fingerprint: &str,
        manifest: &ManifestSwap,
        log: Option<&LogAppend>,
    ) -> Result<(), StoreError> {
        let Some((_, first)) = batch.first() else {
            return Ok(());
        };
        // Per name, in batch order: the head it expects and the last version it appends.
        let mut names: Vec<(&str, u64, u64)> = Vec::new();
        let mut puts = Vec::new();
        for (expected, record) in batch {
            let conflict = || StoreError::Conflict {
                name: record.name.clone(),
            };
            if Some(record.version) != expected.checked_add(1) {
                return Err(conflict());
            }
            match names.iter_mut().find(|(n, _, _)| *n == record.name) {
                Some((_, _, last)) if *last == *expected => *last = record.version,
                Some(_) => return Err(conflict()),
                None => names.push((&record.name, *expected, record.version)),
            }
            puts.push(put_op(
                &self.keys.version(&record.name, record.version),
                &codec::encode(record),
            ));
        }
        let fp_key = self.keys.fingerprint();
        let mut compares = Vec::from(self.swap_holds(manifest));
        // The failure branch reads the fingerprint, then each name's head.
        let mut failure = vec![range_op(&fp_key)];
        for (name, expected, last) in &names {
            let head = self.keys.head(name);
            // The head is an index kept for readers and earlier cio, and is not compared:
            // the manifest (replaced by every write) and the absence of the next version
            // decide a race, so a head edited below cio is put right by the next write
            // instead of failing every write to the name as a race that never ends.
            compares.push(absent(&self.keys.version(name, expected + 1)));
            puts.push(put_op(&head, last.to_string().as_bytes()));
            failure.push(range_op(&head));
        }
        puts.push(put_op(&self.keys.manifest(), &manifest.new));
        let (log_compares, log_puts) = self.log_ops(log)?;
        compares.extend(log_compares);
        puts.extend(log_puts);
        // etcd refuses a transaction branch of more operations than its --max-txn-ops (128
        // by default): say so before sending one.
        let ops = (puts.len() + 1).max(compares.len() + 1);
        if ops > MAX_TXN_OPS {
            return Err(StoreError::TooLarge {
                location: self.location(),
                detail: format!(
                    "it needs {ops} operations in one etcd transaction, and etcd allows {MAX_TXN_OPS} unless its members are started with a larger --max-txn-ops"
                ),
                remedy: format!("--max-txn-ops {ops} or more"),
            });
        }
        let deadline = self.gateway.deadline();
        let conflict = |name: &str| StoreError::Conflict {
            name: name.to_string(),
        };
        // First assume the fingerprint is recorded; when it turns out not to be, record it in
        // the same transaction. Two rounds suffice unless another writer keeps racing us.
        let mut fingerprint_recorded = true;
        for _ in 0..4 {
            let (fp_cmp, mut success) = if fingerprint_recorded {
                (value_is(&fp_key, key_fingerprint.as_bytes()), Vec::new())
            } else {
                (
                    absent(&fp_key),
                    vec![put_op(&fp_key, key_fingerprint.as_bytes())],
                )
            };
            success.extend(puts.iter().cloned());
            let mut all_compares = compares.clone();
            all_compares.push(fp_cmp);
            let response = self
                .gateway
                .txn(all_compares, success, failure.clone(), deadline)?;
            if response.succeeded {
                return Ok(());
            }
            match response.range_value(0) {
                None => {
                    fingerprint_recorded = false;
                    continue;
                }
                Some(fp) if fp != key_fingerprint.as_bytes() => {
                    return Err(StoreError::KeyMismatch {
                        location: self.location(),
                        key_fingerprint: key_fingerprint.to_string(),
                        store_fingerprint: String::from_utf8_lossy(fp).into_owned(),
                    });
                }
                Some(_) if !fingerprint_recorded => {
                    // Another writer recorded the same key meanwhile: compare with it.
                    fingerprint_recorded = true;
                    continue;
                }
                // A head or the manifest moved: another writer got there first. Name the
                // first name whose head moved (else the first name).
                Some(_) => {
                    let moved = names.iter().enumerate().find(|(i, (_, expected, _))| {
                        let expected = (*expected != 0).then(|| expected.to_string());
                        response.range_value(i + 1) != expected.as_deref().map(str::as_bytes)
                    });
                    return Err(conflict(moved.map_or(&first.name, |(_, (n, _, _))| n)));
                }
            }
        }
        Err(conflict(&first.name))
    }
}
