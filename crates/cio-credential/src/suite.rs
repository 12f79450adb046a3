//! Every shared suite on every backend: the store contract ([`crate::store::suite`]) and the
//! credential-store cases ([`cases`]) run on memory, SQLite and a real etcd member alike, so
//! a backend cannot pass by being tested less (as jj runs its tests per backend).
//!
//! Each case gets a [`Backend`] of its own: stores by place name (the same place is the same
//! store, as another process would see it) and a folder for key files. Faults that only the
//! memory store can inject are tested in [`faults`].

mod cases;
mod faults;
mod journal;
mod model;
mod raw;
mod tamper;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use testkit::etcd::EtcdCluster;

use crate::store::etcd::{EtcdOptions, EtcdSpec, EtcdStore};
use crate::store::memory::MemoryStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, suite};

/// Where a case's stores and key files live.
pub(crate) trait Backend: Sync {
    /// The store at `place`: a new one the first time, the same one after.
    fn open(&self, place: &str) -> Box<dyn Store>;
    /// A folder of the case's own, for key files.
    fn dir(&self) -> &Path;
    /// The store at `place`, edited below cio.
    fn raw(&self, place: &str) -> Box<dyn raw::Raw + '_>;
}

struct Memory {
    dir: tempfile::TempDir,
    stores: Mutex<HashMap<String, MemoryStore>>,
}

impl Backend for Memory {
    fn open(&self, place: &str) -> Box<dyn Store> {
        let mut stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        Box::new(stores.entry(place.to_string()).or_default().clone())
    }
    fn dir(&self) -> &Path {
        self.dir.path()
    }
    fn raw(&self, place: &str) -> Box<dyn raw::Raw + '_> {
        let mut stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        Box::new(raw::MemoryRaw(
            stores.entry(place.to_string()).or_default().clone(),
            Default::default(),
        ))
    }
}

struct Sqlite {
    dir: tempfile::TempDir,
}

impl Backend for Sqlite {
    fn open(&self, place: &str) -> Box<dyn Store> {
        Box::new(SqliteStore::new(
            self.dir.path().join(place).join("credentials.db"),
        ))
    }
    fn dir(&self) -> &Path {
        self.dir.path()
    }
    fn raw(&self, place: &str) -> Box<dyn raw::Raw + '_> {
        Box::new(raw::SqliteRaw(
            self.dir.path().join(place).join("credentials.db"),
        ))
    }
}

struct Etcd<'c> {
    cluster: &'c EtcdCluster,
    /// The case's key prefix: cases share the member, never a key.
    prefix: String,
    dir: tempfile::TempDir,
}

impl Backend for Etcd<'_> {
    fn open(&self, place: &str) -> Box<dyn Store> {
        let url = self.cluster.url(&format!("{}/{place}", self.prefix));
        let Some(spec) = EtcdSpec::parse(&url).expect("the test cluster's URL parses") else {
            panic!("{url} is not an etcd location");
        };
        Box::new(EtcdStore::new(spec, EtcdOptions::default()).expect("no TLS files to read"))
    }
    fn dir(&self) -> &Path {
        self.dir.path()
    }
    fn raw(&self, place: &str) -> Box<dyn raw::Raw + '_> {
        Box::new(raw::EtcdRaw {
            cluster: self.cluster,
            prefix: format!("{}/{place}", self.prefix),
        })
    }
}

type Case = (&'static str, fn(&dyn Backend));

/// The store contract, each check on a fresh store.
const STORE_CASES: &[Case] = &[
    ("store: empty", |b| {
        suite::empty_store_has_nothing(&*b.open("s"))
    }),
    ("store: identity", |b| {
        suite::identity_is_stable(&*b.open("s"))
    }),
    ("store: conditional append", |b| {
        suite::append_is_conditional(&*b.open("s"))
    }),
    ("store: batch append", |b| {
        suite::append_all_is_all_or_nothing(&*b.open("s"))
    }),
    ("store: every record replaced under another key", |b| {
        suite::replace_all_swaps_every_record_the_log_the_notes_and_the_key(&*b.open("s"))
    }),
    ("store: one key", |b| {
        suite::other_keys_are_refused(&*b.open("s"))
    }),
    ("store: remove and purge", |b| {
        suite::removes_are_versions_and_purge_destroys(&*b.open("s"))
    }),
    ("store: change log", |b| {
        suite::log_entries_go_in_with_their_change_or_not_at_all(&*b.open("s"))
    }),
    ("store: notes", |b| suite::notes_are_replaced(&*b.open("s"))),
    ("store: concurrency", |b| {
        suite::concurrent_appends_lose_nothing(|| b.open("s"))
    }),
    ("model: random sequences and concurrent writers", |b| {
        model::check(b, 24)
    }),
];

fn every_case() -> impl Iterator<Item = &'static Case> {
    STORE_CASES
        .iter()
        .chain(cases::CASES)
        .chain(tamper::CASES)
        .chain(journal::CASES)
}

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

#[test]
fn on_memory() {
    for (name, case) in every_case() {
        eprintln!("case {name}");
        case(&Memory {
            dir: temp(),
            stores: Mutex::default(),
        });
    }
}

#[test]
fn on_sqlite() {
    for (name, case) in every_case() {
        eprintln!("case {name}");
        case(&Sqlite { dir: temp() });
    }
}

/// One real etcd member for all cases, each under a prefix of its own.
#[test]
fn on_etcd() {
    let cluster = EtcdCluster::single();
    for (i, (name, case)) in every_case().enumerate() {
        eprintln!("case {name}");
        case(&Etcd {
            cluster: &cluster,
            prefix: format!("/case-{i}"),
            dir: temp(),
        });
    }
}
