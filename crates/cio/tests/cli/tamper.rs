//! A store edited below cio, through the CLI: the real SQLite file edited with rusqlite, a
//! real etcd's keys edited with etcdctl. What was changed is refused and named (exit 3) with
//! a hint that works; everything else still lists, shows, validates and execs.

use assert_cmd::assert::Assert;
use rusqlite::Connection;
use testkit::etcd::EtcdCluster;

use crate::util::*;

const X: &str = "cio_minio_secret_key";

/// Runs cio in `env` on the etcd store at `url`, with the input given.
fn on_etcd<'a>(env: &'a TestEnv, url: &'a str) -> impl Fn(&[&str], &str) -> Assert + Copy + 'a {
    move |args, input| {
        env.cmd()
            .env("CIO_STORE", url)
            .args(args)
            .write_stdin(input)
            .assert()
    }
}

/// Both sets complete, and X rotated twice (versions 1 to 3).
fn populate(env: &TestEnv, with: impl Fn(&[&str], &str) -> Assert) {
    let create = |name: &str, value: &str| {
        with(&["credential", "create", name], value).success();
    };
    create("cio_aws_backup_repo", REF_REPO);
    create("cio_aws_access_key", REF_ACCESS);
    create("cio_aws_secret_key", REF_SECRET);
    create("cio_aws_backup_password", "a long repository password");
    create("cio_minio_backup_repo", "s3:http://127.0.0.1:9/bucket");
    create("cio_minio_access_key", "minio");
    for value in ["rotated-out-1", "rotated-out-2", "current-secret-3"] {
        create(X, value);
    }
    create("cio_minio_backup_password", "another repository password");
    let _ = env;
}

/// On the embedded store of `env`: [`populate`], a copy of the store kept (its path is
/// returned), then X rotated once more, so the copy is one change behind.
fn populated_then_rotated(env: &TestEnv) -> std::path::PathBuf {
    let with = |args: &[&str], input: &str| env.cio_in(args, input);
    populate(env, with);
    let backup = env.dir.path().join("b0.db");
    std::fs::copy(env.store(), &backup).unwrap();
    with(&["credential", "create", X], "rotated-in-4").success();
    backup
}

/// What every command says once X's newest version was removed below cio.
fn x_is_refused_alone(with: impl Fn(&[&str], &str) -> Assert) {
    let reason = format!(
        "{X} cannot be trusted: its newest version 3 is missing or was replaced (the store holds version 2 as its newest)"
    );
    let hint = format!(
        "Hint: the other credentials are not affected; copy the whole store back from a backup, or destroy {X} and create it again: cio credential remove --purge {X}\n"
    );
    let out = with(&["credential", "show", X], "").code(3);
    assert_eq!(
        stderr(&out),
        format!("Fail: Show credential: {reason}\n{hint}")
    );
    assert_eq!(stdout(&out), "", "the rotated-out value is never shown");
    for args in [
        &["credential", "show", X, "--reveal"][..],
        &["credential", "history", X],
        &["credential", "restore", X, "--version", "1"],
        &["credential", "exec", "--provider", "minio", "--", "true"],
        &["credential", "env", "--provider", "minio"],
        &["credential", "validate", "--offline", "--provider", "minio"],
    ] {
        let out = with(args, "").failure();
        let text = stderr(&out) + &stdout(&out);
        assert!(text.contains(&reason), "{args:?}: {text}");
        assert!(!text.contains("rotated-out"), "{args:?}: {text}");
    }
    // The others: list (naming the damaged one, exit 3), show, validate, exec.
    let out = with(&["credential", "list"], "").code(3);
    let listed = stdout(&out);
    assert!(listed.contains("cio_aws_secret_key"), "{listed}");
    assert!(listed.contains("cio_minio_access_key"), "{listed}");
    assert!(listed.contains(X) && listed.contains("(cannot be trusted)"));
    // Its set is not said to miss it: it is there, and cannot be trusted.
    assert!(
        listed.contains(&format!("incomplete, {X} cannot be trusted\n")),
        "{listed}"
    );
    assert_eq!(
        stderr(&out),
        format!("Fail: List credentials: {reason}\n{hint}")
    );
    let out = with(&["credential", "list", "--json"], "").code(3);
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(doc["damaged"][0]["name"], X);
    let minio = doc["sets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["provider"] == "minio")
        .unwrap();
    assert_eq!(minio["untrusted"], serde_json::json!([X]), "{minio}");
    assert!(!minio["missing"].to_string().contains(X), "{minio}");
    assert_eq!(doc["credentials"].as_array().unwrap().len(), 7);
    with(
        &["credential", "show", "cio_aws_access_key", "--reveal"],
        "",
    )
    .success()
    .stdout(format!("{REF_ACCESS}\n"));
    with(
        &["credential", "validate", "--offline", "--provider", "aws"],
        "",
    )
    .success();
    with(
        &[
            "credential",
            "exec",
            "--provider",
            "aws",
            "--",
            "sh",
            "-c",
            "test -n \"$AWS_SECRET_ACCESS_KEY\"",
        ],
        "",
    )
    .success();
    // The hint works.
    with(&["credential", "remove", "--purge", X], "").success();
    with(&["credential", "create", X], "new-secret-after-repair").success();
    with(&["credential", "show", X, "--reveal"], "")
        .success()
        .stdout("new-secret-after-repair\n");
    with(&["credential", "list"], "").success();
}

#[test]
fn sqlite_the_newest_version_removed_to_bring_back_a_rotated_out_secret() {
    let env = TestEnv::new();
    let with = |args: &[&str], input: &str| env.cio_in(args, input);
    populate(&env, with);
    let conn = Connection::open(env.store()).unwrap();
    assert_eq!(
        conn.execute("DELETE FROM versions WHERE name = ?1 AND version = 3", [X])
            .unwrap(),
        1
    );
    drop(conn);
    x_is_refused_alone(with);
}

#[test]
fn etcd_the_newest_version_removed_to_bring_back_a_rotated_out_secret() {
    let cluster = EtcdCluster::single();
    let env = TestEnv::new();
    let url = cluster.url("/tamper");
    let with = on_etcd(&env, &url);
    populate(&env, with);
    let key = format!("/tamper/v/{X}/00000000000000000003");
    let out = cluster.etcdctl(&["del", &key]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    x_is_refused_alone(with);
}

/// The review's finding, as it was done: a copy of the store kept, X rotated once more, then
/// the rotation deleted and the copy's manifest put back in the live file, the change log
/// left as it was. Records and manifest agree; the log's newer entry gives it away, and no
/// command answers from the store (exit 3) until it is copied back whole from a backup.
#[test]
fn sqlite_a_rotation_undone_with_an_earlier_manifest_is_refused_by_the_log() {
    let env = TestEnv::new();
    let with = |args: &[&str], input: &str| env.cio_in(args, input);
    let backup = populated_then_rotated(&env);
    let conn = Connection::open(env.store()).unwrap();
    conn.execute_batch(&format!(
        "ATTACH '{}' AS o;
         DELETE FROM versions WHERE name = '{X}' AND version = 4;
         UPDATE meta SET v = (SELECT v FROM o.meta WHERE k = 'manifest') WHERE k = 'manifest';",
        backup.display()
    ))
    .unwrap();
    drop(conn);
    let reason = "the credential store [TMP]/state/credentials.db is damaged: its change log has entry 11, written after its manifest (which ends at entry 10): the manifest was put back from an earlier copy, so any credential may have been rolled back";
    for args in [
        &["credential", "show", X, "--reveal"][..],
        &["credential", "list"],
        &["credential", "exec", "--provider", "minio", "--", "true"],
        &["credential", "create", "cio_aws_region", "us-east-1"],
    ] {
        let out = with(args, "").code(3);
        assert!(
            redact(&env, &stderr(&out)).contains(reason),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!stdout(&out).contains("current-secret-3"), "{args:?}");
    }
    // The whole copy is a backup: put back, it reads as itself.
    std::fs::copy(&backup, env.store()).unwrap();
    with(&["credential", "show", X, "--reveal"], "")
        .success()
        .stdout("current-secret-3\n");
}

/// The review's finding: every credential put back from an earlier copy (the copy's
/// versions, manifest and notes), the change log left as it was. `log --verify` said the log
/// was whole; it now says the credentials are older than the log, from the first change they
/// lack, and what to do (exit 1), and `--json` says the same.
#[test]
fn sqlite_log_verify_says_the_credentials_are_older_than_the_log() {
    let env = TestEnv::new();
    let with = |args: &[&str], input: &str| env.cio_in(args, input);
    let backup = populated_then_rotated(&env);
    with(&["credential", "create", "cio_aws_region", "us-east-1"], "").success();
    let conn = Connection::open(env.store()).unwrap();
    conn.execute_batch(&format!(
        "ATTACH '{}' AS o;
         DELETE FROM main.meta; INSERT INTO main.meta SELECT * FROM o.meta;
         DELETE FROM main.versions; INSERT INTO main.versions SELECT * FROM o.versions;
         DELETE FROM main.notes; INSERT INTO main.notes SELECT * FROM o.notes;",
        backup.display()
    ))
    .unwrap();
    drop(conn);
    let out = with(&["credential", "log", "--verify"], "").code(1);
    assert_eq!(stdout(&out), "");
    let said = stderr(&out);
    let first = said.lines().next().unwrap();
    assert!(
        first.starts_with(&format!(
            "Fail: Verify change log: the credentials are older than the log: entry 11 and every later one record changes the credentials do not hold (the credentials were put back from an earlier copy, the log was not); the first change they lack: entry 11 (update of {X} version 4, "
        )),
        "{said}"
    );
    assert!(
        said.contains("Hint: the credentials were put back from an earlier copy and the change log was not: put back a whole copy of the store taken after the log's newest entry"),
        "{said}"
    );
    let out = with(&["credential", "log", "--verify", "--json"], "").code(1);
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(doc["verified"], false);
    assert_eq!(doc["broken"]["seq"], 11);
    assert_eq!(doc["broken"]["problem"], "credentials_older");
    // Credentials older than the log are no break to accept: a whole copy must come back.
    let before = std::fs::read(env.store()).unwrap();
    let out = with(&["credential", "log", "--acknowledge"], "").code(1);
    assert_eq!(
        stderr(&out),
        "Fail: Acknowledge change log: the change log cannot be acknowledged: the credentials are older than the log: entry 11 and every later one record changes the credentials do not hold (the credentials were put back from an earlier copy, the log was not)\n\
         Hint: nothing was changed; put back a whole copy of the store taken after the log's newest entry, its credentials and its log together ('cio credential log' lists the changes the credentials lack)\n"
    );
    assert_eq!(std::fs::read(env.store()).unwrap(), before);
    // Nothing was written: the store still refuses the other commands, naming the log.
    with(&["credential", "list"], "").code(3);
    // The whole copy put back agrees with its own log.
    std::fs::copy(&backup, env.store()).unwrap();
    with(&["credential", "log", "--verify"], "").success();
}

/// The second review's findings: `log --verify` said "whole" (exit 0) when only the
/// credentials were put back from an earlier copy (the log and the manifest stayed), and when
/// the log and the manifest were put back (the credentials stayed): the log's own checks see
/// only what the manifest says. It now reads the credentials as every command does.
#[test]
fn sqlite_log_verify_reads_the_credentials_beside_a_whole_log() {
    let env = TestEnv::new();
    let with = |args: &[&str], input: &str| env.cio_in(args, input);
    let backup = populated_then_rotated(&env);
    let newer = env.dir.path().join("b1.db");
    std::fs::copy(env.store(), &newer).unwrap();
    let put_back = |tables: &[&str]| {
        std::fs::copy(&newer, env.store()).unwrap();
        let conn = Connection::open(env.store()).unwrap();
        let mut sql = format!("ATTACH '{}' AS o;", backup.display());
        for t in tables {
            sql.push_str(&format!(
                "DELETE FROM main.{t}; INSERT INTO main.{t} SELECT * FROM o.{t};"
            ));
        }
        conn.execute_batch(&sql).unwrap();
    };

    // The credentials alone put back: the log and the manifest name version 4 of X.
    put_back(&["versions"]);
    let out = with(&["credential", "log", "--verify"], "").code(1);
    assert_eq!(stdout(&out), "");
    let said = stderr(&out);
    assert!(
        said.starts_with(&format!(
            "Fail: Verify change log: the change log is whole, but 1 of the credentials beside it is not what the log and the manifest record: {X} "
        )),
        "{said}"
    );
    let out = with(&["credential", "log", "--verify", "--json"], "").code(1);
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(doc["verified"], false);
    assert_eq!(doc["damaged"].as_array().map(Vec::len), Some(1));
    // Without --verify, the log is shown as it was, and no `damaged` field.
    let out = with(&["credential", "log", "--json"], "").success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert!(doc.get("damaged").is_none(), "{doc}");

    // The log and the manifest put back: the credentials are newer than both, and the store
    // is refused whole, as by every command.
    put_back(&["log", "meta"]);
    let out = with(&["credential", "log", "--verify"], "").code(3);
    assert!(
        stderr(&out).contains("written after its manifest"),
        "{}",
        stderr(&out)
    );
    with(&["credential", "list"], "").code(3);

    // The newer copy whole agrees with its own log.
    std::fs::copy(&newer, env.store()).unwrap();
    with(&["credential", "log", "--verify"], "").success();
}

/// The final review's findings: the same rollback across a rekey (the log's newer entries
/// sealed under the new key, the copy's manifest under the old one, both keys in the
/// keyring), and on etcd a key under `log/` that is no entry, which hid the log's end.
#[test]
fn a_rotation_undone_is_refused_across_a_rekey_and_past_junk_in_the_log() {
    let env = TestEnv::new();
    let with = |args: &[&str], input: &str| env.cio_in(args, input);
    let backup = populated_then_rotated(&env);
    for stage in ["add", "switch", "reseal"] {
        with(&["credential", "rekey", "--stage", stage], "").success();
    }
    let conn = Connection::open(env.store()).unwrap();
    conn.execute_batch(&format!(
        "ATTACH '{}' AS b;
         DELETE FROM meta; INSERT INTO meta SELECT * FROM b.meta;
         DELETE FROM versions; INSERT INTO versions SELECT * FROM b.versions;",
        backup.display()
    ))
    .unwrap();
    drop(conn);
    // The re-review's finding: a re-seal read the store with the old key alone, re-sealed the
    // rolled-back copy and its log under the new one, and every command then read it as clean.
    for args in [
        &["credential", "show", X, "--reveal"][..],
        &["credential", "list"],
        &["credential", "rekey", "--stage", "reseal"],
        &["credential", "rekey"],
        &["credential", "show", X, "--reveal"],
    ] {
        let out = with(args, "").code(3);
        assert!(
            stderr(&out).contains("written after its manifest (which ends at entry 10)"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!stdout(&out).contains("current-secret-3"));
    }

    let cluster = EtcdCluster::single();
    let env = TestEnv::new();
    let url = cluster.url("/junk");
    let with = on_etcd(&env, &url);
    populate(&env, with);
    let saved = cluster.etcdctl(&["get", "/junk/meta/manifest", "--print-value-only"]);
    let manifest = String::from_utf8(saved.stdout).unwrap();
    with(&["credential", "create", X], "rotated-in-4").success();
    cluster.etcdctl(&["put", "/junk/meta/manifest", manifest.trim_end()]);
    cluster.etcdctl(&["del", &format!("/junk/v/{X}/00000000000000000004")]);
    cluster.etcdctl(&["put", &format!("/junk/head/{X}"), "3"]);
    cluster.etcdctl(&["put", "/junk/log/x", "x"]);
    let out = with(&["credential", "show", X, "--reveal"], "").code(3);
    assert!(
        stderr(&out).contains(
            "its change log has entry 11, written after its manifest (which ends at entry 10)"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");
    with(&["credential", "create", "cio_aws_region", "us-east-1"], "").code(3);
}

#[test]
fn a_removed_store_id_fingerprint_or_manifest_refuses_every_command() {
    for key in ["store_id", "key_fingerprint", "manifest"] {
        let env = TestEnv::new();
        let with = |args: &[&str], input: &str| env.cio_in(args, input);
        populate(&env, with);
        let conn = Connection::open(env.store()).unwrap();
        conn.execute("DELETE FROM meta WHERE k = ?1", [key])
            .unwrap();
        drop(conn);
        let before = env.snapshot_files();
        for (args, input) in [
            (&["credential", "list"][..], ""),
            (&["credential", "show", "cio_aws_access_key"], ""),
            (
                &["credential", "create", "cio_aws_alt_backup_repo"],
                REF_REPO,
            ),
            (&["credential", "remove", "--purge", X], ""),
            (
                &["credential", "exec", "--provider", "aws", "--", "true"],
                "",
            ),
        ] {
            let out = with(args, input).code(3);
            let text = stderr(&out);
            assert!(
                text.starts_with("Fail: ") && text.contains("is damaged: its "),
                "{key}: {args:?}: {text}"
            );
            // The hint must work: `list` itself is refused here, so it may not send the
            // administrator there.
            assert!(
                !text.contains("cio credential list"),
                "{key}: {args:?}: the hint points at a command that fails: {text}"
            );
        }
        assert_eq!(env.snapshot_files(), before, "{key}: nothing was changed");
    }
}

#[test]
fn a_store_a_newer_cio_wrote_is_said_as_such_not_as_damaged() {
    // A newer cio adds a field to the manifest once it uses it (as this one added
    // `key_home` and `sealed_before`): its MAC cannot be checked here, and the store is
    // fine; the hint must not send the administrator to a backup.
    let env = TestEnv::new();
    let with = |args: &[&str], input: &str| env.cio_in(args, input);
    populate(&env, with);
    let conn = Connection::open(env.store()).unwrap();
    let manifest: String = conn
        .query_row("SELECT v FROM meta WHERE k = 'manifest'", [], |r| r.get(0))
        .unwrap();
    let newer = manifest.replacen("{", r#"{"a_field_of_the_future":[1,2],"#, 1);
    conn.execute("UPDATE meta SET v = ?1 WHERE k = 'manifest'", [&newer])
        .unwrap();
    drop(conn);
    let before = env.snapshot_files();
    for args in [
        &["credential", "list"][..],
        &["credential", "create", "cio_aws_region", "us-east-1"],
    ] {
        let out = with(args, "").code(3);
        let text = stderr(&out);
        assert!(
            text.contains(
                "cannot be read by this cio: its manifest has a format or fields this cio does not know: written by a newer cio, or altered below cio (this cio cannot check which)\nHint: nothing was changed; if other nodes run a newer cio, install it on this node; if none does, treat the store as damaged and put back a copy from a backup\n"
            ),
            "{args:?}: {text}"
        );
    }
    assert_eq!(env.snapshot_files(), before, "nothing was changed");
}

#[test]
fn purge_checks_the_key_as_remove_does() {
    let env = TestEnv::new();
    let with = |args: &[&str], input: &str| env.cio_in(args, input);
    populate(&env, with);
    let key = env.key();
    let set_mode = |m| {
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(m)).unwrap()
    };
    set_mode(0o644);
    for args in [
        &["credential", "remove", X][..],
        &["credential", "remove", "--purge", X],
    ] {
        let out = with(args, "").code(3);
        assert!(
            stderr(&out).contains("may be read or changed by group or others"),
            "{}",
            stderr(&out)
        );
    }
    set_mode(0o600);
    let saved = std::fs::read(&key).unwrap();
    std::fs::remove_file(&key).unwrap();
    for args in [
        &["credential", "remove", X][..],
        &["credential", "remove", "--purge", X],
    ] {
        let out = with(args, "").code(3);
        assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    }
    assert!(!key.exists(), "no new key");
    std::fs::write(&key, saved).unwrap();
    set_mode(0o600);
    let out = with(&["credential", "history", X, "--json"], "").success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        doc["versions"].as_array().unwrap().len(),
        3,
        "nothing was destroyed"
    );
}

/// `exec` and `env` without `--provider`, when the one set there is has a damaged credential:
/// refused as damaged (exit 3, naming it), never as "incomplete: create it".
#[test]
fn the_only_set_damaged_is_refused_as_damaged_when_no_provider_is_named() {
    let env = TestEnv::new();
    for (name, value) in [
        ("cio_minio_backup_repo", "s3:http://127.0.0.1:9/bucket"),
        ("cio_minio_access_key", "minio"),
        (X, "current-secret"),
        ("cio_minio_backup_password", "another repository password"),
    ] {
        env.cio_in(&["credential", "create", name], value).success();
    }
    let conn = Connection::open(env.store()).unwrap();
    conn.execute("UPDATE versions SET action = 'remove' WHERE name = ?1", [X])
        .unwrap();
    drop(conn);
    for args in [
        &["credential", "exec", "--", "true"][..],
        &["credential", "env"],
    ] {
        let text = stderr(&env.cio_in(args, "").code(3));
        assert!(
            text.contains(&format!("{X} cannot be trusted")) && !text.contains("incomplete"),
            "{args:?}: {text}"
        );
    }
}

/// Someone who could write the store file once must not be able to make later writes (a
/// rotation after a compromise) report success and store nothing: the schema's own objects
/// (triggers, a table's conflict handling) never decide what a write does.
#[test]
fn sqlite_a_schema_edited_to_drop_writes_does_not_drop_them() {
    let env = TestEnv::new();
    let with = |args: &[&str], input: &str| env.cio_in(args, input);
    populate(&env, with);
    let conn = Connection::open(env.store()).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER t1 BEFORE INSERT ON versions BEGIN SELECT RAISE(IGNORE); END;
         CREATE TRIGGER t2 BEFORE UPDATE ON meta BEGIN SELECT RAISE(IGNORE); END;
         CREATE TRIGGER t3 BEFORE INSERT ON meta BEGIN SELECT RAISE(IGNORE); END;
         CREATE TRIGGER t4 BEFORE INSERT ON log BEGIN SELECT RAISE(IGNORE); END;
         CREATE TRIGGER t5 BEFORE DELETE ON versions BEGIN SELECT RAISE(IGNORE); END;",
    )
    .unwrap();
    drop(conn);
    let reveal = |name: &str| {
        let out = with(&["credential", "show", name, "--reveal"], "").success();
        stdout(&out)
    };
    with(&["credential", "create", X], "rotated-after-compromise-4").success();
    assert!(
        reveal(X).contains("rotated-after-compromise-4"),
        "{}",
        reveal(X)
    );
    with(&["credential", "remove", "cio_aws_secret_key"], "").success();
    with(&["credential", "show", "cio_aws_secret_key"], "").failure();
    with(
        &["credential", "remove", "--purge", "cio_minio_access_key"],
        "",
    )
    .success();
    let out = with(&["credential", "history", "cio_minio_access_key"], "").failure();
    assert!(
        stderr(&out).contains("cio_minio_access_key was purged"),
        "{}",
        stderr(&out)
    );
    with(&["credential", "log", "--verify"], "").success();

    // A table rebuilt with a constraint cio never made, whose conflict handling would drop
    // (IGNORE) or delete (REPLACE) records: the write is refused as damage, nothing changed.
    for handling in ["IGNORE", "REPLACE"] {
        let env = TestEnv::new();
        let with = |args: &[&str], input: &str| env.cio_in(args, input);
        with(&["credential", "create", "cio_aws_access_key"], REF_ACCESS).success();
        let conn = Connection::open(env.store()).unwrap();
        conn.execute_batch(&format!(
            "ALTER TABLE versions RENAME TO old;
             CREATE TABLE versions (name TEXT NOT NULL, version INTEGER NOT NULL, action TEXT,
               restored_from INTEGER, written_at_ms INTEGER, sealed BLOB, seq INTEGER,
               prev_mac BLOB, mac BLOB, PRIMARY KEY (name, version),
               UNIQUE (name) ON CONFLICT {handling}) WITHOUT ROWID;
             INSERT INTO versions SELECT * FROM old; DROP TABLE old;"
        ))
        .unwrap();
        drop(conn);
        let before = env.snapshot_files();
        let out = with(
            &["credential", "create", "cio_aws_access_key"],
            "AKIAYHD623GGZX7VDFMK",
        )
        .code(3);
        assert!(
            stderr(&out).contains("is damaged: UNIQUE constraint failed"),
            "{handling}: {}",
            stderr(&out)
        );
        assert_eq!(
            env.snapshot_files(),
            before,
            "{handling}: nothing was changed"
        );
        let shown = stdout(
            &with(
                &["credential", "show", "cio_aws_access_key", "--reveal"],
                "",
            )
            .success(),
        );
        assert!(shown.contains(REF_ACCESS), "{handling}: {shown}");
    }
}

/// SQLite keeps text that is not UTF-8 as it was given: one such field is its credential's
/// damage alone, and one in the store's own records is the store's, said as damage.
#[test]
fn sqlite_text_that_is_not_utf8_damages_only_its_credential() {
    for column in ["action", "name", "mac", "sealed"] {
        let env = TestEnv::new();
        let with = |args: &[&str], input: &str| env.cio_in(args, input);
        populate(&env, with);
        let conn = Connection::open(env.store()).unwrap();
        conn.execute(
            &format!(
                "UPDATE versions SET {column} = CAST(X'ff' AS TEXT) WHERE name = ?1 AND version = 3"
            ),
            [X],
        )
        .unwrap();
        drop(conn);
        let out = with(&["credential", "show", X], "").code(3);
        assert!(
            stderr(&out).starts_with(&format!("Fail: Show credential: {X} cannot be trusted")),
            "{column}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("cio credential remove --purge"),
            "{column}"
        );
        let shown = with(
            &["credential", "show", "cio_aws_secret_key", "--reveal"],
            "",
        )
        .success();
        assert!(stdout(&shown).contains(REF_SECRET), "{column}");
        with(
            &["credential", "exec", "--provider", "aws", "--", "true"],
            "",
        )
        .success();
        // The hint works: the damaged credential is destroyed and can be set again.
        with(&["credential", "remove", "--purge", X], "").success();
        with(&["credential", "create", X], "a-new-secret-after-damage").success();
    }
    // The sealed value's bytes kept as text are still those bytes: authenticated, opened.
    let env = TestEnv::new();
    let with = |args: &[&str], input: &str| env.cio_in(args, input);
    populate(&env, with);
    let conn = Connection::open(env.store()).unwrap();
    conn.execute(
        "UPDATE versions SET sealed = CAST(sealed AS TEXT) WHERE name = ?1",
        [X],
    )
    .unwrap();
    drop(conn);
    let shown = with(&["credential", "show", X, "--reveal"], "").success();
    assert!(stdout(&shown).contains("current-secret-3"));
    // In the store's own records: every command refuses, as damage, with the backup hint.
    let conn = Connection::open(env.store()).unwrap();
    conn.execute(
        "UPDATE meta SET v = CAST(X'ff' AS TEXT) WHERE k = 'store_id'",
        [],
    )
    .unwrap();
    drop(conn);
    let out = with(&["credential", "list"], "").code(3);
    assert!(
        stderr(&out).contains("is damaged: a field of the store holds a value of the wrong kind"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("restore a whole earlier copy"),
        "{}",
        stderr(&out)
    );
}

/// A store emptied below cio of its records and its key fingerprint, its id and change log
/// kept: a write must not seal it with whatever key is at hand (a new one here), which would
/// mix two keys in one store. The same with the id removed too.
#[test]
fn an_emptied_store_with_its_log_left_takes_no_new_key() {
    let new_key = |env: &TestEnv| env.dir.path().join("other/new.key");
    let refused = |env: &TestEnv, with: &dyn Fn(&[&str], &str) -> Assert, why: &str| {
        let before = env.snapshot_files();
        let out = with(
            &["credential", "create", "cio_aws_backup_password"],
            "a new password here",
        )
        .code(3);
        assert!(
            stderr(&out).contains(&format!("is damaged: {why}")),
            "{}",
            stderr(&out)
        );
        assert_eq!(env.snapshot_files(), before, "nothing was changed");
        assert!(!new_key(env).exists(), "no key was made");
    };
    // SQLite.
    for (kept, why, log) in [
        ("k = 'store_id'", "its key fingerprint was removed", ""),
        ("0", "its store id was removed", ""),
        // Nothing left at all, the log emptied too: still not a store to seal anew.
        ("0", "its store id was removed", "DELETE FROM log;"),
    ] {
        let env = TestEnv::new();
        let with = |args: &[&str], input: &str| env.cio_in(args, input);
        populate(&env, with);
        let conn = Connection::open(env.store()).unwrap();
        conn.execute_batch(&format!(
            "DELETE FROM versions; DELETE FROM notes; DELETE FROM meta WHERE NOT ({kept}); {log}"
        ))
        .unwrap();
        drop(conn);
        let with_new_key = |args: &[&str], input: &str| {
            env.cmd()
                .env("CIO_KEY_FILE", new_key(&env))
                .args(args)
                .write_stdin(input)
                .assert()
        };
        refused(&env, &with_new_key, why);
    }
    // etcd.
    let cluster = EtcdCluster::single();
    let env = TestEnv::new();
    let url = cluster.url("/emptied");
    let with = on_etcd(&env, &url);
    populate(&env, with);
    for prefix in ["/emptied/v/", "/emptied/head/", "/emptied/notes/"] {
        cluster.etcdctl(&["del", "--prefix", prefix]);
    }
    for key in ["/emptied/meta/key_fingerprint", "/emptied/meta/manifest"] {
        cluster.etcdctl(&["del", key]);
    }
    let with_new_key = |args: &[&str], input: &str| {
        env.cmd()
            .env("CIO_STORE", &url)
            .env("CIO_KEY_FILE", new_key(&env))
            .args(args)
            .write_stdin(input)
            .assert()
    };
    refused(&env, &with_new_key, "its key fingerprint was removed");
}

/// etcd keeps each name's newest version number (`head/NAME`) and the change log's
/// (`loghead`) as indexes beside the records. Edited below cio, they must not fail every
/// later write as a race that never ends ("try again"): the next write puts them right.
#[test]
fn etcd_edited_heads_do_not_block_writes() {
    let cluster = EtcdCluster::single();
    for (key, value) in [
        ("/heads/head/cio_minio_secret_key", Some("1")),
        ("/heads/head/cio_minio_secret_key", Some("abc")),
        (
            "/heads/head/cio_minio_secret_key",
            Some("99999999999999999999"),
        ),
        ("/heads/head/cio_minio_secret_key", None),
        ("/heads/loghead", Some("abc")),
        // The review's finding: a log head behind the newest entry (entries 1 to 10 here)
        // made every write lose to it, "try again" forever, and the log said falsely that
        // entries were deleted.
        ("/heads/loghead", Some("3")),
        ("/heads/loghead", Some("0")),
        ("/heads/loghead", None),
        // A head past the newest entry (10): the next entry went after it, and the log then
        // said the entries of a gap that never held any were deleted.
        ("/heads/loghead", Some("99")),
        // A head at the end of the range left no number for the next entry.
        ("/heads/loghead", Some("9223372036854775807")),
        ("/heads/loghead", Some("18446744073709551615")),
    ] {
        cluster.etcdctl(&["del", "--prefix", "/heads/"]);
        let env = TestEnv::new();
        let url = cluster.url("/heads");
        let with = on_etcd(&env, &url);
        populate(&env, with);
        match value {
            Some(v) => cluster.etcdctl(&["put", key, v]),
            None => cluster.etcdctl(&["del", key]),
        };
        with(&["credential", "create", X], "after-the-edit-4").success();
        with(&["credential", "remove", X], "").success();
        with(&["credential", "restore", X], "").success();
        let shown = with(&["credential", "show", X, "--reveal"], "").success();
        assert!(
            stdout(&shown).contains("after-the-edit-4"),
            "{key}={value:?}"
        );
        let verified = with(&["credential", "log", "--verify"], "").success();
        assert!(
            stdout(&verified)
                .starts_with("Succeed: Verify credential: change log whole: 13 entries"),
            "{key}={value:?}: {}",
            stdout(&verified)
        );
    }
}

/// One of cio's tables dropped below cio is said as damage, with the backup hint, not as a
/// file this user cannot open.
#[test]
fn sqlite_a_dropped_table_is_said_as_damage() {
    for table in ["log", "notes"] {
        let env = TestEnv::new();
        let with = |args: &[&str], input: &str| env.cio_in(args, input);
        populate(&env, with);
        let conn = Connection::open(env.store()).unwrap();
        conn.execute_batch(&format!("DROP TABLE {table};")).unwrap();
        drop(conn);
        let out = with(&["credential", "create", X], "after-the-drop-4").code(3);
        let text = stderr(&out);
        assert!(
            text.contains(&format!("is damaged: no such table: {table}")),
            "{table}: {text}"
        );
        assert!(
            text.contains("restore a whole earlier copy"),
            "{table}: {text}"
        );
    }
}

/// A table rebuilt below cio with other column types (SQLite converts what is written to a
/// column's declared affinity), or a view in a table's place: a write must store what it
/// says or refuse as damage, never report success for a record no reader accepts.
#[test]
fn sqlite_columns_of_other_types_or_a_view_refuse_writes_as_damage() {
    for (edit, said) in [
        (
            "CREATE TABLE v2 (name TEXT NOT NULL, version INTEGER NOT NULL, action TEXT,
               restored_from INTEGER, written_at_ms REAL, sealed BLOB, seq INTEGER,
               prev_mac BLOB, mac BLOB, PRIMARY KEY (name, version)) WITHOUT ROWID;
             INSERT INTO v2 SELECT * FROM versions; DROP TABLE versions;
             ALTER TABLE v2 RENAME TO versions;",
            "does not read back as written",
        ),
        (
            "CREATE TABLE m2 (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
             INSERT INTO m2 SELECT k, CAST(v AS BLOB) FROM meta; DROP TABLE meta;
             ALTER TABLE m2 RENAME TO meta;",
            "",
        ),
        (
            "ALTER TABLE versions RENAME TO vreal;
             CREATE VIEW versions AS SELECT * FROM vreal;",
            "is damaged: access to view",
        ),
    ] {
        let env = TestEnv::new();
        let with = |args: &[&str], input: &str| env.cio_in(args, input);
        with(&["credential", "create", "cio_aws_access_key"], REF_ACCESS).success();
        let conn = Connection::open(env.store()).unwrap();
        conn.execute_batch(edit).unwrap();
        drop(conn);
        let before = env.snapshot_files();
        let out = with(&["credential", "create", "cio_aws_backup_repo"], REF_REPO);
        if said.is_empty() {
            // Stored as it says: it reads back.
            out.success();
            let shown = with(
                &["credential", "show", "cio_aws_backup_repo", "--reveal"],
                "",
            );
            assert!(stdout(&shown.success()).contains(REF_REPO));
            continue;
        }
        let text = stderr(&out.code(3));
        assert!(text.contains(said), "{said}: {text}");
        assert!(
            text.contains("restore a whole earlier copy"),
            "{said}: {text}"
        );
        assert_eq!(env.snapshot_files(), before, "{said}: nothing was changed");
    }
}

/// A bundle never leaves out a credential of its sets silently: an export of a set with a
/// damaged credential is refused naming it, and writes no bundle; the other set exports.
#[test]
fn an_export_of_a_set_with_a_damaged_credential_is_refused_naming_it() {
    let env = TestEnv::new();
    let with = |args: &[&str], input: &str| env.cio_in(args, input);
    populate(&env, with);
    let conn = Connection::open(env.store()).unwrap();
    conn.execute(
        "UPDATE versions SET mac = X'00' WHERE name = ?1 AND version = 3",
        [X],
    )
    .unwrap();
    drop(conn);
    let (_, recipient) = crate::recovery::age_identity(env.dir.path(), "recovery.key");
    let bundle = env.dir.path().join("bundle.age");
    let bundle_arg = bundle.to_str().unwrap();
    for narrowed in [&[][..], &["--provider", "minio"]] {
        let mut args = vec!["credential", "export", "--recipient", &recipient];
        args.extend_from_slice(narrowed);
        args.extend_from_slice(&["--output", bundle_arg]);
        let out = with(&args, "").code(3);
        assert!(
            stderr(&out).starts_with(&format!("Fail: Export credentials: {X} cannot be trusted")),
            "{narrowed:?}: {}",
            stderr(&out)
        );
        assert!(!bundle.exists(), "{narrowed:?}: no bundle is written");
    }
    with(
        &[
            "credential",
            "export",
            "--provider",
            "aws",
            "--recipient",
            &recipient,
            "--output",
            bundle_arg,
        ],
        "",
    )
    .success();
    assert!(bundle.exists());
}
