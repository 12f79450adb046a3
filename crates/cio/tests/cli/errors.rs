//! Bad input gets a clear error, the right exit code, and changes nothing.

use std::os::unix::fs::PermissionsExt;

use crate::util::*;

/// Runs a command that must fail with `code` and exactly `stderr`, and checks that no file of
/// the store or key changed.
fn refused(env: &TestEnv, args: &[&str], input: &[u8], code: i32, expected_stderr: &str) {
    let before = env.snapshot_files();
    let out = env.cio_in(args, input.to_vec()).code(code);
    assert_eq!(redact(env, &stderr(&out)), expected_stderr, "for {args:?}");
    assert_eq!(stdout(&out), "", "for {args:?}");
    assert!(env.snapshot_files() == before, "{args:?} changed the store");
}

/// A store with one credential, so that "changed nothing" has something to keep.
fn seeded() -> TestEnv {
    let env = TestEnv::new();
    env.create("cio_aws_access_key", REF_ACCESS);
    env
}

#[test]
fn unknown_names_are_refused_with_a_suggestion() {
    let env = seeded();
    refused(
        &env,
        &["credential", "create", "cio_aws_acess_key", "x"],
        b"",
        2,
        "Fail: Create credential: the text given as CREDENTIALNAME is not one of the 24 credential names\nHint: did you mean cio_aws_access_key? 'cio credential create --help' lists the 24 names\n",
    );
    refused(
        &env,
        &["credential", "remove", "backup"],
        b"",
        2,
        "Fail: Remove credential: the text given as CREDENTIALNAME is not one of the 24 credential names\nHint: give one of the 24 names, as in 'cio credential remove cio_aws_access_key'; 'cio credential create --help' lists them\n",
    );
}

#[test]
fn an_option_given_twice_is_said_as_such() {
    let env = seeded();
    for (args, option) in [
        (
            &["credential", "create", "cio_aws_region", "--json", "--json"][..],
            "--json",
        ),
        (
            &["credential", "list", "--store", "a", "--store=b"],
            "--store <STORE>",
        ),
        (
            &[
                "credential",
                "create",
                "cio_aws_cacert",
                "--from-file",
                "a",
                "--from-file",
                "b",
            ],
            "--from-file <PATH>",
        ),
    ] {
        let out = env.cio(args).code(2);
        let stderr = stderr(&out);
        assert_eq!(
            stderr,
            format!(
                "Fail: usage: {option} is given more than once\nHint: give each option once; run the command again without the repeated one\n"
            ),
            "for {args:?}"
        );
    }
}

#[test]
fn bad_values_are_refused_with_the_rule_they_broke() {
    let env = seeded();
    let hint = "Hint: nothing was changed; correct the value and run the command again\n";
    let cases: &[(&str, &[u8], &str)] = &[
        ("cio_minio_backup_password", b"", "the value is empty"),
        ("cio_minio_backup_password", b"\n", "the value is empty"),
        (
            "cio_minio_secret_key",
            b"minio-secret \n",
            "the value starts or ends with white space (a common paste error); remove it",
        ),
        (
            "cio_minio_secret_key",
            b" minio-secret",
            "the value starts or ends with white space (a common paste error); remove it",
        ),
        (
            "cio_minio_secret_key",
            b"minio\nsecret",
            "the value contains a line break; a credential is one line",
        ),
        (
            "cio_minio_secret_key",
            b"minio\x1bsecret",
            "the value contains a control character at position 6; retype it without one",
        ),
        (
            "cio_aws_backup_repo",
            b"https://s3.amazonaws.com/backup-123",
            "a repository URL starts with 's3:' (restic's S3 repository syntax); put 's3:' in front of it, as in s3:https://HOST/BUCKET",
        ),
        (
            "cio_aws_backup_repo",
            b"s3:https://s3.amazonaws.com/",
            "the repository URL names no bucket; write it as s3:https://HOST/BUCKET",
        ),
        (
            "cio_aws_backup_repo",
            b"s3:https://s3.amazonaws.com/backup..123",
            "the bucket name is not valid: use 3 to 63 letters, digits, '.' or '-', starting and ending with a letter or digit, not shaped like an IP address, without '..', '.-' or '-.'",
        ),
        (
            "cio_aws_access_key",
            b"AKIA123",
            "an AWS access key is 16 to 128 uppercase letters and digits (like AKIAIOSFODNN7EXAMPLE); this one is 7 characters",
        ),
        (
            "cio_aws_access_key",
            b"akiayhd623ggzx7vdfmj",
            "an AWS access key is uppercase letters and digits only (like AKIAIOSFODNN7EXAMPLE)",
        ),
        (
            "cio_aws_secret_key",
            b"0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8v",
            "an AWS secret key is exactly 40 characters; this one is 38",
        ),
        (
            "cio_aws_secret_key",
            b"0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8vZ-",
            "an AWS secret key is letters, digits, '/', '+' and '=' only",
        ),
        (
            "cio_minio_secret_key",
            "\u{FEFF}minio-secret".as_bytes(),
            "the value contains an invisible character (U+FEFF) at position 1, a common paste error; retype it without one",
        ),
        (
            "cio_minio_access_key",
            b"ab",
            "a MinIO access key is at least 3 characters; this one is 2",
        ),
    ];
    for (name, input, why) in cases {
        refused(
            &env,
            &["credential", "create", name],
            input,
            1,
            &format!("Fail: Create credential: {name}: {why}\n{hint}"),
        );
    }
    let long = "x".repeat(4097);
    refused(
        &env,
        &["credential", "create", "cio_minio_backup_password", &long],
        b"",
        1,
        &format!(
            "Warning: a secret on the command line lands in shell history and the process list; next time run 'cio credential create cio_minio_backup_password' and type or pipe the value\nFail: Create credential: cio_minio_backup_password: the value is 4097 bytes long; at most 4096 are accepted\n{hint}"
        ),
    );
    // The same value replaced by a bad one keeps the old one.
    refused(
        &env,
        &["credential", "create", "cio_aws_access_key"],
        b"bad",
        1,
        "Fail: Create credential: cio_aws_access_key: an AWS access key is uppercase letters and digits only (like AKIAIOSFODNN7EXAMPLE)\nHint: nothing was changed; correct the value and run the command again\n",
    );
    assert_eq!(env.reveal("cio_aws_access_key"), REF_ACCESS);
}

#[test]
fn non_utf8_standard_input_is_refused() {
    let env = seeded();
    refused(
        &env,
        &["credential", "create", "cio_minio_secret_key"],
        b"\xff\xfeminio-secret\n",
        1,
        "Fail: Create credential: cio_minio_secret_key: the value given is not UTF-8 text\nHint: nothing was changed; pipe the value alone, as UTF-8 text, e.g. printf '%s' \"$VALUE\" | cio credential create NAME\n",
    );
}

/// Session 12's review: a CA certificate file over the limit was told to give "the PEM
/// file itself" (what was given), and one over what cio reads at all to pipe the value
/// (which meets the same limit); neither said what fits.
#[test]
fn values_too_large_are_told_what_fits() {
    let env = seeded();
    // The value is the file less its last line break.
    let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    for (size, expected) in [
        (
            100_000,
            "Fail: Create credential: cio_aws_cacert: the value is 99999 bytes long; at most 65536 are accepted\nHint: nothing was changed; keep only the CA certificates the server's chain needs (those that sign it, not a whole system bundle)\n",
        ),
        (
            450_000,
            "Fail: Create credential: cio_aws_cacert: the value read is larger than 131072 bytes\nHint: nothing was changed; no credential is that large (a CA certificate at most 64 KiB, every other value 4096 bytes): give the value alone, or for a CA certificate only the certificates the server's chain needs\n",
        ),
    ] {
        let file = env.dir.path().join(format!("ca-{size}.pem"));
        let mut pem = cert.repeat(size / cert.len());
        pem.push_str(&"\n".repeat(size - pem.len()));
        std::fs::write(&file, pem).unwrap();
        refused(
            &env,
            &[
                "credential",
                "create",
                "cio_aws_cacert",
                "--from-file",
                file.to_str().unwrap(),
            ],
            b"",
            1,
            expected,
        );
    }
}

/// A name that holds no value says why, as far as the store can tell, and what can be done:
/// a removed one is brought back, a purged one cannot be, one never written is created.
#[test]
fn a_removed_or_purged_credential_says_so_and_what_can_be_done() {
    let env = seeded();
    env.create("cio_minio_region", "us-east-1");
    env.cio(&["credential", "remove", "cio_minio_region"])
        .success();
    for args in [
        &["credential", "remove", "cio_minio_region"][..],
        &["credential", "show", "cio_minio_region"],
    ] {
        let action = if args[1] == "show" { "Show" } else { "Remove" };
        refused(
            &env,
            args,
            b"",
            1,
            &format!(
                "Fail: {action} credential: cio_minio_region is already removed\nHint: 'cio credential restore cio_minio_region' brings it back ('cio credential history cio_minio_region' lists its versions)\n"
            ),
        );
    }

    env.create("cio_aws_region", "us-east-1");
    env.cio(&["credential", "remove", "--purge", "cio_aws_region"])
        .success();
    for (args, action) in [
        (
            &["credential", "restore", "cio_aws_region"][..],
            "Restore credential",
        ),
        (&["credential", "history", "cio_aws_region"], "Show history"),
        (&["credential", "show", "cio_aws_region"], "Show credential"),
        (&["credential", "rm", "cio_aws_region"], "Remove credential"),
        (
            &["credential", "rm", "--purge", "cio_aws_region"],
            "Purge credential",
        ),
        // The name given to validate says the same (it offered 'restore NAME' too).
        (
            &["credential", "validate", "cio_aws_region"],
            "Validate credentials",
        ),
    ] {
        refused(
            &env,
            args,
            b"",
            1,
            &format!(
                "Fail: {action}: cio_aws_region was purged: every version of it was destroyed, so it cannot be brought back\nHint: create it again with 'cio credential create cio_aws_region'; 'cio credential log' shows who purged it and when\n"
            ),
        );
    }
    refused(
        &env,
        &["credential", "restore", "cio_aws_cacert"],
        b"",
        1,
        "Fail: Restore credential: cio_aws_cacert does not exist: this store has never held it\nHint: create it with 'cio credential create cio_aws_cacert'; 'cio credential list' shows what exists\n",
    );

    // A migrated store's change log begins with the migration (the purge is in the
    // source's): it cannot tell a purge from a name never written, and says both.
    let target = env.dir.path().join("migrated.db");
    env.cio(&[
        "credential",
        "migrate",
        "--to",
        &target.display().to_string(),
    ])
    .success();
    let before = std::fs::read(&target).unwrap();
    let out = env
        .cmd()
        .env("CIO_STORE", &target)
        .args(["credential", "restore", "cio_aws_region"])
        .write_stdin("")
        .assert()
        .code(1);
    assert_eq!(
        stderr(&out),
        "Fail: Restore credential: cio_aws_region does not exist: it was purged or never created (this store's change log cannot tell which)\n\
         Hint: either way nothing brings it back: create it with 'cio credential create cio_aws_region'; 'cio credential list' shows what exists\n"
    );
    assert!(
        std::fs::read(&target).unwrap() == before,
        "the store changed"
    );
}

#[test]
fn removing_what_does_not_exist_is_an_error() {
    let env = seeded();
    refused(
        &env,
        &["credential", "remove", "cio_aws_backup_repo"],
        b"",
        1,
        "Fail: Remove credential: cio_aws_backup_repo does not exist: this store has never held it\nHint: create it with 'cio credential create cio_aws_backup_repo'; 'cio credential list' shows what exists\n",
    );
    // On a store that does not exist yet, too, and it is not created.
    let fresh = TestEnv::new();
    refused(
        &fresh,
        &["credential", "remove", "cio_aws_backup_repo"],
        b"",
        1,
        "Fail: Remove credential: cio_aws_backup_repo does not exist: this store has never held it\nHint: create it with 'cio credential create cio_aws_backup_repo'; 'cio credential list' shows what exists\n",
    );
    assert!(!fresh.store().exists());
}

#[test]
fn usage_errors_exit_2() {
    let env = seeded();
    env.cio(&["credential", "create"]).code(2);
    env.cio(&["credential", "frobnicate"]).code(2);
    env.cio(&["credential", "exec"]).code(2);
    env.cio(&[
        "credential",
        "restore",
        "cio_aws_access_key",
        "--version",
        "x",
    ])
    .code(2);
}

#[test]
fn a_credential_option_before_credential_says_where_it_goes() {
    let env = seeded();
    let out = env
        .cio(&["--store", "/tmp/Canary-Store.db", "credential", "list"])
        .code(2);
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        "Fail: usage: --store is an option of the credential commands\nHint: give it after 'credential', as in: cio credential list --store STORE\n"
    );
    let out = env.cio(&["--json", "credential", "list"]).code(2);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        v["error"]["message"],
        "usage: --json is an option of the credential commands"
    );
    // Any other unknown option keeps the general message, and no typed text is shown.
    let out = env.cio(&["--Canary-Pw", "credential", "list"]).code(2);
    assert!(
        stderr(&out).starts_with("Fail: usage: an argument that this command does not take\n"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("Canary"));
}

#[test]
fn a_key_that_does_not_match_the_store_names_both_fingerprints() {
    let env = seeded();
    let other = TestEnv::new();
    other.create("cio_aws_access_key", REF_ACCESS);
    std::fs::copy(other.key(), env.key()).unwrap();
    let out = env.cio(&["credential", "list"]).code(3);
    let text = redact(&env, &stderr(&out));
    let fp = regex_lite::Regex::new(r"[0-9a-f]{16}").unwrap();
    let fps: Vec<&str> = fp.find_iter(&text).map(|m| m.as_str()).collect();
    assert_eq!(fps.len(), 2, "{text}");
    assert_ne!(fps[0], fps[1]);
    insta::assert_snapshot!("key_mismatch", fp.replace_all(&text, "[FP]"));
    // Writing is refused too, and changes nothing.
    let before = env.snapshot_files();
    env.cio_in(&["credential", "create", "cio_aws_backup_repo"], REF_REPO)
        .code(3);
    assert!(env.snapshot_files() == before);
}

#[test]
fn a_key_file_readable_by_others_is_refused() {
    let env = seeded();
    std::fs::set_permissions(env.key(), std::fs::Permissions::from_mode(0o644)).unwrap();
    refused(
        &env,
        &["credential", "list"],
        b"",
        3,
        "Fail: List credentials: key file [TMP]/etc/credential.key may be read or changed by group or others (mode 0644); a key must be private\nHint: run: chmod 600 [TMP]/etc/credential.key\n",
    );
    refused(
        &env,
        &["credential", "create", "cio_aws_backup_repo"],
        REF_REPO.as_bytes(),
        3,
        "Fail: Create credential: key file [TMP]/etc/credential.key may be read or changed by group or others (mode 0644); a key must be private\nHint: run: chmod 600 [TMP]/etc/credential.key\n",
    );
}

#[test]
fn a_missing_key_with_an_existing_store_is_an_error_and_no_new_key_is_made() {
    let env = seeded();
    std::fs::remove_file(env.key()).unwrap();
    let out = env.cio(&["credential", "list"]).code(3);
    let fp = regex_lite::Regex::new(r"[0-9a-f]{16}").unwrap();
    insta::assert_snapshot!(
        "key_missing",
        fp.replace_all(&redact(&env, &stderr(&out)), "[FP]")
    );
    env.cio_in(&["credential", "create", "cio_aws_backup_repo"], REF_REPO)
        .code(3);
    assert!(!env.key().exists(), "no new key for old data");
}

#[test]
fn a_corrupt_or_foreign_store_is_refused_and_left_alone() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.store().parent().unwrap()).unwrap();
    std::fs::write(env.store(), vec![0x42u8; 8192]).unwrap();
    refused(
        &env,
        &["credential", "create", "cio_aws_backup_repo"],
        REF_REPO.as_bytes(),
        3,
        "Fail: Create credential: [TMP]/state/credentials.db is not a cio credential store: not a SQLite database\nHint: point --store / CIO_STORE at a cio credential store, or move [TMP]/state/credentials.db away to start a new one\n",
    );
    refused(
        &env,
        &["credential", "list"],
        b"",
        3,
        "Fail: List credentials: [TMP]/state/credentials.db is not a cio credential store: not a SQLite database\nHint: point --store / CIO_STORE at a cio credential store, or move [TMP]/state/credentials.db away to start a new one\n",
    );
}

/// A store path that names a device or a kernel file is refused, and the hint never says to
/// move it away (it said "move /dev/null away to start a new one"); /proc/self/mem was
/// "being changed outside cio", with the hint to remove it.
#[test]
fn a_device_or_kernel_file_at_the_store_path_is_refused_with_a_hint_that_works() {
    let env = seeded();
    let hint = "Hint: point --store / CIO_STORE at a cio credential store: a regular file on a disk, or a path where no file is yet, where cio makes a new store; cio never writes over what is there\n";
    for (store, what) in [
        ("/dev/null", "a device"),
        (
            "/proc/self/mem",
            "a file of the kernel's /proc file system, not one on a disk",
        ),
    ] {
        refused(
            &env,
            &[
                "credential",
                "create",
                "cio_aws_backup_repo",
                "--store",
                store,
            ],
            REF_REPO.as_bytes(),
            3,
            &format!(
                "Fail: Create credential: {store} is not a cio credential store: it is {what}\n{hint}"
            ),
        );
        refused(
            &env,
            &["credential", "list", "--store", store],
            b"",
            3,
            &format!(
                "Fail: List credentials: {store} is not a cio credential store: it is {what}\n{hint}"
            ),
        );
    }
}

/// The review's finding: a store path ending in '/' ("cannot be created: Not a directory")
/// left a new key file behind; a read of it said the store was empty.
#[test]
fn a_store_path_that_ends_in_a_slash_is_refused_before_any_key_is_made() {
    let env = TestEnv::new();
    let store = format!("{}/", env.store().display());
    let said = "is not a cio credential store: it is a name that ends in '/', '/.' or '/..', which only a folder can have";
    let out = env
        .cio_in(
            &[
                "credential",
                "create",
                "cio_aws_backup_repo",
                "--store",
                &store,
            ],
            REF_REPO,
        )
        .code(3);
    assert!(stderr(&out).contains(said), "{}", stderr(&out));
    assert!(
        !env.key().exists(),
        "no key made for a store that cannot be"
    );
    let out = env.cio(&["credential", "list", "--store", &store]).code(3);
    assert!(stderr(&out).contains(said), "{}", stderr(&out));
}

#[test]
fn a_store_path_that_cannot_be_written_is_an_error() {
    let env = TestEnv::new();
    // The store's folder is a file: no user, not even root, can create the store there.
    std::fs::write(env.dir.path().join("state"), b"a file").unwrap();
    let out = env
        .cio_in(&["credential", "create", "cio_aws_backup_repo"], REF_REPO)
        .code(3);
    let text = redact(&env, &stderr(&out));
    assert!(
        text.starts_with("Fail: Create credential: the credential store [TMP]/state/credentials.db cannot be opened: Not a directory (os error 20)\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "\nHint: check that [TMP]/state/credentials.db and its folder exist and are writable"
        ),
        "{text}"
    );
    // The review's finding: a new key file was made first, and stayed.
    assert!(
        !env.key().exists(),
        "no key made for a store that cannot be"
    );
}

#[test]
fn errors_never_contain_the_value() {
    let env = seeded();
    let secret = "Sup3r-Secret-Value-With-Trailing-Space ";
    let out = env
        .cio_in(&["credential", "create", "cio_minio_secret_key"], secret)
        .code(1);
    assert!(!stderr(&out).contains("Sup3r"));
    let out = env
        .cio(&["credential", "create", "cio_minio_secretkey", secret])
        .code(2);
    assert!(!stderr(&out).contains("Sup3r"));
}

#[test]
fn with_json_a_failure_is_also_a_json_document() {
    let env = seeded();
    let out = env
        .cio(&["credential", "remove", "cio_aws_backup_repo", "--json"])
        .code(1);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["error"]["exit_code"], 1);
    assert_eq!(
        v["error"]["message"],
        "Remove credential: cio_aws_backup_repo does not exist: this store has never held it"
    );
    assert!(stderr(&out).starts_with("Fail: Remove credential"));
}

#[test]
fn a_mistyped_command_line_never_repeats_what_was_typed() {
    let env = seeded();
    for args in [
        &[
            "credential",
            "create",
            "cio_minio_backup_password",
            "--my-pass-Secret",
        ][..],
        &[
            "credential",
            "create",
            "cio_minio_secret_key",
            "-SuperSecret99",
        ],
        &[
            "credential",
            "create",
            "cio_minio_backup_password",
            "correct",
            "horse",
            "battery",
        ],
    ] {
        let before = env.snapshot_files();
        let out = env.cio(args).code(2);
        let text = stderr(&out);
        assert_eq!(
            text,
            "Fail: usage: an argument that this command does not take\nHint: run 'cio credential --help' (or COMMAND --help; 'cio --help' for completion); a value with spaces needs quotes, and one that starts with '-' goes after '--' (cio credential create NAME -- VALUE), or better on standard input\n"
        );
        assert!(env.snapshot_files() == before);
    }
    env.cio(&[
        "credential",
        "restore",
        "cio_aws_access_key",
        "--version",
        "x",
    ])
    .code(2)
    .stderr(predicates::str::starts_with(
        "Fail: usage: invalid value for one of the arguments: --version <N>\n",
    ));
    // A value that starts with '-' works after '--'.
    env.cio(&[
        "credential",
        "create",
        "cio_minio_secret_key",
        "--",
        "-leading-dash",
    ])
    .success();
    assert_eq!(env.reveal("cio_minio_secret_key"), "-leading-dash");
}

#[test]
fn a_first_write_whose_key_cannot_be_made_leaves_no_store() {
    let env = TestEnv::new();
    // The key's folder is a file: the key cannot be created.
    std::fs::write(env.dir.path().join("etc"), b"a file").unwrap();
    env.cio_in(&["credential", "create", "cio_aws_backup_repo"], REF_REPO)
        .code(3);
    assert!(!env.store().exists(), "a store was left behind");
}

/// The key's own folder may not be writable by others, sticky or not (as OpenSSH's checks):
/// others could put files under the names cio gives its own beside the key. A sticky folder
/// above it (as /tmp) is fine; a path that is refused leaves no folder behind.
#[test]
fn a_key_in_a_folder_others_may_write_is_refused_even_when_sticky() {
    for (mode, key) in [
        (0o1777, "sticky/credential.key"),
        (0o777, "open/sub/credential.key"),
    ] {
        let env = TestEnv::new();
        let folder = env.dir.path().join(key.split('/').next().unwrap());
        std::fs::create_dir(&folder).unwrap();
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(mode)).unwrap();
        let path = env.dir.path().join(key);
        let out = env
            .cmd()
            .env("CIO_KEY_FILE", &path)
            .args(["credential", "create", "cio_aws_backup_repo"])
            .write_stdin(REF_REPO)
            .assert()
            .code(3);
        assert!(
            stderr(&out).contains(&format!("may be written by anyone (mode {mode:04o})")),
            "{}",
            stderr(&out)
        );
        assert!(!path.exists() && !env.store().exists());
        assert!(
            !env.dir.path().join("open/sub").exists(),
            "a folder was left behind"
        );
    }
    // Under a sticky folder, in a private one: fine.
    let env = TestEnv::new();
    let sticky = env.dir.path().join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).unwrap();
    env.cmd()
        .env("CIO_KEY_FILE", sticky.join("private/credential.key"))
        .args(["credential", "create", "cio_aws_backup_repo"])
        .write_stdin(REF_REPO)
        .assert()
        .success();
}
