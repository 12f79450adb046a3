//! The change log (`cio credential log`) and the recorded health (`validate --record`, the
//! CHECKED column of `list`), through the CLI, on the embedded store and on a real etcd that
//! two nodes share. Tampering is done as an intruder would: sqlite3 and etcdctl on the store.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use assert_cmd::assert::Assert;
use testkit::etcd::EtcdCluster;

use crate::util::*;

/// A node: a test environment whose store is `store` (`None`: its own embedded store).
struct Node {
    env: TestEnv,
    store: Option<String>,
}

impl Node {
    fn new(store: Option<&str>) -> Node {
        Node {
            env: TestEnv::new(),
            store: store.map(str::to_string),
        }
    }

    fn cio_in(&self, args: &[&str], input: &str) -> Assert {
        let mut cmd = self.env.cmd();
        if let Some(store) = &self.store {
            cmd.env("CIO_STORE", store);
        }
        cmd.args(args).write_stdin(input).assert()
    }

    fn cio(&self, args: &[&str]) -> Assert {
        self.cio_in(args, "")
    }

    fn create(&self, name: &str, value: &str) -> Assert {
        self.cio_in(&["credential", "create", name], value)
            .success()
    }

    /// Runs `statement` on this node's embedded store with sqlite3, as an intruder would.
    fn sql(&self, statement: &str) {
        let status = Command::new("sqlite3")
            .arg(self.env.store())
            .arg(statement)
            .status()
            .expect("sqlite3 must be installed (Debian package sqlite3)");
        assert!(status.success());
    }

    /// An AWS set whose password is changed once, then put back below cio from a copy taken
    /// before (its versions and manifest: entries 1 to 4 are the copy's, entry 5 the change
    /// it lacks), with `log_tamper` done to the log in the same statement.
    fn rolled_back(&self, log_tamper: &str) {
        self.create("cio_aws_access_key", REF_ACCESS);
        self.create("cio_aws_secret_key", REF_SECRET);
        self.create("cio_aws_backup_repo", REF_REPO);
        self.create("cio_aws_backup_password", "the first long password");
        let store = self.env.store();
        let backup = store.parent().unwrap().join("backup.db");
        std::fs::copy(&store, &backup).unwrap();
        self.create("cio_aws_backup_password", "the second long password");
        self.sql(&format!(
            "ATTACH '{}' AS b; DELETE FROM versions; INSERT INTO versions SELECT * FROM b.versions; DELETE FROM meta; INSERT INTO meta SELECT * FROM b.meta; {log_tamper}",
            backup.display()
        ));
    }

    /// Copies this node's key file to `other`, as the administrator does for a cluster.
    fn share_key_with(&self, other: &Node) {
        std::fs::create_dir_all(other.env.key().parent().unwrap()).unwrap();
        std::fs::copy(self.env.key(), other.env.key()).unwrap();
        std::fs::set_permissions(other.env.key(), std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn log_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["credential", "log", "--json"];
        all.extend_from_slice(args);
        let out = self.cio(&all).success();
        serde_json::from_slice(&out.get_output().stdout).unwrap()
    }
}

/// `(command, credential, version)` of every entry of `log --json`.
fn summary(log: &serde_json::Value) -> Vec<String> {
    log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {} {}", e["command"], e["name"], e["version"]).replace('"', ""))
        .collect()
}

/// Changes on the store, and what the log and list say of them.
fn changes_are_logged_reads_are_not(a: &Node, b: &Node) {
    a.create("cio_aws_access_key", REF_ACCESS);
    a.share_key_with(b);
    b.create("cio_aws_access_key", "AKIAYHD623GGZX7VDFMK");
    // Read-only commands and refused changes log nothing.
    for args in [
        &["credential", "list"][..],
        &["credential", "show", "cio_aws_access_key"],
        &["credential", "history", "cio_aws_access_key"],
        &["credential", "validate", "--offline"],
    ] {
        a.cio(args);
    }
    a.cio_in(&["credential", "create", "cio_aws_access_key"], "not a key")
        .code(1);
    b.cio(&["credential", "remove", "cio_aws_access_key"])
        .success();
    a.cio(&["credential", "restore", "cio_aws_access_key"])
        .success();
    a.create("cio_aws_secret_key", REF_SECRET);
    b.cio(&["credential", "rm", "--purge", "cio_aws_secret_key"])
        .success();

    let log = b.log_json(&[]);
    assert_eq!(log["verified"], true);
    assert_eq!(
        summary(&log),
        [
            "create cio_aws_access_key 1",
            "update cio_aws_access_key 2",
            "remove cio_aws_access_key 3",
            "restore cio_aws_access_key 4",
            "create cio_aws_secret_key 1",
            "purge cio_aws_secret_key 1",
        ]
    );
    let first = &log["entries"][0];
    assert_eq!(first["seq"], 1);
    assert_eq!(first["outcome"], "ok");
    assert_eq!(first["uid"], rustix_uid());
    assert!(first["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(first["user"].as_str().is_some_and(|u| !u.is_empty()));
    // Never a value, in any form of the log.
    let text = stdout(&a.cio(&["credential", "log"]).success());
    for secret in [REF_ACCESS, REF_SECRET, "AKIAYHD623GGZX7VDFMK", "not a key"] {
        assert!(!text.contains(secret));
        assert!(!log.to_string().contains(secret));
    }
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("#  TIME "), "{text}");
    assert!(
        lines[0].ends_with("COMMAND  CREDENTIAL          VERSION  OUTCOME"),
        "{text}"
    );
    assert!(
        lines[4].contains(" restore  cio_aws_access_key  4        ok (value of version 2)"),
        "{text}"
    );

    // Narrowed by name and by time.
    assert_eq!(
        summary(&a.log_json(&["cio_aws_secret_key"])),
        ["create cio_aws_secret_key 1", "purge cio_aws_secret_key 1"]
    );
    assert_eq!(summary(&a.log_json(&["--since", "1h"])).len(), 6);
    let out = a.cio(&["credential", "log", "cio_aws_region"]).success();
    assert_eq!(
        stdout(&out),
        "No logged change matches the credential or the --since given.\n"
    );
    let out = a.cio(&["credential", "log", "--verify"]).success();
    assert_eq!(
        stdout(&out),
        "Succeed: Verify credential: change log whole: 6 entries, chained and authenticated under the store key\n"
    );
}

fn rustix_uid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Health: `validate --record` on one node, `list` on the other.
fn checks_are_recorded_for_every_node(a: &Node, b: &Node) {
    let s3 = testkit::s3::S3Server::start("audit-access", "audit-secret-key");
    s3.create_bucket("audit");
    a.create("cio_minio_backup_repo", &s3.repo_url("audit", "repo"));
    a.share_key_with(b);
    a.create("cio_aws_access_key", REF_ACCESS);
    let list = stdout(&b.cio(&["credential", "list"]).success());
    assert!(
        list.lines()
            .next()
            .unwrap()
            .ends_with("  UPDATED               AGE  CHECKED"),
        "{list}"
    );
    assert!(list.lines().nth(1).unwrap().ends_with("  never"), "{list}");
    a.cio(&["credential", "validate", "--offline", "--record"])
        .code(1);
    let list = stdout(&b.cio(&["credential", "list"]).success());
    let row = |name: &str| {
        list.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {list}"))
            .to_string()
    };
    let ago = regex_lite::Regex::new(r"  FAIL <1m ago: incomplete$").unwrap();
    assert!(ago.is_match(&row("cio_aws_access_key")), "{list}");
    assert!(ago.is_match(&row("cio_minio_backup_repo")), "{list}");

    // A set that passes, recorded; --json carries it per credential and per set.
    for (name, value) in [
        ("cio_minio_access_key", "audit-access"),
        ("cio_minio_secret_key", "audit-secret-key"),
        ("cio_minio_backup_password", "correct horse battery staple"),
    ] {
        b.create(name, value);
    }
    b.cio(&["credential", "exec", "--", "restic", "--no-cache", "init"])
        .success();
    // Offline, the rules pass; that is recorded as what it is: not a live check.
    b.cio(&[
        "credential",
        "validate",
        "--offline",
        "--record",
        "--provider",
        "minio",
    ])
    .success();
    let list = stdout(&a.cio(&["credential", "list"]).success());
    assert!(
        list.lines()
            .find(|l| l.starts_with("cio_minio_access_key"))
            .is_some_and(|l| l.ends_with("  warn <1m ago: offline")),
        "{list}"
    );
    b.cio(&["credential", "validate", "--record", "--provider", "minio"])
        .success();
    let list = stdout(&a.cio(&["credential", "list"]).success());
    let minio = list
        .lines()
        .find(|l| l.starts_with("cio_minio_access_key"))
        .unwrap();
    // Live and passing; its one finding is the warning about plain http:// (s3s-fs).
    assert!(
        regex_lite::Regex::new(r"  warn <1m ago: plain_http$")
            .unwrap()
            .is_match(minio),
        "{list}"
    );
    // A pass of the rules alone proves less than the live check of the same values: it
    // does not replace it (it would hide a live failure), and says so.
    let offline = b
        .cio(&[
            "credential",
            "validate",
            "--offline",
            "--record",
            "--provider",
            "minio",
        ])
        .success();
    assert_eq!(
        stderr(&offline),
        "Warning: the minio primary set keeps its live check from <1m ago: an --offline check does not replace it; run 'cio credential validate --record' to check it again\n"
    );
    let list = stdout(&a.cio(&["credential", "list"]).success());
    assert!(
        list.lines()
            .find(|l| l.starts_with("cio_minio_access_key"))
            .is_some_and(|l| l.ends_with("  warn <1m ago: plain_http")),
        "{list}"
    );
    let out = a.cio(&["credential", "list", "--json"]).success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let set = v["sets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["provider"] == "aws")
        .unwrap();
    assert_eq!(set["checked"]["status"], "fail");
    assert_eq!(set["checked"]["step"], "completeness");
    assert_eq!(set["checked"]["code"], "incomplete");
    let credential = v["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "cio_minio_secret_key")
        .unwrap();
    assert_eq!(credential["checked"]["status"], "warn");
    assert_eq!(credential["checked"]["step"], "rules");
    assert_eq!(credential["checked"]["code"], "plain_http");
    assert_eq!(credential["checked"]["current"], true);
    // Recording checks is not a change: the log has the creates only.
    assert_eq!(a.log_json(&[])["entries"].as_array().unwrap().len(), 5);

    // A credential of the set changed after the check: the check was of other values, and
    // list says so on every node instead of lending the new value the old verdict.
    b.create("cio_minio_secret_key", "audit-secret-key-2");
    let list = stdout(&a.cio(&["credential", "list"]).success());
    for name in ["cio_minio_access_key", "cio_minio_secret_key"] {
        let row = list.lines().find(|l| l.starts_with(name)).unwrap();
        assert!(
            row.ends_with("  warn <1m ago: plain_http (changed since)"),
            "{list}"
        );
    }
    let aws = list
        .lines()
        .find(|l| l.starts_with("cio_aws_access_key"))
        .unwrap();
    assert!(aws.ends_with("  FAIL <1m ago: incomplete"), "{list}");
    let out = a.cio(&["credential", "list", "--json"]).success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let minio = v["sets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["provider"] == "minio" && s["role"] == "primary")
        .unwrap();
    assert_eq!(minio["checked"]["current"], false);
}

#[test]
fn embedded_store_logs_changes_and_records_checks() {
    let a = Node::new(None);
    // The "other node" of an embedded store is another process on the same store.
    let b = Node::new(Some(a.env.store().to_str().unwrap()));
    changes_are_logged_reads_are_not(&a, &b);
    let a = Node::new(None);
    let b = Node::new(Some(a.env.store().to_str().unwrap()));
    checks_are_recorded_for_every_node(&a, &b);
}

#[test]
fn cluster_store_shares_one_log_and_the_checks() {
    let cluster = EtcdCluster::single();
    let url = cluster.url("/audit");
    changes_are_logged_reads_are_not(&Node::new(Some(&url)), &Node::new(Some(&url)));
    let url = cluster.url("/health");
    checks_are_recorded_for_every_node(&Node::new(Some(&url)), &Node::new(Some(&url)));
}

/// Three changes, then `tamper`; `log --verify` must name `broken`, and the other commands
/// keep working and say so once.
fn tampered(node: &Node, tamper: impl FnOnce(), broken: &str) {
    node.create("cio_aws_access_key", REF_ACCESS);
    node.create("cio_aws_secret_key", REF_SECRET);
    node.create("cio_aws_backup_repo", REF_REPO);
    tamper();
    let out = node.cio(&["credential", "log", "--verify"]).code(1);
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        format!(
            "Fail: Verify change log: {broken}\n\
             Hint: the store was changed outside cio: compare it with a backup of credentials.db (or of the etcd prefix) to see what was altered; cio keeps working and logging after the break, and once you know what changed, 'cio credential log --acknowledge' accepts the log as it is (later checks then report only what changes after that)\n"
        )
    );
    let out = node
        .cio(&["credential", "log", "--verify", "--json"])
        .code(1);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["verified"], false);
    assert_eq!(v["broken"]["message"], broken);
    // The log still shows what opens, with one warning; a log left without an entry that
    // opens is not "nothing logged yet" (the review's finding).
    let out = node.cio(&["credential", "log"]).success();
    assert_eq!(
        stderr(&out),
        format!(
            "Warning: the change log is damaged: {broken}; run 'cio credential log --verify'\n"
        )
    );
    if v["entries"].as_array().unwrap().is_empty() {
        assert_eq!(
            stdout(&out),
            "No entry of the change log can be shown: it is damaged.\n"
        );
    } else {
        assert!(stdout(&out).starts_with('#'), "{}", stdout(&out));
    }
    // Changes keep working, are logged, and say once that the log is damaged.
    let out = node.create("cio_aws_backup_password", "a long enough password");
    assert_eq!(
        stderr(&out),
        format!(
            "Warning: the change log is damaged: {broken}; this change was made and logged all the same; run 'cio credential log --verify'\n"
        )
    );
    let out = node.cio(&["credential", "list"]).success();
    assert_eq!(
        stderr(&out),
        format!(
            "Warning: the change log is damaged: {broken}; run 'cio credential log --verify'\n"
        )
    );
    let log = node.log_json(&[]);
    assert_eq!(
        log["entries"].as_array().unwrap().last().unwrap()["name"],
        "cio_aws_backup_password"
    );
    // The break stays said after that change (whose entry may take a deleted one's place,
    // or leave a gap where the deleted newest entry was: then the gap is named).
    let out = node.cio(&["credential", "log", "--verify"]).code(1);
    let words: Vec<&str> = broken.split_whitespace().take(2).collect();
    let said = stderr(&out);
    assert!(
        said.starts_with(&format!("Fail: Verify change log: {} ", words.join(" ")))
            || said.starts_with(&format!(
                "Fail: Verify change log: entries {} to ",
                words[1]
            )),
        "{said}"
    );
}

/// The end of the log deleted, and a change made before anyone looked: the change says so,
/// and its entry takes a number after the deleted ones (the review's finding: it took the
/// first deleted number, and the log then read as never having held the deleted entries).
#[test]
fn a_cut_log_found_by_a_change_stays_broken() {
    let node = Node::new(None);
    node.create("cio_aws_access_key", REF_ACCESS);
    node.create("cio_aws_secret_key", REF_SECRET);
    node.create("cio_aws_backup_repo", REF_REPO);
    node.sql("DELETE FROM log WHERE seq >= 2");
    let broken = "entry 2 and every later one were deleted (the store's newest change was logged after them)";
    let out = node.create("cio_aws_backup_password", "a long enough password");
    assert!(stderr(&out).contains(broken), "{}", stderr(&out));
    let seqs = |node: &Node| -> Vec<u64> {
        node.log_json(&[])["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(seqs(&node), [1, 4]);
    // The run of deleted entries is named whole (the review's finding: it was said as its
    // first entry alone, and an acknowledgement accepted the others unsaid).
    let missing = "entries 2 to 3 are missing (deleted; later entries remain)";
    let out = node.cio(&["credential", "log", "--verify"]).code(1);
    assert!(
        stderr(&out).starts_with(&format!("Fail: Verify change log: {missing}\n")),
        "{}",
        stderr(&out)
    );
    // Every later change is numbered on from there, and the break stays said.
    let out = node.create("cio_aws_region", "us-east-1");
    assert!(stderr(&out).contains(missing), "{}", stderr(&out));
    assert_eq!(seqs(&node), [1, 4, 5]);
}

/// The review's finding: entries of another copy of the same store (a backup that took
/// other changes) put in the log's place open and chain; `log` showed that copy's changes
/// and `log --verify` said the log was whole. The manifest pins the newest change's entry.
#[test]
fn entries_from_another_copy_of_the_store_are_told() {
    let node = Node::new(None);
    node.create("cio_minio_backup_repo", "s3:https://h.example/bucket");
    node.create("cio_minio_access_key", "AKAAAA1");
    let store = node.env.store();
    let folder = store.parent().unwrap().to_path_buf();
    let put_back = |copy: &std::path::Path| {
        let beside = folder.join("restoring.db");
        std::fs::copy(copy, &beside).unwrap();
        std::fs::rename(&beside, &store).unwrap();
    };
    let common = folder.join("common.db");
    std::fs::copy(&store, &common).unwrap();
    node.create("cio_minio_region", "us-east-1");
    node.create("cio_minio_region", "us-east-3");
    let theirs = folder.join("theirs.db");
    std::fs::copy(&store, &theirs).unwrap();
    put_back(&common);
    node.cio(&["credential", "remove", "cio_minio_access_key"])
        .success();
    node.create("cio_aws_backup_repo", "s3:https://s3.amazonaws.com/bkt-1");
    node.sql(&format!(
        "ATTACH '{}' AS o; UPDATE main.log AS m SET sealed = (SELECT t.sealed FROM o.log AS t WHERE t.seq = m.seq) WHERE m.seq IN (3, 4);",
        theirs.display()
    ));
    let out = node.cio(&["credential", "log", "--verify"]).code(1);
    assert!(
        stderr(&out).starts_with(
            "Fail: Verify change log: entry 4 is not the entry the store's newest change wrote: it, and perhaps entries before it, were put there from another copy of the store (they record that copy's changes, not this store's)\n"
        ),
        "{}",
        stderr(&out)
    );
    let log = node.log_json(&[]);
    assert_eq!(log["verified"], false);
    assert_eq!(log["broken"]["problem"], "other_copy");
}

/// The review's finding: after one entry was deleted, every later command warned and `log
/// --verify` failed for good, and nothing but a backup (losing every later change) could
/// clear it. `log --acknowledge` accepts the log as it is, once.
#[test]
fn an_acknowledged_break_is_said_no_more() {
    let node = Node::new(None);
    node.create("cio_aws_access_key", REF_ACCESS);
    node.create("cio_aws_secret_key", REF_SECRET);
    node.create("cio_aws_backup_repo", REF_REPO);
    node.sql("DELETE FROM log WHERE seq = 2");
    node.cio(&["credential", "log", "--verify"]).code(1);
    let out = node.cio(&["credential", "log", "--acknowledge"]).success();
    assert_eq!(
        stdout(&out),
        "Succeed: Acknowledge credential: entry 4 accepts the log as it is now, with its break: entry 2 is missing (deleted; later entries remain); 'cio credential log --verify' checks what changes after it\n"
    );
    let out = node.create("cio_aws_backup_password", "a long enough password");
    assert!(!stderr(&out).contains("damaged"), "{}", stderr(&out));
    let out = node.cio(&["credential", "log", "--verify"]).success();
    assert_eq!(
        stdout(&out),
        "Succeed: Verify credential: change log whole: 4 entries, chained and authenticated under the store key (entry 4 accepted its breaks before it: 'cio credential log' shows that entry)\n"
    );
    assert_eq!(node.log_json(&[])["acknowledged_by"], 4);
    // An accepted log may lack entries (a purge among them): it no longer says "never held".
    let out = node
        .cio(&["credential", "restore", "cio_aws_region"])
        .code(1);
    assert!(
        stderr(&out).starts_with("Fail: Restore credential: cio_aws_region does not exist: it was purged or never created (this store's change log cannot tell which)\n"),
        "{}",
        stderr(&out)
    );
    let out = node.cio(&["credential", "log", "--acknowledge"]).success();
    assert_eq!(
        stdout(&out),
        "Succeed: Acknowledge credential: the change log has no break after entry 4, which accepted those before it: nothing to acknowledge\n"
    );
}

/// The second review's finding: credentials put back from an earlier copy, and the log
/// entry before the one they lack deleted. `log --verify` said only that the entry was
/// missing, and `log --acknowledge` accepted it, after which every command served the
/// rolled-back password as current. The credentials' disagreement is said first, and no
/// acknowledgement takes it.
#[test]
fn a_rollback_behind_a_deleted_entry_is_never_acknowledged() {
    let node = Node::new(None);
    node.rolled_back("DELETE FROM log WHERE seq = 4;");
    let store = node.env.store();
    let out = node.cio(&["credential", "log", "--verify"]).code(1);
    assert!(
        stderr(&out).starts_with("Fail: Verify change log: the credentials are older than the log: entry 5 and every later one record changes the credentials do not hold"),
        "{}",
        stderr(&out)
    );
    let before = std::fs::read(&store).unwrap();
    let out = node.cio(&["credential", "log", "--acknowledge"]).code(1);
    assert!(
        stderr(&out).starts_with("Fail: Acknowledge change log: the change log cannot be acknowledged: the credentials are older than the log: entry 5"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&store).unwrap(), before, "nothing written");
    node.cio(&["credential", "show", "cio_aws_backup_password", "--reveal"])
        .code(3);
}

/// The third review's finding: credentials put back from an earlier copy, and the log entry
/// that would show it (numbered after the copy's manifest) overwritten with junk. The store
/// was served without a word, and `log --acknowledge` accepted it. Such an entry is said by
/// every command that reads the credentials, first by `log --verify`, and no acknowledgement
/// takes it; a write past it keeps it said.
#[test]
fn junk_past_the_manifest_is_said_and_never_acknowledged() {
    let node = Node::new(None);
    node.rolled_back("UPDATE log SET sealed = X'00' WHERE seq = 5;");
    let said = "entry 5 is numbered after the entry of the store's newest change and does not open (written outside cio): the credentials may have been put back from an earlier copy, and the entries that would show it altered";
    let out = node
        .cio(&["credential", "show", "cio_aws_backup_password", "--reveal"])
        .success();
    assert!(
        stderr(&out).contains(&format!("Warning: the change log is damaged: {said}")),
        "{}",
        stderr(&out)
    );
    let out = node.cio(&["credential", "log", "--verify"]).code(1);
    assert!(
        stderr(&out).starts_with(&format!("Fail: Verify change log: {said}")),
        "{}",
        stderr(&out)
    );
    let refused = format!(
        "Fail: Acknowledge change log: the change log cannot be acknowledged: {said}\n\
         Hint: nothing was changed; while an entry written outside cio stands where entries showing credentials put back from an earlier copy would be, the log cannot be acknowledged; to keep every change, delete each entry that does not open ('cio credential log --verify' names them: rows of the log table in credentials.db, or keys under log/ in the etcd prefix), check that the credentials hold the values they should ('cio credential validate'), then run 'cio credential log --acknowledge'; or put back a whole copy of the store taken after the log's newest entry\n"
    );
    let out = node.cio(&["credential", "log", "--acknowledge"]).code(1);
    assert_eq!(stderr(&out), refused);
    // A write moves the manifest past the entry; the store's note keeps it said.
    node.create("cio_aws_region", "us-east-1");
    let out = node.cio(&["credential", "log", "--verify"]).code(1);
    assert!(
        stderr(&out).starts_with(&format!("Fail: Verify change log: {said}")),
        "{}",
        stderr(&out)
    );
    // The junk, an entry before the manifest now, still there: the rollback behind it is
    // never accepted.
    let out = node.cio(&["credential", "log", "--acknowledge"]).code(1);
    assert_eq!(stderr(&out), refused);
    // The fourth review's findings: show and env said nothing once a write had moved the
    // manifest past the entry; and the store's note deleted, the break became an altered
    // entry that an acknowledgement accepted. The note's loss is said first, never accepted.
    for args in [
        &["credential", "show", "cio_aws_backup_password"][..],
        &["credential", "env"][..],
    ] {
        let out = node.cio(args).success();
        assert!(
            stderr(&out).contains(&format!("Warning: the change log is damaged: {said}")),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    node.sql("DELETE FROM notes");
    let lost = "the note of an earlier break in it was altered, deleted or put back from an earlier copy (it is not the note cio last wrote under the store key)";
    let out = node.cio(&["credential", "log", "--verify"]).code(1);
    assert!(
        stderr(&out).starts_with(&format!(
            "Fail: Verify change log: {lost}; also entry 5 was altered"
        )),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("this break cannot be acknowledged"),
        "{}",
        stderr(&out)
    );
    node.cio(&["credential", "log", "--acknowledge"]).code(1);
    let out = node
        .cio(&["credential", "show", "cio_aws_backup_password"])
        .success();
    assert!(stderr(&out).contains(lost), "{}", stderr(&out));
}

/// The review's finding (a stuck state): one junk row put past the manifest and deleted
/// again left every command warning and `log --verify` failing for ever, `log --acknowledge`
/// refusing, and only a whole earlier copy (losing every change since) as the way out. While
/// the row is there nothing is accepted, and every hint offers deleting it; once it is gone
/// the log reads as a whole earlier copy's would, said as such, and an acknowledgement
/// accepts it, warning plainly of the rollback that could hide behind it.
#[test]
fn junk_past_the_manifest_deleted_again_is_acknowledged_with_a_warning() {
    let node = Node::new(None);
    node.create("cio_aws_access_key", REF_ACCESS);
    node.create("cio_aws_secret_key", REF_SECRET);
    node.sql("insert into log values(99,'junk')");
    let said = "entry 99 is numbered after the entry of the store's newest change and does not open (written outside cio): the credentials may have been put back from an earlier copy, and the entries that would show it altered";
    let way_out = "while an entry written outside cio stands where entries showing credentials put back from an earlier copy would be, the log cannot be acknowledged; to keep every change, delete each entry that does not open ('cio credential log --verify' names them: rows of the log table in credentials.db, or keys under log/ in the etcd prefix), check that the credentials hold the values they should ('cio credential validate'), then run 'cio credential log --acknowledge'";
    let out = node.cio(&["credential", "log", "--verify"]).code(1);
    assert_eq!(
        stderr(&out),
        format!(
            "Fail: Verify change log: {said}; also entry 99 was altered (its tag does not match it under the store key)\n\
             Hint: the store was changed outside cio: compare it with a backup of credentials.db (or of the etcd prefix); {way_out}; or put back a whole copy taken after the log's newest entry (all of credentials.db, or every key under the etcd prefix)\n"
        )
    );
    let before = std::fs::read(node.env.store()).unwrap();
    let out = node.cio(&["credential", "log", "--acknowledge"]).code(1);
    assert_eq!(
        stderr(&out),
        format!(
            "Fail: Acknowledge change log: the change log cannot be acknowledged: {said}\n\
             Hint: nothing was changed; {way_out}; or put back a whole copy of the store taken after the log's newest entry\n"
        )
    );
    assert_eq!(std::fs::read(node.env.store()).unwrap(), before);

    node.sql("delete from log where seq = 99");
    // Said until acknowledged, by the commands that hand out values too.
    let out = node
        .cio(&["credential", "show", "cio_aws_access_key"])
        .success();
    assert_eq!(
        stderr(&out),
        format!("Warning: the change log is damaged: {said}; run 'cio credential log --verify'\n")
    );
    let gone = "entry 99, found numbered after the entry of the store's newest change and not opening (written outside cio), is gone, and every entry left opens under the store key: the log can no longer tell whether the credentials were put back from an earlier copy while it stood, as it cannot for a whole earlier copy put back";
    let out = node.cio(&["credential", "log", "--verify"]).code(1);
    assert_eq!(
        stderr(&out),
        format!(
            "Fail: Verify change log: {gone}\n\
             Hint: check that the credentials hold the values they should: 'cio credential validate' checks each set against its repository, and a backup of credentials.db (or of the etcd prefix) shows earlier values; if they do, 'cio credential log --acknowledge' accepts the log as it is and keeps every change; if not, put back a whole copy taken before the values went wrong\n"
        )
    );
    let json = node.log_json(&[]);
    assert_eq!(json["broken"]["problem"], "unanchored_gone");
    assert_eq!(json["broken"]["seq"], 99);
    let out = node.cio(&["credential", "log", "--acknowledge"]).success();
    assert_eq!(
        stdout(&out),
        format!(
            "Succeed: Acknowledge credential: entry 3 accepts the log as it is now, with its break: {gone}; 'cio credential log --verify' checks what changes after it\n"
        )
    );
    assert_eq!(
        stderr(&out),
        "Warning: an entry written outside cio stood where entries showing credentials put back from an earlier copy would have been, and it is gone: an earlier copy of the credentials put back then would hide behind this acknowledgement, and the log can no longer show it; check that every credential holds the value it should ('cio credential validate' checks each set against its repository; a backup of credentials.db or of the etcd prefix shows earlier values)\n"
    );
    // The entry names exactly what it accepted; later commands are quiet.
    let entries = node.log_json(&[]);
    let ack = &entries["entries"][2];
    assert_eq!(
        (ack["command"].as_str(), ack["detail"].as_str()),
        (
            Some("acknowledge"),
            Some(format!("accepted the log as it was: {gone}").as_str())
        )
    );
    node.cio(&["credential", "log", "--verify"]).success();
    for args in [
        &["credential", "show", "cio_aws_access_key"][..],
        &["credential", "list"][..],
    ] {
        assert_eq!(stderr(&node.cio(args).success()), "", "{args:?}");
    }
    let out = node.create("cio_aws_region", "us-east-1");
    assert_eq!(stderr(&out), "");
}

/// The second review's finding: a log whole in itself beside a credential changed below cio
/// sent the administrator to `log --acknowledge`, which then had nothing to acknowledge.
#[test]
fn damaged_credentials_beside_a_whole_log_are_not_sent_to_acknowledge() {
    let node = Node::new(None);
    node.create("cio_aws_access_key", REF_ACCESS);
    node.create("cio_aws_access_key", "AKIAYHD623GGZX7VDFM2");
    node.sql("DELETE FROM versions WHERE version = 2");
    let out = node.cio(&["credential", "log", "--verify"]).code(1);
    assert!(
        stderr(&out).ends_with(
            "Hint: the log is not at fault and nothing in it needs acknowledging: 'cio credential list' names each credential that cannot be trusted; copy the whole store back from a backup, or destroy such a credential and create it again (cio credential remove --purge NAME)\n"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_tampered_embedded_log_is_named() {
    let deleted = Node::new(None);
    tampered(
        &deleted,
        || deleted.sql("DELETE FROM log WHERE seq = 2"),
        "entry 2 is missing (deleted; later entries remain)",
    );
    let edited = Node::new(None);
    tampered(
        &edited,
        || edited.sql("UPDATE log SET sealed = randomblob(length(sealed)) WHERE seq = 1"),
        "entry 1 was altered (its tag does not match it under the store key)",
    );
    // Entry 2 replaced by entry 3 (a valid entry, in another place): it does not open there.
    let moved = Node::new(None);
    tampered(
        &moved,
        || {
            moved
                .sql("UPDATE log SET sealed = (SELECT sealed FROM log WHERE seq = 3) WHERE seq = 2")
        },
        "entry 2 was altered (its tag does not match it under the store key)",
    );
    // The end of the log deleted, or all of it: the manifest says the newest change was
    // logged as entry 3.
    let cut = Node::new(None);
    tampered(
        &cut,
        || cut.sql("DELETE FROM log WHERE seq >= 2"),
        "entry 2 and every later one were deleted (the store's newest change was logged after them)",
    );
    let emptied = Node::new(None);
    tampered(
        &emptied,
        || emptied.sql("DELETE FROM log"),
        "entry 1 and every later one were deleted (the store's newest change was logged after them)",
    );
    // The review's finding: a row numbered -1 read as entry 0, the number that stands for
    // the damage note, and the log said that note was altered.
    let unnumbered = Node::new(None);
    tampered(
        &unnumbered,
        || unnumbered.sql("INSERT INTO log (seq, sealed) VALUES (-1, x'0011')"),
        "it holds a row whose number is no entry number (0, negative or not a number), written outside cio",
    );
}

/// The review's finding: an entry forged at the highest number SQLite holds left no number
/// for the next entry, and every later write failed ("UNIQUE constraint failed"). Writes go
/// on after the newest entry that opens; the forged one is named by every check, as an entry
/// past the manifest that does not open (it may stand where a rollback's evidence stood).
#[test]
fn an_entry_forged_at_the_end_of_the_range_blocks_no_write() {
    let node = Node::new(None);
    node.create("cio_aws_access_key", "AKIAIOSFODNN7EXAMPLE");
    node.sql("INSERT INTO log (seq, sealed) VALUES (9223372036854775807, x'00')");
    let updated = node
        .cio_in(
            &["credential", "create", "--force", "cio_aws_access_key"],
            "AKIAIOSFODNN7EXAMPLF",
        )
        .success();
    assert!(
        stderr(&updated)
            .contains("Warning: the change log is damaged: entry 9223372036854775807 is numbered after the entry of the store's newest change and does not open"),
        "{}",
        stderr(&updated)
    );
    node.create("cio_minio_access_key", "minio-access-1");
    let shown = node
        .cio(&["credential", "show", "cio_aws_access_key", "--reveal"])
        .success();
    assert!(stdout(&shown).contains("AKIAIOSFODNN7EXAMPLF"));
    let out = node.cio(&["credential", "log", "--verify"]).code(1);
    assert!(
        stderr(&out).starts_with(
            "Fail: Verify change log: entry 9223372036854775807 is numbered after the entry of the store's newest change and does not open (written outside cio)"
        ),
        "{}",
        stderr(&out)
    );
    let log = node.log_json(&[]);
    assert_eq!(
        summary(&log),
        [
            "create cio_aws_access_key 1",
            "update cio_aws_access_key 2",
            "create cio_minio_access_key 1"
        ]
    );
}

#[test]
fn a_tampered_cluster_log_is_named() {
    let cluster = EtcdCluster::single();
    let node = Node::new(Some(&cluster.url("/tamper")));
    tampered(
        &node,
        || {
            let out = cluster.etcdctl(&["del", &format!("/tamper/log/{:020}", 2)]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
        },
        "entry 2 is missing (deleted; later entries remain)",
    );
    // The newest entry deleted, its head left: writes go on (no endless conflict with the
    // head) and say so.
    let node = Node::new(Some(&cluster.url("/tamper-tail")));
    tampered(
        &node,
        || {
            let out = cluster.etcdctl(&["del", &format!("/tamper-tail/log/{:020}", 3)]);
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
        },
        "entry 3 and every later one were deleted (the store's newest change was logged after them)",
    );
    // The log head deleted (every entry kept): writes go on, and the log is whole.
    let headless = Node::new(Some(&cluster.url("/tamper-head")));
    headless.create("cio_aws_access_key", REF_ACCESS);
    let out = cluster.etcdctl(&["del", "/tamper-head/loghead"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    headless.create("cio_aws_secret_key", REF_SECRET);
    headless.create("cio_aws_backup_repo", REF_REPO);
    headless.cio(&["credential", "log", "--verify"]).success();
    assert_eq!(
        headless.log_json(&[])["entries"].as_array().unwrap().len(),
        3
    );
}

#[test]
fn a_malformed_since_is_a_usage_error() {
    let node = Node::new(None);
    node.create("cio_aws_access_key", REF_ACCESS);
    let before = node.env.snapshot_files();
    let out = node
        .cio(&["credential", "log", "--since", "yesterday-ish"])
        .code(2);
    assert_eq!(stdout(&out), "");
    let first = stderr(&out);
    assert_eq!(
        first.lines().next().unwrap(),
        "Fail: usage: invalid value for one of the arguments: --since <DURATION>"
    );
    assert!(!first.contains("yesterday-ish"));
    assert_eq!(node.env.snapshot_files(), before, "nothing changed");
}

/// A credential purged and created again starts over at version 1, so the versions
/// a recorded check kept match again although the value is another one: `list` must not
/// lend the new value the old check's verdict.
#[test]
fn purge_and_create_again_is_a_change_since_the_check() {
    let node = Node::new(None);
    node.create(
        "cio_aws_backup_repo",
        "s3:https://s3.amazonaws.com/backup-123",
    );
    node.create("cio_aws_access_key", "AKIAYHD623GGZX7VDFMJ");
    node.create(
        "cio_aws_secret_key",
        "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",
    );
    node.create("cio_aws_backup_password", "the first long password");
    node.cio(&["credential", "validate", "--record", "--offline"])
        .success();
    node.cio(&["credential", "remove", "cio_aws_backup_password", "--purge"])
        .success();
    node.create("cio_aws_backup_password", "another long password");
    let out = node.cio(&["credential", "list", "--json"]).success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["sets"][0]["checked"]["current"], false, "{v}");
    let list = stdout(&node.cio(&["credential", "list"]).success());
    let row = list
        .lines()
        .find(|l| l.starts_with("cio_aws_backup_password"))
        .unwrap();
    assert!(row.ends_with("(changed since)"), "{list}");
}

/// A recorded check altered below cio is that set's alone: list still lists (exit 0), shows
/// the set's CHECKED as unreadable, says so once with what to run, and the set's next
/// `--record` repairs it.
#[test]
fn an_altered_recorded_check_is_said_and_stops_nothing() {
    let node = Node::new(None);
    node.create("cio_aws_access_key", "AKIAYHD623GGZX7VDFMJ");
    node.create("cio_minio_access_key", "minio");
    node.cio(&["credential", "validate", "--record", "--offline"])
        .code(1);
    // Bytes, text or a number where cio keeps bytes: each only that set's record.
    for sealed in ["x'00112233'", "'garbage'", "42"] {
        let db = rusqlite::Connection::open(node.env.store()).unwrap();
        db.execute(
            &format!("UPDATE notes SET sealed = {sealed} WHERE k = 'check/aws/primary'"),
            [],
        )
        .unwrap();
        drop(db);
        let out = node.cio(&["credential", "list"]).success();
        assert_eq!(
            stderr(&out),
            "Warning: the recorded check of the aws primary set cannot be read (it was altered below cio, or recorded by another version of cio); run 'cio credential validate --record' to record it again\n"
        );
    }
    let out = node.cio(&["credential", "list"]).success();
    let list = stdout(&out);
    let row = |name: &str| {
        list.lines()
            .find(|l| l.starts_with(name))
            .unwrap()
            .to_string()
    };
    assert!(
        row("cio_aws_access_key").ends_with("  unreadable"),
        "{list}"
    );
    assert!(
        row("cio_minio_access_key").ends_with("  FAIL <1m ago: incomplete"),
        "{list}"
    );
    let out = node.cio(&["credential", "list", "--json"]).success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["sets"][0]["checked"], serde_json::Value::Null, "{v}");
    node.cio(&["credential", "validate", "--record", "--offline"])
        .code(1);
    let out = node.cio(&["credential", "list"]).success();
    assert_eq!(stderr(&out), "");
    assert!(
        stdout(&out)
            .lines()
            .nth(1)
            .unwrap()
            .ends_with("  FAIL <1m ago: incomplete")
    );

    // A row keyed by the same name as bytes, not text (cio writes none): not a record.
    let db = rusqlite::Connection::open(node.env.store()).unwrap();
    db.execute(
        "INSERT INTO notes (k, sealed) VALUES (CAST('check/aws/primary' AS BLOB), x'00')",
        [],
    )
    .unwrap();
    drop(db);
    assert_eq!(stderr(&node.cio(&["credential", "list"]).success()), "");

    // The note of a break in the change log, altered: a break too, said; nothing stops.
    let db = rusqlite::Connection::open(node.env.store()).unwrap();
    db.execute(
        "INSERT OR REPLACE INTO notes (k, sealed) VALUES ('log/damage', x'0102')",
        [],
    )
    .unwrap();
    drop(db);
    let out = node.cio(&["credential", "list"]).success();
    assert!(
        stderr(&out).contains("the note of an earlier break in it was altered"),
        "{}",
        stderr(&out)
    );
    node.create(
        "cio_aws_secret_key",
        "0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8vZd",
    );
    node.cio(&["credential", "validate", "--record", "--offline"])
        .code(1);
}
