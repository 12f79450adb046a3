//! What a hand with write access to a store can do to it, below cio: delete, copy and edit
//! records, remove or replace the store id, key fingerprint and manifest, and put back a
//! copy of the whole store or of one name. On SQLite it edits the file with rusqlite; on
//! etcd it edits the keys with `etcdctl`; on memory it edits the map.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rusqlite::Connection;
use rusqlite::types::Value;
use testkit::etcd::EtcdCluster;

use crate::store::memory::MemoryStore;
use crate::store::{Action, Identity, LogRecord, Record};

/// One field of a record, as a hand would set it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field {
    Action(&'static str),
    Time(i64),
    RestoredFrom(u64),
    /// The version number the record is stored under.
    Version(u64),
    /// The record format etcd's JSON records carry; SQLite's rows and memory's records have
    /// none, so there the record gets what this cio reads no more than a format it does not
    /// know: an unknown action.
    Format(u64),
}

/// One of the store's own keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Meta {
    StoreId,
    KeyFingerprint,
    Manifest,
}

impl Meta {
    fn key(self) -> &'static str {
        match self {
            Meta::StoreId => "store_id",
            Meta::KeyFingerprint => "key_fingerprint",
            Meta::Manifest => "manifest",
        }
    }
}

/// A copy of a whole store, as a backup holds it.
pub(crate) enum Saved {
    File(Vec<u8>),
    Keys(Vec<(Vec<u8>, Vec<u8>)>),
    Memory(
        Option<Identity>,
        BTreeMap<String, Vec<Record>>,
        Vec<LogRecord>,
        BTreeMap<String, Vec<u8>>,
    ),
}

/// Edits below cio.
pub(crate) trait Raw {
    fn delete_version(&self, name: &str, version: u64);
    /// Stores the content of `from` as version `to` of its name (replacing what is there).
    fn copy_version(&self, from: (&str, u64), to: (&str, u64));
    fn set_field(&self, name: &str, version: u64, field: Field);
    fn meta(&self, which: Meta) -> Option<Vec<u8>>;
    fn set_meta(&self, which: Meta, value: Option<&[u8]>);
    fn save(&self) -> Saved;
    fn put_back(&self, saved: &Saved);
    /// Puts back one name's versions from `saved`, leaving every other name as it is.
    fn put_back_name(&self, saved: &Saved, name: &str);
    /// The sealed bytes of the note `key`.
    fn note(&self, key: &str) -> Option<Vec<u8>>;
    /// Puts `sealed` as the note `key` (`None`: deletes it), the manifest left as it is.
    fn set_note(&self, key: &str, sealed: Option<&[u8]>);
    /// Deletes the change-log entries numbered `seq` and after (the log's end), and nothing
    /// else (etcd's log head stays).
    fn delete_log_from(&self, seq: u64);
    /// Puts `sealed` as change-log entry `seq` (replacing the one there), and nothing else.
    fn set_log_entry(&self, seq: u64, sealed: &[u8]);
}

pub(crate) struct SqliteRaw(pub PathBuf);

impl SqliteRaw {
    fn conn(&self) -> Connection {
        Connection::open(&self.0).expect("the store file opens")
    }

    fn row(conn: &Connection, name: &str, version: u64) -> Vec<Value> {
        conn.query_row(
            "SELECT action, restored_from, written_at_ms, sealed, seq, prev_mac, mac \
             FROM versions WHERE name = ?1 AND version = ?2",
            rusqlite::params![name, version as i64],
            |r| (0..7).map(|i| r.get::<_, Value>(i)).collect(),
        )
        .expect("the record exists")
    }

    fn put_row(conn: &Connection, name: &str, version: u64, row: &[Value]) {
        conn.execute(
            "INSERT OR REPLACE INTO versions (name, version, action, restored_from, \
             written_at_ms, sealed, seq, prev_mac, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rusqlite::params![
                name,
                version as i64,
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                row[6]
            ],
        )
        .unwrap();
    }
}

impl Raw for SqliteRaw {
    fn set_log_entry(&self, seq: u64, sealed: &[u8]) {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO log (seq, sealed) VALUES (?1, ?2)",
                rusqlite::params![seq as i64, sealed],
            )
            .unwrap();
    }

    fn delete_log_from(&self, seq: u64) {
        self.conn()
            .execute("DELETE FROM log WHERE seq >= ?1", [seq as i64])
            .unwrap();
    }

    fn delete_version(&self, name: &str, version: u64) {
        let n = self
            .conn()
            .execute(
                "DELETE FROM versions WHERE name = ?1 AND version = ?2",
                rusqlite::params![name, version as i64],
            )
            .unwrap();
        assert_eq!(n, 1);
    }

    fn copy_version(&self, from: (&str, u64), to: (&str, u64)) {
        let conn = self.conn();
        let row = Self::row(&conn, from.0, from.1);
        Self::put_row(&conn, to.0, to.1, &row);
    }

    fn set_field(&self, name: &str, version: u64, field: Field) {
        let conn = self.conn();
        let (column, value) = match field {
            Field::Action(a) => ("action", Value::Text(a.into())),
            Field::Format(f) => ("action", Value::Text(format!("format-{f}"))),
            Field::Time(t) => ("written_at_ms", Value::Integer(t)),
            Field::RestoredFrom(v) => ("restored_from", Value::Integer(v as i64)),
            Field::Version(v) => ("version", Value::Integer(v as i64)),
        };
        let n = conn
            .execute(
                &format!("UPDATE versions SET {column} = ?1 WHERE name = ?2 AND version = ?3"),
                rusqlite::params![value, name, version as i64],
            )
            .unwrap();
        assert_eq!(n, 1);
    }

    fn meta(&self, which: Meta) -> Option<Vec<u8>> {
        use rusqlite::OptionalExtension;
        self.conn()
            .query_row("SELECT v FROM meta WHERE k = ?1", [which.key()], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .unwrap()
            .map(String::into_bytes)
    }

    fn set_meta(&self, which: Meta, value: Option<&[u8]>) {
        let conn = self.conn();
        conn.execute("DELETE FROM meta WHERE k = ?1", [which.key()])
            .unwrap();
        if let Some(v) = value {
            conn.execute(
                "INSERT INTO meta (k, v) VALUES (?1, ?2)",
                rusqlite::params![which.key(), String::from_utf8_lossy(v)],
            )
            .unwrap();
        }
    }

    fn save(&self) -> Saved {
        Saved::File(std::fs::read(&self.0).unwrap())
    }

    fn put_back(&self, saved: &Saved) {
        let Saved::File(bytes) = saved else {
            panic!("not a SQLite copy")
        };
        // As `cp backup.db credentials.db` does: the bytes over the file.
        std::fs::write(&self.0, bytes).unwrap();
    }

    fn put_back_name(&self, saved: &Saved, name: &str) {
        let Saved::File(bytes) = saved else {
            panic!("not a SQLite copy")
        };
        let copy = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(copy.path(), bytes).unwrap();
        let old = Connection::open(copy.path()).unwrap();
        let mut stmt = old
            .prepare("SELECT version FROM versions WHERE name = ?1")
            .unwrap();
        let versions: Vec<i64> = stmt
            .query_map([name], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let conn = self.conn();
        conn.execute("DELETE FROM versions WHERE name = ?1", [name])
            .unwrap();
        for v in versions {
            let row = Self::row(&old, name, v as u64);
            Self::put_row(&conn, name, v as u64, &row);
        }
    }

    fn note(&self, key: &str) -> Option<Vec<u8>> {
        use rusqlite::OptionalExtension;
        self.conn()
            .query_row("SELECT sealed FROM notes WHERE k = ?1", [key], |r| r.get(0))
            .optional()
            .unwrap()
    }

    fn set_note(&self, key: &str, sealed: Option<&[u8]>) {
        let conn = self.conn();
        conn.execute("DELETE FROM notes WHERE k = ?1", [key])
            .unwrap();
        if let Some(sealed) = sealed {
            conn.execute(
                "INSERT INTO notes (k, sealed) VALUES (?1, ?2)",
                rusqlite::params![key, sealed],
            )
            .unwrap();
        }
    }
}

pub(crate) struct EtcdRaw<'c> {
    pub cluster: &'c EtcdCluster,
    /// The store's key prefix.
    pub prefix: String,
}

impl EtcdRaw<'_> {
    fn get(&self, key: &str, prefix: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut args = vec!["get", key, "-w", "json"];
        if prefix {
            args.push("--prefix");
        }
        let out = self.cluster.etcdctl(&args);
        assert!(out.status.success());
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let b = |v: &serde_json::Value| STANDARD.decode(v.as_str().unwrap_or("")).unwrap();
        json["kvs"]
            .as_array()
            .map(|kvs| {
                kvs.iter()
                    .map(|kv| (b(&kv["key"]), b(&kv["value"])))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Puts any bytes (etcdctl takes the value as an argument, so only text): through the
    /// member's JSON gateway, as etcdctl would.
    fn put(&self, key: &[u8], value: &[u8]) {
        let body = serde_json::json!({
            "key": STANDARD.encode(key),
            "value": STANDARD.encode(value),
        });
        let url = format!("http://{}/v3/kv/put", self.cluster.endpoints()[0]);
        let reply = ureq::post(&url)
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap();
        assert_eq!(reply.status().as_u16(), 200);
    }

    fn del(&self, key: &str, prefix: bool) {
        let mut args = vec!["del", key];
        if prefix {
            args.push("--prefix");
        }
        assert!(self.cluster.etcdctl(&args).status.success());
    }

    fn version_key(&self, name: &str, version: u64) -> String {
        format!("{}/v/{name}/{version:020}", self.prefix)
    }

    fn record(&self, name: &str, version: u64) -> serde_json::Value {
        let kvs = self.get(&self.version_key(name, version), false);
        serde_json::from_slice(&kvs[0].1).unwrap()
    }
}

impl Raw for EtcdRaw<'_> {
    fn set_log_entry(&self, seq: u64, sealed: &[u8]) {
        self.put(format!("{}/log/{seq:020}", self.prefix).as_bytes(), sealed);
    }

    fn delete_log_from(&self, seq: u64) {
        let first = format!("{}/log/{seq:020}", self.prefix);
        let end = format!("{}/log0", self.prefix);
        assert!(
            self.cluster
                .etcdctl(&["del", &first, &end])
                .status
                .success()
        );
    }

    fn delete_version(&self, name: &str, version: u64) {
        self.del(&self.version_key(name, version), false);
    }

    fn copy_version(&self, from: (&str, u64), to: (&str, u64)) {
        let kvs = self.get(&self.version_key(from.0, from.1), false);
        self.put(self.version_key(to.0, to.1).as_bytes(), &kvs[0].1);
    }

    fn set_field(&self, name: &str, version: u64, field: Field) {
        let mut record = self.record(name, version);
        match field {
            Field::Action(a) => record["action"] = a.into(),
            Field::Format(f) => record["format"] = f.into(),
            Field::Time(t) => record["written_at_ms"] = t.into(),
            Field::RestoredFrom(v) => record["restored_from"] = v.into(),
            Field::Version(v) => {
                self.del(&self.version_key(name, version), false);
                let text = serde_json::to_vec(&record).unwrap();
                self.put(self.version_key(name, v).as_bytes(), &text);
                return;
            }
        }
        let text = serde_json::to_vec(&record).unwrap();
        self.put(self.version_key(name, version).as_bytes(), &text);
    }

    fn meta(&self, which: Meta) -> Option<Vec<u8>> {
        let key = format!("{}/meta/{}", self.prefix, which.key());
        self.get(&key, false).pop().map(|(_, v)| v)
    }

    fn set_meta(&self, which: Meta, value: Option<&[u8]>) {
        let key = format!("{}/meta/{}", self.prefix, which.key());
        match value {
            Some(v) => self.put(key.as_bytes(), v),
            None => self.del(&key, false),
        }
    }

    fn save(&self) -> Saved {
        Saved::Keys(self.get(&format!("{}/", self.prefix), true))
    }

    fn put_back(&self, saved: &Saved) {
        let Saved::Keys(kvs) = saved else {
            panic!("not an etcd copy")
        };
        self.del(&format!("{}/", self.prefix), true);
        for (k, v) in kvs {
            self.put(k, v);
        }
    }

    fn put_back_name(&self, saved: &Saved, name: &str) {
        let Saved::Keys(kvs) = saved else {
            panic!("not an etcd copy")
        };
        let versions = format!("{}/v/{name}/", self.prefix);
        let head = format!("{}/head/{name}", self.prefix);
        self.del(&versions, true);
        for (k, v) in kvs {
            if k.starts_with(versions.as_bytes()) || k == head.as_bytes() {
                self.put(k, v);
            }
        }
    }

    fn note(&self, key: &str) -> Option<Vec<u8>> {
        self.get(&self.note_key(key), false).pop().map(|(_, v)| v)
    }

    fn set_note(&self, key: &str, sealed: Option<&[u8]>) {
        let note = self.note_key(key);
        match sealed {
            Some(sealed) => self.put(note.as_bytes(), sealed),
            None => self.del(&note, false),
        }
    }
}

impl EtcdRaw<'_> {
    /// A note's key, as `codec` writes it (`/` in the note's key as `%2F`).
    fn note_key(&self, key: &str) -> String {
        let encoded = key.replace('%', "%25").replace('/', "%2F");
        format!("{}/note/{encoded}", self.prefix)
    }
}

/// The memory store, and its identity while a test has "removed" it (the memory store keeps
/// the id in its identity, so removing the id removes the identity).
pub(crate) struct MemoryRaw(pub MemoryStore, pub std::cell::RefCell<Option<Identity>>);

impl Raw for MemoryRaw {
    fn set_log_entry(&self, seq: u64, sealed: &[u8]) {
        self.0.tamper_log(|log| {
            log.retain(|e| e.seq != seq);
            log.push(LogRecord {
                seq,
                sealed: sealed.to_vec(),
            });
            log.sort_by_key(|e| e.seq);
        });
    }

    fn delete_log_from(&self, seq: u64) {
        self.0.tamper_log(|log| log.retain(|e| e.seq < seq));
    }

    fn delete_version(&self, name: &str, version: u64) {
        self.0.tamper(|_, records| {
            records
                .get_mut(name)
                .unwrap()
                .retain(|r| r.version != version);
        });
    }

    fn copy_version(&self, from: (&str, u64), to: (&str, u64)) {
        self.0.tamper(|_, records| {
            let mut copy = records[from.0]
                .iter()
                .find(|r| r.version == from.1)
                .unwrap()
                .clone();
            copy.name = to.0.into();
            copy.version = to.1;
            let list = records.entry(to.0.into()).or_default();
            list.retain(|r| r.version != to.1);
            list.push(copy);
            list.sort_by_key(|r| r.version);
        });
    }

    fn set_field(&self, name: &str, version: u64, field: Field) {
        self.0.tamper(|_, records| {
            let list = records.get_mut(name).unwrap();
            let r = list.iter_mut().find(|r| r.version == version).unwrap();
            match field {
                // The map holds actions, not text: an unknown one becomes another action.
                Field::Action(a) => r.action = Action::parse(a).unwrap_or(Action::Restore),
                Field::Format(_) => r.action = Action::Restore,
                Field::Time(t) => r.written_at_ms = t,
                Field::RestoredFrom(v) => r.restored_from = Some(v),
                Field::Version(v) => r.version = v,
            }
            list.sort_by_key(|r| r.version);
        });
    }

    fn meta(&self, which: Meta) -> Option<Vec<u8>> {
        let mut out = None;
        self.0.tamper(|identity, _| {
            out = identity.as_ref().and_then(|i| match which {
                Meta::StoreId => Some(i.store_id.clone().into_bytes()),
                Meta::KeyFingerprint => i.key_fingerprint.clone().map(String::into_bytes),
                Meta::Manifest => i.manifest.clone(),
            });
        });
        out
    }

    fn set_meta(&self, which: Meta, value: Option<&[u8]>) {
        self.0.tamper(|identity, _| {
            let text = value.map(|v| String::from_utf8_lossy(v).into_owned());
            match which {
                Meta::StoreId => match text {
                    Some(id) => {
                        let mut restored = identity.take().or_else(|| self.1.take()).unwrap();
                        restored.store_id = id;
                        *identity = Some(restored);
                    }
                    None => *self.1.borrow_mut() = identity.take(),
                },
                Meta::KeyFingerprint => identity.as_mut().unwrap().key_fingerprint = text,
                Meta::Manifest => identity.as_mut().unwrap().manifest = value.map(<[u8]>::to_vec),
            }
        });
    }

    fn save(&self) -> Saved {
        let mut saved = None;
        self.0.tamper(|identity, records| {
            saved = Some((identity.clone(), records.clone()));
        });
        let (identity, records) = saved.unwrap();
        let mut log = Vec::new();
        self.0.tamper_log(|l| log = l.clone());
        let mut notes = BTreeMap::new();
        self.0.tamper_notes(|n| notes = n.clone());
        Saved::Memory(identity, records, log, notes)
    }

    fn put_back(&self, saved: &Saved) {
        let Saved::Memory(id, recs, old_log, saved_notes) = saved else {
            panic!("not a memory copy")
        };
        self.0.tamper(|identity, records| {
            *identity = id.clone();
            *records = recs.clone();
        });
        self.0.tamper_log(|log| *log = old_log.clone());
        self.0.tamper_notes(|notes| *notes = saved_notes.clone());
    }

    fn put_back_name(&self, saved: &Saved, name: &str) {
        let Saved::Memory(_, recs, _, _) = saved else {
            panic!("not a memory copy")
        };
        self.0.tamper(|_, records| match recs.get(name) {
            Some(old) => {
                records.insert(name.into(), old.clone());
            }
            None => {
                records.remove(name);
            }
        });
    }

    fn note(&self, key: &str) -> Option<Vec<u8>> {
        let mut out = None;
        self.0.tamper_notes(|notes| out = notes.get(key).cloned());
        out
    }

    fn set_note(&self, key: &str, sealed: Option<&[u8]>) {
        self.0.tamper_notes(|notes| match sealed {
            Some(sealed) => {
                notes.insert(key.to_string(), sealed.to_vec());
            }
            None => {
                notes.remove(key);
            }
        });
    }
}
