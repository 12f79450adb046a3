//! `rekey`: the store key replaced, all at once on the embedded store (killed 50 times during
//! the re-seal), and in stages across two nodes of a real three-member etcd.

use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use cio_credential::{CredentialName, CredentialStore, SecretValue, SqliteStore};
use testkit::etcd::EtcdCluster;

use crate::util::*;

fn copy_key(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// `cio ARGS` as another node of `env`'s store would run it: with the key file `key`.
fn with_key(env: &TestEnv, key: &std::path::Path, args: &[&str]) -> assert_cmd::assert::Assert {
    env.cmd()
        .env("CIO_KEY_FILE", key)
        .args(args)
        .write_stdin("")
        .assert()
}

/// A key file whose path is not UTF-8: `--json` names it exactly (the byte as `\xFF`, as
/// every message does), never lossily (U+FFFD names another file), never a panic.
#[test]
fn rekey_json_names_a_key_file_path_that_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let env = TestEnv::new();
    let key = env
        .dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"k\xff.key"));
    let run = |args: &[&str]| {
        env.cmd()
            .arg("credential")
            .arg("--key-file")
            .arg(&key)
            .args(args)
            .write_stdin("")
            .assert()
    };
    run(&["create", "cio_aws_access_key", "--", REF_ACCESS]).success();
    let out = run(&["rekey", "--json"]).success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let shown = format!("{}/k\\xFF.key", env.dir.path().display());
    assert_eq!(doc["key_file"], shown.as_str());
    assert_eq!(doc["steps"].as_array().unwrap().len(), 4);
}

#[test]
fn a_plain_rekey_keeps_every_value_and_the_old_key_file_is_refused_naming_both() {
    let env = TestEnv::new();
    env.create("cio_aws_access_key", REF_ACCESS);
    env.create("cio_aws_access_key", "AKIAYHD623GGZX7VDFMK");
    env.create("cio_aws_secret_key", REF_SECRET);
    let old_key = env.dir.path().join("old.key");
    copy_key(&env.key(), &old_key);

    let out = env.cio(&["credential", "rekey"]).success();
    let text = stdout(&out);
    // Each stage says what it did; only the last says what comes next (all four ran: none
    // of the cluster instructions is left to do).
    assert_eq!(
        keys_named(&text),
        "Succeed: Rekey credential: stage add: done (key file: OLD, NEW; store sealed with OLD)\n\
         Succeed: Rekey credential: stage switch: done (key file: NEW, OLD; store sealed with OLD)\n\
         Succeed: Rekey credential: stage reseal: done (key file: NEW, OLD; store sealed with NEW, 3 versions sealed again)\n\
         Succeed: Rekey credential: stage retire: done (key file: NEW; store sealed with NEW); the old key opens nothing in the store now\n"
    );
    assert_eq!(env.reveal("cio_aws_access_key"), "AKIAYHD623GGZX7VDFMK");
    let history = stdout(
        &env.cio(&["credential", "history", "cio_aws_access_key"])
            .success(),
    );
    assert_eq!(history.matches("DFM").count(), 2, "{history}");
    assert_eq!(
        std::fs::read_to_string(env.key()).unwrap().lines().count(),
        1
    );

    // The old key file: exit 3, both fingerprints, and where the new key lives.
    let out = env
        .cmd()
        .env("CIO_KEY_FILE", &old_key)
        .args(["credential", "list"])
        .write_stdin("")
        .assert()
        .code(3);
    let text = stderr(&out);
    assert!(text.contains("does not hold key"), "{text}");
    assert!(
        text.contains(&format!(":{} re-sealed it with key", env.key().display())),
        "{text}"
    );

    // A key file others may read is refused, and nothing changes.
    std::fs::set_permissions(env.key(), std::fs::Permissions::from_mode(0o640)).unwrap();
    let before = std::fs::read(env.key()).unwrap();
    let out = env.cio(&["credential", "rekey"]).code(3);
    assert!(
        stderr(&out).contains("may be read or changed by group or others"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("chmod 600"));
    assert_eq!(std::fs::read(env.key()).unwrap(), before);
}

/// Fills the store with 16 names of 100 versions each (through the library: 1600 CLI runs
/// would take a minute for nothing the test needs).
fn sixteen_by_hundred(env: &TestEnv) {
    let store = CredentialStore::new(Box::new(SqliteStore::new(env.store())), env.key());
    let names: Vec<CredentialName> = ["aws", "minio", "aws_alt", "minio_alt"]
        .into_iter()
        .flat_map(|set| {
            ["access_key", "secret_key", "backup_password", "region"]
                .map(|field| format!("cio_{set}_{field}").parse().unwrap())
        })
        .collect();
    for i in 0..100 {
        for name in &names {
            let value = match name.to_string() {
                n if n.ends_with("access_key") => format!("AKIA{:016}", i),
                n if n.ends_with("secret_key") => format!("{:040}", i),
                n if n.ends_with("region") => format!("eu-west-{}", i % 3 + 1),
                _ => format!("repository password number {i}"),
            };
            store.put(*name, &SecretValue::new(value)).unwrap();
        }
    }
}

#[test]
fn a_rekey_killed_during_the_reseal_50_times_always_opens_and_finishes() {
    let env = TestEnv::new();
    sixteen_by_hundred(&env);
    let expected = env.reveal("cio_minio_alt_backup_password");
    let rekey = || {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("cio"));
        cmd.env_clear()
            .env("HOME", env.home())
            .env("CIO_STORE", env.store())
            .env("CIO_KEY_FILE", env.key())
            .env("CIO_CONFIG", env.config())
            .args(["credential", "rekey"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd
    };
    // How long a whole rekey of 1600 versions takes here (the re-seal is most of it).
    let start = Instant::now();
    assert!(rekey().status().unwrap().success());
    let whole = start.elapsed();
    let seed = fastrand::u64(..);
    eprintln!("rekey kill test seed {seed}; one rekey took {whole:?}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut killed = 0;
    while killed < 50 {
        let mut child = rekey().spawn().unwrap();
        std::thread::sleep(whole.mul_f64(rng.f64() * 1.2));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        // Whatever the moment, the keyring opens every value.
        assert_eq!(env.reveal("cio_minio_alt_backup_password"), expected);
        let lines = std::fs::read_to_string(env.key()).unwrap().lines().count();
        assert!((1..=2).contains(&lines), "{lines} keys");
    }
    // Running it again finishes: one key, every version readable.
    assert!(rekey().status().unwrap().success());
    assert_eq!(
        std::fs::read_to_string(env.key()).unwrap().lines().count(),
        1
    );
    let history = stdout(
        &env.cio(&["credential", "history", "cio_aws_region"])
            .success(),
    );
    assert_eq!(history.matches("eu-west-").count(), 100, "{history}");
    eprintln!("50 kills of rekey: every value opened after each");
}

/// A node of the cluster: its own cio.toml naming the etcd store and its own key file.
fn node(url: &str) -> TestEnv {
    let env = TestEnv::new();
    std::fs::write(
        env.config(),
        format!(
            "store = \"{url}\"\nkey_file = \"{}\"\n",
            env.key().display()
        ),
    )
    .unwrap();
    env
}

/// `cio ARGS` on a node, configured by its cio.toml alone.
fn on(node: &TestEnv, args: &[&str]) -> assert_cmd::assert::Assert {
    node.cmd()
        .env_remove("CIO_STORE")
        .env_remove("CIO_KEY_FILE")
        .args(args)
        .write_stdin("")
        .assert()
}

#[test]
fn two_nodes_rekey_a_three_member_etcd_store_in_stages() {
    let etcd = EtcdCluster::three();
    let url = etcd.url("/cio/rekey");
    let (a, b) = (node(&url), node(&url));
    let created = a
        .cmd()
        .env_remove("CIO_STORE")
        .env_remove("CIO_KEY_FILE")
        .args(["credential", "create", "cio_minio_access_key"])
        .write_stdin("minio-access")
        .assert();
    created.success();
    copy_key(&a.key(), &b.key());
    let b_reads = || {
        on(
            &b,
            &["credential", "show", "cio_minio_access_key", "--reveal"],
        )
    };
    let stage = |args: &[&str]| {
        on(
            &a,
            &[&["credential", "rekey", "--json", "--stage"], args].concat(),
        )
        .success()
    };

    // A plain rekey is refused on the cluster store.
    let out = on(&a, &["credential", "rekey"]).code(1);
    assert!(
        stderr(&out).contains("rotate it in stages"),
        "{}",
        stderr(&out)
    );

    // (1) add on A: B, without the new key, keeps working. C gets the keyring now and never
    // runs the switch.
    stage(&["add"]);
    let c = node(&url);
    copy_key(&a.key(), &c.key());
    // A second add adds nothing: it reports the keyring.
    let (ring, store_key) = keyring_of(&a, "add");
    assert_eq!(ring.len(), 2);
    let (old, new) = (ring[0].clone(), ring[1].clone());
    assert_eq!(store_key, old);
    assert_eq!(stdout(&b_reads().success()), "minio-access\n");
    // (2) switch: B still works, and may still write.
    stage(&["switch"]);
    assert_eq!(stdout(&b_reads().success()), "minio-access\n");
    on(
        &b,
        &[
            "credential",
            "create",
            "cio_minio_secret_key",
            "minio-secret-1",
        ],
    )
    .success();
    // (3) reseal: B, without the new key, gets exit 3 naming both keys and where it lives.
    stage(&["reseal"]);
    // A switch run again on A has nothing to do (it must not make the old key current).
    assert_eq!(
        keyring_of(&a, "switch"),
        (vec![new.clone(), old.clone()], new.clone())
    );
    // C, which never switched, may not re-seal the store back to the old key; its switch
    // catches up, and it reads.
    let out = on(&c, &["credential", "rekey", "--stage", "reseal"]).code(1);
    assert!(
        stderr(&out).contains(&format!("this node's current key {old} sealed the store before a re-seal replaced it with key {new}")),
        "{}",
        stderr(&out)
    );
    on(&c, &["credential", "rekey", "--stage", "switch"]).success();
    on(&c, &["credential", "rekey", "--stage", "retire"]).success();
    let out = on(
        &c,
        &["credential", "show", "cio_minio_access_key", "--reveal"],
    )
    .success();
    assert_eq!(stdout(&out), "minio-access\n");
    let out = b_reads().code(3);
    let text = stderr(&out);
    assert!(
        text.contains(&format!("(keys {old}) does not hold key {new}")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            ":{} re-sealed it with key {new}, which this node cannot check without that key (whoever can write the store can write that too); if your cluster re-keyed there, copy that keyring to {} (mode 0600) on this node, and check that it holds key {new}; if nobody did, the store was replaced: put back your copy of it\n",
            a.key().display(),
            b.key().display()
        )),
        "{text}"
    );
    // Nor may B start a rotation of its own: its key file stays as it was.
    let before = std::fs::read(b.key()).unwrap();
    let out = on(&b, &["credential", "rekey", "--stage", "add"]).code(3);
    assert!(
        stderr(&out).contains(&format!("does not hold key {new}")),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(b.key()).unwrap(), before);
    // Nor re-seal: the same error, naming where the key lives.
    let out = on(&b, &["credential", "rekey", "--stage", "reseal"]).code(3);
    assert!(
        stderr(&out).contains(&format!("(keys {old}) does not hold key {new}"))
            && stderr(&out).contains(&format!(":{}", a.key().display())),
        "{}",
        stderr(&out)
    );
    // The new key file reaches B: it works again; (4) both retire.
    copy_key(&a.key(), &b.key());
    assert_eq!(stdout(&b_reads().success()), "minio-access\n");
    for n in [&a, &b] {
        on(n, &["credential", "rekey", "--stage", "retire"]).success();
        let lines = std::fs::read_to_string(n.key()).unwrap();
        assert_eq!(lines.lines().count(), 1);
    }
    assert_eq!(
        stdout(
            &on(
                &b,
                &["credential", "show", "cio_minio_secret_key", "--reveal"]
            )
            .success()
        ),
        "minio-secret-1\n"
    );
    // A re-seal with nothing to do reports the keyring.
    let (ring, store_key) = keyring_of(&b, "reseal");
    assert_eq!((ring, store_key), (vec![new.clone()], new));
}

/// A node's keyring and store key, as a `rekey --stage STAGE --json` with nothing left to do
/// reports them.
fn keyring_of(n: &TestEnv, stage: &str) -> (Vec<String>, String) {
    let out = on(n, &["credential", "rekey", "--json", "--stage", stage]).success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let step = &doc["steps"][0];
    assert_eq!(step["changed"], false);
    (
        step["keyring"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect(),
        step["store_key"].as_str().unwrap().to_string(),
    )
}

#[test]
fn rekeys_on_one_node_take_turns_and_racing_ones_keep_the_store_open() {
    let env = TestEnv::new();
    env.create("cio_aws_access_key", REF_ACCESS);
    env.create("cio_aws_secret_key", REF_SECRET);
    let cio = assert_cmd::cargo::cargo_bin("cio");
    let folder = env.key().parent().unwrap().to_path_buf();
    // Another rekey holds the key folder (flock(1) stands in for it): this one waits for it.
    let log = env.dir.path().join("order.log");
    let out = env.shell(
        "sh",
        &format!(
            "flock '{folder}' sh -c 'sleep 1; echo released >> {log}' & sleep 0.2; '{cio}' credential rekey >/dev/null && echo rekeyed >> {log}; wait",
            folder = folder.display(),
            log = log.display(),
            cio = cio.display(),
        ),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "released\nrekeyed\n"
    );
    // Two plain rekeys at once, again and again: each runs whole, one after the other, and
    // the store always opens with the key file there (it once ended sealed with a key the
    // second rekey's keyring had dropped).
    let out = env.shell(
        "sh",
        &format!(
            "for i in 1 2 3 4 5 6 7 8; do '{cio}' credential rekey >/dev/null & '{cio}' credential rekey >/dev/null & wait; done",
            cio = cio.display(),
        ),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(env.reveal("cio_aws_access_key"), REF_ACCESS);
    assert_eq!(env.reveal("cio_aws_secret_key"), REF_SECRET);
    assert_eq!(
        std::fs::read_to_string(env.key()).unwrap().lines().count(),
        1
    );
}

#[test]
fn a_plain_rekey_after_a_reseal_that_was_not_retired_goes_forward_not_back() {
    // The state a plain rekey killed after its re-seal leaves, made here by the stages: the
    // keyring holds the new key (current) and the old one, the store is sealed with the new.
    let env = TestEnv::new();
    env.create("cio_aws_access_key", REF_ACCESS);
    let first = env.dir.path().join("first.key");
    copy_key(&env.key(), &first);
    for stage in ["add", "switch", "reseal"] {
        env.cio(&["credential", "rekey", "--stage", stage])
            .success();
    }
    let second = env.dir.path().join("second.key");
    copy_key(&env.key(), &second);
    // Run again, a plain rekey finishes that rotation and makes another: it used to switch
    // back to the first key and re-seal the store with it.
    let out = env.cio(&["credential", "rekey"]).success();
    assert!(
        stdout(&out).starts_with("Succeed: Rekey credential: stage retire: done"),
        "{}",
        stdout(&out)
    );
    assert_eq!(env.reveal("cio_aws_access_key"), REF_ACCESS);
    assert_eq!(
        std::fs::read_to_string(env.key()).unwrap().lines().count(),
        1
    );
    for old in [&first, &second] {
        env.cmd()
            .env("CIO_KEY_FILE", old)
            .args(["credential", "list"])
            .write_stdin("")
            .assert()
            .code(3);
    }
}

#[test]
fn a_node_that_never_switched_cannot_take_the_store_back_and_its_switch_catches_up() {
    // Two nodes of one store, each with its own key file. Node B received the keyring after
    // the add but never ran the switch; node A switched and re-sealed.
    let env = TestEnv::new();
    env.create("cio_aws_access_key", REF_ACCESS);
    let b_key = env.dir.path().join("node-b/credential.key");
    let on_b = |args: &[&str]| with_key(&env, &b_key, args);
    env.cio(&["credential", "rekey", "--stage", "add"])
        .success();
    copy_key(&env.key(), &b_key);
    let b_ring = std::fs::read(&b_key).unwrap();
    env.cio(&["credential", "rekey", "--stage", "switch"])
        .success();
    let out = env
        .cio(&["credential", "rekey", "--json", "--stage", "reseal"])
        .success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let step = &doc["steps"][0];
    let (new, old) = (
        step["keyring"][0].as_str().unwrap().to_string(),
        step["keyring"][1].as_str().unwrap().to_string(),
    );
    assert_eq!(step["store_key"], new.as_str());

    // B's re-seal and B's retire are refused, naming both keys, and change nothing: the
    // re-seal used to seal the store with the old key again.
    let behind = format!(
        "this node's current key {old} sealed the store before a re-seal replaced it with key {new}: this node has not switched, and a re-seal from it would go back to the old key"
    );
    for stage in ["reseal", "retire"] {
        let out = on_b(&["credential", "rekey", "--stage", stage]).code(1);
        let text = stderr(&out);
        assert!(text.contains(&behind), "{stage}: {text}");
        assert!(
            text.contains("run 'cio credential rekey --stage switch' on this node (it makes the store's key current), then --stage retire"),
            "{stage}: {text}"
        );
        assert_eq!(std::fs::read(&b_key).unwrap(), b_ring, "{stage}");
    }
    // On A, a switch or re-seal run again has nothing to do: the switch used to make the old
    // key current again, and the re-seal after it would have gone back to it.
    for stage in ["switch", "reseal"] {
        let out = env
            .cio(&["credential", "rekey", "--json", "--stage", stage])
            .success();
        let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        assert_eq!(doc["steps"][0]["changed"], false, "{stage}");
        assert_eq!(doc["steps"][0]["keyring"][0], new.as_str(), "{stage}");
        assert_eq!(doc["steps"][0]["store_key"], new.as_str(), "{stage}");
    }
    // The store is still sealed with the new key: A retires the old one and still reads.
    env.cio(&["credential", "rekey", "--stage", "retire"])
        .success();
    assert_eq!(env.reveal("cio_aws_access_key"), REF_ACCESS);

    // B's switch makes the store's key current; B then retires the old key and reads.
    let out = on_b(&["credential", "rekey", "--stage", "switch"]).success();
    assert_eq!(
        stdout(&out),
        format!(
            "Succeed: Rekey credential: stage switch: done (key file: {new}, {old}; store sealed with {new}); the store is sealed with it already; then: cio credential rekey --stage retire\n"
        )
    );
    let out = on_b(&["credential", "rekey", "--json", "--stage", "switch"]).success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(doc["steps"][0]["changed"], false);
    assert_eq!(doc["steps"][0]["keyring"][0], new.as_str());
    on_b(&["credential", "rekey", "--stage", "retire"]).success();
    assert_eq!(
        std::fs::read(&b_key).unwrap(),
        std::fs::read(env.key()).unwrap()
    );
    let out = on_b(&["credential", "show", "cio_aws_access_key", "--reveal"]).success();
    assert_eq!(stdout(&out), format!("{REF_ACCESS}\n"));
}

/// A store holding REF_ACCESS, and the key file of a node that got the keyring after the add
/// and never ran a stage since, while this env ran `stages` after the add.
fn behind_a_rotation(env: &TestEnv, stages: &[&str]) -> std::path::PathBuf {
    env.create("cio_aws_access_key", REF_ACCESS);
    let behind = env.dir.path().join("behind/credential.key");
    env.cio(&["credential", "rekey", "--stage", "add"])
        .success();
    copy_key(&env.key(), &behind);
    for stage in stages {
        env.cio(&["credential", "rekey", "--stage", stage])
            .success();
    }
    behind
}

#[test]
fn a_plain_rekey_on_a_keyring_behind_the_store_catches_up_and_goes_forward() {
    let env = TestEnv::new();
    let behind = behind_a_rotation(&env, &["switch", "reseal"]);
    // The keyring that never switched: a plain rekey makes the store's key current, drops
    // the old one, and rotates to a new key (it used to re-seal with the old key).
    let out = with_key(&env, &behind, &["credential", "rekey", "--json"]).success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let stages: Vec<(&str, bool)> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap(),
                s["changed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        stages,
        [
            ("switch", true),
            ("retire", true),
            ("add", true),
            ("switch", true),
            ("reseal", true),
            ("retire", true)
        ]
    );
    let last = doc["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["keyring"].as_array().unwrap().len(), 1);
    assert_eq!(last["store_key"], last["keyring"][0]);
    let out = with_key(
        &env,
        &behind,
        &["credential", "show", "cio_aws_access_key", "--reveal"],
    )
    .success();
    assert_eq!(stdout(&out), format!("{REF_ACCESS}\n"));
}

#[test]
fn a_migrated_store_keeps_the_keys_its_re_seals_replaced() {
    // A rotation on the source, then a copy of it: a node behind the rotation may not re-seal
    // the copy back to the old key either (the copy used to start with no key history).
    let env = TestEnv::new();
    let behind = behind_a_rotation(&env, &["switch", "reseal", "retire"]);
    // The copy takes the original's place.
    let copy = env.dir.path().join("copy.db");
    env.cio(&["credential", "migrate", "--to", copy.to_str().unwrap()])
        .success();
    std::fs::rename(&copy, env.store()).unwrap();
    let out = with_key(&env, &behind, &["credential", "rekey", "--stage", "reseal"]).code(1);
    assert!(
        stderr(&out).contains(
            "this node has not switched, and a re-seal from it would go back to the old key"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.reveal("cio_aws_access_key"), REF_ACCESS);
}

#[test]
fn two_nodes_that_re_seal_at_once_both_succeed_and_the_store_opens() {
    // Two nodes with the same keyring (the new key current) re-seal a store of 1,600
    // versions at the same moment: one re-seals, the other finds it done. The second used to
    // read the re-sealed store under the old key and call it damaged, hinting at a backup.
    // Meanwhile the second node writes: each write succeeds (one that read the store before
    // the re-seal and committed after it was told its key file was the wrong one).
    let env = TestEnv::new();
    sixteen_by_hundred(&env);
    for stage in ["add", "switch"] {
        env.cio(&["credential", "rekey", "--stage", stage])
            .success();
    }
    let other = env.dir.path().join("other/credential.key");
    copy_key(&env.key(), &other);
    let reseal = |key: &std::path::Path| {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("cio"));
        cmd.env_clear()
            .env("HOME", env.home())
            .env("CIO_STORE", env.store())
            .env("CIO_KEY_FILE", key)
            .args(["credential", "rekey", "--json", "--stage", "reseal"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (reseal(&env.key()), reseal(&other));
    // Writes from the second node, eight at a time, while the re-seals run.
    let create = |region: &str| {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("cio"));
        cmd.env_clear()
            .env("HOME", env.home())
            .env("CIO_STORE", env.store())
            .env("CIO_KEY_FILE", &other)
            .args(["credential", "create", "cio_minio_region", region])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    for round in 0..3 {
        let writers: Vec<_> = (0..8)
            .map(|i| create(&format!("eu-south-{}", i % 2 + 1)))
            .collect();
        for writer in writers {
            let out = writer.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "round {round}: {stderr}");
        }
    }
    let mut changed = 0;
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if doc["steps"][0]["changed"] == true {
            changed += 1;
        }
    }
    assert_eq!(changed, 1, "one of the two re-sealed");
    assert_eq!(env.reveal("cio_aws_region"), "eu-west-1");
    assert!(env.reveal("cio_minio_region").starts_with("eu-south-"));
}

/// The review's finding: a plain rekey whose re-seal cannot write the store (a full disk, a
/// read-only one, a file-size limit here) had already added its key to the key file and made
/// it current, and said "nothing was changed". It says what did change; the store still
/// opens, and the rekey run again finishes.
#[test]
fn a_rekey_that_cannot_reseal_says_the_key_file_changed() {
    let env = TestEnv::new();
    env.create("cio_minio_access_key", "minio-access-key-1");
    let size = std::fs::metadata(env.store()).unwrap().len();
    let before = std::fs::read(env.store()).unwrap();
    // sh's ulimit -f counts 512-byte blocks: one block short of a copy of the store.
    let out = env.shell(
        "sh",
        &format!(
            "ulimit -f {}; exec {} credential rekey",
            size / 512 - 1,
            assert_cmd::cargo::cargo_bin("cio").display()
        ),
    );
    assert_eq!(out.status.code(), Some(3));
    let store = env.store().display().to_string();
    let key = env.key().display().to_string();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "Fail: Rekey credential store: the store was not re-sealed (the credential store {store} cannot grow past this process's file-size limit (ulimit -f)), and is as it was; key file {key} holds the new key already, as current, beside the old one, which still opens the store\nHint: raise the file-size limit (ulimit -f unlimited; LimitFSIZE= in a systemd unit), then run the command again; 'cio credential rekey' run again finishes the rotation\n"
        )
    );
    assert_eq!(std::fs::read(env.store()).unwrap(), before);
    assert_eq!(env.reveal("cio_minio_access_key"), "minio-access-key-1");
    env.cio(&["credential", "rekey"]).success();
    assert_eq!(env.reveal("cio_minio_access_key"), "minio-access-key-1");
    let verified = env.cio(&["credential", "log", "--verify"]).success();
    assert!(stdout(&verified).starts_with("Succeed: Verify credential: change log whole"));
}

/// `text` with the key fingerprints named OLD (the first one it shows) and NEW (the second).
fn keys_named(text: &str) -> String {
    let fingerprint = regex_lite::Regex::new(r"\b[0-9a-f]{16}\b").expect("a valid regex");
    let mut seen: Vec<String> = Vec::new();
    fingerprint
        .replace_all(text, |c: &regex_lite::Captures<'_>| {
            let fp = c[0].to_string();
            let i = seen.iter().position(|s| *s == fp).unwrap_or_else(|| {
                seen.push(fp);
                seen.len() - 1
            });
            ["OLD", "NEW"]
                .get(i)
                .copied()
                .unwrap_or("ANOTHER")
                .to_string()
        })
        .into_owned()
}
