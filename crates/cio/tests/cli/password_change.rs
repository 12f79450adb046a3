//! A bare password change (`create cio_X_backup_password NEW`) is caught while the
//! repository still wants the old password: real restic repositories on s3s-fs.

use std::process::Command;

use testkit::s3::S3Server;

use crate::rotate::{ACCESS, OLD, PASSWORD, SECRET, key_files, opens, repository};
use crate::util::*;

const NEW: &str = "a new repository password";

#[test]
fn a_bare_change_is_refused_while_the_repository_answers() {
    let s3 = S3Server::start(ACCESS, SECRET);
    let env = repository(&s3, "bare");
    let before = env.snapshot_files();
    let out = env.cio(&["credential", "create", PASSWORD, NEW]).code(1);
    assert_eq!(
        stderr(&out),
        "Warning: a secret on the command line lands in shell history and the process list; next time run 'cio credential create cio_minio_backup_password' and type or pipe the value\n\
         Fail: Create credential: cio_minio_backup_password: the set's repository exists and answers: a new password stored without changing the repository's would break every backup\n\
         Hint: run 'cio credential rotate cio_minio_backup_password' to change the repository's password with it; if it was already changed elsewhere, add --force; nothing was changed\n"
    );
    // --force with a password the repository does not know: refused too.
    let out = env
        .cio_in(&["credential", "create", PASSWORD, "--force"], NEW)
        .code(1);
    assert_eq!(
        stderr(&out),
        "Fail: Create credential: cio_minio_backup_password: the new password does not open the set's repository\n\
         Hint: --force stores only the password the repository has now; check the new password; nothing was changed\n"
    );
    assert!(
        env.snapshot_files() == before,
        "a refused create changed the store"
    );
    assert_eq!(env.reveal(PASSWORD), OLD);
    // Removed and created again: still the change it is (the repository wants the removed
    // password); the removed password itself comes back freely.
    env.cio(&["credential", "remove", PASSWORD]).success();
    let out = env.cio_in(&["credential", "create", PASSWORD], NEW).code(1);
    assert!(
        stderr(&out).contains("the set's repository exists and answers"),
        "{}",
        stderr(&out)
    );
    env.cio_in(&["credential", "create", PASSWORD], OLD)
        .success();
    assert_eq!(env.reveal(PASSWORD), OLD);

    // The same password again is no change; and after the repository's password was changed
    // elsewhere (restic key passwd), --force stores it.
    env.cio_in(&["credential", "create", PASSWORD], OLD)
        .success();
    let file = env.dir.path().join("new-password");
    std::fs::write(&file, NEW).unwrap();
    s3.restic(
        &s3.repo_url("bare", "repo"),
        OLD,
        &[
            "key",
            "passwd",
            "--no-cache",
            "--new-password-file",
            file.to_str().unwrap(),
        ],
    );
    env.cio_in(&["credential", "create", PASSWORD, "--force"], NEW)
        .success();
    assert_eq!(env.reveal(PASSWORD), NEW);
    assert!(opens(&s3, "bare", NEW));
    assert_eq!(key_files(&s3, "bare").len(), 1);
}

#[test]
fn no_repository_is_no_check_and_an_unreachable_one_warns() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("empty");
    let env = TestEnv::new();
    // No repository at the URL yet: the password may change freely.
    env.minio_set("", &s3.repo_url("empty", "repo"), ACCESS, SECRET, OLD);
    let out = env
        .cio_in(&["credential", "create", PASSWORD], NEW)
        .success();
    assert_eq!(stderr(&out), "");
    // Nothing listens at the URL: a warning, and the change is stored.
    let port = testkit::free_port();
    env.create(
        "cio_minio_backup_repo",
        &format!("s3:http://127.0.0.1:{port}/bucket"),
    );
    let out = env
        .cio_in(&["credential", "create", PASSWORD], "a third password")
        .success();
    let text = stderr(&out);
    assert!(
        text.starts_with("Warning: cio_minio_backup_password: the repository could not be asked whether it still wants the old password ("),
        "{text}"
    );
    assert!(
        text.ends_with(
            "if it does, change it with 'cio credential rotate cio_minio_backup_password' instead\n"
        ),
        "{text}"
    );
    assert_eq!(env.reveal(PASSWORD), "a third password");
}

/// A repository that lost its `config` is no "repository not there yet": a changed password
/// is stored with the warning that it could not be checked, and why (it was stored silently,
/// as for a new repository).
#[test]
fn a_repository_without_its_config_is_not_taken_for_a_new_one() {
    let s3 = S3Server::start(ACCESS, SECRET);
    let env = repository(&s3, "noconfig");
    std::fs::remove_file(s3.root().join("noconfig/repo/config")).expect("config removed");
    let out = env
        .cio_in(&["credential", "create", PASSWORD], NEW)
        .success();
    let url = s3.repo_url("noconfig", "repo");
    assert_eq!(
        stderr(&out),
        format!(
            "Warning: cio_minio_backup_password: the repository could not be asked whether it still wants the old password (the restic repository at {url} has no config (it has keys/): restic cannot open it (\"unable to open config file\"); restore the object 'config' from a backup of the bucket, or correct cio_minio_backup_repo if the repository is elsewhere; do not run 'restic init' there, which writes a new config and key over the old files); if it does, change it with 'cio credential rotate cio_minio_backup_password' instead\n"
        )
    );
}

/// A bundle made before the repository's password was rotated: importing it (forced past the
/// newer value, or without --force when its values are dated later) would store a password
/// the repository no longer has, and every backup after it would fail.
#[test]
fn an_import_of_a_password_the_repository_no_longer_has_is_refused() {
    let s3 = S3Server::start(ACCESS, SECRET);
    let env = repository(&s3, "imported");
    let (identity, recipient) = crate::recovery::age_identity(env.dir.path(), "id.txt");
    let bundle = env.dir.path().join("before-rotation.age");
    env.cio(&[
        "credential",
        "export",
        "--recipient",
        &recipient,
        "-o",
        bundle.to_str().unwrap(),
    ])
    .success();
    env.cio_in(&["credential", "rotate", PASSWORD], NEW)
        .success();
    assert!(
        !opens(&s3, "imported", OLD),
        "the rotation removed the old key"
    );
    let before = env.snapshot_files();
    let out = env
        .cio(&[
            "credential",
            "import",
            "--force",
            "--identity",
            identity.to_str().unwrap(),
            bundle.to_str().unwrap(),
        ])
        .code(1);
    let text = stderr(&out);
    assert!(
        text.contains("Fail: Import credentials: cio_minio_backup_password: the bundle's password does not open the set's repository (its password was changed after the bundle was made): importing it would break every backup\n\
         Hint: import a fresher bundle: the escrow bundle beside the repository"),
        "{text}"
    );
    assert!(!text.contains(OLD) && !text.contains(NEW), "{text}");
    assert!(
        env.snapshot_files() == before,
        "a refused import changed the store"
    );
    assert_eq!(env.reveal(PASSWORD), NEW);
    assert!(opens(&s3, "imported", NEW));
}

/// The rescue case: a bundle made before the repository's password was rotated, imported
/// into a fresh store (no password to compare with), stored a password restic refuses and
/// said so as a success. Now the set the import leaves is asked, as for a change; --force
/// stores the password anyway, saying so. No repository yet: no check; none reachable: a
/// warning.
#[test]
fn a_stale_bundle_imported_into_a_fresh_store_is_refused_unless_forced() {
    use crate::recovery::{PASSPHRASE, export_passphrase};
    let s3 = S3Server::start(ACCESS, SECRET);
    let a = repository(&s3, "rescue");
    let paper = a.dir.path().join("paper.age");
    export_passphrase(&a, &paper);
    a.cio_in(&["credential", "rotate", PASSWORD], NEW).success();
    let c = TestEnv::new();
    let import = |extra: &[&str]| {
        let mut args = vec!["credential", "import", "--as-alternate"];
        args.extend_from_slice(extra);
        args.push(paper.to_str().unwrap());
        c.cio_in(&args, PASSPHRASE)
    };
    let before = c.snapshot_files();
    let out = import(&[]).code(1);
    let refusal = "Fail: Import credentials: cio_minio_alt_backup_password: the bundle's password does not open the set's repository (its password was changed after the bundle was made): importing it would break every restore from it (the alternate set is for restores)\n\
         Hint: import a fresher bundle: the escrow bundle beside the repository, which every rotation refreshes ('cio credential import --from-repository URL --identity FILE'), or one made after the repository's last password change; or add --force to store this password anyway; nothing was changed\n";
    assert_eq!(stderr(&out), refusal);
    assert!(c.snapshot_files() == before, "a refused import wrote");
    // With --validate too, the import and its dry run refuse the same way, in the same
    // order (the review's finding: the import said the sets failed validation, the dry run
    // that the password was stale, and the dry run ignored --validate when forced).
    for extra in [&["--validate"][..], &["--dry-run", "--validate"]] {
        let out = import(extra).code(1);
        assert_eq!(stderr(&out), refusal, "{extra:?}");
    }
    // Forced, the live checks still refuse the stale password: nothing is said stored.
    let out = import(&["--force", "--validate"]).code(1);
    assert!(!stderr(&out).contains("stored anyway"), "{}", stderr(&out));
    assert!(c.snapshot_files() == before, "a refused import wrote");
    // The dry run asks the repository too, and refuses as the import does (it said "the
    // bundle opens" and exited 0); forced, it warns as the import does.
    let out = import(&["--dry-run"]).code(1);
    assert_eq!(stderr(&out), refusal);
    assert!(!stdout(&out).contains("Succeed"), "{}", stdout(&out));
    let out = import(&["--dry-run", "--force"]).success();
    assert_eq!(
        stderr(&out),
        "Warning: cio_minio_alt_backup_password: the bundle's password does not open the set's repository; would be stored anyway (--force): restic refuses it until the repository has a key of its own for it\n"
    );
    assert!(
        stdout(&out).ends_with(
            "Succeed: Import credential: dry run: the bundle opens; nothing was written\n"
        ),
        "{}",
        stdout(&out)
    );
    let out = import(&["--dry-run", "--json"]).code(1);
    assert!(stdout(&out).contains("its password was changed after the bundle was made"));
    assert!(c.snapshot_files() == before, "a dry run wrote");

    let out = import(&["--force"]).success();
    assert_eq!(
        stderr(&out),
        "Warning: cio_minio_alt_backup_password: the bundle's password does not open the set's repository; stored anyway (--force): restic refuses it until the repository has a key of its own for it\n"
    );
    assert!(
        stdout(&out).ends_with("Succeed: Import credential: 4 versions written, 0 unchanged, to the minio alternate set (earlier values stay in each credential's history)\n"),
        "{}",
        stdout(&out)
    );
    assert_eq!(c.reveal("cio_minio_alt_backup_password"), OLD);
    c.cio(&[
        "credential",
        "exec",
        "--alternate",
        "--",
        "restic",
        "--no-cache",
        "snapshots",
    ])
    .failure();

    // The review's finding: once the store holds a password the repository opens, the
    // stale bundle forced in is refused with a hint that said "nothing was written; nothing
    // was changed" and named an exec without --alternate (on a node with the alternate set
    // alone: no set to run with). Said once now, and the command it names runs.
    c.cio_in(
        &[
            "credential",
            "create",
            "cio_minio_alt_backup_password",
            "--force",
        ],
        NEW,
    )
    .success();
    let before = c.snapshot_files();
    let stale = "Fail: Import credentials: cio_minio_alt_backup_password: the bundle's password does not open the set's repository (its password was changed after the bundle was made): importing it would break every restore from it (the alternate set is for restores)\n\
         Hint: import a fresher bundle: the escrow bundle beside the repository, which every rotation refreshes ('cio credential import --from-repository URL --identity FILE'), or one made after the repository's last password change; or see the repository's keys with 'cio credential exec --provider minio --alternate -- restic list keys'; nothing was changed\n";
    let out = import(&["--force"]).code(1);
    assert_eq!(stderr(&out), stale);
    assert!(c.snapshot_files() == before, "a refused import wrote");
    // The review's finding: unforced, the store's newer password refused the import with
    // "add --force to replace them", and --force was then refused as above. The refusal that
    // --force cannot lift comes first now, forced or not, dry run or not.
    for extra in [&[][..], &["--dry-run"]] {
        let out = import(extra).code(1);
        assert_eq!(stderr(&out), stale, "{extra:?}");
    }
    assert!(c.snapshot_files() == before, "a refused import wrote");
    assert_eq!(c.reveal("cio_minio_alt_backup_password"), NEW);
    c.cio(&[
        "credential",
        "exec",
        "--provider",
        "minio",
        "--alternate",
        "--",
        "restic",
        "--no-cache",
        "list",
        "keys",
    ])
    .success();

    // A repository that does not exist yet needs no check.
    s3.create_bucket("empty");
    let fresh = TestEnv::new();
    fresh.minio_set("", &s3.repo_url("empty", "repo"), ACCESS, SECRET, OLD);
    let bundle = fresh.dir.path().join("fresh.age");
    export_passphrase(&fresh, &bundle);
    let d = TestEnv::new();
    let out = d
        .cio_in(
            &[
                "credential",
                "import",
                "--as-alternate",
                bundle.to_str().unwrap(),
            ],
            PASSPHRASE,
        )
        .success();
    assert_eq!(stderr(&out), "");

    // One that cannot be asked: a warning, and the import is written.
    let lost = crate::recovery::cluster_a();
    let bundle = lost.dir.path().join("lost.age");
    export_passphrase(&lost, &bundle);
    let e = TestEnv::new();
    let out = e
        .cio_in(
            &["credential", "import", bundle.to_str().unwrap()],
            PASSPHRASE,
        )
        .success();
    let text = stderr(&out);
    assert!(
        text.starts_with("Warning: cio_minio_backup_password: the repository could not be asked whether the bundle's password opens it ("),
        "{text}"
    );
    assert_eq!(
        e.reveal("cio_minio_backup_password"),
        crate::recovery::PASSWORD
    );
}

/// A stale bundle imported first (the paper one, made before a rotation) must not make
/// the fresh escrow bundle, which the rotation refreshed, look older: an imported value
/// keeps the lost cluster's time. A stale password the store wrote on its own clock (typed
/// in by hand) is dated after the bundle's: the repository settles it (it refuses the stored
/// password and opens with the bundle's), and says so. A password that still opens the
/// repository is never replaced by an older bundle without --force.
#[test]
fn a_fresh_escrow_bundle_replaces_a_password_imported_from_a_stale_one() {
    use crate::recovery::{PASSPHRASE, age_identity, export_passphrase, row};
    let s3 = S3Server::start(ACCESS, SECRET);
    let a = repository(&s3, "escrowed");
    let (identity, recipient) = age_identity(a.dir.path(), "recovery-key.txt");
    std::fs::write(
        a.config(),
        format!("recovery_recipients = [\"{recipient}\"]\n"),
    )
    .unwrap();
    let paper = a.dir.path().join("paper.age");
    export_passphrase(&a, &paper);
    a.cio_in(&["credential", "rotate", PASSWORD], NEW).success();
    assert!(
        s3.root().join("escrowed/repo/cio-recovery.age").is_file(),
        "the rotation refreshed the escrow bundle"
    );

    // Cluster C tries the paper bundle first (forced past the password check).
    let c = TestEnv::new();
    let paper_import = |extra: &[&str]| {
        let mut args = vec!["credential", "import", "--as-alternate"];
        args.extend_from_slice(extra);
        args.push(paper.to_str().unwrap());
        c.cio_in(&args, PASSPHRASE)
    };
    paper_import(&["--force"]).success();
    assert_eq!(c.reveal("cio_minio_alt_backup_password"), OLD);

    // Then the escrow bundle: its password replaces the stale one.
    let url = s3.repo_url("escrowed", "repo");
    let escrow = |extra: &[&str]| {
        let mut args = vec![
            "credential",
            "import",
            "--as-alternate",
            "-i",
            identity.to_str().unwrap(),
            "--from-repository",
            &url,
        ];
        args.extend_from_slice(extra);
        c.cio(&args).success()
    };
    // The alternate set's keys read it (its repository is at that endpoint), as said.
    let reading = format!(
        "Note: reading {url}/cio-recovery.age with the stored keys of this store's minio alternate set, whose repository is at the same endpoint\n"
    );
    let out = escrow(&["--dry-run"]);
    assert_eq!(stderr(&out), reading);
    assert_eq!(
        row(&stdout(&out), "cio_minio_alt_backup_password")[3],
        "update"
    );

    let out = escrow(&[]);
    assert_eq!(stderr(&out), reading);
    assert_eq!(
        row(&stdout(&out), "cio_minio_alt_backup_password")[3],
        "update"
    );
    assert!(
        stdout(&out).contains(
            "Succeed: Import credential: 1 version written, 3 unchanged, to the minio alternate set"
        ),
        "{}",
        stdout(&out)
    );
    assert_eq!(c.reveal("cio_minio_alt_backup_password"), NEW);
    c.cio(&[
        "credential",
        "exec",
        "--alternate",
        "--",
        "restic",
        "--no-cache",
        "snapshots",
    ])
    .success();

    // The paper bundle again: the stored password opens the repository, so it is newer; and
    // the bundle's is one --force would not store either (the review's finding: the refusal
    // offered --force, which was then refused), so that refusal is the one said.
    let before = c.snapshot_files();
    for extra in [&[][..], &["--force"]] {
        let out = paper_import(extra).code(1);
        assert_eq!(
            stderr(&out),
            "Fail: Import credentials: cio_minio_alt_backup_password: the bundle's password does not open the set's repository (its password was changed after the bundle was made): importing it would break every restore from it (the alternate set is for restores)\n\
             Hint: import a fresher bundle: the escrow bundle beside the repository, which every rotation refreshes ('cio credential import --from-repository URL --identity FILE'), or one made after the repository's last password change; or see the repository's keys with 'cio credential exec --provider minio --alternate -- restic list keys'; nothing was changed\n",
            "{extra:?}"
        );
    }
    assert!(c.snapshot_files() == before, "a refused import wrote");
    assert_eq!(c.reveal("cio_minio_alt_backup_password"), NEW);

    // Clocks that disagree: the escrow bundle as a cluster whose clock was behind would
    // have written it (its password dated 1970), after the paper bundle. The store's stale
    // password is dated after the bundle's; the repository says which is stale.
    let escrowed = s3.root().join("escrowed/repo/cio-recovery.age");
    let opened = Command::new("age")
        .args(["-d", "-i"])
        .arg(&identity)
        .arg(&escrowed)
        .output()
        .expect("age (Debian package age)");
    assert!(opened.status.success());
    let mut bundle: serde_json::Value = serde_json::from_slice(&opened.stdout).unwrap();
    for credential in bundle["credentials"].as_array_mut().unwrap() {
        for version in credential["versions"].as_array_mut().unwrap() {
            version["written_at_ms"] = 1000.into();
        }
    }
    let plain = c.dir.path().join("skewed.json");
    std::fs::write(&plain, bundle.to_string()).unwrap();
    let skewed = c.dir.path().join("skewed.age");
    let sealed = Command::new("age")
        .args(["-r", &recipient, "-o"])
        .arg(&skewed)
        .arg(&plain)
        .status()
        .unwrap();
    assert!(sealed.success());
    let d = TestEnv::new();
    d.cio_in(
        &[
            "credential",
            "import",
            "--as-alternate",
            "--force",
            paper.to_str().unwrap(),
        ],
        PASSPHRASE,
    )
    .success();
    let out = d
        .cio(&[
            "credential",
            "import",
            "--as-alternate",
            "-i",
            identity.to_str().unwrap(),
            skewed.to_str().unwrap(),
        ])
        .success();
    assert_eq!(
        stderr(&out),
        "Warning: cio_minio_alt_backup_password: the store's password is dated after the bundle's, but the repository refuses it and opens with the bundle's: the bundle's replaces it (the store's stays in the history)\n"
    );
    assert_eq!(d.reveal("cio_minio_alt_backup_password"), NEW);
}
