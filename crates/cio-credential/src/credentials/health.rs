//! The recorded health of each set: the result of its last `validate --record`, kept in the
//! store as a note (sealed under the store key, so it is authenticated like a value), so that
//! every node sees when each set was last checked and how that went.
//!
//! A record holds the time, the outcome, and the first failing (or warning) step and its
//! code: our own words, never a value or a detail text.

use serde::{Deserialize, Serialize};

use super::CredentialStore;
use crate::catalog::{Provider, Role, SetId};
use crate::crypto::Binding;
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
    /// by a cio that did not keep them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<SetVersions>,
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

impl CheckResult {
    /// Whether this is the record of a pass of the rules alone (`validate --offline`).
    pub fn is_offline(&self) -> bool {
        self.code.as_deref() == Some("offline")
    }
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
        let Some(identity) = self.store.identity(false)? else {
            return Ok(Vec::new());
        };
        let key = self.key(&identity, false)?;
        // A record that does not open is replaced, not kept: recording again repairs it.
        let earlier = self.checks().unwrap_or_default();
        let mut kept = Vec::new();
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
            let note = note_key(report.set);
            let binding = Binding {
                store_id: &identity.store_id,
                name: &note,
                version: 0,
            };
            self.store
                .put_note(&note, &key.seal(&binding, &SecretValue::new(text)))?;
        }
        Ok(kept)
    }

    /// The recorded health of every set that has been checked with `--record`. A record that
    /// does not open is refused, as a value is. A recorded break of the change log is noted
    /// for [`CredentialStore::log_damage`].
    pub fn checks(&self) -> Result<Vec<HealthRecord>> {
        let Some(identity) = self.store.identity(false)? else {
            return Ok(Vec::new());
        };
        let notes = self.store.notes()?;
        if !notes.is_empty() {
            // A break of the change log found earlier is said by readers of the notes too.
            let key = self.opening_key(&identity)?;
            self.note_damage(super::log::damage_in(key, &identity.store_id, &notes)?);
        }
        let mut records = Vec::new();
        for (note, sealed) in notes {
            let Some(set) = set_of(&note) else {
                continue;
            };
            let key = self.opening_key(&identity)?;
            let binding = Binding {
                store_id: &identity.store_id,
                name: &note,
                version: 0,
            };
            let text = key.open(&binding, &sealed)?;
            let result: CheckResult =
                serde_json::from_str(text.expose()).map_err(|_| crate::crypto::DoesNotOpen {
                    name: note.clone(),
                    version: 0,
                })?;
            records.push(HealthRecord { set, result });
        }
        Ok(records)
    }
}
