//! Password rotation against the real restic and a real S3 server (s3s-fs), including every
//! state an interrupted rotation can leave (built here step by step with restic itself; the
//! CLI tests kill real runs at random moments).

use std::path::Path;

use testkit::s3::S3Server;

use super::pending::{Pending, Staging};
use super::{OldKey, PasswordRotation, Problem, Stage};
use crate::catalog::CredentialName;
use crate::credentials::CredentialStore;
use crate::error::Error;
use crate::secret::SecretValue;
use crate::store::sqlite::SqliteStore;

const ACCESS: &str = "rotate-access";
const SECRET: &str = "rotate-secret-key-0123";
const OLD: &str = "the old repository password";
const NEW: &str = "the new repository password";

fn name(s: &str) -> CredentialName {
    s.parse().unwrap()
}

fn v(s: &str) -> SecretValue {
    SecretValue::new(s.to_string())
}

/// A repository made by restic, and a store holding its complete minio set.
struct Fixture {
    s3: S3Server,
    url: String,
    dir: tempfile::TempDir,
    store: CredentialStore,
}

impl Fixture {
    fn new() -> Fixture {
        let s3 = S3Server::start(ACCESS, SECRET);
        s3.create_bucket("backups");
        let url = s3.restic_init("backups", "rot", OLD);
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        for (n, value) in [
            ("cio_minio_backup_repo", url.as_str()),
            ("cio_minio_access_key", ACCESS),
            ("cio_minio_secret_key", SECRET),
            ("cio_minio_backup_password", OLD),
        ] {
            store.put(name(n), &v(value)).unwrap();
        }
        Fixture {
            s3,
            url,
            dir,
            store,
        }
    }

    fn stored(&self) -> String {
        let entry = self.store.get(name(PASSWORD)).unwrap().unwrap();
        entry.value.expose().to_string()
    }

    /// The ids restic lists, opened with `password`, and which one it opened.
    fn keys(&self, password: &str) -> (Vec<String>, String) {
        let out = self.s3.restic(
            &self.url,
            password,
            &["key", "list", "--json", "--no-cache"],
        );
        let keys: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        let ids = keys.iter().map(|k| k["id"].as_str().unwrap().to_string());
        let current = keys.iter().find(|k| k["current"] == true).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        (ids.collect(), current)
    }

    /// Whether `password` opens the repository (restic's own answer).
    fn opens(&self, password: &str) -> bool {
        let restic = testkit::require_binary("restic");
        std::process::Command::new(restic)
            .args(["snapshots", "--no-cache", "--json"])
            .env_clear()
            .env("RESTIC_REPOSITORY", &self.url)
            .env("RESTIC_PASSWORD", password)
            .env("AWS_ACCESS_KEY_ID", ACCESS)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .output()
            .unwrap()
            .status
            .success()
    }

    /// `restic key add` of `new`, opened with `password`, as an interrupted run leaves it.
    fn add_key(&self, password: &str, new: &str) {
        let file = self.dir.path().join("new-password");
        std::fs::write(&file, new).unwrap();
        let file = file.to_str().unwrap();
        self.s3.restic(
            &self.url,
            password,
            &["key", "add", "--no-cache", "--new-password-file", file],
        );
    }

    /// The version of the staged record a rotation would stage over now.
    fn staged_version(&self) -> u64 {
        Pending::load(&self.store, name(PASSWORD)).unwrap().version
    }

    fn rotate(&self, new: Option<&str>, keep: bool) -> Result<super::PasswordRotated, Error> {
        self.rotate_escrowed(new, keep, &mut || Ok(()))
    }

    /// [`Fixture::rotate`] with `escrow` as the refresh of the set's recovery bundle.
    fn rotate_escrowed(
        &self,
        new: Option<&str>,
        keep: bool,
        escrow: &mut dyn FnMut() -> Result<(), String>,
    ) -> Result<super::PasswordRotated, Error> {
        let mut stages = Vec::new();
        let rotation =
            PasswordRotation::begin(&self.store, name(PASSWORD), &mut |s| stages.push(s))?;
        let new = new.map(v);
        rotation.run(new.as_ref(), keep, escrow, &mut |s| stages.push(s))
    }
}

const PASSWORD: &str = "cio_minio_backup_password";

fn open(dir: &Path) -> CredentialStore {
    CredentialStore::new(
        Box::new(SqliteStore::new(dir.join("store.db"))),
        dir.join("etc/credential.key"),
    )
}

fn problem(err: Error) -> Problem {
    match err {
        Error::Rotate(e) => e.problem,
        other => panic!("not a rotation error: {other}"),
    }
}

#[test]
fn a_rotation_replaces_the_key_and_keeps_the_old_password_in_the_history() {
    let f = Fixture::new();
    let (before, old_id) = f.keys(OLD);
    assert_eq!(before.len(), 1);
    let done = f.rotate(Some(NEW), false).unwrap();
    assert_eq!(done.old_key, OldKey::Removed { id: old_id });
    assert!(!done.resumed);
    assert_eq!(done.version, 2);
    assert_eq!(f.stored(), NEW);
    let (after, current) = f.keys(NEW);
    assert_eq!(after, vec![done.new_key.clone()]);
    assert_eq!(current, done.new_key);
    assert!(!f.opens(OLD), "the old password's key is gone");
    let history = f.store.history(name(PASSWORD)).unwrap();
    assert_eq!(history[0].value.as_ref().unwrap().expose(), OLD);
    // Nothing staged is left.
    assert!(
        Pending::load(&f.store, name(PASSWORD))
            .unwrap()
            .pending
            .is_none()
    );

    // Again, keeping the old key: both passwords open the repository.
    let third = "a third repository password";
    let done = f.rotate(Some(third), true).unwrap();
    assert!(matches!(done.old_key, OldKey::Kept { .. }));
    assert!(f.opens(NEW) && f.opens(third));
    assert_eq!(f.keys(third).0.len(), 2);
}

/// The review's finding: the escrow bundle was refreshed after the old key was removed, so a
/// rotation killed in between (or whose refresh failed) left in the bucket a bundle whose
/// password opens nothing. The refresh comes first, sees the new password stored, and the
/// old key goes only once it succeeded; the next run refreshes and finishes.
#[test]
fn the_old_key_goes_only_after_the_escrow_bundle_holds_the_new_password() {
    let f = Fixture::new();
    let (_, old_id) = f.keys(OLD);
    let mut seen = Vec::new();
    let err = f
        .rotate_escrowed(Some(NEW), false, &mut || {
            seen.push(f.stored());
            Err("the bucket refused the write (AccessDenied)".into())
        })
        .unwrap_err();
    assert_eq!(seen, [NEW], "refreshed once, with the new password stored");
    let Error::Rotate(e) = err else {
        panic!("not a rotation error")
    };
    assert_eq!(e.stage, Stage::Escrowing);
    assert_eq!(
        format!("{e}. Hint: {}", e.hint()),
        "cio_minio_backup_password: the set's recovery bundle could not be refreshed (the bucket refused the write (AccessDenied)), so the old password's key is kept: a bundle in the bucket holds the old password. Hint: fix what the refresh needs (recovery_recipients in cio.toml, the bucket and its keys; 'cio credential export --to-repository' shows it), then run 'cio credential rotate cio_minio_backup_password' again; cio_minio_backup_password holds the new password, which opens the repository, and the old password's key is kept, so the bundle in the bucket still opens it too; run 'cio credential rotate cio_minio_backup_password' again to refresh the bundle and remove the old key"
    );
    assert_eq!(f.stored(), NEW);
    assert!(f.opens(OLD) && f.opens(NEW), "both keys are there");
    assert!(
        Pending::load(&f.store, name(PASSWORD))
            .unwrap()
            .pending
            .is_some()
    );

    // The next run refreshes, then removes the old key.
    let mut refreshed = 0;
    let done = f
        .rotate_escrowed(None, false, &mut || {
            refreshed += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(refreshed, 1);
    assert!(done.resumed);
    assert_eq!(done.old_key, OldKey::Removed { id: old_id });
    assert_eq!(done.escrow_not_refreshed, None);
    assert!(!f.opens(OLD));

    // Keeping the old key, a failed refresh does not stop the rotation: the old bundle still
    // opens the repository, and the result says why it was not refreshed.
    let third = "a third repository password";
    let done = f
        .rotate_escrowed(Some(third), true, &mut || Err("no network".into()))
        .unwrap();
    assert!(matches!(done.old_key, OldKey::Kept { .. }));
    assert_eq!(done.escrow_not_refreshed.as_deref(), Some("no network"));
    assert!(
        Pending::load(&f.store, name(PASSWORD))
            .unwrap()
            .pending
            .is_none()
    );
}

#[test]
fn an_interrupted_rotation_is_finished_from_every_state() {
    let f = Fixture::new();
    let (_, old_id) = f.keys(OLD);
    let stage = |old_key: Option<&str>| {
        Pending {
            password: v(NEW),
            old_key: old_key.map(str::to_string),
            keep_old_key: false,
            started_ms: 0,
            staged_ms: 0,
            host: None,
        }
        .save(
            &f.store,
            name(PASSWORD),
            f.staged_version(),
            Stage::Checking,
            Staging::Started,
        )
        .unwrap();
    };

    // Staged, the key never added: a new password given now is refused; without one, the
    // staged rotation runs from the start.
    stage(Some(&old_id));
    let err = f.rotate(Some("yet another password"), false).unwrap_err();
    assert!(matches!(problem(err), Problem::Interrupted { .. }));
    assert_eq!(f.stored(), OLD);
    let done = f.rotate(None, false).unwrap();
    assert!(done.resumed);
    assert_eq!(done.old_key, OldKey::Removed { id: old_id });
    assert_eq!((f.stored(), f.keys(NEW).0.len()), (NEW.to_string(), 1));
    // The change log tells one rotation (the review found "started" once per run): it
    // started, this run took it over and staged it again to add the key, and it finished.
    let said: Vec<String> = f
        .store
        .change_log()
        .unwrap()
        .entries
        .into_iter()
        .filter_map(|e| e.detail)
        .map(|d| d.split(" at ").next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        said,
        [
            "started: its new value staged",
            "resumed: the interrupted rotation started",
            "resumed: the rotation started",
            "finished: its staged value removed",
        ]
    );

    // Staged and added, not stored (back to NEW -> third).
    let third = "a third repository password";
    let (_, new_id) = f.keys(NEW);
    Pending {
        password: v(third),
        old_key: Some(new_id.clone()),
        keep_old_key: false,
        started_ms: 0,
        staged_ms: 0,
        host: None,
    }
    .save(
        &f.store,
        name(PASSWORD),
        f.staged_version(),
        Stage::Checking,
        Staging::Started,
    )
    .unwrap();
    f.add_key(NEW, third);
    let done = f.rotate(None, false).unwrap();
    assert_eq!(done.old_key, OldKey::Removed { id: new_id.clone() });
    assert_eq!(f.stored(), third);
    assert!(!f.opens(NEW));

    // Staged, added, stored and the old key removed: only the record is left.
    Pending {
        password: v(third),
        old_key: Some(new_id.clone()),
        keep_old_key: false,
        started_ms: 0,
        staged_ms: 0,
        host: None,
    }
    .save(
        &f.store,
        name(PASSWORD),
        f.staged_version(),
        Stage::Checking,
        Staging::Started,
    )
    .unwrap();
    let done = f.rotate(None, false).unwrap();
    assert_eq!(done.old_key, OldKey::AlreadyGone { id: new_id });
    assert!(
        Pending::load(&f.store, name(PASSWORD))
            .unwrap()
            .pending
            .is_none()
    );
}

#[test]
fn an_old_key_that_cannot_be_told_apart_is_kept() {
    let f = Fixture::new();
    // Another key (someone's own) besides the old password's.
    f.add_key(OLD, "an administrator's own password");
    f.add_key(OLD, NEW);
    // A staged rotation whose run never learnt the old key (added, not stored).
    Pending {
        password: v(NEW),
        old_key: None,
        keep_old_key: false,
        started_ms: 0,
        staged_ms: 0,
        host: None,
    }
    .save(
        &f.store,
        name(PASSWORD),
        f.staged_version(),
        Stage::Checking,
        Staging::Started,
    )
    .unwrap();
    let done = f.rotate(None, false).unwrap();
    assert_eq!(done.old_key, OldKey::Unidentified { other_keys: 2 });
    assert_eq!(f.stored(), NEW);
    assert!(f.opens(OLD) && f.opens(NEW));
}

#[test]
fn bad_rotations_change_nothing() {
    let f = Fixture::new();
    let files = || {
        let mut names: Vec<_> = std::fs::read_dir(f.s3.root().join("backups/rot/keys"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        (names, f.store.history(name(PASSWORD)).unwrap().len())
    };
    let before = files();
    let refused = |n: &str| PasswordRotation::begin(&f.store, name(n), &mut |_| {}).unwrap_err();
    assert!(matches!(
        problem(refused("cio_minio_alt_backup_password")),
        Problem::Alternate
    ));
    assert!(matches!(
        problem(refused("cio_minio_access_key")),
        Problem::NotAPassword
    ));
    assert!(matches!(
        refused("cio_aws_backup_password"),
        Error::IncompleteSet { .. }
    ));
    let err = f.rotate(Some(OLD), false).unwrap_err();
    assert!(matches!(problem(err), Problem::SamePassword));
    // What only create's --allow-whitespace keeps is rotate's own refusal (key add trims).
    let err = f.rotate(Some(" padded password "), false).unwrap_err();
    assert!(matches!(
        problem(err),
        Problem::NotForKeyAdd {
            violation: crate::catalog::RuleViolation::SurroundingWhitespace
        }
    ),);
    // A value no flag lets through is the value rules' refusal.
    let err = f.rotate(Some("pass\0word"), false).unwrap_err();
    assert!(matches!(err, Error::InvalidValue { .. }), "{err}");
    let err = f.rotate(None, false).unwrap_err();
    assert!(matches!(problem(err), Problem::NoNewPassword));
    assert_eq!(files(), before);

    // A repository that does not exist: restic says so, nothing is staged.
    f.store
        .put(
            name("cio_minio_backup_repo"),
            &v(&f.s3.repo_url("backups", "nothing-here")),
        )
        .unwrap();
    let err = f.rotate(Some(NEW), false).unwrap_err();
    let Error::Rotate(e) = err else {
        panic!("not a rotation error")
    };
    assert!(matches!(e.problem, Problem::NoRepository), "{e}");
    assert_eq!(e.stage, Stage::Identifying);
    assert!(e.hint().ends_with("nothing was changed"));
    assert!(
        Pending::load(&f.store, name(PASSWORD))
            .unwrap()
            .pending
            .is_none()
    );
    assert_eq!(f.stored(), OLD);
}

#[test]
fn a_rotation_staged_on_another_node_is_left_to_it_for_a_while() {
    let f = Fixture::new();
    // What node-b staged a moment ago (its rotation may still be running there).
    let json = format!(
        r#"{{"format":1,"password":"{NEW}","old_key":null,"keep_old_key":false,"host":"node-b"}}"#
    );
    f.store
        .stage(
            &format!("{PASSWORD}.rotation"),
            &v(&json),
            0,
            "rotate",
            name(PASSWORD),
            "started".into(),
        )
        .unwrap();
    for new in [None, Some(NEW), Some("a third password")] {
        let err = f.rotate(new, false).unwrap_err();
        let Problem::InProgress { host, minutes_left } = problem(err) else {
            panic!("not refused as in progress elsewhere")
        };
        assert_eq!((host.as_str(), minutes_left), ("node-b", 10));
    }
    assert_eq!(f.stored(), OLD);
    assert!(f.opens(OLD) && !f.opens(NEW));
}

/// Node B of a cluster: the same store, its own copy of the key file (so its own rotation
/// lock), as `etc-b/credential.key` beside the fixture's.
fn node_b(dir: &Path) -> CredentialStore {
    use std::os::unix::fs::PermissionsExt;
    let etc = dir.join("etc-b");
    if !etc.exists() {
        std::fs::create_dir(&etc).unwrap();
        std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::copy(dir.join("etc/credential.key"), etc.join("credential.key")).unwrap();
    }
    CredentialStore::new(
        Box::new(SqliteStore::new(dir.join("store.db"))),
        etc.join("credential.key"),
    )
}

/// Node A: the fixture's store, with `between` run just before its `at`-th reading of it.
fn node_a_racing(
    dir: &Path,
    at: usize,
    between: impl FnOnce() + Send + 'static,
) -> CredentialStore {
    CredentialStore::new(
        Box::new(crate::store::interleaved::Interleaved::new(
            Box::new(SqliteStore::new(dir.join("store.db"))),
            at,
            between,
        )),
        dir.join("etc/credential.key"),
    )
}

/// The reading of the store node A's rotation stages at: `begin` reads it twice (the set,
/// then the staged record), and `restic key list` runs between that and the third reading,
/// the stage's own.
const A_STAGES_AT_READ: usize = 3;

/// The review's finding: two nodes rotating one password at once both read "nothing
/// staged", both staged, and both printed Succeed; the repository kept a key for a password
/// no longer stored. Node B here rotates all the way while node A is between its reading
/// and its staging (after restic named the old key for A): A stages nothing and is refused,
/// before restic learns its password.
#[test]
fn of_two_rotations_at_once_exactly_one_proceeds() {
    let f = Fixture::new();
    let theirs = "node b's new repository password";
    let dir = f.dir.path().to_path_buf();
    let b = node_b(&dir);
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let b_ran = ran.clone();
    let a = node_a_racing(&dir, A_STAGES_AT_READ, move || {
        let rotation = PasswordRotation::begin(&b, name(PASSWORD), &mut |_| {}).unwrap();
        let done = rotation
            .run(Some(&v(theirs)), false, &mut || Ok(()), &mut |_| {})
            .unwrap();
        assert!(matches!(done.old_key, OldKey::Removed { .. }));
        b_ran.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let mut stages = Vec::new();
    let rotation = PasswordRotation::begin(&a, name(PASSWORD), &mut |s| stages.push(s)).unwrap();
    let err = rotation
        .run(Some(&v(NEW)), false, &mut || Ok(()), &mut |s| {
            stages.push(s)
        })
        .unwrap_err();
    assert!(ran.load(std::sync::atomic::Ordering::SeqCst));
    let Error::Rotate(e) = err else {
        panic!("not a rotation error: {err}")
    };
    assert_eq!(e.stage, Stage::Identifying);
    assert!(matches!(e.problem, Problem::RotatedMeanwhile), "{e}");
    assert_eq!(
        format!("{e}. Hint: {}", e.hint()),
        "cio_minio_backup_password: another rotation of this password was started and finished while this one was starting. Hint: 'cio credential history cio_minio_backup_password' shows the password it stored; run 'cio credential rotate cio_minio_backup_password' again only to change it once more; nothing was changed"
    );
    // B's rotation alone: its password stored and the repository's only key.
    assert_eq!(f.stored(), theirs);
    assert_eq!(f.keys(theirs).0.len(), 1);
    assert!(!f.opens(OLD) && !f.opens(NEW));
    assert!(
        Pending::load(&f.store, name(PASSWORD))
            .unwrap()
            .pending
            .is_none()
    );
    // The hint works: a rotation run again now proceeds.
    f.rotate(Some(NEW), false).unwrap();
    assert_eq!((f.stored(), f.keys(NEW).0.len()), (NEW.to_string(), 1));
}

/// As above, node B staging (its rotation still running there) while A is between its
/// reading and its staging: A is refused as a rotation in progress on B, and B's record is
/// left as B staged it (the first finding: A's finish removed it, and B's hint "run rotate
/// again to finish" then found nothing to finish).
#[test]
fn a_rotation_another_node_stages_meanwhile_is_left_to_it() {
    let f = Fixture::new();
    let dir = f.dir.path().to_path_buf();
    let b = node_b(&dir);
    let a = node_a_racing(&dir, A_STAGES_AT_READ, move || {
        let json = format!(
            r#"{{"format":1,"password":"{NEW}","old_key":null,"keep_old_key":false,"host":"node-b"}}"#
        );
        let staged = b
            .stage(
                &format!("{PASSWORD}.rotation"),
                &v(&json),
                0,
                "rotate",
                name(PASSWORD),
                "started".into(),
            )
            .unwrap();
        assert_eq!(staged, Some(1));
    });
    let rotation = PasswordRotation::begin(&a, name(PASSWORD), &mut |_| {}).unwrap();
    let err = rotation
        .run(
            Some(&v("node a's password")),
            false,
            &mut || Ok(()),
            &mut |_| {},
        )
        .unwrap_err();
    let Error::Rotate(e) = err else {
        panic!("not a rotation error: {err}")
    };
    let Problem::InProgress { host, minutes_left } = &e.problem else {
        panic!("not refused as in progress elsewhere: {e}")
    };
    assert_eq!((host.as_str(), *minutes_left), ("node-b", 10));
    assert!(e.hint().ends_with(
        "run 'cio credential rotate cio_minio_backup_password' on node-b to finish it, or here in 10 minutes; nothing was changed"
    ), "{}", e.hint());
    let read = Pending::load(&f.store, name(PASSWORD)).unwrap();
    assert_eq!(read.version, 1);
    assert_eq!(read.pending.unwrap().host.as_deref(), Some("node-b"));
    assert_eq!(f.stored(), OLD);
    assert_eq!(f.keys(OLD).0.len(), 1);
    assert!(!f.opens("node a's password"));
}

/// The second review's finding: a node whose rotation read the stored password, then found
/// it opened no key because another node rotated all the way meanwhile, was told the stored
/// password was wrong (with a hint to overwrite it). It is told the rotation happened.
#[test]
fn a_rotation_finished_elsewhere_after_this_one_read_is_said_so() {
    let f = Fixture::new();
    let dir = f.dir.path().to_path_buf();
    let b = node_b(&dir);
    let a = PasswordRotation::begin(&f.store, name(PASSWORD), &mut |_| {}).unwrap();
    PasswordRotation::begin(&b, name(PASSWORD), &mut |_| {})
        .unwrap()
        .run(Some(&v(NEW)), false, &mut || Ok(()), &mut |_| {})
        .unwrap();
    let err = a
        .run(
            Some(&v("node a's password")),
            false,
            &mut || Ok(()),
            &mut |_| {},
        )
        .unwrap_err();
    let Error::Rotate(e) = err else {
        panic!("not a rotation error: {err}")
    };
    assert!(matches!(e.problem, Problem::RotatedMeanwhile), "{e}");
    assert_eq!(f.stored(), NEW);
    assert_eq!(f.keys(NEW).0.len(), 1);
}

/// The second review's finding: a run on the same host with another key file (another lock)
/// took a live rotation over at once, as if this host's own run had stopped. A record names
/// its node by host and key file, and another key file's run is another node.
#[test]
fn a_rotation_staged_here_with_another_key_file_is_left_to_it() {
    let f = Fixture::new();
    let dir = f.dir.path().to_path_buf();
    let b = node_b(&dir);
    let json = format!(
        r#"{{"format":1,"password":"{NEW}","old_key":null,"keep_old_key":false,"host":"{}"}}"#,
        super::pending::this_node(b.key_file())
    );
    b.stage(
        &format!("{PASSWORD}.rotation"),
        &v(&json),
        0,
        "rotate",
        name(PASSWORD),
        "started".into(),
    )
    .unwrap();
    let err = PasswordRotation::begin(&f.store, name(PASSWORD), &mut |_| {}).unwrap_err();
    let Error::Rotate(e) = err else {
        panic!("not a rotation error: {err}")
    };
    assert!(matches!(e.problem, Problem::InProgress { .. }), "{e}");
    assert_eq!(f.stored(), OLD);
}
