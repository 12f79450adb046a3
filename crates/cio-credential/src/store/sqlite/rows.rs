//! Rows of `versions` written: one at a time by appends, all at once by a re-seal of the
//! embedded store (`rekey`: every version, the change log and the notes replaced in one
//! transaction).

use rusqlite::{Connection, OptionalExtension, params};

use super::{NOT_AS_WRITTEN, SqliteStore};
use crate::store::sqlite_row::{COLUMNS, decode_row, encode_row, raw_value};
use crate::store::{ManifestSwap, Record, Resealed, Store, StoreError};

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
        // Read back as every reading decodes it: a table whose columns were given other
        // types below cio (SQLite converts a value to a column's declared affinity) would
        // otherwise take the write, report success, and hold a record no reader accepts.
        let back = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM versions WHERE name = ?1 AND version = ?2"
            ))
            .and_then(|mut select| {
                select
                    .query_row(params![row[0], row[1]], |r| {
                        Ok([
                            raw_value(r.get_ref(0)?),
                            raw_value(r.get_ref(1)?),
                            raw_value(r.get_ref(2)?),
                            raw_value(r.get_ref(3)?),
                            raw_value(r.get_ref(4)?),
                            raw_value(r.get_ref(5)?),
                            raw_value(r.get_ref(6)?),
                            raw_value(r.get_ref(7)?),
                            raw_value(r.get_ref(8)?),
                        ])
                    })
                    .optional()
            })
            .map_err(|e| self.err(e))?;
        if back.map(decode_row).and_then(Result::ok).as_ref() != Some(record) {
            return Err(StoreError::Corrupt {
                location: self.location(),
                detail: NOT_AS_WRITTEN.into(),
            });
        }
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
