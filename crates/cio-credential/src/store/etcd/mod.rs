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
//! - `wire`: etcd's JSON messages; `codec`: the key layout and the record format;
//! - this file: the [`Store`] on top of them.
//!
//! Rules:
//! - every write is ONE etcd transaction, so a write is either wholly there or not at all,
//!   even when the cluster loses quorum in the middle of it:
//!   - append compares the head (its value, or its absence for a first version) and the key
//!     fingerprint (its value, or its absence, in which case the same transaction records
//!     it), then puts the version and the head; when the comparison fails, the failure
//!     branch reads the head and fingerprint so the error is precisely
//!     [`StoreError::Conflict`] or [`StoreError::KeyMismatch`];
//!   - the store id is created by a transaction that requires that nothing exists under the
//!     prefix yet, so two nodes creating the store at once agree on one id, and keys of
//!     another program under the prefix are refused ([`StoreError::Foreign`]);
//!   - purge deletes every version and the head in one transaction;
//!   - a change-log entry goes in the transaction of its change, conditioned on the log's
//!     head (`P/loghead`) still naming the entry before it;
//! - reads are linearizable (etcd's default): a member without quorum does not answer with
//!   stale data, it makes the operation fail as [`StoreError::Unreachable`]; long ranges
//!   are read in pages at one revision, so a listing is one consistent snapshot;
//! - etcd keeps every key's earlier revisions until the cluster's history is compacted, so
//!   a purge leaves the destroyed versions readable at earlier revisions
//!   ([`Store::keeps_revisions`]); [`Store::compact`] compacts at the current revision, for
//!   the whole cluster, "physical" (the member that took the request answers once it removed
//!   the compacted revisions from its database);
//! - the location shown in messages never holds a user or password; the password is a
//!   [`SecretValue`](crate::secret::SecretValue), never in `Debug` output or an error.

mod classify;
mod codec;
mod gateway;
mod location;
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
use self::wire::{
    Kv, RangeResponse, absent, delete_op, none_under, prefix_end, put_op, range_op, range_prefix,
    value_is,
};
use super::{Identity, LogRecord, Record, Store, StoreError, new_store_id};

pub use self::gateway::{EtcdAuth, EtcdOptions};
pub use self::location::EtcdSpec;

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

    /// Every version of `name` (of every name when `None`), by name then version.
    fn versions(&self, name: Option<&str>, deadline: Instant) -> Result<Vec<Record>, StoreError> {
        let start = self.keys.versions(name);
        let kvs = self
            .gateway
            .range_all(&start, &prefix_end(&start), deadline)?;
        let location = self.location();
        let mut versions = kvs
            .iter()
            .map(|kv| self.keys.decode(kv, &location))
            .collect::<Result<Vec<_>, _>>()?;
        versions.sort_by(|a, b| a.name.cmp(&b.name).then(a.version.cmp(&b.version)));
        Ok(versions)
    }

    /// The compares and puts that add `log` to a transaction: the log head must still name
    /// the entry before it.
    fn log_ops(&self, log: Option<&LogRecord>) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
        let Some(entry) = log else {
            return (Vec::new(), Vec::new());
        };
        let head = self.keys.log_head();
        let key = self.keys.log_entry(entry.seq);
        let head_cmp = if entry.seq <= 1 {
            absent(&head)
        } else {
            value_is(&head, (entry.seq - 1).to_string().as_bytes())
        };
        (
            vec![head_cmp, absent(&key)],
            vec![
                put_op(&key, &entry.sealed),
                put_op(&head, entry.seq.to_string().as_bytes()),
            ],
        )
    }

    /// Every change-log entry (`all`), or the newest one.
    fn log_entries(&self, all: bool) -> Result<Vec<LogRecord>, StoreError> {
        let deadline = self.gateway.deadline();
        let start = self.keys.log();
        let kvs = if all {
            self.gateway
                .range_all(&start, &prefix_end(&start), deadline)?
        } else {
            let mut request = range_prefix(&start);
            request["limit"] = json!("1");
            request["sort_order"] = json!("DESCEND");
            request["sort_target"] = json!("KEY");
            let response: RangeResponse =
                self.gateway
                    .call("/v3/kv/range", &request, true, deadline)?;
            response.kvs
        };
        let mut entries: Vec<LogRecord> = kvs
            .into_iter()
            .filter_map(|kv| {
                Some(LogRecord {
                    seq: self.keys.log_seq(&kv.key)?,
                    sealed: kv.value,
                })
            })
            .collect();
        entries.sort_by_key(|e| e.seq);
        Ok(entries)
    }

    /// Creates the store id, but only if nothing at all is under the prefix: a race between
    /// two creators leaves exactly one id, and another program's keys are never adopted.
    fn create_id(&self, deadline: Instant) -> Result<String, StoreError> {
        let id_key = self.keys.store_id();
        let id = new_store_id();
        let response = self.gateway.txn(
            vec![none_under(&self.keys.everything())],
            vec![put_op(&id_key, id.as_bytes())],
            vec![range_op(&id_key)],
            deadline,
        )?;
        if response.succeeded {
            return Ok(id);
        }
        match response.range_value(0) {
            Some(v) => Ok(String::from_utf8_lossy(v).into_owned()),
            None => Err(StoreError::Foreign {
                location: self.location(),
                detail: format!(
                    "keys that cio did not write exist under {}/",
                    self.spec.prefix
                ),
            }),
        }
    }
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
        let value_of = |key: Vec<u8>| {
            kvs.iter()
                .find(|kv: &&Kv| kv.key == key)
                .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
        };
        let mut store_id = value_of(self.keys.store_id());
        let key_fingerprint = value_of(self.keys.fingerprint());
        if store_id.is_none() && create {
            store_id = Some(self.create_id(deadline)?);
        }
        Ok(store_id.map(|store_id| Identity {
            store_id,
            key_fingerprint,
        }))
    }

    fn latest(&self, name: &str) -> Result<Option<Record>, StoreError> {
        let mut request = range_prefix(&self.keys.versions(Some(name)));
        request["limit"] = json!("1");
        request["sort_order"] = json!("DESCEND");
        request["sort_target"] = json!("KEY");
        let response: RangeResponse =
            self.gateway
                .call("/v3/kv/range", &request, true, self.gateway.deadline())?;
        response
            .kvs
            .first()
            .map(|kv| self.keys.decode(kv, &self.location()))
            .transpose()
    }

    fn list_latest(&self) -> Result<Vec<Record>, StoreError> {
        let mut latest: Vec<Record> = Vec::new();
        for v in self.versions(None, self.gateway.deadline())? {
            match latest.last_mut() {
                Some(last) if last.name == v.name => *last = v,
                _ => latest.push(v),
            }
        }
        Ok(latest)
    }

    fn history(&self, name: &str) -> Result<Vec<Record>, StoreError> {
        self.versions(Some(name), self.gateway.deadline())
    }

    fn all_versions(&self) -> Result<Vec<Record>, StoreError> {
        self.versions(None, self.gateway.deadline())
    }

    fn append_logged(
        &self,
        expected: u64,
        version: &Record,
        key_fingerprint: &str,
        log: Option<&LogRecord>,
    ) -> Result<(), StoreError> {
        let conflict = || StoreError::Conflict {
            name: version.name.clone(),
        };
        if version.version != expected + 1 {
            return Err(conflict());
        }
        let deadline = self.gateway.deadline();
        let head = self.keys.head(&version.name);
        let vkey = self.keys.version(&version.name, version.version);
        let fp_key = self.keys.fingerprint();
        let head_cmp = if expected == 0 {
            absent(&head)
        } else {
            value_is(&head, expected.to_string().as_bytes())
        };
        let record = codec::encode(version);
        let (log_cmps, log_puts) = self.log_ops(log);
        let mut puts = vec![
            put_op(&vkey, &record),
            put_op(&head, version.version.to_string().as_bytes()),
        ];
        puts.extend(log_puts);
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
            let mut compares = vec![head_cmp.clone(), fp_cmp, absent(&vkey)];
            compares.extend(log_cmps.iter().cloned());
            let response = self.gateway.txn(
                compares,
                success,
                vec![range_op(&head), range_op(&fp_key)],
                deadline,
            )?;
            if response.succeeded {
                return Ok(());
            }
            match response.range_value(1) {
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
                Some(_) => return Err(conflict()),
            }
        }
        Err(conflict())
    }

    fn purge_logged(&self, name: &str, log: Option<&LogRecord>) -> Result<usize, StoreError> {
        let delete_versions = delete_op(range_prefix(&self.keys.versions(Some(name))));
        let delete_head = delete_op(json!({"key": wire::b64(&self.keys.head(name))}));
        let (log_cmps, log_puts) = self.log_ops(log);
        let mut ops = vec![delete_versions, delete_head];
        ops.extend(log_puts);
        let response = self
            .gateway
            .txn(log_cmps, ops, Vec::new(), self.gateway.deadline())?;
        if !response.succeeded {
            return Err(StoreError::Conflict {
                name: "the change log".into(),
            });
        }
        Ok(usize::try_from(response.deleted(0)).unwrap_or(0))
    }

    fn append_log(&self, log: &LogRecord) -> Result<(), StoreError> {
        let (compares, puts) = self.log_ops(Some(log));
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

    fn log_tail(&self) -> Result<Option<LogRecord>, StoreError> {
        Ok(self.log_entries(false)?.pop())
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

    fn put_note(&self, key: &str, sealed: &[u8]) -> Result<(), StoreError> {
        self.gateway.txn(
            Vec::new(),
            vec![put_op(&self.keys.note(key), sealed)],
            Vec::new(),
            self.gateway.deadline(),
        )?;
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
