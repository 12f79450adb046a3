//! The change log and the notes of the embedded store (format 3): tables `log` (entries by
//! number) and `notes` (sealed records by key). A format-2 store has neither: reads find
//! nothing, and its first write adds them ([`SqliteStore::upgrade`]).

use rusqlite::{Connection, params};

use super::{SCHEMA_VERSION, SqliteStore};
use crate::store::{LogAppend, LogRecord, ManifestSwap, StoreError};

/// What format 3 added to format 2.
pub(super) const SCHEMA_LOG: &str = "
CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS notes (k TEXT PRIMARY KEY, sealed BLOB NOT NULL) WITHOUT ROWID;
";

impl SqliteStore {
    /// Whether the store has the change log and notes (format 3).
    fn has_log(&self, conn: &Connection) -> Result<bool, StoreError> {
        self.schema_version(conn).map(|v| v >= SCHEMA_VERSION)
    }

    /// Inside a write: makes a format-2 store format 3.
    pub(super) fn upgrade(&self, conn: &Connection) -> Result<(), StoreError> {
        if !self.has_log(conn)? {
            conn.execute_batch(SCHEMA_LOG).map_err(|e| self.err(e))?;
            conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Inside a write: adds `log.entry` if it goes after `log.after`: the log holds that
    /// entry (none to hold for 0) and none numbered after it up to the new one's own number.
    /// Not "after the highest number": an entry written outside cio at the end of the range
    /// is passed over (see the change log's numbering).
    pub(super) fn add_log_entry(
        &self,
        conn: &Connection,
        log: &LogAppend,
    ) -> Result<(), StoreError> {
        let conflict = || StoreError::Conflict {
            name: "the change log".into(),
        };
        let (Ok(seq), Ok(after)) = (i64::try_from(log.entry.seq), i64::try_from(log.after)) else {
            return Err(conflict());
        };
        if after >= seq {
            return Err(conflict());
        }
        // One query: whether `after` is held, and how many entries lie after it up to `seq`.
        let (held, between): (i64, i64) = conn
            .prepare_cached(
                "SELECT count(*) FILTER (WHERE seq = ?1), count(*) FILTER (WHERE seq > ?1) \
                 FROM log WHERE seq BETWEEN ?1 AND ?2",
            )
            .and_then(|mut stmt| stmt.query_row([after, seq], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(|e| self.err(e))?;
        if (after > 0 && held == 0) || between > 0 {
            return Err(conflict());
        }
        conn.execute(
            "INSERT OR ABORT INTO log (seq, sealed) VALUES (?1, ?2)",
            params![seq, log.entry.sealed],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Inside a write: replaces the whole log with `log`, if its newest entry is still
    /// `tail` (0: empty).
    pub(super) fn replace_log(
        &self,
        conn: &Connection,
        log: &[LogRecord],
        tail: u64,
    ) -> Result<(), StoreError> {
        let newest: Option<i64> = conn
            .query_row("SELECT max(seq) FROM log", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if newest.and_then(|v| u64::try_from(v).ok()).unwrap_or(0) != tail {
            return Err(StoreError::Conflict {
                name: "the change log".into(),
            });
        }
        conn.execute("DELETE FROM log", [])
            .map_err(|e| self.err(e))?;
        for entry in log {
            conn.execute(
                "INSERT OR ABORT INTO log (seq, sealed) VALUES (?1, ?2)",
                params![i64::try_from(entry.seq).unwrap_or(i64::MAX), entry.sealed],
            )
            .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// The log entries `sql` selects (none in a format-2 store).
    pub(super) fn query_log(&self, sql: &str) -> Result<Vec<LogRecord>, StoreError> {
        let rows = self.reading(|conn| self.log_in(conn, sql, []))?;
        Ok(rows.unwrap_or_default())
    }

    /// The log entries `sql` selects (`seq, sealed`) inside a read of `conn`; none when the
    /// store has no log yet.
    pub(super) fn log_in(
        &self,
        conn: &Connection,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<LogRecord>, StoreError> {
        // A store without a log (format 2) fails the statement: asked only then, as every
        // command reads the log's tail.
        let mut stmt = match conn.prepare_cached(sql) {
            Ok(stmt) => stmt,
            Err(_) if !self.has_log(conn)? => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e)),
        };
        let rows = stmt
            .query_map(params, |row| {
                // Whatever a hand stored (text, a number) reads as bytes: the entry then
                // fails its tag, and the log names it altered. A number that is no entry
                // number reads as 0, which no entry has: it fails its tag too.
                let sealed = stored_bytes(row.get_ref(1)?);
                let seq = row
                    .get_ref(0)?
                    .as_i64()
                    .ok()
                    .and_then(|n| u64::try_from(n).ok());
                Ok(LogRecord {
                    seq: seq.unwrap_or(0),
                    sealed,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    pub(super) fn append_log_entry(&self, log: &LogAppend) -> Result<(), StoreError> {
        self.writing(true, false, |conn| {
            self.upgrade(conn)?;
            self.add_log_entry(conn, log)
        })?;
        Ok(())
    }

    pub(super) fn query_notes(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let notes = self.reading(|conn| {
            if !self.has_log(conn)? {
                return Ok(Vec::new());
            }
            let mut stmt = conn
                // Text keys only: cio writes no other, and a row keyed by a blob of the same
                // bytes (put there by hand) would stand beside cio's own for good.
                .prepare("SELECT k, sealed FROM notes WHERE typeof(k) = 'text' ORDER BY k")
                .map_err(|e| self.err(e))?;
            // Whatever a hand stored reads as bytes: a note that is not cio's then fails its
            // tag and is its own set's problem, not the store's.
            let rows = stmt
                .query_map([], |row| {
                    let key = String::from_utf8_lossy(&stored_bytes(row.get_ref(0)?)).into_owned();
                    Ok((key, stored_bytes(row.get_ref(1)?)))
                })
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
        })?;
        Ok(notes.unwrap_or_default())
    }

    pub(super) fn write_notes(
        &self,
        notes: &[(String, Vec<u8>)],
        manifest: Option<&ManifestSwap>,
        log: Option<&LogAppend>,
    ) -> Result<(), StoreError> {
        self.writing(false, false, |conn| {
            self.upgrade(conn)?;
            if let Some(swap) = manifest {
                self.swap_manifest(conn, "the store's manifest", swap)?;
            }
            if let Some(log) = log {
                self.add_log_entry(conn, log)?;
            }
            for (key, sealed) in notes {
                conn.execute(
                    "INSERT OR REPLACE INTO notes (k, sealed) VALUES (?1, ?2)",
                    params![key, sealed],
                )
                .map_err(|e| self.err(e))?;
            }
            Ok(())
        })?;
        Ok(())
    }
}

/// A column's bytes, whatever SQLite type a hand gave it: text and blobs as they are,
/// numbers as their text, NULL as nothing.
fn stored_bytes(value: rusqlite::types::ValueRef<'_>) -> Vec<u8> {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Blob(b) | ValueRef::Text(b) => b.to_vec(),
        ValueRef::Integer(i) => i.to_string().into_bytes(),
        ValueRef::Real(r) => r.to_string().into_bytes(),
        ValueRef::Null => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{APPLICATION_ID, SCHEMA, SCHEMA_VERSION_BEFORE_LOG};
    use super::*;
    use crate::store::Store;

    #[test]
    fn a_format_2_store_reads_without_a_log_and_its_first_write_adds_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO meta (k, v) VALUES ('store_id', 'old'); \
             PRAGMA application_id = {APPLICATION_ID}; \
             PRAGMA user_version = {SCHEMA_VERSION_BEFORE_LOG};"
        ))
        .unwrap();
        drop(conn);
        let store = SqliteStore::new(path.clone());
        assert_eq!(store.log().unwrap(), []);
        assert_eq!(store.log_tail().unwrap(), None);
        assert_eq!(store.read().unwrap().unwrap().log_past, []);
        assert!(store.notes().unwrap().is_empty());
        let entry = LogRecord {
            seq: 1,
            sealed: vec![9; 40],
        };
        store.append_log(&LogAppend::next(entry.clone())).unwrap();
        assert_eq!(SqliteStore::new(path.clone()).log().unwrap(), [entry]);
        let version: i64 = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }
}
