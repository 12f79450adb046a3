//! A re-seal of a store in etcd (`rekey`): every version, head, change-log entry and note
//! put again in one transaction.

use super::EtcdStore;
use super::codec;
use super::wire::put_op;
use crate::store::{ManifestSwap, Resealed, StoreError};

impl EtcdStore {
    /// [`Store::replace_all`](crate::store::Store::replace_all) in one transaction. (Every
    /// key `whole.records` does not overwrite stays: for a re-seal, which keeps every name and
    /// version, there is none.)
    pub(super) fn reseal(
        &self,
        whole: &Resealed<'_>,
        key_fingerprint: &str,
        manifest: &ManifestSwap,
    ) -> Result<(), StoreError> {
        // One transaction: every version and head put again (a re-seal keeps the same names
        // and versions, so it overwrites every key it replaces; etcd refuses a delete and a
        // put of one key in one transaction), every log entry and note, with the key
        // fingerprint and the manifest. Its size is bounded by the members' --max-txn-ops.
        let mut ops = Vec::with_capacity(whole.records.len() + whole.log.len() + 4);
        let mut heads: Vec<(&str, u64)> = Vec::new();
        for record in whole.records {
            ops.push(put_op(
                &self.keys.version(&record.name, record.version),
                &codec::encode(record),
            ));
            heads.retain(|(n, _)| *n != record.name);
            heads.push((&record.name, record.version));
        }
        for (name, version) in heads {
            ops.push(put_op(
                &self.keys.head(name),
                version.to_string().as_bytes(),
            ));
        }
        for entry in whole.log {
            ops.push(put_op(&self.keys.log_entry(entry.seq), &entry.sealed));
        }
        if let Some(newest) = whole.log.last() {
            ops.push(put_op(
                &self.keys.log_head(),
                newest.seq.to_string().as_bytes(),
            ));
        }
        for (key, sealed) in whole.notes {
            ops.push(put_op(&self.keys.note(key), sealed));
        }
        ops.push(put_op(&self.keys.fingerprint(), key_fingerprint.as_bytes()));
        ops.push(put_op(&self.keys.manifest(), &manifest.new));
        let count = ops.len();
        let response = self
            .gateway
            .txn(
                [
                    Vec::from(self.swap_holds(manifest)),
                    vec![self.log_head_is(whole.log_tail)],
                ]
                .concat(),
                ops,
                Vec::new(),
                self.gateway.deadline(),
            )
            .map_err(|e| match e {
                StoreError::Unusable { location, detail, .. }
                    if detail.contains("too many operations") =>
                {
                    StoreError::TooLarge {
                        location,
                        detail: format!(
                            "re-sealing it takes {count} operations in one etcd transaction, and the members allow fewer (etcd's --max-txn-ops, 128 by default)"
                        ),
                        remedy: format!("--max-txn-ops {count} or more"),
                    }
                }
                e => e,
            })?;
        if !response.succeeded {
            return Err(StoreError::Conflict {
                name: "(every name)".into(),
            });
        }
        Ok(())
    }
}
