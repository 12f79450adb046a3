//! The floor under `cio credential list`, for `scripts/bench` (issue 9 asks `list` to take at
//! most 1.3× `cio --version`): a program that does only what no reading of the embedded store
//! can skip. It starts as `cio` starts (static musl build, the same allocator, SQLite's memory
//! handed to it), opens the store file as `list` opens it (read-only, immutable), and reads
//! every row of `meta` and `versions`; no command line, no key, no check, no output but a
//! count. Usage: `sqlite_floor STORE.db`; prints the bytes read.

use std::process::ExitCode;

use rusqlite::{Connection, OpenFlags};

#[global_allocator]
static GLOBAL: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn main() -> ExitCode {
    // SAFETY: no other thread exists yet, so none uses SQLite.
    unsafe { cio_credential::sqlite_use_process_allocator() };
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: sqlite_floor STORE.db");
        return ExitCode::from(2);
    };
    match read_all(&path) {
        Ok(bytes) => {
            println!("{bytes}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sqlite_floor: {e}");
            ExitCode::FAILURE
        }
    }
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
