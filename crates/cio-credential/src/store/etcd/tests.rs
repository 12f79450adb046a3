//! The etcd store against a real etcd member started by the test: what only etcd shows (the
//! shared store suite runs on every backend in `crate::suite`): reading creates nothing, the
//! documented key layout, foreign keys, compaction after a purge, and nothing listening.

use std::time::{Duration, Instant};

use super::*;
use crate::store::Action;
use crate::store::suite;
use testkit::etcd::EtcdCluster;

fn store(cluster: &EtcdCluster, prefix: &str) -> EtcdStore {
    let Some(spec) = EtcdSpec::parse(&cluster.url(prefix)).unwrap() else {
        panic!("not an etcd location");
    };
    EtcdStore::new(spec, EtcdOptions::default()).unwrap()
}

/// Reading creates no key; the layout is the documented one.
#[test]
fn reading_creates_nothing_and_the_layout_is_documented() {
    let cluster = EtcdCluster::single();
    let empty = store(&cluster, "/t/empty");
    suite::empty_store_has_nothing(&empty);
    assert!(empty.identity(false).unwrap().is_none());
    let out = cluster.etcdctl(&["get", "--prefix", "/t/empty", "--keys-only"]);
    assert!(out.stdout.is_empty(), "reading creates nothing");

    // The layout is the documented one.
    let s = store(&cluster, "/t/layout");
    let id = s.identity(true).unwrap().unwrap();
    let mut record = suite::record("cio_aws_access_key", 1, Action::Create, Some(&[1, 2, 3]));
    record.written_at_ms = 7;
    suite::append(&s, 0, &record, "fp").unwrap();
    let out = cluster.etcdctl(&["get", "--prefix", "/t/layout/"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "/t/layout/head/cio_aws_access_key",
            "1",
            "/t/layout/meta/key_fingerprint",
            "fp",
            "/t/layout/meta/manifest",
            "+",
            "/t/layout/meta/store_id",
            id.store_id.as_str(),
            "/t/layout/v/cio_aws_access_key/00000000000000000001",
            &format!(
                r#"{{"format":2,"action":"create","written_at_ms":7,"sealed":"{}","seq":1,"mac":"{}"}}"#,
                wire::b64(record.sealed.as_deref().unwrap()),
                wire::b64(&[2; 32])
            ),
        ]
    );
}

#[test]
fn foreign_keys_under_the_prefix_are_refused() {
    let cluster = EtcdCluster::single();
    let out = cluster.etcdctl(&["put", "/other/app/config", "x"]);
    assert!(out.status.success());
    let err = store(&cluster, "/other").identity(true).unwrap_err();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err:?}");
    let out = cluster.etcdctl(&["get", "--prefix", "/other", "--keys-only"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "/other/app/config"
    );
}

/// Reading a prefix with another program's keys says so (it said the store id was removed).
#[test]
fn foreign_keys_are_not_a_removed_store_id() {
    let cluster = EtcdCluster::single();
    cluster.etcdctl(&["put", "/app/config", "x"]);
    let s = store(&cluster, "/app");
    for err in [s.identity(false).unwrap_err(), s.read().unwrap_err()] {
        assert_eq!(
            err.to_string(),
            format!(
                "{} is not a cio credential store: its key prefix holds keys that cio did not write",
                cluster.url("/app")
            )
        );
    }
}

/// A store whose own keys are there without its id is damaged, when read and when written
/// (creating an id for it was refused as another program's keys), and no id is made.
#[test]
fn own_keys_without_the_id_are_a_removed_id_even_when_creating() {
    let cluster = EtcdCluster::single();
    let s = store(&cluster, "/t/lost");
    s.identity(true).unwrap();
    let record = suite::record("cio_aws_access_key", 1, Action::Create, Some(&[1, 2, 3]));
    suite::append(&s, 0, &record, "fp").unwrap();
    cluster.etcdctl(&["del", "/t/lost/meta/store_id"]);
    for create in [false, true] {
        let err = s.identity(create).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the credential store {} is damaged: its store id was removed",
                cluster.url("/t/lost")
            )
        );
    }
    let out = cluster.etcdctl(&["get", "/t/lost/meta/store_id"]);
    assert!(out.stdout.is_empty(), "an id was made");
}

/// Creators at a prefix and inside it at once: the transaction that writes an id checks the
/// enclosing prefixes, so exactly one of them makes a store, and the other is refused.
#[test]
fn creators_around_and_inside_at_once_make_one_store() {
    let cluster = EtcdCluster::single();
    for i in 0..8 {
        let outer = store(&cluster, &format!("/race{i}"));
        let inner = store(&cluster, &format!("/race{i}/x"));
        let (a, b) = std::thread::scope(|scope| {
            let a = scope.spawn(|| outer.identity(true));
            let b = scope.spawn(|| inner.identity(true));
            (a.join().unwrap(), b.join().unwrap())
        });
        let refused = match (a, b) {
            (Ok(_), Err(e)) | (Err(e), Ok(_)) => e,
            other => panic!("exactly one must win: {other:?}"),
        };
        assert!(matches!(refused, StoreError::Overlap { .. }), "{refused:?}");
        let out = cluster.etcdctl(&["get", "--prefix", &format!("/race{i}"), "--keys-only"]);
        let ids = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.ends_with("/meta/store_id"))
            .count();
        assert_eq!(ids, 1);
    }
}

#[test]
fn nothing_listening_is_unreachable_quickly() {
    let endpoint = format!("127.0.0.1:{}", testkit::free_port());
    let spec = EtcdSpec::parse(&format!("etcd://{endpoint}"))
        .unwrap()
        .unwrap();
    let s = EtcdStore::new(
        spec,
        EtcdOptions {
            timeout: Some(Duration::from_secs(1)),
            ..EtcdOptions::default()
        },
    )
    .unwrap();
    let start = Instant::now();
    let err = s.latest("x").unwrap_err();
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "the credential store etcd://{endpoint}/cio/credentials cannot be reached: no member answered within 1s ({endpoint}: Connection refused (os error 111))"
        )
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

/// The mod revision of `key`, read with etcdctl.
fn mod_revision(cluster: &EtcdCluster, key: &str) -> i64 {
    let out = cluster.etcdctl(&["get", key, "--write-out=json"]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["kvs"][0]["mod_revision"].as_i64().unwrap()
}

/// etcd keeps a purged version readable at earlier revisions until the cluster's history is
/// compacted; `compact` compacts at the current revision, and the old value is gone.
#[test]
fn purged_versions_stay_in_earlier_revisions_until_compacted() {
    let cluster = EtcdCluster::single();
    let s = store(&cluster, "/t/compact");
    s.identity(true).unwrap();
    let version = |name: &str, sealed: &[u8]| suite::record(name, 1, Action::Create, Some(sealed));
    suite::append(&s, 0, &version("gone", b"purged-canary"), "fp").unwrap();
    suite::append(&s, 0, &version("kept", b"kept-value"), "fp").unwrap();
    let written = mod_revision(&cluster, "/t/compact/v/gone/00000000000000000001");
    let canary = wire::b64(b"purged-canary")[..16].to_string();
    assert!(s.keeps_revisions());
    assert_eq!(s.purge("gone", &suite::swap(&s)).unwrap(), 1);

    let at_written = || {
        let rev = format!("--rev={written}");
        cluster.etcdctl(&["get", "--prefix", "/t/compact/v/", &rev])
    };
    let before = at_written();
    assert!(before.status.success());
    assert!(String::from_utf8_lossy(&before.stdout).contains(&canary));

    let revision = s.compact().unwrap().unwrap();
    assert!(revision > written, "{revision} > {written}");
    let after = at_written();
    assert!(!after.status.success());
    assert!(!String::from_utf8_lossy(&after.stdout).contains(&canary));
    assert!(
        String::from_utf8_lossy(&after.stderr).contains("required revision has been compacted"),
        "{}",
        String::from_utf8_lossy(&after.stderr)
    );
    // Nothing was written since: the same revision again, which etcd answers "already
    // compacted", and that is success.
    assert_eq!(s.compact().unwrap(), Some(revision));
    // The store itself lost nothing: its versions are keys, not revisions.
    assert!(s.latest("gone").unwrap().is_none());
    assert_eq!(
        suite::tag(&s.latest("kept").unwrap().unwrap(), 10).as_deref(),
        Some(&b"kept-value"[..])
    );
}

/// A store beside `s` on the same cluster whose every call is a write: `compacting()` writes
/// once (so that the revision a reading is pinned at is no longer the newest) and compacts
/// the cluster's history there, as another node's `remove --purge --compact` does.
fn compactor(cluster: &EtcdCluster) -> impl FnMut() + Send + 'static {
    let other = store(cluster, "/t/other");
    other.identity(true).unwrap();
    move || {
        other.put_note("bump", b"x").unwrap();
        other.compact().unwrap();
    }
}

/// The review's report: a compaction between two requests of one reading (pinned at one
/// revision) failed the command with exit 3, "required revision has been compacted", and a
/// hint about the configuration. The reading starts over at the newest revision.
#[test]
fn a_reading_whose_revision_is_compacted_starts_over() {
    let cluster = EtcdCluster::single();
    let s = store(&cluster, "/t/read");
    s.identity(true).unwrap();
    let record = suite::record("cio_aws_access_key", 1, Action::Create, Some(b"value"));
    suite::append(&s, 0, &record, "fp").unwrap();
    let expected = s.read().unwrap().unwrap();
    let compactions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&compactions);
    let mut compact = compactor(&cluster);
    s.gateway.before_pinned_reads(move || {
        // Once: between the first reading's requests.
        if counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            compact();
        }
    });
    let read = s.read().unwrap().unwrap();
    assert!(
        compactions.load(std::sync::atomic::Ordering::SeqCst) > 1,
        "read again"
    );
    assert_eq!(read.identity, expected.identity);
    assert_eq!(read.records, expected.records);
    // Listings in pages and every other reading start over too.
    assert_eq!(s.list_latest().unwrap(), expected.records);
}

/// A reading that meets a compaction each time it starts over gives up, saying to run the
/// command again (a transient failure, not the store's configuration).
#[test]
fn a_reading_compacted_each_time_says_to_run_again() {
    let cluster = EtcdCluster::single();
    let s = store(&cluster, "/t/read");
    s.identity(true).unwrap();
    let record = suite::record("cio_aws_access_key", 1, Action::Create, Some(b"value"));
    suite::append(&s, 0, &record, "fp").unwrap();
    s.gateway.before_pinned_reads(compactor(&cluster));
    let err = s.read().unwrap_err();
    assert!(matches!(err, StoreError::Compacted { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "the credential store {} could not be read at one moment: etcd compacted its history while it was being read, each time the reading started over",
            s.location()
        )
    );
    assert!(
        err.hint().starts_with("run the command again"),
        "{}",
        err.hint()
    );
    let err = crate::error::Error::Store(err);
    assert_eq!(err.kind(), crate::error::ErrorKind::Failed);
}
