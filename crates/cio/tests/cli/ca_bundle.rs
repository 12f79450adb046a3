//! The CA bundle `env` writes (and `exec`'s in-memory one) holds public certificates only,
//! is read from the caller's file only when that is a regular file, and is written only in
//! a folder that is this user's alone, never over a file cio did not write.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use testkit::tls::{CertKind, TlsFront};

use crate::util::*;

/// A line and a private-key block a caller's file may hold besides certificates.
const CANARY_LINE: &str = "AWS_SECRET_ACCESS_KEY=canary-secret-line-7f3a";
const CANARY_KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nQ0FOQVJZLVBSSVZBVEUtS0VZ\n-----END PRIVATE KEY-----\n";

/// A complete MinIO set with a CA certificate (no server needed: `env` only prints), and an
/// empty runtime folder.
struct CaSet {
    env: TestEnv,
    ca: TlsFront,
    runtime: PathBuf,
}

impl CaSet {
    fn new() -> CaSet {
        let env = TestEnv::new();
        env.minio_set(
            "",
            "s3:https://127.0.0.1:9/bucket",
            "bundle-access",
            "bundle-secret",
            "bundle password",
        );
        let ca = TlsFront::start(9, CertKind::SelfSigned);
        env.create("cio_minio_cacert", &ca.trust_pem);
        let runtime = env.dir.path().join("runtime");
        std::fs::create_dir(&runtime).unwrap();
        CaSet { env, ca, runtime }
    }

    fn folder(&self) -> PathBuf {
        self.runtime.join("cio")
    }

    fn bundle(&self) -> PathBuf {
        self.folder().join("minio-primary-ca.pem")
    }

    /// `cio credential ARGS` with the runtime folder and `vars` set, stopped after 20 s.
    fn run(&self, vars: &[(&str, &Path)], args: &[&str]) -> assert_cmd::assert::Assert {
        let mut cmd = self.env.cmd();
        cmd.env("XDG_RUNTIME_DIR", &self.runtime)
            .timeout(Duration::from_secs(20));
        for (var, value) in vars {
            cmd.env(var, value);
        }
        cmd.arg("credential").args(args).assert()
    }
}

fn assert_no_canary(what: &str, text: &str) {
    for canary in ["canary", "Q0FOQVJZ", "PRIVATE KEY"] {
        assert!(!text.contains(canary), "{what} holds {canary}: {text}");
    }
}

/// The review's finding: `env` copied whatever file the caller's SSL_CERT_FILE named into
/// the bundle (mode 0644): `SSL_CERT_FILE=$CIO_KEY_FILE cio credential env` published the
/// store key. Only the file's CERTIFICATE blocks are taken (all Go, so restic, takes of it),
/// by env, through CIO_CALLER_SSL_CERT_FILE, and by exec.
#[test]
fn a_callers_file_gives_the_bundle_its_certificates_only() {
    let t = CaSet::new();
    let caller = t.env.dir.path().join("caller.pem");
    std::fs::write(
        &caller,
        format!("{CANARY_LINE}\n{CANARY_KEY}{}", t.ca.trust_pem),
    )
    .unwrap();
    std::fs::set_permissions(&caller, std::fs::Permissions::from_mode(0o600)).unwrap();

    let out = t.run(&[("SSL_CERT_FILE", &caller)], &["env"]).success();
    assert_no_canary("env's output", &format!("{}{}", stdout(&out), stderr(&out)));
    let bundle = std::fs::read_to_string(t.bundle()).unwrap();
    assert_no_canary("the bundle", &bundle);
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2, "{bundle}");
    assert!(bundle.ends_with(&t.ca.trust_pem));

    // The store key, named as the caller's certificate file.
    let key = std::fs::read_to_string(t.env.key()).unwrap();
    t.run(&[("SSL_CERT_FILE", &t.env.key())], &["env"])
        .success();
    let bundle = std::fs::read_to_string(t.bundle()).unwrap();
    for line in key.lines().filter(|l| l.len() > 8) {
        assert!(!bundle.contains(line), "the bundle holds the key file");
    }

    // The caller's file kept in CIO_CALLER_SSL_CERT_FILE while SSL_CERT_FILE names cio's.
    let cio_bundle = t.bundle();
    t.run(
        &[
            ("SSL_CERT_FILE", &cio_bundle),
            ("CIO_CALLER_SSL_CERT_FILE", &caller),
        ],
        &["env"],
    )
    .success();
    assert_no_canary("the bundle", &std::fs::read_to_string(t.bundle()).unwrap());

    // exec's in-memory bundle.
    let out = t
        .run(
            &[("SSL_CERT_FILE", &caller)],
            &["exec", "--", "sh", "-c", "cat \"$SSL_CERT_FILE\""],
        )
        .success();
    let handed = stdout(&out);
    assert_no_canary("exec's bundle", &handed);
    assert!(handed.ends_with(&t.ca.trust_pem));
    assert_eq!(stderr(&out), "");
}

/// The review's finding: `SSL_CERT_FILE=/dev/zero cio credential env` never ended. The
/// caller's file is read only when it is a regular file (at most 16 MiB); else a warning
/// names the variable, and the bundle holds the set's CA certificate only.
#[test]
fn a_callers_file_that_is_no_regular_file_is_not_read() {
    let t = CaSet::new();
    let zero = Path::new("/dev/zero");
    let warning = |var: &str| {
        format!(
            "Warning: {var} names /dev/zero: it is a device, not a regular file: the CA bundle holds none of its certificates, only the set's CA certificate; point {var} at a regular PEM file of certificates (at most 16 MiB)\n"
        )
    };
    let out = t.run(&[("SSL_CERT_FILE", zero)], &["env"]).success();
    assert_eq!(stderr(&out), warning("SSL_CERT_FILE"));
    let bundle = std::fs::read_to_string(t.bundle()).unwrap();
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 1);
    assert!(bundle.ends_with(&t.ca.trust_pem));

    let cio_bundle = t.bundle();
    let out = t
        .run(
            &[
                ("SSL_CERT_FILE", &cio_bundle),
                ("CIO_CALLER_SSL_CERT_FILE", zero),
            ],
            &["env"],
        )
        .success();
    assert_eq!(stderr(&out), warning("CIO_CALLER_SSL_CERT_FILE"));

    let out = t
        .run(
            &[("SSL_CERT_FILE", zero)],
            &["exec", "--", "sh", "-c", "cat \"$SSL_CERT_FILE\""],
        )
        .success();
    assert_eq!(stderr(&out), warning("SSL_CERT_FILE"));
    assert_eq!(stdout(&out), t.ca.trust_pem);
}

/// The review's finding: `rotate` runs restic with the same bundle as `exec`, yet said
/// nothing of a caller's file it could not read, and restic then failed with a TLS error
/// of its own. Now it gives exec's warning, once, before restic runs (here restic then
/// fails: nothing answers at the set's URL). A file that does not exist is silent, as in
/// env and exec (Go trusts nothing from it either).
#[test]
fn rotate_says_when_the_callers_file_is_not_read() {
    let t = CaSet::new();
    let big = t.env.dir.path().join("big-ca.pem");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(17 * 1024 * 1024)
        .unwrap();
    for (file, why) in [
        (Path::new("/dev/zero"), "it is a device, not a regular file"),
        (big.as_path(), "it is larger than 16777216 bytes"),
        (t.env.dir.path(), "it is a folder, not a regular file"),
    ] {
        let out = t
            .run(
                &[("SSL_CERT_FILE", file)],
                &["rotate", "cio_minio_backup_password", "--generate"],
            )
            .failure();
        let text = stderr(&out);
        let warning = format!(
            "Warning: SSL_CERT_FILE names {}: {why}: the CA bundle holds none of its certificates, only the set's CA certificate; point SSL_CERT_FILE at a regular PEM file of certificates (at most 16 MiB)\n",
            file.display()
        );
        assert!(text.starts_with(&warning), "{text}");
        assert_eq!(text.matches("Warning: SSL_CERT_FILE").count(), 1, "{text}");
    }
    // A file that reads: no warning.
    let own = t.env.dir.path().join("own-ca.pem");
    std::fs::write(&own, &t.ca.trust_pem).unwrap();
    let out = t
        .run(
            &[("SSL_CERT_FILE", &own)],
            &["rotate", "cio_minio_backup_password", "--generate"],
        )
        .failure();
    assert!(
        !stderr(&out).contains("Warning: SSL_CERT_FILE"),
        "{}",
        stderr(&out)
    );
}

/// The hint of a refused bundle folder.
fn folder_hint(folder: &Path) -> String {
    let folder = folder.display();
    format!(
        "Hint: whoever else may write there could put their own CA certificate in the bundle restic trusts: make {folder} a folder (not a link) of this user's that only this user may write (chmod 700 {folder}), with no folder above it others may write, or set XDG_RUNTIME_DIR to one, or use 'cio credential exec', which needs no file\n"
    )
}

/// The review's finding: `env` wrote its bundle into a runtime folder others may write (so
/// may swap in their own CA), owned by another user, or through a link to another folder
/// (where it also deleted a file). Each is refused, nothing written; a missing folder is
/// made 0700.
#[test]
fn the_bundle_is_written_only_in_a_folder_of_this_users_alone() {
    let t = CaSet::new();
    let refused = |why: String, hint_folder: &Path| {
        let out = t.run(&[], &["env"]).code(1);
        assert_eq!(
            stderr(&out),
            format!(
                "Fail: Print credentials: will not write the CA bundle {}: {why}\n{}",
                t.bundle().display(),
                folder_hint(hint_folder)
            )
        );
        assert_eq!(stdout(&out), "");
    };
    let mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };

    // The runtime folder writable by anyone: refused before the bundle folder is made.
    mode(&t.runtime, 0o777);
    refused(
        format!(
            "its folder {} may be written by anyone (mode 0777)",
            t.runtime.display()
        ),
        &t.folder(),
    );
    assert!(!t.folder().exists());
    mode(&t.runtime, 0o700);

    // Missing: made, 0700.
    t.run(&[], &["env"]).success();
    let made = std::fs::metadata(t.folder()).unwrap();
    assert_eq!(made.permissions().mode() & 0o7777, 0o700);
    std::fs::remove_file(t.bundle()).unwrap();

    mode(&t.folder(), 0o777);
    refused(
        format!(
            "its folder {} may be written by anyone (mode 0777)",
            t.folder().display()
        ),
        &t.folder(),
    );
    mode(&t.folder(), 0o770);
    refused(
        format!(
            "its folder {} may be written by its group (mode 0770)",
            t.folder().display()
        ),
        &t.folder(),
    );
    mode(&t.folder(), 0o700);
    std::os::unix::fs::chown(t.folder(), Some(65534), None).unwrap();
    refused(
        format!(
            "its folder {} belongs to user id 65534, neither root nor this user",
            t.folder().display()
        ),
        &t.folder(),
    );
    assert_eq!(std::fs::read_dir(t.folder()).unwrap().count(), 0);
    std::fs::remove_dir(t.folder()).unwrap();

    // A link to another folder of this user's, holding a file under the bundle's name
    // that looks like a stale bundle: nothing written there, nothing deleted.
    let elsewhere = t.env.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let theirs = elsewhere.join("minio-primary-ca.pem");
    let stale = format!("# cio-cacert-sha256: {}\n", "0".repeat(64));
    std::fs::write(&theirs, &stale).unwrap();
    std::os::unix::fs::symlink(&elsewhere, t.folder()).unwrap();
    refused(
        format!(
            "its folder {} is a symbolic link, not a folder",
            t.folder().display()
        ),
        &t.folder(),
    );
    assert_eq!(std::fs::read_to_string(&theirs).unwrap(), stale);
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 1);
}

/// The review's finding: a user's own file under a bundle's name (no `# cio-cacert-sha256:`
/// line) was deleted by the sweep and overwritten by `env`. It is left alone and said; env
/// refuses to put its bundle over it, and says so once (its sweep's warning said the taken
/// name a second time, before the refusal).
#[test]
fn a_file_cio_did_not_write_is_neither_deleted_nor_replaced() {
    let t = CaSet::new();
    std::fs::create_dir(t.folder()).unwrap();
    std::fs::set_permissions(t.folder(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let own = format!("my own bundle\n{}", t.ca.trust_pem);
    std::fs::write(t.bundle(), &own).unwrap();
    let path = t.bundle().display().to_string();
    let out = t.run(&[], &["env"]).code(1);
    assert_eq!(
        stderr(&out),
        format!(
            "Fail: Print credentials: will not write the CA bundle {path}: it has no '# cio-cacert-sha256:' line, so it is not a bundle cio wrote\n\
             Hint: move that file elsewhere (cio never replaces a file it did not write), or use 'cio credential exec', which needs no file\n"
        )
    );
    assert_eq!(std::fs::read_to_string(t.bundle()).unwrap(), own);
    // A write that sweeps leaves it too, and warns of it.
    let out = t
        .env
        .cmd()
        .env("XDG_RUNTIME_DIR", &t.runtime)
        .args(["credential", "rm", "cio_minio_cacert"])
        .assert()
        .success();
    assert!(
        stderr(&out).contains(&format!(
            "Warning: {path} has the name of the minio primary set's CA bundle but is not one cio wrote"
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(t.bundle()).unwrap(), own);
}
