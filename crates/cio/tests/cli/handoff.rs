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

/// A set behind TLS from a private CA (stunnel in front of s3s-fs), with its CA certificate
/// stored and a restic repository made through it, and an empty runtime folder.
struct TlsSet {
    env: TestEnv,
    front: testkit::tls::TlsFront,
    runtime: std::path::PathBuf,
    _s3: testkit::s3::S3Server,
}

impl TlsSet {
    fn new() -> TlsSet {
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
        TlsSet {
            env,
            front,
            runtime,
            _s3: s3,
        }
    }

    fn bundle(&self) -> std::path::PathBuf {
        self.runtime.join("cio/minio-primary-ca.pem")
    }

    /// Runs `script` in sh, in the test's folder, with the runtime folder set and `$CIO`
    /// naming cio.
    fn sh(&self, script: &str) -> String {
        let cio = assert_cmd::cargo::cargo_bin("cio");
        self.env.cmd_sh(&format!(
            "cd '{}' && export XDG_RUNTIME_DIR='{}' CIO='{}'\n{script}",
            self.env.dir.path().display(),
            self.runtime.display(),
            cio.display()
        ))
    }
}

/// The review's finding: after `rm cio_minio_cacert`, a shell that had evaluated `env` kept
/// SSL_CERT_FILE naming cio's bundle (its unset line did not clear it), the bundle stayed in
/// the runtime folder, and `exec` handed the inherited SSL_CERT_FILE to restic: the removed
/// CA stayed trusted. Now the remove deletes the bundle, `env` unsets the variable, and
/// `exec` hands restic no cio bundle: restic refuses the server the removed CA vouched for.
#[test]
fn a_removed_ca_is_trusted_no_longer_through_env_or_exec() {
    let t = TlsSet::new();
    let out = t.sh(
        r#"eval "$("$CIO" credential env)" && restic snapshots --no-cache --json >/dev/null && echo trusted
"$CIO" credential rm cio_minio_cacert >/dev/null
test -e "$SSL_CERT_FILE" && echo bundle-kept || echo bundle-deleted
"$CIO" credential exec -- sh -c 'printf "%s\n" "exec: ${SSL_CERT_FILE-unset}"'
"$CIO" credential exec -- restic snapshots --no-cache --json >/dev/null 2>restic.err || echo exec-refused
eval "$("$CIO" credential env)"
printf '%s\n' "env: ${SSL_CERT_FILE-unset}"
restic snapshots --no-cache --json >/dev/null 2>>restic.err || echo shell-refused"#,
    );
    assert_eq!(
        out,
        "trusted\nbundle-deleted\nexec: unset\nexec-refused\nenv: unset\nshell-refused\n"
    );
    let why = std::fs::read_to_string(t.env.dir.path().join("restic.err")).unwrap();
    assert_eq!(
        why.matches("certificate signed by unknown authority")
            .count(),
        2,
        "{why}"
    );
    assert!(!t.bundle().exists());

    // A bundle a write elsewhere (another node, another user's runtime folder) could not
    // delete: exec hands it to no one, and exec and env delete it.
    let stale = || {
        std::fs::create_dir_all(t.bundle().parent().unwrap()).unwrap();
        let made_for = format!("# cio-cacert-sha256: {}\n", "0".repeat(64));
        std::fs::write(t.bundle(), made_for + &t.front.trust_pem).unwrap();
    };
    let bundle = t.bundle().display().to_string();
    stale();
    let out = t.sh(&format!(
        r#"export SSL_CERT_FILE='{bundle}'
"$CIO" credential exec -- sh -c 'printf "%s\n" "${{SSL_CERT_FILE-unset}}"; restic snapshots --no-cache --json >/dev/null 2>&1 || echo refused'"#
    ));
    assert_eq!(out, "unset\nrefused\n");
    assert!(!t.bundle().exists(), "exec kept the stale bundle");
    stale();
    let out = t.sh(&format!(
        r#"export SSL_CERT_FILE='{bundle}'; "$CIO" credential env | head -1"#
    ));
    assert_eq!(out, format!("unset {OVERRIDING_LINE} SSL_CERT_FILE\n"));
    assert!(!t.bundle().exists(), "env kept the stale bundle");
    let json = t
        .env
        .cmd()
        .env("XDG_RUNTIME_DIR", &t.runtime)
        .env("SSL_CERT_FILE", &bundle)
        .args(["credential", "env", "--format", "json"])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&json.get_output().stdout).unwrap();
    assert_eq!(v["SSL_CERT_FILE"], serde_json::Value::Null, "{v}");
}

/// What `env`'s first line unsets whatever the set (handoff::OVERRIDING).
const OVERRIDING_LINE: &str = "AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_DEFAULT_REGION AWS_REGION AWS_PROFILE AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE AWS_CA_BUNDLE RESTIC_REPOSITORY_FILE RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND RESTIC_FROM_REPOSITORY RESTIC_FROM_REPOSITORY_FILE RESTIC_FROM_PASSWORD RESTIC_FROM_PASSWORD_FILE RESTIC_FROM_PASSWORD_COMMAND RESTIC_FROM_KEY_HINT RESTIC_CACERT RESTIC_TLS_CLIENT_CERT";

/// A caller's own SSL_CERT_FILE is theirs: `env` puts cio's bundle in its place while the
/// set has a CA certificate (its certificates first, also on a second `env`), and gives it
/// back once the CA is removed; `exec` hands it on; a set that never had a CA leaves it.
#[test]
fn a_callers_own_ssl_cert_file_is_kept_and_comes_back_when_the_ca_goes() {
    let t = TlsSet::new();
    // The caller trusts the private CA on their own, in their own file.
    let own = t.env.dir.path().join("own-ca.pem");
    std::fs::write(&own, &t.front.trust_pem).unwrap();
    let out = t.sh(&format!(
        r#"export SSL_CERT_FILE='{own}'
eval "$("$CIO" credential env)" && eval "$("$CIO" credential env)"
printf '%s\n' "$SSL_CERT_FILE"
"$CIO" credential rm cio_minio_cacert >/dev/null
"$CIO" credential exec -- sh -c 'printf "%s\n" "$SSL_CERT_FILE"'
"$CIO" credential exec -- restic snapshots --no-cache --json >/dev/null && echo exec-trusted
eval "$("$CIO" credential env)"
printf '%s\n' "$SSL_CERT_FILE" "${{CIO_CALLER_SSL_CERT_FILE-unset}}"
restic snapshots --no-cache --json >/dev/null && echo shell-trusted
"$CIO" credential env | head -1"#,
        own = own.display()
    ));
    let own = own.display().to_string();
    assert_eq!(
        out,
        format!(
            "{bundle}\n{own}\nexec-trusted\n{own}\nunset\nshell-trusted\nunset {OVERRIDING_LINE}\n",
            bundle = t.bundle().display()
        )
    );
}

/// A CA certificate replaced (create) or brought back (restore): the bundle of the one
/// before is deleted by that write; the next `env` writes one of the new certificate only.
#[test]
fn a_replaced_ca_certificates_bundle_is_deleted_by_the_write() {
    use testkit::tls::{CertKind, TlsFront};
    let t = TlsSet::new();
    let other = TlsFront::start(9, CertKind::SelfSigned);
    let env_then = |what: &str| {
        let out = t.sh(&format!(
            r#"eval "$("$CIO" credential env)" && "$CIO" credential {what} >/dev/null && test -e "$SSL_CERT_FILE" && echo kept || echo deleted"#
        ));
        assert_eq!(out, "deleted\n", "after {what}");
    };
    let from = t.env.dir.path().join("other.pem");
    std::fs::write(&from, &other.trust_pem).unwrap();
    env_then(&format!(
        "create cio_minio_cacert --from-file '{}'",
        from.display()
    ));
    env_then("restore cio_minio_cacert --version 1");
    env_then("remove cio_minio_cacert --purge");
    // Unchanged: another write keeps it.
    t.env.create("cio_minio_cacert", &t.front.trust_pem);
    let out = t.sh(
        r#"eval "$("$CIO" credential env)" && "$CIO" credential create cio_minio_region nl-ams >/dev/null && test -e "$SSL_CERT_FILE" && echo kept"#,
    );
    assert_eq!(out, "kept\n");
    let text = std::fs::read_to_string(t.bundle()).unwrap();
    assert!(text.ends_with(&t.front.trust_pem));
    assert!(!text.contains(other.trust_pem.trim()));
}
