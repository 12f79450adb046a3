//! The catalog at the command line: nothing typed as CREDENTIALNAME or VALUE is ever repeated
//! back; white space in a password is kept only with `--allow-whitespace`; a CA certificate
//! comes from a file and is listed as a summary; a region reaches restic.

use crate::recovery::row;
use crate::util::*;

const CANARY: &str = "S3cret-Pw-Canary-1";

/// A self-signed certificate (`openssl req -x509 -newkey ec`, P-256, CN=cio-test).
const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBfDCCASOgAwIBAgIUSEfYJW35O36G0g/y0fT2ZWuiCIcwCgYIKoZIzj0EAwIw
EzERMA8GA1UEAwwIY2lvLXRlc3QwIBcNMjYxMTI5MTg1NDU4WhgPMjEyNjExMDUx
ODU0NThaMBMxETAPBgNVBAMMCGNpby10ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAEqZr1UsktseK9p+2R17HGbVcxRdwVdh8IPiFYeK/isxHRnJwlX6oIvE8Z
hTyY0hnhfchx8fdWv6rNm0HEStRqB6NTMFEwHQYDVR0OBBYEFGw/8wzyXMde7jbR
dbDR4R+i4K5hMB8GA1UdIwQYMBaAFGw/8wzyXMde7jbRdbDR4R+i4K5hMA8GA1Ud
EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgeGHsm7LtdJgRrDDMaFAGCGhF
IkAwqdICR4ghgtjfn7ECIBsnZqR5ZxjnsLdejnYVgMGkV//d5lNn1A+KflpUKACB
-----END CERTIFICATE-----
";

/// Runs `args` (text, then `--json`), expects exit `code`, and checks that neither output
/// holds the canary and that the store did not change.
fn never_echoed(env: &TestEnv, args: &[&str], code: i32) -> String {
    let before = env.snapshot_files();
    let mut last_stderr = String::new();
    for json in [false, true] {
        let mut full = vec!["credential"];
        if json {
            full.push("--json");
        }
        full.extend_from_slice(&args[1..]);
        let out = env.cio(&full).code(code);
        let (stdout, stderr) = (stdout(&out), stderr(&out));
        for text in [&stdout, &stderr] {
            assert!(
                !text.to_lowercase().contains("canary"),
                "{full:?} repeated the canary: {text}"
            );
        }
        if json {
            let doc: serde_json::Value = serde_json::from_str(&stdout)
                .unwrap_or_else(|e| panic!("{full:?}: no JSON on stdout ({e}): {stdout}"));
            assert_eq!(doc["error"]["exit_code"], code, "{full:?}");
        }
        last_stderr = stderr;
    }
    assert!(env.snapshot_files() == before, "{args:?} changed the store");
    last_stderr
}

#[test]
fn a_value_typed_where_the_name_goes_is_never_repeated() {
    let env = TestEnv::new();
    env.create("cio_aws_access_key", REF_ACCESS);
    let not_a_name =
        ": the text given as CREDENTIALNAME is not one of the 24 credential names\nHint: ";
    let create = "the name comes first, as in 'cio credential create CREDENTIALNAME [VALUE]'; 'cio credential create --help' lists the 24 names";
    // The hint shows the command that was run (an alias as the command it stands for).
    let other = |command: &str| {
        format!(
            "give one of the 24 names, as in 'cio credential {command} cio_aws_access_key'; 'cio credential create --help' lists them"
        )
    };
    for (args, action, hint) in [
        (
            &["credential", "create", CANARY][..],
            "Create credential",
            create.to_string(),
        ),
        (
            &["credential", "add", CANARY],
            "Create credential",
            create.to_string(),
        ),
        (
            &["credential", "show", CANARY],
            "Show credential",
            other("show"),
        ),
        (
            &["credential", "rm", CANARY],
            "Remove credential",
            other("remove"),
        ),
        (
            &["credential", "remove", CANARY],
            "Remove credential",
            other("remove"),
        ),
        (
            &["credential", "delete", CANARY],
            "Remove credential",
            other("remove"),
        ),
        (
            &["credential", "remove", "--purge", CANARY],
            "Purge credential",
            other("remove"),
        ),
        (
            &["credential", "restore", CANARY],
            "Restore credential",
            other("restore"),
        ),
        (
            &["credential", "history", CANARY],
            "Show history",
            other("history"),
        ),
        (
            &["credential", "validate", CANARY],
            "Validate credentials",
            other("validate"),
        ),
        (
            &["credential", "log", CANARY],
            "Show change log",
            other("log"),
        ),
        (
            &["credential", "rotate", CANARY],
            "Rotate credential",
            ROTATE_GIVE.to_string(),
        ),
    ] {
        let stderr = never_echoed(&env, args, 2);
        assert_eq!(
            stderr,
            format!("Fail: {action}{not_a_name}{hint}\n"),
            "{args:?}"
        );
    }
    let stderr = never_echoed(
        &env,
        &["credential", "create", CANARY, "cio_aws_backup_password"],
        2,
    );
    assert_eq!(
        stderr,
        "Fail: Create credential: the text given as CREDENTIALNAME is not a credential name, but the one given as VALUE is: CREDENTIALNAME comes first\nHint: nothing was changed; run 'cio credential create cio_aws_backup_password' and type or pipe the value\n"
    );
}

/// The hint of `rotate` given no name: an example it takes.
const ROTATE_GIVE: &str = "give cio_aws_backup_password or cio_minio_backup_password, as in 'cio credential rotate cio_aws_backup_password'; an access key pair is rotated with 'cio credential rotate --provider P --access-key'";

/// The review's findings: `rotate foo` gave the example 'cio credential rotate
/// cio_aws_access_key', and `rotate cio_minio_acess_key` suggested cio_minio_access_key:
/// names rotate refuses. Its suggestions and examples are names it takes, or --access-key
/// for a key; the other commands take every name, and suggest as before.
#[test]
fn rotate_suggests_only_what_it_rotates() {
    let env = TestEnv::new();
    env.create("cio_aws_access_key", REF_ACCESS);
    let fail = "Fail: Rotate credential: the text given as CREDENTIALNAME is not one of the 24 credential names\nHint: ";
    let pair = |options: &str| {
        format!(
            "an access key pair is rotated together, not by name: cio credential rotate {options} --access-key; by name, rotate takes cio_aws_backup_password or cio_minio_backup_password"
        )
    };
    for (typed, hint) in [
        ("foo", ROTATE_GIVE.to_string()),
        ("cio_minio_acess_key", pair("--provider minio")),
        ("cio_aws_secret_ky", pair("--provider aws")),
        ("cio_minio_alt_acess_key", pair("--provider minio --alternate")),
        ("cio_aws_backup_rpo", ROTATE_GIVE.to_string()),
        ("cio_aws_alt_backup_pasword", ROTATE_GIVE.to_string()),
        (
            "cio_minio_backup_pasword",
            "did you mean cio_minio_backup_password? an access key pair is rotated with 'cio credential rotate --provider P --access-key'".to_string(),
        ),
    ] {
        let stderr = never_echoed(&env, &["credential", "rotate", typed], 2);
        assert_eq!(stderr, format!("{fail}{hint}\n"), "{typed}");
    }
    // A key's exact name: rotate's own refusal, naming the set's --access-key.
    let stderr = never_echoed(&env, &["credential", "rotate", "cio_aws_access_key"], 2);
    assert!(
        stderr.ends_with("Hint: rotate cio_aws_access_key's pair with 'cio credential rotate --provider aws --access-key', or name a cio_{aws|minio}_backup_password; nothing was changed\n"),
        "{stderr}"
    );
    // Commands that take every name suggest the key.
    let stderr = never_echoed(&env, &["credential", "show", "cio_minio_acess_key"], 2);
    assert!(
        stderr.ends_with("Hint: did you mean cio_minio_access_key? 'cio credential create --help' lists the 24 names\n"),
        "{stderr}"
    );
}

#[test]
fn a_refused_value_is_never_repeated() {
    let env = TestEnv::new();
    env.create("cio_aws_access_key", REF_ACCESS);
    let userinfo = format!("s3:https://backup:{CANARY}@s3.amazonaws.com/backup-123");
    let no_prefix = format!("https://s3.amazonaws.com/{CANARY}");
    let bad_host = format!("s3:https://{CANARY} .example/backup-123");
    let padded = format!(" {CANARY}");
    let bad_region = format!("{CANARY}/1");
    for args in [
        ["credential", "create", "cio_aws_access_key", CANARY],
        ["credential", "create", "cio_aws_secret_key", CANARY],
        ["credential", "create", "cio_aws_region", &bad_region],
        ["credential", "create", "cio_aws_cacert", CANARY],
        ["credential", "create", "cio_aws_backup_repo", &userinfo],
        ["credential", "create", "cio_aws_backup_repo", &no_prefix],
        ["credential", "create", "cio_aws_backup_repo", &bad_host],
        ["credential", "create", "cio_aws_backup_password", &padded],
    ] {
        never_echoed(&env, &args, 1);
    }
}

#[test]
fn white_space_in_a_password_is_kept_only_with_the_flag_the_error_names() {
    let env = TestEnv::new();
    let name = "cio_minio_alt_backup_password";
    let value = "  another cluster's\tpassword";
    let out = env.cio_in(&["credential", "create", name], value).code(1);
    assert_eq!(
        stderr(&out),
        format!(
            "Fail: Create credential: {name}: the value starts or ends with white space (a common paste error); remove it\nHint: nothing was changed; if the white space is part of the password (restic accepts it, e.g. another cluster's), run the command again with --allow-whitespace (--allow-any-character if it also holds line breaks or invisible characters)\n"
        )
    );
    assert!(!env.store().exists());
    let out = env
        .cio_in(&["credential", "create", name, "--allow-whitespace"], value)
        .success();
    assert_eq!(
        stderr(&out),
        format!(
            "Warning: {name}: the repository password starts or ends with white space or holds a tab, kept as given (--allow-whitespace): restic needs exactly these characters\n"
        )
    );
    assert_eq!(env.reveal(name), value);
    // A line break is a paste error even with the flag.
    env.cio_in(
        &["credential", "create", name, "--allow-whitespace"],
        "password\n\n",
    )
    .code(1);
    assert_eq!(env.reveal(name), value);
}

/// The review's finding: restic takes a password with a zero-width non-joiner (which
/// Persian writing needs), a soft hyphen or a line break, and cio refused it with no way
/// around. `--allow-any-character` keeps it, and exec hands restic exactly those bytes.
#[test]
fn any_character_in_a_password_is_kept_with_the_flag_the_error_names() {
    let env = TestEnv::new();
    let name = "cio_minio_backup_password";
    let value =
        "\u{645}\u{6cc}\u{200c}\u{62e}\u{648}\u{627}\u{647}\u{645}-soft\u{ad}hyphen\nline two";
    let out = env.cio_in(&["credential", "create", name], value).code(1);
    assert_eq!(
        stderr(&out),
        format!(
            "Fail: Create credential: {name}: the value contains an invisible character (U+200C) at position 3, a common paste error; retype it without one\nHint: nothing was changed; if the character is part of the password (restic accepts it, e.g. another cluster's), run the command again with --allow-any-character\n"
        )
    );
    assert!(!env.store().exists());
    let out = env
        .cio_in(
            &["credential", "create", name, "--allow-any-character"],
            value,
        )
        .success();
    assert_eq!(
        stderr(&out),
        format!(
            "Warning: {name}: the repository password holds line breaks, control or invisible characters, kept as given (--allow-any-character): restic needs exactly these characters\n"
        )
    );
    env.create(
        "cio_minio_backup_repo",
        "s3:https://minio.example:9000/bucket",
    );
    env.create("cio_minio_access_key", "minio-access");
    env.create("cio_minio_secret_key", "minio-secret-key");
    let out = env
        .cio(&[
            "credential",
            "exec",
            "--",
            "sh",
            "-c",
            "printf %s \"$RESTIC_PASSWORD\"",
        ])
        .success();
    assert_eq!(stdout(&out), value);
    // NUL stays refused: no environment variable can hold it.
    let out = env
        .cio_in(
            &["credential", "create", name, "--allow-any-character"],
            "nul\0byte",
        )
        .code(1);
    assert!(
        stderr(&out)
            .contains("a NUL character at position 4, which no environment variable can hold"),
        "{}",
        stderr(&out)
    );
}

/// The review's finding: a 22-character MinIO access key ending in a family emoji (one
/// character of 5 code points joined by U+200D) showed in `show` and `list` as
/// `****************\u{200d}👩\u{200d}👧`: its last 4 code points, the emoji cut apart and a
/// joiner escaped as text. A tail that cannot be shown whole and as it is is not shown.
#[test]
fn a_key_whose_tail_would_cut_an_emoji_apart_is_masked_whole() {
    let env = TestEnv::new();
    env.create(
        "cio_minio_access_key",
        "abcdefghijklmnopq\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}",
    );
    env.create("cio_minio_secret_key", "ключ-из-двадцати-букв");
    let stars = "****************";
    let show = stdout(
        &env.cio(&["credential", "show", "cio_minio_access_key"])
            .success(),
    );
    assert_eq!(row(&show, "value:")[1], stars, "{show}");
    let list = stdout(&env.cio(&["credential", "list"]).success());
    assert_eq!(row(&list, "cio_minio_access_key")[3], stars, "{list}");
    // A tail of whole characters is still shown.
    assert_eq!(
        row(&list, "cio_minio_secret_key")[3],
        format!("{stars}букв")
    );
    let json = |args: &[&str]| -> serde_json::Value {
        let out = env.cio(args).success();
        serde_json::from_slice(&out.get_output().stdout).expect("valid JSON")
    };
    let v = json(&["credential", "show", "cio_minio_access_key", "--json"]);
    assert_eq!(v["value"], stars);
    let v = json(&["credential", "list", "--json"]);
    assert_eq!(v["credentials"][0]["name"], "cio_minio_access_key");
    assert_eq!(v["credentials"][0]["value"], stars);
}

#[test]
fn a_ca_certificate_comes_from_a_file_and_is_listed_as_a_summary() {
    let env = TestEnv::new();
    let pem = env.dir.path().join("private-ca.pem");
    std::fs::write(&pem, CERT).expect("writing the PEM file");
    let path = pem.to_str().expect("a UTF-8 path");
    env.cio(&[
        "credential",
        "create",
        "cio_minio_cacert",
        "--from-file",
        path,
    ])
    .success();
    env.create("cio_minio_region", "nl-ams");
    assert_eq!(env.reveal("cio_minio_cacert"), CERT.trim_end());
    let list = stdout(&env.cio(&["credential", "list"]).success());
    let summary = format!("PEM, 1 certificate, {} bytes", CERT.trim_end().len());
    assert!(list.contains(&summary), "{list}");
    assert!(list.contains("nl-ams"), "{list}");

    let refused = |file: &str, why: &str| {
        let out = env
            .cio(&[
                "credential",
                "create",
                "cio_minio_alt_cacert",
                "--from-file",
                file,
            ])
            .code(1);
        assert_eq!(
            stderr(&out),
            format!(
                "Fail: Create credential: cio_minio_alt_cacert: {why}\nHint: nothing was changed; give --from-file the path of a readable file, e.g. --from-file /etc/ssl/private-ca.pem\n"
            )
        );
    };
    refused(
        "/dev/zero",
        "the path given with --from-file is not a regular file or a pipe",
    );
    refused(
        env.dir.path().to_str().expect("a UTF-8 path"),
        "the path given with --from-file is not a regular file or a pipe",
    );
    // A pipe is read to its end: process substitution, as bash gives it (/dev/fd/63).
    let pem = env.dir.path().join("piped-ca.pem");
    std::fs::write(&pem, CERT).expect("writing the PEM file");
    let out = bash(
        &env,
        &format!(
            "credential create cio_minio_alt_cacert --from-file <(cat '{}')",
            pem.display()
        ),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.reveal("cio_minio_alt_cacert"), CERT.trim_end());
    // A pipe whose writer takes its time: said after two seconds, then read.
    let out = bash(
        &env,
        "credential create cio_minio_alt_region --from-file <(sleep 3; printf nl-ams)",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Warning: waiting for the value of cio_minio_alt_region from the pipe given with --from-file, whose writer has not ended it\n"
    );
    assert_eq!(env.reveal("cio_minio_alt_region"), "nl-ams");
    let out = env
        .cio_in(
            &["credential", "create", "cio_minio_alt_cacert"],
            "not a certificate",
        )
        .code(1);
    assert_eq!(
        stderr(&out),
        "Fail: Create credential: cio_minio_alt_cacert: the value holds no PEM certificate (a block from '-----BEGIN CERTIFICATE-----' to '-----END CERTIFICATE-----')\nHint: nothing was changed; give the PEM file itself: cio credential create cio_minio_alt_cacert --from-file PATH\n"
    );
}

#[test]
fn a_stored_region_reaches_restic_as_aws_default_region() {
    let env = TestEnv::new();
    env.minio_set(
        "",
        "s3:http://127.0.0.1:9000/backups",
        "backup-user",
        "minio-secret-key",
        "a long repository password",
    );
    env.create("cio_minio_region", "nl-ams");
    let out = env
        .cio(&[
            "credential",
            "exec",
            "--",
            "sh",
            "-c",
            "printf '%s' \"$AWS_DEFAULT_REGION\"",
        ])
        .success();
    assert_eq!(stdout(&out), "nl-ams");
}

/// `cio ARGS` run by bash (for its process substitution), in `env`.
fn bash(env: &TestEnv, args: &str) -> std::process::Output {
    let cio = assert_cmd::cargo::cargo_bin("cio");
    env.shell("bash", &format!("'{}' {args}", cio.display()))
}
