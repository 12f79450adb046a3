//! The SQLite store's file as the filesystem sees it: what lies beside it, and how to name
//! it for SQLite's read-only (immutable) open.

use std::fs;
use std::path::{Path, PathBuf};

/// Removes a `-wal` or `-shm` file left beside a store in rollback-journal mode. Such a
/// file never belongs to the store (cio writes without a WAL, and SQLite removes the WAL
/// before it marks a file as rollback mode), but SQLite would read a `-wal` it finds and
/// serve its stale pages: a backup copied over `credentials.db` would then show newer
/// values than it holds. Returns whether a stale file had to be left (read-only folder).
pub(super) fn remove_stale_wal(path: &Path) -> bool {
    let mut header = [0u8; 20];
    let rollback_mode = fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
        .is_ok()
        && header.starts_with(b"SQLite format 3\0")
        && header[18] == 1
        && header[19] == 1;
    if !rollback_mode {
        return false;
    }
    let mut kept = false;
    for suffix in ["-wal", "-shm"] {
        let mut beside = path.as_os_str().to_owned();
        beside.push(suffix);
        match fs::remove_file(PathBuf::from(beside)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => kept = true,
        }
    }
    kept
}

/// A path as the file part of a SQLite URI: `%`, `?` and `#` (and every byte outside
/// printable ASCII) percent-encoded. Written here because SQLite's URI rule is this one
/// line, not worth a crate.
pub(super) fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_graphic() && !matches!(b, b'%' | b'?' | b'#') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
