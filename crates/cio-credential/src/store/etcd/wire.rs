//! The messages of etcd's v3 JSON gateway that the store uses: range, txn, delete-range,
//! authenticate and compaction, as etcd's `rpc.proto` defines them in proto3's JSON mapping
//! (bytes are base64; 64-bit integers are decimal strings, though numbers are accepted too).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

/// Reads a proto3 `int64`: a decimal string (what the gateway writes) or a JSON number.
fn de_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        Text(String),
        Number(i64),
    }
    match Num::deserialize(d)? {
        Num::Number(n) => Ok(n),
        Num::Text(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

/// Reads proto3 `bytes`: base64 text.
fn de_b64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(d)?;
    STANDARD.decode(text).map_err(serde::de::Error::custom)
}

/// Bytes as proto3 JSON writes them: standard base64.
pub(super) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// `ResponseHeader`: the revision of the key space the answer was taken at.
#[derive(Deserialize, Default)]
pub(super) struct Header {
    #[serde(default, deserialize_with = "de_i64")]
    pub revision: i64,
}

/// `mvccpb.KeyValue`, the two fields the store reads.
#[derive(Deserialize)]
pub(super) struct Kv {
    #[serde(default, deserialize_with = "de_b64")]
    pub key: Vec<u8>,
    #[serde(default, deserialize_with = "de_b64")]
    pub value: Vec<u8>,
}

/// `RangeResponse`.
#[derive(Deserialize, Default)]
pub(super) struct RangeResponse {
    #[serde(default)]
    pub header: Header,
    #[serde(default)]
    pub kvs: Vec<Kv>,
    /// More keys match than `limit` let through.
    #[serde(default)]
    pub more: bool,
}

/// `DeleteRangeResponse`.
#[derive(Deserialize, Default)]
pub(super) struct DeleteRangeResponse {
    #[serde(default, deserialize_with = "de_i64")]
    pub deleted: i64,
}

/// `ResponseOp`: the answer to one operation of a transaction.
#[derive(Deserialize, Default)]
pub(super) struct ResponseOp {
    #[serde(default)]
    pub response_range: Option<RangeResponse>,
    #[serde(default)]
    pub response_delete_range: Option<DeleteRangeResponse>,
}

/// `TxnResponse`: whether the comparisons held, and the answers of the branch that ran.
#[derive(Deserialize)]
pub(super) struct TxnResponse {
    #[serde(default)]
    pub succeeded: bool,
    #[serde(default)]
    pub responses: Vec<ResponseOp>,
}

impl TxnResponse {
    /// The value of the first key that range operation `index` of the branch found, if any.
    pub fn range_value(&self, index: usize) -> Option<&[u8]> {
        self.responses
            .get(index)
            .and_then(|r| r.response_range.as_ref())
            .and_then(|r| r.kvs.first())
            .map(|kv| kv.value.as_slice())
    }

    /// How many keys delete-range operation `index` of the branch deleted (0 if it is not one).
    pub fn deleted(&self, index: usize) -> i64 {
        self.responses
            .get(index)
            .and_then(|r| r.response_delete_range.as_ref())
            .map_or(0, |d| d.deleted)
    }
}

/// `AuthenticateResponse`.
#[derive(Deserialize)]
pub(super) struct AuthResponse {
    #[serde(default)]
    pub token: String,
}

/// The key right after every key starting with `prefix` (etcd's `range_end` for a prefix).
pub(super) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // A prefix of only 0xff bytes: the range runs to the end of the key space.
    vec![0]
}

/// A transaction operation reading one key.
pub(super) fn range_op(key: &[u8]) -> Value {
    json!({"request_range": {"key": b64(key)}})
}

/// A transaction operation writing one key.
pub(super) fn put_op(key: &[u8], value: &[u8]) -> Value {
    json!({"request_put": {"key": b64(key), "value": b64(value)}})
}

/// A transaction operation deleting `request` (a key, or a range of keys).
pub(super) fn delete_op(request: Value) -> Value {
    json!({ "request_delete_range": request })
}

/// A compare that holds when `key` does not exist.
pub(super) fn absent(key: &[u8]) -> Value {
    json!({"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"})
}

/// A compare that holds when no key starts with `prefix`.
pub(super) fn none_under(prefix: &[u8]) -> Value {
    none_from_to(prefix, &prefix_end(prefix))
}

/// A compare that holds when no key lies in `[first, end)`.
pub(super) fn none_from_to(first: &[u8], end: &[u8]) -> Value {
    let mut compare = absent(first);
    compare["range_end"] = json!(b64(end));
    compare
}

/// A compare that holds when no key starting with `prefix` was written after `revision`
/// (none was put there since it was read at that revision).
pub(super) fn unchanged_since(prefix: &[u8], revision: i64) -> Value {
    json!({
        "key": b64(prefix),
        "range_end": b64(&prefix_end(prefix)),
        "target": "MOD",
        "result": "LESS",
        "mod_revision": revision.saturating_add(1).to_string(),
    })
}

/// A transaction operation deleting every key from `first` to `last`, both included.
pub(super) fn delete_from_to(first: &[u8], last: &[u8]) -> Value {
    let mut end = last.to_vec();
    end.push(0);
    delete_op(json!({"key": b64(first), "range_end": b64(&end)}))
}

/// A compare that holds when `key` holds exactly `value`.
pub(super) fn value_is(key: &[u8], value: &[u8]) -> Value {
    json!({"key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64(value)})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_key_after_the_prefix() {
        assert_eq!(prefix_end(b"/a/"), b"/a0");
        assert_eq!(prefix_end(&[b'a', 0xff]), b"b");
        assert_eq!(prefix_end(&[0xff, 0xff]), [0]);
    }

    #[test]
    fn numbers_come_as_text_or_numbers() {
        let r: RangeResponse =
            serde_json::from_str(r#"{"header":{"revision":"42"},"kvs":[{"key":"YQ=="}]}"#).unwrap();
        assert_eq!(r.header.revision, 42);
        assert_eq!(r.kvs[0].key, b"a");
        assert!(r.kvs[0].value.is_empty());
        let r: RangeResponse = serde_json::from_str(r#"{"header":{"revision":7}}"#).unwrap();
        assert_eq!(r.header.revision, 7);
        assert!(serde_json::from_str::<RangeResponse>(r#"{"kvs":[{"key":"%%"}]}"#).is_err());
    }
}
