//! The cluster store through the CLI: nodes configured by their cio.toml share one etcd and
//! one key; a node with another key is refused; losing members; migrate from the embedded
//! store. Real etcd, started by the tests.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use assert_cmd::assert::Assert;
use testkit::etcd::{EtcdCluster, TestCerts};

use crate::util::*;

/// A cluster node: its own HOME and cio.toml naming the cluster store and a key file.
struct Node {
    env: TestEnv,
}

impl Node {
    fn new(store: &str) -> Node {
        let env = TestEnv::new();
        std::fs::write(
            env.config(),
            format!(
                "store = \"{store}\"\nkey_file = \"{}\"\n",
                env.key().display()
            ),
        )
        .unwrap();
        Node { env }
    }

    /// `cio ARGS` configured by the node's cio.toml alone (no CIO_STORE / CIO_KEY_FILE).
    fn cio(&self, args: &[&str], input: &str) -> Assert {
        self.env
            .cmd()
            .env_remove("CIO_STORE")
            .env_remove("CIO_KEY_FILE")
            .args(args)
            .write_stdin(input)
            .assert()
    }

    fn create(&self, name: &str, value: &str) {
        self.cio(&["credential", "create", name], value).success();
    }

    /// Copies this node's key file to `other`, as the administrator does.
    fn share_key_with(&self, other: &Node) {
        std::fs::create_dir_all(other.env.key().parent().unwrap()).unwrap();
        std::fs::copy(self.env.key(), other.env.key()).unwrap();
        std::fs::set_permissions(other.env.key(), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn aws_set(node: &Node) {
    node.create("cio_aws_backup_repo", REF_REPO);
    node.create("cio_aws_access_key", REF_ACCESS);
    node.create("cio_aws_secret_key", REF_SECRET);
    node.create("cio_aws_backup_password", "a long cluster password");
}

#[test]
fn nodes_share_the_credentials_and_a_foreign_key_is_refused() {
    let etcd = EtcdCluster::single();
    let url = etcd.url("/cio/credentials");
    let a = Node::new(&url);
    let b = Node::new(&url);
    aws_set(&a);
    a.share_key_with(&b);
    let list = stdout(&b.cio(&["credential", "list"], "").success());
    assert!(list.contains("aws primary set: complete"), "{list}");
    assert!(list.contains("****************DFMJ"));
    let out = b
        .cio(
            &["credential", "show", "cio_aws_secret_key", "--reveal"],
            "",
        )
        .success();
    assert_eq!(stdout(&out), format!("{REF_SECRET}\n"));

    // A third node with a key of its own: exit 3, both fingerprints named, nothing written.
    let c = Node::new(&url);
    std::fs::create_dir_all(c.env.key().parent().unwrap()).unwrap();
    let other = TestEnv::new();
    other.create("cio_minio_access_key", "another-key");
    std::fs::copy(other.key(), c.env.key()).unwrap();
    let out = c
        .cio(&["credential", "create", "cio_minio_access_key"], "minio")
        .code(3);
    let text = stderr(&out);
    let fp = regex_lite::Regex::new(r"[0-9a-f]{16}").unwrap();
    assert_eq!(fp.find_iter(&text).count(), 2, "{text}");
    assert!(text.contains("is not the key of this store"), "{text}");
    c.cio(&["credential", "list"], "").code(3);
    let list = stdout(&a.cio(&["credential", "list"], "").success());
    assert!(!list.contains("cio_minio_access_key"));
}

#[test]
fn two_nodes_writing_at_once_lose_nothing() {
    let etcd = EtcdCluster::single();
    let url = etcd.url("/cio/credentials");
    let a = Node::new(&url);
    let b = Node::new(&url);
    a.create("cio_minio_backup_password", "initial password value");
    a.share_key_with(&b);
    let mut children = Vec::new();
    for (n, node) in [&a, &b].into_iter().enumerate() {
        for i in 0..4 {
            for (name, value) in [
                (
                    "cio_minio_backup_password".to_string(),
                    format!("node {n} write {i}"),
                ),
                (
                    format!("cio_minio{}_secret_key", ["", "_alt"][n]),
                    format!("secret-{n}-{i}-value"),
                ),
            ] {
                children.push(node.env.spawn_create(&name, &value, false));
            }
        }
    }
    wait_all(children);
    let out = a
        .cio(
            &[
                "credential",
                "history",
                "cio_minio_backup_password",
                "--json",
            ],
            "",
        )
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["versions"].as_array().unwrap().len(), 9);
    for alt in ["", "_alt"] {
        let out = b
            .cio(
                &[
                    "credential",
                    "history",
                    &format!("cio_minio{alt}_secret_key"),
                    "--json",
                ],
                "",
            )
            .success();
        let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        assert_eq!(v["versions"].as_array().unwrap().len(), 4);
    }
}

#[test]
fn losing_one_member_is_invisible_losing_two_is_exit_3_within_the_timeout() {
    let mut etcd = EtcdCluster::three();
    let url = etcd.url("/cio/credentials");
    let node = Node::new(&url);
    aws_set(&node);
    etcd.stop(0);
    node.create("cio_minio_access_key", "after-one-down");
    assert!(
        stdout(&node.cio(&["credential", "list"], "").success()).contains("cio_minio_access_key")
    );
    etcd.stop(1);
    let start = Instant::now();
    let out = node
        .cio(
            &["credential", "create", "cio_minio_secret_key"],
            "during-outage",
        )
        .code(3);
    assert!(
        start.elapsed() < Duration::from_secs(7),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        stderr(&out).contains("cannot be reached"),
        "{}",
        stderr(&out)
    );
    let start = Instant::now();
    node.cio(&["credential", "list"], "").code(3);
    assert!(
        start.elapsed() < Duration::from_secs(7),
        "took {:?}",
        start.elapsed()
    );
    etcd.restart(0, false);
    etcd.restart(1, true);
    let list = stdout(&node.cio(&["credential", "list"], "").success());
    for name in [
        "cio_aws_backup_repo",
        "cio_aws_backup_password",
        "cio_minio_access_key",
    ] {
        assert!(list.contains(name), "{list}");
    }
}

#[test]
fn migrate_copies_the_embedded_store_with_its_history_once() {
    let etcd = EtcdCluster::single();
    let url = etcd.url("/cio/credentials");
    let single = TestEnv::new();
    single.create("cio_minio_secret_key", "first-secret");
    single.create("cio_minio_secret_key", "second-secret");
    single.create("cio_minio_access_key", "minio");
    single
        .cio(&["credential", "remove", "cio_minio_access_key"])
        .success();
    let out = single
        .cio(&["credential", "migrate", "--to", &url])
        .success();
    assert_eq!(
        stdout(&out),
        format!(
            "Succeed: Migrate credential: 4 versions of 2 names copied to {url} (0 already there)\n"
        )
    );
    assert_eq!(
        stderr(&out),
        "Note: the change log stays in this store: the target's log records the migration, not the changes before it ('cio credential log' here shows those; keep this store, or what 'cio credential log --json' prints, for them)\n"
    );
    let out = single
        .cio(&["credential", "migrate", "--to", &url])
        .success();
    assert!(
        stdout(&out).contains("0 versions of 2 names copied"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        stderr(&out),
        "",
        "a run that copied nothing has no log to speak of"
    );

    // The node that now uses the cluster store, with the same key, sees it all.
    let node = Node::new(&url);
    std::fs::create_dir_all(node.env.key().parent().unwrap()).unwrap();
    std::fs::copy(single.key(), node.env.key()).unwrap();
    let out = node
        .cio(
            &["credential", "show", "cio_minio_secret_key", "--reveal"],
            "",
        )
        .success();
    assert_eq!(stdout(&out), "second-secret\n");
    node.cio(&["credential", "restore", "cio_minio_access_key"], "")
        .success();
    node.cio(
        &[
            "credential",
            "restore",
            "cio_minio_secret_key",
            "--version",
            "1",
        ],
        "",
    )
    .success();
    let out = node
        .cio(
            &["credential", "show", "cio_minio_secret_key", "--reveal"],
            "",
        )
        .success();
    assert_eq!(stdout(&out), "first-secret\n");

    // Newer data in the target is never overwritten.
    single.create("cio_minio_access_key", "changed-after");
    single.cio(&["credential", "migrate", "--to", &url]).code(1);
}

#[test]
fn migrate_to_a_bare_word_copies_nothing_and_makes_no_file() {
    let single = TestEnv::new();
    single.create("cio_minio_secret_key", "first-secret");
    let here = tempfile::tempdir().unwrap();
    let bare = "Fail: Migrate credentials: the store given with --to is neither an etcd URL nor a path to a file\n\
         Hint: nothing was copied; give an etcd URL (--to etcd://10.0.0.1:2379) or a path to a SQLite file (--to /var/lib/cio/credentials.db, or ./NAME for one in the current folder)\n";
    // A mistyped URL follows the rule of every store location (StoreSpec::parse).
    let url = "Fail: Migrate credentials: the store location is not valid: it starts like a URL but is not an etcd one: write etcd://HOST:PORT/PREFIX (etcds:// for TLS), with the user and password in CIO_ETCD_USER and CIO_ETCD_PASSWORD; a file whose path starts so is written ./PATH\n\
         Hint: give --store / CIO_STORE / `store` in cio.toml (or migrate --to) a file path, or etcd://HOST:PORT[,HOST:PORT...][/PREFIX] (etcds:// for TLS), with the etcd user and password in CIO_ETCD_USER and CIO_ETCD_PASSWORD\n";
    for (slip, expected) in [
        ("etcd", url),
        ("cluster", bare),
        ("etcd:10.0.0.1:2379", url),
        ("credentials.db", bare),
        ("http://127.0.0.1:2379", url),
        ("etcd:/127.0.0.1:2379", url),
        ("ETCDS:/127.0.0.1:2379", url),
        ("http:/127.0.0.1:2379", url),
        ("etcd//127.0.0.1:2379", url),
        ("127.0.0.1:2379/cio", url),
        ("localhost:2379/p", url),
    ] {
        let out = single
            .cmd()
            .args(["credential", "migrate", "--to", slip])
            .current_dir(here.path())
            .write_stdin("")
            .assert()
            .code(2);
        assert_eq!(stderr(&out), expected, "{slip}");
        assert!(stdout(&out).is_empty());
    }
    assert_eq!(std::fs::read_dir(here.path()).unwrap().count(), 0);
    // A path in the current folder, said as one, is a store.
    single
        .cmd()
        .args(["credential", "migrate", "--to", "./copy.db"])
        .current_dir(here.path())
        .write_stdin("")
        .assert()
        .success();
    assert!(here.path().join("copy.db").is_file());
}

#[test]
fn a_bad_configuration_file_is_named() {
    let env = TestEnv::new();
    std::fs::write(env.config(), "store = \"/tmp/x.db\"\nstorage = \"typo\"\n").unwrap();
    let out = env.cio(&["credential", "list"]).code(2);
    assert!(
        stderr(&out).contains(&env.config().display().to_string()),
        "{}",
        stderr(&out)
    );
    // The line and the kind of fault; never the file's text (a key may be a pasted secret).
    assert!(
        stderr(&out).contains("line 2: a setting cio does not know"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("storage"), "{}", stderr(&out));
}

/// Adds the test certificates' etcd TLS files to `node`'s cio.toml; returns the file as it
/// was.
fn with_tls_files(node: &Node, certs: &TestCerts) -> String {
    let config = std::fs::read_to_string(node.env.config()).unwrap();
    std::fs::write(
        node.env.config(),
        format!(
            "{config}etcd_cacert = \"{}\"\netcd_cert = \"{}\"\netcd_key = \"{}\"\n",
            certs.ca.display(),
            certs.client_cert.display(),
            certs.client_key.display()
        ),
    )
    .unwrap();
    config
}

/// The TLS files a migration from an etcds:// cluster needs are used by it, so the target
/// may be a plain etcd:// cluster (the refusal of TLS files with an etcd:// store is for a
/// command that uses them nowhere: session 12's last review found this migration blocked).
#[test]
fn a_migration_from_a_tls_cluster_to_a_plain_one_uses_the_tls_files_for_the_source() {
    let certs = TestCerts::new();
    let tls = EtcdCluster::start(1, Some(&certs));
    let plain = EtcdCluster::single();
    let node = Node::new(&tls.url("/cio/credentials"));
    let config = with_tls_files(&node, &certs);
    node.create("cio_minio_access_key", "moved-in-clear");
    let to = plain.url("/cio/credentials");
    node.cio(&["credential", "migrate", "--to", &to], "")
        .success();
    let show_on_plain = || {
        node.cio(
            &[
                "credential",
                "show",
                "cio_minio_access_key",
                "--reveal",
                "--store",
                &to,
            ],
            "",
        )
    };
    let out = show_on_plain().code(2);
    // Reading the plain cluster with the TLS files still set is the refusal...
    assert!(
        stderr(&out).contains("but the cluster store is etcd://"),
        "{}",
        stderr(&out)
    );
    // ...and without them it reads what was migrated.
    std::fs::write(node.env.config(), &config).unwrap();
    let out = show_on_plain().success();
    assert_eq!(stdout(&out), "moved-in-clear\n");
}

#[test]
fn a_tls_cluster_store_from_the_configuration_file_and_from_flags() {
    let certs = TestCerts::new();
    let etcd = EtcdCluster::start(1, Some(&certs));
    let url = etcd.url("/cio/credentials");
    assert!(url.starts_with("etcds://"));
    let node = Node::new(&url);
    with_tls_files(&node, &certs);
    node.create("cio_minio_access_key", "over-tls");
    let out = node
        .cio(
            &["credential", "show", "cio_minio_access_key", "--reveal"],
            "",
        )
        .success();
    assert_eq!(stdout(&out), "over-tls\n");

    // The same through flags, on a node whose configuration names no TLS files.
    let flags_node = Node::new(&url);
    node.share_key_with(&flags_node);
    flags_node.cio(&["credential", "list"], "").code(3);
    let ca = certs.ca.display().to_string();
    let cert = certs.client_cert.display().to_string();
    let key = certs.client_key.display().to_string();
    flags_node
        .cio(
            &[
                "credential",
                "list",
                "--etcd-cacert",
                &ca,
                "--etcd-cert",
                &cert,
                "--etcd-key",
                &key,
            ],
            "",
        )
        .success()
        .stdout(predicates::str::contains("cio_minio_access_key"));
}

/// `remove --purge` on etcd says that etcd keeps earlier revisions until its history is
/// compacted; `--compact` compacts it, after which the old revision no longer answers.
#[test]
fn purge_says_etcd_keeps_revisions_and_compact_drops_them() {
    let etcd = EtcdCluster::single();
    let url = etcd.url("/cio/credentials");
    let node = Node::new(&url);
    node.create("cio_minio_secret_key", "first-secret-value");
    node.create("cio_minio_secret_key", "second-secret-value");
    node.create("cio_minio_access_key", "minio");
    let first = "/cio/credentials/v/cio_minio_secret_key/00000000000000000001";
    let out = etcd.etcdctl(&["get", first, "--write-out=json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let old = json["kvs"][0]["mod_revision"].as_i64().unwrap();
    let sealed = json["kvs"][0]["value"].as_str().unwrap().to_string();
    let at_old = || {
        let rev = format!("--rev={old}");
        let out = etcd.etcdctl(&["get", "--prefix", "/cio/credentials/v/", &rev, "-w", "json"]);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).contains(&sealed),
            out,
        )
    };

    let out = node
        .cio(
            &["credential", "remove", "--purge", "cio_minio_secret_key"],
            "",
        )
        .success();
    assert_eq!(
        stdout(&out),
        "Succeed: Purge credential: cio_minio_secret_key (2 versions destroyed)\n"
    );
    assert_eq!(
        stderr(&out),
        "Warning: etcd keeps the destroyed versions readable at earlier revisions until the cluster compacts its history; to compact it now, run: cio credential remove --purge --compact cio_minio_secret_key (with the same --store; this drops the earlier revisions of every key in the cluster, not only cio's)\n"
    );
    let (ok, holds_old_value, _) = at_old();
    assert!(ok && holds_old_value, "etcd still answers the old revision");

    // Compacting after the purge, as the warning says.
    let out = node
        .cio(
            &[
                "credential",
                "remove",
                "--purge",
                "--compact",
                "cio_minio_secret_key",
            ],
            "",
        )
        .success();
    assert_eq!(
        stdout(&out),
        "Succeed: Purge credential: cio_minio_secret_key (0 versions destroyed)\n"
    );
    assert!(
        stderr(&out).starts_with("Warning: etcd's history was compacted at revision "),
        "{}",
        stderr(&out)
    );
    let (ok, holds_old_value, out) = at_old();
    assert!(!ok && !holds_old_value);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("required revision has been compacted"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Purge and compact in one go, with JSON; the other credentials are untouched.
    node.create("cio_minio_secret_key", "third-secret-value");
    let out = node
        .cio(
            &[
                "credential",
                "rm",
                "cio_minio_secret_key",
                "--purge",
                "--compact",
                "--json",
            ],
            "",
        )
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["versions_destroyed"], 1);
    assert_eq!(v["earlier_revisions_kept"], false);
    assert!(v["compacted_revision"].as_i64().unwrap() > old, "{v}");
    let out = node
        .cio(
            &["credential", "show", "cio_minio_access_key", "--reveal"],
            "",
        )
        .success();
    assert_eq!(stdout(&out), "minio\n");

    // --compact means nothing without --purge; a name the store never held is not found,
    // even with --compact, in a store that was never created.
    node.cio(
        &["credential", "rm", "cio_minio_access_key", "--compact"],
        "",
    )
    .code(2);
    let fresh = Node::new(&etcd.url("/cio/never-created"));
    fresh
        .cio(
            &[
                "credential",
                "rm",
                "--purge",
                "--compact",
                "cio_minio_access_key",
            ],
            "",
        )
        .code(1);
}

/// Every key of the cluster with its value and the revision it was last written at, the
/// cluster's revision, and whether the revision `rev` still answers (not compacted).
fn cluster_state(etcd: &EtcdCluster, rev: i64) -> (serde_json::Value, i64, bool) {
    let out = etcd.etcdctl(&["get", "", "--prefix", "-w", "json"]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let revision = json["header"]["revision"].as_i64().unwrap();
    let old = etcd.etcdctl(&["get", "", "--prefix", &format!("--rev={rev}"), "-w", "json"]);
    (json["kvs"].clone(), revision, old.status.success())
}

/// `remove --purge --compact` of a name the store never held fails exactly as `remove
/// --purge` of it does, and changes nothing: no key, no revision, no compaction (it
/// compacted the whole cluster's history and said "0 versions destroyed").
#[test]
fn purge_compact_of_a_name_never_held_fails_as_purge_does_and_compacts_nothing() {
    let etcd = EtcdCluster::single();
    let node = Node::new(&etcd.url("/cio/credentials"));
    node.create("cio_minio_access_key", "minio");
    node.create("cio_minio_access_key", "minio2");
    let (_, first_revision, _) = cluster_state(&etcd, 1);
    let before = cluster_state(&etcd, first_revision);
    assert!(before.2);
    let name = "cio_minio_secret_key";
    let purge = node
        .cio(&["credential", "remove", "--purge", name], "")
        .code(1);
    assert!(stderr(&purge).contains("never held"), "{}", stderr(&purge));
    for json in [false, true] {
        let mut args = vec!["credential", "remove", "--purge", "--compact", name];
        if json {
            args.push("--json");
        }
        let out = node.cio(&args, "").code(1);
        if !json {
            assert_eq!(stderr(&out), stderr(&purge));
            assert_eq!(stdout(&out), "");
        }
        assert_eq!(cluster_state(&etcd, first_revision), before, "{args:?}");
    }
    // A purged name is still compacted after its purge, as the purge's warning offers.
    node.cio(
        &["credential", "remove", "--purge", "cio_minio_access_key"],
        "",
    )
    .success();
    node.cio(
        &[
            "credential",
            "remove",
            "--purge",
            "--compact",
            "cio_minio_access_key",
        ],
        "",
    )
    .success();
    assert!(!cluster_state(&etcd, first_revision).2);
}

/// The purge warning offers its command in a parenthesis of its own; a `--key-file` given as
/// a flag joins that parenthesis's "with the same" list instead of adding a second one.
#[test]
fn the_compact_note_names_the_flags_in_its_own_parenthesis() {
    let etcd = EtcdCluster::single();
    let node = Node::new(&etcd.url("/cio/credentials"));
    node.create("cio_minio_secret_key", "first-secret-value");
    let key = node.env.key().display().to_string();
    let out = node
        .cio(
            &[
                "credential",
                "remove",
                "--purge",
                "cio_minio_secret_key",
                "--key-file",
                &key,
            ],
            "",
        )
        .success();
    assert_eq!(
        stderr(&out),
        "Warning: etcd keeps the destroyed versions readable at earlier revisions until the cluster compacts its history; to compact it now, run: cio credential remove --purge --compact cio_minio_secret_key (with the same --store and --key-file; this drops the earlier revisions of every key in the cluster, not only cio's)\n"
    );
}

/// The embedded store keeps no earlier revisions: purge says nothing more, and `--compact`
/// changes nothing.
#[test]
fn purge_on_the_embedded_store_has_no_revisions_to_compact() {
    let env = TestEnv::new();
    env.create("cio_minio_secret_key", "a-secret-value");
    let out = env
        .cio(&[
            "credential",
            "rm",
            "--purge",
            "--compact",
            "cio_minio_secret_key",
        ])
        .success();
    assert_eq!(
        stdout(&out),
        "Succeed: Purge credential: cio_minio_secret_key (1 version destroyed)\n"
    );
    // Nothing to compact; what the device may still hold is said as after every purge here.
    assert_eq!(
        stderr(&out),
        "Warning: the destroyed versions of cio_minio_secret_key may remain on the disk, in copies of the store file that earlier writes left in its free space (every write replaces the file whole; a purge overwrites only the file it replaces, and not when another name, such as a backup made with ln, links to it); they are sealed with this store's key: if that matters, rekey the store (cio credential rekey, with the same --store and --key-file) and make sure no copy of the old key survives, the old key file's freed blocks included\n"
    );
}

/// Issue 9: no part of a broken etcd location reaches the output — user-info or anything
/// after it, in text or JSON, from the flag, the environment or cio.toml.
#[test]
fn a_broken_etcd_location_is_never_echoed() {
    let env = TestEnv::new();
    for location in [
        "etcd://root:Canary-Pw-1@node-a:2379/cio",
        "etcds://root:Canary/Pw-1@node-a",
        "ETCD://node-a:Canary-Pw-1",
        "etcd://node-a/Canary Pw 1",
    ] {
        for json in [false, true] {
            let mut args = vec!["credential", "list", "--store", location];
            if json {
                args.push("--json");
            }
            let out = env.cio(&args).code(2);
            let both = format!("{}{}", stdout(&out), stderr(&out));
            assert!(both.contains("the store location is not valid"), "{both}");
            assert!(!both.contains("Canary"), "{location}: {both}");
            assert!(!both.contains("node-a"), "{location}: {both}");
        }
        let out = env
            .cmd()
            .env("CIO_STORE", location)
            .args(["credential", "list"])
            .assert()
            .code(2);
        assert!(!stderr(&out).contains("Canary"), "{}", stderr(&out));
        std::fs::write(env.config(), format!("store = \"{location}\"\n")).unwrap();
        let out = env
            .cmd()
            .env_remove("CIO_STORE")
            .args(["credential", "list"])
            .assert()
            .code(2);
        assert!(!stderr(&out).contains("Canary"), "{}", stderr(&out));
        std::fs::write(env.config(), "").unwrap();
    }
}

/// A purge warns that a recovery bundle may still hold what it destroyed only when there can
/// be one: the set names a repository (the bundle is beside it) and the purge destroyed
/// something. The review's steps on etcd: a set with only a region, then a second purge.
#[test]
fn a_purge_warns_of_a_recovery_bundle_only_where_one_can_hold_the_value() {
    let etcd = EtcdCluster::single();
    let node = Node::new(&etcd.url("/cio/credentials"));
    let (_, recipient) = crate::recovery::age_identity(node.env.dir.path(), "id.txt");
    let mut config = std::fs::read_to_string(node.env.config()).unwrap();
    config.push_str(&format!("recovery_recipients = [\"{recipient}\"]\n"));
    std::fs::write(node.env.config(), config).unwrap();
    let kept = "Warning: etcd keeps the destroyed versions readable at earlier revisions until the cluster compacts its history; to compact it now, run: cio credential remove --purge --compact cio_aws_region (with the same --store; this drops the earlier revisions of every key in the cluster, not only cio's)\n";
    let purge = |extra: &[&str]| {
        let mut args = vec!["credential", "remove", "--purge", "cio_aws_region"];
        args.extend_from_slice(extra);
        node.cio(&args, "").success()
    };
    let compacted = |out: &Assert| {
        let err = stderr(out);
        assert!(
            err.starts_with("Warning: etcd's history was compacted at revision ")
                && err.lines().count() == 1,
            "{err}"
        );
    };

    // No repository URL: no bundle, no warning of one; nor after a purge of nothing.
    node.create("cio_aws_region", "us-east-1");
    let out = purge(&[]);
    assert_eq!(
        stdout(&out),
        "Succeed: Purge credential: cio_aws_region (1 version destroyed)\n"
    );
    assert_eq!(stderr(&out), kept);
    let out = purge(&["--compact"]);
    assert_eq!(
        stdout(&out),
        "Succeed: Purge credential: cio_aws_region (0 versions destroyed)\n"
    );
    compacted(&out);

    // With a repository URL the bundle beside it may hold the destroyed value: said once.
    node.create("cio_aws_backup_repo", REF_REPO);
    node.create("cio_aws_region", "us-east-1");
    let out = purge(&[]);
    assert_eq!(
        stderr(&out),
        format!(
            "{kept}Warning: the recovery bundle at {REF_REPO}/cio-recovery.age may still hold the destroyed value (the aws primary set is incomplete now, so it was not replaced); make the set complete again and the refresh that follows replaces it, or delete that object from the bucket\n"
        )
    );
    let out = purge(&["--compact"]);
    compacted(&out);
}
