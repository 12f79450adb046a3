//! The embedded default store: one SQLite file (rusqlite, bundled SQLite).
//!
//! Rules:
//! - the store is one file, replaced whole by every write and never changed in place
//!   (`sqlite_file`: a scratch copy changed by SQLite without a journal, flushed, renamed over
//!   the store, the folder flushed): between commands `credentials.db` alone is the store, a
//!   `cp` of it is a complete backup, and copying a backup over it restores exactly that
//!   backup, whatever lies beside it;
//! - readers open the file `immutable` (no locks, nothing beside it read): a store on read-only
//!   media (a mounted backup, `chattr +i`) lists, shows and hands over; writes to it are
//!   refused as "cannot be written";
//! - writers queue on a lock of the file (30 s at most); of several processes creating the
//!   store at once, each finds it created by the one before;
//! - the file is marked with its own `application_id`, so a SQLite file of another program is
//!   recognised as foreign, never written to;
//! - a store file is created only by a write: reading a store that does not exist yet shows
//!   an empty store and creates nothing; a new store appears whole (`sqlite_file`), so an
//!   empty file at the path is a copy into it under way or cut short, and is refused
//!   ([`StoreError::Changing`]), as is a write during which the file changed;
//! - the file and its folder are created private (0600 / 0700), although they hold only
//!   ciphertext; freed pages are zeroed (`secure_delete`), and a purge zeroes the replaced
//!   file too (unless another name links to it: `wipe`);
//! - a full disk is [`StoreError::NoSpace`]: the scratch copy is dropped, nothing changes.

use std::fs;
use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::sqlite_file::{self, CommitError, LockError};
use super::sqlite_row::{COLUMNS, RawRow, decode_row, raw_value};
mod journal;
pub(crate) mod memory;
mod meta;
mod reader;
mod rows;

use self::journal::SCHEMA_LOG;
use super::{
    Identity, LogAppend, LogRecord, ManifestSwap, ReadRecord, Record, Resealed, Snapshot, Store,
    StoreError, new_store_id,
};

/// "cio1": marks a SQLite file as a cio credential store.
const APPLICATION_ID: i64 = 0x6369_6F31;
/// The detail of [`StoreError::Foreign`] for a file SQLite does not read as a database.
const NOT_SQLITE: &str = "not a SQLite database";
/// 2: records carry `seq`, `prev_mac` and `mac`, and `meta` holds the manifest. 3: with the
/// change log and the notes ([`journal`]); a format-2 store reads as having neither and
/// becomes format 3 with its first write, after which a cio that does not log refuses it
/// rather than change it unlogged.
const SCHEMA_VERSION: i64 = 3;
/// Why a write is refused whose rows do not read back as written: the schema was edited.
const NOT_AS_WRITTEN: &str =
    "what a write puts in it does not read back as written (its tables were changed below cio)";
/// The format before the change log, read and upgraded.
const SCHEMA_VERSION_BEFORE_LOG: i64 = 2;

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
    /// The reader last opened, kept for the next read while the file is unchanged: one
    /// command reads the store several times (identity, records, notes), and opening it
    /// (schema parse included) is most of a read.
    reader: Mutex<Option<reader::OpenReader>>,
}

impl SqliteStore {
    pub fn new(path: PathBuf) -> SqliteStore {
        SqliteStore {
            path,
            reader: Mutex::new(None),
        }
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        let location = self.location();
        let detail = e.to_string();
        if matches!(
            e,
            rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::InvalidColumnType(..)
                | rusqlite::Error::Utf8Error(..)
                | rusqlite::Error::IntegralValueOutOfRange(..)
        ) {
            // A field of the store's own records (its id, key fingerprint, manifest) holds
            // something cio never writes there: edited below cio.
            return StoreError::Corrupt {
                location,
                detail: "a field of the store holds a value of the wrong kind".into(),
            };
        }
        if [
            "no such table",
            "no such column",
            "access to view",
            "table ",
        ]
        .iter()
        .any(|start| detail.starts_with(start))
            || detail.contains("because it is a view")
        {
            // cio's own tables are all made with the store: one missing was dropped below
            // cio (a foreign file is told apart before, by its application id).
            return StoreError::Corrupt { location, detail };
        }
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => StoreError::Foreign {
                location,
                detail: NOT_SQLITE.into(),
            },
            // A constraint cio's tables do not have (the schema was edited) refused a write.
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::ConstraintViolation) => {
                StoreError::Corrupt { location, detail }
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Unusable {
                location,
                action: "locked for writing (another cio is writing and did not finish in 30 s)",
                detail,
            },
            // SQLite says a write cut short by the file-size limit as a full disk, and one
            // refused by it (EFBIG) as a failed write.
            Some(ErrorCode::DiskFull) if crate::files::file_size_limited() => {
                StoreError::FileSizeLimit { location }
            }
            Some(ErrorCode::SystemIoFailure)
                if e.sqlite_extended_error_code() == Some(rusqlite::ffi::SQLITE_IOERR_WRITE)
                    && crate::files::file_size_limited() =>
            {
                StoreError::FileSizeLimit { location }
            }
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
        match e.kind() {
            std::io::ErrorKind::StorageFull => {
                return StoreError::NoSpace {
                    location: self.location(),
                };
            }
            std::io::ErrorKind::FileTooLarge => {
                return StoreError::FileSizeLimit {
                    location: self.location(),
                };
            }
            _ => {}
        }
        StoreError::Unusable {
            location: self.location(),
            action,
            detail: e.to_string(),
        }
    }

    fn lock_err(&self, e: LockError) -> StoreError {
        match e {
            LockError::TimedOut => StoreError::Unusable {
                location: self.location(),
                action: "locked for writing (another cio is writing and did not finish in 30 s)",
                detail: "try again".into(),
            },
            LockError::Empty => self.changing_empty(),
            LockError::Io(e) => self.io_err("written", e),
        }
    }

    /// An empty store file: never cio's (see `sqlite_file`).
    fn changing_empty(&self) -> StoreError {
        StoreError::Changing {
            location: self.location(),
            detail: "it is an empty file, which cio never leaves".into(),
        }
    }

    /// Opens a file only this process uses (a new store, or the copy a write builds) and is
    /// dropped on any failure: no journal and no flush (the caller flushes the whole file
    /// before it puts it in place), freed pages zeroed, and one lock for the connection's
    /// life rather than a lock, an unlock and a look for a hot journal around every
    /// statement (70 fcntl calls and 40 stats in one create).
    fn open_private(&self, path: &std::path::Path) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| self.err(e))?;
        self.distrust_schema(&conn)?;
        // The lock first: set after the journal mode (whose change reads the schema), it
        // came after a lock and an unlock of its own (four fcntl calls per write).
        conn.execute_batch(
            "PRAGMA locking_mode=EXCLUSIVE; PRAGMA synchronous=OFF; PRAGMA secure_delete=ON;",
        )
        .map_err(|e| self.err(e))?;
        conn.query_row("PRAGMA journal_mode=OFF", [], |_| Ok(()))
            .map_err(|e| self.err(e))?;
        Ok(conn)
    }

    /// Keeps a write to what cio's statements say. The file may have been edited by hand, and
    /// its schema can hold more than cio's tables: a trigger that drops or redirects a write
    /// (`RAISE(IGNORE)`: the write would report success and store nothing), a view in a
    /// table's place, functions run from the schema. None of them runs on this connection.
    /// (The statements also name their conflict handling, `OR ABORT`, which overrides one a
    /// table was given, such as `ON CONFLICT IGNORE` or `REPLACE`.)
    fn distrust_schema(&self, conn: &Connection) -> Result<(), StoreError> {
        use rusqlite::config::DbConfig;
        for (setting, on) in [
            (DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false),
            (DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false),
            (DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false),
        ] {
            conn.set_db_config(setting, on).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Makes a new store whole beside the path and puts it there, unless another process
    /// has put one there first (which is as good).
    fn create(&self) -> Result<(), StoreError> {
        let scratch =
            sqlite_file::new_scratch(&self.path).map_err(|e| self.io_err("created", e))?;
        let conn = self.open_private(scratch.path())?;
        self.initialise(&conn)?;
        conn.close().map_err(|(_, e)| self.err(e))?;
        sqlite_file::place_new(scratch, &self.path).map_err(|e| self.io_err("created", e))?;
        Ok(())
    }

    /// Runs `f` on a scratch copy of the store, which replaces the store if `f` changed it
    /// (`zero_old`: and zeroes the file it replaces). With `create`, a store that does not
    /// exist is created (and initialised) first; without, `Ok(None)` when there is none.
    fn writing<T>(
        &self,
        create: bool,
        zero_old: bool,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        if let Some(refused) = self.folder_name() {
            return Err(refused);
        }
        if let Ok(meta) = fs::metadata(&self.path)
            && let Some(refused) = self.never_a_store(&meta)
        {
            return Err(refused);
        }
        let mut locked = None;
        // A store created by this write, or by another process meanwhile, is locked at the
        // next turn; a path that never holds one (a dangling symlink) ends the loop.
        for _ in 0..10 {
            locked = sqlite_file::lock(&self.path).map_err(|e| self.lock_err(e))?;
            if locked.is_some() || !create {
                break;
            }
            self.create()?;
        }
        let Some(mut locked) = locked else {
            if !create {
                return Ok(None);
            }
            return Err(StoreError::Unusable {
                location: self.location(),
                action: "created",
                detail: "a new store put there could not be opened again".into(),
            });
        };
        locked.clean_beside();
        let scratch = locked.scratch().map_err(|e| self.io_err("written", e))?;
        let conn = self.open_private(scratch.path())?;
        let initialised = if self.check_schema(&conn)? {
            false
        } else if create {
            self.initialise(&conn)?;
            true
        } else {
            return Ok(None);
        };
        let before = conn.total_changes();
        let out = f(&conn)?;
        let changed = initialised || conn.total_changes() != before;
        conn.close().map_err(|(_, e)| self.err(e))?;
        if changed {
            locked.commit(scratch, zero_old).map_err(|e| match e {
                CommitError::Changed => StoreError::Changing {
                    location: self.location(),
                    detail: "it changed while this command wrote it".into(),
                },
                CommitError::Io(e) => self.io_err("written", e),
            })?;
        }
        Ok(Some(out))
    }

    /// Whether the store is initialised: `false` for an empty database (a new store), an
    /// error for another program's database or another format.
    fn check_schema(&self, conn: &Connection) -> Result<bool, StoreError> {
        let app_id: i64 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if app_id == APPLICATION_ID {
            self.check_schema_version(conn)?;
            return Ok(true);
        }
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if app_id != 0 || tables != 0 {
            return Err(StoreError::Foreign {
                location: self.location(),
                detail: "a SQLite database of another program".into(),
            });
        }
        Ok(false)
    }

    /// Makes an empty database a store: the schema, a new store id, the marks.
    fn initialise(&self, conn: &Connection) -> Result<(), StoreError> {
        conn.execute_batch(SCHEMA).map_err(|e| self.err(e))?;
        conn.execute_batch(SCHEMA_LOG).map_err(|e| self.err(e))?;
        conn.execute(
            "INSERT OR ABORT INTO meta (k, v) VALUES ('store_id', ?1)",
            [new_store_id()],
        )
        .map_err(|e| self.err(e))?;
        conn.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
        ))
        .map_err(|e| self.err(e))
    }

    /// The store format the file says it is in (`PRAGMA user_version`). Asked by the schema
    /// check and again by each read of the log or the notes: parsed once per connection.
    fn schema_version(&self, conn: &Connection) -> Result<i64, StoreError> {
        conn.prepare_cached("PRAGMA user_version")
            .and_then(|mut version| version.query_row([], |r| r.get(0)))
            .map_err(|e| self.err(e))
    }

    fn check_schema_version(&self, conn: &Connection) -> Result<(), StoreError> {
        let version = self.schema_version(conn)?;
        if version == SCHEMA_VERSION || version == SCHEMA_VERSION_BEFORE_LOG {
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
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<ReadRecord>, StoreError> {
        let rows = self.reading(|conn| self.query_in(conn, sql, args))?;
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
                    raw_value(row.get_ref(0)?),
                    raw_value(row.get_ref(1)?),
                    raw_value(row.get_ref(2)?),
                    raw_value(row.get_ref(3)?),
                    raw_value(row.get_ref(4)?),
                    raw_value(row.get_ref(5)?),
                    raw_value(row.get_ref(6)?),
                    raw_value(row.get_ref(7)?),
                    raw_value(row.get_ref(8)?),
                ];
                Ok(decode_row(raw))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}

impl Store for SqliteStore {
    fn location(&self) -> String {
        crate::shown_path(&self.path).to_string()
    }

    fn identity(&self, create: bool) -> Result<Option<Identity>, StoreError> {
        let identity = if create {
            self.writing(true, false, |conn| self.identity_in(conn))?
        } else {
            self.reading(|conn| self.identity_in(conn))?
        };
        Ok(identity.flatten())
    }

    fn read(&self) -> Result<Option<Snapshot>, StoreError> {
        // One immutable file: the manifest and the records of one moment.
        let snapshot = self.reading(|conn| {
            let Some(identity) = self.identity_in(conn)? else {
                return Ok(None);
            };
            let records = self.query_in(conn, ALL_SQL, [])?;
            let log_past = match identity
                .manifest
                .as_deref()
                .map(crate::integrity::claimed_log_seq)
            {
                Some(claimed) if claimed > 0 => self.log_in(
                    conn,
                    "SELECT seq, sealed FROM log WHERE seq > ?1 ORDER BY seq",
                    [i64::try_from(claimed).unwrap_or(i64::MAX)],
                )?,
                _ => Vec::new(),
            };
            Ok(Some(Snapshot {
                identity,
                records,
                log_past,
            }))
        })?;
        Ok(snapshot.flatten())
    }

    fn latest(&self, name: &str) -> Result<Option<ReadRecord>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM versions WHERE name = ?1 ORDER BY version DESC LIMIT 1");
        Ok(self.query_versions(&sql, &[&name])?.pop())
    }

    fn list_latest(&self) -> Result<Vec<ReadRecord>, StoreError> {
        self.query_versions(&Self::latest_sql(), &[])
    }

    fn history(&self, name: &str) -> Result<Vec<ReadRecord>, StoreError> {
        self.query_versions(&Self::history_sql(), &[&name])
    }

    fn all_versions(&self) -> Result<Vec<ReadRecord>, StoreError> {
        self.query_versions(ALL_SQL, &[])
    }

    fn append_all_logged(
        &self,
        batch: &[(u64, &Record)],
        key_fingerprint: &str,
        manifest: &ManifestSwap,
        log: Option<&LogAppend>,
    ) -> Result<(), StoreError> {
        let Some((_, first)) = batch.first() else {
            return Ok(());
        };
        self.writing(true, false, |conn| {
            self.upgrade(conn)?;
            match self.meta_text(conn, "key_fingerprint")? {
                Some(fp) if fp != key_fingerprint => {
                    return Err(StoreError::KeyMismatch {
                        location: self.location(),
                        key_fingerprint: key_fingerprint.to_string(),
                        store_fingerprint: fp,
                    });
                }
                Some(_) => {}
                None => {
                    conn.execute(
                        "INSERT OR ABORT INTO meta (k, v) VALUES ('key_fingerprint', ?1)",
                        [key_fingerprint],
                    )
                    .map_err(|e| self.err(e))?;
                }
            }
            // One write: an entry sees the rows the earlier entries inserted, and a failed
            // condition leaves the store file as it was.
            for (expected, record) in batch {
                let conflict = || StoreError::Conflict {
                    name: record.name.clone(),
                };
                if Some(record.version) != expected.checked_add(1) {
                    return Err(conflict());
                }
                let latest: rusqlite::types::Value = conn
                    .prepare_cached("SELECT max(version) FROM versions WHERE name = ?1")
                    .and_then(|mut newest| newest.query_row([&record.name], |r| r.get(0)))
                    .map_err(|e| self.err(e))?;
                let latest = match latest {
                    rusqlite::types::Value::Null => 0,
                    rusqlite::types::Value::Integer(v) => u64::try_from(v).unwrap_or(u64::MAX),
                    _ => u64::MAX,
                };
                if latest != *expected {
                    return Err(conflict());
                }
                self.insert_record(conn, record)?;
            }
            self.swap_manifest(conn, &first.name, manifest)?;
            if let Some(entry) = log {
                self.add_log_entry(conn, entry)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    fn replace_all(
        &self,
        whole: &Resealed<'_>,
        key_fingerprint: &str,
        manifest: &ManifestSwap,
    ) -> Result<(), StoreError> {
        self.reseal(whole, key_fingerprint, manifest)
    }

    fn purge_logged(
        &self,
        name: &str,
        manifest: &ManifestSwap,
        log: Option<&LogAppend>,
    ) -> Result<usize, StoreError> {
        // The file replaced is zeroed too: the purged ciphertext stays nowhere in it.
        let removed = self.writing(false, true, |conn| {
            self.upgrade(conn)?;
            self.swap_manifest(conn, name, manifest)?;
            let n = conn
                .execute("DELETE FROM versions WHERE name = ?1", [name])
                .map_err(|e| self.err(e))?;
            if let Some(entry) = log {
                self.add_log_entry(conn, entry)?;
            }
            Ok(n)
        })?;
        Ok(removed.unwrap_or(0))
    }

    fn tidy(&self) {
        // Under the writers' lock, so that no write is between its copy and its rename.
        if let Ok(Some(locked)) = sqlite_file::lock(&self.path) {
            locked.clean_beside();
        }
    }

    fn append_log(&self, log: &LogAppend) -> Result<(), StoreError> {
        self.append_log_entry(log)
    }

    fn log_tail(&self) -> Result<Option<LogRecord>, StoreError> {
        Ok(self
            .query_log("SELECT seq, sealed FROM log ORDER BY seq DESC LIMIT 1")?
            .pop())
    }

    fn log(&self) -> Result<Vec<LogRecord>, StoreError> {
        self.query_log("SELECT seq, sealed FROM log ORDER BY seq")
    }

    fn notes(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.query_notes()
    }

    fn put_notes_logged(
        &self,
        notes: &[(String, Vec<u8>)],
        manifest: Option<&ManifestSwap>,
        log: Option<&LogAppend>,
    ) -> Result<(), StoreError> {
        self.write_notes(notes, manifest, log)
    }
}

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;
