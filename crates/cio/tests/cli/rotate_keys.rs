//! `rotate --provider P --access-key`: a new key pair checked live against a real S3 server
//! (s3s-fs, which checks SigV4 signatures against the one pair it accepts), then written as
//! one; `restore` of either name brings back the pair.

use testkit::s3::S3Server;

use crate::rotate::{ACCESS, OLD, SECRET, repository, snapshots_work};
use crate::util::*;

const NEW_ACCESS: &str = "rotated-access";
const NEW_SECRET: &str = "rotated-secret-key-4567";
const ROTATE: &[&str] = &[
    "credential",
    "rotate",
    "--provider",
    "minio",
    "--access-key",
];

fn pair(env: &TestEnv) -> (String, String) {
    (
        env.reveal("cio_minio_access_key"),
        env.reveal("cio_minio_secret_key"),
    )
}

#[test]
fn a_new_pair_is_checked_live_written_together_and_restored_together() {
    let mut s3 = S3Server::start(ACCESS, SECRET);
    let env = repository(&s3, "keys");
    // The administrator issued a new key pair on the server and retired the old one.
    s3.restart_with_keys(NEW_ACCESS, NEW_SECRET);
    let old = (ACCESS.to_string(), SECRET.to_string());
    let before = env.snapshot_files();

    // A secret that does not belong to the access key: refused, nothing changed.
    let out = env
        .cio_in(ROTATE, format!("{NEW_ACCESS}\nnot-the-secret-key-000\n"))
        .code(1);
    let text = stderr(&out);
    assert!(
        text.starts_with(
            "Fail: Rotate credential: cio_minio_access_key: the new key pair does not pass the live check (signature_mismatch): "
        ),
        "{text}"
    );
    assert!(
        text.ends_with(
            "Hint: create the new key on the server (with the old key's bucket policy), check what was typed, then run the command again; nothing was changed\n"
        ),
        "{text}"
    );
    assert!(!text.contains("not-the-secret") && !text.contains(NEW_ACCESS));
    // The review's finding: an access key the server does not know was named as the one
    // in cio_minio_access_key (the stored, old key). It is the new one.
    let out = env
        .cio_in(ROTATE, format!("unknown-access\n{NEW_SECRET}\n"))
        .code(1);
    let port = s3.port();
    assert_eq!(
        stderr(&out),
        format!(
            "Fail: Rotate credential: cio_minio_access_key: the new key pair does not pass the live check (invalid_access_key): 127.0.0.1:{port} does not know the new access key; check it, or create a key on the server\n\
             Hint: create the new key on the server (with the old key's bucket policy), check what was typed, then run the command again; nothing was changed\n"
        )
    );
    assert!(
        text.contains(
            "the new secret key does not belong to the new access key; give the matching secret key"
        ),
        "{text}"
    );
    // One line is not a pair.
    let out = env.cio_in(ROTATE, format!("{NEW_ACCESS}\n")).code(1);
    assert_eq!(
        stderr(&out).lines().next().unwrap(),
        "Fail: Rotate credential: cio_minio_access_key: standard input must hold two lines: the new access key, then the new secret key"
    );
    assert!(
        env.snapshot_files() == before,
        "a refused rotation changed the store"
    );
    assert_eq!(pair(&env), old);

    // The right pair: checked, written as one; the backups work with it.
    let out = env
        .cio_in(ROTATE, format!("{NEW_ACCESS}\n{NEW_SECRET}\n"))
        .success();
    assert!(
        stdout(&out).starts_with(
            "Succeed: Rotate credential: cio_minio_access_key and cio_minio_secret_key (versions 2 and 2, written together;"
        ),
        "{}",
        stdout(&out)
    );
    let new = (NEW_ACCESS.to_string(), NEW_SECRET.to_string());
    assert_eq!(pair(&env), new);
    snapshots_work(&env).unwrap();
    let out = env
        .cio_in(ROTATE, format!("{NEW_ACCESS}\n{NEW_SECRET}\n"))
        .code(1);
    assert!(stderr(&out).contains("the new access key and secret key are the ones already stored"));

    // restore of either name brings back the previous pair, both together.
    let out = env
        .cio(&["credential", "restore", "cio_minio_secret_key"])
        .success();
    assert_eq!(
        stdout(&out),
        "Succeed: Restore credential: cio_minio_secret_key (version 3, the value of version 1), and with it the other key of its pair: cio_minio_access_key (version 3, the value of version 1)\n"
    );
    assert_eq!(pair(&env), old);
    let out = env
        .cio(&["credential", "restore", "cio_minio_access_key", "--json"])
        .success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(doc["pair"]["name"], "cio_minio_secret_key");
    assert_eq!(pair(&env), new);
    snapshots_work(&env).unwrap();

    // The change log names both keys of each pair change, and `log NAME` finds them by
    // either name; the pair's internal marker is never named.
    for name in ["cio_minio_access_key", "cio_minio_secret_key"] {
        let out = env.cio(&["credential", "log", name, "--json"]).success();
        let log: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        let said: Vec<String> = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| format!("{} {} {}", e["command"], e["name"], e["names"]).replace('"', ""))
            .collect();
        let pair = "[cio_minio_access_key,cio_minio_secret_key]";
        let restored = "[cio_minio_secret_key,cio_minio_access_key]";
        assert_eq!(
            said[said.len() - 3..],
            [
                format!("rotate cio_minio_access_key {pair}"),
                format!("restore cio_minio_secret_key {restored}"),
                format!("restore cio_minio_access_key {pair}"),
            ],
            "{name}: {log}"
        );
    }
    let out = env.cio(&["credential", "log"]).success();
    assert!(!stdout(&out).contains(".pair"), "{}", stdout(&out));
}

#[test]
fn an_incomplete_set_is_refused_and_json_names_both() {
    let s3 = S3Server::start(ACCESS, SECRET);
    let env = repository(&s3, "json");
    env.cio(&["credential", "remove", "cio_minio_backup_password"])
        .success();
    let out = env
        .cio_in(ROTATE, format!("{ACCESS}\n{SECRET}-x\n"))
        .code(1);
    assert!(
        stderr(&out)
            .contains("the minio primary set is incomplete: missing cio_minio_backup_password"),
        "{}",
        stderr(&out)
    );
    env.cio_in(&["credential", "create", "cio_minio_backup_password"], OLD)
        .success();
    // The same access key with a new secret key is a rotation too (s3s-fs accepts only the
    // first secret, so this one is refused live).
    let out = env
        .cio_in(
            &[
                "credential",
                "rotate",
                "--provider",
                "minio",
                "--access-key",
                "--json",
            ],
            format!("{ACCESS}\n{SECRET}-x\n"),
        )
        .code(1);
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(doc["error"]["exit_code"], 1);
    // --access-key needs --provider; a name and --access-key do not go together.
    env.cio(&["credential", "rotate", "--access-key"]).code(2);
    env.cio(&[
        "credential",
        "rotate",
        "cio_minio_backup_password",
        "--provider",
        "minio",
        "--access-key",
    ])
    .code(2);
}
