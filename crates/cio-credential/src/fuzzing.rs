//! Entry points for the fuzz targets (`fuzz/`, `scripts/fuzz`) and for replaying their
//! minimised corpus in `cargo test`: each feeds arbitrary bytes to one decoder of stored or
//! typed input, which must answer (accept or refuse) and never panic, hang or allocate
//! without bound. Not part of the API: built for tests, or with the `fuzzing` feature.

use std::path::Path;

use rusqlite::types::Value;

use crate::catalog::RepoUrl;
use crate::crypto::parse_key;
use crate::integrity::decode_manifest;
use crate::restic::{KeyFile, MasterKey};
use crate::secret::SecretValue;
use crate::store::etcd::codec::decode_key_value;
use crate::store::sqlite_row::{RawRow, decode_row};

/// A fuzz target's function: it takes any bytes.
pub type Target = fn(&[u8]);

/// Every target: its name (the folder of its corpus under `fuzz/corpus/`) and its function.
pub const TARGETS: &[(&str, Target)] = &[
    ("sqlite_row", sqlite_row),
    ("etcd_record", etcd_record),
    ("manifest", manifest),
    ("restic_key_file", restic_key_file),
    ("restic_config", restic_config),
    ("repo_url", repo_url),
    ("config_file", config_file),
    ("key_file", key_file),
];

/// Bytes as SQLite values, one column after another: a type byte (0 NULL, 1 integer,
/// 2 real, 3 text, 4 blob, by its value modulo 5), then 8 bytes for a number or a length
/// byte and that many bytes for text and blobs. Missing bytes read as zero.
fn values(data: &[u8]) -> RawRow {
    let mut rest = data;
    let mut take = |n: usize| {
        let (head, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        let mut out = head.to_vec();
        out.resize(n, 0);
        out
    };
    let mut next = || {
        let tag = take(1)[0] % 5;
        let eight = |b: Vec<u8>| <[u8; 8]>::try_from(b).unwrap_or_default();
        match tag {
            0 => Value::Null,
            1 => Value::Integer(i64::from_be_bytes(eight(take(8)))),
            2 => Value::Real(f64::from_be_bytes(eight(take(8)))),
            3 => {
                let n = usize::from(take(1)[0]);
                Value::Text(String::from_utf8_lossy(&take(n)).into_owned())
            }
            _ => {
                let n = usize::from(take(1)[0]);
                Value::Blob(take(n))
            }
        }
    };
    std::array::from_fn(|_| next())
}

/// A row of the SQLite store, every column of any type.
pub fn sqlite_row(data: &[u8]) {
    let _ = decode_row(values(data));
}

/// A record of the etcd store: the key up to the first zero byte, the value after it.
pub fn etcd_record(data: &[u8]) {
    let (key, value) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let _ = decode_key_value("/p", key, value);
}

/// A store's manifest.
pub fn manifest(data: &[u8]) {
    let _ = decode_manifest(data);
}

/// A restic key file: parsed, and opened with a password when its scrypt parameters are
/// small (the cost of a real key derivation is not what is being tested).
pub fn restic_key_file(data: &[u8]) {
    let Ok(key) = KeyFile::parse(data) else {
        return;
    };
    let cheap = key.n <= 1 << 10 && key.r <= 8 && key.p <= 1;
    if cheap {
        let _ = key.open(&SecretValue::new("fuzz password".into()));
    }
}

/// A restic master key (the plaintext of a key file's data) and a repository `config`
/// sealed under a fixed master key.
pub fn restic_config(data: &[u8]) {
    let _ = MasterKey::from_json(data);
    let fixed = br#"{"mac":{"k":"AAAAAAAAAAAAAAAAAAAAAA==","r":"AAAAAAAAAAAAAAAAAAAAAA=="},"encrypt":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}"#;
    if let Ok(master) = MasterKey::from_json(fixed) {
        let _ = master.open_config(data);
    }
}

/// A repository URL, as typed.
pub fn repo_url(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = RepoUrl::parse(text);
    }
}

/// The node configuration file, `cio.toml`.
pub fn config_file(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::settings::parse(Path::new("cio.toml"), text);
    }
}

/// The key file.
pub fn key_file(data: &[u8]) {
    let _ = parse_key(data);
}

/// The replay of `fuzz/corpus/` (what the fuzzers kept, minimised) through the same entry
/// points, so that `cargo test` on stable checks every input that ever mattered.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fuzz_corpus_replays_without_a_panic() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
        let mut replayed = 0;
        for (name, target) in TARGETS {
            let dir = root.join(name);
            let entries = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("the corpus of {name} ({}): {e}", dir.display()));
            let mut files = 0;
            for entry in entries {
                let path = entry.unwrap().path();
                let bytes = std::fs::read(&path).unwrap();
                target(&bytes);
                files += 1;
            }
            assert!(files > 0, "the corpus of {name} is empty");
            replayed += files;
        }
        eprintln!("replayed {replayed} corpus files");
    }
}
