//! The contract every backend must keep, as checks on a fresh store. `crate::suite` runs
//! them on every backend (memory, SQLite, etcd); a backend's own tests may run them too.
//!
//! A backend keeps bytes: these checks write records whose fields have the right shape
//! (a sealed value and MACs of real lengths) but mean nothing, and manifests that are
//! arbitrary bytes; what they mean is checked above the backend.

use super::{
    Action, LogAppend, LogRecord, ManifestSwap, ReadRecord, Record, Resealed, Store, StoreError,
};

/// A record of `name` at version `v` whose sealed value starts with `tag` (padded to the
/// length of a real one), or a removal.
pub fn record(name: &str, v: u64, action: Action, tag: Option<&[u8]>) -> Record {
    Record {
        name: name.to_string(),
        version: v,
        action,
        restored_from: None,
        written_at_ms: 1_700_000_000_000 + v as i64,
        sealed: tag.map(|t| {
            let mut sealed = t.to_vec();
            sealed.resize(48.max(t.len()), 0);
            sealed
        }),
        seq: v,
        prev_mac: if v == 1 { Vec::new() } else { vec![1; 32] },
        mac: vec![2; 32],
    }
}

/// The first `n` bytes of a read record's sealed value (its tag).
pub fn tag(read: &ReadRecord, n: usize) -> Option<Vec<u8>> {
    let record = read.as_ref().expect("the record decodes");
    record.sealed.as_ref().map(|s| s[..n].to_vec())
}

/// A manifest swap from the store's current manifest to a new one of its own.
pub fn swap(store: &dyn Store) -> ManifestSwap {
    let identity = store
        .identity(false)
        .expect("the store answers")
        .expect("the store has an id");
    let expected = identity.manifest;
    let mut new = expected.clone().unwrap_or_default();
    new.push(b'+');
    ManifestSwap {
        store_id: identity.store_id,
        expected,
        new,
    }
}

/// The store's id, as a write built on a reading of it carries it.
pub fn store_id(store: &dyn Store) -> String {
    store
        .identity(false)
        .expect("the store answers")
        .expect("the store has an id")
        .store_id
}

/// Appends with the current manifest swapped.
pub fn append(
    store: &dyn Store,
    expected: u64,
    record: &Record,
    fingerprint: &str,
) -> Result<(), StoreError> {
    store.append(expected, record, fingerprint, &swap(store))
}

pub fn empty_store_has_nothing(store: &dyn Store) {
    assert!(store.latest("cio_aws_access_key").unwrap().is_none());
    assert!(store.list_latest().unwrap().is_empty());
    assert!(store.history("cio_aws_access_key").unwrap().is_empty());
    assert!(store.read().unwrap().is_none());
}

pub fn identity_is_stable(store: &dyn Store) {
    let a = store.identity(true).unwrap().unwrap();
    let b = store.identity(true).unwrap().unwrap();
    assert_eq!(a, b);
    assert_eq!((a.key_fingerprint, a.manifest), (None, None));
    append(store, 0, &record("n", 1, Action::Create, Some(b"x")), "fp1").unwrap();
    let c = store.identity(false).unwrap().unwrap();
    assert_eq!(c.store_id, a.store_id);
    assert_eq!(c.key_fingerprint.as_deref(), Some("fp1"));
    assert_eq!(c.manifest.as_deref(), Some(&b"+"[..]));
}

pub fn append_is_conditional(store: &dyn Store) {
    store.identity(true).unwrap();
    let n = "cio_minio_access_key";
    append(store, 0, &record(n, 1, Action::Create, Some(b"a")), "fp").unwrap();
    // A second writer that also saw "no version" loses.
    let err = append(store, 0, &record(n, 1, Action::Create, Some(b"b")), "fp").unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    append(store, 1, &record(n, 2, Action::Update, Some(b"c")), "fp").unwrap();
    let err = append(store, 1, &record(n, 2, Action::Update, Some(b"d")), "fp").unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }));
    // A writer that read an earlier manifest loses, even for another name.
    let stale = ManifestSwap {
        store_id: store_id(store),
        expected: Some(b"+".to_vec()),
        new: b"stale".to_vec(),
    };
    let err = store
        .append(
            0,
            &record("other", 1, Action::Create, Some(b"e")),
            "fp",
            &stale,
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert!(store.latest("other").unwrap().is_none());
    let latest = store.latest(n).unwrap().unwrap();
    assert_eq!(latest.as_ref().unwrap().version, 2);
    assert_eq!(tag(&latest, 1).as_deref(), Some(&b"c"[..]));
    let history = store.history(n).unwrap();
    let versions: Vec<u64> = history
        .iter()
        .map(|r| r.as_ref().unwrap().version)
        .collect();
    assert_eq!(versions, vec![1, 2]);
    assert_eq!(tag(&history[0], 1).as_deref(), Some(&b"a"[..]));
    // Records come back as they were written, field for field.
    assert_eq!(
        history[1].as_ref().unwrap(),
        &record(n, 2, Action::Update, Some(b"c"))
    );
    let snapshot = store.read().unwrap().unwrap();
    assert_eq!(snapshot.records, history);
    assert_eq!(snapshot.identity.manifest.as_deref(), Some(&b"++"[..]));
}

pub fn append_all_is_all_or_nothing(store: &dyn Store) {
    store.identity(true).unwrap();
    append(store, 0, &record("b", 1, Action::Create, Some(b"b1")), "fp").unwrap();
    // "b" already has version 1: the whole batch is refused, "a" included.
    let (a1, b1) = (
        record("a", 1, Action::Create, Some(b"a1")),
        record("b", 1, Action::Create, Some(b"x")),
    );
    let err = store
        .append_all(&[(0, &a1), (0, &b1)], "fp", &swap(store))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict { name } if name == "b"),
        "{err:?}"
    );
    assert!(store.latest("a").unwrap().is_none());
    // Several versions of one name and one of another, at once.
    let (a2, b2, b3) = (
        record("a", 2, Action::Update, Some(b"a2")),
        record("b", 2, Action::Update, Some(b"b2")),
        record("b", 3, Action::Update, Some(b"b3")),
    );
    store
        .append_all(
            &[(0, &a1), (1, &b2), (1, &a2), (2, &b3)],
            "fp",
            &swap(store),
        )
        .unwrap();
    let history = |n| {
        store
            .history(n)
            .unwrap()
            .into_iter()
            .map(|v| tag(&v, 2).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(history("a"), [b"a1".to_vec(), b"a2".to_vec()]);
    assert_eq!(
        history("b"),
        [b"b1".to_vec(), b"b2".to_vec(), b"b3".to_vec()]
    );
    // A batch whose versions do not follow each other is refused before anything.
    let err = store
        .append_all(&[(2, &a2)], "fp", &swap(store))
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }));
    // A manifest that moved meanwhile: refused, nothing appended.
    let a3 = record("a", 3, Action::Update, Some(b"a3"));
    let stale = ManifestSwap {
        store_id: store_id(store),
        expected: Some(b"not the manifest".to_vec()),
        new: b"x".to_vec(),
    };
    let err = store.append_all(&[(2, &a3)], "fp", &stale).unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    // Another key: refused, nothing appended.
    let err = store
        .append_all(&[(2, &a3)], "other", &swap(store))
        .unwrap_err();
    assert!(matches!(err, StoreError::KeyMismatch { .. }), "{err:?}");
    assert_eq!(store.latest("a").unwrap().unwrap().unwrap().version, 2);
}

pub fn replace_all_swaps_every_record_the_log_the_notes_and_the_key(store: &dyn Store) {
    store.identity(true).unwrap();
    append(
        store,
        0,
        &record("a", 1, Action::Create, Some(b"a1")),
        "fp1",
    )
    .unwrap();
    append(
        store,
        1,
        &record("a", 2, Action::Update, Some(b"a2")),
        "fp1",
    )
    .unwrap();
    append(
        store,
        0,
        &record("b", 1, Action::Create, Some(b"b1")),
        "fp1",
    )
    .unwrap();
    store.append_log(&next(1)).unwrap();
    store.put_note("check/minio/primary", b"old note").unwrap();
    let records = [
        record("a", 1, Action::Create, Some(b"A1")),
        record("a", 2, Action::Update, Some(b"A2")),
        record("b", 1, Action::Create, Some(b"B1")),
    ];
    let log = [
        LogRecord {
            seq: 1,
            sealed: b"entry 1 re-tagged".to_vec(),
        },
        LogRecord {
            seq: 2,
            sealed: b"the re-seal's entry".to_vec(),
        },
    ];
    let notes = [("check/minio/primary".to_string(), b"new note".to_vec())];
    let whole = Resealed {
        records: &records,
        log: &log,
        log_tail: 1,
        notes: &notes,
    };
    let unchanged = |store: &dyn Store| {
        assert_eq!(
            tag(&store.latest("a").unwrap().unwrap(), 2).as_deref(),
            Some(&b"a2"[..])
        );
        assert_eq!(store.log().unwrap(), vec![entry(1)]);
        assert_eq!(store.notes().unwrap()[0].1, b"old note");
    };
    // A stale manifest: nothing replaced.
    let stale = ManifestSwap {
        store_id: store_id(store),
        expected: Some(b"stale".to_vec()),
        new: b"new".to_vec(),
    };
    let err = store.replace_all(&whole, "fp2", &stale).unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    unchanged(store);
    // A log that grew since it was read: nothing replaced.
    let grown = Resealed {
        log_tail: 0,
        ..whole
    };
    let err = store.replace_all(&grown, "fp2", &swap(store)).unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    unchanged(store);
    store.replace_all(&whole, "fp2", &swap(store)).unwrap();
    let identity = store.identity(false).unwrap().unwrap();
    assert_eq!(identity.key_fingerprint.as_deref(), Some("fp2"));
    assert_eq!(store.log().unwrap(), log.to_vec());
    assert_eq!(store.notes().unwrap(), notes.to_vec());
    let tags: Vec<_> = store
        .read()
        .unwrap()
        .unwrap()
        .records
        .iter()
        .map(|r| tag(r, 2))
        .collect();
    assert_eq!(
        tags,
        [
            Some(b"A1".to_vec()),
            Some(b"A2".to_vec()),
            Some(b"B1".to_vec())
        ]
    );
    // Appends go on under the new key only.
    let a3 = record("a", 3, Action::Update, Some(b"A3"));
    let err = append(store, 2, &a3, "fp1").unwrap_err();
    assert!(matches!(err, StoreError::KeyMismatch { .. }), "{err:?}");
    append(store, 2, &a3, "fp2").unwrap();
}

pub fn other_keys_are_refused(store: &dyn Store) {
    store.identity(true).unwrap();
    append(store, 0, &record("a", 1, Action::Create, Some(b"x")), "fp1").unwrap();
    let err = append(store, 0, &record("b", 1, Action::Create, Some(b"y")), "fp2").unwrap_err();
    assert!(matches!(err, StoreError::KeyMismatch { .. }), "{err:?}");
    assert!(store.latest("b").unwrap().is_none());
}

pub fn removes_are_versions_and_purge_destroys(store: &dyn Store) {
    store.identity(true).unwrap();
    append(store, 0, &record("a", 1, Action::Create, Some(b"x")), "fp").unwrap();
    append(store, 1, &record("a", 2, Action::Remove, None), "fp").unwrap();
    append(store, 0, &record("b", 1, Action::Create, Some(b"y")), "fp").unwrap();
    let latest = store.list_latest().unwrap();
    assert_eq!(
        latest
            .iter()
            .map(|r| r.as_ref().unwrap())
            .map(|v| (v.name.as_str(), v.version, v.is_live()))
            .collect::<Vec<_>>(),
        vec![("a", 2, false), ("b", 1, true)]
    );
    let snapshot = store.read().unwrap().unwrap();
    assert_eq!(snapshot.records, store.all_versions().unwrap());
    assert_eq!(store.all_versions().unwrap().len(), 3);
    // A purge with a stale manifest destroys nothing.
    let stale = ManifestSwap {
        store_id: store_id(store),
        expected: None,
        new: b"stale".to_vec(),
    };
    assert!(matches!(
        store.purge("a", &stale),
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.history("a").unwrap().len(), 2);
    assert_eq!(store.purge("a", &swap(store)).unwrap(), 2);
    assert!(store.latest("a").unwrap().is_none());
    assert!(store.history("a").unwrap().is_empty());
    assert_eq!(store.purge("a", &swap(store)).unwrap(), 0);
    assert!(store.latest("b").unwrap().is_some());
    assert_eq!(
        store.identity(false).unwrap().unwrap().manifest.as_deref(),
        Some(&b"+++++"[..])
    );
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
                        let latest = store
                            .latest("same")
                            .unwrap()
                            .map_or(0, |v| v.unwrap().version);
                        let v = record("same", latest + 1, Action::Update, Some(&[t, i]));
                        match append(&*store, latest, &v, "fp") {
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
    let mut writes: Vec<Vec<u8>> = history.iter().filter_map(|v| tag(v, 2)).collect();
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

/// Entry `seq`, to go right after entry `seq - 1`.
fn next(seq: u64) -> LogAppend {
    LogAppend::next(entry(seq))
}

pub fn log_entries_go_in_with_their_change_or_not_at_all(store: &dyn Store) {
    store.identity(true).unwrap();
    assert_eq!(store.log_tail().unwrap(), None);
    store.append_log(&next(1)).unwrap();
    // Only an entry after the newest one read goes in: a writer that read an older tail
    // loses, and so does one that names an entry not there to go after.
    for stale in [next(1), next(3)] {
        let err = store.append_log(&stale).unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    }
    let n = "cio_aws_access_key";
    let first = record(n, 1, Action::Create, Some(b"a"));
    store
        .append_all_logged(&[(0, &first)], "fp", &swap(store), Some(&next(2)))
        .unwrap();
    // A change whose entry lost the race is not made either.
    let second = record(n, 2, Action::Update, Some(b"b"));
    let err = store
        .append_all_logged(&[(1, &second)], "fp", &swap(store), Some(&next(2)))
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(store.latest(n).unwrap().unwrap().unwrap().version, 1);
    let err = store
        .purge_logged(n, &swap(store), Some(&next(2)))
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert!(store.latest(n).unwrap().is_some(), "nothing purged");
    assert_eq!(
        store.purge_logged(n, &swap(store), Some(&next(3))).unwrap(),
        1
    );
    assert_eq!(store.log().unwrap(), vec![entry(1), entry(2), entry(3)]);
    assert_eq!(store.log_tail().unwrap(), Some(entry(3)));
    // Unlogged changes (migration copies records) leave the log alone.
    append(store, 0, &record("b", 1, Action::Create, Some(b"c")), "fp").unwrap();
    assert_eq!(store.log().unwrap().len(), 3);
    // After a log whose end was deleted (entries 4 and 5, say), the next entry skips their
    // numbers: it goes after the newest entry there, and nothing may lie between.
    let past_gap = |seq, after| LogAppend {
        entry: entry(seq),
        after,
    };
    for refused in [past_gap(6, 2), past_gap(6, 5), past_gap(3, 3)] {
        let err = store.append_log(&refused).unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict { .. }),
            "{refused:?}: {err:?}"
        );
    }
    store.append_log(&past_gap(6, 3)).unwrap();
    assert_eq!(store.log_tail().unwrap(), Some(entry(6)));
    // A writer that read the log before it loses.
    let err = store.append_log(&past_gap(6, 3)).unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(
        store.log().unwrap(),
        vec![entry(1), entry(2), entry(3), entry(6)]
    );
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
