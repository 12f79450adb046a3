//! A store's records as etcd keys and values. Under the prefix `P`:
//! - `P/meta/store_id`: the store's random id (bound into every sealed value);
//! - `P/meta/key_fingerprint`: the fingerprint of the key that seals the store;
//! - `P/meta/manifest`: the store's manifest (`crate::integrity`), replaced by every write;
//! - `P/v/{name}/{version:020}`: one version, a JSON record
//!   `{"format":2,"action":"update","restored_from":N,"written_at_ms":T,"sealed":"<base64>",
//!   "seq":S,"prev_mac":"<base64>","mac":"<base64>"}` (`restored_from`, `sealed` and
//!   `prev_mac` only when set; the sealed bytes are nonce || ciphertext, never plaintext);
//!   zero-padded so that key order is version order;
//! - `P/head/{name}`: the latest version number of `name`, in decimal;
//! - `P/log/{seq:020}`: one change-log entry, its bytes as they are; `P/loghead`: the
//!   newest entry's number, in decimal (what an append is conditioned on);
//! - `P/note/{key}`: one note (a set's health record), its sealed bytes as they are, written
//!   in the transaction that replaces the manifest pinning it.
//!
//! (`/` and `%` in a name are written `%2F` and `%25`, so a name is always one key segment.)

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::wire::{Kv, b64};
use crate::store::{Action, ReadRecord, Record, Undecodable, check_fields};

/// The version of the record format written under `P/v/`: 2 adds `seq`, `prev_mac` and `mac`
/// (format 1, without them, was written by cio before records were authenticated).
const RECORD_FORMAT: u32 = 2;

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
    #[serde(default)]
    seq: u64,
    /// The previous version's `mac` in base64; absent for version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prev_mac: Option<String>,
    #[serde(default)]
    mac: String,
}

/// Whether `segment` is a version or log entry number as cio writes it: 20 digits.
fn is_number_segment(segment: &[u8]) -> bool {
    segment.len() == 20 && segment.iter().all(u8::is_ascii_digit)
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

    /// `P/meta/`: the store id, the key fingerprint and the manifest.
    pub fn meta(&self) -> Vec<u8> {
        self.key("meta/")
    }

    pub fn store_id(&self) -> Vec<u8> {
        self.key("meta/store_id")
    }

    pub fn fingerprint(&self) -> Vec<u8> {
        self.key("meta/key_fingerprint")
    }

    pub fn manifest(&self) -> Vec<u8> {
        self.key("meta/manifest")
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

    /// The note key of a key under `P/note/`; `None` for a key cio would not have written
    /// (one that decodes to a note's name but is not its encoding, put there by hand, would
    /// otherwise stand beside cio's own and hide it).
    pub fn note_key(&self, key: &[u8]) -> Option<String> {
        let base = self.notes();
        let name = key
            .strip_prefix(base.as_slice())
            .map(|rest| decode_name(&String::from_utf8_lossy(rest)))?;
        (self.note(&name) == key).then_some(name)
    }

    /// The part of `key` after `P/`, if `key` is under the prefix.
    fn rest<'k>(&self, key: &'k [u8]) -> Option<&'k [u8]> {
        key.strip_prefix(self.prefix.as_bytes())?.strip_prefix(b"/")
    }

    /// Whether `key` is a version's key, `P/v/{name}/{version:020}`: keys below `P/v/` of
    /// any other shape (another store's, made below this one's prefix) are not this store's.
    pub fn is_version(&self, key: &[u8]) -> bool {
        let Some(rest) = self.rest(key).and_then(|r| r.strip_prefix(b"v/")) else {
            return false;
        };
        match rest.iter().position(|b| *b == b'/') {
            Some(i) if i > 0 => is_number_segment(&rest[i + 1..]),
            _ => false,
        }
    }

    /// Whether `key` is one of the keys this layout writes: `P/meta/{store_id,
    /// key_fingerprint,manifest}`, `P/loghead`, `P/head/{name}`, `P/log/{seq:020}`,
    /// `P/note/{key}` and versions ([`KeyLayout::is_version`]).
    pub fn owns(&self, key: &[u8]) -> bool {
        let Some(rest) = self.rest(key) else {
            return false;
        };
        let one_segment = |s: &[u8]| !s.is_empty() && !s.contains(&b'/');
        match rest {
            b"meta/store_id" | b"meta/key_fingerprint" | b"meta/manifest" | b"loghead" => true,
            _ if rest.starts_with(b"v/") => self.is_version(key),
            _ => {
                if let Some(seq) = rest.strip_prefix(b"log/") {
                    is_number_segment(seq)
                } else if let Some(name) = rest.strip_prefix(b"head/") {
                    one_segment(name)
                } else if let Some(note) = rest.strip_prefix(b"note/") {
                    one_segment(note)
                } else {
                    false
                }
            }
        }
    }

    /// The prefix of the store whose id `key` is, when that store's prefix lies below this
    /// one's: `P/Q/meta/store_id` gives `P/Q`.
    pub fn store_below<'k>(&self, key: &'k [u8]) -> Option<&'k [u8]> {
        let rest = self.rest(key)?;
        let inner = rest.strip_suffix(b"/meta/store_id")?;
        (!inner.is_empty()).then(|| &key[..key.len() - b"/meta/store_id".len()])
    }

    /// The prefixes that enclose this one (`/a` and `/a/b` for `/a/b/c`), outermost first:
    /// a store at any of them would hold this one's keys among its own.
    pub fn enclosing(&self) -> Vec<KeyLayout> {
        self.prefix
            .match_indices('/')
            .filter(|(i, _)| *i > 0)
            .map(|(i, _)| KeyLayout::new(&self.prefix[..i]))
            .collect()
    }

    /// The prefix, `/a/b`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The number of an entry's key under `P/log/`.
    pub fn log_seq(&self, key: &[u8]) -> Option<u64> {
        let base = self.log();
        std::str::from_utf8(key.strip_prefix(base.as_slice())?)
            .ok()?
            .parse()
            .ok()
    }

    /// Decodes a version from its key and record. A record that does not decode, whatever
    /// field is wrong (its format included), is [`Undecodable`] under the name its key gives:
    /// damage to that name only, never to the whole store.
    pub fn decode(&self, kv: &Kv) -> ReadRecord {
        let key = String::from_utf8_lossy(&kv.key);
        let base = String::from_utf8_lossy(&self.versions(None)).into_owned();
        let rest = key.strip_prefix(&base).unwrap_or(&key);
        let (name, number) = match rest.rsplit_once('/') {
            Some((name, number)) => (decode_name(name), Some(number)),
            None => (decode_name(rest), None),
        };
        let bad = |why: &str| {
            Err(Undecodable {
                name: name.clone(),
                detail: format!("the record {key:?} {why}"),
            })
        };
        let Some(version) = number
            .filter(|n| n.len() == 20)
            .and_then(|n| n.parse::<u64>().ok())
        else {
            return bad("has no version number");
        };
        let Ok(record) = serde_json::from_slice::<RecordJson>(&kv.value) else {
            return bad("is not a cio record");
        };
        // A format this cio does not know is damage to its name like any other record it
        // cannot read: a newer cio would say so in the manifest (`StoreError::Newer`), which
        // every reader checks first, so one record alone cannot refuse the whole store.
        if record.format > RECORD_FORMAT {
            return bad(&format!(
                "has record format {}, which this cio does not read (it reads format {RECORD_FORMAT})",
                record.format
            ));
        }
        if record.format < RECORD_FORMAT {
            return bad("was written by an earlier cio, without authentication");
        }
        let Some(action) = Action::parse(&record.action) else {
            return bad("has an unknown action");
        };
        let bytes = |text: Option<String>| match text {
            Some(t) => STANDARD.decode(t).map(Some),
            None => Ok(None),
        };
        let Ok(sealed) = bytes(record.sealed) else {
            return bad("has a damaged value");
        };
        let (Ok(prev_mac), Ok(Some(mac))) = (bytes(record.prev_mac), bytes(Some(record.mac)))
        else {
            return bad("has a damaged authentication code");
        };
        let decoded = Record {
            name: name.clone(),
            version,
            action,
            restored_from: record.restored_from,
            written_at_ms: record.written_at_ms,
            sealed,
            seq: record.seq,
            prev_mac: prev_mac.unwrap_or_default(),
            mac,
        };
        if let Err(why) = check_fields(&decoded) {
            return bad(&format!("is damaged: {why}"));
        }
        Ok(decoded)
    }
}

/// Decodes the record stored under `key` with `value`, in a store whose prefix is `prefix`
/// (for the fuzz target and its corpus replay, which have no [`Kv`] of etcd's).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn decode_key_value(prefix: &str, key: &[u8], value: &[u8]) -> ReadRecord {
    let kv = Kv {
        key: key.to_vec(),
        value: value.to_vec(),
    };
    KeyLayout::new(prefix).decode(&kv)
}

/// The record of `version`, as stored under its version key.
pub(super) fn encode(version: &Record) -> Vec<u8> {
    let record = RecordJson {
        format: RECORD_FORMAT,
        action: version.action.as_str().to_string(),
        restored_from: version.restored_from,
        written_at_ms: version.written_at_ms,
        sealed: version.sealed.as_deref().map(b64),
        seq: version.seq,
        prev_mac: (!version.prev_mac.is_empty()).then(|| b64(&version.prev_mac)),
        mac: b64(&version.mac),
    };
    serde_json::to_vec(&record).expect("a record of strings and numbers always serializes to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &str) -> Kv {
        Kv {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
        }
    }

    fn decode(key: &str, value: &str) -> ReadRecord {
        KeyLayout::new("/p").decode(&kv(key, value))
    }

    const KEY: &str = "/p/v/n/00000000000000000001";

    /// A good record's JSON with `field` replaced by `value` (raw JSON), or removed (None).
    fn with(field: &str, value: Option<&str>) -> String {
        let mut record: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"format":2,"action":"create","written_at_ms":1,"seq":1,
                "sealed":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                "mac":"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="}"#,
        )
        .unwrap();
        match value {
            Some(v) => record.insert(field.into(), serde_json::from_str(v).unwrap()),
            None => record.remove(field),
        };
        serde_json::to_string(&record).unwrap()
    }

    #[test]
    fn a_note_key_cio_did_not_write_is_no_note() {
        let keys = KeyLayout::new("/p");
        let ours = keys.note("check/minio/primary");
        assert_eq!(keys.note_key(&ours).as_deref(), Some("check/minio/primary"));
        // Put by hand unencoded: it would decode to the same name and hide cio's own.
        assert_eq!(keys.note_key(b"/p/note/check/minio/primary"), None);
        assert_eq!(keys.note_key(b"/p/other/check"), None);
    }

    /// The store's own keys are told from those of a store made below its prefix (at
    /// `/p/v/n`, `/p/v`, `/p/note`, ...) and from another program's.
    #[test]
    fn own_keys_are_told_from_another_stores_below() {
        let keys = KeyLayout::new("/p");
        for own in [
            "/p/meta/store_id",
            "/p/meta/key_fingerprint",
            "/p/meta/manifest",
            "/p/loghead",
            "/p/head/cio_aws_access_key",
            "/p/log/00000000000000000001",
            "/p/note/check%2Fminio%2Fprimary",
            KEY,
        ] {
            assert!(keys.owns(own.as_bytes()), "{own}");
        }
        for other in [
            "/p/v/n/meta/store_id",
            "/p/v/n/loghead",
            "/p/v/n/00000000000000000001/meta/store_id",
            "/p/v/meta/store_id",
            "/p/v/n/1",
            "/p/v//00000000000000000001",
            "/p/log/1",
            "/p/log/00000000000000000001/loghead",
            "/p/meta/meta/store_id",
            "/p/meta/other",
            "/p/head/x/meta/store_id",
            "/p/note/x/loghead",
            "/p/app/config",
            "/p/",
            "/pq/meta/store_id",
            "/p",
        ] {
            assert!(!keys.owns(other.as_bytes()), "{other}");
        }
        assert!(keys.is_version(KEY.as_bytes()));
        assert!(!keys.is_version(b"/p/v/n/loghead"));
        assert_eq!(
            keys.store_below(b"/p/v/n/meta/store_id"),
            Some(&b"/p/v/n"[..])
        );
        assert_eq!(keys.store_below(b"/p/meta/store_id"), None);
        assert_eq!(keys.store_below(b"/q/x/meta/store_id"), None);
        let enclosing: Vec<String> = KeyLayout::new("/a/b/c")
            .enclosing()
            .iter()
            .map(|k| k.prefix().to_string())
            .collect();
        assert_eq!(enclosing, ["/a", "/a/b"]);
        assert!(KeyLayout::new("/a").enclosing().is_empty());
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
            written_at_ms: 5,
            sealed: Some(vec![7; 41]),
            seq: 9,
            prev_mac: vec![1; 32],
            mac: vec![2; 32],
        };
        let layout = KeyLayout::new("/p");
        let kv = Kv {
            key: layout.version(&version.name, 3),
            value: encode(&version),
        };
        assert_eq!(layout.decode(&kv), Ok(version));
        let removed = decode(
            "/p/v/n/00000000000000000002",
            &with("action", Some("\"remove\"")).replace(r#""sealed":"#, r#""x":"#),
        );
        assert!(removed.is_ok());
    }

    /// Each damaged record is [`Undecodable`], naming the credential and what is wrong; the
    /// other records of the store still read.
    #[test]
    fn damaged_records_name_the_credential_and_say_why() {
        let good = with("seq", Some("1"));
        assert!(decode(KEY, &good).is_ok());
        let cases = [
            ("/p/v/n", good.clone(), "has no version number"),
            ("/p/v/n/x1", good.clone(), "has no version number"),
            (KEY, "garbage".into(), "is not a cio record"),
            (KEY, "{}".into(), "is not a cio record"),
            (
                KEY,
                with("action", Some("\"rename\"")),
                "has an unknown action",
            ),
            (KEY, with("sealed", Some("\"!!\"")), "has a damaged value"),
            (
                KEY,
                with("mac", Some("\"!!\"")),
                "has a damaged authentication code",
            ),
            (
                KEY,
                with("written_at_ms", Some("253402300800000")),
                "is damaged: its time is out of range",
            ),
            (
                KEY,
                with("written_at_ms", Some("-9223372036854775808")),
                "is damaged: its time is out of range",
            ),
            (
                KEY,
                with("seq", Some("9223372036854775807")),
                "is damaged: its write number is out of range",
            ),
            (
                KEY,
                with("seq", Some("18446744073709551616")),
                "is not a cio record",
            ),
            (
                KEY,
                with("sealed", Some("\"AAAA\"")),
                "is damaged: its sealed value has an impossible length",
            ),
            (
                KEY,
                with("format", Some("1")),
                "was written by an earlier cio, without authentication",
            ),
            // The reviewer's case: one record of an unknown format refused every name.
            (
                KEY,
                with("format", Some("3")),
                "has record format 3, which this cio does not read (it reads format 2)",
            ),
            (KEY, with("format", Some("\"2\"")), "is not a cio record"),
            (KEY, with("format", Some("-1")), "is not a cio record"),
            (KEY, with("action", None), "is not a cio record"),
            (KEY, with("action", Some("7")), "is not a cio record"),
            (KEY, with("written_at_ms", None), "is not a cio record"),
            (
                KEY,
                with("written_at_ms", Some("1.5")),
                "is not a cio record",
            ),
            (
                KEY,
                with("restored_from", Some("\"1\"")),
                "is not a cio record",
            ),
            (
                KEY,
                with("restored_from", Some("1")),
                "is damaged: it restores a version that cannot exist",
            ),
            (KEY, with("sealed", Some("7")), "is not a cio record"),
            (KEY, with("seq", Some("null")), "is not a cio record"),
            (KEY, with("seq", Some("-1")), "is not a cio record"),
            (
                KEY,
                with("prev_mac", Some("\"!!\"")),
                "has a damaged authentication code",
            ),
            (
                KEY,
                with("prev_mac", Some("\"AAAA\"")),
                "is damaged: its authentication code has an impossible length",
            ),
            (
                KEY,
                with("mac", None),
                "is damaged: its authentication code has an impossible length",
            ),
            (KEY, with("mac", Some("[]")), "is not a cio record"),
            (KEY, "[]".into(), "is not a cio record"),
            (KEY, "null".into(), "is not a cio record"),
        ];
        for (key, value, why) in cases {
            let read = decode(key, &value);
            assert_eq!(
                read,
                Err(Undecodable {
                    name: "n".into(),
                    detail: format!("the record {key:?} {why}")
                }),
                "{value}"
            );
        }
        let huge = format!("/p/v/n/{}", u64::MAX);
        assert!(decode(&huge, &good).is_err());
    }
}
