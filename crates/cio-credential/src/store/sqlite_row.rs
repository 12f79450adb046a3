//! One row of the SQLite store's `versions` table, decoded from whatever the file holds.
//!
//! The file can be edited by anyone who can write it, so every column may hold any SQLite
//! type: the row is read as raw values and checked here, field by field; a row that does not
//! decode is [`Undecodable`], naming the credential, and never a panic.

use rusqlite::types::{Value, ValueRef};

use crate::store::{Action, ReadRecord, Record, Undecodable, check_fields};

/// The columns of a row, in the order [`decode_row`] takes them.
pub(super) const COLUMNS: &str =
    "name, version, action, restored_from, written_at_ms, sealed, seq, prev_mac, mac";

/// A row's values, in [`COLUMNS`] order.
pub(crate) type RawRow = [Value; 9];

/// A column's value as stored, whatever it is: text that is not UTF-8 (SQLite keeps what
/// it is given) is taken as the bytes it is, so that one such field is the damage of its
/// row's credential rather than an error of the whole reading.
pub(super) fn raw_value(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => Value::Text(text.to_string()),
            Err(_) => Value::Blob(bytes.to_vec()),
        },
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
    }
}

/// What a name column holds, as text for messages (a name that is not text is shown as
/// such, never as its bytes).
fn name_of(value: Value) -> Option<String> {
    match value {
        Value::Text(s) => Some(s),
        _ => None,
    }
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(i) => Some(*i),
        _ => None,
    }
}

fn positive(value: &Value) -> Option<u64> {
    integer(value)
        .filter(|i| *i > 0)
        .and_then(|i| u64::try_from(i).ok())
}

/// The bytes a column holds, taken (a row's values are read once).
fn blob(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::Blob(b) => Some(b),
        _ => None,
    }
}

/// Decodes one row; the error names the row's credential and says which field is wrong.
pub(crate) fn decode_row(row: RawRow) -> ReadRecord {
    let [
        name,
        version,
        action,
        restored_from,
        written_at_ms,
        sealed,
        seq,
        prev_mac,
        mac,
    ] = row;
    let Some(name) = name_of(name) else {
        return Err(Undecodable {
            name: "(a name that is not text)".into(),
            detail: "its name is not text".into(),
        });
    };
    let bad = |detail: &str| Undecodable {
        name: name.clone(),
        detail: detail.to_string(),
    };
    let version = positive(&version).ok_or_else(|| bad("its version number is not a number"))?;
    let action = match &action {
        Value::Text(a) => Action::parse(a),
        _ => None,
    }
    .ok_or_else(|| bad("its action is unknown"))?;
    let restored_from = match &restored_from {
        Value::Null => None,
        v => Some(positive(v).ok_or_else(|| bad("the version it restores is not a number"))?),
    };
    let written_at_ms = integer(&written_at_ms).ok_or_else(|| bad("its time is not a number"))?;
    let sealed = match sealed {
        Value::Null => None,
        v => Some(blob(v).ok_or_else(|| bad("its sealed value is not bytes"))?),
    };
    let seq = positive(&seq).ok_or_else(|| bad("its write number is not a number"))?;
    let prev_mac = match prev_mac {
        Value::Null => Vec::new(),
        v => blob(v).ok_or_else(|| bad("its chain link is not bytes"))?,
    };
    let mac = blob(mac).ok_or_else(|| bad("its authentication code is not bytes"))?;
    let record = Record {
        name,
        version,
        action,
        restored_from,
        written_at_ms,
        sealed,
        seq,
        prev_mac,
        mac,
    };
    match check_fields(&record) {
        Ok(()) => Ok(record),
        Err(detail) => Err(Undecodable {
            name: record.name,
            detail: detail.to_string(),
        }),
    }
}

/// The values of `record`, as [`decode_row`] reads them back.
pub(super) fn encode_row(record: &Record) -> RawRow {
    // check_fields keeps every stored number below i64::MAX, and a writer only ever adds one.
    let int = |v: u64| Value::Integer(i64::try_from(v).unwrap_or(i64::MAX));
    [
        Value::Text(record.name.clone()),
        int(record.version),
        Value::Text(record.action.as_str().into()),
        record.restored_from.map_or(Value::Null, int),
        Value::Integer(record.written_at_ms),
        record.sealed.clone().map_or(Value::Null, Value::Blob),
        int(record.seq),
        if record.prev_mac.is_empty() {
            Value::Null
        } else {
            Value::Blob(record.prev_mac.clone())
        },
        Value::Blob(record.mac.clone()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Record {
        Record {
            name: "cio_aws_secret_key".into(),
            version: 2,
            action: Action::Update,
            restored_from: None,
            written_at_ms: 1_700_000_000_000,
            sealed: Some(vec![7; 60]),
            seq: 5,
            prev_mac: vec![1; 32],
            mac: vec![2; 32],
        }
    }

    #[test]
    fn a_row_decodes_to_what_was_encoded() {
        assert_eq!(decode_row(encode_row(&good())).unwrap(), good());
        let first = Record {
            version: 1,
            prev_mac: Vec::new(),
            action: Action::Remove,
            sealed: None,
            ..good()
        };
        assert_eq!(decode_row(encode_row(&first)).unwrap(), first);
    }

    /// Every kind of stored damage is a clear error naming the credential, never a panic.
    #[test]
    fn damaged_rows_name_the_credential_and_the_field() {
        let cases: Vec<(usize, Value, &str)> = vec![
            (
                1,
                Value::Integer(i64::MAX),
                "its version number is out of range",
            ),
            (1, Value::Integer(-1), "its version number is not a number"),
            (
                1,
                Value::Text("2".into()),
                "its version number is not a number",
            ),
            (2, Value::Text("rename".into()), "its action is unknown"),
            (2, Value::Null, "its action is unknown"),
            (4, Value::Integer(i64::MAX), "its time is out of range"),
            (
                4,
                Value::Integer(253_402_300_800_000),
                "its time is out of range",
            ),
            (4, Value::Integer(i64::MIN), "its time is out of range"),
            (4, Value::Real(1.5), "its time is not a number"),
            (
                5,
                Value::Blob(vec![1; 10]),
                "its sealed value has an impossible length",
            ),
            (
                5,
                Value::Blob(vec![1; 1 << 20]),
                "its sealed value has an impossible length",
            ),
            (5, Value::Null, "it has no value"),
            (5, Value::Text("x".into()), "its sealed value is not bytes"),
            (
                6,
                Value::Integer(i64::MAX),
                "its write number is out of range",
            ),
            (6, Value::Null, "its write number is not a number"),
            (
                8,
                Value::Blob(vec![0; 5]),
                "its authentication code has an impossible length",
            ),
            (8, Value::Null, "its authentication code is not bytes"),
            (
                3,
                Value::Integer(2),
                "it restores a version that cannot exist",
            ),
        ];
        for (column, value, detail) in cases {
            let mut row = encode_row(&good());
            row[column] = value.clone();
            let err = decode_row(row).unwrap_err();
            assert_eq!(
                err,
                Undecodable {
                    name: "cio_aws_secret_key".into(),
                    detail: detail.into()
                },
                "column {column} = {value:?}"
            );
        }
        let mut row = encode_row(&good());
        row[0] = Value::Blob(b"cio_aws_secret_key".to_vec());
        assert_eq!(decode_row(row).unwrap_err().detail, "its name is not text");
    }
}
