//! The floors under `cio credential list` and under a write, for `scripts/bench`.
//!
//! Issue 9 asks `list` to take at most 1.3× `cio --version`: this program does only what no
//! reading of the embedded store can skip. It starts as `cio` starts (static musl build, the
//! same allocator, SQLite's memory handed to it), opens the store file as `list` opens it
//! (read-only, immutable), and reads every row of `meta` and `versions`; no command line, no
//! key, no check, no output but a count.
//!
//! Issue 11 asks an import to take at most 1.5× `list`: with `--replace`, it then also does
//! what no durable write of the store can skip (`sqlite_file`): a copy of the file beside it,
//! flushed, renamed over it, the folder flushed. No SQLite change, no key, no check.
//!
//! Usage: `sqlite_floor STORE.db [--replace]`; prints the bytes read.

use std::fs::{self, File};
use std::path::Path;
use std::process::ExitCode;

use rusqlite::{Connection, OpenFlags};

/// The allocator `cio` starts with (its own module, shared as a file).
#[path = "../src/allocator.rs"]
mod allocator;

#[global_allocator]
static GLOBAL: allocator::Allocator = allocator::Allocator::new();

fn main() -> ExitCode {
    // SAFETY: no other thread exists yet, so none uses SQLite.
    unsafe { cio_credential::sqlite_use_process_allocator() };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, replace) = match args.as_slice() {
        [path] => (path, false),
        [path, flag] if flag == "--replace" => (path, true),
        _ => {
            eprintln!("usage: sqlite_floor STORE.db [--replace]");
            return ExitCode::from(2);
        }
    };
    let bytes = match read_all(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("sqlite_floor: {e}");
            return ExitCode::FAILURE;
        }
    };
    if replace && let Err(e) = replace_durably(Path::new(path)) {
        eprintln!("sqlite_floor: {e}");
        return ExitCode::FAILURE;
    }
    println!("{bytes}");
    ExitCode::SUCCESS
}

/// Puts a flushed copy of the file in its place and flushes the folder: the two flushes of a
/// durable, atomic replace.
fn replace_durably(path: &Path) -> std::io::Result<()> {
    let scratch = path.with_extension("floor-scratch");
    fs::copy(path, &scratch)?;
    File::open(&scratch)?.sync_all()?;
    fs::rename(&scratch, path)?;
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    File::open(folder)?.sync_all()
}

/// The bytes of every `meta` value and every `versions` row's name and sealed value.
fn read_all(path: &str) -> rusqlite::Result<usize> {
    let conn = Connection::open_with_flags(
        format!("file:{path}?immutable=1"),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut bytes = 0;
    let mut meta = conn.prepare("SELECT k, v FROM meta")?;
    let mut rows = meta.query([])?;
    while let Some(row) = rows.next()? {
        bytes += row.get_ref(1)?.as_bytes_or_null()?.map_or(0, <[u8]>::len);
    }
    let mut versions = conn.prepare(
        "SELECT name, version, action, restored_from, written_at_ms, sealed, seq, prev_mac, mac \
         FROM versions ORDER BY name, version",
    )?;
    let mut rows = versions.query([])?;
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        let sealed: Option<Vec<u8>> = row.get(5)?;
        bytes += name.len() + sealed.map_or(0, |s| s.len());
    }
    Ok(bytes)
}
