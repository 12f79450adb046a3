//! Appending one new version of each of several names as one write (recovery's
//! `ledger::append_all_next`: one [`crate::store::Store::append_all_logged`], one manifest
//! swap, one change-log entry), with one time for all of them, so
//! a reader sees all the new versions or none, and the time tells later which versions were
//! written together (see [`super::pair`]).
//!
//! Rules: the versions are computed from a verified reading of the store; a write that loses
//! a race with another writer is computed again from a fresh reading and retried, as every
//! write is.

use crate::error::Result;
use crate::ledger;
use crate::secret::SecretValue;
use crate::store::{Action, Record, StoreError, now_ms};

use super::log::LogChange;
use super::{CredentialStore, MAX_RETRIES};

/// The next version of one name: what it records, and its value (`None` for a remove).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Next<'v> {
    pub action: Action,
    pub restored_from: Option<u64>,
    pub value: Option<&'v SecretValue>,
}

/// What the change log says of a write of several records.
pub(crate) struct Together {
    /// `rotate`, `restore`, ...
    pub command: &'static str,
    /// The credentials the entry names, the one it is about first (internal records such as
    /// a pair's marker or a staged rotation are not named).
    pub credentials: Vec<String>,
    pub detail: Option<String>,
}

impl CredentialStore {
    /// Appends the next version of each of `names` (any record names, each once) in one
    /// write, with one change-log entry as `logged` says. `plan` gets the names' newest records, in order, and returns their next
    /// versions in the same order, or an error that stops the write. Returns the new
    /// version numbers and the time they were written at.
    pub(crate) fn append_together<'v, const N: usize>(
        &self,
        logged: &Together,
        names: [&str; N],
        mut plan: impl FnMut([Option<&Record>; N]) -> Result<[Next<'v>; N]>,
    ) -> Result<([u64; N], i64)> {
        self.key_for_writing()?;
        for _ in 0..MAX_RETRIES {
            let verified = self.verified()?.ok_or_else(|| StoreError::Unusable {
                location: self.store.location(),
                action: "read",
                detail: "it disappeared while being written".into(),
            })?;
            // The key of the store as read now: another node may have re-sealed it.
            let key = self.key(&verified.identity, false)?;
            let mut newest = [None; N];
            for (slot, name) in newest.iter_mut().zip(names) {
                *slot = verified.newest(name)?;
            }
            let next = plan(newest)?;
            let now = now_ms();
            // The entry names the credentials (not internal records such as a pair's
            // marker) and the version the first one gets, when it is one of `names`.
            let version = names
                .iter()
                .zip(newest)
                .find(|(n, _)| logged.credentials.first().is_some_and(|c| c == *n))
                .map(|(_, r)| r.map_or(0, |r| r.version) + 1);
            let change = LogChange {
                command: logged.command,
                name: logged.credentials.first().map(String::as_str),
                names: if logged.credentials.len() > 1 {
                    logged.credentials.clone()
                } else {
                    Vec::new()
                },
                version,
                detail: logged.detail.clone(),
                digest_log: None,
            };
            let Some(entry) = self.next_log_entry(key, &verified, &change)? else {
                continue;
            };
            let items: Vec<(&str, ledger::Next<'_>)> = names
                .iter()
                .zip(next)
                .map(|(name, n)| {
                    let next = ledger::Next {
                        action: n.action,
                        restored_from: n.restored_from,
                        value: n.value,
                        written_at_ms: now,
                    };
                    (*name, next)
                })
                .collect();
            match ledger::append_all_next(self.store.as_ref(), key, &verified, &items, Some(&entry))
            {
                Ok(written) => {
                    let mut versions = [0; N];
                    for (slot, version) in versions.iter_mut().zip(written) {
                        *slot = version;
                    }
                    return Ok((versions, now));
                }
                Err(e) if self.worth_retrying(&e) => continue,
                Err(e) => return Err(self.writing_error(e)),
            }
        }
        Err(StoreError::Conflict {
            name: names.join(", "),
        }
        .into())
    }
}
