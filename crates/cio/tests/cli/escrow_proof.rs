//! An escrow object is sealed to the recovery recipient, which is public: anyone who may
//! write to the bucket can plant one that names the right repository. What proves it is the
//! cluster's is a repository password that opens the repository it sits beside; an import
//! `--from-repository` refuses any other (a wrong password, a set without one), and a
//! repository that cannot be asked unless forced. Against s3s-fs and a real restic
//! repository.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use assert_cmd::assert::Assert;
use testkit::s3::S3Server;

use crate::recovery::age_identity;
use crate::recovery_drill::escrowing_node;
use crate::util::*;

const ACCESS: &str = "cluster-a-backup";
const SECRET: &str = "cluster-a-backup-secret";
const PASSWORD: &str = "cluster a repository password";
const PLANTED: &str = "the planter's own password";

/// Writes at `object` a bundle in cio's format holding `values` (name, value), sealed with
/// the real `age` command to `recipient`, as anyone who may write to the bucket could.
fn plant(object: &Path, recipient: &str, values: &[(&str, &str)]) {
    let now = 1_790_000_000_000_i64;
    let credentials: Vec<_> = values
        .iter()
        .map(|(name, value)| {
            serde_json::json!({"name": name, "versions": [
                {"version": 1, "action": "create", "written_at_ms": now, "value": value}]})
        })
        .collect();
    let plain = serde_json::json!({"format": "cio-recovery-bundle", "format_version": 1,
        "created_at_ms": now, "created_by": "cio 0.1.0", "history": false,
        "credentials": credentials});
    let mut age = Command::new(testkit::require_binary("age"))
        .args(["-a", "-r", recipient, "-o"])
        .arg(object)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    age.stdin
        .take()
        .unwrap()
        .write_all(plain.to_string().as_bytes())
        .unwrap();
    assert!(age.wait().unwrap().success());
}

/// Cluster A's escrow as the tests start from it: a restic repository on s3s-fs, a node whose
/// MinIO set names it and escrows to a recovery identity, and the genuine object it wrote.
struct Escrowed {
    s3: S3Server,
    repo: String,
    /// The folder the identity is in (kept while the test runs).
    _safe: tempfile::TempDir,
    identity: std::path::PathBuf,
    recipient: String,
    a: TestEnv,
    object: std::path::PathBuf,
    genuine: Vec<u8>,
}

fn escrowed() -> Escrowed {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("cluster-a");
    let repo = s3.restic_init("cluster-a", "backups", PASSWORD);
    let safe = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_identity(safe.path(), "recovery-key.txt");
    let a = escrowing_node(&recipient);
    a.minio_set("", &repo, ACCESS, SECRET, PASSWORD);
    let object = s3.root().join("cluster-a/backups/cio-recovery.age");
    let genuine = std::fs::read(&object).unwrap();
    Escrowed {
        s3,
        repo,
        _safe: safe,
        identity,
        recipient,
        a,
        object,
        genuine,
    }
}

#[test]
fn a_planted_escrow_object_is_refused_and_the_genuine_one_imports() {
    let Escrowed {
        s3,
        repo,
        _safe,
        identity,
        recipient,
        a: _a,
        object,
        genuine,
    } = escrowed();

    let b = TestEnv::new();
    let import_into = |b: &TestEnv, url: &str, extra: &[&str]| -> Assert {
        let mut args = vec!["credential", "import", "--as-alternate", "-i"];
        args.push(identity.to_str().unwrap());
        args.extend_from_slice(&["--from-repository", url]);
        args.extend_from_slice(extra);
        b.cio_in(&args, format!("{ACCESS}\n{SECRET}\n"))
    };
    let import = |url: &str, extra: &[&str]| import_into(&b, url, extra);
    let location = format!("{repo}/cio-recovery.age");
    let refused = |what: &str| {
        format!(
            "Fail: Import credentials: the bundle at {location} may have been planted or be stale: {what}\n\
             Hint: nothing was written; do not trust this object: anyone who may write to the bucket can put one there, and one written before the repository's last password change is stale (it cannot restore from it, so --force does not take it). Import the bundle kept off the cluster (the paper one: 'cio credential import FILE'), or check the URL is the lost cluster's repository\n"
        )
    };
    let wrong_password = refused("the repository refuses the password of its minio primary set");
    let no_password = refused(
        "its minio primary set holds no repository password, and only a password that opens the repository proves a bundle is that cluster's",
    );
    // The review's bundle: the right URL, a wrong secret key (so its own keys cannot ask the
    // repository) and a wrong password; and a bundle of the URL and a region only; and a
    // set without a password. Refused, forced or not, dry run or not; nothing written.
    let planted: [(&[(&str, &str)], &String); 3] = [
        (
            &[
                ("cio_minio_backup_repo", &repo),
                ("cio_minio_access_key", ACCESS),
                ("cio_minio_secret_key", "not the secret key at all"),
                ("cio_minio_backup_password", PLANTED),
            ],
            &wrong_password,
        ),
        (
            &[
                ("cio_minio_backup_repo", &repo),
                ("cio_minio_region", "evil-1"),
            ],
            &no_password,
        ),
        (
            &[
                ("cio_minio_backup_repo", &repo),
                ("cio_minio_access_key", ACCESS),
                ("cio_minio_secret_key", SECRET),
            ],
            &no_password,
        ),
    ];
    for (values, refusal) in planted {
        plant(&object, &recipient, values);
        for extra in [&[][..], &["--force"], &["--dry-run"]] {
            let out = import(&repo, extra).code(1);
            assert_eq!(&stderr(&out), refusal, "{values:?} {extra:?}");
            assert!(!stderr(&out).contains(PLANTED));
            assert!(stdout(&out).is_empty(), "{}", stdout(&out));
            assert!(!b.store().exists(), "nothing was written");
        }
    }

    // Beside a prefix with no repository, nothing can prove it: refused, unless forced.
    s3.create_bucket("cluster-x");
    let nowhere = s3.repo_url("cluster-x", "backups");
    let planted_there = s3.root().join("cluster-x/backups");
    std::fs::create_dir_all(&planted_there).unwrap();
    plant(
        &planted_there.join("cio-recovery.age"),
        &recipient,
        &[
            ("cio_minio_backup_repo", &nowhere),
            ("cio_minio_access_key", ACCESS),
            ("cio_minio_secret_key", SECRET),
            ("cio_minio_backup_password", PLANTED),
        ],
    );
    let out = import(&nowhere, &[]).code(1);
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "Fail: Import credentials: the bundle at {nowhere}/cio-recovery.age may have been planted or be stale: the repository could not be asked whether the password of its minio primary set opens it ("
        )) && err.contains("\nHint: nothing was written; fix what stopped the check")
            && err.ends_with("add --force only if you have checked yourself that its password opens the repository (restic cat config)\n"),
        "{err}"
    );
    assert!(!b.store().exists(), "nothing was written");
    let out = import(&nowhere, &["--force"]).success();
    assert!(
        stderr(&out).contains(&format!(
            "Warning: the minio primary set of the bundle at {nowhere}/cio-recovery.age is not proven to be that repository's: the repository could not be asked whether its password opens it ("
        )),
        "{}",
        stderr(&out)
    );

    // The genuine object back in place imports, with no warning.
    std::fs::write(&object, genuine).unwrap();
    let c = TestEnv::new();
    let out = import_into(&c, &repo, &[]).success();
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    assert_eq!(c.reveal("cio_minio_alt_backup_password"), PASSWORD);
    assert_eq!(c.reveal("cio_minio_alt_secret_key"), SECRET);
}

/// The review's planted key file: whoever may write the bucket `restic init`s a repository
/// of their own beside the real one, copies its key file into the real one's `keys/` (a key
/// file wrapping another master key) and plants a bundle with the real URL and their own
/// password. That password opens the copied key, but its master key does not open the
/// repository's config: it is not this repository's password. Refused, forced or not, as a
/// password the repository refuses (never as damage); nothing written; validate says why;
/// the genuine password still opens the repository and the genuine object still imports.
#[test]
fn a_key_file_of_another_repository_does_not_prove_a_planted_escrow_object() {
    const ATTACKER: &str = "attacker-pass-123";
    let Escrowed {
        s3,
        repo,
        _safe,
        identity,
        recipient,
        a,
        object,
        genuine,
    } = escrowed();

    // The planter's steps: a repository of their own, its key file copied in.
    s3.restic_init("cluster-a", "evil", ATTACKER);
    let evil_keys = s3.root().join("cluster-a/evil/keys");
    let mut copied = Vec::new();
    for entry in std::fs::read_dir(&evil_keys).unwrap() {
        let entry = entry.unwrap();
        let to = s3
            .root()
            .join("cluster-a/backups/keys")
            .join(entry.file_name());
        std::fs::copy(entry.path(), &to).unwrap();
        copied.push(entry.file_name().into_string().unwrap());
    }
    assert_eq!(copied.len(), 1);
    let key_id = &copied[0];
    plant(
        &object,
        &recipient,
        &[
            ("cio_minio_backup_repo", &repo),
            ("cio_minio_backup_password", ATTACKER),
        ],
    );
    // The oracle: restic finds the copied key with that password and cannot open the config.
    let home = s3.root().join(".home");
    let out = testkit::s3::run_restic(
        &home,
        &repo,
        ACCESS,
        SECRET,
        ATTACKER,
        &[],
        &["cat", "config"],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("config or key {key_id} is damaged")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s3.restic(&repo, PASSWORD, &["cat", "config"]);

    let b = TestEnv::new();
    let import_into = |b: &TestEnv, extra: &[&str]| -> Assert {
        let mut args = vec!["credential", "import", "--as-alternate", "-i"];
        args.push(identity.to_str().unwrap());
        args.extend_from_slice(&["--from-repository", &repo]);
        args.extend_from_slice(extra);
        b.cio_in(&args, format!("{ACCESS}\n{SECRET}\n"))
    };
    let refusal = format!(
        "Fail: Import credentials: the bundle at {repo}/cio-recovery.age may have been planted or be stale: the repository refuses the password of its minio primary set\n\
         Hint: nothing was written; do not trust this object: anyone who may write to the bucket can put one there, and one written before the repository's last password change is stale (it cannot restore from it, so --force does not take it). Import the bundle kept off the cluster (the paper one: 'cio credential import FILE'), or check the URL is the lost cluster's repository\n"
    );
    for extra in [
        &[][..],
        &["--force"],
        &["--dry-run"],
        &["--dry-run", "--force"],
    ] {
        let out = import_into(&b, extra).code(1);
        assert_eq!(stderr(&out), refusal, "{extra:?}");
        assert!(stdout(&out).is_empty(), "{}", stdout(&out));
        assert!(!b.store().exists(), "nothing was written");
    }

    // validate says what it may be: another repository's key file, or a damaged config.
    let d = TestEnv::new();
    d.minio_set("", &repo, ACCESS, SECRET, ATTACKER);
    let out = d.cio(&["credential", "validate", "--json"]).code(1);
    let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let password = report["sets"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["step"] == "password")
        .unwrap()
        .clone();
    assert_eq!(password["status"], "fail");
    assert_eq!(password["code"], "foreign_key");
    let short = &key_id[..8];
    assert_eq!(
        password["detail"].as_str().unwrap(),
        format!(
            "the password in cio_minio_backup_password opens key {short}, but that key's master key does not open the repository's config (restic: \"config or key {short} is damaged: ciphertext verification failed\"); either 'cluster-a/backups/keys/{key_id}' is another repository's key file and the password is not this repository's: store a password one of its own keys opens with 'cio credential create cio_minio_backup_password --force', and remove that key file with an S3 tool if nobody put it there on purpose; or the config is damaged (then no password opens it): restore 'cluster-a/backups/config' from a copy of the bucket"
        )
    );
    assert!(!stdout(&out).contains(ATTACKER));

    // Nor is it sealed beside the repository.
    let out = d
        .cio(&[
            "credential",
            "export",
            "--to-repository",
            "--recipient",
            &recipient,
        ])
        .code(1);
    assert_eq!(
        stderr(&out),
        format!(
            "Fail: Export credentials: the minio primary set's stored password opens a key file in the set's repository whose master key does not open its config (another repository's key file, or a damaged config), so restic cannot use it there; a bundle of it at {repo}/cio-recovery.age could not restore from that repository\n\
             Hint: nothing was written; the bundle there, if any, is as it was. 'cio credential validate --provider minio' says why the password is refused; store the password the repository has ('cio credential create cio_minio_backup_password --force'), then export again\n"
        )
    );

    // `create --force` of a password takes it only when it opens the repository.
    let force = |env: &TestEnv, password: &str| {
        env.cio_in(
            &[
                "credential",
                "create",
                "cio_minio_backup_password",
                "--force",
            ],
            format!("{password}\n"),
        )
    };
    // It opens a key file, so it is never said to "not open" the repository.
    let refused = |out: Assert| {
        let text = stderr(&out.code(1));
        assert_eq!(
            text,
            "Fail: Create credential: cio_minio_backup_password: the new password opens a key file in the set's repository whose master key does not open its config (another repository's key file, or a damaged config), so restic cannot use it there\n\
             Hint: --force stores only the password the repository has now; check the new password; nothing was changed\n"
        );
    };
    // Forced again with the same (stored) password: a forced password must open the
    // repository whatever is stored (it was not checked at all).
    refused(force(&d, ATTACKER));
    // The genuine one forced again still goes in.
    force(&a, PASSWORD).success();
    // A change forced to the planted password is refused as one the repository refuses (it
    // was "could not be checked", a warning, and stored).
    refused(force(&a, ATTACKER));
    assert_eq!(a.reveal("cio_minio_backup_password"), PASSWORD);

    // The genuine object, the copied key file still there, imports with no warning.
    std::fs::write(&object, genuine).unwrap();
    let c = TestEnv::new();
    let out = import_into(&c, &[]).success();
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    assert_eq!(c.reveal("cio_minio_alt_backup_password"), PASSWORD);
}

/// The review's useless escrow: a store whose password the repository refuses (a first
/// password is stored unchecked) sealed it beside the repository, over the genuine bundle.
/// Now `export --to-repository` refuses (exit 1, nothing written), and so does the refresh
/// after a write (a warning; the write stays); the genuine bundle is left as it was.
#[test]
fn a_stored_password_the_repository_refuses_is_not_escrowed() {
    const WRONG: &str = "not this repository's password";
    let Escrowed {
        s3: _s3,
        repo,
        _safe,
        identity: _,
        recipient,
        a,
        object,
        genuine,
    } = escrowed();

    let b = TestEnv::new();
    b.minio_set("", &repo, ACCESS, SECRET, WRONG);
    let out = b
        .cio(&[
            "credential",
            "export",
            "--to-repository",
            "--recipient",
            &recipient,
        ])
        .code(1);
    assert_eq!(
        stderr(&out),
        format!(
            "Fail: Export credentials: the minio primary set's stored password does not open the set's repository; a bundle of it at {repo}/cio-recovery.age could not restore from that repository\n\
             Hint: nothing was written; the bundle there, if any, is as it was. 'cio credential validate --provider minio' says why the password is refused; store the password the repository has ('cio credential create cio_minio_backup_password --force'), then export again\n"
        )
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert_eq!(std::fs::read(&object).unwrap(), genuine);

    // A node with recovery recipients: the refresh after the write is refused the same way.
    let c = escrowing_node(&recipient);
    for (name, value) in [
        ("cio_minio_backup_repo", repo.as_str()),
        ("cio_minio_access_key", ACCESS),
        ("cio_minio_secret_key", SECRET),
    ] {
        c.create(name, value);
    }
    let out = c
        .cio_in(
            &["credential", "create", "cio_minio_backup_password"],
            format!("{WRONG}\n"),
        )
        .success();
    assert!(
        stderr(&out).contains(&format!(
            "Warning: the recovery bundle of the minio primary set was not refreshed: the minio primary set's stored password does not open the set's repository; a bundle of it at {repo}/cio-recovery.age could not restore from that repository; the write above is kept."
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&object).unwrap(), genuine);
    assert!(!stderr(&out).contains(WRONG));

    // The genuine store still exports.
    a.cio(&["credential", "export", "--to-repository"])
        .success();
}
