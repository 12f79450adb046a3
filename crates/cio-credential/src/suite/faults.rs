//! The credential store under faults only the memory store can inject on cue: lost races, a
//! key that got there first, a store that cannot be reached, a damaged record.

use crate::catalog::{CredentialName, Provider};
use crate::credentials::CredentialStore;
use crate::crypto::KeyError;
use crate::error::{Error, ErrorKind};
use crate::secret::SecretValue;
use crate::sets::{Purpose, SetFilter};
use crate::store::memory::{AppendFault, MemoryStore};
use crate::store::{Store, StoreError};

fn name(s: &str) -> CredentialName {
    s.parse().unwrap()
}

fn v(s: &str) -> SecretValue {
    SecretValue::new(s.to_string())
}

fn credentials(store: &MemoryStore, dir: &tempfile::TempDir) -> CredentialStore {
    CredentialStore::new(Box::new(store.clone()), dir.path().join("key"))
}

fn minio_set(c: &CredentialStore) {
    for (n, value) in [
        ("cio_minio_backup_repo", "s3:http://127.0.0.1:9000/bucket"),
        ("cio_minio_access_key", "minio"),
        ("cio_minio_secret_key", "minio-secret"),
        ("cio_minio_backup_password", "a long repository password"),
    ] {
        c.put(name(n), &v(value)).unwrap();
    }
}

#[test]
fn a_lost_race_is_retried_from_a_fresh_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    let c = credentials(&store, &dir);
    store.fail_appends([
        AppendFault::LoseRace,
        AppendFault::LoseRace,
        AppendFault::LoseRace,
    ]);
    let written = c.put(name("cio_minio_access_key"), &v("minio")).unwrap();
    assert_eq!(written.version, 1);
    assert_eq!(store.history("cio_minio_access_key").unwrap().len(), 1);
}

#[test]
fn a_write_that_always_loses_gives_up_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    let c = credentials(&store, &dir);
    store.fail_appends(std::iter::repeat_n(AppendFault::LoseRace, 1000));
    let err = c
        .put(name("cio_minio_access_key"), &v("minio"))
        .unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::Conflict { .. })),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Failed);
    assert_eq!(err.hint(), "try again; nothing was changed");
    assert!(store.list_latest().unwrap().is_empty());
}

#[test]
fn a_key_that_sealed_the_store_first_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    let c = credentials(&store, &dir);
    store.fail_appends([AppendFault::OtherKeyFirst("0123456789abcdef".into())]);
    let err = c
        .put(name("cio_minio_access_key"), &v("minio"))
        .unwrap_err();
    let Error::StoreKey(KeyError::Mismatch {
        store_fingerprint, ..
    }) = &err
    else {
        panic!("not a key mismatch: {err:?}");
    };
    assert_eq!(store_fingerprint, "0123456789abcdef");
    assert_eq!(err.kind(), ErrorKind::Unusable);
    assert!(store.list_latest().unwrap().is_empty());
}

#[test]
fn an_unreachable_store_fails_every_command_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    let c = credentials(&store, &dir);
    minio_set(&c);
    store.set_unavailable(true);
    let unreachable = |r: Result<(), Error>| {
        let err = r.unwrap_err();
        assert!(
            matches!(err, Error::Store(StoreError::Unreachable { .. })),
            "{err:?}"
        );
        assert_eq!(err.kind(), ErrorKind::Unusable);
    };
    unreachable(c.put(name("cio_minio_access_key"), &v("other")).map(drop));
    unreachable(c.get(name("cio_minio_access_key")).map(drop));
    unreachable(c.listing().map(drop));
    unreachable(c.sets(&SetFilter::default(), Purpose::Check).map(drop));
    unreachable(c.remove(name("cio_minio_access_key")).map(drop));
    store.set_unavailable(false);
    let entry = c.get(name("cio_minio_access_key")).unwrap().unwrap();
    assert_eq!((entry.version, entry.value.expose()), (1, "minio"));
}

/// A damaged record stops only what needs it: the listing and the other sets still work.
#[test]
fn a_damaged_record_is_named_and_stops_only_its_own_set() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    let c = credentials(&store, &dir);
    minio_set(&c);
    c.put(name("cio_aws_access_key"), &v("AKIAYHD623GGZX7VDFMJ"))
        .unwrap();
    assert!(store.damage("cio_minio_secret_key", 1));

    let err = c.get(name("cio_minio_secret_key")).unwrap_err();
    assert!(matches!(err, Error::Damaged { .. }), "{err:?}");
    assert!(err.to_string().contains("cio_minio_secret_key"), "{err}");
    let listing = c.listing().unwrap();
    assert_eq!(listing.credentials().len(), 4, "all but the damaged one");
    assert!(!listing.contains(name("cio_minio_secret_key")));
    let aws = SetFilter {
        provider: Some(Provider::Aws),
        ..SetFilter::default()
    };
    let sets = c.sets(&aws, Purpose::Check).unwrap();
    assert_eq!(sets.len(), 1);
    assert!(sets[0].access_key.is_some());
    let minio = SetFilter {
        provider: Some(Provider::Minio),
        ..SetFilter::default()
    };
    assert!(matches!(
        c.sets(&minio, Purpose::Check),
        Err(Error::Damaged { .. })
    ));
}

/// The bug this fixes: `validate` read (and decrypted) the whole store once to learn which
/// names exist, then again for every set.
#[test]
fn choosing_and_opening_sets_reads_the_store_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    let c = credentials(&store, &dir);
    minio_set(&c);
    c.put(name("cio_aws_access_key"), &v("AKIAYHD623GGZX7VDFMJ"))
        .unwrap();
    c.put(name("cio_aws_alt_access_key"), &v("AKIAYHD623GGZX7VDFMJ"))
        .unwrap();
    let before = store.reads();
    let sets = c.sets(&SetFilter::default(), Purpose::Check).unwrap();
    assert_eq!(sets.len(), 3);
    assert_eq!(store.reads() - before, 1);
}
