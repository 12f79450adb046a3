//! A store changed record by record, below cio, is refused for what was changed and answers
//! for everything else; a whole earlier copy of it is read as what it is. Run on every
//! backend: the SQLite file edited with rusqlite, etcd's keys with `etcdctl`.

use super::raw::{Field, Meta};
use super::{Backend, Case};
use crate::catalog::CredentialName;
use crate::credentials::CredentialStore;
use crate::crypto::KeyError;
use crate::error::{Error, ErrorKind};
use crate::integrity::Damage;
use crate::secret::SecretValue;
use crate::sets::{Purpose, SetFilter};
use crate::store::{Action, LogAppend, LogRecord, ManifestSwap, StoreError};

pub(super) const CASES: &[Case] = &[
    (
        "tamper: the newest version removed",
        the_newest_version_removed_is_refused,
    ),
    ("tamper: a field changed", a_changed_field_is_refused),
    (
        "tamper: versions deleted, reordered, duplicated, replaced",
        a_broken_history_is_refused,
    ),
    (
        "tamper: impossible stored values",
        impossible_stored_values_are_refused,
    ),
    (
        "tamper: the store id, fingerprint and manifest",
        the_store_identity_cannot_be_removed_or_replaced,
    ),
    (
        "tamper: a whole earlier copy is a backup",
        a_whole_earlier_copy_reads_as_itself,
    ),
    (
        "tamper: one name put back from an earlier copy",
        one_name_put_back_is_refused,
    ),
    (
        "tamper: one name and the manifest put back, the log kept",
        a_name_and_manifest_put_back_are_told_by_the_log,
    ),
    (
        "tamper: purge checks the key",
        purge_checks_the_key_as_remove_does,
    ),
    (
        "tamper: a write read before the store id changed",
        a_write_read_before_the_store_id_changed_is_refused,
    ),
    (
        "tamper: a manifest altered after a reading is checked again",
        a_manifest_altered_after_a_reading_is_checked_again,
    ),
];

const X: &str = "cio_minio_secret_key";

fn name(s: &str) -> CredentialName {
    s.parse().unwrap()
}

fn v(s: &str) -> SecretValue {
    SecretValue::new(s.to_string())
}

fn credentials(b: &dyn Backend) -> CredentialStore {
    CredentialStore::new(b.open("s"), b.dir().join("key"))
}

/// A complete MinIO set whose secret key was rotated twice (versions 1 to 3), and an AWS
/// access key.
fn setup(b: &dyn Backend) -> CredentialStore {
    let c = credentials(b);
    for (n, value) in [
        ("cio_minio_backup_repo", "s3:http://127.0.0.1:9000/bucket"),
        ("cio_minio_access_key", "minio"),
        (X, "rotated-out-secret-1"),
        (X, "rotated-out-secret-2"),
        (X, "current-secret-3"),
        ("cio_minio_backup_password", "a long repository password"),
        ("cio_aws_access_key", "AKIAYHD623GGZX7VDFMJ"),
    ] {
        c.put(name(n), &v(value)).unwrap();
    }
    c
}

/// `name` is refused, with a damage for which `expect` holds; every other credential still
/// answers, and the hint (purge, then create) repairs it.
fn refused_alone(b: &dyn Backend, n: &str, expect: impl Fn(&Damage) -> bool) {
    let c = credentials(b);
    let err = c.get(name(n)).unwrap_err();
    let Error::Damaged {
        name: damaged,
        damage,
    } = &err
    else {
        panic!("{n}: not refused as damaged: {err:?}");
    };
    assert_eq!(damaged, n);
    assert!(expect(damage), "{n}: {damage:?}");
    assert_eq!(err.kind(), ErrorKind::Unusable);
    assert!(
        err.to_string()
            .starts_with(&format!("{n} cannot be trusted: "))
    );
    assert!(
        err.hint()
            .contains(&format!("cio credential remove --purge {n}")),
        "{}",
        err.hint()
    );
    assert!(matches!(c.history(name(n)), Err(Error::Damaged { .. })));
    assert!(matches!(
        c.restore(name(n), Some(1)),
        Err(Error::Damaged { .. })
    ));
    assert!(matches!(
        c.put(name(n), &v("another-value")),
        Err(Error::Damaged { .. })
    ));
    // Every other credential still lists, shows and hands over.
    let listed = c.list().unwrap();
    assert_eq!(listed.damaged.len(), 1);
    assert!(listed.entries.iter().all(|e| e.name.to_string() != n));
    assert!(listed.entries.len() >= 3, "{:?}", listed.entries);
    let aws = c.get(name("cio_aws_access_key")).unwrap().unwrap();
    assert_eq!(aws.value.expose(), "AKIAYHD623GGZX7VDFMJ");
    let other_set = SetFilter {
        name: Some(name("cio_aws_access_key")),
        ..SetFilter::default()
    };
    assert_eq!(c.sets(&other_set, Purpose::Check).unwrap().len(), 1);
    let its_set = SetFilter {
        name: Some(name(n)),
        ..SetFilter::default()
    };
    if n.starts_with("cio_minio") {
        assert!(matches!(
            c.sets(&its_set, Purpose::Use),
            Err(Error::Damaged { .. })
        ));
    }
    // The hint works: purge, then create again.
    c.purge(name(n), false).unwrap();
    c.put(name(n), &v("new-secret-after-repair")).unwrap();
    assert_eq!(
        c.get(name(n)).unwrap().unwrap().value.expose(),
        "new-secret-after-repair"
    );
    assert!(c.list().unwrap().damaged.is_empty());
}

fn store_refused(b: &dyn Backend) -> Error {
    let c = credentials(b);
    let err = c.get(name("cio_aws_access_key")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unusable, "{err:?}");
    for other in [
        c.list().map(drop),
        c.put(name("cio_aws_backup_repo"), &v("s3:host/bucket"))
            .map(drop),
        c.purge(name(X), false).map(drop),
    ] {
        assert_eq!(other.unwrap_err().kind(), ErrorKind::Unusable);
    }
    err
}

fn the_newest_version_removed_is_refused(b: &dyn Backend) {
    setup(b);
    // To bring back a rotated-out secret.
    b.raw("s").delete_version(X, 3);
    refused_alone(b, X, |d| {
        *d == Damage::NotNewest {
            expected: 3,
            found: 2,
        }
    });
    // A removal deleted, to show a removed credential as live.
    let c = credentials(b);
    c.remove(name("cio_minio_access_key")).unwrap();
    assert!(c.get(name("cio_minio_access_key")).unwrap().is_none());
    b.raw("s").delete_version("cio_minio_access_key", 2);
    refused_alone(b, "cio_minio_access_key", |d| {
        matches!(d, Damage::NotNewest { .. })
    });
    // Every version of a name deleted.
    let raw = b.raw("s");
    raw.delete_version("cio_aws_access_key", 1);
    let err = credentials(b).get(name("cio_aws_access_key")).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Damaged {
                damage: Damage::Deleted,
                ..
            }
        ),
        "{err:?}"
    );
}

fn a_changed_field_is_refused(b: &dyn Backend) {
    let fields = [
        // A live credential shown as removed.
        Field::Action("remove"),
        Field::Action("restore"),
        Field::Time(1_600_000_000_000),
        Field::RestoredFrom(1),
    ];
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            // Each field on a fresh store: the repair of the previous one wrote a new chain.
            credentials(b).purge(name(X), false).unwrap();
            let c = credentials(b);
            for value in [
                "rotated-out-secret-1",
                "rotated-out-secret-2",
                "current-secret-3",
            ] {
                c.put(name(X), &v(value)).unwrap();
            }
        } else {
            setup(b);
        }
        b.raw("s").set_field(X, 3, field);
        refused_alone(b, X, |d| {
            matches!(d, Damage::Altered(3) | Damage::Unreadable(_))
        });
    }
}

fn a_broken_history_is_refused(b: &dyn Backend) {
    type Edit = fn(&dyn super::raw::Raw);
    let edits: [(&str, Edit); 5] = [
        ("a middle version deleted", |r| r.delete_version(X, 2)),
        ("two versions swapped", |r| {
            r.copy_version((X, 1), ("cio_aws_backup_repo", 9));
            r.copy_version((X, 2), (X, 1));
            r.copy_version(("cio_aws_backup_repo", 9), (X, 2));
            r.delete_version("cio_aws_backup_repo", 9);
        }),
        ("a version duplicated", |r| r.copy_version((X, 2), (X, 3))),
        ("a version replaced by another name's", |r| {
            r.copy_version(("cio_minio_access_key", 1), (X, 1))
        }),
        ("a version renumbered", |r| {
            r.set_field(X, 3, Field::Version(4))
        }),
    ];
    for (i, (what, edit)) in edits.into_iter().enumerate() {
        if i == 0 {
            setup(b);
        } else {
            let c = credentials(b);
            for value in [
                "rotated-out-secret-1",
                "rotated-out-secret-2",
                "current-secret-3",
            ] {
                c.put(name(X), &v(value)).unwrap();
            }
        }
        edit(&*b.raw("s"));
        eprintln!("  {what}");
        refused_alone(b, X, |_| true);
        // Back to no X for the next edit.
        credentials(b).purge(name(X), false).unwrap();
    }
}

fn impossible_stored_values_are_refused(b: &dyn Backend) {
    let fields = [
        Field::Action("rename"),
        Field::Time(i64::MAX),
        Field::Time(253_402_300_800_000),
        Field::Time(i64::MIN),
        Field::Version(i64::MAX as u64 - 1),
        // A record format this cio does not know refused the whole etcd store.
        Field::Format(3),
    ];
    setup(b);
    for field in fields {
        b.raw("s").set_field(X, 3, field);
        refused_alone(b, X, |_| true);
        let c = credentials(b);
        c.purge(name(X), false).unwrap();
        for value in [
            "rotated-out-secret-1",
            "rotated-out-secret-2",
            "current-secret-3",
        ] {
            c.put(name(X), &v(value)).unwrap();
        }
    }
}

fn the_store_identity_cannot_be_removed_or_replaced(b: &dyn Backend) {
    setup(b);
    let raw = b.raw("s");
    for which in [Meta::KeyFingerprint, Meta::Manifest, Meta::StoreId] {
        let kept = raw.meta(which).unwrap();
        raw.set_meta(which, None);
        let err = store_refused(b);
        assert!(
            matches!(err, Error::Store(StoreError::Corrupt { .. })),
            "{which:?} removed: {err:?}"
        );
        // Nothing was written meanwhile, and no new key was made.
        assert_eq!(raw.meta(which), None);
        raw.set_meta(which, Some(&kept));
        credentials(b).get(name(X)).unwrap().unwrap();
    }
    // Replaced: the fingerprint of another key, another store's id, a manifest from before
    // the last write.
    let fingerprint = raw.meta(Meta::KeyFingerprint).unwrap();
    raw.set_meta(Meta::KeyFingerprint, Some(b"0123456789abcdef"));
    assert!(matches!(
        store_refused(b),
        Error::StoreKey(KeyError::Mismatch { .. })
    ));
    // Replaced by text that is no fingerprint (of any length, with terminal escapes): damage,
    // refused before it is compared with the key file's or quoted.
    for altered in [
        &b"\x1b[31mEVIL\x07"[..],
        &[b'a'; 5000][..],
        b"0123456789ABCDEF",
    ] {
        raw.set_meta(Meta::KeyFingerprint, Some(altered));
        let err = store_refused(b);
        assert!(
            matches!(err, Error::Store(StoreError::Corrupt { .. })),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .ends_with("its record of the key's fingerprint is not a fingerprint"),
            "{err}"
        );
    }
    raw.set_meta(Meta::KeyFingerprint, Some(&fingerprint));
    let id = raw.meta(Meta::StoreId).unwrap();
    raw.set_meta(Meta::StoreId, Some(b"00000000000000000000000000000000"));
    assert!(matches!(
        store_refused(b),
        Error::Store(StoreError::Corrupt { .. })
    ));
    raw.set_meta(Meta::StoreId, Some(&id));
    let before = raw.meta(Meta::Manifest).unwrap();
    credentials(b)
        .put(
            name("cio_aws_secret_key"),
            &v("0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8vZd"),
        )
        .unwrap();
    raw.set_meta(Meta::Manifest, Some(&before));
    let err = store_refused(b);
    assert!(
        err.to_string().contains("was written after its manifest"),
        "{err}"
    );
}

fn a_whole_earlier_copy_reads_as_itself(b: &dyn Backend) {
    let c = setup(b);
    let raw = b.raw("s");
    let backup = raw.save();
    c.put(name(X), &v("newer-secret-4")).unwrap();
    c.purge(name("cio_aws_access_key"), false).unwrap();
    c.put(name("cio_aws_backup_repo"), &v("s3:host/bucket"))
        .unwrap();
    raw.put_back(&backup);
    let c = credentials(b);
    assert_eq!(
        c.get(name(X)).unwrap().unwrap().value.expose(),
        "current-secret-3"
    );
    assert!(
        c.get(name("cio_aws_access_key")).unwrap().is_some(),
        "purged after the backup"
    );
    assert!(
        c.get(name("cio_aws_backup_repo")).unwrap().is_none(),
        "created after the backup"
    );
    assert!(c.list().unwrap().damaged.is_empty());
    assert_eq!(c.history(name(X)).unwrap().len(), 3);
    // And it keeps working.
    c.put(name(X), &v("after-restore-4")).unwrap();
    assert_eq!(c.get(name(X)).unwrap().unwrap().version, 4);
}

fn one_name_put_back_is_refused(b: &dyn Backend) {
    let c = setup(b);
    let raw = b.raw("s");
    let backup = raw.save();
    c.put(name(X), &v("newer-secret-4")).unwrap();
    raw.put_back_name(&backup, X);
    refused_alone(b, X, |d| {
        *d == Damage::NotNewest {
            expected: 4,
            found: 3,
        }
    });
    // A purged name's versions put back.
    let c = credentials(b);
    let backup = raw.save();
    c.purge(name("cio_minio_access_key"), false).unwrap();
    raw.put_back_name(&backup, "cio_minio_access_key");
    let err = c.get(name("cio_minio_access_key")).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Damaged {
                damage: Damage::PutBack(1),
                ..
            }
        ),
        "{err:?}"
    );
}

/// The review's finding: the newest version of a name deleted (a rotation undone) together
/// with the manifest put back from an earlier copy, nothing else written since: the records
/// and the manifest agree, and only the change log, which stayed, shows the later write.
/// Every command on every name is refused; with the log put back too, it is a whole earlier
/// copy (a_whole_earlier_copy_reads_as_itself).
fn a_name_and_manifest_put_back_are_told_by_the_log(b: &dyn Backend) {
    let c = setup(b);
    let raw = b.raw("s");
    let backup = raw.save();
    let manifest = raw.meta(Meta::Manifest).unwrap();
    let log_before = c.change_log().unwrap().entries.len();
    c.put(name(X), &v("rotated-secret-4")).unwrap();
    raw.put_back_name(&backup, X);
    raw.set_meta(Meta::Manifest, Some(&manifest));
    let err = store_refused(b);
    assert_eq!(
        err.to_string(),
        format!(
            "the credential store {} is damaged: its change log has entry {}, written after its manifest (which ends at entry {log_before}): the manifest was put back from an earlier copy, so any credential may have been rolled back",
            b.open("s").location(),
            log_before + 1
        )
    );
    let c = credentials(b);
    assert!(matches!(
        c.get(name(X)).unwrap_err(),
        Error::Store(StoreError::RolledBack { .. })
    ));
    assert!(c.list().is_err());
    assert!(matches!(
        c.put(name("cio_aws_region"), &v("us-east-1")).unwrap_err(),
        Error::Store(StoreError::RolledBack { .. })
    ));
    // The log alone is whole, and newer than the credentials: its check says they disagree
    // (it said the log was whole), from the first entry the credentials lack.
    let log = c.change_log().unwrap();
    assert_eq!(
        log.broken,
        Some(crate::audit::Broken {
            seq: log_before as u64 + 1,
            problem: crate::audit::Problem::CredentialsOlder,
            through: None,
        })
    );
    // The final review's finding: an entry that is no cio's after the genuine one hid it
    // (only the newest entry was looked at).
    b.open("s")
        .append_log(&LogAppend::next(LogRecord {
            seq: log_before as u64 + 2,
            sealed: vec![7; 64],
        }))
        .unwrap();
    assert_eq!(store_refused(b).to_string(), err.to_string());
}

fn purge_checks_the_key_as_remove_does(b: &dyn Backend) {
    setup(b);
    let key = b.dir().join("key");
    let bytes = std::fs::read(&key).unwrap();
    let mode = |m| std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(m));
    // Readable by others.
    mode(0o644).unwrap();
    for err in [
        credentials(b).purge(name(X), false).unwrap_err(),
        credentials(b).remove(name(X)).unwrap_err(),
    ] {
        assert!(
            matches!(err, Error::StoreKey(KeyError::Permissions { .. })),
            "{err:?}"
        );
    }
    mode(0o600).unwrap();
    // Missing.
    std::fs::remove_file(&key).unwrap();
    for err in [
        credentials(b).purge(name(X), false).unwrap_err(),
        credentials(b).remove(name(X)).unwrap_err(),
    ] {
        assert!(
            matches!(err, Error::StoreKey(KeyError::Missing { .. })),
            "{err:?}"
        );
    }
    assert!(!key.exists(), "no key was made");
    // Another key.
    crate::crypto::create_key(&key).unwrap();
    for err in [
        credentials(b).purge(name(X), false).unwrap_err(),
        credentials(b).remove(name(X)).unwrap_err(),
    ] {
        assert!(
            matches!(err, Error::StoreKey(KeyError::Mismatch { .. })),
            "{err:?}"
        );
    }
    std::fs::remove_file(&key).unwrap();
    std::fs::write(&key, bytes).unwrap();
    mode(0o600).unwrap();
    // Nothing was destroyed.
    assert_eq!(credentials(b).history(name(X)).unwrap().len(), 3);
}

/// A write is sealed for the store it read: a store whose id changed between the read and
/// the write (another store's file or keys put in its place, its id edited) refuses it, even
/// when neither has a manifest yet. The swap compared only the manifest, so such a write went
/// in, sealed for the old id, and left a store every reading refuses.
fn a_write_read_before_the_store_id_changed_is_refused(b: &dyn Backend) {
    let store = b.open("s");
    let read = store.identity(true).unwrap().unwrap();
    let raw = b.raw("s");
    let other = b"00000000000000000000000000000000";
    let swap = |expected: Option<&[u8]>, new: &[u8]| ManifestSwap {
        store_id: read.store_id.clone(),
        expected: expected.map(<[u8]>::to_vec),
        new: new.to_vec(),
    };
    let first = crate::store::suite::record(X, 1, Action::Create, Some(b"x"));
    raw.set_meta(Meta::StoreId, Some(other));
    let err = store
        .append(0, &first, "fp", &swap(None, b"m"))
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert!(store.latest(X).unwrap().is_none());
    assert_eq!(raw.meta(Meta::Manifest), None);
    // With a manifest: the id changed alone.
    raw.set_meta(Meta::StoreId, Some(read.store_id.as_bytes()));
    store.append(0, &first, "fp", &swap(None, b"m")).unwrap();
    raw.set_meta(Meta::StoreId, Some(other));
    let second = crate::store::suite::record(X, 2, Action::Update, Some(b"y"));
    let err = store
        .append(1, &second, "fp", &swap(Some(b"m"), b"m2"))
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let err = store
        .purge_logged(X, &swap(Some(b"m"), b"m2"), None)
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(raw.meta(Meta::Manifest).as_deref(), Some(&b"m"[..]));
    assert_eq!(store.history(X).unwrap().len(), 1);
}

/// A command verifies the manifest once per reading and answers a later look at the same
/// identity (the notes', for `list`'s checks) from that: a manifest changed below cio in
/// between is another identity, checked again and refused, by the same command.
fn a_manifest_altered_after_a_reading_is_checked_again(b: &dyn Backend) {
    let c = setup(b);
    c.list().unwrap();
    c.checks().unwrap();
    let raw = b.raw("s");
    let kept = raw.meta(Meta::Manifest).unwrap();
    let mut altered = kept.clone();
    let last = altered.iter().rposition(u8::is_ascii_hexdigit).unwrap();
    altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
    raw.set_meta(Meta::Manifest, Some(&altered));
    let err = c.checks().unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::Corrupt { .. })),
        "{err:?}"
    );
    raw.set_meta(Meta::Manifest, Some(&kept));
    assert!(c.checks().unwrap().records.is_empty());
    c.list().unwrap();
}
