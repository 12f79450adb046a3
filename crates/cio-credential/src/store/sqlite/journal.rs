//! The change log and the notes of the embedded store (format 2): tables `log` (entries by
//! number) and `notes` (sealed records by key). A format-1 store has neither: reads find
//! nothing, and the first write adds them ([`SqliteStore::upgrade`]).

use rusqlite::{Connection, TransactionBehavior, params};

use super::{SCHEMA_VERSION, SqliteStore};
use crate::store::{LogRecord, StoreError};

/// What format 2 added to format 1.
pub(super) const SCHEMA_2: &str = "
CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS notes (k TEXT PRIMARY KEY, sealed BLOB NOT NULL) WITHOUT ROWID;
";

impl SqliteStore {
    /// Whether the store has the change log and notes (format 2).
    pub(super) fn has_log(conn: &Connection) -> rusqlite::Result<bool> {
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .map(|v| v >= 2)
    }

    /// Inside a write transaction: makes a format-1 store format 2.
    pub(super) fn upgrade(&self, tx: &Connection) -> Result<(), StoreError> {
        if !Self::has_log(tx).map_err(|e| self.err(e))? {
            tx.execute_batch(SCHEMA_2).map_err(|e| self.err(e))?;
            tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Inside a write transaction: adds `entry` if it is the log's next entry.
    pub(super) fn add_log_entry(
        &self,
        tx: &Connection,
        entry: &LogRecord,
    ) -> Result<(), StoreError> {
        let newest: Option<i64> = tx
            .query_row("SELECT max(seq) FROM log", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let newest = newest.and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
        if newest + 1 != entry.seq {
            return Err(StoreError::Conflict {
                name: "the change log".into(),
            });
        }
        tx.execute(
            "INSERT INTO log (seq, sealed) VALUES (?1, ?2)",
            params![i64::try_from(entry.seq).unwrap_or(i64::MAX), entry.sealed],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The log entries `sql` selects (none in a format-1 store).
    pub(super) fn query_log(&self, sql: &str) -> Result<Vec<LogRecord>, StoreError> {
        let rows = self.with_conn(false, |conn| {
            if !Self::has_log(conn).map_err(|e| self.err(e))? {
                return Ok(Vec::new());
            }
            let mut stmt = conn.prepare_cached(sql).map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([], |row| {
                    // Bytes stored as text (an entry edited by hand) read as the bytes they
                    // are: the entry then fails to open, and the log names it altered.
                    let sealed = row.get_ref(1)?;
                    let sealed = sealed
                        .as_bytes()
                        .map_err(|e| {
                            rusqlite::Error::FromSqlConversionFailure(
                                1,
                                sealed.data_type(),
                                Box::new(e),
                            )
                        })?
                        .to_vec();
                    Ok(LogRecord {
                        seq: u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0),
                        sealed,
                    })
                })
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
        })?;
        Ok(rows.unwrap_or_default())
    }

    pub(super) fn append_log_entry(&self, log: &LogRecord) -> Result<(), StoreError> {
        self.with_conn(true, |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self.err(e))?;
            self.upgrade(&tx)?;
            self.add_log_entry(&tx, log)?;
            tx.commit().map_err(|e| self.err(e))
        })?;
        Ok(())
    }

    pub(super) fn query_notes(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let notes = self.with_conn(false, |conn| {
            if !Self::has_log(conn).map_err(|e| self.err(e))? {
                return Ok(Vec::new());
            }
            let mut stmt = conn
                .prepare_cached("SELECT k, sealed FROM notes ORDER BY k")
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
        })?;
        Ok(notes.unwrap_or_default())
    }

    pub(super) fn write_note(&self, key: &str, sealed: &[u8]) -> Result<(), StoreError> {
        self.with_conn(true, |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self.err(e))?;
            self.upgrade(&tx)?;
            tx.execute(
                "INSERT OR REPLACE INTO notes (k, sealed) VALUES (?1, ?2)",
                params![key, sealed],
            )
            .map_err(|e| self.err(e))?;
            tx.commit().map_err(|e| self.err(e))
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{APPLICATION_ID, SCHEMA};
    use super::*;
    use crate::store::{Action, Record, Store};

    /// A store as a cio before the change log made it: format 1.
    fn format_1_store(dir: &std::path::Path) -> SqliteStore {
        let path = dir.join("credentials.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO meta (k, v) VALUES ('store_id', 'old'); \
             PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 1;"
        ))
        .unwrap();
        drop(conn);
        SqliteStore::new(path)
    }

    #[test]
    fn a_format_1_store_reads_without_a_log_and_its_first_write_adds_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = format_1_store(dir.path());
        assert_eq!(store.log().unwrap(), []);
        assert_eq!(store.log_tail().unwrap(), None);
        assert!(store.notes().unwrap().is_empty());
        let record = Record {
            name: "cio_aws_access_key".into(),
            version: 1,
            action: Action::Create,
            restored_from: None,
            written_at_ms: 1,
            sealed: Some(vec![1, 2, 3]),
        };
        let entry = LogRecord {
            seq: 1,
            sealed: vec![9; 8],
        };
        store.append_logged(0, &record, "fp", Some(&entry)).unwrap();
        assert_eq!(store.log().unwrap(), [entry]);
        let store = SqliteStore::new(dir.path().join("credentials.db"));
        let conn = Connection::open(&store.path).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(store.identity(false).unwrap().unwrap().store_id, "old");
    }
}
