//! Text from outside the process (a bundle from another site, a store altered below cio, the
//! environment) never reaches the terminal as control characters, and a bundle's values are
//! checked by a dry run exactly as the import checks them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::recovery::age_identity;
use crate::util::*;

/// A bundle holding `credentials` (JSON array text), made by `created_by`, sealed by the real
/// `age` to a new identity in `dir`. Returns the bundle and the identity file.
fn bundle(dir: &Path, created_by: &str, credentials: &str) -> (PathBuf, PathBuf) {
    let (identity, recipient) = age_identity(dir, "id.txt");
    let plain = dir.join("plain.json");
    let doc = format!(
        r#"{{"format":"cio-recovery-bundle","format_version":1,"created_at_ms":1790000000000,"created_by":{},"credentials":{credentials}}}"#,
        serde_json::Value::from(created_by)
    );
    std::fs::write(&plain, doc).unwrap();
    let sealed = dir.join("b.age");
    let out = Command::new("age")
        .args(["-r", &recipient, "-o"])
        .arg(&sealed)
        .arg(&plain)
        .output()
        .expect("age (Debian package age)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (sealed, identity)
}

/// One bundled credential with one version holding `value`.
fn credential(name: &str, value: &str) -> String {
    format!(
        r#"{{"name":"{name}","versions":[{{"version":1,"action":"create","written_at_ms":1790000000000,"value":{}}}]}}"#,
        serde_json::Value::from(value)
    )
}

#[test]
fn a_dry_run_refuses_what_the_import_refuses_the_same_way() {
    let cases = [
        ("cio_aws_access_key", "CANARYlowercase"),
        ("cio_minio_backup_password", "CANARY\u{1}password"),
        ("cio_minio_secret_key", "CANARY7"),
    ];
    for (name, value) in cases {
        let env = TestEnv::new();
        let (sealed, id) = bundle(
            env.dir.path(),
            "cio 0.1.0",
            &format!("[{}]", credential(name, value)),
        );
        let run = |dry_run: bool, json: bool| {
            let mut a = vec!["credential", "import", "-i", id.to_str().unwrap()];
            if dry_run {
                a.push("--dry-run");
            }
            if json {
                a.push("--json");
            }
            a.push(sealed.to_str().unwrap());
            env.cio(&a).code(1)
        };
        let import = run(false, false);
        let dry_run = run(true, false);
        let refusal = stderr(&import);
        assert!(
            refusal.starts_with(&format!("Fail: Import credentials: {name}: ")),
            "{refusal}"
        );
        assert_eq!(stderr(&dry_run), refusal, "{name}");
        assert!(
            !stdout(&dry_run).contains("Succeed"),
            "{}",
            stdout(&dry_run)
        );
        for out in [&import, &dry_run] {
            assert!(!stdout(out).contains("CANARY") && !stderr(out).contains("CANARY"));
        }
        // With --json, the one document on stdout is the refusal.
        let doc: serde_json::Value = serde_json::from_str(&stdout(&run(true, true))).unwrap();
        assert_eq!(doc["error"]["exit_code"], 1, "{doc}");
        assert!(!env.store().exists(), "nothing was written");
    }

    // A value the store holds that is newer and different: the dry run refuses it as the
    // import does, unless --force.
    let env = TestEnv::new();
    env.create("cio_minio_access_key", "newer-in-the-store");
    let (sealed, id) = bundle(
        env.dir.path(),
        "cio 0.1.0",
        &format!(
            "[{}]",
            credential("cio_minio_access_key", "from-the-bundle")
        ),
    );
    let base = ["credential", "import", "-i", id.to_str().unwrap()];
    let import = env
        .cio(&[&base[..], &[sealed.to_str().unwrap()]].concat())
        .code(1);
    let dry = [&base[..], &["--dry-run", sealed.to_str().unwrap()]].concat();
    let dry_run = env.cio(&dry).code(1);
    assert_eq!(stderr(&dry_run), stderr(&import));
    env.cio(&[&dry[..], &["--force"]].concat()).success();
}
