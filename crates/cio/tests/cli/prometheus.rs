//! `validate --prometheus FILE`: node_exporter textfile metrics, checked by the real
//! `promtool check metrics` (Debian package `prometheus`), against a real S3 server.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::{Command, Stdio};

use testkit::s3::S3Server;

use crate::util::*;

const ACCESS: &str = "metrics-access";
const SECRET: &str = "metrics-secret-key";
const PASSWORD: &str = "metrics repository password";

/// `promtool check metrics` on the file: its findings (empty when it has none).
fn promtool(path: &Path) -> String {
    let file = std::fs::File::open(path).unwrap();
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::from(file))
        .output()
        .expect(
            "promtool must be installed (Debian package prometheus; scripts/install-test-deps)",
        );
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool refuses the file: {findings}"
    );
    findings
}

/// The value of the sample whose line starts with `series`.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn metrics_of_a_passing_and_a_failing_set_pass_promtool() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("bucket");
    let repo = s3.restic_init("bucket", "repo", PASSWORD);
    let env = TestEnv::new();
    env.minio_set("", &repo, ACCESS, SECRET, PASSWORD);
    env.minio_set("_alt", &repo, ACCESS, SECRET, "not the repository password");
    let path = env.dir.path().join("cio.prom");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    env.cio(&[
        "credential",
        "validate",
        "--prometheus",
        path.to_str().unwrap(),
    ])
    .code(1);
    assert_eq!(promtool(&path), "", "promtool has no lint findings");
    let text = std::fs::read_to_string(&path).unwrap();
    let primary = r#"{provider="minio",role="primary"}"#;
    let alternate = r#"{provider="minio",role="alternate"}"#;
    assert_eq!(
        sample(&text, &format!("cio_credential_set_passed{primary}")),
        1.0
    );
    assert_eq!(
        sample(&text, &format!("cio_credential_set_passed{alternate}")),
        0.0
    );
    let checked = sample(
        &text,
        &format!("cio_credential_set_last_check_timestamp_seconds{primary}"),
    );
    assert!(checked >= before && checked < before + 120.0, "{checked}");
    let took = sample(
        &text,
        &format!("cio_credential_set_check_duration_seconds{primary}"),
    );
    assert!(took > 0.0 && took < 60.0, "{took}");
    let age = sample(
        &text,
        &format!("cio_credential_set_secret_age_seconds{primary}"),
    );
    assert!((0.0..120.0).contains(&age), "{age}");
    assert!(text.contains(
        r#"cio_credential_set_result_info{provider="minio",role="primary",status="warn",step="rules",code="plain_http"} 1"#
    ), "{text}");
    assert!(text.contains(
        r#"cio_credential_set_result_info{provider="minio",role="alternate",status="fail",step="password",code="wrong_password"} 1"#
    ), "{text}");
    for secret in [SECRET, PASSWORD, ACCESS] {
        assert!(!text.contains(secret));
    }
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644, "node_exporter, another user, reads it");
}

/// `validate --prometheus FILE`, which fails at once (the set is incomplete: no live step
/// runs, no network is needed).
fn incomplete_metrics(env: &TestEnv, file: &Path) -> assert_cmd::assert::Assert {
    let args = ["credential", "validate", "--prometheus"];
    env.cmd()
        .args(args)
        .arg(file)
        .write_stdin("")
        .assert()
        .code(1)
}

/// Metrics are of live checks: --offline with --prometheus is a usage error, and nothing is
/// written (a pass of the rules alone would quiet the alerts).
#[test]
fn offline_metrics_are_refused() {
    let env = TestEnv::new();
    let file = env.dir.path().join("cio.prom");
    let out = env
        .cmd()
        .args(["credential", "validate", "--offline", "--prometheus"])
        .arg(&file)
        .write_stdin("")
        .assert()
        .code(2);
    assert!(
        stderr(&out).starts_with("Fail: usage: "),
        "{}",
        stderr(&out)
    );
    assert!(!file.exists());
}

#[test]
fn a_bad_folder_is_a_clear_error_and_the_previous_file_stays() {
    let env = TestEnv::new();
    env.create("cio_aws_backup_repo", REF_REPO);
    let missing = env.dir.path().join("no-such-folder/cio.prom");
    let out = incomplete_metrics(&env, &missing);
    assert_eq!(
        redact(&env, &stderr(&out)),
        "Fail: Validate credentials: cannot write [TMP]/no-such-folder/cio.prom: No such file or directory (os error 2)\n\
         Hint: create the folder (node_exporter's --collector.textfile.directory) or give --prometheus a file in a folder this user may write; the previous file was left as it was\n"
    );

    // A previous file stays whole when the new one cannot replace it (here FILE is a
    // non-empty folder: the rename fails after the temporary file was written).
    let folder = env.dir.path().join("metrics");
    let target = folder.join("cio.prom");
    std::fs::create_dir_all(target.join("previous")).unwrap();
    let out = incomplete_metrics(&env, &target);
    assert!(stderr(&out).starts_with("Fail: Validate credentials: cannot write "));
    assert!(target.join("previous").is_dir());
    let left: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["cio.prom"], "no temporary file is left behind");

    // What is not a regular file is never replaced: a symbolic link (to a file that stays
    // as it was) and a FIFO (a device such as /dev/null is the same kind).
    let kept = folder.join("kept.txt");
    std::fs::write(&kept, "kept\n").unwrap();
    let link = folder.join("link.prom");
    std::os::unix::fs::symlink(&kept, &link).unwrap();
    let fifo = folder.join("fifo.prom");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for (path, kind) in [(&link, "a symbolic link"), (&fifo, "a FIFO (named pipe)")] {
        let out = incomplete_metrics(&env, path);
        assert_eq!(
            stderr(&out).replace(&path.display().to_string(), "[FILE]"),
            format!(
                "Fail: Validate credentials: cannot write [FILE]: it is {kind}, not a regular file\n\
             Hint: give --prometheus the path of a regular file (or of none yet) in node_exporter's textfile folder; nothing was written\n"
            )
        );
    }
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "kept\n");
    assert!(fifo.symlink_metadata().unwrap().file_type().is_fifo());
    // With --json the failure is the one document on stdout (no report saying "passed"
    // before it).
    let out = env
        .cmd()
        .args(["credential", "--json", "validate", "--prometheus"])
        .arg(&link)
        .write_stdin("")
        .assert()
        .code(1);
    let text = stdout(&out);
    let doc: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(doc.get("sets").is_none(), "{doc}");

    // A good path replaces the file.
    let good = folder.join("good.prom");
    std::fs::write(&good, "# old\n").unwrap();
    incomplete_metrics(&env, &good);
    let text = std::fs::read_to_string(&good).unwrap();
    assert!(!text.contains("# old"));
    assert!(text.contains(r#"code="incomplete""#));
}

#[test]
fn example_alert_rules_pass_promtool() {
    let rules =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/prometheus/cio-alerts.yml");
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .expect("promtool is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("SUCCESS: 3 rules found"), "{text}");
}
