//! The disaster-recovery drill, end to end with the real restic and a real S3 server
//! (s3s-fs): cluster A backs up with its primary set; cluster B restores A's backup through
//! its alternate set, by `exec` and by `env` in a shell.

use std::path::Path;

use testkit::s3::S3Server;

use crate::util::*;

const ACCESS: &str = "drill-access";
const SECRET: &str = "drill-secret-key-0123";
const PASSWORD: &str = "drill repository password";

/// A folder of test files: nested, binary, empty, larger than one restic chunk boundary.
pub fn make_files(dir: &Path) {
    std::fs::create_dir_all(dir.join("a/b")).unwrap();
    std::fs::write(dir.join("hello.txt"), b"hello from cluster A\n").unwrap();
    std::fs::write(dir.join("empty"), b"").unwrap();
    let binary: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.join("a/b/data.bin"), binary).unwrap();
}

pub fn assert_same_tree(a: &Path, b: &Path) {
    for entry in ["hello.txt", "empty", "a/b/data.bin"] {
        assert_eq!(
            std::fs::read(a.join(entry)).unwrap(),
            std::fs::read(b.join(entry)).unwrap(),
            "{entry} differs"
        );
    }
}

fn snapshot_count(out: &assert_cmd::assert::Assert) -> usize {
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    v.as_array().unwrap().len()
}

#[test]
fn disaster_recovery_drill() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("cluster-a");
    let repo = s3.repo_url("cluster-a", "backups");

    // 1. Cluster A: primary set, init, back up, list.
    let a = TestEnv::new();
    a.minio_set("", &repo, ACCESS, SECRET, PASSWORD);
    a.cio(&["credential", "exec", "--", "restic", "--no-cache", "init"])
        .success();
    let files = a.dir.path().join("volume");
    make_files(&files);
    a.cio(&[
        "credential",
        "exec",
        "--provider",
        "minio",
        "--",
        "restic",
        "--no-cache",
        "backup",
        files.to_str().unwrap(),
    ])
    .success();
    let out = a
        .cio(&[
            "credential",
            "exec",
            "--",
            "restic",
            "--no-cache",
            "snapshots",
            "--json",
        ])
        .success();
    assert_eq!(snapshot_count(&out), 1);

    // 2. Cluster B: A's repository as its alternate set; restore byte for byte.
    let b = TestEnv::new();
    b.minio_set("_alt", &repo, ACCESS, SECRET, PASSWORD);
    let out = b.cio(&["credential", "validate", "--alternate"]).success();
    assert!(
        stdout(&out).contains("ok    summary       1 snapshot\n"),
        "{}",
        stdout(&out)
    );
    let target = b.dir.path().join("restore");
    let out = b
        .cio(&[
            "credential",
            "exec",
            "--alternate",
            "--",
            "restic",
            "--no-cache",
            "restore",
            "latest",
            "--target",
            target.to_str().unwrap(),
        ])
        .success();
    for secret in [SECRET, PASSWORD] {
        assert!(!stdout(&out).contains(secret) && !stderr(&out).contains(secret));
    }
    assert_same_tree(&files, &target.join(files.strip_prefix("/").unwrap()));

    // 3. The same through `env` in a shell.
    let cio = assert_cmd::cargo::cargo_bin("cio");
    let target2 = b.dir.path().join("restore-env");
    let script = format!(
        r#"eval "$('{}' credential env --alternate)" && restic --no-cache restore latest --target '{}' >/dev/null && restic --no-cache snapshots --json"#,
        cio.display(),
        target2.display()
    );
    let out = b.cmd_sh(&script);
    let snapshots: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(snapshots.as_array().unwrap().len(), 1);
    assert_same_tree(&files, &target2.join(files.strip_prefix("/").unwrap()));

    // 4. A wrong password in B's alternate set (storing one is refused while the repository
    // answers, so the repository's password changes instead, as when cluster A rotates it
    // and B was not told): validate says so before restic runs; restic, run by exec, fails.
    let file = b.dir.path().join("rotated-at-a");
    std::fs::write(&file, "cluster A's next password").unwrap();
    b.cio(&[
        "credential",
        "exec",
        "--alternate",
        "--allow-write",
        "--",
        "restic",
        "--no-cache",
        "key",
        "passwd",
        "--new-password-file",
        file.to_str().unwrap(),
    ])
    .success();
    let out = b
        .cio(&["credential", "validate", "--alternate", "--json"])
        .code(1);
    let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let password = &report["sets"][0]["checks"][7];
    assert_eq!(password["step"], "password");
    assert_eq!(password["code"], "wrong_password");
    let out = b
        .cio(&[
            "credential",
            "exec",
            "--alternate",
            "--",
            "restic",
            "--no-cache",
            "snapshots",
        ])
        .failure();
    assert!(stderr(&out).contains("wrong password"), "{}", stderr(&out));
}
