//! Model checking: random sequences of create/update, remove, restore and purge, run against
//! every backend (memory, SQLite, a real etcd) and against a plain in-memory model of what
//! the store means; every answer (success or the kind of refusal, version numbers, values,
//! histories, the listing) must be the model's. Between sequential steps, bursts of
//! concurrent writers on several threads (each its own store handle, as separate processes
//! would be): afterwards nothing is lost or duplicated, each writer's writes are in its order,
//! every chain verifies, and the model continues from the history that resulted.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::Backend;
use crate::catalog::CredentialName;
use crate::credentials::{Absence, CredentialStore};
use crate::error::Error;
use crate::secret::SecretValue;
use crate::store::Action;

/// The names the sequences write: MinIO's rules accept any value of 8 characters or more.
const NAMES: [&str; 3] = [
    "cio_minio_secret_key",
    "cio_minio_access_key",
    "cio_minio_backup_password",
];

#[derive(Debug, Clone)]
enum Op {
    Put(usize, u8),
    Remove(usize),
    Restore(usize, Option<u64>),
    Purge(usize),
    /// Threads writing at once: per thread, the names (indexes) it writes, in order.
    Burst(Vec<Vec<usize>>),
}

fn op() -> impl Strategy<Value = Op> {
    let name = 0..NAMES.len();
    prop_oneof![
        4 => (name.clone(), any::<u8>()).prop_map(|(n, v)| Op::Put(n, v)),
        2 => name.clone().prop_map(Op::Remove),
        2 => (name.clone(), proptest::option::of(1u64..6)).prop_map(|(n, v)| Op::Restore(n, v)),
        1 => name.clone().prop_map(Op::Purge),
        1 => proptest::collection::vec(proptest::collection::vec(name, 1..4), 2..4)
            .prop_map(Op::Burst),
    ]
}

/// One version as the model keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    action: Action,
    restored_from: Option<u64>,
    value: Option<String>,
}

/// What the store means: each name's versions, oldest first.
#[derive(Debug, Default)]
struct Model {
    names: BTreeMap<&'static str, Vec<Version>>,
    /// The names ever purged (the change log records each purge).
    purged: BTreeSet<&'static str>,
}

/// What an operation answered: a version number, a count, or the kind of refusal.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Version(u64),
    Count(usize),
    Absent(Absence),
    NoSuchVersion,
    NothingToRestore,
}

impl Model {
    fn live(&self, name: &str) -> Option<&str> {
        self.names.get(name)?.last()?.value.as_deref()
    }

    /// Why `name` holds no value: a name with versions was removed; one without was purged
    /// when it ever was (only a purge empties a history), else never written.
    fn absent(&self, name: &str) -> Answer {
        Answer::Absent(if self.names.get(name).is_some_and(|h| !h.is_empty()) {
            Absence::Removed
        } else if self.purged.contains(name) {
            Absence::Purged
        } else {
            Absence::NeverWritten
        })
    }

    fn push(&mut self, name: &'static str, v: Version) -> Answer {
        let history = self.names.entry(name).or_default();
        history.push(v);
        Answer::Version(history.len() as u64)
    }

    fn put(&mut self, name: &'static str, value: String) -> Answer {
        let action = if self.live(name).is_some() {
            Action::Update
        } else {
            Action::Create
        };
        self.push(
            name,
            Version {
                action,
                restored_from: None,
                value: Some(value),
            },
        )
    }

    fn remove(&mut self, name: &'static str) -> Answer {
        if self.live(name).is_none() {
            return self.absent(name);
        }
        self.push(
            name,
            Version {
                action: Action::Remove,
                restored_from: None,
                value: None,
            },
        )
    }

    fn restore(&mut self, name: &'static str, version: Option<u64>) -> Answer {
        let Some(history) = self.names.get(name).filter(|h| !h.is_empty()) else {
            return self.absent(name);
        };
        let (from, value) = match version {
            Some(n) => {
                let Some(v) = history.get(n as usize - 1) else {
                    return Answer::NoSuchVersion;
                };
                let Some(value) = v.value.clone() else {
                    return Answer::NothingToRestore;
                };
                (n, value)
            }
            None => {
                let current = history.last().and_then(|v| v.value.clone());
                let found = history
                    .iter()
                    .enumerate()
                    .rev()
                    .find(|(_, v)| v.value.is_some() && v.value != current);
                let Some((i, v)) = found else {
                    return Answer::NothingToRestore;
                };
                (i as u64 + 1, v.value.clone().unwrap_or_default())
            }
        };
        self.push(
            name,
            Version {
                action: Action::Restore,
                restored_from: Some(from),
                value: Some(value),
            },
        )
    }

    fn purge(&mut self, name: &'static str) -> Answer {
        match self.names.remove(name) {
            Some(h) if !h.is_empty() => {
                self.purged.insert(name);
                Answer::Count(h.len())
            }
            _ => self.absent(name),
        }
    }
}

fn answer(result: Result<u64, Error>) -> Answer {
    match result {
        Ok(v) => Answer::Version(v),
        Err(Error::Absent { why, .. }) => Answer::Absent(why),
        Err(Error::NoSuchVersion { .. }) => Answer::NoSuchVersion,
        Err(Error::NothingToRestore { .. }) => Answer::NothingToRestore,
        Err(e) => panic!("an answer the model never gives: {e:?}"),
    }
}

fn name(n: &str) -> CredentialName {
    n.parse().expect("a catalog name")
}

/// The store's whole state, read back, in the model's terms.
fn observed(c: &CredentialStore) -> BTreeMap<&'static str, Vec<Version>> {
    let mut out = BTreeMap::new();
    for n in NAMES {
        let history: Vec<Version> = c
            .history(name(n))
            .expect("every history verifies")
            .into_iter()
            .map(|h| Version {
                action: h.action,
                restored_from: h.restored_from,
                value: h.value.map(|v| v.expose().to_string()),
            })
            .collect();
        if !history.is_empty() {
            out.insert(n, history);
        }
    }
    out
}

/// Runs `ops` on the store at `place` and on the model, comparing every answer.
fn run(b: &dyn Backend, place: &str, ops: &[Op]) {
    let c = CredentialStore::new(b.open(place), b.dir().join(format!("{place}.key")));
    let mut model = Model::default();
    let mut serial = 0u32;
    let mut value = |tag: u8| {
        serial += 1;
        format!("value-{serial:05}-{tag:03}")
    };
    for op in ops {
        match op {
            Op::Put(n, tag) => {
                let v = value(*tag);
                let got = answer(
                    c.put(name(NAMES[*n]), &SecretValue::new(v.clone()))
                        .map(|w| w.version),
                );
                assert_eq!(got, model.put(NAMES[*n], v), "{op:?}");
            }
            Op::Remove(n) => {
                let got = answer(c.remove(name(NAMES[*n])));
                assert_eq!(got, model.remove(NAMES[*n]), "{op:?}");
            }
            Op::Restore(n, version) => {
                let got = answer(c.restore(name(NAMES[*n]), *version).map(|w| w.version));
                assert_eq!(got, model.restore(NAMES[*n], *version), "{op:?}");
            }
            Op::Purge(n) => {
                let got = match c.purge(name(NAMES[*n]), false) {
                    Ok(p) => Answer::Count(p.versions),
                    Err(Error::Absent { why, .. }) => Answer::Absent(why),
                    Err(e) => panic!("{op:?}: {e:?}"),
                };
                assert_eq!(got, model.purge(NAMES[*n]), "{op:?}");
            }
            Op::Burst(threads) => {
                let before = observed(&c);
                let mut writes = Vec::new();
                for (t, names) in threads.iter().enumerate() {
                    let mine: Vec<(usize, String)> =
                        names.iter().map(|n| (*n, value(t as u8))).collect();
                    writes.push(mine);
                }
                std::thread::scope(|scope| {
                    for mine in &writes {
                        let store = b.open(place);
                        let key = b.dir().join(format!("{place}.key"));
                        scope.spawn(move || {
                            let c = CredentialStore::new(store, key);
                            for (n, v) in mine {
                                c.put(name(NAMES[*n]), &SecretValue::new(v.clone()))
                                    .expect("a concurrent write lands");
                            }
                        });
                    }
                });
                let after = observed(&c);
                check_burst(&before, &after, &writes);
                model.names = after;
            }
        }
        // Every read agrees with the model after every step.
        for n in NAMES {
            let got = c.get(name(n)).expect("a verified read");
            let got = got.map(|e| (e.version, e.value.expose().to_string()));
            let expected = model
                .live(n)
                .map(|v| (model.names[n].len() as u64, v.to_string()));
            assert_eq!(got, expected, "{n} after {op:?}");
        }
        assert_eq!(observed(&c), model.names, "after {op:?}");
        let listed = c.list().expect("the listing verifies");
        assert!(listed.damaged.is_empty());
        assert_eq!(
            listed.entries.len(),
            NAMES.iter().filter(|n| model.live(n).is_some()).count()
        );
    }
}

/// After a burst: each name's history is its history before, then exactly the burst's writes
/// of it (none lost, none twice), each thread's in its order.
fn check_burst(
    before: &BTreeMap<&'static str, Vec<Version>>,
    after: &BTreeMap<&'static str, Vec<Version>>,
    writes: &[Vec<(usize, String)>],
) {
    for (i, n) in NAMES.iter().enumerate() {
        let old = before.get(n).map_or(&[][..], Vec::as_slice);
        let new = after.get(n).map_or(&[][..], Vec::as_slice);
        assert_eq!(
            &new[..old.len()],
            old,
            "{n}: the history before the burst is kept"
        );
        let added: Vec<&str> = new[old.len()..]
            .iter()
            .map(|v| v.value.as_deref().expect("a put holds a value"))
            .collect();
        let mut expected: Vec<&str> = writes
            .iter()
            .flatten()
            .filter(|(w, _)| *w == i)
            .map(|(_, v)| v.as_str())
            .collect();
        let mut sorted = added.clone();
        sorted.sort();
        expected.sort();
        assert_eq!(sorted, expected, "{n}: every concurrent write, once");
        for mine in writes {
            let order: Vec<&str> = mine
                .iter()
                .filter(|(w, _)| *w == i)
                .map(|(_, v)| v.as_str())
                .collect();
            let seen: Vec<&str> = added
                .iter()
                .copied()
                .filter(|v| order.contains(v))
                .collect();
            assert_eq!(seen, order, "{n}: a writer's writes in its order");
        }
    }
}

/// Runs `cases` random sequences on `b`, each on a store of its own.
pub(super) fn check(b: &dyn Backend, cases: u32) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let case = std::sync::atomic::AtomicU32::new(0);
    runner
        .run(&proptest::collection::vec(op(), 1..24), |ops| {
            let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            run(b, &format!("model-{n}"), &ops);
            Ok(())
        })
        .expect("every answer is the model's");
}
