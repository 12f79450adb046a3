//! The etcd login (CIO_ETCD_USER, CIO_ETCD_PASSWORD or a prompt) is needed only to open an
//! etcd store, and is asked for once. Real etcd with authentication, started by the test.

use testkit::etcd::EtcdCluster;

use crate::terminal::on_terminal;
use crate::util::*;

/// A single member with authentication on, and the user `cio` (password `cio-password`)
/// that may read and write `/cio/`.
fn cluster_with_users() -> EtcdCluster {
    let cluster = EtcdCluster::single();
    for args in [
        &["user", "add", "root:root-password"][..],
        &["user", "grant-role", "root", "root"],
        &["user", "add", "cio:cio-password"],
        &["role", "add", "cio"],
        &[
            "role",
            "grant-permission",
            "--prefix=true",
            "cio",
            "readwrite",
            "/cio/",
        ],
        &["user", "grant-role", "cio", "cio"],
        &["auth", "enable"],
    ] {
        let out = cluster.etcdctl(args);
        assert!(
            out.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    cluster
}

/// The review's finding: a user whose etcd rights cover only its store's prefix could not
/// create the store (nor migrate into it), refused as one that "may not read and write" it:
/// the new check that no enclosing prefix holds a store read keys outside its rights.
#[test]
fn a_user_limited_to_its_own_prefix_creates_and_migrates_into_its_store() {
    let mut cluster = cluster_with_users();
    cluster.set_etcdctl_user(Some("root:root-password"));
    for args in [
        &["user", "add", "narrow:narrow-password"][..],
        &["role", "add", "narrow"],
        &[
            "role",
            "grant-permission",
            "--prefix=true",
            "narrow",
            "readwrite",
            "/team/x3/",
        ],
        &["user", "grant-role", "narrow", "narrow"],
    ] {
        let out = cluster.etcdctl(args);
        assert!(
            out.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let env = TestEnv::new();
    let narrow = |store: &str, args: &[&str], input: &str| {
        env.cmd()
            .env("CIO_STORE", store)
            .env("CIO_ETCD_USER", "narrow")
            .env("CIO_ETCD_PASSWORD", "narrow-password")
            .args(args)
            .write_stdin(input)
            .assert()
    };
    let store = cluster.url("/team/x3/a");
    narrow(
        &store,
        &["credential", "create", "cio_minio_access_key"],
        "minio",
    )
    .success();
    let out = narrow(
        &store,
        &["credential", "show", "cio_minio_access_key", "--reveal"],
        "",
    )
    .success();
    assert_eq!(stdout(&out), "minio\n");
    env.create("cio_minio_secret_key", "minio-secret");
    let target = cluster.url("/team/x3/b");
    env.cmd()
        .env("CIO_ETCD_USER", "narrow")
        .env("CIO_ETCD_PASSWORD", "narrow-password")
        .args(["credential", "migrate", "--to", &target])
        .write_stdin("")
        .assert()
        .success();
    // Stores still never nest where the user can see: inside its own store, refused.
    let out = narrow(
        &cluster.url("/team/x3/a/inner"),
        &["credential", "create", "cio_minio_access_key"],
        "minio",
    )
    .code(3);
    assert!(stderr(&out).contains("shares its keys with another cio credential store"));
    let out = cluster.etcdctl(&["get", "--prefix", "/team/x3/a/inner", "--keys-only"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "");
}

/// The bug this fixes: the login was settled before the store was known, so an etcd user in
/// the environment broke every command on an embedded store.
#[test]
fn an_etcd_user_in_the_environment_does_not_concern_an_embedded_store() {
    let env = TestEnv::new();
    env.cmd()
        .env("CIO_ETCD_USER", "someone")
        .args(["credential", "create", "cio_minio_access_key"])
        .write_stdin("minio")
        .assert()
        .success();
    let out = env
        .cmd()
        .env("CIO_ETCD_USER", "someone")
        .args(["credential", "list"])
        .write_stdin("")
        .assert()
        .success();
    assert!(stdout(&out).contains("cio_minio_access_key"));
}

/// The bug this fixes: `migrate` asked for the etcd password twice. Here both stores are in
/// etcd, so both need the login: it is still asked for once.
#[test]
fn migrate_asks_for_the_etcd_password_once() {
    let cluster = cluster_with_users();
    let source = cluster.url("/cio/site-a");
    let target = cluster.url("/cio/site-b");
    let env = TestEnv::new();
    let with_login = |args: &[&str], input: &str| {
        env.cmd()
            .env("CIO_STORE", &source)
            .env("CIO_ETCD_USER", "cio")
            .env("CIO_ETCD_PASSWORD", "cio-password")
            .args(args)
            .write_stdin(input)
            .assert()
    };
    with_login(&["credential", "create", "cio_minio_access_key"], "minio").success();
    with_login(
        &["credential", "create", "cio_minio_secret_key"],
        "minio-secret",
    )
    .success();

    let prompt = "etcd password for the user in CIO_ETCD_USER: ";
    let (screen, ok) = on_terminal(
        &env,
        &format!("credential migrate --to {target}"),
        &[("CIO_STORE", &source), ("CIO_ETCD_USER", "cio")],
        &[(prompt, "cio-password")],
    );
    assert!(ok, "{screen}");
    assert_eq!(screen.matches(prompt).count(), 1, "{screen}");
    assert!(!screen.contains("cio-password"), "echoed: {screen}");
    assert!(screen.contains("2 versions of 2 names copied"), "{screen}");

    let out = env
        .cmd()
        .env("CIO_STORE", &target)
        .env("CIO_ETCD_USER", "cio")
        .env("CIO_ETCD_PASSWORD", "cio-password")
        .args(["credential", "show", "cio_minio_secret_key", "--reveal"])
        .write_stdin("")
        .assert()
        .success();
    assert_eq!(stdout(&out), "minio-secret\n");
}

#[test]
fn an_etcd_user_without_a_password_or_a_terminal_is_refused_and_changes_nothing() {
    let mut cluster = cluster_with_users();
    let url = cluster.url("/cio/credentials");
    let env = TestEnv::new();
    env.create("cio_minio_access_key", "minio");
    let before = env.snapshot_files();
    env.cmd()
        .env("CIO_ETCD_USER", "cio")
        .args(["credential", "migrate", "--to", &url])
        .write_stdin("")
        .assert()
        .code(2)
        .stdout("")
        .stderr(
            "Fail: Migrate credentials: CIO_ETCD_USER is set but CIO_ETCD_PASSWORD is not\n\
             Hint: export CIO_ETCD_PASSWORD with the etcd user's password too, or run the command on a terminal to be asked for it; nothing was sent to etcd\n",
        );
    assert_eq!(env.snapshot_files(), before);
    cluster.set_etcdctl_user(Some("root:root-password"));
    let out = cluster.etcdctl(&["get", "--prefix", "/cio/", "--keys-only"]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty(), "nothing was written to etcd");
}

/// The review's finding: etcd TLS files set (here CIO_ETCD_CACERT) with an etcd:// store
/// were ignored, and the etcd password went out in clear. Now refused before the login is
/// read or anything is sent.
#[test]
fn etcd_tls_files_with_a_plain_etcd_store_are_refused_before_the_login_is_sent() {
    let mut cluster = cluster_with_users();
    let url = cluster.url("/cio/credentials");
    assert!(url.starts_with("etcd://"), "{url}");
    let env = TestEnv::new();
    env.create("cio_minio_access_key", "minio");
    let ca = env.dir.path().join("ca.pem");
    std::fs::write(&ca, "not read").unwrap();
    let before = env.snapshot_files();
    for args in [
        &["credential", "migrate", "--to", &url][..],
        &["credential", "list", "--store", &url],
    ] {
        let action = if args.contains(&"migrate") {
            "Migrate credentials"
        } else {
            "List credentials"
        };
        env.cmd()
            .env("CIO_ETCD_USER", "cio")
            .env("CIO_ETCD_PASSWORD", "cio-password")
            .env("CIO_ETCD_CACERT", &ca)
            .args(args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(format!(
                "Fail: {action}: the etcd TLS files are set (the etcd CA file), but the cluster store is etcd://, which sends everything in clear (the etcd password too) and uses no TLS file\n\
                 Hint: name the store etcds://... to speak TLS with these files, or unset them (cio.toml's etcd_cacert, etcd_cert, etcd_key; CIO_ETCD_CACERT, CIO_ETCD_CERT, CIO_ETCD_KEY) for a cluster that takes plain connections\n",
            ));
    }
    assert_eq!(env.snapshot_files(), before);
    cluster.set_etcdctl_user(Some("root:root-password"));
    let out = cluster.etcdctl(&["get", "--prefix", "/cio/", "--keys-only"]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty(), "nothing was written to etcd");
}
