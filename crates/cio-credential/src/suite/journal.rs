//! The change log and the recorded health, on every backend.

use super::{Backend, Case};
use crate::audit::{Broken, LogReading, Problem};
use crate::catalog::{CredentialName, Provider, Role, SetId};
use crate::credentials::{Acknowledged, CredentialStore};
use crate::secret::SecretValue;
use crate::sets::SetValues;
use crate::store::interleaved::{Call, Interleaved};
use crate::store::{LogAppend, LogRecord};
use crate::validate::{Check, Options, SetReport, Status, Step, validate_set};

pub(super) const CASES: &[Case] = &[
    ("log: every change, no read", every_change_is_logged),
    ("log: migrate", a_migration_is_logged_in_its_target),
    ("log: damage is found and said", damage_is_found_and_said),
    (
        "log: entries deleted from its end keep their numbers",
        a_deleted_end_keeps_its_numbers,
    ),
    (
        "log: an entry put in from another copy of the store is told",
        an_entry_from_another_copy_is_told,
    ),
    (
        "log: an entry past the manifest that did not open is acknowledged once gone",
        unanchored_entries_gone_are_acknowledged,
    ),
    (
        "log: an acknowledged break is said no more, a change after it is",
        an_acknowledged_break_is_said_no_more,
    ),
    (
        "log: a re-seal between a write's reading and its entry is no damage",
        a_reseal_during_a_write_is_no_damage,
    ),
    (
        "log: a change during a check of the log is no damage",
        a_change_during_a_check_is_no_damage,
    ),
    ("health: recorded per set", health_is_recorded_per_set),
    (
        "health: an unreadable record is that set's alone",
        an_unreadable_check_is_its_sets_alone,
    ),
    (
        "notes: an earlier note put back, or one deleted, reads as altered",
        an_earlier_note_put_back_reads_as_altered,
    ),
];

fn name(s: &str) -> CredentialName {
    s.parse().unwrap()
}

fn v(s: &str) -> SecretValue {
    SecretValue::new(s.to_string())
}

fn seqs(reading: &LogReading) -> Vec<u64> {
    reading.entries.iter().map(|e| e.seq).collect()
}

fn credentials(b: &dyn Backend, place: &str) -> CredentialStore {
    CredentialStore::new(b.open(place), b.dir().join("credential.key"))
}

fn every_change_is_logged(b: &dyn Backend) {
    let c = credentials(b, "s");
    let n = name("cio_aws_access_key");
    c.put(n, &v("AKIAYHD623GGZX7VDFMJ")).unwrap();
    c.put(n, &v("AKIAYHD623GGZX7VDFMK")).unwrap();
    // Refused and read-only commands write nothing.
    assert!(c.put(n, &v("not a key")).is_err());
    c.get(n).unwrap();
    c.list().unwrap();
    c.history(n).unwrap();
    c.remove(n).unwrap();
    c.restore(n, Some(1)).unwrap();
    c.purge(n, false).unwrap();
    let reading = c.change_log().unwrap();
    assert_eq!(reading.broken, None);
    let summary: Vec<String> = reading
        .entries
        .iter()
        .map(|e| {
            let name = e.name.as_deref().unwrap_or("-");
            let version = e.version.map_or("-".into(), |v| v.to_string());
            format!("{} {} {name} {version} {}", e.seq, e.command, e.outcome)
        })
        .collect();
    assert_eq!(
        summary,
        [
            "1 create cio_aws_access_key 1 ok",
            "2 update cio_aws_access_key 2 ok",
            "3 remove cio_aws_access_key 3 ok",
            "4 restore cio_aws_access_key 4 ok",
            "5 purge cio_aws_access_key 4 ok",
        ]
    );
    let first = &reading.entries[0];
    assert_eq!(first.actor.uid, rustix::process::geteuid().as_raw());
    assert!(!first.actor.host.is_empty());
    assert_eq!(
        reading.entries[3].detail.as_deref(),
        Some("value of version 1")
    );
    assert_eq!(c.log_damage(), None);
}

fn a_migration_is_logged_in_its_target(b: &dyn Backend) {
    let source = credentials(b, "source");
    source
        .put(name("cio_minio_access_key"), &v("minio"))
        .unwrap();
    source
        .put(name("cio_minio_access_key"), &v("minio2"))
        .unwrap();
    let target = b.open("target");
    let report = source.migrate_to(target.as_ref()).unwrap();
    assert_eq!(report.copied(), 2);
    let target = credentials(b, "target");
    let reading = target.change_log().unwrap();
    assert_eq!(reading.broken, None);
    assert_eq!(reading.entries.len(), 1);
    let entry = &reading.entries[0];
    assert_eq!(
        (entry.command.as_str(), entry.name.as_deref()),
        ("migrate", None)
    );
    let detail = entry.detail.as_deref().unwrap();
    assert!(detail.starts_with("2 versions copied from "), "{detail}");
    // A second migration with nothing to copy changes nothing, and logs nothing.
    source.migrate_to(b.open("target").as_ref()).unwrap();
    assert_eq!(target.change_log().unwrap().entries.len(), 1);
    // A longer history goes in several writes, each logged in its own transaction (one
    // stopped half-way leaves nothing copied unlogged).
    let values: Vec<SecretValue> = (0..50).map(|i| v(&format!("minio-secret-{i}"))).collect();
    let changes: Vec<crate::credentials::Change<'_>> = values
        .iter()
        .map(|value| crate::credentials::Change {
            name: name("cio_minio_secret_key"),
            value: Some(value),
            written_at_ms: None,
        })
        .collect();
    source.write_all(&changes).unwrap();
    assert_eq!(
        source
            .migrate_to(b.open("target").as_ref())
            .unwrap()
            .copied(),
        50
    );
    let details: Vec<String> = target.change_log().unwrap().entries[1..]
        .iter()
        .map(|e| e.detail.clone().unwrap_or_default())
        .collect();
    assert_eq!(details.len(), 2, "{details:?}");
    assert!(
        details[0].starts_with("48 versions copied from "),
        "{details:?}"
    );
    assert!(
        details[1].starts_with("2 versions copied from "),
        "{details:?}"
    );
}

fn damage_is_found_and_said(b: &dyn Backend) {
    let c = credentials(b, "s");
    let n = name("cio_minio_secret_key");
    c.put(n, &v("minio-secret-1")).unwrap();
    c.put(n, &v("minio-secret-2")).unwrap();
    // An entry the store key did not seal, in the place of entry 3.
    let store = b.open("s");
    store
        .append_log(&LogAppend::next(LogRecord {
            seq: 3,
            sealed: vec![0; 64],
        }))
        .unwrap();
    // The next change still works, and says the log's newest entry is damaged: one past the
    // manifest that does not open, which may stand where a rollback's evidence stood.
    let next = credentials(b, "s");
    next.put(n, &v("minio-secret-3")).unwrap();
    let damage = next.log_damage().unwrap();
    assert_eq!((damage.seq, damage.problem), (3, Problem::Unanchored));
    // Checking the log names it first (the store's note keeps it said after the change
    // moved the manifest past it), then the entry as the chain finds it...
    let reading = credentials(b, "s").change_log().unwrap();
    assert_eq!(reading.broken, Some(damage.clone()));
    assert_eq!(reading.breaks[1].problem, Problem::Altered);
    assert_eq!(seqs(&reading), [1, 2, 4]);
    // ... so that every later change, on any node, says so once more.
    let later = credentials(b, "s");
    later.put(n, &v("minio-secret-4")).unwrap();
    assert_eq!(later.log_damage(), Some(damage));
}

/// The way out of junk put past the manifest (the review's finding: one row inserted and
/// deleted again left every command warning and `log --acknowledge` refusing for ever, and
/// only a whole earlier copy, losing every change since, put it right). While any entry
/// written outside cio is left, past the manifest or not, nothing is acknowledged; once
/// none is, the log reads as a whole earlier copy's would (which cio accepts), said as
/// such, and an acknowledgement naming it accepts it.
fn unanchored_entries_gone_are_acknowledged(b: &dyn Backend) {
    let c = credentials(b, "s");
    let n = name("cio_minio_secret_key");
    c.put(n, &v("minio-secret-1")).unwrap();
    c.put(n, &v("minio-secret-2")).unwrap();
    let raw = b.raw("s");
    raw.set_log_entry(98, &[0; 64]);
    raw.set_log_entry(99, &[1; 64]);
    let unanchored = |seq| Broken {
        seq,
        problem: Problem::Unanchored,
        through: None,
    };
    let gone = |seq| Broken {
        seq,
        problem: Problem::UnanchoredGone,
        through: None,
    };
    let refused = |c: &CredentialStore, first: Broken| match c.acknowledge_log() {
        Err(crate::Error::LogNotAcknowledgeable { broken }) => assert_eq!(broken, first),
        other => panic!("{other:?}"),
    };
    // Found (and noted) by a check of the log; refused while either entry is there.
    assert_eq!(
        credentials(b, "s").change_log().unwrap().broken,
        Some(unanchored(98))
    );
    refused(&credentials(b, "s"), unanchored(98));
    raw.delete_log_from(98);
    raw.set_log_entry(99, &[1; 64]);
    // The note's entry gone, the other left: still refused.
    refused(&credentials(b, "s"), unanchored(98));
    raw.delete_log_from(99);
    let reading = credentials(b, "s").change_log().unwrap();
    assert_eq!(reading.breaks, [gone(98)]);
    assert_eq!(
        gone(98).to_string(),
        "entry 98, found numbered after the entry of the store's newest change and not opening (written outside cio), is gone, and every entry left opens under the store key: the log can no longer tell whether the credentials were put back from an earlier copy while it stood, as it cannot for a whole earlier copy put back"
    );
    // Commands that hand out values still warn until it is acknowledged.
    assert_eq!(
        credentials(b, "s").rollback_suspected().unwrap(),
        Some(unanchored(98))
    );
    assert_eq!(
        credentials(b, "s").acknowledge_log().unwrap(),
        Acknowledged::Accepted {
            seq: 3,
            breaks: vec![gone(98)]
        }
    );
    let reading = credentials(b, "s").change_log().unwrap();
    assert_eq!((reading.broken, reading.acknowledged), (None, Some(3)));
    assert_eq!(
        reading.entries[2].detail.as_deref(),
        Some(format!("accepted the log as it was: {}", gone(98)).as_str())
    );
    let later = credentials(b, "s");
    later.put(n, &v("minio-secret-3")).unwrap();
    assert_eq!(later.log_damage(), None);
    assert_eq!(later.rollback_suspected().unwrap(), None);

    // Junk a write moved the manifest past (its entry chains to the junk): refused while the
    // junk is there, an entry before the manifest now; once deleted, the gap it leaves is
    // accepted with it.
    raw.set_log_entry(5, &[0; 64]);
    credentials(b, "s").put(n, &v("minio-secret-4")).unwrap();
    refused(&credentials(b, "s"), unanchored(5));
    let after = b.open("s").log().unwrap().pop().unwrap();
    assert_eq!(after.seq, 6);
    raw.delete_log_from(5);
    raw.set_log_entry(6, &after.sealed);
    let missing = Broken {
        seq: 5,
        problem: Problem::Missing,
        through: None,
    };
    assert_eq!(
        credentials(b, "s").change_log().unwrap().breaks,
        [gone(5), missing.clone()]
    );
    assert_eq!(
        credentials(b, "s").acknowledge_log().unwrap(),
        Acknowledged::Accepted {
            seq: 7,
            breaks: vec![gone(5), missing]
        }
    );
    assert_eq!(credentials(b, "s").change_log().unwrap().broken, None);
}

/// The log's end deleted below cio, then a change: the change says so, and its entry is
/// numbered after the deleted ones, so the log itself keeps saying they are missing (it took
/// the first deleted number, and the log then read as never having held them).
fn a_deleted_end_keeps_its_numbers(b: &dyn Backend) {
    let c = credentials(b, "s");
    let n = name("cio_minio_secret_key");
    for value in ["minio-secret-1", "minio-secret-2", "minio-secret-3"] {
        c.put(n, &v(value)).unwrap();
    }
    b.raw("s").delete_log_from(2);
    let next = credentials(b, "s");
    next.put(n, &v("minio-secret-4")).unwrap();
    let truncated = next.log_damage().unwrap();
    assert_eq!((truncated.seq, truncated.problem), (2, Problem::Truncated));
    let reading = credentials(b, "s").change_log().unwrap();
    assert_eq!(seqs(&reading), [1, 4]);
    let missing = reading.broken.unwrap();
    assert_eq!((missing.seq, missing.problem), (2, Problem::Missing));
    let later = credentials(b, "s");
    later.put(n, &v("minio-secret-5")).unwrap();
    assert_eq!(later.log_damage(), Some(missing.clone()));
    assert_eq!(seqs(&credentials(b, "s").change_log().unwrap()), [1, 4, 5]);
    // The newest entry deleted too (etcd's log head left naming it), then acknowledged: the
    // acknowledgement goes after the deleted number, and the log reads as accepted.
    b.raw("s").delete_log_from(5);
    let truncated = Broken {
        seq: 5,
        problem: Problem::Truncated,
        through: None,
    };
    assert_eq!(
        credentials(b, "s").change_log().unwrap().breaks,
        [missing.clone(), truncated.clone()]
    );
    assert_eq!(
        credentials(b, "s").acknowledge_log().unwrap(),
        Acknowledged::Accepted {
            seq: 6,
            breaks: vec![missing, truncated]
        }
    );
    let reading = credentials(b, "s").change_log().unwrap();
    assert_eq!(seqs(&reading), [1, 4, 6]);
    assert_eq!((reading.broken, reading.acknowledged), (None, Some(6)));
}

/// Two copies of one store that took different changes, and the newest entry of one put in
/// the other's log: it opens and chains (the copies share their key, id and older entries),
/// but the manifest pins the entry its own newest change wrote (the review's finding: `log
/// --verify` said such a log was whole, and `log` showed the other copy's changes).
fn an_entry_from_another_copy_is_told(b: &dyn Backend) {
    let c = credentials(b, "s");
    let n = name("cio_minio_secret_key");
    c.put(n, &v("minio-secret-1")).unwrap();
    c.put(n, &v("minio-secret-2")).unwrap();
    let raw = b.raw("s");
    let common = raw.save();
    // One copy's third change...
    credentials(b, "s").put(n, &v("minio-secret-3")).unwrap();
    let theirs = b.open("s").log().unwrap().pop().unwrap();
    assert_eq!(theirs.seq, 3);
    // ... and the other's, made on the whole earlier copy put back (as a restore does).
    raw.put_back(&common);
    credentials(b, "s")
        .put(name("cio_minio_access_key"), &v("AKMINIO0000000000001"))
        .unwrap();
    raw.set_log_entry(3, &theirs.sealed);
    let other = Broken {
        seq: 3,
        problem: Problem::OtherCopy,
        through: None,
    };
    let reading = credentials(b, "s").change_log().unwrap();
    assert_eq!(reading.broken, Some(other.clone()));
    assert_eq!(seqs(&reading), [1, 2, 3]);
    // A change finds it too, and says so; the break stays said after it.
    let next = credentials(b, "s");
    next.put(n, &v("minio-secret-4")).unwrap();
    assert_eq!(next.log_damage(), Some(other.clone()));
    assert_eq!(
        credentials(b, "s").change_log().unwrap().broken,
        Some(other)
    );
}

/// A break accepted with `log --acknowledge` (the review's finding: nothing could clear a
/// break, so every command warned and `log --verify` failed for good): later checks and
/// changes no longer say it, while any change to the entries before the acknowledgement is
/// a break again, and so is a break after it.
fn an_acknowledged_break_is_said_no_more(b: &dyn Backend) {
    let c = credentials(b, "s");
    let n = name("cio_minio_secret_key");
    for value in ["minio-secret-1", "minio-secret-2", "minio-secret-3"] {
        c.put(n, &v(value)).unwrap();
    }
    assert_eq!(
        c.acknowledge_log().unwrap(),
        Acknowledged::Whole { since: None }
    );
    let raw = b.raw("s");
    // Deletes entry `seq` alone, below cio.
    let delete_entry = |seq: u64| {
        let later: Vec<LogRecord> = b
            .open("s")
            .log()
            .unwrap()
            .into_iter()
            .filter(|e| e.seq > seq)
            .collect();
        raw.delete_log_from(seq);
        for entry in later {
            raw.set_log_entry(entry.seq, &entry.sealed);
        }
    };
    let second = b.open("s").log().unwrap()[1].clone();
    delete_entry(2);
    let missing = |seq| Broken {
        seq,
        problem: Problem::Missing,
        through: None,
    };
    assert_eq!(
        credentials(b, "s").change_log().unwrap().broken,
        Some(missing(2))
    );
    assert_eq!(
        credentials(b, "s").acknowledge_log().unwrap(),
        Acknowledged::Accepted {
            seq: 4,
            breaks: vec![missing(2)]
        }
    );
    let reading = credentials(b, "s").change_log().unwrap();
    assert_eq!(seqs(&reading), [1, 3, 4]);
    assert_eq!((reading.broken, reading.acknowledged), (None, Some(4)));
    let next = credentials(b, "s");
    next.put(n, &v("minio-secret-4")).unwrap();
    assert_eq!(next.log_damage(), None);
    assert_eq!(credentials(b, "s").change_log().unwrap().broken, None);
    // The deleted entry put back: the log before the acknowledgement changed since.
    raw.set_log_entry(2, &second.sealed);
    let changed = Broken {
        seq: 4,
        problem: Problem::ChangedSinceAcknowledged,
        through: None,
    };
    assert_eq!(
        credentials(b, "s").change_log().unwrap().broken,
        Some(changed.clone())
    );
    assert_eq!(
        credentials(b, "s").acknowledge_log().unwrap(),
        Acknowledged::Accepted {
            seq: 6,
            breaks: vec![changed]
        }
    );
    assert_eq!(
        credentials(b, "s").acknowledge_log().unwrap(),
        Acknowledged::Whole { since: Some(6) }
    );
    // A break after the newest acknowledgement is said.
    c.put(n, &v("minio-secret-5")).unwrap();
    c.put(n, &v("minio-secret-6")).unwrap();
    delete_entry(7);
    let reading = credentials(b, "s").change_log().unwrap();
    assert_eq!(
        (reading.broken, reading.acknowledged),
        (Some(missing(7)), Some(6))
    );
    // Two acknowledgements at once (the review's finding: each wrote its entry, accepting
    // a log the other had already changed): the one that loses checks the log again, and
    // finds nothing left to acknowledge.
    let other = credentials(b, "s");
    let first = racing(b, "s", Call::Log, 2, move || {
        assert!(matches!(
            other.acknowledge_log().unwrap(),
            Acknowledged::Accepted { seq: 9, .. }
        ));
    });
    assert_eq!(
        first.acknowledge_log().unwrap(),
        Acknowledged::Whole { since: Some(9) }
    );
}

/// The store at `place`, where `between` runs just before this store's `at`-th `call`.
fn racing(
    b: &dyn Backend,
    place: &str,
    call: Call,
    at: usize,
    between: impl FnOnce() + Send + 'static,
) -> CredentialStore {
    CredentialStore::new(
        Box::new(Interleaved::new(b.open(place), at, between).before(call)),
        b.dir().join("credential.key"),
    )
}

/// A store whose key file holds a new key, made current and not yet sealing the store.
fn switched(b: &dyn Backend, place: &str) {
    let c = credentials(b, place);
    c.put(
        name("cio_minio_backup_repo"),
        &v("s3:http://127.0.0.1:9/bucket"),
    )
    .unwrap();
    c.rekey_add().unwrap();
    c.rekey_switch().unwrap();
}

/// The review's report: on etcd, a re-seal while others wrote left the log "altered" at the
/// re-seal's own entry for good. A write read the store under the old key, then the log's
/// newest entry (the re-seal's, under the new key), found it did not open and recorded the
/// log as damaged, though only the write's reading was out of date.
fn a_reseal_during_a_write_is_no_damage(b: &dyn Backend) {
    switched(b, "s");
    let resealing = credentials(b, "s");
    let writer = racing(b, "s", Call::LogTail, 1, move || {
        resealing.rekey_reseal().unwrap();
    });
    writer
        .put(name("cio_minio_secret_key"), &v("minio-secret-1"))
        .unwrap();
    assert_eq!(writer.log_damage(), None);
    let reading = credentials(b, "s").change_log().unwrap();
    assert_eq!(reading.broken, None);
    let commands: Vec<&str> = reading.entries.iter().map(|e| e.command.as_str()).collect();
    assert_eq!(commands, ["create", "rekey", "create"]);
    let later = credentials(b, "s");
    later
        .put(name("cio_minio_secret_key"), &v("minio-secret-2"))
        .unwrap();
    assert_eq!(later.log_damage(), None);
}

/// `log --verify` reads the store's identity, its log and its records one after another: a
/// change in between (a write past the log it read, a re-seal under another key) is no
/// damage to record.
fn a_change_during_a_check_is_no_damage(b: &dyn Backend) {
    let n = name("cio_minio_secret_key");
    switched(b, "s");
    // A write between the log's reading and the records': the manifest names an entry
    // past the log as read.
    let writer = credentials(b, "s");
    let checking = racing(b, "s", Call::Read, 1, move || {
        writer.put(n, &v("minio-secret-1")).unwrap();
    });
    assert_eq!(checking.change_log().unwrap().broken, None);
    // A re-seal between the identity's reading and the log's: the log is under another key.
    let resealing = credentials(b, "s");
    let checking = racing(b, "s", Call::Log, 1, move || {
        resealing.rekey_reseal().unwrap();
    });
    assert_eq!(checking.change_log().unwrap().broken, None);
    let reading = credentials(b, "s").change_log().unwrap();
    assert_eq!(reading.broken, None);
    assert_eq!(reading.entries.len(), 3);
}

fn health_is_recorded_per_set(b: &dyn Backend) {
    let c = credentials(b, "s");
    let aws = SetId {
        provider: Provider::Aws,
        role: Role::Primary,
    };
    let minio_alt = SetId {
        provider: Provider::Minio,
        role: Role::Alternate,
    };
    c.put(name("cio_aws_access_key"), &v("AKIAYHD623GGZX7VDFMJ"))
        .unwrap();
    assert!(c.checks().unwrap().records.is_empty(), "never checked");
    let offline = Options {
        offline: true,
        ..Options::default()
    };
    let incomplete = validate_set(&SetValues::empty(aws), &offline);
    let whole = complete(minio_alt);
    let passed = validate_set(&whole, &offline);
    let listing = c.listing().unwrap();
    c.record_checks(&[incomplete, passed.clone()], &listing, 1_800_000_000_000)
        .unwrap();
    let checks = credentials(b, "s").checks().unwrap().records;
    assert_eq!(checks.len(), 2);
    let aws_check = checks.iter().find(|h| h.set == aws).unwrap();
    assert_eq!(aws_check.result.status, Status::Fail);
    assert_eq!(aws_check.result.step, Some(Step::Completeness));
    assert_eq!(aws_check.result.code.as_deref(), Some("incomplete"));
    assert_eq!(aws_check.result.checked_at_ms, 1_800_000_000_000);
    // Its rules passed offline: recorded as a warning that says so, not as a checked set.
    let minio_check = checks.iter().find(|h| h.set == minio_alt).unwrap();
    assert_eq!(
        (
            minio_check.result.status,
            minio_check.result.step,
            minio_check.result.code.as_deref()
        ),
        (Status::Warn, Some(Step::Endpoint), Some("offline"))
    );
    // A check is of the versions it read: current until a credential of its set changes.
    assert_eq!(aws_check.is_current(&c.listing().unwrap()), Some(true));
    c.put(name("cio_aws_access_key"), &v("AKIAYHD623GGZX7VDFMK"))
        .unwrap();
    let now = c.listing().unwrap();
    let checks = c.checks().unwrap().records;
    let aws_check = checks.iter().find(|h| h.set == aws).unwrap();
    assert_eq!(aws_check.is_current(&now), Some(false), "changed since");
    let minio_check = checks.iter().find(|h| h.set == minio_alt).unwrap();
    assert_eq!(
        minio_check.is_current(&now),
        Some(true),
        "another set's change"
    );
    // A check recorded against an older read (a value changed while validate ran) is not
    // current either.
    c.record_checks(
        std::slice::from_ref(&aws_report(aws)),
        &listing,
        1_800_000_030_000,
    )
    .unwrap();
    let checks = c.checks().unwrap().records;
    let aws_check = checks.iter().find(|h| h.set == aws).unwrap();
    assert_eq!(aws_check.is_current(&c.listing().unwrap()), Some(false));
    // A later check replaces the record; checks are not changes: nothing is logged.
    c.record_checks(&[passed], &c.listing().unwrap(), 1_800_000_060_000)
        .unwrap();
    let checks = c.checks().unwrap().records;
    let minio_check = checks.iter().find(|h| h.set == minio_alt).unwrap();
    assert_eq!(minio_check.result.checked_at_ms, 1_800_000_060_000);
    assert_eq!(c.change_log().unwrap().entries.len(), 2);
}

/// A complete set of plausible values, for a validation offline.
fn complete(set: SetId) -> SetValues {
    let mut whole = SetValues::empty(set);
    whole.backup_repo = Some(v("s3:https://minio.example:9000/bucket"));
    whole.access_key = Some(v("minio"));
    whole.secret_key = Some(v("minio-secret"));
    whole.backup_password = Some(v("correct horse battery staple"));
    whole
}

/// A report on `set` that passed its one step.
fn aws_report(set: SetId) -> SetReport {
    SetReport {
        set,
        checks: vec![Check::new(Step::Completeness, Status::Ok, "ok", "")],
        duration_ms: 1,
    }
}

/// A recorded check that does not open (altered below cio) or does not read as one is its
/// set's alone: the other sets' records still read, an offline check of another set still
/// leaves that set's live record in place, and the set's next `--record` replaces it.
fn an_unreadable_check_is_its_sets_alone(b: &dyn Backend) {
    let aws = SetId {
        provider: Provider::Aws,
        role: Role::Primary,
    };
    let minio = SetId {
        provider: Provider::Minio,
        role: Role::Primary,
    };
    let c = credentials(b, "s");
    c.put(name("cio_aws_access_key"), &v("AKIAYHD623GGZX7VDFMJ"))
        .unwrap();
    c.put(name("cio_minio_access_key"), &v("minio")).unwrap();
    let listing = c.listing().unwrap();
    // A live failure of minio, and a check of aws.
    let mut failed = aws_report(minio);
    failed.checks = vec![Check::new(
        Step::Password,
        Status::Fail,
        "wrong_password",
        "",
    )];
    c.record_checks(&[failed, aws_report(aws)], &listing, 1_800_000_000_000)
        .unwrap();
    for garbage in [&b"not sealed at all"[..], &[0u8; 80][..]] {
        b.open("s").put_note("check/aws/primary", garbage).unwrap();
        let checks = credentials(b, "s").checks().unwrap();
        assert_eq!(checks.unreadable, [aws]);
        assert_eq!(checks.records.len(), 1);
        assert_eq!(
            checks.of(minio).unwrap().result.code.as_deref(),
            Some("wrong_password")
        );
        // An offline pass of minio still leaves its live failure in place.
        let offline = Options {
            offline: true,
            ..Options::default()
        };
        let whole = complete(minio);
        let kept = c
            .record_checks(
                &[validate_set(&whole, &offline)],
                &listing,
                1_800_000_060_000,
            )
            .unwrap();
        assert_eq!(kept.len(), 1);
        let checks = c.checks().unwrap();
        assert_eq!(
            checks.of(minio).unwrap().result.code.as_deref(),
            Some("wrong_password")
        );
    }
    // The set's next record replaces the unreadable one.
    c.record_checks(&[aws_report(aws)], &listing, 1_800_000_120_000)
        .unwrap();
    let checks = c.checks().unwrap();
    assert!(checks.unreadable.is_empty());
    assert_eq!(
        checks.of(aws).unwrap().result.checked_at_ms,
        1_800_000_120_000
    );
}

/// The reviewer's case: `validate --record` wrote "warn plain_http", then "FAIL timeout"; the
/// earlier note, genuine but old, put back in place of the newer one (SQLite: the `notes`
/// row from an earlier copy; etcd: the value of an earlier revision) was read as the set's
/// health. It is the set's unreadable record now, as is a record deleted, while the newest
/// record reads, the set's next record repairs it, and a whole earlier copy of the store
/// reads as itself. The note of a broken change log is a note like any other.
fn an_earlier_note_put_back_reads_as_altered(b: &dyn Backend) {
    let minio = SetId {
        provider: Provider::Minio,
        role: Role::Primary,
    };
    let aws = SetId {
        provider: Provider::Aws,
        role: Role::Primary,
    };
    let c = credentials(b, "s");
    c.put(name("cio_minio_access_key"), &v("minio")).unwrap();
    c.put(name("cio_aws_access_key"), &v("AKIAYHD623GGZX7VDFMJ"))
        .unwrap();
    let listing = c.listing().unwrap();
    let report = |set, status, code| SetReport {
        set,
        checks: vec![Check::new(Step::Endpoint, status, code, "")],
        duration_ms: 1,
    };
    c.record_checks(
        &[
            report(minio, Status::Warn, "plain_http"),
            report(aws, Status::Ok, "ok"),
        ],
        &listing,
        1_800_000_000_000,
    )
    .unwrap();
    let raw = b.raw("s");
    let earlier = raw.note("check/minio/primary").unwrap();
    let backup = raw.save();
    // No credential is written between the two checks.
    c.record_checks(
        &[report(minio, Status::Fail, "timeout")],
        &listing,
        1_800_000_060_000,
    )
    .unwrap();
    let code = |checks: &crate::credentials::Checks, set| {
        checks.of(set).and_then(|h| h.result.code.clone())
    };
    let checks = credentials(b, "s").checks().unwrap();
    assert_eq!(code(&checks, minio).as_deref(), Some("timeout"));
    assert!(checks.unreadable.is_empty());

    raw.set_note("check/minio/primary", Some(&earlier));
    let checks = credentials(b, "s").checks().unwrap();
    assert_eq!(checks.unreadable, [minio], "an earlier record put back");
    assert_eq!(code(&checks, minio), None);
    let status = |checks: &crate::credentials::Checks, set| checks.of(set).map(|h| h.result.status);
    assert_eq!(status(&checks, aws), Some(Status::Ok), "the other set's");
    raw.set_note("check/minio/primary", None);
    let checks = credentials(b, "s").checks().unwrap();
    assert_eq!(checks.unreadable, [minio], "a record deleted");
    assert_eq!(status(&checks, aws), Some(Status::Ok));
    // The set's next record repairs it.
    c.record_checks(
        &[report(minio, Status::Fail, "timeout")],
        &listing,
        1_800_000_120_000,
    )
    .unwrap();
    let checks = credentials(b, "s").checks().unwrap();
    assert_eq!(code(&checks, minio).as_deref(), Some("timeout"));
    assert!(checks.unreadable.is_empty());
    // A whole earlier copy (records, manifest and notes together) reads as itself.
    raw.put_back(&backup);
    let checks = credentials(b, "s").checks().unwrap();
    assert_eq!(code(&checks, minio).as_deref(), Some("plain_http"));
    assert!(checks.unreadable.is_empty());

    // The note of a broken change log: recorded by the write that found the break...
    let tail = b.open("s").log_tail().unwrap().map_or(0, |t| t.seq);
    b.open("s")
        .append_log(&LogAppend::next(LogRecord {
            seq: tail + 1,
            sealed: vec![0; 64],
        }))
        .unwrap();
    let n = name("cio_minio_secret_key");
    credentials(b, "s").put(n, &v("minio-secret-1")).unwrap();
    let found = credentials(b, "s");
    found.checks().unwrap();
    let damage = found.log_damage().unwrap();
    assert_eq!(damage.seq, tail + 1);
    // ... a note of no break put back in its place (deleted: as it was before) is altered.
    raw.set_note("log/damage", None);
    let later = credentials(b, "s");
    assert!(later.checks().unwrap().unreadable.is_empty());
    let altered = later.log_damage().unwrap();
    assert_eq!((altered.seq, altered.problem), (0, Problem::Altered));
    assert_eq!(
        altered.to_string(),
        "the note of an earlier break in it was altered, deleted or put back from an earlier copy (it is not the note cio last wrote under the store key)"
    );
}
