//! Rows of `versions` written: one at a time by appends, all at once by a re-seal of the
//! embedded store (`rekey`: every version, the change log and the notes replaced in one
//! transaction).

use rusqlite::{Connection, params};

use super::SqliteStore;
use crate::store::sqlite_row::{COLUMNS, encode_row};
use crate::store::{ManifestSwap, Record, Resealed, StoreError};

impl SqliteStore {
    /// Inside a write: inserts `record` as a row of `versions`.
    pub(super) fn insert_record(
        &self,
        conn: &Connection,
        record: &Record,
    ) -> Result<(), StoreError> {
        let row = encode_row(record);
        // Cached: a batch (an import, a re-seal) inserts many rows with one parse.
        conn.prepare_cached(&format!(
            "INSERT OR ABORT INTO versions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        ))
        .and_then(|mut insert| {
            insert.execute(params![
                row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8]
            ])
        })
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// [`Store::replace_all`](crate::store::Store::replace_all): one transaction.
    pub(super) fn reseal(
        &self,
        whole: &Resealed<'_>,
        key_fingerprint: &str,
        manifest: &ManifestSwap,
    ) -> Result<(), StoreError> {
        self.writing(false, false, |conn| {
            self.upgrade(conn)?;
            self.swap_manifest(conn, "(every name)", manifest)?;
            self.replace_log(conn, whole.log, whole.log_tail)?;
            conn.execute("DELETE FROM versions", [])
                .map_err(|e| self.err(e))?;
            for record in whole.records {
                self.insert_record(conn, record)?;
            }
            for (key, sealed) in whole.notes {
                conn.execute(
                    "INSERT OR REPLACE INTO notes (k, sealed) VALUES (?1, ?2)",
                    params![key, sealed],
                )
                .map_err(|e| self.err(e))?;
            }
            conn.execute(
                "INSERT OR ABORT INTO meta (k, v) VALUES ('key_fingerprint', ?1) ON CONFLICT (k) DO UPDATE SET v = ?1",
                [key_fingerprint],
            )
            .map_err(|e| self.err(e))?;
            Ok(())
        })?
        .ok_or_else(|| StoreError::Conflict {
            name: "(every name)".into(),
        })
    }
}
