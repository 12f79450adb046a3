//! The cluster store: etcd v3, spoken through its HTTP/JSON gateway (`/v3/kv/range`,
//! `/v3/kv/txn`, `/v3/kv/compaction`, `/v3/auth/authenticate`).
//!
//! Why not the `etcd-client` crate: it speaks gRPC through `tonic`/`prost`, whose build
//! script needs the `protoc` compiler, and the binary must build with the Rust toolchain
//! alone (`docs/DESIGN-NOTES.md`, "The cluster store"). The JSON gateway is served by every
//! etcd 3.4+ member on its client port, under `/v3/` (3.4 also serves the older `/v3beta/`;
//! we use `/v3/`).
//!
//! One concern per file:
//! - `location`: `etcd://HOST:PORT,.../PREFIX` and `etcds://`, never echoed in errors;
//! - `tls`: the CA, client certificate and key of `etcds://`;
//! - `gateway`: the HTTP client over the members: failover, time budget, tokens;
//! - `classify`: what each failure means (unreachable, refused, TLS, not etcd);
//! - `handshake`: whose part a failed TLS handshake is, and a member of the other scheme;
//! - `wire`: etcd's JSON messages; `codec`: the key layout and the record format;
//! - `claim`: where a store may be created, and whose keys a prefix without a store id holds;
//! - `append`, `purge`, `reseal`: the writes of many keys;
//! - this file: the [`Store`] on top of them.
//!
//! Rules:
//! - every write is ONE etcd transaction, so a write is either wholly there or not at all,
//!   even when the cluster loses quorum in the middle of it:
//!   - append compares the absence of the version it puts and the key fingerprint (its
//!     value, or its absence, in which case the same transaction records it), then puts the
//!     version and the name's head (an index, never compared); when the comparison fails, the
//!     failure branch reads the head and fingerprint so the error is precisely
//!     [`StoreError::Conflict`] or [`StoreError::KeyMismatch`];
//!   - the store id is created by a transaction that requires that nothing exists under the
//!     prefix yet and that no enclosing prefix holds a store id, so two nodes creating the
//!     store at once agree on one id, keys of another program under the prefix are refused
//!     ([`StoreError::Foreign`]), and stores never nest ([`StoreError::Overlap`], `claim`);
//!   - every append and purge also compares and replaces the manifest (`P/meta/manifest`),
//!     so of two writers that read the same manifest, one wins and the other retries;
//!   - purge deletes every version and the head in one transaction, and no key of another
//!     shape (`purge`);
//! - every range a store reads or deletes is taken as its own only for keys of its layout
//!   (`codec::KeyLayout::owns`): keys of a store below its prefix are never its records;
//!   - a change-log entry goes in the transaction of its change, conditioned on the log's
//!     head (`P/loghead`) still naming the entry before it;
//! - reads are linearizable (etcd's default): a member without quorum does not answer with
//!   stale data, it makes the operation fail as [`StoreError::Unreachable`]; long ranges
//!   are read in pages at one revision, so a listing is one consistent snapshot; a reading
//!   whose revision etcd compacted meanwhile starts over at the newest revision (a few times,
//!   then [`StoreError::Compacted`]: run again);
//! - etcd keeps every key's earlier revisions until the cluster's history is compacted, so
//!   a purge leaves the destroyed versions readable at earlier revisions
//!   ([`Store::keeps_revisions`]); [`Store::compact`] compacts at the current revision, for
//!   the whole cluster, "physical" (the member that took the request answers once it removed
//!   the compacted revisions from its database);
//! - the location shown in messages never holds a user or password; the password is a
//!   [`SecretValue`](crate::secret::SecretValue), never in `Debug` output or an error.

mod append;
mod claim;
mod classify;
pub(crate) mod codec;
mod gateway;
mod handshake;
mod location;
mod purge;
mod reseal;
mod tls;
mod wire;

#[cfg(test)]
mod scripted_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Instant;

use serde::de::IgnoredAny;
use serde_json::json;

use self::classify::GatewayError;
use self::codec::KeyLayout;
use self::gateway::Gateway;
use self::wire::{Kv, RangeResponse, absent, none_from_to, prefix_end, put_op, value_is};
use super::{
    Identity, LogAppend, LogRecord, MAX_LOG_SEQ, ManifestSwap, ReadRecord, Record, Resealed,
    Snapshot, Store, StoreError, new_store_id,
};

pub use self::gateway::{EtcdAuth, EtcdOptions};
pub use self::location::EtcdSpec;

/// The most operations etcd takes in one transaction branch by default (`--max-txn-ops`).
const MAX_TXN_OPS: usize = 128;

/// A store in an etcd cluster.
pub struct EtcdStore {
    spec: EtcdSpec,
    keys: KeyLayout,
    gateway: Gateway,
}

impl fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdStore")
            .field("spec", &self.spec)
            .field("gateway", &self.gateway)
            .finish_non_exhaustive()
    }
}

/// The compares and the puts of a transaction's change-log entry.
type LogOps = (Vec<serde_json::Value>, Vec<serde_json::Value>);

impl EtcdStore {
    /// A store at `spec`, connecting with `options`. Reads the TLS files; talks to no member
    /// yet.
    pub fn new(spec: EtcdSpec, options: EtcdOptions) -> Result<EtcdStore, StoreError> {
        Ok(EtcdStore {
            gateway: Gateway::new(&spec, options)?,
            keys: KeyLayout::new(&spec.prefix),
            spec,
        })
    }

    /// Every version of `name` (of every name when `None`), in key order: by name, then
    /// version.
    fn versions(
        &self,
        name: Option<&str>,
        deadline: Instant,
    ) -> Result<Vec<(Vec<u8>, ReadRecord)>, StoreError> {
        let start = self.keys.versions(name);
        let kvs = self
            .gateway
            .range_all(&start, &prefix_end(&start), deadline)?;
        Ok(kvs
            .into_iter()
            .filter(|kv| self.keys.is_version(&kv.key))
            .map(|kv| (self.keys.decode(&kv), kv.key))
            .map(|(record, key)| (key, record))
            .collect())
    }

    /// The identity the `P/meta/` keys among `kvs` give; `None` without a store id.
    fn identity_of(&self, kvs: &[Kv]) -> Option<Identity> {
        let value_of = |key: Vec<u8>| {
            kvs.iter()
                .find(|kv| kv.key == key)
                .map(|kv| kv.value.clone())
        };
        let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
        Some(Identity {
            store_id: text(value_of(self.keys.store_id())?),
            key_fingerprint: value_of(self.keys.fingerprint()).map(text),
            manifest: value_of(self.keys.manifest()),
        })
    }

    fn id_removed(&self) -> StoreError {
        StoreError::Corrupt {
            location: self.location(),
            detail: "its store id was removed".into(),
        }
    }

    /// The comparisons of a write's manifest swap: the store id is still the one the write
    /// was sealed for, and the manifest still `expected`, or still absent.
    fn swap_holds(&self, swap: &ManifestSwap) -> [serde_json::Value; 2] {
        let manifest = match &swap.expected {
            Some(bytes) => value_is(&self.keys.manifest(), bytes),
            None => absent(&self.keys.manifest()),
        };
        [
            value_is(&self.keys.store_id(), swap.store_id.as_bytes()),
            manifest,
        ]
    }

    /// The compare that the log's newest entry is still `seq` (0: the log is empty).
    fn log_head_is(&self, seq: u64) -> serde_json::Value {
        let head = self.keys.log_head();
        if seq == 0 {
            absent(&head)
        } else {
            value_is(&head, seq.to_string().as_bytes())
        }
    }

    /// The compares and puts that add `log` to a transaction: the log head must still name
    /// the entry it goes after, and no entry be numbered after that one up to its own. An
    /// entry numbered at or before the one it goes after goes nowhere: a conflict.
    fn log_ops(&self, log: Option<&LogAppend>) -> Result<LogOps, StoreError> {
        let Some(LogAppend { entry, after }) = log else {
            return Ok((Vec::new(), Vec::new()));
        };
        if *after >= entry.seq {
            return Err(StoreError::Conflict {
                name: "the change log".into(),
            });
        }
        let head = self.keys.log_head();
        // Entry keys are zero-padded numbers, so their byte order is their number's.
        let between = none_from_to(
            &self.keys.log_entry(after + 1),
            &self.keys.log_entry(entry.seq.saturating_add(1)),
        );
        Ok((
            vec![self.log_head_is(*after), between],
            vec![
                put_op(&self.keys.log_entry(entry.seq), &entry.sealed),
                put_op(&head, entry.seq.to_string().as_bytes()),
            ],
        ))
    }

    /// Every change-log entry (`all`), or the newest one.
    fn log_entries(&self, all: bool) -> Result<Vec<LogRecord>, StoreError> {
        let deadline = self.gateway.deadline();
        if !all {
            return Ok(self.newest_log_entry(deadline)?.into_iter().collect());
        }
        let start = self.keys.log();
        let kvs = self
            .gateway
            .range_all(&start, &prefix_end(&start), deadline)?;
        let mut entries: Vec<LogRecord> = kvs
            .into_iter()
            .filter_map(|kv| self.log_record(kv))
            .collect();
        entries.sort_by_key(|e| e.seq);
        Ok(entries)
    }

    /// The log entry with the highest key, found by its key alone (the log head may be
    /// wrong); `None` for an empty log. Only keys of digits are asked for: a key below `log/`
    /// that names no entry (`log/x`, which sorts after them) is not taken for the newest.
    fn newest_log_entry(&self, deadline: Instant) -> Result<Option<LogRecord>, StoreError> {
        let start = self.keys.log();
        let mut end = start.clone();
        end.push(b'9' + 1);
        let mut request = json!({ "key": wire::b64(&start), "range_end": wire::b64(&end) });
        request["limit"] = json!("1");
        request["sort_order"] = json!("DESCEND");
        request["sort_target"] = json!("KEY");
        let response: RangeResponse =
            self.gateway
                .call("/v3/kv/range", &request, true, deadline)?;
        Ok(response
            .kvs
            .into_iter()
            .next()
            .and_then(|kv| self.log_record(kv)))
    }

    /// A log entry from its key and value; `None` for a key that is no entry's.
    fn log_record(&self, kv: Kv) -> Option<LogRecord> {
        Some(LogRecord {
            seq: self.keys.log_seq(&kv.key)?,
            sealed: kv.value,
        })
    }

    /// [`Store::read`], once: the meta keys, the versions and the change-log entries past the
    /// manifest's, read at one revision: the manifest, the records and the log of one moment.
    /// (Not the whole log or the notes beside them: a log of thousands of entries would be
    /// read by every command.)
    fn read_at_one_revision(&self, deadline: Instant) -> Result<Option<Snapshot>, StoreError> {
        let meta = self.keys.meta();
        let versions = self.keys.versions(None);
        let (mut kvs, revision) =
            self.gateway
                .range_all_at(&meta, &prefix_end(&meta), 0, deadline)?;
        let (records, _) =
            self.gateway
                .range_all_at(&versions, &prefix_end(&versions), revision, deadline)?;
        kvs.extend(records);
        let Some(identity) = self.identity_of(&kvs) else {
            // No store at this moment (its id is not there at this revision), or keys that
            // are not a store's: say whose.
            return self.vacant(revision, deadline).map(|_| None);
        };
        let log_past = match identity
            .manifest
            .as_deref()
            .map(crate::integrity::claimed_log_seq)
        {
            Some(claimed) if claimed > 0 => {
                // From the entry after the claimed one to the end of the log's keys: a key
                // there that names no entry is left out.
                let from = self.keys.log_entry(claimed.saturating_add(1));
                let (kvs, _) = self.gateway.range_all_at(
                    &from,
                    &prefix_end(&self.keys.log()),
                    revision,
                    deadline,
                )?;
                kvs.into_iter()
                    .filter_map(|kv| self.log_record(kv))
                    .filter(|e| e.seq > claimed)
                    .collect()
            }
            _ => Vec::new(),
        };
        let records = kvs
            .iter()
            .filter(|kv| self.keys.is_version(&kv.key))
            .map(|kv| self.keys.decode(kv))
            .collect();
        Ok(Some(Snapshot {
            identity,
            records,
            log_past,
        }))
    }
}

/// The newest record of each name, from records in key order (name, then zero-padded
/// version): the last key of each name's `P/v/{name}/` range.
fn newest_of_each_name(records: Vec<(Vec<u8>, ReadRecord)>) -> Vec<(Vec<u8>, ReadRecord)> {
    let name_part = |k: &[u8]| k[..k.iter().rposition(|b| *b == b'/').unwrap_or(0)].to_vec();
    let mut latest: Vec<(Vec<u8>, ReadRecord)> = Vec::new();
    for (key, record) in records {
        match latest.last_mut() {
            Some(last) if name_part(&last.0) == name_part(&key) => *last = (key, record),
            _ => latest.push((key, record)),
        }
    }
    latest
}

impl Store for EtcdStore {
    fn location(&self) -> String {
        self.spec.location()
    }

    fn identity(&self, create: bool) -> Result<Option<Identity>, StoreError> {
        let deadline = self.gateway.deadline();
        let meta = self.keys.meta();
        let kvs = self
            .gateway
            .range_all(&meta, &prefix_end(&meta), deadline)?;
        if let Some(identity) = self.identity_of(&kvs) {
            return Ok(Some(identity));
        }
        if create {
            self.create_id(deadline)?;
            return self.identity(false);
        }
        // The id is the first key a store gets: without it, keys under the prefix are the
        // store's own (its id was removed), another store's below it, or another program's.
        if self.vacant(0, deadline)? == claim::Vacant::Empty {
            return Ok(None);
        }
        // A writer created the store since the meta keys were read: its id is there now.
        let kvs = self
            .gateway
            .range_all(&meta, &prefix_end(&meta), deadline)?;
        self.identity_of(&kvs)
            .map(Some)
            .ok_or_else(|| self.id_removed())
    }

    fn read(&self) -> Result<Option<Snapshot>, StoreError> {
        let deadline = self.gateway.deadline();
        gateway::at_one_revision(deadline, || self.read_at_one_revision(deadline))
    }

    fn latest(&self, name: &str) -> Result<Option<ReadRecord>, StoreError> {
        // Only keys of digits after `P/v/{name}/` are asked for: a key there that is no
        // version's (`P/v/{name}/meta/...`, which sorts after them) is not taken for the newest.
        let start = self.keys.versions(Some(name));
        let mut end = start.clone();
        end.push(b'9' + 1);
        let mut request = json!({ "key": wire::b64(&start), "range_end": wire::b64(&end) });
        request["limit"] = json!("1");
        request["sort_order"] = json!("DESCEND");
        request["sort_target"] = json!("KEY");
        let response: RangeResponse =
            self.gateway
                .call("/v3/kv/range", &request, true, self.gateway.deadline())?;
        Ok(response.kvs.first().map(|kv| self.keys.decode(kv)))
    }

    fn list_latest(&self) -> Result<Vec<ReadRecord>, StoreError> {
        let versions = self.versions(None, self.gateway.deadline())?;
        Ok(newest_of_each_name(versions)
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    fn history(&self, name: &str) -> Result<Vec<ReadRecord>, StoreError> {
        Ok(self
            .versions(Some(name), self.gateway.deadline())?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    fn all_versions(&self) -> Result<Vec<ReadRecord>, StoreError> {
        Ok(self
            .versions(None, self.gateway.deadline())?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    fn append_all_logged(
        &self,
        batch: &[(u64, &Record)],
        key_fingerprint: &str,
        manifest: &ManifestSwap,
        log: Option<&LogAppend>,
    ) -> Result<(), StoreError> {
        self.append_in_one_txn(batch, key_fingerprint, manifest, log)
    }

    fn replace_all(
        &self,
        whole: &Resealed<'_>,
        key_fingerprint: &str,
        manifest: &ManifestSwap,
    ) -> Result<(), StoreError> {
        self.reseal(whole, key_fingerprint, manifest)
    }

    fn purge_logged(
        &self,
        name: &str,
        manifest: &ManifestSwap,
        log: Option<&LogAppend>,
    ) -> Result<usize, StoreError> {
        self.purge_in_one_txn(name, manifest, log)
    }

    fn append_log(&self, log: &LogAppend) -> Result<(), StoreError> {
        let (compares, puts) = self.log_ops(Some(log))?;
        let response = self
            .gateway
            .txn(compares, puts, Vec::new(), self.gateway.deadline())?;
        if response.succeeded {
            Ok(())
        } else {
            Err(StoreError::Conflict {
                name: "the change log".into(),
            })
        }
    }

    /// The entry the log head names (what appends are conditioned on). A head that names no
    /// entry while the log holds none reads as empty bytes, which do not open, so that the
    /// damage is said and writes go on after it. Without a head, or with one behind or past
    /// the newest entry or at the end of the range (the head is not authenticated: edited
    /// below cio), the newest entry, and the head is put back there.
    fn log_tail(&self) -> Result<Option<LogRecord>, StoreError> {
        let deadline = self.gateway.deadline();
        let one = |key: Vec<u8>| -> Result<Option<Vec<u8>>, StoreError> {
            let response: RangeResponse = self.gateway.call(
                "/v3/kv/range",
                &json!({ "key": wire::b64(&key) }),
                true,
                deadline,
            )?;
            Ok(response.kvs.into_iter().next().map(|kv| kv.value))
        };
        let stored = one(self.keys.log_head())?;
        let head = stored
            .as_deref()
            .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
            // A head at the end of the range names no entry cio can follow: edited.
            .filter(|seq| *seq < MAX_LOG_SEQ);
        let newest = self.newest_log_entry(deadline)?;
        match (head, newest) {
            // The head names the newest entry: the usual case.
            (Some(seq), Some(newest)) if newest.seq == seq => Ok(Some(newest)),
            // A head and no entry found by key: the log was deleted (the empty entry says
            // so), or its newest key is no entry's; the head's own entry, if there.
            (Some(seq), None) => Ok(Some(LogRecord {
                seq,
                sealed: one(self.keys.log_entry(seq))?.unwrap_or_default(),
            })),
            // No head (or one that is no number, or one behind or past the newest entry)
            // while there are entries: the head was deleted or edited. Appends are
            // conditioned on it, so it is put back (only while still as read) at the newest
            // entry; without this, every write would lose to it, or go on past a gap that
            // never held entries. Entries deleted from the log's end are still found: the
            // manifest names the entry the newest change wrote, and the log must reach it.
            (_, Some(entry)) => {
                let head = self.keys.log_head();
                let as_read = match &stored {
                    None => absent(&head),
                    Some(bytes) => value_is(&head, bytes),
                };
                self.gateway.txn(
                    vec![as_read],
                    vec![put_op(&head, entry.seq.to_string().as_bytes())],
                    Vec::new(),
                    deadline,
                )?;
                Ok(Some(entry))
            }
            (_, None) => Ok(None),
        }
    }

    fn log(&self) -> Result<Vec<LogRecord>, StoreError> {
        self.log_entries(true)
    }

    fn notes(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let start = self.keys.notes();
        let kvs = self
            .gateway
            .range_all(&start, &prefix_end(&start), self.gateway.deadline())?;
        let mut notes: Vec<(String, Vec<u8>)> = kvs
            .into_iter()
            .filter_map(|kv| Some((self.keys.note_key(&kv.key)?, kv.value)))
            .collect();
        notes.sort();
        Ok(notes)
    }

    fn put_notes_logged(
        &self,
        notes: &[(String, Vec<u8>)],
        manifest: Option<&ManifestSwap>,
        log: Option<&LogAppend>,
    ) -> Result<(), StoreError> {
        let mut ops: Vec<serde_json::Value> = notes
            .iter()
            .map(|(key, sealed)| put_op(&self.keys.note(key), sealed))
            .collect();
        let mut compares = Vec::new();
        if let Some(swap) = manifest {
            compares.extend(self.swap_holds(swap));
            ops.push(put_op(&self.keys.manifest(), &swap.new));
        }
        let (log_compares, log_puts) = self.log_ops(log)?;
        compares.extend(log_compares);
        ops.extend(log_puts);
        let response = self
            .gateway
            .txn(compares, ops, Vec::new(), self.gateway.deadline())?;
        if !response.succeeded {
            return Err(StoreError::Conflict {
                name: "the store's manifest".into(),
            });
        }
        Ok(())
    }

    fn keeps_revisions(&self) -> bool {
        true
    }

    fn compact(&self) -> Result<Option<i64>, StoreError> {
        let deadline = self.gateway.deadline();
        // The current revision is in the header of every answer; reading the store id is a
        // read the store's user is allowed.
        let mut request = json!({"key": wire::b64(&self.keys.store_id())});
        request["keys_only"] = json!(true);
        let now: RangeResponse = self
            .gateway
            .call("/v3/kv/range", &request, true, deadline)?;
        let revision = now.header.revision;
        // Compacting twice at one revision is harmless: a member that got the request but
        // whose answer was lost makes the next one answer "already compacted".
        let body = json!({"revision": revision.to_string(), "physical": true});
        self.gateway.call_settled::<IgnoredAny>(
            "/v3/kv/compaction",
            &body,
            true,
            &GatewayError::is_already_compacted,
            deadline,
        )?;
        Ok(Some(revision))
    }
}
