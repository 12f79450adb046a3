//! The store's `meta` rows: its id, the key fingerprint, the manifest (the sealed head of
//! every name), read and swapped inside the caller's transaction.

use rusqlite::{Connection, OptionalExtension};

use super::SqliteStore;
use crate::store::{Identity, ManifestSwap, Store, StoreError};

impl SqliteStore {
    /// The identity, inside a transaction the caller holds: one query for its three rows.
    pub(super) fn identity_in(&self, tx: &Connection) -> Result<Option<Identity>, StoreError> {
        use rusqlite::types::Value;
        let (mut store_id, mut key_fingerprint, mut manifest) = (None, None, None);
        let mut stmt = tx
            .prepare_cached(
                "SELECT k, v FROM meta WHERE k IN ('store_id', 'key_fingerprint', 'manifest')",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let (k, v): (Value, Value) = (
                row.get(0).map_err(|e| self.err(e))?,
                row.get(1).map_err(|e| self.err(e))?,
            );
            match k {
                Value::Text(k) if k == "store_id" => store_id = Some(self.text(&k, v)?),
                Value::Text(k) if k == "key_fingerprint" => {
                    key_fingerprint = Some(self.text(&k, v)?);
                }
                Value::Text(k) if k == "manifest" => manifest = Some(meta_bytes(v)),
                _ => {}
            }
        }
        let Some(store_id) = store_id else {
            // The id is written with the schema, in one transaction (a new store appears
            // whole): a store file without it was altered below cio, even when nothing else
            // is left in it (a key made for it would seal what was another key's store).
            return Err(StoreError::Corrupt {
                location: self.location(),
                detail: "its store id was removed".into(),
            });
        };
        Ok(Some(Identity {
            store_id,
            key_fingerprint,
            manifest,
        }))
    }

    /// Replaces the manifest if it is still `swap.expected` in the store `swap.store_id`; a
    /// lost race (or another store put in place) is a conflict.
    pub(super) fn swap_manifest(
        &self,
        tx: &Connection,
        name: &str,
        swap: &ManifestSwap,
    ) -> Result<(), StoreError> {
        let current = Self::meta(tx, "manifest").map_err(|e| self.err(e))?;
        let store_id = Self::meta(tx, "store_id").map_err(|e| self.err(e))?;
        if current != swap.expected || store_id.as_deref() != Some(swap.store_id.as_bytes()) {
            return Err(StoreError::Conflict {
                name: name.to_string(),
            });
        }
        let text = String::from_utf8_lossy(&swap.new);
        tx.execute(
            "INSERT OR ABORT INTO meta (k, v) VALUES ('manifest', ?1) ON CONFLICT (k) DO UPDATE SET v = ?1",
            [text.as_ref()],
        )
        .map_err(|e| self.err(e))?;
        // Read back, as the records are (`insert_record`): a `meta` column given another
        // type below cio would keep something else.
        if Self::meta(tx, "manifest")
            .map_err(|e| self.err(e))?
            .as_deref()
            != Some(text.as_bytes())
        {
            return Err(StoreError::Corrupt {
                location: self.location(),
                detail: super::NOT_AS_WRITTEN.into(),
            });
        }
        Ok(())
    }

    /// A `meta` value, whatever type the file holds it as (text, or bytes if edited).
    pub(super) fn meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
        let value = conn
            .prepare_cached("SELECT v FROM meta WHERE k = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?;
        Ok(value.map(meta_bytes))
    }

    /// A `meta` value that must be text (the store id, the key fingerprint).
    pub(super) fn meta_text(
        &self,
        conn: &Connection,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        Self::meta(conn, key)
            .map_err(|e| self.err(e))?
            .map(|bytes| self.text(key, rusqlite::types::Value::Blob(bytes)))
            .transpose()
    }

    /// `value`, which must be text, of the `meta` row `key`.
    fn text(&self, key: &str, value: rusqlite::types::Value) -> Result<String, StoreError> {
        String::from_utf8(meta_bytes(value)).map_err(|_| StoreError::Corrupt {
            location: self.location(),
            detail: format!("its {} is not text", key.replace('_', " ")),
        })
    }
}

/// A `meta` value's bytes, whatever SQLite type a hand that edited the file gave it.
fn meta_bytes(value: rusqlite::types::Value) -> Vec<u8> {
    use rusqlite::types::Value;
    match value {
        Value::Text(t) => t.into_bytes(),
        Value::Blob(b) => b,
        Value::Integer(i) => i.to_string().into_bytes(),
        Value::Real(r) => r.to_string().into_bytes(),
        Value::Null => Vec::new(),
    }
}
