//! Snapshot and lock files once opened with the master key ([`super::MasterKey::open_unpacked`]):
//! decompressed and decoded as restic 0.14 decodes them (`Repository.decompressUnpacked`,
//! `restic.Snapshot`, `restic.Lock`), so that a file restic cannot load is found here too.

use std::io::Read;

use zeroize::Zeroizing;

use super::{ResticError, gojson, malformed};

/// A lock older than this is stale for restic 0.14 whoever holds it (`staleTimeout`); a
/// running restic refreshes its locks every 5 minutes.
pub(crate) const STALE_LOCK_SECS: i64 = 30 * 60;

/// The most a snapshot or lock file may decompress to here: restic's are a few KiB (a
/// snapshot lists its paths, tags and excludes).
const MAX_PLAIN: u64 = 64 << 20;

/// `Repository.decompressUnpacked`: version 1 files and files that begin with `{` or `[` are
/// plain JSON; otherwise a version byte 2 and a zstd frame.
pub(super) fn decompress(
    what: &'static str,
    plain: Zeroizing<Vec<u8>>,
    repo_version: u64,
) -> Result<Zeroizing<Vec<u8>>, ResticError> {
    if repo_version < 2 || matches!(plain.first(), None | Some(b'{' | b'[')) {
        return Ok(plain);
    }
    if plain.first() != Some(&2) {
        return Err(malformed(what, "not supported encoding format"));
    }
    let mut source = &plain[1..];
    let decoder = ruzstd::decoding::StreamingDecoder::new(&mut source)
        .map_err(|e| malformed(what, format!("zstd: {e}")))?;
    let mut out = Zeroizing::new(Vec::new());
    decoder
        .take(MAX_PLAIN)
        .read_to_end(&mut out)
        .map_err(|e| malformed(what, format!("zstd: {e}")))?;
    Ok(out)
}

/// A snapshot file decoded as `restic.LoadSnapshot` decodes it; only what validate reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotFile {
    /// Unix seconds; `None` for Go's zero time.
    pub time: Option<i64>,
    pub hostname: String,
}

impl SnapshotFile {
    pub(crate) fn parse(json: &[u8]) -> Result<SnapshotFile, ResticError> {
        let bad = |e: String| malformed("snapshot", e);
        let Some(o) = gojson::object(json).map_err(bad)? else {
            return Ok(SnapshotFile {
                time: None,
                hostname: String::new(),
            });
        };
        let time = o.time("time").map_err(bad)?;
        for id in ["parent", "tree", "original"] {
            o.pointer(id, id_json).map_err(bad)?;
        }
        for list in ["paths", "excludes", "tags"] {
            o.strings(list).map_err(bad)?;
        }
        o.string("username").map_err(bad)?;
        o.uint("uid", 32).map_err(bad)?;
        o.uint("gid", 32).map_err(bad)?;
        Ok(SnapshotFile {
            time: time.map(|(s, _)| s),
            hostname: o.string("hostname").map_err(bad)?,
        })
    }
}

/// `restic.ID.UnmarshalJSON`: the raw text, quoted with `"` or `'`, 64 hex digits inside.
fn id_json(raw: &str) -> Result<(), String> {
    let b = raw.as_bytes();
    let ok = b.len() == 66
        && matches!(b[0], b'"' | b'\'')
        && b[0] == b[65]
        && b[1..65].iter().all(u8::is_ascii_hexdigit);
    if ok {
        Ok(())
    } else {
        Err(format!("invalid ID: {raw}"))
    }
}

/// A lock file decoded as `restic.LoadLock` decodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lock {
    /// Unix seconds; `None` for Go's zero time (a very old, so stale, lock).
    pub time: Option<i64>,
    pub exclusive: bool,
    pub hostname: String,
    pub username: String,
    pub pid: i64,
}

impl Lock {
    pub(crate) fn parse(json: &[u8]) -> Result<Lock, ResticError> {
        let bad = |e: String| malformed("lock", e);
        let Some(o) = gojson::object(json).map_err(bad)? else {
            return Ok(Lock {
                time: None,
                exclusive: false,
                hostname: String::new(),
                username: String::new(),
                pid: 0,
            });
        };
        o.uint("uid", 32).map_err(bad)?;
        o.uint("gid", 32).map_err(bad)?;
        Ok(Lock {
            time: o.time("time").map_err(bad)?.map(|(s, _)| s),
            exclusive: o.bool("exclusive").map_err(bad)?,
            hostname: o.string("hostname").map_err(bad)?,
            username: o.string("username").map_err(bad)?,
            pid: o.int("pid").map_err(bad)?,
        })
    }

    /// restic 0.14's `Lock.Stale`, seen from host `here` at Unix time `now`: older than 30
    /// minutes, or taken on this host by a process that no longer exists (`alive`: Go's
    /// `Signal(0)` succeeds).
    pub(crate) fn stale(&self, here: &str, now: i64, alive: impl Fn(i64) -> bool) -> bool {
        let age = now - self.time.unwrap_or(i64::MIN / 2);
        if age > STALE_LOCK_SECS {
            return true;
        }
        self.hostname == here && !alive(self.pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_and_locks_decode_as_restic_decodes_them() {
        let s = SnapshotFile::parse(
            br#"{"time":"2024-01-01T00:00:00Z","tree":"'0000000000000000000000000000000000000000000000000000000000000000'","paths":["/a",null],"hostname":"h"}"#,
        );
        assert!(s.is_err(), "an id is 64 hex digits in quotes: {s:?}");
        let s = SnapshotFile::parse(
            br#"{"time":"2024-01-01T00:00:00Z","tree":null,"paths":["/a",null],"hostname":"h","uid":4294967295}"#,
        )
        .expect("a snapshot");
        assert_eq!(s.hostname, "h");
        assert!(SnapshotFile::parse(br#"{"time":"yesterday"}"#).is_err());
        assert!(SnapshotFile::parse(br#"{"uid":4294967296}"#).is_err());
        assert!(SnapshotFile::parse(b"garbage").is_err());

        let l = Lock::parse(
            br#"{"time":"2024-01-01T00:00:00Z","exclusive":true,"hostname":"other","username":"u","pid":42}"#,
        )
        .expect("a lock");
        let t = 1_704_067_200;
        assert_eq!(l.time, Some(t));
        assert!(!l.stale("here", t + 60, |_| true));
        assert!(l.stale("here", t + STALE_LOCK_SECS + 1, |_| true));
        assert!(!l.stale("other", t + 60, |_| true));
        assert!(l.stale("other", t + 60, |_| false));
    }

    #[test]
    fn plain_and_compressed_bodies() {
        let plain = Zeroizing::new(b"{}".to_vec());
        assert_eq!(
            decompress("lock", plain.clone(), 2)
                .expect("plain")
                .as_slice(),
            b"{}"
        );
        let other = Zeroizing::new(vec![7, 1, 2]);
        assert!(decompress("lock", other.clone(), 2).is_err());
        assert_eq!(
            decompress("lock", other, 1).expect("v1 is raw").as_slice(),
            &[7, 1, 2]
        );
        assert!(decompress("lock", Zeroizing::new(vec![2, 0, 0]), 2).is_err());
    }
}
