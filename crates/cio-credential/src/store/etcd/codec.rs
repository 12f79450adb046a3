//! A store's records as etcd keys and values. Under the prefix `P`:
//! - `P/meta/store_id`: the store's random id (bound into every sealed value);
//! - `P/meta/key_fingerprint`: the fingerprint of the key that seals the store;
//! - `P/v/{name}/{version:020}`: one version, a JSON record
//!   `{"format":1,"action":"update","restored_from":N,"written_at_ms":T,"sealed":"<base64>"}`
//!   (`restored_from` and `sealed` only when set; the sealed bytes are nonce || ciphertext,
//!   never plaintext); zero-padded so that key order is version order;
//! - `P/head/{name}`: the latest version number of `name`, in decimal;
//! - `P/log/{seq:020}`: one change-log entry, its sealed bytes as they are; `P/loghead`: the
//!   newest entry's number, in decimal (what an append is conditioned on);
//! - `P/note/{key}`: one note (a set's health record), its sealed bytes as they are.
//!
//! (`/` and `%` in a name are written `%2F` and `%25`, so a name is always one key segment.)

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::wire::{Kv, b64};
use crate::store::{Action, Record, StoreError};

/// The version of the record format written under `P/v/`.
const RECORD_FORMAT: u32 = 1;

/// One version as written under `P/v/{name}/{version:020}`.
#[derive(Serialize, Deserialize)]
struct RecordJson {
    format: u32,
    action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    restored_from: Option<u64>,
    written_at_ms: i64,
    /// nonce || ciphertext in base64; absent for a remove.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<String>,
}

/// A name as one key segment.
fn encode_name(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2F")
}

fn decode_name(segment: &str) -> String {
    segment.replace("%2F", "/").replace("%25", "%")
}

/// The keys of the store under one prefix.
#[derive(Debug)]
pub(super) struct KeyLayout {
    /// Starts with `/`, no trailing `/`.
    prefix: String,
}

impl KeyLayout {
    pub fn new(prefix: &str) -> KeyLayout {
        KeyLayout {
            prefix: prefix.to_string(),
        }
    }

    fn key(&self, rest: &str) -> Vec<u8> {
        format!("{}/{rest}", self.prefix).into_bytes()
    }

    /// `P/`: every key of the store starts with it.
    pub fn everything(&self) -> Vec<u8> {
        self.key("")
    }

    /// `P/meta/`: the store id and the key fingerprint.
    pub fn meta(&self) -> Vec<u8> {
        self.key("meta/")
    }

    pub fn store_id(&self) -> Vec<u8> {
        self.key("meta/store_id")
    }

    pub fn fingerprint(&self) -> Vec<u8> {
        self.key("meta/key_fingerprint")
    }

    pub fn head(&self, name: &str) -> Vec<u8> {
        self.key(&format!("head/{}", encode_name(name)))
    }

    /// `P/v/{name}/`, or `P/v/` for every name.
    pub fn versions(&self, name: Option<&str>) -> Vec<u8> {
        match name {
            Some(name) => self.key(&format!("v/{}/", encode_name(name))),
            None => self.key("v/"),
        }
    }

    pub fn version(&self, name: &str, version: u64) -> Vec<u8> {
        self.key(&format!("v/{}/{version:020}", encode_name(name)))
    }

    /// `P/log/`: every change-log entry.
    pub fn log(&self) -> Vec<u8> {
        self.key("log/")
    }

    pub fn log_entry(&self, seq: u64) -> Vec<u8> {
        self.key(&format!("log/{seq:020}"))
    }

    pub fn log_head(&self) -> Vec<u8> {
        self.key("loghead")
    }

    /// `P/note/`: every note.
    pub fn notes(&self) -> Vec<u8> {
        self.key("note/")
    }

    pub fn note(&self, key: &str) -> Vec<u8> {
        self.key(&format!("note/{}", encode_name(key)))
    }

    /// The note key of a key under `P/note/`.
    pub fn note_key(&self, key: &[u8]) -> Option<String> {
        let base = self.notes();
        key.strip_prefix(base.as_slice())
            .map(|rest| decode_name(&String::from_utf8_lossy(rest)))
    }

    /// The number of an entry's key under `P/log/`.
    pub fn log_seq(&self, key: &[u8]) -> Option<u64> {
        let base = self.log();
        std::str::from_utf8(key.strip_prefix(base.as_slice())?)
            .ok()?
            .parse()
            .ok()
    }

    /// Decodes a version from its key and record; `location` names the store in errors.
    pub fn decode(&self, kv: &Kv, location: &str) -> Result<Record, StoreError> {
        let key = String::from_utf8_lossy(&kv.key);
        let bad = |why: &str| StoreError::Corrupt {
            location: location.to_string(),
            detail: format!("the record {key:?} {why}"),
        };
        let base = String::from_utf8_lossy(&self.versions(None)).into_owned();
        let rest = key
            .strip_prefix(&base)
            .ok_or_else(|| bad("is outside the store"))?;
        let (name, number) = rest
            .rsplit_once('/')
            .ok_or_else(|| bad("has no version number"))?;
        let version: u64 = number.parse().map_err(|_| bad("has no version number"))?;
        let record: RecordJson =
            serde_json::from_slice(&kv.value).map_err(|_| bad("is not a cio record"))?;
        if record.format != RECORD_FORMAT {
            return Err(StoreError::Foreign {
                location: location.to_string(),
                detail: format!(
                    "record format {}, this cio reads format {RECORD_FORMAT}: use a cio that matches",
                    record.format
                ),
            });
        }
        let action = Action::parse(&record.action).ok_or_else(|| bad("has an unknown action"))?;
        let sealed = match record.sealed {
            Some(text) => Some(
                STANDARD
                    .decode(text)
                    .map_err(|_| bad("has a damaged value"))?,
            ),
            None => None,
        };
        Ok(Record {
            name: decode_name(name),
            version,
            action,
            restored_from: record.restored_from,
            written_at_ms: record.written_at_ms,
            sealed,
        })
    }
}

/// The record of `version`, as stored under its version key.
pub(super) fn encode(version: &Record) -> Vec<u8> {
    let record = RecordJson {
        format: RECORD_FORMAT,
        action: version.action.as_str().to_string(),
        restored_from: version.restored_from,
        written_at_ms: version.written_at_ms,
        sealed: version.sealed.as_deref().map(b64),
    };
    serde_json::to_vec(&record).expect("a record of strings and numbers always serializes to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCATION: &str = "etcd://h:2379/p";

    fn kv(key: &str, value: &str) -> Kv {
        Kv {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
        }
    }

    fn decode(key: &str, value: &str) -> Result<Record, StoreError> {
        KeyLayout::new("/p").decode(&kv(key, value), LOCATION)
    }

    #[test]
    fn names_are_one_key_segment() {
        for name in ["plain", "a/b", "100%", "%2F"] {
            assert_eq!(decode_name(&encode_name(name)), name);
            assert!(!encode_name(name).contains('/'));
        }
        let layout = KeyLayout::new("/p");
        assert_eq!(layout.head("a/b"), b"/p/head/a%2Fb");
        assert_eq!(layout.version("x", 7), b"/p/v/x/00000000000000000007");
    }

    #[test]
    fn a_record_decodes_to_what_was_encoded() {
        let version = Record {
            name: "a/b%".into(),
            version: 3,
            action: Action::Restore,
            restored_from: Some(1),
            written_at_ms: -5,
            sealed: Some(vec![0, 255, 7]),
        };
        let layout = KeyLayout::new("/p");
        let kv = Kv {
            key: layout.version(&version.name, 3),
            value: encode(&version),
        };
        assert_eq!(layout.decode(&kv, LOCATION).unwrap(), version);
        let removed = decode(
            "/p/v/n/00000000000000000002",
            r#"{"format":1,"action":"remove","written_at_ms":9}"#,
        )
        .unwrap();
        assert_eq!((removed.action, removed.sealed), (Action::Remove, None));
    }

    /// Each damaged record is a [`StoreError::Corrupt`] naming the key and what is wrong.
    #[test]
    fn damaged_records_are_corrupt_and_say_why() {
        let good = r#"{"format":1,"action":"create","written_at_ms":1,"sealed":"AQID"}"#;
        let cases = [
            ("/q/v/n/1", good, "\"/q/v/n/1\" is outside the store"),
            ("/p/v/n", good, "\"/p/v/n\" has no version number"),
            ("/p/v/n/x1", good, "\"/p/v/n/x1\" has no version number"),
            ("/p/v/n/1", "garbage", "\"/p/v/n/1\" is not a cio record"),
            ("/p/v/n/1", "{}", "\"/p/v/n/1\" is not a cio record"),
            (
                "/p/v/n/1",
                r#"{"format":1,"action":"rename","written_at_ms":1}"#,
                "\"/p/v/n/1\" has an unknown action",
            ),
            (
                "/p/v/n/1",
                r#"{"format":1,"action":"create","written_at_ms":1,"sealed":"!!"}"#,
                "\"/p/v/n/1\" has a damaged value",
            ),
        ];
        for (key, value, why) in cases {
            let err = decode(key, value).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!("the credential store {LOCATION} is damaged: the record {why}")
            );
        }
    }

    #[test]
    fn another_record_format_is_foreign() {
        let err = decode(
            "/p/v/n/1",
            r#"{"format":2,"action":"create","written_at_ms":1}"#,
        )
        .unwrap_err();
        assert!(matches!(err, StoreError::Foreign { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "{LOCATION} is not a cio credential store (record format 2, this cio reads format 1: use a cio that matches)"
            )
        );
    }
}
