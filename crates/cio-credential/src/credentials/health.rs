//! The recorded health of each set: the result of its last `validate --record`, kept in the
//! store as a note (sealed under the store key, so it is authenticated like a value), so that
//! every node sees when each set was last checked and how that went.
//!
//! A record holds the time, the outcome, and the first failing (or warning) step and its
//! code: our own words, never a value or a detail text.

use serde::{Deserialize, Serialize};

use super::CredentialStore;
use super::notes::binding;
use crate::catalog::{Provider, Role, SetId};
use crate::error::Result;
use crate::secret::SecretValue;
use crate::sets::{Listing, SetVersions};
use crate::validate::{SetReport, Status, Step};

/// A set's recorded health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthRecord {
    pub set: SetId,
    #[serde(flatten)]
    pub result: CheckResult,
}

/// The result of a set's last recorded check, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// When it was checked, in milliseconds since the Unix epoch.
    pub checked_at_ms: i64,
    /// `Ok`, `Warn` or `Fail`.
    pub status: Status,
    /// The first failing step (else the first warning's); `None` when all was ok.
    pub step: Option<Step>,
    /// That step's code (`wrong_password`, `plain_http`, ...).
    pub code: Option<String>,
    /// How long the check took, in milliseconds.
    pub duration_ms: u64,
    /// The version of each credential of the set that was checked; `None` in a record made
    /// by a cio that did not keep them, or kept them in another shape.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "versions_if_readable"
    )]
    pub versions: Option<SetVersions>,
}

/// The recorded versions, or `None` when a cio of another format wrote them: the record is
/// still authentic (it opened under the store key), only not tied to the versions it checked.
fn versions_if_readable<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<SetVersions>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

/// What `validate --record` left in the store: the readable records, and the sets whose
/// record cannot be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checks {
    /// One per set recorded, in the store's order.
    pub records: Vec<HealthRecord>,
    /// Sets whose record does not open under the store key (altered below cio), is not the
    /// one last recorded (an earlier one put back, or deleted), or is not a record this cio
    /// reads: shown as such, and replaced by the set's next `--record`.
    pub unreadable: Vec<SetId>,
}

impl Checks {
    /// The record of `set`, if any.
    pub fn of(&self, set: SetId) -> Option<&HealthRecord> {
        self.records.iter().find(|c| c.set == set)
    }
}

impl HealthRecord {
    /// Whether the check was made on the values `listing` holds: `Some(false)` when a
    /// credential of the set changed since the check (or during it), `None` when the record
    /// does not say which versions it checked.
    pub fn is_current(&self, listing: &Listing) -> Option<bool> {
        self.result
            .versions
            .as_ref()
            .map(|checked| *checked == listing.versions(self.set))
    }
}

impl CheckResult {
    /// Whether this is the record of a pass of the rules alone (`validate --offline`).
    pub fn is_offline(&self) -> bool {
        self.code.as_deref() == Some("offline")
    }

    /// The result of `report`, checked at `checked_at_ms`.
    pub fn of(report: &SetReport, checked_at_ms: i64) -> CheckResult {
        let status = report.status();
        // A pass of the rules alone (`--offline`) is not a checked, working set: it is
        // recorded as a warning whose code says so.
        if status != Status::Fail
            && let Some(offline) = report.checks.iter().find(|c| c.code == "offline")
        {
            return CheckResult {
                checked_at_ms,
                status: Status::Warn,
                step: Some(offline.step),
                code: Some("offline".into()),
                duration_ms: report.duration_ms,
                versions: None,
            };
        }
        let first = report
            .checks
            .iter()
            .find(|c| c.status == status && status != Status::Ok);
        CheckResult {
            checked_at_ms,
            status,
            step: first.map(|c| c.step),
            code: first.map(|c| c.code.to_string()),
            duration_ms: report.duration_ms,
            versions: None,
        }
    }
}

/// The note key of a set's health record: `check/{provider}/{role}`.
fn note_key(set: SetId) -> String {
    format!("check/{}/{}", set.provider.as_str(), set.role.as_str())
}

fn set_of(key: &str) -> Option<SetId> {
    let (provider, role) = key.strip_prefix("check/")?.split_once('/')?;
    Some(SetId {
        provider: Provider::ALL.into_iter().find(|p| p.as_str() == provider)?,
        role: Role::ALL.into_iter().find(|r| r.as_str() == role)?,
    })
}

impl CredentialStore {
    /// Records each report's result as its set's health, replacing the one before, with the
    /// versions it checked as `checked` (the listing of the read the values came from) has
    /// them. An `--offline` result does not replace a live one of the same values (it proves
    /// less, and would hide a live failure): those sets' live records are kept and returned.
    pub fn record_checks(
        &self,
        reports: &[SetReport],
        checked: &Listing,
        checked_at_ms: i64,
    ) -> Result<Vec<HealthRecord>> {
        if self.store.identity(false)?.is_none() {
            return Ok(Vec::new());
        }
        // A record that cannot be read is replaced, not kept: recording again repairs it.
        let earlier = self.checks()?.records;
        let mut kept = Vec::new();
        let mut texts = Vec::new();
        for report in reports {
            let record = CheckResult {
                versions: Some(checked.versions(report.set)),
                ..CheckResult::of(report, checked_at_ms)
            };
            let live_of_same_values = earlier.iter().find(|h| {
                h.set == report.set && !h.result.is_offline() && h.is_current(checked) == Some(true)
            });
            if let Some(live) = live_of_same_values.filter(|_| record.is_offline()) {
                kept.push(live.clone());
                continue;
            }
            let text = serde_json::to_string(&record)
                .expect("a health record is numbers and words: it always serializes");
            texts.push((note_key(report.set), text));
        }
        if !texts.is_empty() {
            self.write_notes(|key, store_id| {
                texts
                    .iter()
                    .map(|(note, text)| {
                        let sealed =
                            key.seal(&binding(store_id, note), &SecretValue::new(text.clone()));
                        (note.clone(), sealed)
                    })
                    .collect()
            })?;
        }
        Ok(kept)
    }

    /// The recorded health of every set that has been checked with `--record`. A record that
    /// does not open, does not read as one, or is not the one last recorded (put back from
    /// an earlier moment, or deleted: see [`super::notes`]) does not keep the others from
    /// being read: its set is in [`Checks::unreadable`]. A recorded break of the change log
    /// is noted for [`CredentialStore::log_damage`].
    pub fn checks(&self) -> Result<Checks> {
        let Some((reading, key)) = self.read_notes()? else {
            return Ok(Checks::default());
        };
        let Some(key) = key else {
            return Ok(Checks::default());
        };
        // A break of the change log found earlier is said by readers of the notes too.
        self.note_damage(super::log::damage_in(key, &reading));
        let mut checks = Checks::default();
        for (note, sealed) in &reading.notes {
            let Some(set) = set_of(note) else {
                continue;
            };
            let result = Some(sealed)
                .filter(|sealed| reading.vouched(note, Some(sealed)))
                .and_then(|sealed| key.open(&binding(&reading.store_id, note), sealed).ok())
                .and_then(|text| serde_json::from_str::<CheckResult>(text.expose()).ok());
            match result {
                Some(result) => checks.records.push(HealthRecord { set, result }),
                None => checks.unreadable.push(set),
            }
        }
        // A record deleted while the manifest pins it is as unreadable as one put back.
        checks
            .unreadable
            .extend(reading.missing().filter_map(set_of));
        checks.unreadable.sort_by_key(|set| note_key(*set));
        Ok(checks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_kept_in_another_shape_leave_the_record_readable() {
        let text = r#"{"checked_at_ms":1,"status":"fail","step":"password","code":"wrong_password","duration_ms":4,"versions":{"cio_aws_access_key":3}}"#;
        let record: CheckResult = serde_json::from_str(text).unwrap();
        assert_eq!(record.versions, None);
        assert_eq!(record.status, Status::Fail);
        assert_eq!(record.code.as_deref(), Some("wrong_password"));
        let without: CheckResult = serde_json::from_str(
            r#"{"checked_at_ms":1,"status":"ok","step":null,"code":null,"duration_ms":4}"#,
        )
        .unwrap();
        assert_eq!(without.versions, None);
        // The shape this cio writes reads, and round-trips.
        let current: CheckResult = serde_json::from_str(
            r#"{"checked_at_ms":1,"status":"ok","step":null,"code":null,"duration_ms":4,"versions":{"cio_aws_access_key":[3,1700000000000]}}"#,
        )
        .unwrap();
        assert!(current.versions.is_some());
        let again: CheckResult =
            serde_json::from_str(&serde_json::to_string(&current).unwrap()).unwrap();
        assert_eq!(again, current);
    }
}
