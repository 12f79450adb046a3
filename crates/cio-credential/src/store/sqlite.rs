//! The embedded default store: one SQLite file (rusqlite, bundled SQLite).
//!
//! Rules:
//! - the store is one file: SQLite's rollback journal (`journal_mode=DELETE`), which lives
//!   only while a write commits, with `synchronous=FULL` (a write that returned survives a
//!   power cut) and `secure_delete=ON` (purged pages are zeroed). Between commands there is
//!   `credentials.db` alone, so `cp` of it is a complete backup and copying a backup over it
//!   restores exactly that backup. A `-wal` or `-shm` file found beside a rollback-mode
//!   store cannot be its own and is removed before SQLite could read it; a store in WAL mode
//!   (an earlier cio's) is checkpointed and turned into one file on first open;
//! - a store that cannot be written (read-only media, `chattr +i`) is read as it is, as an
//!   immutable file: listing, showing and handing over work, writes are refused;
//! - a busy timeout so concurrent writers queue instead of failing; a store is created and
//!   initialised inside one write transaction, so processes racing to create it all succeed;
//! - the file is marked with its own `application_id`, so a SQLite file of another program is
//!   recognised as foreign, never written to;
//! - a store file is created only by a write: reading a store that does not exist yet shows
//!   an empty store and creates nothing;
//! - the file and its folder are created private (0600 / 0700), although they hold only
//!   ciphertext;
//! - a full disk is [`StoreError::NoSpace`]: the transaction rolls back, nothing changes.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{
    Connection, ErrorCode, MAIN_DB, OpenFlags, OptionalExtension, TransactionBehavior, params,
};

use super::sqlite_file;
use super::sqlite_row::{COLUMNS, RawRow, decode_row, encode_row};
use super::{
    Identity, ManifestSwap, ReadRecord, Record, Snapshot, Store, StoreError, new_store_id,
};

/// "cio1": marks a SQLite file as a cio credential store.
const APPLICATION_ID: i64 = 0x6369_6F31;
/// 2: records carry `seq`, `prev_mac` and `mac`, and `meta` holds the manifest.
const SCHEMA_VERSION: i64 = 2;
/// How long a writer waits for another before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The columns have no type or NULL constraints beyond the key: the file may be edited by
/// hand, and every row is decoded and checked field by field ([`decode_row`]) anyway.
const SCHEMA: &str = "
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    action TEXT,
    restored_from INTEGER,
    written_at_ms INTEGER,
    sealed BLOB,
    seq INTEGER,
    prev_mac BLOB,
    mac BLOB,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;
";

/// Every record, by name then version.
const ALL_SQL: &str = "SELECT name, version, action, restored_from, written_at_ms, sealed, seq, \
     prev_mac, mac FROM versions ORDER BY name, version";

/// The embedded store at one path.
pub struct SqliteStore {
    path: PathBuf,
    /// Opened on first use; `None` inside while the file does not exist.
    conn: Mutex<Option<Connection>>,
}

impl SqliteStore {
    pub fn new(path: PathBuf) -> SqliteStore {
        SqliteStore {
            path,
            conn: Mutex::new(None),
        }
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        let location = self.location();
        let detail = e.to_string();
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => StoreError::Foreign {
                location,
                detail: "not a SQLite database".into(),
            },
            Some(ErrorCode::DatabaseCorrupt) => StoreError::Corrupt { location, detail },
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Unusable {
                location,
                action: "locked for writing (another cio is writing and did not finish in 30 s)",
                detail,
            },
            Some(ErrorCode::DiskFull) => StoreError::NoSpace { location },
            Some(ErrorCode::ReadOnly) => StoreError::Unusable {
                location,
                action: "written",
                detail,
            },
            _ => StoreError::Unusable {
                location,
                action: "opened",
                detail,
            },
        }
    }

    fn io_err(&self, action: &'static str, e: std::io::Error) -> StoreError {
        if e.kind() == std::io::ErrorKind::StorageFull {
            return StoreError::NoSpace {
                location: self.location(),
            };
        }
        StoreError::Unusable {
            location: self.location(),
            action,
            detail: e.to_string(),
        }
    }

    /// Runs `f` on the connection, opening (and, when `create`, creating) the store first.
    /// Returns `None` when the store does not exist and `create` is false.
    fn with_conn<T>(
        &self,
        create: bool,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut guard = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.is_none() {
            *guard = self.connect(create)?;
        }
        match guard.as_mut() {
            Some(conn) => f(conn).map(Some),
            None => Ok(None),
        }
    }

    fn connect(&self, create: bool) -> Result<Option<Connection>, StoreError> {
        let unusable = |action, e: std::io::Error| self.io_err(action, e);
        match fs::metadata(&self.path) {
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
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !create {
                    return Ok(None);
                }
                if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(dir)
                        .map_err(|e| unusable("created (its folder cannot be made)", e))?;
                }
                match fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&self.path)
                {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(unusable("created", e)),
                }
            }
            Err(e) => return Err(unusable("opened", e)),
        }
        let stale_kept = sqlite_file::remove_stale_wal(&self.path);
        let mut conn = self.open_connection(false)?;
        let read_only = conn.is_readonly(MAIN_DB).map_err(|e| self.err(e))?;
        if read_only || stale_kept {
            // Read-only media (a mounted backup, `chattr +i`) or a stale WAL that cannot be
            // removed: read the file as it is, ignoring every file beside it and taking no
            // locks (nothing can change a file that cannot be written).
            conn = self.open_connection(true)?;
        } else {
            conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| self.err(e))?;
            let mode: String = conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .map_err(|e| self.err(e))?;
            if mode.eq_ignore_ascii_case("wal") {
                // A store written by an earlier cio (or opened in WAL mode by another
                // program): checkpoint it and make it one file again.
                conn.query_row("PRAGMA journal_mode=DELETE", [], |_| Ok(()))
                    .map_err(|e| self.err(e))?;
            }
            conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA secure_delete=ON;")
                .map_err(|e| self.err(e))?;
        }
        if self.check_or_init_schema(&mut conn, create)? {
            Ok(Some(conn))
        } else {
            // An empty file (a creation interrupted before its first write): read as empty.
            Ok(None)
        }
    }

    /// Opens the file: read-write (SQLite falls back to read-only by itself when the file
    /// cannot be written), or with `immutable` read-only without locks or journals.
    fn open_connection(&self, immutable: bool) -> Result<Connection, StoreError> {
        let conn = if immutable {
            let uri = format!("file:{}?immutable=1", sqlite_file::uri_path(&self.path));
            Connection::open_with_flags(
                uri,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_URI
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
        } else {
            Connection::open_with_flags(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
        };
        conn.map_err(|e| self.err(e))
    }

    /// Checks the store's format, or initialises an empty file when `create`, in one
    /// transaction (a writer that is creating the store at the same moment is either wholly
    /// seen or not at all). Returns whether the store is initialised.
    fn check_or_init_schema(
        &self,
        conn: &mut Connection,
        create: bool,
    ) -> Result<bool, StoreError> {
        // Creating: take the write lock first, so that of several processes creating the
        // store at once exactly one initialises it and the others wait, then see it done.
        let behavior = if create {
            TransactionBehavior::Immediate
        } else {
            TransactionBehavior::Deferred
        };
        let tx = conn
            .transaction_with_behavior(behavior)
            .map_err(|e| self.err(e))?;
        let app_id: i64 = tx
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if app_id == APPLICATION_ID {
            self.check_schema_version(&tx)?;
            tx.commit().map_err(|e| self.err(e))?;
            return Ok(true);
        }
        let tables: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if app_id != 0 || tables != 0 {
            return Err(StoreError::Foreign {
                location: self.location(),
                detail: "a SQLite database of another program".into(),
            });
        }
        if !create {
            // An empty file: a store whose creation was interrupted. Nothing is in it.
            return Ok(false);
        }
        tx.execute_batch(SCHEMA).map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO meta (k, v) VALUES ('store_id', ?1)",
            [new_store_id()],
        )
        .map_err(|e| self.err(e))?;
        tx.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
        ))
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(true)
    }

    fn check_schema_version(&self, conn: &Connection) -> Result<(), StoreError> {
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if version == SCHEMA_VERSION {
            Ok(())
        } else {
            Err(StoreError::Foreign {
                location: self.location(),
                detail: format!(
                    "store format {version}, this cio reads format {SCHEMA_VERSION}: use a cio that matches"
                ),
            })
        }
    }

    fn latest_sql() -> String {
        format!(
            "SELECT {COLUMNS} FROM versions v WHERE version = \
             (SELECT max(version) FROM versions WHERE name = v.name) ORDER BY name"
        )
    }

    fn history_sql() -> String {
        format!("SELECT {COLUMNS} FROM versions WHERE name = ?1 ORDER BY version")
    }

    fn query_versions(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<ReadRecord>, StoreError> {
        let rows = self.with_conn(false, |conn| self.query_in(conn, sql, args))?;
        Ok(rows.unwrap_or_default())
    }

    /// Every row `sql` selects ([`COLUMNS`]), decoded one by one.
    fn query_in(
        &self,
        conn: &Connection,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<ReadRecord>, StoreError> {
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(args, |row| {
                let raw: RawRow = [
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                    row.get(7)?,
                    row.get(8)?,
                ];
                Ok(decode_row(raw))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// The identity, inside a transaction the caller holds.
    fn identity_in(&self, tx: &Connection) -> Result<Option<Identity>, StoreError> {
        let store_id = self.meta_text(tx, "store_id")?;
        let key_fingerprint = self.meta_text(tx, "key_fingerprint")?;
        let manifest = Self::meta(tx, "manifest").map_err(|e| self.err(e))?;
        let Some(store_id) = store_id else {
            // The id is written with the schema, in one transaction: a store without it but
            // with anything else in it was altered.
            let rows: i64 = tx
                .query_row(
                    "SELECT (SELECT count(*) FROM meta) + (SELECT count(*) FROM versions)",
                    [],
                    |r| r.get(0),
                )
                .map_err(|e| self.err(e))?;
            return if rows == 0 {
                Ok(None)
            } else {
                Err(StoreError::Corrupt {
                    location: self.location(),
                    detail: "its store id was removed".into(),
                })
            };
        };
        Ok(Some(Identity {
            store_id,
            key_fingerprint,
            manifest,
        }))
    }

    /// Replaces the manifest if it is still `swap.expected`; a lost race is a conflict.
    fn swap_manifest(
        &self,
        tx: &Connection,
        name: &str,
        swap: &ManifestSwap,
    ) -> Result<(), StoreError> {
        let current = Self::meta(tx, "manifest").map_err(|e| self.err(e))?;
        if current != swap.expected {
            return Err(StoreError::Conflict {
                name: name.to_string(),
            });
        }
        let text = String::from_utf8_lossy(&swap.new);
        tx.execute(
            "INSERT INTO meta (k, v) VALUES ('manifest', ?1) ON CONFLICT (k) DO UPDATE SET v = ?1",
            [text.as_ref()],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A `meta` value, whatever type the file holds it as (text, or bytes if edited).
    fn meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
        use rusqlite::types::Value;
        let value: Option<Value> = conn
            .query_row("SELECT v FROM meta WHERE k = ?1", [key], |r| r.get(0))
            .optional()?;
        Ok(value.map(|v| match v {
            Value::Text(t) => t.into_bytes(),
            Value::Blob(b) => b,
            Value::Integer(i) => i.to_string().into_bytes(),
            Value::Real(r) => r.to_string().into_bytes(),
            Value::Null => Vec::new(),
        }))
    }

    /// A `meta` value that must be text (the store id, the key fingerprint).
    fn meta_text(&self, conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
        match Self::meta(conn, key).map_err(|e| self.err(e))? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| StoreError::Corrupt {
                    location: self.location(),
                    detail: format!("its {} is not text", key.replace('_', " ")),
                }),
        }
    }
}

impl Store for SqliteStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn identity(&self, create: bool) -> Result<Option<Identity>, StoreError> {
        let identity = self.with_conn(create, |conn| {
            let tx = conn.transaction().map_err(|e| self.err(e))?;
            self.identity_in(&tx)
        })?;
        Ok(identity.flatten())
    }

    fn read(&self) -> Result<Option<Snapshot>, StoreError> {
        let snapshot = self.with_conn(false, |conn| {
            // One read transaction: the manifest and the records of one moment.
            let tx = conn.transaction().map_err(|e| self.err(e))?;
            let Some(identity) = self.identity_in(&tx)? else {
                return Ok(None);
            };
            let records = self.query_in(&tx, ALL_SQL, [])?;
            Ok(Some(Snapshot { identity, records }))
        })?;
        Ok(snapshot.flatten())
    }

    fn latest(&self, name: &str) -> Result<Option<ReadRecord>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM versions WHERE name = ?1 ORDER BY version DESC LIMIT 1");
        Ok(self.query_versions(&sql, [name])?.pop())
    }

    fn list_latest(&self) -> Result<Vec<ReadRecord>, StoreError> {
        self.query_versions(&Self::latest_sql(), [])
    }

    fn history(&self, name: &str) -> Result<Vec<ReadRecord>, StoreError> {
        self.query_versions(&Self::history_sql(), [name])
    }

    fn all_versions(&self) -> Result<Vec<ReadRecord>, StoreError> {
        self.query_versions(ALL_SQL, [])
    }

    fn append(
        &self,
        expected: u64,
        record: &Record,
        key_fingerprint: &str,
        manifest: &ManifestSwap,
    ) -> Result<(), StoreError> {
        let conflict = || StoreError::Conflict {
            name: record.name.clone(),
        };
        if Some(record.version) != expected.checked_add(1) {
            return Err(conflict());
        }
        self.with_conn(true, |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self.err(e))?;
            match self.meta_text(&tx, "key_fingerprint")? {
                Some(fp) if fp != key_fingerprint => {
                    return Err(StoreError::KeyMismatch {
                        location: self.location(),
                        key_fingerprint: key_fingerprint.to_string(),
                        store_fingerprint: fp,
                    });
                }
                Some(_) => {}
                None => {
                    tx.execute(
                        "INSERT INTO meta (k, v) VALUES ('key_fingerprint', ?1)",
                        [key_fingerprint],
                    )
                    .map_err(|e| self.err(e))?;
                }
            }
            let latest: rusqlite::types::Value = tx
                .query_row(
                    "SELECT max(version) FROM versions WHERE name = ?1",
                    [&record.name],
                    |r| r.get(0),
                )
                .map_err(|e| self.err(e))?;
            let latest = match latest {
                rusqlite::types::Value::Null => 0,
                rusqlite::types::Value::Integer(v) => u64::try_from(v).unwrap_or(u64::MAX),
                _ => u64::MAX,
            };
            if latest != expected {
                return Err(conflict());
            }
            self.swap_manifest(&tx, &record.name, manifest)?;
            let row = encode_row(record);
            tx.execute(
                &format!(
                    "INSERT INTO versions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ),
                params![
                    row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8]
                ],
            )
            .map_err(|e| self.err(e))?;
            tx.commit().map_err(|e| self.err(e))
        })?;
        Ok(())
    }

    fn purge(&self, name: &str, manifest: &ManifestSwap) -> Result<usize, StoreError> {
        let removed = self.with_conn(false, |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self.err(e))?;
            self.swap_manifest(&tx, name, manifest)?;
            // secure_delete zeroes the freed pages in the file; the rollback journal that
            // held their old content is deleted at commit.
            let n = tx
                .execute("DELETE FROM versions WHERE name = ?1", [name])
                .map_err(|e| self.err(e))?;
            tx.commit().map_err(|e| self.err(e))?;
            Ok(n)
        })?;
        Ok(removed.unwrap_or(0))
    }
}

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;
