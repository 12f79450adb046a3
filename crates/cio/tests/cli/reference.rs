//! The reference page (`shared/reference/cio-credential.md`), word for word, and the
//! commands that build on it: update, show, history, restore, purge.

use crate::util::*;

#[test]
fn reference_page_example_creates_lists_and_removes() {
    let env = TestEnv::new();
    let examples = [
        ("cio_aws_backup_repo", REF_REPO),
        ("cio_aws_access_key", REF_ACCESS),
        ("cio_aws_secret_key", REF_SECRET),
        ("cio_aws_backup_password", "password"),
    ];
    for (name, value) in examples {
        let out = env.cio(&["credential", "create", name, value]).success();
        assert_eq!(
            stdout(&out),
            format!("Succeed: Create credential: {name}\n")
        );
    }
    let out = env.cio(&["credential", "list"]).success();
    let text = stdout(&out);
    insta::assert_snapshot!("reference_list", redact(&env, &text));
    for secret in [REF_ACCESS, REF_SECRET] {
        assert!(!text.contains(secret), "list leaks a secret");
        assert!(text.contains(&format!("****************{}", &secret[secret.len() - 4..])));
    }
    assert_eq!(stdout(&env.cio(&["credential", "ls"]).success()), text);

    let out = env
        .cio(&["credential", "remove", "cio_aws_backup_repo"])
        .success();
    assert_eq!(
        stdout(&out),
        "Succeed: Remove credential: cio_aws_backup_repo (bring it back with: cio credential restore cio_aws_backup_repo)\n"
    );
    let list = stdout(&env.cio(&["credential", "list"]).success());
    assert!(!list.contains("cio_aws_backup_repo  "));
    assert!(list.contains("aws primary set: incomplete, missing cio_aws_backup_repo"));
}

#[test]
fn reference_page_warnings_for_secrets_on_the_command_line_and_weak_passwords() {
    let env = TestEnv::new();
    let out = env
        .cio(&[
            "credential",
            "create",
            "cio_aws_backup_password",
            "password",
        ])
        .success();
    assert_eq!(
        stderr(&out),
        "Warning: a secret on the command line lands in shell history and the process list; next time run 'cio credential create cio_aws_backup_password' and type or pipe the value\n\
         Warning: cio_aws_backup_password: the repository password is one every attacker tries first; choose another before the first backup\n\
         Warning: cio_aws_backup_password: the repository password is shorter than 12 characters; a longer one is much harder to guess\n"
    );
    // A repository URL is not secret: no warning.
    let out = env
        .cio(&["credential", "create", "cio_aws_backup_repo", REF_REPO])
        .success();
    assert_eq!(stderr(&out), "");
    // Piped secrets: no warning at all.
    let out = env
        .cio_in(
            &["credential", "create", "cio_aws_secret_key"],
            format!("{REF_SECRET}\n"),
        )
        .success();
    assert_eq!(stderr(&out), "");
    assert_eq!(env.reveal("cio_aws_secret_key"), REF_SECRET);
}

#[test]
fn aliases_work() {
    let env = TestEnv::new();
    env.cio_in(&["credential", "add", "cio_minio_access_key"], "minio")
        .success()
        .stdout("Succeed: Create credential: cio_minio_access_key\n");
    env.cio(&["credential", "ls"])
        .success()
        .stdout(predicates::str::contains("cio_minio_access_key"));
    env.cio(&["credential", "delete", "cio_minio_access_key"])
        .success();
    env.create("cio_minio_access_key", "minio");
    env.cio(&["credential", "rm", "cio_minio_access_key"])
        .success();
    env.cio(&["credential", "list"])
        .success()
        .stdout("No credentials yet. Create the four of a set with 'cio credential create NAME' ('cio credential create --help' lists the names).\n");
}

#[test]
fn replacing_keeps_the_earlier_value_and_restore_brings_it_back() {
    let env = TestEnv::new();
    env.create("cio_minio_secret_key", "first-secret");
    let out = env
        .cio_in(
            &["credential", "create", "cio_minio_secret_key"],
            "second-secret-9876",
        )
        .success();
    assert_eq!(
        stdout(&out),
        "Succeed: Update credential: cio_minio_secret_key (version 2; earlier values: cio credential history cio_minio_secret_key)\n"
    );
    env.cio(&["credential", "remove", "cio_minio_secret_key"])
        .success();
    env.cio(&["credential", "show", "cio_minio_secret_key"])
        .code(1)
        .stderr(predicates::str::contains(
            "cio_minio_secret_key is already removed",
        ));
    let out = env
        .cio(&["credential", "history", "cio_minio_secret_key"])
        .success();
    insta::assert_snapshot!("history", redact(&env, &stdout(&out)));
    assert!(!stdout(&out).contains("first-secret"));

    env.cio(&["credential", "restore", "cio_minio_secret_key"])
        .success()
        .stdout("Succeed: Restore credential: cio_minio_secret_key (version 4, the value of version 2)\n");
    assert_eq!(env.reveal("cio_minio_secret_key"), "second-secret-9876");
    env.cio(&[
        "credential",
        "restore",
        "cio_minio_secret_key",
        "--version",
        "1",
    ])
    .success();
    assert_eq!(env.reveal("cio_minio_secret_key"), "first-secret");
    env.cio(&["credential", "restore", "cio_minio_secret_key", "--version", "9"])
        .code(1)
        .stderr("Fail: Restore credential: cio_minio_secret_key has no version 9\nHint: 'cio credential history cio_minio_secret_key' lists the versions that can be restored\n");
    // Version 3 is the removal: restoring it says so, and names history.
    env.cio(&["credential", "restore", "cio_minio_secret_key", "--version", "3"])
        .code(1)
        .stderr("Fail: Restore credential: cio_minio_secret_key version 3 is its removal and holds no value to bring back\nHint: 'cio credential history cio_minio_secret_key' lists the versions that can be restored\n");

    env.cio(&["credential", "remove", "--purge", "cio_minio_secret_key"])
        .success()
        .stdout("Succeed: Purge credential: cio_minio_secret_key (5 versions destroyed)\n");
    env.cio(&["credential", "restore", "cio_minio_secret_key"])
        .code(1);
    env.cio(&["credential", "history", "cio_minio_secret_key"])
        .code(1);
}

#[test]
fn show_masks_and_reveal_prints_the_value_alone() {
    let env = TestEnv::new();
    env.create("cio_aws_access_key", REF_ACCESS);
    let out = env
        .cio(&["credential", "show", "cio_aws_access_key"])
        .success();
    insta::assert_snapshot!("show", redact(&env, &stdout(&out)));
    assert_eq!(env.reveal("cio_aws_access_key"), REF_ACCESS);
    env.create("cio_aws_backup_password", "correct horse battery staple");
    let out = env
        .cio(&["credential", "show", "cio_aws_backup_password"])
        .success();
    assert!(stdout(&out).contains("value:     ********\n"));
}

#[test]
fn json_output_for_every_command() {
    let env = TestEnv::new();
    let json = |args: &[&str], input: &str| -> serde_json::Value {
        let mut all = vec!["credential"];
        all.extend_from_slice(args);
        all.push("--json");
        let out = env.cio_in(&all, input).success();
        serde_json::from_slice(&out.get_output().stdout).expect("valid JSON")
    };
    let v = json(&["create", "cio_aws_access_key"], REF_ACCESS);
    assert_eq!(v["action"], "create");
    assert_eq!(v["version"], 1);
    let v = json(&["create", "cio_aws_backup_password"], "password");
    assert_eq!(v["warnings"][0]["code"], "well_known_password");
    let v = json(&["list"], "");
    assert_eq!(v["credentials"][0]["name"], "cio_aws_access_key");
    assert_eq!(v["credentials"][0]["value"], "****************DFMJ");
    assert_eq!(v["sets"][0]["complete"], false);
    assert_eq!(v["sets"][0]["missing"][0], "cio_aws_backup_repo");
    // "set" means provider and role together (as in validate); a role alone is "role".
    assert_eq!(v["credentials"][0]["role"], "primary");
    assert_eq!(v["sets"][0]["provider"], "aws");
    assert_eq!(v["sets"][0]["role"], "primary");
    assert!(v["credentials"][0].get("set").is_none() && v["sets"][0].get("set").is_none());
    let v = json(&["show", "cio_aws_access_key"], "");
    assert_eq!(v["value"], "****************DFMJ");
    assert_eq!(v["role"], "primary");
    assert!(v.get("set").is_none());
    let v = json(&["history", "cio_aws_access_key"], "");
    assert_eq!(v["versions"][0]["action"], "create");
    let v = json(&["remove", "cio_aws_access_key"], "");
    assert_eq!(v["action"], "remove");
    let v = json(&["restore", "cio_aws_access_key"], "");
    assert_eq!(v["restored_from"], 1);
    let v = json(&["remove", "cio_aws_access_key", "--purge"], "");
    assert_eq!(v["versions_destroyed"], 3);
}

#[test]
fn stdin_strips_exactly_one_trailing_newline() {
    let env = TestEnv::new();
    env.cio_in(
        &["credential", "create", "cio_minio_secret_key"],
        "minio-secret\n",
    )
    .success();
    assert_eq!(env.reveal("cio_minio_secret_key"), "minio-secret");
    env.cio_in(
        &["credential", "create", "cio_minio_secret_key"],
        "minio-secret\n\n",
    )
    .code(1);
    assert_eq!(env.reveal("cio_minio_secret_key"), "minio-secret");
}

#[test]
fn the_store_file_never_holds_a_value_in_plaintext() {
    let env = TestEnv::new();
    let values = [
        (
            "cio_minio_backup_repo",
            "s3:http://127.0.0.1:9000/plaintext-probe-bucket",
        ),
        ("cio_minio_access_key", "PLAINTEXTPROBEACCESS"),
        ("cio_minio_secret_key", "plaintext-probe-secret-value"),
        (
            "cio_minio_backup_password",
            "plaintext probe password value",
        ),
    ];
    for (name, value) in values {
        env.create(name, value);
        env.create(name, &format!("{value}-2"));
    }
    env.cio(&["credential", "remove", "cio_minio_secret_key"])
        .success();
    let files = env.snapshot_files();
    assert!(files.len() >= 2, "store and key files exist");
    use std::os::unix::fs::MetadataExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    assert_eq!(mode(&env.key()), 0o600, "key file");
    assert_eq!(mode(env.key().parent().unwrap()), 0o700, "key folder");
    assert_eq!(mode(&env.store()), 0o600, "store file");
    for (path, bytes) in &files {
        for (_, value) in values {
            assert!(
                !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
                "{} holds {value} in plaintext",
                path.display()
            );
        }
    }
}
