//! `exec` and `env`: a complete set reaches the engine's environment, and only there.

use crate::util::*;

const REPO: &str = "s3:http://127.0.0.1:9/handoff-bucket";
const ACCESS: &str = "handoff-access";
const SECRET: &str = "handoff-secret-'quoted'-$HOME-`x`";
const PASSWORD: &str = "handoff password \"with\" quotes";

fn with_set() -> TestEnv {
    let env = TestEnv::new();
    env.minio_set("", REPO, ACCESS, SECRET, PASSWORD);
    env
}

#[test]
fn exec_puts_the_set_in_the_environment_and_nowhere_else() {
    let env = with_set();
    let script = r#"printf '%s\n' "$RESTIC_REPOSITORY" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$RESTIC_PASSWORD" "${AWS_SESSION_TOKEN-unset}"; cat /proc/$$/cmdline | tr '\0' ' '"#;
    let out = env
        .cmd()
        .env("AWS_SESSION_TOKEN", "stale-token")
        .args(["credential", "exec", "--", "sh", "-c", script])
        .assert()
        .success();
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..5], &[REPO, ACCESS, SECRET, PASSWORD, "unset"]);
    // The child's argv (its /proc cmdline) holds no value.
    for v in [ACCESS, SECRET, PASSWORD] {
        assert!(!lines[5].contains(v), "argv leaks a value: {}", lines[5]);
    }
    assert_eq!(stderr(&out), "", "cio itself prints nothing");
}

#[test]
fn exec_status_is_the_commands() {
    let env = with_set();
    env.cio(&[
        "credential",
        "exec",
        "--provider",
        "minio",
        "--",
        "sh",
        "-c",
        "exit 7",
    ])
    .code(7);
}

#[test]
fn an_incomplete_set_runs_nothing() {
    let env = TestEnv::new();
    env.create("cio_minio_backup_repo", REPO);
    env.create("cio_minio_access_key", ACCESS);
    let marker = env.dir.path().join("ran");
    let out = env
        .cio(&[
            "credential",
            "exec",
            "--",
            "touch",
            marker.to_str().unwrap(),
        ])
        .code(1);
    assert_eq!(
        stderr(&out),
        "Fail: Run with credentials: the minio primary set is incomplete: missing cio_minio_secret_key, cio_minio_backup_password\nHint: create the missing credentials first, e.g. cio credential create cio_minio_secret_key\n"
    );
    assert!(!marker.exists(), "the command ran with half a set");
    env.cio(&["credential", "exec", "--alternate", "--", "true"])
        .code(1)
        .stderr("Fail: Run with credentials: there is no alternate set: create its four credentials (cio_{aws|minio}_alt_backup_repo, ...) first\nHint: create the set's four credentials ('cio credential create --help' lists them), or name another set with --provider aws|minio and --alternate\n");
}

#[test]
fn two_complete_sets_need_a_provider() {
    let env = with_set();
    env.create("cio_aws_backup_repo", REF_REPO);
    env.create("cio_aws_access_key", REF_ACCESS);
    env.create("cio_aws_secret_key", REF_SECRET);
    env.create("cio_aws_backup_password", "another long password");
    env.cio(&["credential", "exec", "--", "true"])
        .code(2)
        .stderr("Fail: Run with credentials: both the aws and the minio primary sets are complete: choose one with --provider aws or --provider minio\nHint: add the flags of the set to use; 'cio credential list' shows each set and what it holds\n");
    let out = env
        .cio(&[
            "credential",
            "exec",
            "--provider",
            "aws",
            "--",
            "sh",
            "-c",
            "echo $AWS_ACCESS_KEY_ID",
        ])
        .success();
    assert_eq!(stdout(&out), format!("{REF_ACCESS}\n"));
}

#[test]
fn env_output_evaluates_to_the_exact_values_in_sh() {
    let env = with_set();
    let cio = assert_cmd::cargo::cargo_bin("cio");
    let script = format!(
        r#"eval "$('{}' credential env --provider minio)" && printf '%s\n' "$RESTIC_REPOSITORY" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$RESTIC_PASSWORD""#,
        cio.display()
    );
    let out = env.cmd_sh(&script);
    assert_eq!(out, format!("{REPO}\n{ACCESS}\n{SECRET}\n{PASSWORD}\n"));
    let json = env
        .cio(&["credential", "env", "--format", "json"])
        .success();
    let v: serde_json::Value = serde_json::from_slice(&json.get_output().stdout).unwrap();
    assert_eq!(v["AWS_SECRET_ACCESS_KEY"], SECRET);
    assert_eq!(v["RESTIC_PASSWORD"], PASSWORD);
}

/// A set with a CA certificate behind TLS the system does not trust (a private CA, stunnel in
/// front of s3s-fs): `env` hands restic a bundle file in the runtime folder, and restic run
/// from the evaluated variables trusts it; a second `env` does not stack the set's CA again.
#[test]
fn env_hands_the_sets_ca_certificate_to_restic_in_a_bundle_file() {
    use testkit::s3::S3Server;
    use testkit::tls::{CertKind, TlsFront};
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("tls");
    let front = TlsFront::start(s3.port(), CertKind::PrivateCa);
    let repo = format!("s3:https://127.0.0.1:{}/tls/repo", front.port());
    let env = TestEnv::new();
    env.minio_set("", &repo, ACCESS, SECRET, PASSWORD);
    env.create("cio_minio_cacert", &front.trust_pem);
    env.cio(&["credential", "exec", "--", "restic", "--no-cache", "init"])
        .success();
    let runtime = env.dir.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    let cio = assert_cmd::cargo::cargo_bin("cio");
    let script = format!(
        r#"export XDG_RUNTIME_DIR='{}'; eval "$('{cio}' credential env)" && eval "$('{cio}' credential env)" && printf '%s\n' "$SSL_CERT_FILE" && restic snapshots --no-cache --json >/dev/null && echo works"#,
        runtime.display(),
        cio = cio.display()
    );
    let out = env.cmd_sh(&script);
    let bundle = runtime.join("cio/minio-primary-ca.pem");
    assert_eq!(out, format!("{}\nworks\n", bundle.display()));
    let text = std::fs::read_to_string(&bundle).unwrap();
    assert!(text.ends_with(&front.trust_pem), "the set's CA comes last");
    assert_eq!(text.matches(front.trust_pem.trim()).count(), 1);
    let json = env
        .cmd()
        .env("XDG_RUNTIME_DIR", &runtime)
        .args(["credential", "env", "--format", "json"])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&json.get_output().stdout).unwrap();
    assert_eq!(v["SSL_CERT_FILE"], bundle.display().to_string());
}

/// Session 12's finding, the same kind as a key file read lossily: `env` printed the CA
/// bundle's path lossily, so under a runtime folder whose name is not UTF-8 the evaluated
/// SSL_CERT_FILE named another file (U+FFFD at the byte). It is now refused before anything
/// is written, and says what to do.
#[test]
fn env_refuses_a_ca_bundle_path_it_cannot_print_exactly() {
    use std::os::unix::ffi::OsStrExt;
    use testkit::s3::S3Server;
    use testkit::tls::{CertKind, TlsFront};
    let s3 = S3Server::start(ACCESS, SECRET);
    let front = TlsFront::start(s3.port(), CertKind::PrivateCa);
    let env = TestEnv::new();
    env.minio_set("", REPO, ACCESS, SECRET, PASSWORD);
    env.create("cio_minio_cacert", &front.trust_pem);
    let runtime = env
        .dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"run\xfftime"));
    std::fs::create_dir(&runtime).unwrap();
    let out = env
        .cmd()
        .env("XDG_RUNTIME_DIR", &runtime)
        .args(["credential", "env"])
        .assert()
        .code(1);
    assert_eq!(
        stderr(&out),
        format!(
            "Fail: Print credentials: cannot write {}: its path is not UTF-8, so no shell line or JSON could name it exactly\n\
             Hint: set XDG_RUNTIME_DIR to a folder this user may write whose path is UTF-8, or use 'cio credential exec', which needs no file\n",
            // The exact file, the byte as \xFF (not U+FFFD, which names another).
            cio_credential::shown_path(&runtime.join("cio/minio-primary-ca.pem"))
        )
    );
    assert!(stdout(&out).is_empty());
    assert_eq!(
        std::fs::read_dir(&runtime).unwrap().count(),
        0,
        "something was written"
    );
}
