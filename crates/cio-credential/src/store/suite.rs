//! The contract every backend must keep, as checks on a fresh store. `crate::suite` runs
//! them on every backend (memory, SQLite, etcd); a backend's own tests may run them too.

use super::{Action, LogRecord, Record, Store, StoreError};

fn record(name: &str, v: u64, action: Action, sealed: Option<&[u8]>) -> Record {
    Record {
        name: name.to_string(),
        version: v,
        action,
        restored_from: None,
        written_at_ms: 1_700_000_000_000 + v as i64,
        sealed: sealed.map(<[u8]>::to_vec),
    }
}

pub fn empty_store_has_nothing(store: &dyn Store) {
    assert!(store.latest("cio_aws_access_key").unwrap().is_none());
    assert!(store.list_latest().unwrap().is_empty());
    assert!(store.history("cio_aws_access_key").unwrap().is_empty());
}

pub fn identity_is_stable(store: &dyn Store) {
    let a = store.identity(true).unwrap().unwrap();
    let b = store.identity(true).unwrap().unwrap();
    assert_eq!(a, b);
    assert_eq!(a.key_fingerprint, None);
    store
        .append(0, &record("n", 1, Action::Create, Some(b"x")), "fp1")
        .unwrap();
    let c = store.identity(false).unwrap().unwrap();
    assert_eq!(c.store_id, a.store_id);
    assert_eq!(c.key_fingerprint.as_deref(), Some("fp1"));
}

pub fn append_is_conditional(store: &dyn Store) {
    store.identity(true).unwrap();
    let n = "cio_minio_access_key";
    store
        .append(0, &record(n, 1, Action::Create, Some(b"a")), "fp")
        .unwrap();
    // A second writer that also saw "no version" loses.
    let err = store
        .append(0, &record(n, 1, Action::Create, Some(b"b")), "fp")
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    store
        .append(1, &record(n, 2, Action::Update, Some(b"c")), "fp")
        .unwrap();
    let err = store
        .append(1, &record(n, 2, Action::Update, Some(b"d")), "fp")
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }));
    let latest = store.latest(n).unwrap().unwrap();
    assert_eq!(
        (latest.version, latest.sealed.as_deref()),
        (2, Some(&b"c"[..]))
    );
    let history = store.history(n).unwrap();
    assert_eq!(
        history.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(history[0].sealed.as_deref(), Some(&b"a"[..]));
}

pub fn other_keys_are_refused(store: &dyn Store) {
    store.identity(true).unwrap();
    store
        .append(0, &record("a", 1, Action::Create, Some(b"x")), "fp1")
        .unwrap();
    let err = store
        .append(0, &record("b", 1, Action::Create, Some(b"y")), "fp2")
        .unwrap_err();
    assert!(matches!(err, StoreError::KeyMismatch { .. }), "{err:?}");
    assert!(store.latest("b").unwrap().is_none());
}

pub fn removes_are_versions_and_purge_destroys(store: &dyn Store) {
    store.identity(true).unwrap();
    store
        .append(0, &record("a", 1, Action::Create, Some(b"x")), "fp")
        .unwrap();
    store
        .append(1, &record("a", 2, Action::Remove, None), "fp")
        .unwrap();
    store
        .append(0, &record("b", 1, Action::Create, Some(b"y")), "fp")
        .unwrap();
    let latest = store.list_latest().unwrap();
    assert_eq!(
        latest
            .iter()
            .map(|v| (v.name.as_str(), v.version, v.is_live()))
            .collect::<Vec<_>>(),
        vec![("a", 2, false), ("b", 1, true)]
    );
    assert_eq!(store.all_versions().unwrap().len(), 3);
    assert_eq!(store.purge("a").unwrap(), 2);
    assert!(store.latest("a").unwrap().is_none());
    assert!(store.history("a").unwrap().is_empty());
    assert_eq!(store.purge("a").unwrap(), 0);
    assert!(store.latest("b").unwrap().is_some());
}

pub fn concurrent_appends_lose_nothing(make: impl Fn() -> Box<dyn Store> + Sync) {
    make().identity(true).unwrap();
    std::thread::scope(|s| {
        for t in 0..8u8 {
            let make = &make;
            s.spawn(move || {
                let store = make();
                for i in 0..10u8 {
                    loop {
                        let latest = store.latest("same").unwrap().map_or(0, |v| v.version);
                        let v = record("same", latest + 1, Action::Update, Some(&[t, i]));
                        match store.append(latest, &v, "fp") {
                            Ok(()) => break,
                            Err(StoreError::Conflict { .. }) => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            });
        }
    });
    let history = make().history("same").unwrap();
    assert_eq!(history.len(), 80);
    let mut writes: Vec<Vec<u8>> = history.into_iter().filter_map(|v| v.sealed).collect();
    writes.sort();
    writes.dedup();
    assert_eq!(writes.len(), 80, "every write is kept exactly once");
}

fn entry(seq: u64) -> LogRecord {
    LogRecord {
        seq,
        sealed: vec![seq as u8; 40],
    }
}

pub fn log_entries_go_in_with_their_change_or_not_at_all(store: &dyn Store) {
    store.identity(true).unwrap();
    assert_eq!(store.log_tail().unwrap(), None);
    store.append_log(&entry(1)).unwrap();
    // Only the next number goes in: a writer that read an older tail loses.
    for stale in [entry(1), entry(3)] {
        let err = store.append_log(&stale).unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    }
    let n = "cio_aws_access_key";
    store
        .append_logged(
            0,
            &record(n, 1, Action::Create, Some(b"a")),
            "fp",
            Some(&entry(2)),
        )
        .unwrap();
    // A change whose entry lost the race is not made either.
    let err = store
        .append_logged(
            1,
            &record(n, 2, Action::Update, Some(b"b")),
            "fp",
            Some(&entry(2)),
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(store.latest(n).unwrap().unwrap().version, 1);
    let err = store.purge_logged(n, Some(&entry(2))).unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert!(store.latest(n).unwrap().is_some(), "nothing purged");
    assert_eq!(store.purge_logged(n, Some(&entry(3))).unwrap(), 1);
    assert_eq!(store.log().unwrap(), vec![entry(1), entry(2), entry(3)]);
    assert_eq!(store.log_tail().unwrap(), Some(entry(3)));
    // Unlogged changes (migration copies records) leave the log alone.
    store
        .append(0, &record("b", 1, Action::Create, Some(b"c")), "fp")
        .unwrap();
    assert_eq!(store.log().unwrap().len(), 3);
}

pub fn notes_are_replaced(store: &dyn Store) {
    store.identity(true).unwrap();
    assert!(store.notes().unwrap().is_empty());
    store.put_note("check/minio/primary", b"one").unwrap();
    store.put_note("check/aws/alternate", b"two").unwrap();
    store.put_note("check/minio/primary", b"three").unwrap();
    assert_eq!(
        store.notes().unwrap(),
        vec![
            ("check/aws/alternate".to_string(), b"two".to_vec()),
            ("check/minio/primary".to_string(), b"three".to_vec()),
        ]
    );
}
