//! The credential-store cases: what every command relies on, whatever the backend.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::{Backend, Case};
use crate::catalog::{CredentialName, Provider, Role, SetId};
use crate::credentials::{Absence, CredentialStore, EarlierRevisions};
use crate::crypto::{KeyError, create_key};
use crate::error::{Error, ErrorKind};
use crate::handoff::Handoff;
use crate::secret::SecretValue;
use crate::sets::{Purpose, SetFilter};
use crate::store::interleaved::Interleaved;
use crate::store::{Action, StoreError};

pub(super) const CASES: &[Case] = &[
    (
        "credentials: put, get, remove, restore",
        put_get_update_remove_restore,
    ),
    (
        "credentials: a bad value changes nothing",
        bad_values_change_nothing,
    ),
    (
        "credentials: a wrong or missing key",
        a_wrong_or_missing_key_is_named,
    ),
    (
        "credentials: a rekey while a command runs",
        a_rekey_meanwhile_is_no_wrong_key,
    ),
    (
        "credentials: the listing opens nothing",
        the_listing_opens_no_value,
    ),
    ("credentials: the set to hand over", the_set_to_hand_over),
    ("credentials: the sets to check", the_sets_to_check),
    (
        "credentials: concurrent writers",
        concurrent_writers_lose_nothing,
    ),
    (
        "migrate: history, resume, divergence",
        migration_copies_resumes_and_refuses,
    ),
    (
        "migrate: another key",
        migration_refuses_a_target_of_another_key,
    ),
    (
        "migrate: an empty source",
        migration_of_an_empty_source_creates_nothing,
    ),
    (
        "migrate: a target half copied is never read",
        a_target_half_migrated_is_never_read,
    ),
    (
        "migrate: another writer is named",
        migration_names_the_credential_another_writer_changed,
    ),
    (
        "migrate: a stopped migration says what it left",
        a_stopped_migration_says_what_it_left,
    ),
];

fn name(s: &str) -> CredentialName {
    s.parse().unwrap()
}

fn v(s: &str) -> SecretValue {
    SecretValue::new(s.to_string())
}

/// The store at `place` with the key file `key` of the backend's folder.
fn credentials(b: &dyn Backend, place: &str, key: &str) -> CredentialStore {
    CredentialStore::new(b.open(place), b.dir().join(key))
}

fn put(c: &CredentialStore, n: &str, value: &str) {
    c.put(name(n), &v(value)).unwrap();
}

/// The four credentials of a MinIO set (`alt`: "" or "_alt").
fn minio_set(c: &CredentialStore, alt: &str) {
    put(
        c,
        &format!("cio_minio{alt}_backup_repo"),
        "s3:http://127.0.0.1:9000/bucket",
    );
    put(c, &format!("cio_minio{alt}_access_key"), "minio");
    put(c, &format!("cio_minio{alt}_secret_key"), "minio-secret");
    put(
        c,
        &format!("cio_minio{alt}_backup_password"),
        "a long repository password",
    );
}

fn put_get_update_remove_restore(b: &dyn Backend) {
    let c = credentials(b, "s", "key");
    let n = name("cio_minio_secret_key");
    assert!(c.get(n).unwrap().is_none());
    let w = c.put(n, &v("first-secret")).unwrap();
    assert_eq!((w.version, w.action), (1, Action::Create));
    let w = c.put(n, &v("second-secret")).unwrap();
    assert_eq!((w.version, w.action), (2, Action::Update));
    assert_eq!(c.get(n).unwrap().unwrap().value.expose(), "second-secret");
    assert_eq!(c.remove(n).unwrap(), 3);
    assert!(c.get(n).unwrap().is_none());
    assert!(matches!(
        c.remove(n),
        Err(Error::Absent {
            why: Absence::Removed,
            ..
        })
    ));
    let w = c.restore(n, None).unwrap();
    assert_eq!((w.version, w.action), (4, Action::Restore));
    assert_eq!(c.get(n).unwrap().unwrap().value.expose(), "second-secret");
    c.restore(n, None).unwrap();
    assert_eq!(c.get(n).unwrap().unwrap().value.expose(), "first-secret");
    c.restore(n, Some(2)).unwrap();
    assert_eq!(c.get(n).unwrap().unwrap().value.expose(), "second-secret");
    assert!(matches!(
        c.restore(n, Some(99)),
        Err(Error::NoSuchVersion { version: 99, .. })
    ));
    let history = c.history(n).unwrap();
    assert_eq!(history.len(), 6);
    assert!(history[2].value.is_none());
    assert_eq!(history[5].restored_from, Some(2));
    let purged = c.purge(n, false).unwrap();
    let kept = if b.open("s").keeps_revisions() {
        EarlierRevisions::Kept
    } else {
        EarlierRevisions::NotKept
    };
    assert_eq!((purged.versions, purged.earlier_revisions), (6, kept));
    assert!(c.history(n).unwrap().is_empty());
    // The change log says it was purged: every read of it says so, and nothing brings it back.
    for refused in [
        c.purge(n, false).map(|_| ()),
        c.remove(n).map(|_| ()),
        c.restore(n, None).map(|_| ()),
    ] {
        assert!(
            matches!(
                refused,
                Err(Error::Absent {
                    why: Absence::Purged,
                    ..
                })
            ),
            "{refused:?}"
        );
    }
    let never = name("cio_aws_cacert");
    assert!(matches!(
        c.restore(never, None),
        Err(Error::Absent {
            why: Absence::NeverWritten,
            ..
        })
    ));
}

fn bad_values_change_nothing(b: &dyn Backend) {
    let c = credentials(b, "s", "key");
    let err = c
        .put(name("cio_aws_access_key"), &v("not-a-key"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidValue { .. }));
    assert!(
        b.open("s").identity(false).unwrap().is_none(),
        "no store made"
    );
    assert!(!b.dir().join("key").exists(), "no key made");
}

/// The review's finding: a command that read the key file before a `rekey` on the same node
/// (add, switch, re-seal, retire) and wrote after it was told its key file was not the
/// store's, with a hint to copy another key file over a good one. It reads the file again.
fn a_rekey_meanwhile_is_no_wrong_key(b: &dyn Backend) {
    let n = name("cio_minio_access_key");
    let command = credentials(b, "s", "key");
    command.put(n, &v("before the rekey")).unwrap();
    credentials(b, "s", "key").rekey_all().unwrap();
    assert_eq!(
        command.get(n).unwrap().unwrap().value.expose(),
        "before the rekey"
    );
    command.put(n, &v("after the rekey")).unwrap();
    let fresh = credentials(b, "s", "key");
    assert_eq!(
        fresh.get(n).unwrap().unwrap().value.expose(),
        "after the rekey"
    );
    assert!(fresh.change_log().unwrap().broken.is_none());
}

fn a_wrong_or_missing_key_is_named(b: &dyn Backend) {
    let key = b.dir().join("key");
    let n = name("cio_minio_access_key");
    credentials(b, "s", "key").put(n, &v("minio")).unwrap();
    let bytes = fs::read(&key).unwrap();
    fs::remove_file(&key).unwrap();
    let err = credentials(b, "s", "key").list().unwrap_err();
    assert!(
        matches!(err, Error::StoreKey(KeyError::Missing { .. })),
        "{err:?}"
    );
    // Writing does not silently make a new key for old data.
    let err = credentials(b, "s", "key").put(n, &v("other")).unwrap_err();
    assert!(
        matches!(err, Error::StoreKey(KeyError::Missing { .. })),
        "{err:?}"
    );
    assert!(!key.exists());

    create_key(&key).unwrap();
    let err = credentials(b, "s", "key").get(n).unwrap_err();
    assert!(
        matches!(err, Error::StoreKey(KeyError::Mismatch { .. })),
        "{err:?}"
    );
    fs::remove_file(&key).unwrap();
    fs::write(&key, bytes).unwrap();
    fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let c = credentials(b, "s", "key");
    assert_eq!(c.get(n).unwrap().unwrap().value.expose(), "minio");
}

/// The listing opens no value, but it needs the key: every record it lists is verified
/// under it.
fn the_listing_opens_no_value(b: &dyn Backend) {
    let c = credentials(b, "s", "key");
    minio_set(&c, "");
    put(&c, "cio_aws_alt_access_key", "AKIAYHD623GGZX7VDFMJ");
    put(&c, "cio_aws_alt_access_key", "AKIAYHD623GGZX7VDFMK");
    c.remove(name("cio_minio_secret_key")).unwrap();
    let key = fs::read(b.dir().join("key")).unwrap();
    fs::remove_file(b.dir().join("key")).unwrap();
    let err = credentials(b, "s", "key").listing().unwrap_err();
    assert!(
        matches!(err, Error::StoreKey(KeyError::Missing { .. })),
        "{err:?}"
    );
    fs::write(b.dir().join("key"), key).unwrap();
    fs::set_permissions(
        b.dir().join("key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();

    let c = credentials(b, "s", "key");
    let listing = c.listing().unwrap();
    let names: Vec<String> = listing
        .credentials()
        .iter()
        .map(|s| format!("{} v{}", s.name, s.version))
        .collect();
    assert_eq!(
        names,
        [
            "cio_aws_alt_access_key v2",
            "cio_minio_backup_repo v1",
            "cio_minio_access_key v1",
            "cio_minio_backup_password v1",
        ]
    );
    let sets: Vec<(String, Vec<String>)> = listing
        .sets()
        .iter()
        .map(|s| {
            (
                s.set.to_string(),
                s.missing.iter().map(ToString::to_string).collect(),
            )
        })
        .collect();
    assert_eq!(sets[0].0, "aws alternate");
    assert_eq!(
        sets[1],
        ("minio primary".into(), vec!["cio_minio_secret_key".into()])
    );
    let filter = SetFilter {
        provider: Some(Provider::Aws),
        ..SetFilter::default()
    };
    let sets = c.sets(&filter, Purpose::Check).unwrap();
    assert_eq!(sets.len(), 1);
}

fn the_set_to_hand_over(b: &dyn Backend) {
    let c = credentials(b, "s", "key");
    let primary = SetFilter {
        role: Some(Role::Primary),
        ..SetFilter::default()
    };
    let err = c.sets(&primary, Purpose::Use).unwrap_err();
    assert_eq!(
        err.to_string(),
        "there is no primary set: create its four credentials (cio_{aws|minio}_backup_repo, ...) first"
    );
    put(&c, "cio_aws_access_key", "AKIAYHD623GGZX7VDFMJ");
    let err = c.sets(&primary, Purpose::Use).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the aws primary set is incomplete: missing cio_aws_backup_repo, cio_aws_secret_key, cio_aws_backup_password"
    );
    minio_set(&c, "");
    let mut sets = c.sets(&primary, Purpose::Use).unwrap();
    assert_eq!(sets.len(), 1);
    let handoff = Handoff::from(sets.remove(0));
    assert_eq!(handoff.set.provider, Provider::Minio);
    let vars: Vec<_> = handoff.vars.iter().map(|(k, v)| (*k, v.expose())).collect();
    assert_eq!(
        vars,
        [
            ("RESTIC_REPOSITORY", "s3:http://127.0.0.1:9000/bucket"),
            ("AWS_ACCESS_KEY_ID", "minio"),
            ("AWS_SECRET_ACCESS_KEY", "minio-secret"),
            ("RESTIC_PASSWORD", "a long repository password"),
        ]
    );
    let alternate = SetFilter {
        role: Some(Role::Alternate),
        ..SetFilter::default()
    };
    assert!(c.sets(&alternate, Purpose::Use).is_err());
    minio_set(&c, "_alt");
    let sets = c.sets(&alternate, Purpose::Use).unwrap();
    assert_eq!(sets[0].set.role, Role::Alternate);
}

fn the_sets_to_check(b: &dyn Backend) {
    let c = credentials(b, "s", "key");
    minio_set(&c, "");
    put(
        &c,
        "cio_aws_alt_secret_key",
        "0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8vZd",
    );
    let sets = c.sets(&SetFilter::default(), Purpose::Check).unwrap();
    let found: Vec<(SetId, Vec<String>)> = sets
        .iter()
        .map(|s| {
            (
                s.set,
                s.status().missing.iter().map(ToString::to_string).collect(),
            )
        })
        .collect();
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].0.to_string(), "aws alternate");
    assert_eq!(
        found[0].1,
        [
            "cio_aws_alt_backup_repo",
            "cio_aws_alt_access_key",
            "cio_aws_alt_backup_password"
        ]
    );
    assert_eq!(
        sets[0].secret_key.as_ref().map(SecretValue::expose),
        Some("0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8vZd")
    );
    assert!(found[1].1.is_empty());
    assert_eq!(
        sets[1].backup_repo.as_ref().map(SecretValue::expose),
        Some("s3:http://127.0.0.1:9000/bucket")
    );
    let by_name = SetFilter {
        name: Some(name("cio_aws_secret_key")),
        ..SetFilter::default()
    };
    // Never written, as the store's whole change log tells.
    assert!(matches!(
        c.sets(&by_name, Purpose::Check),
        Err(Error::Absent {
            why: crate::Absence::NeverWritten,
            ..
        })
    ));
}

fn concurrent_writers_lose_nothing(b: &dyn Backend) {
    credentials(b, "s", "key")
        .put(name("cio_minio_access_key"), &v("first"))
        .unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            s.spawn(move || {
                let c = credentials(b, "s", "key");
                for i in 0..5 {
                    c.put(name("cio_minio_access_key"), &v(&format!("writer-{t}-{i}")))
                        .unwrap();
                }
            });
        }
    });
    let history = credentials(b, "s", "key")
        .history(name("cio_minio_access_key"))
        .unwrap();
    assert_eq!(history.len(), 21, "every write is a version");
}

fn migration_copies_resumes_and_refuses(b: &dyn Backend) {
    let source = credentials(b, "a", "key");
    let n = name("cio_minio_secret_key");
    source.put(n, &v("first-secret")).unwrap();
    source.put(n, &v("second-secret")).unwrap();
    source.remove(n).unwrap();
    source.restore(n, Some(1)).unwrap();
    put(&source, "cio_minio_access_key", "minio");

    let report = source.migrate_to(&*b.open("b")).unwrap();
    assert_eq!(report.copied(), 5);
    let target = credentials(b, "b", "key");
    assert_eq!(target.history(n).unwrap().len(), 4);
    let again = source.migrate_to(&*b.open("b")).unwrap();
    assert_eq!(again.copied(), 0, "a second run copies nothing");
    assert_eq!(again.names[1].already_there, 4);

    // The target is behind (as after an interrupted migration): the rest is copied.
    source.put(n, &v("third-secret")).unwrap();
    let more = source.migrate_to(&*b.open("b")).unwrap();
    assert_eq!(more.copied(), 1, "only the new version is copied");
    assert_eq!(
        target.get(n).unwrap().unwrap().value.expose(),
        "third-secret"
    );
    let history = target.history(n).unwrap();
    assert_eq!(history[3].restored_from, Some(1));
    assert_eq!(history[3].value.as_ref().unwrap().expose(), "first-secret");
    assert!(history[2].value.is_none());

    // The target diverges: refused, and nothing is written.
    target.put(n, &v("only-in-target")).unwrap();
    source.put(n, &v("only-in-source")).unwrap();
    let err = source.migrate_to(&*b.open("b")).unwrap_err();
    assert!(matches!(err, Error::MigrationRefused { .. }), "{err:?}");
    assert_eq!(
        target.get(n).unwrap().unwrap().value.expose(),
        "only-in-target"
    );

    // The source itself is refused.
    let err = source.migrate_to(&*b.open("a")).unwrap_err();
    assert!(matches!(err, Error::MigrationIntoItself(_)), "{err:?}");
}

/// A target sealed with another key is refused, and the hint works: one key file holding
/// both keys (the review's finding: the hint named --key-file, which then failed the source).
fn migration_refuses_a_target_of_another_key(b: &dyn Backend) {
    let source = credentials(b, "a", "key-a");
    put(&source, "cio_minio_access_key", "minio");
    let other = credentials(b, "b", "key-b");
    put(&other, "cio_minio_secret_key", "other-secret");
    let err = source.migrate_to(&*b.open("b")).unwrap_err();
    assert!(matches!(err, Error::MigrationKeyMissing { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Unusable);
    let key_a = b.dir().join("key-a");
    assert!(
        err.hint().starts_with(&format!(
            "the copy is sealed with the target's key, so one key file must hold the source's key and the target's: join them (cat {} TARGET-KEY-FILE > both.key",
            key_a.display()
        )),
        "{}",
        err.hint()
    );
    // As the hint says: both keys in one file, the source's first.
    let both = b.dir().join("both.key");
    let mut joined = fs::read(&key_a).unwrap();
    joined.extend(fs::read(b.dir().join("key-b")).unwrap());
    fs::write(&both, joined).unwrap();
    fs::set_permissions(&both, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let report = credentials(b, "a", "both.key")
        .migrate_to(&*b.open("b"))
        .unwrap();
    assert_eq!(report.copied(), 1);
    // The target is still sealed with its own key, which alone opens all of it.
    let target = credentials(b, "b", "key-b");
    assert_eq!(
        target
            .get(name("cio_minio_access_key"))
            .unwrap()
            .unwrap()
            .value
            .expose(),
        "minio"
    );
    assert!(target.change_log().unwrap().broken.is_none());
}

/// The review's finding: another writer changing the target while a migration wrote to it
/// was named as the migration's first credential (the store's conflict names its batch's);
/// the credential the other writer changed is named.
fn migration_names_the_credential_another_writer_changed(b: &dyn Backend) {
    let source = credentials(b, "a", "key");
    minio_set(&source, "");
    let target = credentials(b, "b", "key");
    put(&target, "cio_aws_region", "us-east-1");
    let other = credentials(b, "b", "key");
    let raced = Interleaved::new(b.open("b"), 1, move || {
        put(&other, "cio_aws_region", "eu-west-1");
    })
    .before(crate::store::interleaved::Call::LogTail);
    let err = source.migrate_to(&raced).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot migrate: another writer changed cio_aws_region in {} during the migration (the versions copied so far are kept)",
            b.open("b").location()
        )
    );
    assert_eq!(err.kind(), ErrorKind::Failed);
    assert!(
        err.hint()
            .starts_with("run the migration again when nothing else writes to")
    );
    // Nothing of the source was written; running it again copies it.
    assert!(target.get(name("cio_minio_access_key")).unwrap().is_none());
    assert_eq!(source.migrate_to(&*b.open("b")).unwrap().copied(), 4);
}

/// The review's finding (a file-size limit): a migration stopped after it made the target or
/// copied into it said "nothing was changed"; it says what it left, and what to do.
fn a_stopped_migration_says_what_it_left(b: &dyn Backend) {
    let source = credentials(b, "a", "key");
    for i in 1..=60 {
        put(&source, "cio_minio_access_key", &format!("AKEY{i:03}xxxxx"));
    }
    // Stopped at its first write: a new store, made, holding nothing.
    let err = source
        .migrate_to(&Interleaved::stopping_at_write(b.open("c"), 1))
        .unwrap_err();
    let location = b.open("c").location();
    let text = err.to_string();
    assert!(!text.contains("nothing was changed"), "{text}");
    assert!(
        text.ends_with(&format!(
            "; the migration made {location}, a new store with its id and no credential, which stays"
        )),
        "{text}"
    );
    assert!(
        err.hint().ends_with(&format!(
            "; a migration run again keeps what was copied and completes the rest; or delete {location}, which this migration made, to start over"
        )),
        "{}",
        err.hint()
    );
    assert_eq!(err.kind(), ErrorKind::Unusable);
    // Stopped at its second: 48 versions stay.
    let err = source
        .migrate_to(&Interleaved::stopping_at_write(b.open("d"), 2))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::MigrationStopped {
                copied: 48,
                made: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&format!(
            "48 versions were copied into {}, a new store this migration made, before it stopped and stay",
            b.open("d").location()
        )),
        "{err}"
    );
    assert_eq!(source.migrate_to(&*b.open("d")).unwrap().copied(), 12);
}

fn migration_of_an_empty_source_creates_nothing(b: &dyn Backend) {
    let source = credentials(b, "a", "key");
    let report = source.migrate_to(&*b.open("b")).unwrap();
    assert!(report.names.is_empty());
    assert!(b.open("b").identity(false).unwrap().is_none());
    assert!(!Path::new(&b.dir().join("key")).exists());
}

/// The pair a node hands restic from the store (`env`, `exec`): the access key and the secret
/// key, or why it hands none.
fn handed_pair(c: &CredentialStore) -> Result<(String, String), Error> {
    let mut sets = c.sets(&SetFilter::default(), Purpose::Use)?;
    let handoff = Handoff::from(sets.remove(0));
    let var = |wanted: &str| {
        handoff
            .vars
            .iter()
            .find(|(k, _)| *k == wanted)
            .map(|(_, v)| v.expose().to_string())
            .unwrap()
    };
    Ok((var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")))
}

/// That a store a migration has not finished is refused, saying so.
fn assert_unfinished(err: &Error, what: &str) {
    assert!(
        matches!(err, Error::Store(StoreError::MigrationUnfinished { .. })),
        "{what}: {err:?}"
    );
    assert!(
        err.to_string().contains("a migration into it from")
            && err.to_string().contains("did not finish"),
        "{what}: {err}"
    );
    assert_eq!(err.kind(), ErrorKind::Unusable, "{what}");
    assert!(
        err.hint().contains("run the migrate again"),
        "{what}: {}",
        err.hint()
    );
    // The day the source is lost (a dead cluster's etcd): the way that does not need it.
    assert!(
        err.hint().ends_with("if that store is lost, this one holds only part of it: import a recovery bundle into a new store instead (cio credential import BUNDLE, with CIO_STORE naming a new location)"),
        "{what}: {}",
        err.hint()
    );
}

/// The review's report: a migration copies name by name, 48 versions a write, so between two
/// writes (or after a migration stopped there) the target held the newest access key beside
/// an old secret key, and every node handed that mixed pair to restic as a complete set (and
/// `log --verify` passed). A target is now read whole or refused until the last write.
fn a_target_half_migrated_is_never_read(b: &dyn Backend) {
    let source = credentials(b, "a", "key");
    put(
        &source,
        "cio_minio_backup_repo",
        "s3:http://127.0.0.1:9/bucket/repo",
    );
    put(&source, "cio_minio_backup_password", "passwordpassword0");
    for i in 1..=60 {
        put(&source, "cio_minio_access_key", &format!("AKEY{i:03}xxxxx"));
        put(
            &source,
            "cio_minio_secret_key",
            &format!("SKEY{i:03}xxxxxxxx"),
        );
    }
    let newest = ("AKEY060xxxxx".to_string(), "SKEY060xxxxxxxx".to_string());
    assert_eq!(handed_pair(&source).unwrap(), newest);

    // 122 versions, name by name: three writes (48, 48, 26). Another node reads the target
    // between the second and the third (the migration reads it before each write): the
    // access key is then at version 60 and the secret key at 34.
    type Seen = Vec<Result<(String, String), Error>>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let reader = credentials(b, "b", "key");
    let watched = Interleaved::new(b.open("b"), 3, {
        let seen = Arc::clone(&seen);
        move || {
            let mut seen = seen.lock().unwrap();
            seen.push(handed_pair(&reader));
            seen.push(reader.change_log().map(|_| Default::default()));
        }
    });
    let report = source.migrate_to(&watched).unwrap();
    assert_eq!(report.copied(), 122);
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(seen.len(), 2, "the other node read between two writes");
    for (what, read) in ["the pair", "the change log"].iter().zip(&seen) {
        match read {
            Ok(pair) => panic!("{what} was read from a half-copied target: {pair:?}"),
            Err(err) => assert_unfinished(err, what),
        }
    }
    assert_eq!(handed_pair(&credentials(b, "b", "key")).unwrap(), newest);

    // A migration stopped after its second write: nothing reads or changes the target, and
    // running it again copies the rest.
    let stopped = Interleaved::stopping_at_write(b.open("c"), 3);
    let err = source.migrate_to(&stopped).unwrap_err();
    assert!(
        matches!(&err, Error::MigrationStopped { source, copied: 96, .. }
            if matches!(**source, Error::Store(StoreError::Unreachable { .. }))),
        "{err:?}"
    );
    let target = credentials(b, "c", "key");
    assert_unfinished(&handed_pair(&target).unwrap_err(), "the pair");
    assert_unfinished(&target.change_log().unwrap_err(), "the change log");
    assert_unfinished(
        &target.history(name("cio_minio_secret_key")).unwrap_err(),
        "a history",
    );
    assert_unfinished(
        &target
            .put(name("cio_minio_secret_key"), &v("SKEY999xxxxxxxx"))
            .unwrap_err(),
        "a write",
    );
    let report = source.migrate_to(&*b.open("c")).unwrap();
    assert_eq!(report.copied(), 26, "only what the stopped run left");
    assert_eq!(
        report.names.iter().map(|m| m.already_there).sum::<usize>(),
        96
    );
    assert_eq!(handed_pair(&target).unwrap(), newest);
    let log = target.change_log().unwrap();
    assert!(log.broken.is_none(), "{:?}", log.broken);
    assert_eq!(log.entries.len(), 3, "one entry per write");

    // Stopped again, and what was left is purged from the source since: nothing is left to
    // copy, and the run finishes the target as it is.
    let stopped = Interleaved::stopping_at_write(b.open("d"), 3);
    source.migrate_to(&stopped).unwrap_err();
    source.purge(name("cio_minio_secret_key"), false).unwrap();
    let report = source.migrate_to(&*b.open("d")).unwrap();
    assert_eq!(report.copied(), 0);
    let target = credentials(b, "d", "key");
    assert_eq!(
        target.history(name("cio_minio_secret_key")).unwrap().len(),
        34
    );
    assert_eq!(
        target
            .get(name("cio_minio_access_key"))
            .unwrap()
            .unwrap()
            .value
            .expose(),
        "AKEY060xxxxx"
    );
}
