//! The embedded default store: one SQLite file (rusqlite, bundled SQLite).
//!
//! Rules:
//! - WAL journal, `synchronous=FULL` (a write that returned survives a power cut),
//!   `secure_delete=ON` (purged pages are zeroed), a busy timeout so concurrent writers queue
//!   instead of failing;
//! - the file is marked with its own `application_id`, so a SQLite file of another program is
//!   recognised as foreign, never written to;
//! - a store file is created only by a write: reading a store that does not exist yet shows
//!   an empty store and creates nothing;
//! - the last connection to close checkpoints the WAL into the main file (SQLite's default,
//!   kept on purpose): between commands every value is in `credentials.db`, which an
//!   administrator can copy or back up with `cp`; the emptied `-wal` file is kept
//!   (`PERSIST_WAL`) to save re-creating it on every command;
//! - the file and its folder are created private (0600 / 0700), although they hold only
//!   ciphertext.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{
    Connection, ErrorCode, FileControl, OpenFlags, OptionalExtension, TransactionBehavior, params,
};

mod journal;

use self::journal::SCHEMA_2;
use super::{Action, Identity, LogRecord, Record, Store, StoreError, new_store_id};

/// "cio1": marks a SQLite file as a cio credential store.
const APPLICATION_ID: i64 = 0x6369_6F31;
/// 2: with the change log and the notes. A format-1 store (before them) is read as having
/// neither, and becomes format 2 with its first write: a cio that does not log changes then
/// refuses it rather than change it unlogged.
const SCHEMA_VERSION: i64 = 2;
/// How long a writer waits for another before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

const SCHEMA: &str = "
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    action TEXT NOT NULL,
    restored_from INTEGER,
    written_at_ms INTEGER NOT NULL,
    sealed BLOB,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;
";

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
        let unusable = |action, e: std::io::Error| StoreError::Unusable {
            location: self.location(),
            action,
            detail: e.to_string(),
        };
        match fs::metadata(&self.path) {
            Ok(meta) if meta.is_dir() => {
                return Err(StoreError::Foreign {
                    location: self.location(),
                    detail: "it is a folder".into(),
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
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&self.path, flags).map_err(|e| self.err(e))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| self.err(e))?;
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA secure_delete=ON;")
            .map_err(|e| self.err(e))?;
        // Keep the (checkpointed, reset) WAL file between processes instead of deleting and
        // re-creating it with its folder fsync each time: the data is in the main file after
        // every close all the same.
        conn.file_control(Some(rusqlite::MAIN_DB), FileControl::PersistWal(&mut 1))
            .map_err(|e| self.err(e))?;
        if self.check_or_init_schema(&mut conn, create)? {
            Ok(Some(conn))
        } else {
            // An empty file (a creation interrupted before its first write): read as empty.
            Ok(None)
        }
    }

    /// Checks the store's format, or initialises an empty file when `create`. Returns
    /// whether the store is initialised.
    fn check_or_init_schema(
        &self,
        conn: &mut Connection,
        create: bool,
    ) -> Result<bool, StoreError> {
        let app_id: i64 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if app_id == APPLICATION_ID {
            return self.check_schema_version(conn).map(|()| true);
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
        if !create {
            // An empty file: a store whose creation was interrupted. Nothing is in it.
            return Ok(false);
        }
        // WAL is a property of the file, set once; it cannot change inside a transaction.
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
            .map_err(|e| self.err(e))?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let app_id: i64 = tx
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if app_id != APPLICATION_ID {
            // Still uninitialised now that we hold the write lock: we initialise it.
            tx.execute_batch(SCHEMA).map_err(|e| self.err(e))?;
            tx.execute_batch(SCHEMA_2).map_err(|e| self.err(e))?;
            tx.execute(
                "INSERT INTO meta (k, v) VALUES ('store_id', ?1)",
                [new_store_id()],
            )
            .map_err(|e| self.err(e))?;
            tx.execute_batch(&format!(
                "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
            ))
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(true)
    }

    fn check_schema_version(&self, conn: &Connection) -> Result<(), StoreError> {
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if version == SCHEMA_VERSION || version == 1 {
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

    fn row_to_version(&self, row: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
        let action: String = row.get(2)?;
        let version: i64 = row.get(1)?;
        let restored_from: Option<i64> = row.get(3)?;
        Ok(Record {
            name: row.get(0)?,
            version: u64::try_from(version).unwrap_or(0),
            action: Action::parse(&action).unwrap_or(Action::Update),
            restored_from: restored_from.and_then(|v| u64::try_from(v).ok()),
            written_at_ms: row.get(4)?,
            sealed: row.get(5)?,
        })
    }

    fn query_versions(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<Record>, StoreError> {
        let rows = self.with_conn(false, |conn| {
            let mut stmt = conn.prepare_cached(sql).map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map(args, |row| self.row_to_version(row))
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
        })?;
        Ok(rows.unwrap_or_default())
    }

    fn meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
        conn.query_row("SELECT v FROM meta WHERE k = ?1", [key], |r| r.get(0))
            .optional()
    }
}

const COLUMNS: &str = "name, version, action, restored_from, written_at_ms, sealed";

impl Store for SqliteStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn identity(&self, create: bool) -> Result<Option<Identity>, StoreError> {
        let identity = self.with_conn(create, |conn| {
            let store_id = Self::meta(conn, "store_id").map_err(|e| self.err(e))?;
            let key_fingerprint = Self::meta(conn, "key_fingerprint").map_err(|e| self.err(e))?;
            Ok(store_id.map(|store_id| Identity {
                store_id,
                key_fingerprint,
            }))
        })?;
        Ok(identity.flatten())
    }

    fn latest(&self, name: &str) -> Result<Option<Record>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM versions WHERE name = ?1 ORDER BY version DESC LIMIT 1");
        Ok(self.query_versions(&sql, [name])?.pop())
    }

    fn list_latest(&self) -> Result<Vec<Record>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM versions v WHERE version = \
             (SELECT max(version) FROM versions WHERE name = v.name) ORDER BY name"
        );
        self.query_versions(&sql, [])
    }

    fn history(&self, name: &str) -> Result<Vec<Record>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM versions WHERE name = ?1 ORDER BY version");
        self.query_versions(&sql, [name])
    }

    fn all_versions(&self) -> Result<Vec<Record>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM versions ORDER BY name, version");
        self.query_versions(&sql, [])
    }

    fn append_logged(
        &self,
        expected: u64,
        version: &Record,
        key_fingerprint: &str,
        log: Option<&LogRecord>,
    ) -> Result<(), StoreError> {
        self.with_conn(true, |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self.err(e))?;
            self.upgrade(&tx)?;
            match Self::meta(&tx, "key_fingerprint").map_err(|e| self.err(e))? {
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
            let latest: Option<i64> = tx
                .query_row(
                    "SELECT max(version) FROM versions WHERE name = ?1",
                    [&version.name],
                    |r| r.get(0),
                )
                .map_err(|e| self.err(e))?;
            let latest = latest.and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
            if latest != expected || version.version != expected + 1 {
                return Err(StoreError::Conflict {
                    name: version.name.clone(),
                });
            }
            let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            tx.execute(
                &format!("INSERT INTO versions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                params![
                    version.name,
                    to_i64(version.version),
                    version.action.as_str(),
                    version.restored_from.map(to_i64),
                    version.written_at_ms,
                    version.sealed,
                ],
            )
            .map_err(|e| self.err(e))?;
            if let Some(entry) = log {
                self.add_log_entry(&tx, entry)?;
            }
            tx.commit().map_err(|e| self.err(e))
        })?;
        Ok(())
    }

    fn purge_logged(&self, name: &str, log: Option<&LogRecord>) -> Result<usize, StoreError> {
        let removed = self.with_conn(false, |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self.err(e))?;
            self.upgrade(&tx)?;
            let n = tx
                .execute("DELETE FROM versions WHERE name = ?1", [name])
                .map_err(|e| self.err(e))?;
            if let Some(entry) = log {
                self.add_log_entry(&tx, entry)?;
            }
            tx.commit().map_err(|e| self.err(e))?;
            // Move the zeroed pages into the main file and empty the WAL, so the purged
            // ciphertext does not linger in old WAL frames. Best effort: a concurrent reader
            // may keep the WAL alive a little longer.
            let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            Ok(n)
        })?;
        Ok(removed.unwrap_or(0))
    }

    fn append_log(&self, log: &LogRecord) -> Result<(), StoreError> {
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

    fn put_note(&self, key: &str, sealed: &[u8]) -> Result<(), StoreError> {
        self.write_note(key, sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::suite;

    fn fresh() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(dir.path().join("data/credentials.db"));
        (dir, store)
    }

    /// The shared suites run in `crate::suite`; this is what only a file can show.
    #[test]
    fn reading_creates_no_file() {
        let (_d, s) = fresh();
        suite::empty_store_has_nothing(&s);
        assert!(!s.path.exists(), "reading creates nothing");
        assert!(s.identity(false).unwrap().is_none());
    }

    #[test]
    fn an_empty_store_file_reads_as_empty_and_is_initialised_by_a_write() {
        let (_d, s) = fresh();
        fs::create_dir_all(s.path.parent().unwrap()).unwrap();
        fs::write(&s.path, b"").unwrap();
        suite::empty_store_has_nothing(&s);
        let s = SqliteStore::new(s.path.clone());
        assert!(s.identity(false).unwrap().is_none());
        assert!(s.identity(true).unwrap().is_some());
    }

    #[test]
    fn store_files_are_private() {
        use std::os::unix::fs::MetadataExt;
        let (_d, s) = fresh();
        s.identity(true).unwrap();
        assert_eq!(fs::metadata(&s.path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(s.path.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
    }

    #[test]
    fn foreign_files_are_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.txt");
        fs::write(
            &text,
            b"these are not credentials, just a text file of some length....",
        )
        .unwrap();
        let err = SqliteStore::new(text.clone()).identity(true).unwrap_err();
        assert!(matches!(err, StoreError::Foreign { .. }), "{err:?}");
        assert_eq!(
            fs::read(&text).unwrap(),
            b"these are not credentials, just a text file of some length...."
        );

        let other = dir.path().join("other.db");
        let conn = Connection::open(&other).unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        drop(conn);
        let err = SqliteStore::new(other).identity(true).unwrap_err();
        assert!(matches!(err, StoreError::Foreign { .. }), "{err:?}");
    }
}
