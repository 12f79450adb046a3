//! Reads of the embedded store: an immutable connection, kept for the next read of the same
//! command while the file is unchanged (one command reads the store several times: identity,
//! records, notes; opening it, schema parse included, is most of a read).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::sync::PoisonError;

use rusqlite::{Connection, OpenFlags};

use super::SqliteStore;
use super::sqlite_file::{self, Stamp};
use crate::store::{Store, StoreError};

/// An immutable connection and what the file looked like just before it was opened.
pub(super) struct OpenReader {
    seen: Stamp,
    conn: Connection,
}

impl SqliteStore {
    /// Runs `f` on an immutable connection to the store as it is now (`None` when it does
    /// not exist or holds nothing yet). The connection is kept for the next call while the
    /// file is unchanged.
    pub(super) fn with_reader<T>(
        &self,
        f: impl Fn(&Connection) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let meta = match fs::metadata(&self.path) {
            Ok(meta) if meta.is_dir() => {
                return Err(StoreError::Foreign {
                    location: self.location(),
                    detail: "it is a folder".into(),
                });
            }
            Ok(meta) if !meta.is_file() => {
                return Err(StoreError::Foreign {
                    location: self.location(),
                    detail: "it is not a regular file (a FIFO, socket or device)".into(),
                });
            }
            Ok(meta) if meta.len() == 0 => return Err(self.changing_empty()),
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io_err("opened", e)),
        };
        let seen = Stamp::of(&meta);
        let mut cached = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        if cached.as_ref().is_none_or(|r| r.seen != seen) {
            *cached = None;
            let uri = format!("file:{}?immutable=1", sqlite_file::uri_path(&self.path));
            let conn = Connection::open_with_flags(
                uri,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_URI
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| self.err(e))?;
            if !self.check_schema(&conn)? {
                return Ok(None);
            }
            *cached = Some(OpenReader { seen, conn });
        }
        match cached.as_ref() {
            Some(reader) => f(&reader.conn).map(Some),
            None => Ok(None),
        }
    }

    /// Runs `f` on a reader. A file replaced (by a purge, which zeroes it) while it was
    /// being read is read again.
    pub(super) fn reading<T>(
        &self,
        f: impl Fn(&Connection) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let inode = || fs::metadata(&self.path).map(|m| m.ino()).ok();
        for _ in 0..3 {
            let before = inode();
            match self.with_reader(&f) {
                Ok(out) => return Ok(out),
                Err(_) if inode() != before => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Unusable {
            location: self.location(),
            action: "read",
            detail: "it was replaced three times while being read".into(),
        })
    }
}
