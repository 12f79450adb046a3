//! The authentication rules on records and manifests built in memory: each kind of change a
//! hand with write access to the store can make, and what it is reported as.

use super::*;
use crate::store::{Action, Undecodable};

fn key() -> MacKey {
    MacKey::derive(&[9; 32])
}

/// A chain of `n` signed versions of `name`, starting at write number `first_seq`.
fn chain(auth: &Authenticator<'_>, name: &str, n: u64, first_seq: u64) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for v in 1..=n {
        let mut r = Record {
            name: name.into(),
            version: v,
            action: if v == 1 {
                Action::Create
            } else {
                Action::Update
            },
            restored_from: None,
            written_at_ms: 1_700_000_000_000 + v as i64,
            sealed: Some(vec![v as u8; 48]),
            seq: first_seq + v - 1,
            prev_mac: out.last().map(|p| p.mac.clone()).unwrap_or_default(),
            mac: Vec::new(),
        };
        auth.sign(&mut r);
        out.push(r);
    }
    out
}

fn manifest_of(chains: &[&[Record]]) -> Manifest {
    let mut m = Manifest::default();
    for c in chains {
        let last = c.last().unwrap();
        m.seq = m.seq.max(last.seq);
        m.heads.insert(
            last.name.clone(),
            Head {
                version: last.version,
                mac: last.mac.clone(),
            },
        );
    }
    m
}

fn ok(records: &[Record]) -> Vec<ReadRecord> {
    records.iter().cloned().map(Ok).collect()
}

/// One edit of a record.
type Change = fn(&mut Record);

#[test]
fn every_field_is_bound() {
    let k = key();
    let auth = Authenticator::new(&k, "store-a", "fp-a");
    let good = chain(&auth, "n", 2, 1).pop().unwrap();
    assert!(auth.verifies(&good));
    let changes: [(&str, Change); 10] = [
        ("name", |r| r.name = "m".into()),
        ("version", |r| r.version = 3),
        ("action", |r| r.action = Action::Restore),
        ("restored_from", |r| r.restored_from = Some(1)),
        ("time", |r| r.written_at_ms += 1),
        ("sealed", |r| r.sealed = None),
        ("sealed bytes", |r| r.sealed.as_mut().unwrap()[0] ^= 1),
        ("seq", |r| r.seq += 1),
        ("prev_mac", |r| r.prev_mac[0] ^= 1),
        ("mac", |r| r.mac[31] ^= 1),
    ];
    for (field, change) in changes {
        let mut r = good.clone();
        change(&mut r);
        assert!(!auth.verifies(&r), "{field} is not bound");
    }
    let k2 = MacKey::derive(&[8; 32]);
    for other in [
        Authenticator::new(&k, "store-b", "fp-a"),
        Authenticator::new(&k, "store-a", "fp-b"),
        Authenticator::new(&k2, "store-a", "fp-a"),
    ] {
        assert!(
            !other.verifies(&good),
            "store id, fingerprint and key are bound"
        );
    }
}

#[test]
fn a_manifest_opens_only_unchanged_and_under_its_store_and_key() {
    let k = key();
    let auth = Authenticator::new(&k, "store-a", "fp-a");
    let a = chain(&auth, "a", 2, 1);
    let m = manifest_of(&[&a]);
    let bytes = auth.seal_manifest(&m);
    assert_eq!(auth.open_manifest(&bytes).unwrap(), m);
    let other = Authenticator::new(&k, "store-b", "fp-a");
    assert!(other.open_manifest(&bytes).is_err());
    let text = String::from_utf8(bytes.clone()).unwrap();
    let tampered = text.replace("\"version\":2", "\"version\":1");
    assert_eq!(
        auth.open_manifest(tampered.as_bytes()),
        Err("its manifest does not verify under this key (it was altered or replaced)")
    );
    for garbage in [&b""[..], b"{}", b"null", &[0xff; 4]] {
        assert_eq!(
            auth.open_manifest(garbage),
            Err("its manifest is not readable (it was damaged or replaced)")
        );
    }
}

#[test]
fn the_keys_a_store_was_sealed_with_before_cannot_be_removed_or_changed() {
    let k = key();
    let auth = Authenticator::new(&k, "store-a", "fp-new");
    let a = chain(&auth, "a", 1, 1);
    let mut m = manifest_of(&[&a]);
    m.sealed_before = vec!["fp-first".into(), "fp-old".into()];
    let bytes = auth.seal_manifest(&m);
    assert_eq!(auth.open_manifest(&bytes).unwrap(), m);
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.contains(r#""sealed_before":["fp-first","fp-old"]"#),
        "{text}"
    );
    // Dropped (so that a node behind could re-seal with the old key), emptied, reordered or
    // changed: the manifest no longer verifies.
    for tampered in [
        text.replace(r#","sealed_before":["fp-first","fp-old"]"#, ""),
        text.replace(r#"["fp-first","fp-old"]"#, "[]"),
        text.replace(r#"["fp-first","fp-old"]"#, r#"["fp-old","fp-first"]"#),
        text.replace(r#""fp-old""#, r#""fp-oth""#),
    ] {
        assert_ne!(tampered, text);
        assert_eq!(
            auth.open_manifest(tampered.as_bytes()),
            Err("its manifest does not verify under this key (it was altered or replaced)"),
            "{tampered}"
        );
    }
}

/// The mark of a migration under way is authenticated: dropping it below cio (to make a
/// half-copied store read as whole) or changing where it says the copy comes from breaks the
/// manifest.
#[test]
fn the_mark_of_an_unfinished_migration_cannot_be_removed_or_changed() {
    let k = key();
    let auth = Authenticator::new(&k, "store-a", "fp-a");
    let a = chain(&auth, "a", 1, 1);
    let mut m = manifest_of(&[&a]);
    let unmarked = String::from_utf8(auth.seal_manifest(&m)).unwrap();
    assert!(!unmarked.contains("migrating_from"), "{unmarked}");
    m.migrating_from = Some("/var/lib/cio/credentials.db".into());
    let bytes = auth.seal_manifest(&m);
    assert_eq!(auth.open_manifest(&bytes).unwrap(), m);
    let text = String::from_utf8(bytes).unwrap();
    let mark = r#","migrating_from":"/var/lib/cio/credentials.db""#;
    assert!(text.contains(mark), "{text}");
    for tampered in [
        text.replace(mark, ""),
        text.replace("/var/lib/cio/", "/srv/"),
    ] {
        assert_ne!(tampered, text);
        assert_eq!(
            auth.open_manifest(tampered.as_bytes()),
            Err("its manifest does not verify under this key (it was altered or replaced)"),
            "{tampered}"
        );
    }
}

/// The newest version of `name` in `checked`, or its damage.
fn newest(
    checked: &BTreeMap<String, Result<Vec<Record>, Damage>>,
    name: &str,
) -> Result<u64, Damage> {
    checked[name]
        .as_ref()
        .map(|c| c.last().unwrap().version)
        .map_err(Clone::clone)
}

#[test]
fn every_name_is_checked_against_the_manifest_and_alone() {
    let k = key();
    let auth = Authenticator::new(&k, "s", "f");
    let a = chain(&auth, "a", 3, 1);
    let b = chain(&auth, "b", 1, 4);
    let m = manifest_of(&[&a, &b]);
    let all = |a: &[Record], b: &[Record]| ok(&[a, b].concat());
    let checked = check_store(&auth, &m, all(&a, &b)).unwrap();
    assert_eq!(
        (newest(&checked, "a"), newest(&checked, "b")),
        (Ok(3), Ok(1))
    );

    // The newest version of a removed: its previous one would come back; refused.
    let checked = check_store(&auth, &m, all(&a[..2], &b)).unwrap();
    assert_eq!(
        newest(&checked, "a"),
        Err(Damage::NotNewest {
            expected: 3,
            found: 2
        })
    );
    assert_eq!(newest(&checked, "b"), Ok(1), "the other name is unaffected");
    // Every version of b deleted.
    let checked = check_store(&auth, &m, all(&a, &[])).unwrap();
    assert_eq!(newest(&checked, "b"), Err(Damage::Deleted));
    // A field changed: a live credential made to look removed.
    let mut altered = a.clone();
    altered[2].action = Action::Remove;
    altered[2].sealed = None;
    let checked = check_store(&auth, &m, all(&altered, &b)).unwrap();
    assert_eq!(newest(&checked, "a"), Err(Damage::Altered(3)));
    // A record the backend could not decode.
    let mut reads = all(&a, &b);
    reads[1] = Err(Undecodable {
        name: "a".into(),
        detail: "its action is unknown".into(),
    });
    let checked = check_store(&auth, &m, reads).unwrap();
    assert_eq!(
        newest(&checked, "a"),
        Err(Damage::Unreadable("its action is unknown".into()))
    );
    assert_eq!(newest(&checked, "b"), Ok(1));
    // A name purged, then its records put back.
    let mut purged = m.clone();
    purged.heads.remove("b");
    purged.seq += 1;
    let checked = check_store(&auth, &purged, all(&a, &b)).unwrap();
    assert_eq!(newest(&checked, "b"), Err(Damage::PutBack(1)));
    assert_eq!(newest(&checked, "a"), Ok(3));
}

#[test]
fn a_manifest_older_than_the_records_refuses_the_store() {
    let k = key();
    let auth = Authenticator::new(&k, "s", "f");
    let a = chain(&auth, "a", 3, 1);
    let b = chain(&auth, "b", 2, 4);
    // The manifest as it was before b's second write, put back; a's newest removed to
    // match it: a alone would look consistent, b's newer record gives it away.
    let old = manifest_of(&[&a[..2], &b[..1]]);
    let err = check_store(&auth, &old, ok(&[&a[..2], &b[..]].concat())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a record of b was written after its manifest (write 5 of 4): the manifest was put back from an earlier copy"
    );
    // A whole earlier copy (records and manifest together) is consistent.
    let copy = check_store(&auth, &old, ok(&[&a[..2], &b[..1]].concat())).unwrap();
    assert!(copy.values().all(Result::is_ok));
    // A record past the manifest that does not verify is damage, not a rollback.
    let mut forged = b[1].clone();
    forged.seq = 99;
    let checked = check_store(
        &auth,
        &manifest_of(&[&a, &b]),
        ok(&[&a[..], &b[..1], &[forged]].concat()),
    )
    .unwrap();
    assert_eq!(newest(&checked, "b"), Err(Damage::Altered(2)));
}

#[test]
fn a_history_must_be_the_whole_chain() {
    let k = key();
    let auth = Authenticator::new(&k, "s", "f");
    let a = chain(&auth, "a", 4, 1);
    let m = manifest_of(&[&a]);
    assert_eq!(check_history(&auth, &m, "a", ok(&a)).unwrap(), a);
    let cases: Vec<(&str, Vec<Record>, Damage)> = vec![
        (
            "a middle version deleted",
            vec![a[0].clone(), a[2].clone(), a[3].clone()],
            Damage::Broken(2),
        ),
        (
            "two versions swapped",
            vec![a[0].clone(), a[2].clone(), a[1].clone(), a[3].clone()],
            Damage::Broken(2),
        ),
        (
            "a version duplicated",
            vec![
                a[0].clone(),
                a[1].clone(),
                a[1].clone(),
                a[2].clone(),
                a[3].clone(),
            ],
            Damage::Broken(3),
        ),
        (
            "the newest removed",
            a[..3].to_vec(),
            Damage::NotNewest {
                expected: 4,
                found: 3,
            },
        ),
        ("all removed", Vec::new(), Damage::Deleted),
    ];
    for (what, records, damage) in cases {
        assert_eq!(
            check_history(&auth, &m, "a", ok(&records)),
            Err(damage),
            "{what}"
        );
    }
    // A version replaced by one that verifies, from another chain of the same name (written
    // before a purge): the link to it breaks.
    let before_purge = chain(&auth, "a", 4, 100);
    let replaced = vec![
        a[0].clone(),
        before_purge[1].clone(),
        a[2].clone(),
        a[3].clone(),
    ];
    assert_eq!(
        check_history(&auth, &m, "a", ok(&replaced)),
        Err(Damage::Broken(2))
    );
}
