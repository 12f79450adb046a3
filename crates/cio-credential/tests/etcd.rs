//! The etcd cluster store against real etcd members (Debian `etcd-server` 3.4), started by
//! the tests on loopback ports: quorum loss, TLS, authentication, what etcd holds, concurrent
//! vaults, and migration from SQLite.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use cio_credential::{
    Change, CredentialName, CredentialStore, Error, EtcdAuth, EtcdOptions, SecretValue,
    SqliteStore, Store, StoreError, StoreSpec,
};
use testkit::etcd::{EtcdCluster, TestCerts};

const TIMEOUT: Duration = Duration::from_secs(3);

fn name(s: &str) -> CredentialName {
    s.parse().unwrap()
}

fn v(s: &str) -> SecretValue {
    SecretValue::new(s.to_string())
}

fn options() -> EtcdOptions {
    EtcdOptions {
        timeout: Some(TIMEOUT),
        ..EtcdOptions::default()
    }
}

fn open(url: &str, options: EtcdOptions) -> Box<dyn Store> {
    StoreSpec::parse(url).unwrap().open_with(options).unwrap()
}

fn vault(url: &str, key: &Path) -> CredentialStore {
    CredentialStore::new(open(url, options()), key.to_path_buf())
}

fn store_error(e: Error) -> StoreError {
    match e {
        Error::Store(e) => e,
        other => panic!("not a store error: {other:?}"),
    }
}

/// Every head in etcd names the newest version key of its name: no write is half there.
fn assert_heads_match_versions(cluster: &EtcdCluster, prefix: &str) {
    // Heads and versions only: change-log entries are binary (sealed) and may hold newlines.
    let mut text = String::new();
    for part in ["head/", "v/"] {
        let out = cluster.etcdctl(&["get", "--prefix", &format!("{prefix}/{part}")]);
        assert!(out.status.success());
        text.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut heads = Vec::new();
    let mut newest = std::collections::BTreeMap::new();
    for pair in lines.chunks(2) {
        let (key, value) = (pair[0], pair[1]);
        if let Some(name) = key.strip_prefix(&format!("{prefix}/head/")) {
            heads.push((name.to_string(), value.parse::<u64>().unwrap()));
        } else if let Some(rest) = key.strip_prefix(&format!("{prefix}/v/")) {
            let (name, version) = rest.rsplit_once('/').unwrap();
            let version: u64 = version.parse().unwrap();
            let entry = newest.entry(name.to_string()).or_insert(0);
            *entry = version.max(*entry);
        }
    }
    assert_eq!(heads.len(), newest.len(), "a head per name");
    for (name, head) in heads {
        assert_eq!(newest.get(&name), Some(&head), "head of {name}");
    }
}

#[test]
fn three_members_one_down_is_invisible_two_down_is_unreachable_and_nothing_is_lost() {
    let mut cluster = EtcdCluster::three();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("credential.key");
    let url = cluster.url("/cio/credentials");
    let a = name("cio_minio_access_key");
    let s = name("cio_minio_secret_key");
    vault(&url, &key).put(a, &v("minio-admin")).unwrap();
    vault(&url, &key).put(s, &v("secret-one")).unwrap();

    // One member down: everything works, through the other two.
    cluster.stop(0);
    let vlt = vault(&url, &key);
    vlt.put(s, &v("secret-two")).unwrap();
    assert_eq!(vlt.get(s).unwrap().unwrap().value.expose(), "secret-two");
    assert_eq!(vlt.list().unwrap().entries.len(), 2);
    assert_eq!(vlt.history(s).unwrap().len(), 2);

    // Two down: no quorum. A clear Unreachable within the time budget, for reads and writes.
    cluster.stop(1);
    let vlt = vault(&url, &key);
    let start = Instant::now();
    let err = store_error(vlt.put(s, &v("secret-three")).unwrap_err());
    let took = start.elapsed();
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
    assert!(took < TIMEOUT + Duration::from_millis(1500), "{took:?}");
    assert!(err.to_string().contains("cannot be reached"), "{err}");
    let start = Instant::now();
    let err = store_error(vlt.list().unwrap_err());
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
    assert!(start.elapsed() < TIMEOUT + Duration::from_millis(1500));

    // Back: all data there, nothing half-written.
    cluster.restart(0, false);
    cluster.restart(1, false);
    for i in 0..3 {
        cluster.wait_healthy(i);
    }
    let vlt = vault(&url, &key);
    assert_eq!(vlt.get(a).unwrap().unwrap().value.expose(), "minio-admin");
    let value = vlt.get(s).unwrap().unwrap();
    assert!(
        ["secret-two", "secret-three"].contains(&value.value.expose()),
        "the write during the outage is wholly there or not at all"
    );
    assert_heads_match_versions(&cluster, "/cio/credentials");
    vlt.put(s, &v("secret-four")).unwrap();
    assert_eq!(vlt.get(s).unwrap().unwrap().value.expose(), "secret-four");
}

#[test]
fn tls_with_client_certificates() {
    let certs = TestCerts::new();
    let cluster = EtcdCluster::start(1, Some(&certs));
    let url = cluster.url("/cio/credentials");
    assert!(url.starts_with("etcds://"));
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("credential.key");
    let tls = || EtcdOptions {
        cacert: Some(certs.ca.clone()),
        cert: Some(certs.client_cert.clone()),
        key: Some(certs.client_key.clone()),
        timeout: Some(TIMEOUT),
        auth: None,
    };
    let vlt = CredentialStore::new(open(&url, tls()), key.clone());
    let n = name("cio_aws_backup_password");
    vlt.put(n, &v("a long repository password")).unwrap();
    let again = CredentialStore::new(open(&url, tls()), key.clone());
    assert_eq!(
        again.get(n).unwrap().unwrap().value.expose(),
        "a long repository password"
    );

    // A CA that did not sign the server: a TLS error, not "unreachable".
    let wrong_ca = EtcdOptions {
        cacert: Some(certs.other_ca.clone()),
        ..tls()
    };
    let err = open(&url, wrong_ca).latest("x").unwrap_err();
    assert!(matches!(err, StoreError::Tls { .. }), "{err:?}");
    assert!(err.hint().contains("etcd_cacert"));

    // No client certificate: the member refuses the handshake.
    let no_client_cert = EtcdOptions {
        cert: None,
        key: None,
        ..tls()
    };
    let err = open(&url, no_client_cert).latest("x").unwrap_err();
    assert!(
        matches!(err, StoreError::Tls { .. } | StoreError::Unreachable { .. }),
        "{err:?}"
    );

    // A certificate without its key is refused when opening, before any I/O.
    let half = EtcdOptions { key: None, ..tls() };
    let err = StoreSpec::parse(&url)
        .unwrap()
        .open_with(half)
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Tls { .. }), "{err:?}");

    // A client key others than its owner may read is refused, as the store key and an age
    // identity are (the review's finding: a 0644 key was used); the certificates may be.
    let shared = dir.path().join("client.key");
    std::fs::copy(&certs.client_key, &shared).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o610] {
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(mode)).unwrap();
        let readable = EtcdOptions {
            key: Some(shared.clone()),
            ..tls()
        };
        let err = StoreSpec::parse(&url)
            .unwrap()
            .open_with(readable)
            .err()
            .unwrap();
        assert_eq!(
            format!("{err}. Hint: {}", err.hint()),
            format!(
                "etcd client key file {} is not safe to trust: it is a private key that others than its owner may read (mode {mode:04o}). Hint: run: chmod 600 {} (a private key is for its owner's eyes only, as ssh demands of its keys)",
                shared.display(),
                shared.display()
            )
        );
    }
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o600)).unwrap();
    let private = EtcdOptions {
        key: Some(shared.clone()),
        ..tls()
    };
    assert_eq!(
        CredentialStore::new(open(&url, private), key.clone())
            .get(n)
            .unwrap()
            .unwrap()
            .value
            .expose(),
        "a long repository password"
    );

    // Plain etcd:// to a TLS member: a message that says what is wrong.
    let plain = url.replacen("etcds://", "etcd://", 1);
    let err = open(&plain, options()).latest("x").unwrap_err();
    assert!(err.to_string().contains("etcd"), "{err}");
}

#[test]
fn etcd_holds_no_plaintext() {
    let cluster = EtcdCluster::single();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("credential.key");
    let url = cluster.url("/cio/credentials");
    let vlt = vault(&url, &key);
    let secrets = [
        ("cio_aws_access_key", "AKIAIOSFODNN7EXAMPLE"),
        (
            "cio_aws_secret_key",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        ("cio_aws_backup_password", "correct horse battery staple"),
    ];
    for (n, value) in secrets {
        vlt.put(name(n), &v(value)).unwrap();
    }
    vlt.remove(name("cio_aws_access_key")).unwrap();
    vlt.restore(name("cio_aws_access_key"), None).unwrap();
    let out = cluster.etcdctl(&["get", "--prefix", ""]);
    assert!(out.status.success());
    let json = cluster.etcdctl(&["get", "--prefix", "", "--write-out=json"]);
    let everything = [out.stdout, json.stdout].concat();
    let text = String::from_utf8_lossy(&everything);
    assert!(text.contains("/cio/credentials/v/cio_aws_secret_key/"));
    for (_, value) in secrets {
        let b64 = base64::engine::general_purpose::STANDARD.encode(value);
        assert!(!text.contains(value), "plaintext {value:?} in etcd");
        assert!(!text.contains(&b64), "base64 of {value:?} in etcd");
        assert!(!text.contains(&value[..10]), "part of {value:?} in etcd");
    }
}

#[test]
fn two_vaults_writing_at_once_lose_nothing() {
    let cluster = EtcdCluster::single();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("credential.key");
    let url = cluster.url("/cio/credentials");
    let shared = name("cio_minio_secret_key");
    std::thread::scope(|scope| {
        for writer in 0..2 {
            let (url, key) = (&url, &key);
            scope.spawn(move || {
                let vlt = vault(url, key);
                let own = name(if writer == 0 {
                    "cio_minio_backup_password"
                } else {
                    "cio_minio_alt_backup_password"
                });
                for i in 0..15 {
                    vlt.put(shared, &v(&format!("writer-{writer}-value-{i:02}")))
                        .unwrap();
                    vlt.put(own, &v(&format!("own-{writer}-value-{i:02}")))
                        .unwrap();
                }
            });
        }
    });
    let vlt = vault(&url, &key);
    let history = vlt.history(shared).unwrap();
    assert_eq!(history.len(), 30);
    let mut values: Vec<String> = history
        .iter()
        .map(|h| h.value.as_ref().unwrap().expose().to_string())
        .collect();
    values.sort();
    values.dedup();
    assert_eq!(values.len(), 30, "every write is kept exactly once");
    assert_eq!(
        history.iter().map(|h| h.version).collect::<Vec<_>>(),
        (1..=30).collect::<Vec<u64>>()
    );
    assert_eq!(
        vlt.history(name("cio_minio_alt_backup_password"))
            .unwrap()
            .len(),
        15
    );
}

#[test]
fn migrate_sqlite_to_etcd_with_history() {
    let cluster = EtcdCluster::single();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("credential.key");
    let sqlite = dir.path().join("credentials.db");
    let source = CredentialStore::new(Box::new(SqliteStore::new(sqlite.clone())), key.clone());
    let s = name("cio_aws_secret_key");
    let r = name("cio_aws_backup_repo");
    source
        .put(s, &v("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"))
        .unwrap();
    source
        .put(s, &v("je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"))
        .unwrap();
    source.remove(s).unwrap();
    source.restore(s, Some(1)).unwrap();
    source
        .put(r, &v("s3:https://s3.amazonaws.com/backups"))
        .unwrap();

    let url = cluster.url("/cio/credentials");
    let report = source.migrate_to(open(&url, options()).as_ref()).unwrap();
    assert_eq!(report.copied(), 5);

    let target = vault(&url, &key);
    let before = source.history(s).unwrap();
    let after = target.history(s).unwrap();
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(
            (b.version, b.action, b.restored_from, b.written_at_ms),
            (a.version, a.action, a.restored_from, a.written_at_ms)
        );
        assert_eq!(
            b.value.as_ref().map(|x| x.expose().to_string()),
            a.value.as_ref().map(|x| x.expose().to_string())
        );
    }
    assert_eq!(
        target.get(r).unwrap().unwrap().value.expose(),
        "s3:https://s3.amazonaws.com/backups"
    );
    // Re-sealed for the target: the stores have different ids.
    assert_ne!(
        SqliteStore::new(sqlite.clone())
            .identity(false)
            .unwrap()
            .unwrap()
            .store_id,
        open(&url, options())
            .identity(false)
            .unwrap()
            .unwrap()
            .store_id
    );
    // Running it again copies nothing; a diverging target is refused and left alone.
    let again = source.migrate_to(open(&url, options()).as_ref()).unwrap();
    assert_eq!(again.copied(), 0);
    target
        .put(r, &v("s3:https://s3.amazonaws.com/other"))
        .unwrap();
    source
        .put(r, &v("s3:https://s3.amazonaws.com/third"))
        .unwrap();
    let err = source
        .migrate_to(open(&url, options()).as_ref())
        .unwrap_err();
    assert!(matches!(err, Error::MigrationRefused { .. }), "{err:?}");
    assert_eq!(
        target.get(r).unwrap().unwrap().value.expose(),
        "s3:https://s3.amazonaws.com/other"
    );
}

#[test]
fn authentication_users_passwords_and_permissions() {
    // Tokens live one second without use, so that the test sees one expire.
    let cluster = EtcdCluster::start_with_args(1, None, &["--auth-token-ttl=1"]);
    let ok = |cluster: &EtcdCluster, args: &[&str]| {
        let out = cluster.etcdctl(args);
        assert!(
            out.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ok(&cluster, &["user", "add", "root:root-password"]);
    ok(&cluster, &["user", "grant-role", "root", "root"]);
    ok(&cluster, &["user", "add", "cio:cio-password"]);
    ok(&cluster, &["role", "add", "cio"]);
    ok(
        &cluster,
        &[
            "role",
            "grant-permission",
            "--prefix=true",
            "cio",
            "readwrite",
            "/cio/",
        ],
    );
    ok(&cluster, &["user", "grant-role", "cio", "cio"]);
    ok(&cluster, &["auth", "enable"]);

    let url = cluster.url("/cio/credentials");
    let with = |user: &str, password: &str| EtcdOptions {
        auth: Some(EtcdAuth {
            user: user.to_string(),
            password: v(password),
        }),
        ..options()
    };
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("credential.key");

    let err = open(&url, options()).latest("x").unwrap_err();
    assert!(matches!(err, StoreError::Denied { .. }), "{err:?}");

    let err = open(&url, with("cio", "wrong-password"))
        .latest("x")
        .unwrap_err();
    assert!(matches!(err, StoreError::Denied { .. }), "{err:?}");
    assert!(!err.to_string().contains("wrong-password"), "{err}");
    assert!(!format!("{err:?}").contains("wrong-password"));

    let vlt = CredentialStore::new(open(&url, with("cio", "cio-password")), key.clone());
    vlt.put(name("cio_minio_access_key"), &v("minio-user"))
        .unwrap();
    assert_eq!(
        vlt.get(name("cio_minio_access_key"))
            .unwrap()
            .unwrap()
            .value
            .expose(),
        "minio-user"
    );
    assert!(!vlt.location().contains("cio-password"));

    // An expired token: the store fetches a new one by itself.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        vlt.get(name("cio_minio_access_key"))
            .unwrap()
            .unwrap()
            .value
            .expose(),
        "minio-user"
    );

    // Outside the role's prefix: refused with a message naming the prefix.
    let elsewhere = cluster.url("/elsewhere");
    let err = open(&elsewhere, with("cio", "cio-password"))
        .latest("x")
        .unwrap_err();
    assert!(matches!(err, StoreError::Denied { .. }), "{err:?}");
    assert!(err.to_string().contains("/elsewhere"), "{err}");
    let out = cluster.etcdctl(&[
        "--user=root:root-password",
        "get",
        "--prefix",
        "/cio/",
        "--keys-only",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("/cio/credentials/meta/store_id"));
}

#[test]
fn a_hung_member_is_skipped_within_the_time_budget() {
    let mut cluster = EtcdCluster::three();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("credential.key");
    let url = cluster.url("/cio/credentials");
    let n = name("cio_minio_access_key");
    let vlt = vault(&url, &key);
    vlt.put(n, &v("before-pause")).unwrap();
    // The first endpoint (the one tried first) accepts connections but never answers.
    cluster.pause(0);
    let vlt = vault(&url, &key);
    let start = Instant::now();
    assert_eq!(vlt.get(n).unwrap().unwrap().value.expose(), "before-pause");
    vlt.put(n, &v("while-paused")).unwrap();
    assert_eq!(vlt.get(n).unwrap().unwrap().value.expose(), "while-paused");
    assert!(start.elapsed() < TIMEOUT * 2, "{:?}", start.elapsed());
    cluster.resume(0);
    cluster.wait_healthy(0);
    assert_eq!(vlt.history(n).unwrap().len(), 2);
}

#[test]
fn a_reseal_larger_than_etcds_transactions_says_so_and_the_store_still_opens() {
    let cluster = EtcdCluster::single();
    let url = cluster.url("/cio/big");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("credential.key");
    let store = vault(&url, &key);
    // 130 versions: more than etcd's default 128 operations in one transaction.
    for i in 0..130 {
        store
            .put(
                name("cio_minio_access_key"),
                &v(&format!("minio-access-{i}")),
            )
            .unwrap();
    }
    let err = vault(&url, &key).rekey_all().unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("cannot take this write at once: re-sealing it takes ")
            && message.contains("--max-txn-ops"),
        "{message}"
    );
    assert!(
        err.hint()
            .starts_with("start the etcd members with --max-txn-ops "),
        "{}",
        err.hint()
    );
    // The keyring moved on (add, switch); the store did not, and still opens with it.
    assert_eq!(std::fs::read_to_string(&key).unwrap().lines().count(), 2);
    let entry = vault(&url, &key)
        .get(name("cio_minio_access_key"))
        .unwrap()
        .unwrap();
    assert_eq!(entry.value.expose(), "minio-access-129");
}

/// A long history goes into etcd in several writes of at most one transaction each, and
/// arrives whole; one batch too large for a transaction is refused before it is sent, with
/// what to do, and changes nothing.
#[test]
fn long_histories_fit_etcd_transactions_or_are_refused_whole() {
    let cluster = EtcdCluster::single();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("credential.key");
    let source = CredentialStore::new(
        Box::new(SqliteStore::new(dir.path().join("credentials.db"))),
        key.clone(),
    );
    let s = name("cio_aws_secret_key");
    let values: Vec<SecretValue> = (0..130)
        .map(|i| v(&format!("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLE{i:03}")))
        .collect();
    let changes: Vec<Change<'_>> = values
        .iter()
        .map(|value| Change {
            name: s,
            value: Some(value),
            written_at_ms: None,
        })
        .collect();
    source.write_all(&changes).unwrap();

    let url = cluster.url("/cio/credentials");
    let report = source.migrate_to(open(&url, options()).as_ref()).unwrap();
    assert_eq!(report.copied(), 130);
    let target = vault(&url, &key);
    let after = target.history(s).unwrap();
    assert_eq!(after.len(), 130);
    assert_eq!(
        after[129].value.as_ref().unwrap().expose(),
        values[129].expose()
    );
    assert_heads_match_versions(&cluster, "/cio/credentials");

    let err = store_error(target.write_all(&changes).unwrap_err());
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err:?}");
    assert!(
        err.to_string().ends_with(
            "etcd allows 128 unless its members are started with a larger --max-txn-ops; nothing was changed"
        ),
        "{err}"
    );
    assert!(
        err.hint()
            .starts_with("start the etcd members with --max-txn-ops "),
        "{}",
        err.hint()
    );
    assert_eq!(target.history(s).unwrap().len(), 130, "nothing written");
}

/// Versions with large values (CA bundles near their 64 KiB cap) migrate into etcd in
/// writes that fit etcd's request size (1.5 MiB by default), not only its operation count.
#[test]
fn large_values_migrate_in_writes_etcd_takes() {
    let dir = tempfile::tempdir().unwrap();
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=cio-test-ca",
        ])
        .arg("-keyout")
        .arg(dir.path().join("ca.key"))
        .arg("-out")
        .arg(dir.path().join("ca.pem"))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let one = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
    let bundle = one.repeat(60 * 1024 / one.len());
    let cluster = EtcdCluster::single();
    let key = dir.path().join("credential.key");
    let source = CredentialStore::new(
        Box::new(SqliteStore::new(dir.path().join("credentials.db"))),
        key.clone(),
    );
    let n = name("cio_minio_cacert");
    let values: Vec<SecretValue> = (0..20).map(|_| v(&bundle)).collect();
    let changes: Vec<Change<'_>> = values
        .iter()
        .map(|value| Change {
            name: n,
            value: Some(value),
            written_at_ms: None,
        })
        .collect();
    for chunk in changes.chunks(5) {
        source.write_all(chunk).unwrap();
    }
    let url = cluster.url("/cio/credentials");
    let report = source.migrate_to(open(&url, options()).as_ref()).unwrap();
    assert_eq!(report.copied(), 20);
    let target = vault(&url, &key);
    assert_eq!(target.history(n).unwrap().len(), 20);
    let (was, is) = (
        source.get(n).unwrap().unwrap(),
        target.get(n).unwrap().unwrap(),
    );
    assert!(was.value.expose() == is.value.expose() && is.value.expose().len() > 60_000);
    // All 20 in one write (an import's all or nothing) is more than etcd takes in one
    // request: refused whole, saying which member option would let it through.
    let other = vault(&cluster.url("/other"), &key);
    let err = store_error(other.write_all(&changes).unwrap_err());
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err:?}");
    assert!(
        err.hint()
            .starts_with("start the etcd members with a larger --max-request-bytes"),
        "{}",
        err.hint()
    );
    assert!(other.history(n).unwrap().is_empty(), "nothing written");
}
