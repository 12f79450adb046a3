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

#[test]
fn a_planted_escrow_object_is_refused_and_the_genuine_one_imports() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("cluster-a");
    let repo = s3.restic_init("cluster-a", "backups", PASSWORD);
    let safe = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_identity(safe.path(), "recovery-key.txt");
    let a = escrowing_node(&recipient);
    a.minio_set("", &repo, ACCESS, SECRET, PASSWORD);
    let object = s3.root().join("cluster-a/backups/cio-recovery.age");
    let genuine = std::fs::read(&object).unwrap();

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
