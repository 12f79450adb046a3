//! Reads of the embedded store: an immutable connection, kept for the next read of the same
//! command while the file is unchanged (one command reads the store several times: identity,
//! records, notes; opening it, schema parse included, is most of a read).

use std::fs;
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
    /// The refusal of a store path that ends in `/` (a store there could not be made, and a
    /// read would find none and say the store is empty).
    pub(super) fn folder_name(&self) -> Option<StoreError> {
        crate::files::names_a_folder(&self.path).then(|| StoreError::NotAFile {
            location: self.location(),
            what: crate::files::FOLDER_NAME.into(),
        })
    }

    /// Why what the store's path names (`meta`, followed through links) can never be a
    /// store, whatever it holds: a folder, a FIFO, socket or device, or a file of a kernel
    /// file system (/proc, /sys: it reads as empty or as the kernel's text). `None`: a
    /// regular file on a disk.
    pub(super) fn never_a_store(&self, meta: &fs::Metadata) -> Option<StoreError> {
        let what = match crate::files::kind_of(meta) {
            Some(kind) => kind.to_string(),
            None => format!(
                "a file of the kernel's {} file system, not one on a disk",
                crate::files::kernel_file_system(&self.path)?
            ),
        };
        Some(StoreError::NotAFile {
            location: self.location(),
            what,
        })
    }

    /// Runs `f` on an immutable connection to the store as it is now (`None` when it does
    /// not exist or holds nothing yet). The connection is kept for the next call while the
    /// file is unchanged.
    pub(super) fn with_reader<T>(
        &self,
        f: impl Fn(&Connection) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        if let Some(refused) = self.folder_name() {
            return Err(refused);
        }
        let meta = match fs::metadata(&self.path) {
            Ok(meta) if let Some(refused) = self.never_a_store(&meta) => return Err(refused),
            Ok(meta) if meta.len() == 0 => return Err(self.changing_empty()),
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io_err("opened", e)),
        };
        let seen = Stamp::of(&meta);
        let mut cached = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        if cached.as_ref().is_none_or(|r| r.seen != seen) {
            *cached = None;
            // Once per command (the connection is kept): a killed write's copy of the store
            // does not wait for the next write to go.
            sqlite_file::tidy_for_reader(&self.path);
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
    /// being read is read again. A file that cannot be read as a store and is changing
    /// meanwhile is said as being changed (a copy into it under way), not as damaged.
    pub(super) fn reading<T>(
        &self,
        f: impl Fn(&Connection) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let stamp = || fs::metadata(&self.path).ok().map(|m| Stamp::of(&m));
        for _ in 0..3 {
            let before = stamp();
            match self.with_reader(&f) {
                Ok(out) => return Ok(out),
                Err(_) if stamp().map(Stamp::file) != before.map(Stamp::file) => continue,
                Err(e)
                    if may_be_half_written(&e)
                        && before.is_some_and(Stamp::is_file)
                        && changing(before, stamp) =>
                {
                    return Err(StoreError::Changing {
                        location: self.location(),
                        detail: "it changed while being read and does not read as a store".into(),
                    });
                }
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

/// Whether `e` is what reading a regular store file that is still being copied into gives:
/// the start of a database without the rest (SQLite's "malformed", "not a database", or a
/// schema it cannot read). A folder, a device, another program's database are what they are.
fn may_be_half_written(e: &StoreError) -> bool {
    match e {
        StoreError::Corrupt { .. }
        | StoreError::Unusable {
            action: "opened", ..
        } => true,
        StoreError::Foreign { detail, .. } => detail == super::NOT_SQLITE,
        _ => false,
    }
}

/// How long a file that failed to read is watched for a copy still writing into it. `cp`
/// writes a store of a few hundred kilobytes in well under this; a file that is really
/// damaged costs this once, on the way to its error.
const COPY_WATCH: std::time::Duration = std::time::Duration::from_millis(200);

/// Whether the file's content changed since `before` (its size or modification time; a
/// change of mode or owner is not a copy), now or within [`COPY_WATCH`].
fn changing(before: Option<Stamp>, stamp: impl Fn() -> Option<Stamp>) -> bool {
    let content = |s: Option<Stamp>| s.map(Stamp::content);
    if content(stamp()) != content(before) {
        return true;
    }
    std::thread::sleep(COPY_WATCH);
    content(stamp()) != content(before)
}
