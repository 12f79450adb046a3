//! Cluster stores at key prefixes that nest or hold other keys: a store is never made inside
//! another's prefix or around one, a prefix with another program's keys is said to be one
//! (not a store whose id was removed), and a store below another, made before cio refused
//! that, is never changed by the one around it. Real etcd, started by the tests.

use assert_cmd::assert::Assert;
use testkit::etcd::EtcdCluster;

use crate::util::*;

const OVERLAP_HINT: &str = "Hint: name a key prefix of its own in the location (etcd://HOST:PORT/PREFIX): one that is neither inside another cio store's prefix nor holds one below it, so that no command on one store can change the other's keys\n";

/// `cio ARGS` with `input` on the store at `prefix` of `etcd`.
fn at(env: &TestEnv, etcd: &EtcdCluster, prefix: &str, args: &[&str], input: &str) -> Assert {
    env.cmd()
        .env("CIO_STORE", etcd.url(prefix))
        .args(args)
        .write_stdin(input)
        .assert()
}

/// Every key starting with `prefix` (base64), with its value and the revision it was last
/// written at.
fn keys_under(etcd: &EtcdCluster, prefix: &str) -> Vec<(String, String, i64)> {
    let out = etcd.etcdctl(&["get", prefix, "--prefix", "-w", "json"]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["kvs"]
        .as_array()
        .map(|kvs| {
            kvs.iter()
                .map(|kv| {
                    (
                        kv["key"].as_str().unwrap().to_string(),
                        kv["value"].as_str().unwrap_or_default().to_string(),
                        kv["mod_revision"].as_i64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `list` and `create` at `prefix` both fail with exit 3 and `why` (with `hint`), and no key
/// of the cluster changes.
fn refused(env: &TestEnv, etcd: &EtcdCluster, prefix: &str, why: &str, hint: &str) {
    let before = keys_under(etcd, "");
    for (args, input, action) in [
        (&["credential", "list"][..], "", "List credentials"),
        (
            &["credential", "create", "cio_minio_access_key"][..],
            "minioadmin",
            "Create credential",
        ),
    ] {
        let out = at(env, etcd, prefix, args, input).code(3);
        assert_eq!(
            stderr(&out),
            format!("Fail: {action}: {why}\n{hint}"),
            "{prefix}"
        );
        assert_eq!(stdout(&out), "");
        assert_eq!(
            keys_under(etcd, ""),
            before,
            "{prefix}: {args:?} changed a key"
        );
    }
}

#[test]
fn a_store_inside_another_stores_prefix_is_refused_and_nothing_changes() {
    let etcd = EtcdCluster::single();
    let env = TestEnv::new();
    at(
        &env,
        &etcd,
        "/outer",
        &["credential", "create", "cio_aws_access_key"],
        REF_ACCESS,
    )
    .success();
    // Beside the outer store's records, among them (where its purge would destroy the inner
    // store's keys), and deeper.
    for inner in [
        "/outer/x",
        "/outer/v/cio_aws_access_key",
        "/outer/v/cio_aws_secret_key",
        "/outer/meta",
        "/outer/x/y/z",
    ] {
        let why = format!(
            "the credential store {} shares its keys with another cio credential store: its key prefix lies inside that of the cio credential store {}; nothing was changed",
            etcd.url(inner),
            etcd.url("/outer")
        );
        refused(&env, &etcd, inner, &why, OVERLAP_HINT);
    }
    // Nor is one made there by a migration.
    env.create("cio_minio_access_key", "minioadmin");
    let before = keys_under(&etcd, "");
    let target = etcd.url("/outer/x");
    let out = env.cio(&["credential", "migrate", "--to", &target]).code(3);
    assert_eq!(
        stderr(&out),
        format!(
            "Fail: Migrate credentials: the credential store {target} shares its keys with another cio credential store: its key prefix lies inside that of the cio credential store {}; nothing was changed\n{OVERLAP_HINT}",
            etcd.url("/outer")
        )
    );
    assert_eq!(keys_under(&etcd, ""), before);
    // A sibling whose name only starts like it is not inside it.
    at(
        &env,
        &etcd,
        "/outer2",
        &["credential", "create", "cio_aws_access_key"],
        REF_ACCESS,
    )
    .success();
}

#[test]
fn a_store_around_another_is_refused_and_the_inner_one_named() {
    let etcd = EtcdCluster::single();
    let env = TestEnv::new();
    at(
        &env,
        &etcd,
        "/deep/a/b",
        &["credential", "create", "cio_aws_access_key"],
        REF_ACCESS,
    )
    .success();
    for outer in ["/deep", "/deep/a"] {
        let why = format!(
            "the credential store {} shares its keys with another cio credential store: the cio credential store {} lies inside its key prefix; nothing was changed",
            etcd.url(outer),
            etcd.url("/deep/a/b")
        );
        refused(&env, &etcd, outer, &why, OVERLAP_HINT);
    }
    let list = stdout(&at(&env, &etcd, "/deep/a/b", &["credential", "list"], "").success());
    assert!(list.contains("****************DFMJ"), "{list}");
}

/// The reviewer's case: another program's keys were called a store whose id was removed, with
/// advice to restore a backup.
#[test]
fn another_programs_keys_are_said_to_be_so() {
    let etcd = EtcdCluster::single();
    let env = TestEnv::new();
    assert!(
        etcd.etcdctl(&["put", "/other/app/config", "x"])
            .status
            .success()
    );
    let why = format!(
        "{} is not a cio credential store: its key prefix holds keys that cio did not write",
        etcd.url("/other")
    );
    let hint = "Hint: name a key prefix of its own in the location (etcd://HOST:PORT/PREFIX): one no other program writes under; cio never writes among another program's keys\n";
    refused(&env, &etcd, "/other", &why, hint);
}

/// A store below another's prefix, made before cio refused that (here: while the outer
/// store's id was away), among the outer store's records of a name: the outer store reads
/// none of its keys as records, and purging that name destroys the outer store's versions
/// only.
#[test]
fn a_store_below_made_earlier_is_never_changed_by_the_one_around_it() {
    let etcd = EtcdCluster::single();
    let env = TestEnv::new();
    let name = "cio_aws_secret_key";
    let inner = format!("/outer/v/{name}");
    at(
        &env,
        &etcd,
        "/outer",
        &["credential", "create", "cio_aws_access_key"],
        REF_ACCESS,
    )
    .success();
    let id = etcd.etcdctl(&["get", "/outer/meta/store_id", "--print-value-only"]);
    let id = String::from_utf8(id.stdout).unwrap();
    etcd.etcdctl(&["del", "/outer/meta/store_id"]);
    at(
        &env,
        &etcd,
        &inner,
        &["credential", "create", "cio_minio_access_key"],
        "minioadmin",
    )
    .success();
    assert!(
        etcd.etcdctl(&["put", "/outer/meta/store_id", id.trim_end()])
            .status
            .success()
    );
    // The inner store's keys, before the outer store's versions go among them.
    let inner_keys = || keys_under(&etcd, &format!("{inner}/"));
    let before = inner_keys();
    assert!(before.len() >= 5, "{before:?}");
    at(
        &env,
        &etcd,
        "/outer",
        &["credential", "create", name],
        REF_SECRET,
    )
    .success();
    at(
        &env,
        &etcd,
        "/outer",
        &["credential", "create", name],
        REF_SECRET,
    )
    .success();
    let list = stdout(&at(&env, &etcd, "/outer", &["credential", "list"], "").success());
    assert!(list.contains(&format!("{name}  aws")), "{list}");
    let out = at(
        &env,
        &etcd,
        "/outer",
        &["credential", "remove", "--purge", name],
        "",
    )
    .success();
    assert_eq!(
        stdout(&out),
        format!("Succeed: Purge credential: {name} (2 versions destroyed)\n")
    );
    assert_eq!(inner_keys(), before, "the purge changed the inner store");
    let list = stdout(&at(&env, &etcd, "/outer", &["credential", "list"], "").success());
    assert!(!list.lines().any(|l| l.starts_with(name)), "{list}");
    let list = stdout(&at(&env, &etcd, &inner, &["credential", "list"], "").success());
    assert!(list.contains("cio_minio_access_key"), "{list}");
}

/// One rule for the key prefix wherever a location comes from (`CIO_STORE`, `--store`,
/// `migrate --to`, cio.toml): an empty segment is refused anywhere, a trailing one too
/// (`/a//` was accepted as `/a` while `//a` was refused), with exit 2 and no key written.
#[test]
fn an_empty_prefix_segment_is_refused_from_every_source_and_nothing_is_written() {
    let etcd = EtcdCluster::single();
    let env = TestEnv::new();
    let why = "the store location is not valid: the key prefix has an empty segment (two '/' in a row): write each '/' once, as in etcd://HOST:PORT/cio/cluster-a";
    let create = ["credential", "create", "cio_minio_access_key"];
    for prefix in ["/a//", "//a", "/a//b", "//"] {
        let location = etcd.url(prefix);
        let before = keys_under(&etcd, "");
        let runs: [(&str, Assert); 4] = [
            (
                "CIO_STORE",
                at(&env, &etcd, prefix, &create, "minioadmin").code(2),
            ),
            (
                "--store",
                env.cmd()
                    .args(create)
                    .args(["--store", &location])
                    .write_stdin("minioadmin")
                    .assert()
                    .code(2),
            ),
            (
                "migrate --to",
                env.cmd()
                    .args(["credential", "migrate", "--to", &location])
                    .assert()
                    .code(2),
            ),
            ("cio.toml", {
                let config = std::fs::read(env.config()).unwrap_or_default();
                std::fs::write(env.config(), format!("store = \"{location}\"\n")).unwrap();
                let out = env
                    .cmd()
                    .env_remove("CIO_STORE")
                    .args(create)
                    .write_stdin("minioadmin")
                    .assert()
                    .code(2);
                std::fs::write(env.config(), config).unwrap();
                out
            }),
        ];
        for (source, out) in runs {
            assert!(
                stderr(&out).contains(why),
                "{prefix} from {source}: {}",
                stderr(&out)
            );
            assert_eq!(keys_under(&etcd, ""), before, "{prefix} from {source}");
        }
    }
    // One trailing '/' is dropped, and '/' alone is the default prefix.
    at(&env, &etcd, "/a/", &create, "minioadmin").success();
    let out = at(&env, &etcd, "/a", &["credential", "list"], "").success();
    assert!(
        stdout(&out).contains("cio_minio_access_key"),
        "{}",
        stdout(&out)
    );
    at(&env, &etcd, "/", &create, "minioadmin").success();
    assert!(!keys_under(&etcd, "/cio/credentials/").is_empty());
}

/// Issue 9, the review's case: a location with `?`, `#` or `;` in its key prefix was used,
/// the query written into every key name and the whole location repeated in every message;
/// a bracketed host that is no IPv6 address, or a listed host that is no host, reached the
/// "cannot be reached" message. Each is refused (exit 2, as a user-info is) without a word
/// of the location, from the flag, the environment, cio.toml and `migrate --to`, in text and
/// JSON, and nothing reaches etcd.
#[test]
fn a_location_that_is_not_strictly_valid_is_refused_unquoted_and_nothing_is_written() {
    const NOT_A_HOST: &str = "of the host list is not a host: write a DNS name, an IPv4 address or an IPv6 address in brackets, each with an optional port, as in etcd://etcd-1:2379,10.0.0.2:2379,[fd00::3]:2379";
    const PREFIX: &str = "the key prefix holds a character other than ASCII letters, digits, '-', '_', '.' and '~' between its '/'s (a '?', '#', ';', '%', ':', space or other character would go into every key name): name a prefix of those only, as in etcd://HOST:PORT/cio/cluster-a";
    const HINT: &str = "give --store / CIO_STORE / `store` in cio.toml (or migrate --to) a file path, or etcd://HOST:PORT[,HOST:PORT...][/PREFIX] (etcds:// for TLS), with the etcd user and password in CIO_ETCD_USER and CIO_ETCD_PASSWORD";
    let etcd = EtcdCluster::single();
    let env = TestEnv::new();
    env.create("cio_minio_access_key", "minioadmin");
    let host = etcd.endpoints().remove(0);
    let port_1 = "the port of endpoint 1 of the host list must be a number from 1 to 65535";
    let host_1 = format!("endpoint 1 {NOT_A_HOST}");
    let host_2 = format!("endpoint 2 {NOT_A_HOST}");
    let cases = [
        (etcd.url("/r/q?password=EtcdSecretCanary"), PREFIX),
        (etcd.url("/r#Canary"), PREFIX),
        (etcd.url("/r;pw=Canary"), PREFIX),
        (etcd.url("/r/%43anary"), PREFIX),
        (etcd.url("/r/Canary:Pw"), PREFIX),
        (etcd.url("/?Canary"), PREFIX),
        (etcd.url("?password=Canary"), port_1),
        (etcd.url("#Canary"), port_1),
        ("etcd://127.0.0.1:Canary/cio".to_string(), port_1),
        ("etcd://[Canary]:1/x".to_string(), host_1.as_str()),
        (format!("etcd://[Canary]:1,{host}/x"), host_1.as_str()),
        (format!("etcds://{host},Canary!:2/x"), host_2.as_str()),
        (format!("etcd://{host},Canary?pw/x"), host_2.as_str()),
        (format!("etcd://{host},Canary;pw:2/x"), host_2.as_str()),
        (format!("etcd://{host},10.0.0.256:1/x"), host_2.as_str()),
    ];
    let commands: [(&[&str], &str, &str); 3] = [
        (&["credential", "list"], "", "List credentials"),
        (
            &["credential", "create", "cio_minio_secret_key"],
            "minioadmin",
            "Create credential",
        ),
        (
            &["credential", "migrate", "--to"],
            "",
            "Migrate credentials",
        ),
    ];
    let before = keys_under(&etcd, "");
    let store_before = env.snapshot_files();
    for (location, reason) in &cases {
        let message = format!("the store location is not valid: {reason}");
        for (args, input, action) in commands {
            let migrate = args.contains(&"--to");
            // Where the location is given: --to for a migration, else the flag, the
            // environment and cio.toml.
            let places: &[&str] = if migrate {
                &["--to"]
            } else {
                &["--store", "CIO_STORE", "cio.toml"]
            };
            for place in places {
                std::fs::write(env.config(), "").unwrap();
                for json in [false, true] {
                    let mut cmd = env.cmd();
                    cmd.args(args);
                    match *place {
                        "--to" => {
                            cmd.arg(location);
                        }
                        "--store" => {
                            cmd.args(["--store", location]);
                        }
                        "CIO_STORE" => {
                            cmd.env("CIO_STORE", location);
                        }
                        _ => {
                            std::fs::write(env.config(), format!("store = \"{location}\"\n"))
                                .unwrap();
                            cmd.env_remove("CIO_STORE");
                        }
                    }
                    if json {
                        cmd.arg("--json");
                    }
                    let out = cmd.write_stdin(input).assert().code(2);
                    let what = format!("{location} {args:?} {place} json={json}");
                    if json {
                        let doc: serde_json::Value =
                            serde_json::from_str(&stdout(&out)).expect(&what);
                        assert_eq!(
                            doc,
                            serde_json::json!({"error": {
                                "exit_code": 2,
                                "message": format!("{action}: {message}"),
                                "hint": HINT,
                            }}),
                            "{what}"
                        );
                    } else {
                        assert_eq!(stdout(&out), "", "{what}");
                    }
                    // The failure is on standard error in both modes.
                    assert_eq!(
                        stderr(&out),
                        format!("Fail: {action}: {message}\nHint: {HINT}\n"),
                        "{what}"
                    );
                    assert_eq!(keys_under(&etcd, ""), before, "{what}");
                }
            }
        }
    }
    std::fs::write(env.config(), "").unwrap();
    assert_eq!(env.snapshot_files(), store_before);
    // The same cluster, named strictly, is used and shown as before.
    let good = etcd.url("/cio/cluster-a");
    at(
        &env,
        &etcd,
        "/cio/cluster-a",
        &["credential", "create", "cio_aws_access_key"],
        REF_ACCESS,
    )
    .success();
    let mut stopped = EtcdCluster::single();
    let gone = stopped.url("/cio/cluster-a");
    stopped.stop(0);
    let out = env
        .cmd()
        .env("CIO_STORE", &gone)
        .args(["credential", "list"])
        .assert()
        .code(3);
    assert!(
        stderr(&out).starts_with(&format!(
            "Fail: List credentials: the credential store {gone} cannot be reached"
        )),
        "{}",
        stderr(&out)
    );
    assert!(keys_under(&etcd, "/cio/cluster-a/").len() > 1, "{good}");
}
