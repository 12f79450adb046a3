//! Appending one new version of each of several names as one operation: one store
//! transaction ([`crate::store::Store::append_all`]) and one time for all of them, so a
//! reader sees all the new versions or none, and `written_at_ms` tells later which versions
//! were written together (a key pair's restore brings both back).
//!
//! Rules: the versions are computed from the names' latest records; a write that loses a
//! race with another writer is computed again from a fresh read and retried, as every write
//! is.

use crate::crypto::Binding;
use crate::error::Result;
use crate::secret::SecretValue;
use crate::store::{Action, Record, StoreError, now_ms};

use super::{CredentialStore, MAX_RETRIES};

/// The next version of one name: what it records, and its value (`None` for a remove).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Next<'v> {
    pub action: Action,
    pub restored_from: Option<u64>,
    pub value: Option<&'v SecretValue>,
}

impl CredentialStore {
    /// Appends the next version of each of `names` (any record names, each once) in one
    /// operation. `plan` gets the names' latest records, in order, and returns their next
    /// versions in the same order, or an error that stops the write. Returns the new
    /// version numbers and the time they were written at.
    pub(crate) fn append_together<'v, const N: usize>(
        &self,
        names: [&str; N],
        mut plan: impl FnMut(&[Option<Record>; N]) -> Result<[Next<'v>; N]>,
    ) -> Result<([u64; N], i64)> {
        let (key, identity) = self.sealing_key()?;
        for _ in 0..MAX_RETRIES {
            let mut latest: [Option<Record>; N] = std::array::from_fn(|_| None);
            for (slot, name) in latest.iter_mut().zip(names) {
                *slot = self.store.latest(name)?;
            }
            let next = plan(&latest)?;
            let now = now_ms();
            let records: [(u64, Record); N] = std::array::from_fn(|i| {
                let expected = latest[i].as_ref().map_or(0, |r| r.version);
                let version = expected + 1;
                let binding = Binding {
                    store_id: &identity.store_id,
                    name: names[i],
                    version,
                };
                let record = Record {
                    name: names[i].to_string(),
                    version,
                    action: next[i].action,
                    restored_from: next[i].restored_from,
                    written_at_ms: now,
                    sealed: next[i].value.map(|value| key.seal(&binding, value)),
                };
                (expected, record)
            });
            let batch: Vec<(u64, &Record)> = records.iter().map(|(e, r)| (*e, r)).collect();
            match self.store.append_all(&batch, key.fingerprint()) {
                Ok(()) => return Ok((records.map(|(_, r)| r.version), now)),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(self.append_error(e)),
            }
        }
        Err(StoreError::Conflict {
            name: names.join(", "),
        }
        .into())
    }
}
