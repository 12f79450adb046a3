//! A set's access key and secret key as one pair: written together, and restored together.
//!
//! Rules:
//! - a new pair is two versions appended in one operation (see [`super::together`]): no
//!   reader ever sees the new access key with the old secret key;
//! - a pair write also writes a marker record (`cio_X_access_key.pair`, no catalog name), in
//!   the same operation and so with the same time; versions of the two keys that share their
//!   time with a marker version were written together. A restore of either name whose
//!   version was written together with a version of the other brings back the previous
//!   *pair*: both names, again in one operation (with a marker), each as a restore of its
//!   own earlier version;
//! - a name that was written on its own is restored on its own, as before.

use crate::catalog::{Allow, CredentialName, Field, SetId, Warning, check_value};
use crate::error::{Error, Result};
use crate::secret::SecretValue;
use crate::store::{Action, Identity, Record};

use super::restore::unmoved;
use super::together::{Next, Together};
use super::{CredentialStore, Written};

/// The other half of a key pair's name; `None` for a name that is not a key.
fn partner(name: CredentialName) -> Option<CredentialName> {
    let field = match name.field {
        Field::AccessKey => Field::SecretKey,
        Field::SecretKey => Field::AccessKey,
        _ => return None,
    };
    Some(CredentialName { field, ..name })
}

/// The marker record of `set`'s pair writes: the access key's name and `.pair`.
fn marker(set: SetId) -> String {
    format!("{}.pair", set.name(Field::AccessKey))
}

/// What a marker version holds (the time it shares with its pair is what counts).
const MARKER_VALUE: &str = "written together";

/// The next version of a name that holds `value`: an update of a live name, else a create.
fn put<'v>(latest: Option<&Record>, value: &'v SecretValue) -> Next<'v> {
    Next {
        action: if latest.is_some_and(Record::is_live) {
            Action::Update
        } else {
            Action::Create
        },
        restored_from: None,
        value: Some(value),
    }
}

impl CredentialStore {
    /// Writes `access` and `secret` as `set`'s access key and secret key, in one operation.
    /// The values must follow the catalog's rules; a refused value changes nothing.
    pub fn put_key_pair(
        &self,
        set: SetId,
        access: &SecretValue,
        secret: &SecretValue,
    ) -> Result<[Written; 2]> {
        let [access_name, secret_name] =
            [Field::AccessKey, Field::SecretKey].map(|field| set.name(field));
        let check = |name, value: &SecretValue| {
            check_value(name, value.expose(), Allow::default())
                .map_err(|violation| Error::InvalidValue { name, violation })
        };
        let warnings = [check(access_name, access)?, check(secret_name, secret)?];
        let names = [
            access_name.to_string(),
            secret_name.to_string(),
            marker(set),
        ];
        let mark = SecretValue::new(MARKER_VALUE.to_string());
        let logged = Together {
            command: "rotate",
            credentials: vec![names[0].clone(), names[1].clone()],
            detail: Some("the key pair, as one".into()),
        };
        let mut actions = [Action::Create; 2];
        let (versions, _) =
            self.append_together(&logged, [&names[0], &names[1], &names[2]], |latest| {
                let next = [
                    put(latest[0], access),
                    put(latest[1], secret),
                    put(latest[2], &mark),
                ];
                actions = [next[0].action, next[1].action];
                Ok(next)
            })?;
        let [access_warnings, secret_warnings]: [Vec<Warning>; 2] = warnings;
        let written = |i: usize, name, warnings| Written {
            name,
            version: versions[i],
            action: actions[i],
            restored_from: None,
            warnings,
        };
        Ok([
            written(0, access_name, access_warnings),
            written(1, secret_name, secret_warnings),
        ])
    }

    /// The value [`CredentialStore::restore`] of `name` and `version` would write, without
    /// writing it (for a check before the restore). Errors as the restore's.
    pub fn restore_value(&self, name: CredentialName, version: Option<u64>) -> Result<SecretValue> {
        let Some(verified) = self.verified()? else {
            return Err(Error::NotFound { name });
        };
        let history = verified.history(&name.to_string())?;
        let (_, value) = self.restore_source(&verified.identity, name, history, version)?;
        Ok(value)
    }

    /// [`CredentialStore::restore`], except that a key written together with the other key
    /// of its pair brings back the pair: both names, in one operation. Returns what was
    /// written, `name` first.
    pub fn restore_keys(&self, name: CredentialName, version: Option<u64>) -> Result<Vec<Written>> {
        let Some(other) = partner(name) else {
            return Ok(vec![self.restore(name, version)?]);
        };
        let Some(verified) = self.verified()? else {
            return Err(Error::NotFound { name });
        };
        let identity = &verified.identity;
        let history = verified.history(&name.to_string())?;
        let other_history = verified.history(&other.to_string())?;
        let set = name.set();
        let marks: Vec<i64> = verified
            .history(&marker(set))?
            .iter()
            .map(|r| r.written_at_ms)
            .collect();
        let together = |a: &Record, b: &Record| {
            a.written_at_ms == b.written_at_ms
                && a.is_live()
                && b.is_live()
                && marks.contains(&a.written_at_ms)
        };
        // The version of `name` being left (the live one) or brought back (`version`), and
        // the other key's version written with it, if any.
        let anchor = match version {
            Some(n) => history.iter().find(|r| r.version == n),
            None => history.last(),
        };
        let partner_version = anchor.and_then(|a| match version {
            Some(_) => other_history.iter().rev().find(|r| together(a, r)),
            None => other_history.last().filter(|r| together(a, r)),
        });
        let Some(partner_version) = partner_version else {
            return Ok(vec![self.restore(name, version)?]);
        };
        let (from, value) = self.restore_source(identity, name, history, version)?;
        let other_version = version.map(|_| partner_version.version);
        let (other_from, other_value) =
            self.restore_source(identity, other, other_history, other_version)?;
        let names = [name.to_string(), other.to_string(), marker(set)];
        let mark = SecretValue::new(MARKER_VALUE.to_string());
        let logged = Together {
            command: "restore",
            credentials: vec![names[0].clone(), names[1].clone()],
            detail: Some(format!(
                "the key pair, as one: the values of versions {from} and {other_from}"
            )),
        };
        let read = [history.last(), other_history.last()];
        let (versions, _) =
            self.append_together(&logged, [&names[0], &names[1], &names[2]], |latest| {
                unmoved(name, read[0], latest[0])?;
                unmoved(other, read[1], latest[1])?;
                Ok([
                    Next {
                        action: Action::Restore,
                        restored_from: Some(from),
                        value: Some(&value),
                    },
                    Next {
                        action: Action::Restore,
                        restored_from: Some(other_from),
                        value: Some(&other_value),
                    },
                    put(latest[2], &mark),
                ])
            })?;
        Ok(
            [(name, versions[0], from), (other, versions[1], other_from)]
                .into_iter()
                .map(|(name, version, from)| Written {
                    name,
                    version,
                    action: Action::Restore,
                    restored_from: Some(from),
                    warnings: Vec::new(),
                })
                .collect(),
        )
    }

    /// The version and value a restore of `name` brings back: `version`'s, or the previous
    /// value.
    fn restore_source(
        &self,
        identity: &Identity,
        name: CredentialName,
        history: &[Record],
        version: Option<u64>,
    ) -> Result<(u64, SecretValue)> {
        let Some(n) = version else {
            return self.previous_value(identity, name, history);
        };
        let source = history
            .iter()
            .find(|r| r.version == n)
            .ok_or(Error::NoSuchVersion { name, version: n })?;
        let value = self
            .open_version(identity, source)?
            .ok_or(Error::NothingToRestore {
                name,
                removal: Some(n),
            })?;
        Ok((n, value))
    }
}

#[cfg(test)]
mod tests {
    use crate::catalog::{Provider, Role, SetId};
    use crate::credentials::CredentialStore;
    use crate::secret::SecretValue;
    use crate::store::Action;
    use crate::store::sqlite::SqliteStore;

    const SET: SetId = SetId {
        provider: Provider::Minio,
        role: Role::Primary,
    };

    fn v(s: &str) -> SecretValue {
        SecretValue::new(s.to_string())
    }

    fn values(store: &CredentialStore) -> (String, String) {
        let get = |n: &str| {
            let entry = store.get(n.parse().unwrap()).unwrap().unwrap();
            entry.value.expose().to_string()
        };
        (get("cio_minio_access_key"), get("cio_minio_secret_key"))
    }

    #[test]
    fn a_pair_is_written_and_restored_together() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(
            Box::new(SqliteStore::new(dir.path().join("s.db"))),
            dir.path().join("key"),
        );
        let access = "cio_minio_access_key".parse().unwrap();
        // Created one by one, then replaced as a pair.
        store.put(access, &v("first-access")).unwrap();
        store
            .put("cio_minio_secret_key".parse().unwrap(), &v("first-secret"))
            .unwrap();
        let written = store
            .put_key_pair(SET, &v("second-access"), &v("second-secret"))
            .unwrap();
        assert_eq!(
            written
                .iter()
                .map(|w| (w.version, w.action))
                .collect::<Vec<_>>(),
            [(2, Action::Update), (2, Action::Update)]
        );
        // Restoring the secret key alone brings back the previous pair.
        let restored = store
            .restore_keys("cio_minio_secret_key".parse().unwrap(), None)
            .unwrap();
        assert_eq!(
            restored
                .iter()
                .map(|w| (w.name.to_string(), w.version, w.restored_from))
                .collect::<Vec<_>>(),
            [
                ("cio_minio_secret_key".to_string(), 3, Some(1)),
                ("cio_minio_access_key".to_string(), 3, Some(1))
            ]
        );
        assert_eq!(
            values(&store),
            ("first-access".into(), "first-secret".into())
        );
        // ... and again (the restore was one operation too), back to the second pair.
        store.restore_keys(access, None).unwrap();
        assert_eq!(
            values(&store),
            ("second-access".into(), "second-secret".into())
        );
        // A version written together with the other key's: both; the first access key
        // (written alone): alone.
        store.restore_keys(access, Some(2)).unwrap();
        assert_eq!(
            values(&store),
            ("second-access".into(), "second-secret".into())
        );
        let alone = store.restore_keys(access, Some(1)).unwrap();
        assert_eq!(alone.len(), 1);
        assert_eq!(
            values(&store),
            ("first-access".into(), "second-secret".into())
        );
        // A refused value writes nothing.
        assert!(store.put_key_pair(SET, &v("ok-access"), &v("")).is_err());
        assert_eq!(
            values(&store),
            ("first-access".into(), "second-secret".into())
        );
    }
}
