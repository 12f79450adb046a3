//! restic's JSON files read as restic 0.14 reads them: Go 1.19's `encoding/json` decoding into
//! a struct. Whether restic accepts a file decides whether it goes on or stops, so the rules
//! are Go's, not serde's:
//! - the top level must be an object, or `null` (which leaves every field at its zero value);
//! - a member is matched to a field by its exact name, else case-insensitively (with Go's two
//!   special folds: the Kelvin sign for `k`, the long s for `s`); unknown members are ignored;
//!   a member given twice is assigned twice, the last one wins;
//! - `null` leaves a string, number, bool or time field as it was and empties a `[]byte`;
//! - a value of the wrong type is an error (Go decodes on, then returns it);
//! - `[]byte` is standard base64 with padding (line breaks skipped, trailing bits allowed), or
//!   an array of numbers; `time.Time` is the raw text parsed with the layout `"RFC3339"`;
//! - invalid UTF-8 inside strings is replaced, as Go does, rather than refused.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// Go's `base64.StdEncoding`: padding required, non-zero trailing bits accepted.
const GO_STD_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// A JSON object's members in the order written, duplicates kept.
pub(crate) struct Object(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Object, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Object;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    members.push(entry);
                }
                Ok(Object(members))
            }
        }
        d.deserialize_map(Members)
    }
}

/// Parses `bytes` as Go's `json.Unmarshal` into a struct would: `Ok(None)` for `null`.
pub(crate) fn object(bytes: &[u8]) -> Result<Option<Object>, String> {
    let text = String::from_utf8_lossy(bytes);
    let raw: Box<RawValue> = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    object_raw(raw.get())
}

fn object_raw(text: &str) -> Result<Option<Object>, String> {
    if text == "null" {
        return Ok(None);
    }
    if !text.starts_with('{') {
        return Err(format!("cannot unmarshal {} into a struct", kind(text)));
    }
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| e.to_string())
}

fn kind(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'"') => "string",
        Some(b'[') => "array",
        Some(b't' | b'f') => "bool",
        Some(b'{') => "object",
        _ => "number",
    }
}

/// Go's field-name match: equal, or equal under simple case folding (`K` U+212A folds to
/// `k`, `ſ` U+017F to `s`).
fn matches(key: &str, name: &str) -> bool {
    if key == name {
        return true;
    }
    let mut chars = key.chars();
    for n in name.chars() {
        let Some(k) = chars.next() else {
            return false;
        };
        let same = k.eq_ignore_ascii_case(&n)
            || (n.eq_ignore_ascii_case(&'k') && k == '\u{212A}')
            || (n.eq_ignore_ascii_case(&'s') && k == '\u{17F}');
        if !same {
            return false;
        }
    }
    chars.next().is_none()
}

impl Object {
    /// The raw values assigned to field `name`, in order.
    pub(crate) fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| matches(k, name))
            .map(|(_, v)| v.get())
    }

    /// Folds every assignment of `name` with `decode` (which gets the raw text and the value so
    /// far); the first error is returned with the field's name.
    fn fold<T>(
        &self,
        name: &str,
        start: T,
        decode: impl Fn(&str, T) -> Result<T, String>,
    ) -> Result<T, String> {
        let mut value = start;
        for raw in self.values(name) {
            value = decode(raw, value).map_err(|e| format!("field {name}: {e}"))?;
        }
        Ok(value)
    }

    /// A `string` field.
    pub(crate) fn string(&self, name: &str) -> Result<String, String> {
        self.fold(name, String::new(), |raw, old| {
            if raw == "null" {
                return Ok(old);
            }
            string(raw)
        })
    }

    /// A signed integer field (`int`, 64 bits).
    pub(crate) fn int(&self, name: &str) -> Result<i64, String> {
        self.fold(name, 0, |raw, old| match raw {
            "null" => Ok(old),
            _ => number(raw).parse::<i64>().map_err(|_| bad(raw, "int")),
        })
    }

    /// An unsigned integer field of `bits` bits.
    pub(crate) fn uint(&self, name: &str, bits: u32) -> Result<u64, String> {
        self.fold(name, 0, |raw, old| match raw {
            "null" => Ok(old),
            _ => number(raw)
                .parse::<u64>()
                .ok()
                .filter(|n| bits >= 64 || *n < 1u64 << bits)
                .ok_or_else(|| bad(raw, "uint")),
        })
    }

    /// A `bool` field.
    pub(crate) fn bool(&self, name: &str) -> Result<bool, String> {
        self.fold(name, false, |raw, old| match raw {
            "null" => Ok(old),
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(bad(raw, "bool")),
        })
    }

    /// A `[]byte` field: `None` when absent or `null`.
    pub(crate) fn bytes(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        self.fold(name, None, |raw, _| bytes(raw))
    }

    /// A `time.Time` field: its Unix time in seconds and nanoseconds; `None` when absent or
    /// `null` (Go's zero time).
    pub(crate) fn time(&self, name: &str) -> Result<Option<(i64, u32)>, String> {
        self.fold(name, None, |raw, old| {
            if raw == "null" {
                return Ok(old);
            }
            rfc3339(raw)
                .map(Some)
                .ok_or_else(|| format!("cannot parse {raw} as a time (RFC 3339)"))
        })
    }

    /// A field of a type with its own decoder, given the raw text of each assignment
    /// (`UnmarshalJSON`); `null` reaches it too, as in Go.
    pub(crate) fn custom<T>(
        &self,
        name: &str,
        start: T,
        decode: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, String> {
        self.fold(name, start, |raw, _| decode(raw))
    }

    /// A `*T` field whose `T` has its own decoder: `null` makes it `None` without calling it.
    pub(crate) fn pointer<T>(
        &self,
        name: &str,
        decode: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        self.fold(name, None, |raw, _| match raw {
            "null" => Ok(None),
            _ => decode(raw).map(Some),
        })
    }

    /// A `[]string` field (`null` elements are empty strings).
    pub(crate) fn strings(&self, name: &str) -> Result<Option<Vec<String>>, String> {
        self.fold(name, None, |raw, _| {
            if raw == "null" {
                return Ok(None);
            }
            let items: Vec<Box<RawValue>> =
                serde_json::from_str(raw).map_err(|_| bad(raw, "[]string"))?;
            items
                .iter()
                .map(|item| match item.get() {
                    "null" => Ok(String::new()),
                    text => string(text),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        })
    }
}

/// A nested object decoded as its own struct (`json.Unmarshal(raw, &v)`).
pub(crate) fn nested(raw: &str) -> Result<Option<Object>, String> {
    object_raw(raw)
}

fn bad(raw: &str, ty: &str) -> String {
    format!(
        "cannot unmarshal {} into a Go value of type {ty}",
        kind(raw)
    )
}

/// The text of a number literal; anything else cannot parse as one.
fn number(raw: &str) -> &str {
    if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        raw
    } else {
        ""
    }
}

fn string(raw: &str) -> Result<String, String> {
    if !raw.starts_with('"') {
        return Err(bad(raw, "string"));
    }
    serde_json::from_str(raw).map_err(|e| e.to_string())
}

/// A `[]byte` value: base64 text or an array of numbers; `null` is `None`.
pub(crate) fn bytes(raw: &str) -> Result<Option<Vec<u8>>, String> {
    match raw.as_bytes().first() {
        Some(b'n') => Ok(None),
        Some(b'"') => {
            let text = string(raw)?;
            let clean: String = text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
            GO_STD_BASE64
                .decode(clean.as_bytes())
                .map(Some)
                .map_err(|e| format!("illegal base64 data: {e}"))
        }
        Some(b'[') => {
            let items: Vec<Box<RawValue>> = serde_json::from_str(raw).map_err(|e| e.to_string())?;
            items
                .iter()
                .map(|item| match item.get() {
                    "null" => Ok(0),
                    text => number(text).parse::<u8>().map_err(|_| bad(text, "uint8")),
                })
                .collect::<Result<Vec<u8>, _>>()
                .map(Some)
        }
        _ => Err(bad(raw, "[]uint8")),
    }
}

/// Go 1.19's `time.Parse("\"2006-01-02T15:04:05Z07:00\"", raw)` as `Time.UnmarshalJSON`
/// calls it on the raw JSON text: Unix seconds and nanoseconds, `None` when Go refuses it.
pub(crate) fn rfc3339(raw: &str) -> Option<(i64, u32)> {
    let b = raw.as_bytes();
    let mut i = 0;
    let lit = |i: &mut usize, c: u8| -> Option<()> { (b.get(*i) == Some(&c)).then(|| *i += 1) };
    let digit = |i: usize| {
        b.get(i)
            .filter(|c| c.is_ascii_digit())
            .map(|c| i64::from(c - b'0'))
    };
    // Go's getnum: one or two digits; `fixed` wants two.
    let num = |i: &mut usize, fixed: bool| -> Option<i64> {
        let first = digit(*i)?;
        match digit(*i + 1) {
            Some(second) => {
                *i += 2;
                Some(first * 10 + second)
            }
            None if fixed => None,
            None => {
                *i += 1;
                Some(first)
            }
        }
    };
    lit(&mut i, b'"')?;
    let mut year = 0;
    for _ in 0..4 {
        year = year * 10 + digit(i)?;
        i += 1;
    }
    lit(&mut i, b'-')?;
    let month = num(&mut i, true).filter(|m| (1..=12).contains(m))?;
    lit(&mut i, b'-')?;
    let day = num(&mut i, true)?;
    lit(&mut i, b'T')?;
    let hour = num(&mut i, false).filter(|h| *h < 24)?;
    lit(&mut i, b':')?;
    let minute = num(&mut i, true).filter(|m| *m < 60)?;
    lit(&mut i, b':')?;
    let second = num(&mut i, true).filter(|s| *s < 60)?;
    let mut nanos = 0u32;
    if matches!(b.get(i), Some(b'.' | b',')) && digit(i + 1).is_some() {
        let start = i + 1;
        let mut end = start;
        while digit(end).is_some() {
            end += 1;
        }
        // Go reads at most nine digits of a fraction and ignores the rest.
        for k in 0..9 {
            let d = if start + k < end {
                digit(start + k)?
            } else {
                0
            };
            nanos = nanos * 10 + u32::try_from(d).ok()?;
        }
        i = end;
    }
    let offset = if lit(&mut i, b'Z').is_some() {
        0
    } else {
        let sign = match b.get(i)? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        if b.get(i + 3) != Some(&b':') {
            return None;
        }
        let mut j = i + 1;
        let hh = num(&mut j, true)?;
        let mut j = i + 4;
        let mm = num(&mut j, true)?;
        i += 6;
        sign * (hh * 3600 + mm * 60)
    };
    lit(&mut i, b'"')?;
    if i != b.len() || day < 1 || day > days_in(month, year) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((
        days * 86400 + hour * 3600 + minute * 60 + second - offset,
        nanos,
    ))
}

fn days_in(month: i64, year: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_match_as_go_matches_them() {
        let o = object(br#"{"KDF":"a","\u212Adf":"b","N":1,"n":2,"xsalt":"","kdf":null}"#)
            .expect("parses")
            .expect("an object");
        assert_eq!(o.string("kdf").expect("strings"), "b");
        assert_eq!(o.int("N").expect("ints"), 2);
        assert!(o.bytes("salt").expect("absent").is_none());
        assert!(object(b"null").expect("null is no error").is_none());
        assert!(object(b"[]").is_err());
        assert!(object(b"").is_err());
        let o = object(br#"{"N":1.0,"r":"8","p":true}"#)
            .expect("parses")
            .expect("object");
        assert!(o.int("N").is_err());
        assert!(o.int("r").is_err());
        assert!(o.int("p").is_err());
        let o =
            object(br#"{"a":"AQ==","b":"AR==","c":"AQ","d":[1,null,255],"e":[256],"f":"A\nQ=="}"#)
                .expect("parses")
                .expect("object");
        assert_eq!(o.bytes("a").expect("a"), Some(vec![1]));
        assert_eq!(o.bytes("b").expect("trailing bits"), Some(vec![1]));
        assert!(o.bytes("c").is_err(), "padding is required");
        assert_eq!(o.bytes("d").expect("array"), Some(vec![1, 0, 255]));
        assert!(o.bytes("e").is_err());
        assert_eq!(o.bytes("f").expect("line breaks skipped"), Some(vec![1]));
    }

    #[test]
    fn times_parse_as_go_1_19_parses_rfc3339() {
        assert_eq!(rfc3339(r#""1970-01-01T00:00:00Z""#), Some((0, 0)));
        assert_eq!(
            rfc3339(r#""2024-02-29T01:02:03.123456789123+01:00""#),
            Some((1_709_164_923, 123_456_789))
        );
        assert_eq!(
            rfc3339(r#""2024-01-01T1:00:00Z""#),
            Some((1_704_070_800, 0))
        );
        for bad in [
            r#""garbage""#,
            "5",
            r#""2023-02-29T00:00:00Z""#,
            r#""2024-13-01T00:00:00Z""#,
            r#""2024-01-01T24:00:00Z""#,
            r#""2024-01-01 00:00:00Z""#,
            r#""2024-01-01T00:00:00""#,
            r#""2024-01-01T00:00:00Z" "#,
            r#""2024-01-01T00:00:00+0100""#,
        ] {
            assert_eq!(rfc3339(bad), None, "{bad}");
        }
    }
}
