//! What importing a bundle into a store would write, decided before anything is written.
//!
//! Rules:
//! - with `as_alternate`, each primary name becomes its `_alt` name (the lost cluster's
//!   primary set becomes the rescuing cluster's alternate set); alternate names stay;
//! - a name whose live value in the store equals the bundle's is unchanged: nothing is
//!   written for it;
//! - every version an import writes keeps its time on the cluster that wrote it (a time
//!   after now is taken as now): its age is the value's, and a value imported from an old
//!   paper bundle stays older than the escrow bundle a later rotation refreshed;
//! - a name whose live value differs and was written after the bundle's value is *newer in
//!   the store*: the import is refused unless forced (the values stay in the history when
//!   forced);
//! - except a repository password the repository itself says is stale ([`Plan::settle_stale`]):
//!   it refuses the stored password and opens with the bundle's. The dates alone cannot
//!   compare such values like with like when the store's was written here, on a clock other
//!   than the lost cluster's (or imported by a cio that dated imports by the import). The
//!   repository is asked only for such a conflict, and a password that still opens it is
//!   never replaced without `--force`.
//! - a bundle with nothing to import (every credential's newest version a removal) never
//!   gets here: [`Bundle::from_json`] refuses it as it refuses an empty one;
//! - the writes are [`Change`]s for [`CredentialStore::write_all`]: all or nothing. With a history
//!   bundle every bundled version becomes a new version, oldest first.

use crate::catalog::{CredentialName, Field, Role, SetId};
use crate::credentials::{Change, CredentialStore, Seen};
use crate::rotate::{PasswordChange, check_password_import, stored_password_is_stale};
use crate::secret::SecretValue;

use super::RecoveryError;
use super::bundle::{Bundle, BundledCredential};

/// What the import does with one bundled credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The store has no live value: it is created.
    Create,
    /// The store's value differs (and is older, or the import is forced): it is replaced.
    Update,
    /// The store holds the same value: nothing is written.
    Unchanged,
    /// The store's value differs and is newer: refused unless forced.
    NewerInStore,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Create => "create",
            Outcome::Update => "update",
            Outcome::Unchanged => "unchanged",
            Outcome::NewerInStore => "newer in store",
        }
    }
}

/// One bundled credential and where it goes.
#[derive(Debug)]
pub struct Planned<'b> {
    /// The name written in this store.
    pub target: CredentialName,
    pub credential: &'b BundledCredential,
    pub outcome: Outcome,
    /// The target's live version in the store when planned (number, time in milliseconds);
    /// `None` when it held no value.
    pub live: Option<(u64, i64)>,
    /// The store's value was dated later, but the repository refuses it and opens with the
    /// bundle's ([`Plan::settle_stale`]): an [`Outcome::Update`] the repository vouched for.
    pub replaces_stale: bool,
}

impl Planned<'_> {
    /// The value the target ends up with.
    pub fn value(&self) -> Option<&SecretValue> {
        self.credential.latest().and_then(|v| v.value.as_ref())
    }
}

/// What an import would write.
#[derive(Debug)]
pub struct Plan<'b> {
    pub items: Vec<Planned<'b>>,
}

/// The name `name` is imported as.
pub fn target_name(name: CredentialName, as_alternate: bool) -> CredentialName {
    if as_alternate {
        CredentialName {
            role: Role::Alternate,
            ..name
        }
    } else {
        name
    }
}

impl<'b> Plan<'b> {
    /// Compares `bundle` with the live values of `vault`.
    pub fn new(
        bundle: &'b Bundle,
        vault: &CredentialStore,
        as_alternate: bool,
    ) -> crate::Result<Plan<'b>> {
        let live = vault.list()?.entries;
        let mut items: Vec<Planned<'b>> = Vec::with_capacity(bundle.credentials.len());
        for credential in &bundle.credentials {
            let target = target_name(credential.name, as_alternate);
            if let Some(other) = items.iter().find(|p| p.target == target) {
                return Err(RecoveryError::TwoSetsOneTarget {
                    first: other.credential.name.set(),
                    second: credential.name.set(),
                }
                .into());
            }
            let Some(latest) = credential.latest() else {
                continue;
            };
            let Some(value) = &latest.value else {
                // Removed when the bundle was made (history only): nothing to bring back.
                continue;
            };
            let entry = live.iter().find(|e| e.name == target);
            let outcome = match entry {
                None => Outcome::Create,
                Some(e) if e.value.ct_eq(value) => Outcome::Unchanged,
                Some(e) if e.updated_ms > latest.written_at_ms => Outcome::NewerInStore,
                Some(_) => Outcome::Update,
            };
            items.push(Planned {
                target,
                credential,
                outcome,
                live: entry.map(|e| (e.version, e.updated_ms)),
                replaces_stale: false,
            });
        }
        Ok(Plan { items })
    }

    /// The names whose store values are newer and different.
    pub fn newer_in_store(&self) -> Vec<CredentialName> {
        self.items
            .iter()
            .filter(|p| p.outcome == Outcome::NewerInStore)
            .map(|p| p.target)
            .collect()
    }

    /// What the plan saw of each target, for [`CredentialStore::write_all_as_seen`]: the
    /// import is refused when a target has moved on since (its outcome may differ now).
    pub fn seen(&self) -> Vec<Seen> {
        self.items
            .iter()
            .map(|p| Seen {
                name: p.target,
                live: p.live,
            })
            .collect()
    }

    /// The repository passwords *newer in the store* that the repository says are stale: it
    /// refuses the stored password and opens with the bundle's, with the set as the import
    /// leaves it (`rotate::stored_password_is_stale`). Those become updates (marked
    /// [`Planned::replaces_stale`]), and are returned. Each such conflict asks the
    /// repository twice; a plan without one asks nothing.
    pub fn settle_stale(&mut self, vault: &CredentialStore) -> Vec<CredentialName> {
        let stale: Vec<usize> = std::thread::scope(|scope| {
            let asked: Vec<_> = self
                .items
                .iter()
                .enumerate()
                .filter(|(_, item)| {
                    item.target.field == Field::BackupPassword
                        && item.outcome == Outcome::NewerInStore
                })
                .filter_map(|(i, item)| Some((i, item, item.value()?)))
                .map(|(i, item, password)| {
                    let others = self.others(item);
                    scope.spawn(move || {
                        stored_password_is_stale(vault, item.target, password, &others).then_some(i)
                    })
                })
                .collect();
            asked
                .into_iter()
                .filter_map(|asking| match asking.join() {
                    Ok(found) => found,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        });
        stale
            .into_iter()
            .map(|i| {
                let item = &mut self.items[i];
                item.outcome = Outcome::Update;
                item.replaces_stale = true;
                item.target
            })
            .collect()
    }

    /// The bundle's other values of `item`'s set.
    fn others(&self, item: &Planned<'b>) -> Vec<(Field, &SecretValue)> {
        self.items
            .iter()
            .filter(|o| o.target.set() == item.target.set() && o.target != item.target)
            .filter_map(|o| Some((o.target.field, o.value()?)))
            .collect()
    }

    /// Checks each repository password the import writes, as `create` and `restore` check
    /// theirs ([`crate::check_password_import`]): with the set as the import leaves it, the
    /// repository must have a key for the bundle's password, a first password included
    /// (`force` stores a first one anyway). Returns the passwords checked and what was
    /// found; the first that does not open its repository is the error. A password
    /// [`Plan::settle_stale`] let through was checked there. The repositories are asked at
    /// once (one thread each): an import that changes the passwords of four sets waits for
    /// one round trip, not four. `escrow`: the bundle is the escrow object beside the
    /// repository (`--from-repository`), for the refusal's hint.
    pub fn check_passwords(
        &self,
        vault: &CredentialStore,
        force: bool,
        escrow: bool,
    ) -> crate::Result<Vec<(CredentialName, PasswordChange)>> {
        let changed: Vec<(&Planned<'b>, &SecretValue)> = self
            .items
            .iter()
            .filter(|item| {
                item.target.field == Field::BackupPassword
                    && item.outcome != Outcome::Unchanged
                    && !item.replaces_stale
            })
            .filter_map(|item| Some((item, item.value()?)))
            .collect();
        let check = |item: &Planned<'b>, password: &SecretValue| {
            check_password_import(
                vault,
                item.target,
                password,
                &self.others(item),
                force,
                escrow,
            )
            .map(|found| (item.target, found))
        };
        std::thread::scope(|scope| {
            let asked: Vec<_> = changed
                .iter()
                .map(|(item, password)| scope.spawn(|| check(item, password)))
                .collect();
            asked
                .into_iter()
                .map(|asking| match asking.join() {
                    Ok(found) => found,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        })
    }

    /// The sets the import writes to, in catalog order.
    pub fn target_sets(&self) -> Vec<SetId> {
        let mut sets: Vec<SetId> = self.items.iter().map(|p| p.target.set()).collect();
        sets.sort();
        sets.dedup();
        sets
    }

    /// The changes to write: every name but the unchanged ones; with `force`, names newer
    /// in the store too, else those refuse the whole import.
    pub fn changes(&self, force: bool) -> Result<Vec<Change<'b>>, RecoveryError> {
        let newer = self.newer_in_store();
        if !force && !newer.is_empty() {
            return Err(RecoveryError::NewerInStore(newer));
        }
        let mut changes = Vec::new();
        for item in &self.items {
            if item.outcome == Outcome::Unchanged {
                continue;
            }
            let credential: &'b BundledCredential = item.credential;
            // Each version keeps its time on the cluster that wrote it.
            if carries_history(credential) {
                for version in &credential.versions {
                    changes.push(Change {
                        name: item.target,
                        value: version.value.as_ref(),
                        written_at_ms: Some(version.written_at_ms),
                    });
                }
            } else if let Some(latest) = credential.latest()
                && let Some(value) = &latest.value
            {
                changes.push(Change {
                    name: item.target,
                    value: Some(value),
                    written_at_ms: Some(latest.written_at_ms),
                });
            }
        }
        Ok(changes)
    }
}

/// Whether a credential carries more than its live version, and so its history is written.
fn carries_history(credential: &BundledCredential) -> bool {
    credential.versions.len() > 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::bundle::BundledVersion;
    use crate::store::Action;
    use crate::store::sqlite::SqliteStore;

    fn bundle(entries: &[(&str, &[Option<&str>], i64)]) -> Bundle {
        Bundle {
            created_at_ms: 1,
            created_by: "test".into(),
            history: false,
            credentials: entries
                .iter()
                .map(|(name, values, at)| BundledCredential {
                    name: name.parse().unwrap(),
                    versions: values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| BundledVersion {
                            version: i as u64 + 1,
                            action: if v.is_some() {
                                Action::Update
                            } else {
                                Action::Remove
                            },
                            written_at_ms: *at,
                            value: v.map(|v| SecretValue::new(v.into())),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    fn vault(dir: &std::path::Path) -> CredentialStore {
        CredentialStore::new(
            Box::new(SqliteStore::new(dir.join("s.db"))),
            dir.join("key"),
        )
    }

    #[test]
    fn maps_compares_and_refuses_newer_values() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(dir.path());
        let put = |n: &str, v: &str| {
            vault
                .put(n.parse().unwrap(), &SecretValue::new(v.into()))
                .unwrap()
        };
        put("cio_minio_alt_access_key", "same-access");
        put("cio_minio_alt_secret_key", "newer-secret-in-store");
        let b = bundle(&[
            ("cio_minio_access_key", &[Some("same-access")], 1),
            ("cio_minio_secret_key", &[Some("bundled-secret")], 1),
            ("cio_minio_backup_password", &[Some("bundled password")], 1),
        ]);
        let plan = Plan::new(&b, &vault, true).unwrap();
        let outcomes: Vec<_> = plan
            .items
            .iter()
            .map(|p| (p.target.to_string(), p.outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("cio_minio_alt_access_key".to_string(), Outcome::Unchanged),
                (
                    "cio_minio_alt_secret_key".to_string(),
                    Outcome::NewerInStore
                ),
                ("cio_minio_alt_backup_password".to_string(), Outcome::Create),
            ]
        );
        let err = plan.changes(false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the store holds newer, different values for cio_minio_alt_secret_key"
        );
        let changes = plan.changes(true).unwrap();
        let names: Vec<_> = changes.iter().map(|c| c.name.to_string()).collect();
        assert_eq!(
            names,
            ["cio_minio_alt_secret_key", "cio_minio_alt_backup_password"]
        );
        vault.write_all(&changes).unwrap();
        let history = vault
            .history("cio_minio_alt_secret_key".parse().unwrap())
            .unwrap();
        assert_eq!(history.len(), 2, "the replaced value stays in the history");

        // Without mapping, a bundle value older than the store's is not refused when the
        // store's value is older still.
        let later = bundle(&[("cio_minio_alt_secret_key", &[Some("later")], i64::MAX)]);
        let plan = Plan::new(&later, &vault, false).unwrap();
        assert_eq!(plan.items[0].outcome, Outcome::Update);
    }

    #[test]
    fn a_value_written_between_the_plan_and_the_write_is_not_overwritten() {
        use crate::store::StoreError;
        use crate::store::interleaved::Interleaved;
        let dir = tempfile::tempdir().unwrap();
        vault(dir.path())
            .put(
                "cio_minio_alt_access_key".parse().unwrap(),
                &SecretValue::new("older-access".into()),
            )
            .unwrap();
        let b = bundle(&[
            ("cio_minio_access_key", &[Some("bundled-access")], i64::MAX),
            (
                "cio_minio_backup_password",
                &[Some("bundled password")],
                i64::MAX,
            ),
        ]);
        // The plan (the first reading) finds an older access key and no password; another
        // administrator sets the password before the import writes.
        let other = dir.path().to_path_buf();
        let racing = CredentialStore::new(
            Box::new(Interleaved::new(
                Box::new(SqliteStore::new(dir.path().join("s.db"))),
                2,
                move || {
                    vault(&other)
                        .put(
                            "cio_minio_alt_backup_password".parse().unwrap(),
                            &SecretValue::new("set meanwhile".into()),
                        )
                        .unwrap();
                },
            )),
            dir.path().join("key"),
        );
        let plan = Plan::new(&b, &racing, true).unwrap();
        assert_eq!(plan.newer_in_store(), []);
        let changes = plan.changes(false).unwrap();
        let err = racing
            .write_all_as_seen(&changes, &plan.seen(), Default::default())
            .unwrap_err();
        assert!(
            matches!(&err, crate::Error::Store(StoreError::Conflict { name }) if name == "cio_minio_alt_backup_password"),
            "{err:?}"
        );
        let now = vault(dir.path());
        let live = |n: &str| {
            let e = now.get(n.parse().unwrap()).unwrap().unwrap();
            e.value.expose().to_string()
        };
        assert_eq!(live("cio_minio_alt_backup_password"), "set meanwhile");
        assert_eq!(live("cio_minio_alt_access_key"), "older-access");
        // Planned again, the import sees the value and refuses it as newer.
        let plan = Plan::new(&b, &now, true).unwrap();
        assert_eq!(plan.items[1].outcome, Outcome::Update);
        assert!(
            now.write_all_as_seen(
                &plan.changes(false).unwrap(),
                &plan.seen(),
                Default::default()
            )
            .is_ok()
        );
    }

    #[test]
    fn history_bundles_write_every_version_and_mapping_must_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(dir.path());
        let b = bundle(&[(
            "cio_aws_backup_password",
            &[Some("first password"), None, Some("third password")],
            1,
        )]);
        let plan = Plan::new(&b, &vault, false).unwrap();
        vault.write_all(&plan.changes(false).unwrap()).unwrap();
        let history = vault
            .history("cio_aws_backup_password".parse().unwrap())
            .unwrap();
        let actions: Vec<_> = history.iter().map(|h| h.action).collect();
        assert_eq!(actions, [Action::Create, Action::Remove, Action::Create]);

        let both = bundle(&[
            ("cio_aws_access_key", &[Some("AKIAIOSFODNN7EXAMPLE")], 1),
            ("cio_aws_alt_access_key", &[Some("AKIAIOSFODNN7EXAMPLF")], 1),
        ]);
        let err = Plan::new(&both, &vault, true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the bundle holds the aws primary and the aws alternate set; with --as-alternate both would be written to the aws alternate set"
        );
    }
}
