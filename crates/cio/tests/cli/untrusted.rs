//! Text from outside the process (a bundle from another site, a store altered below cio, the
//! environment) never reaches the terminal as control characters, and a bundle's values are
//! checked by a dry run exactly as the import checks them.

use std::path::{Path, PathBuf};
use std::process::Command;

use rusqlite::Connection;

use crate::recovery::{age_identity, row};
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

/// Neither output holds a control or bidi character a terminal would act on.
fn no_control_characters(out: &assert_cmd::assert::Assert) {
    for (which, text) in [("stdout", stdout(out)), ("stderr", stderr(out))] {
        let bad: Vec<char> = text
            .chars()
            .filter(|c| *c != '\n' && (c.is_control() || ('\u{2000}'..='\u{206f}').contains(c)))
            .collect();
        assert!(bad.is_empty(), "{which} holds {bad:?}: {text:?}");
    }
}

#[test]
fn a_bundles_text_is_shown_with_its_control_characters_escaped() {
    let env = TestEnv::new();
    let dir = env.dir.path();
    let evil = "cio \u{1b}]0;pwned\u{7}\u{1b}[31mRED";
    let (sealed, id) = bundle(
        dir,
        evil,
        &format!(
            "[{}]",
            credential("cio_aws_access_key", "AKIAIOSFODNN7EXAMPLE")
        ),
    );
    let args = |json: bool| {
        let mut a = vec![
            "credential",
            "import",
            "--dry-run",
            "-i",
            id.to_str().unwrap(),
        ];
        if json {
            a.push("--json");
        }
        a.push(sealed.to_str().unwrap());
        a
    };
    let out = env.cio(&args(false)).success();
    no_control_characters(&out);
    assert!(
        stdout(&out).starts_with(
            "Bundle made 2026-09-21T14:13:20Z by cio \\u{1b}]0;pwned\\u{7}\\u{1b}[31mRED: 1 credentials\n"
        ),
        "{}",
        stdout(&out)
    );
    // JSON escapes them too, and a JSON reader gets the text as the bundle holds it.
    let out = env.cio(&args(true)).success();
    no_control_characters(&out);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["created_by"], evil);

    // A repository URL the value rules refuse is not shown in the preview (a URL is not
    // masked), then refused, on both outputs: with a screen clear, a right-to-left override,
    // a password before '@' (the review's finding: it was printed whole), or a secret pasted
    // in the URL's place.
    for value in [
        "s3:https://h.example/b\u{1b}[2J",
        "s3:https://h.example/b\u{202e}kcab",
        "s3:https://backup:S3cretCANARY@h.example/bucket",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYCANARY",
    ] {
        let env = TestEnv::new();
        let (sealed, id) = bundle(
            env.dir.path(),
            "cio 0.1.0",
            &format!("[{}]", credential("cio_aws_backup_repo", value)),
        );
        for (dry_run, json) in [(true, false), (false, false), (true, true)] {
            let mut a = vec!["credential", "import", "-i", id.to_str().unwrap()];
            if dry_run {
                a.push("--dry-run");
            }
            if json {
                a.push("--json");
            }
            a.push(sealed.to_str().unwrap());
            let out = env.cio(&a).code(1);
            no_control_characters(&out);
            for text in [stdout(&out), stderr(&out)] {
                assert!(
                    !text.contains("h.example") && !text.contains("CANARY"),
                    "{value:?}: {text}"
                );
            }
            if json {
                let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
                assert_eq!(doc["error"]["exit_code"], 1, "{doc}");
            } else {
                let row = row(&stdout(&out), "cio_aws_backup_repo");
                assert_eq!(
                    row[1..row.len() - 1].join(" "),
                    "(refused by the value rules, not shown)",
                    "{value:?}"
                );
                assert!(
                    stderr(&out).starts_with("Fail: Import credentials: cio_aws_backup_repo: ")
                );
            }
            assert!(!env.store().exists(), "nothing was written");
        }
    }
    // A value the rules accept is shown, masked as list masks it.
    let env = TestEnv::new();
    let (sealed, id) = bundle(
        env.dir.path(),
        "cio 0.1.0",
        &format!(
            "[{},{}]",
            credential("cio_aws_backup_repo", "s3:https://h.example/bucket"),
            credential(
                "cio_aws_secret_key",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
            )
        ),
    );
    let out = env
        .cio(&[
            "credential",
            "import",
            "--dry-run",
            "-i",
            id.to_str().unwrap(),
            sealed.to_str().unwrap(),
        ])
        .success();
    assert_eq!(
        row(&stdout(&out), "cio_aws_backup_repo")[1],
        "s3:https://h.example/bucket"
    );
    assert_eq!(
        row(&stdout(&out), "cio_aws_secret_key")[1],
        "****************EKEY"
    );
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

#[test]
fn a_key_fingerprint_altered_in_the_store_is_damage_never_shown() {
    for altered in ["\u{1b}[31mEVIL\u{7}".to_string(), "a".repeat(5000)] {
        let env = TestEnv::new();
        env.create("cio_aws_access_key", REF_ACCESS);
        let conn = Connection::open(env.store()).unwrap();
        conn.execute(
            "UPDATE meta SET v = ?1 WHERE k = 'key_fingerprint'",
            [&altered],
        )
        .unwrap();
        drop(conn);
        for (args, input) in [
            (&["credential", "list"][..], ""),
            (&["credential", "show", "cio_aws_access_key"], ""),
            (&["credential", "create", "cio_aws_region"], "eu-west-1"),
        ] {
            let out = env.cio_in(args, input).code(3);
            let text = stderr(&out);
            assert!(
                text.starts_with("Fail: ")
                    && text.contains(
                        "is damaged: its record of the key's fingerprint is not a fingerprint\n"
                    ),
                "{args:?}: {text}"
            );
            assert!(!text.contains("EVIL") && !text.contains("aaaa"), "{text}");
        }
    }
}

#[test]
fn a_sudo_user_is_logged_only_when_it_is_a_user_name_sudo_set() {
    let env = TestEnv::new();
    for (user, uid, logged) in [
        ("\u{1b}[31mEVIL\u{1b}]0;title\u{7}", Some("1000"), None),
        ("alice", None, None),
        ("alice", Some("1000"), Some("alice")),
    ] {
        let mut cmd = env.cmd();
        cmd.env("SUDO_USER", user);
        if let Some(uid) = uid {
            cmd.env("SUDO_UID", uid);
        }
        cmd.args(["credential", "create", "cio_aws_region"])
            .write_stdin("eu-west-1")
            .assert()
            .success();
        let out = env.cio(&["credential", "log", "--json"]).success();
        let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let last = doc["entries"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["sudo_user"].as_str(), logged, "{user:?} {uid:?}");
        no_control_characters(&env.cio(&["credential", "log"]).success());
    }
}
