//! How old a secret is, and the `key_old` warning of `validate`.
//!
//! Rules:
//! - a value's age counts from its last write (a restore writes it again), as `list` shows
//!   it and the metrics of `validate --prometheus` measure it;
//! - `validate` warns (code `key_old`, at the rules step) when an access key or a repository
//!   password is older than `max_key_age_days` (`cio.toml`; default
//!   [`DEFAULT_MAX_KEY_AGE_DAYS`]; 0 switches the warning off); the detail says how to rotate
//!   it.

use crate::catalog::{CredentialName, Field, Role};
use crate::sets::Listing;
use crate::validate::{Check, SetReport, Status, Step};

/// The age, in days, past which `validate` warns about an access key or password.
pub const DEFAULT_MAX_KEY_AGE_DAYS: u32 = 90;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Whole days from `since_ms` to `now_ms` (0 for a time in the future).
pub fn age_days(since_ms: i64, now_ms: i64) -> u64 {
    u64::try_from(now_ms.saturating_sub(since_ms) / DAY_MS).unwrap_or(0)
}

/// Adds a `key_old` warning to each report for every access key or password in `listing`
/// older than `max_days` at `now_ms`; nothing when `max_days` is 0.
pub fn warn_old_keys(reports: &mut [SetReport], listing: &Listing, max_days: u32, now_ms: i64) {
    if max_days == 0 {
        return;
    }
    for report in reports {
        let old: Vec<Check> = listing
            .credentials()
            .iter()
            .filter(|s| s.name.set() == report.set)
            .filter(|s| matches!(s.name.field, Field::AccessKey | Field::BackupPassword))
            .filter_map(|s| {
                let days = age_days(s.updated_ms, now_ms);
                (days > u64::from(max_days)).then(|| old_key(s.name, days, max_days))
            })
            .collect();
        // After the rules step's own checks, so the report stays in step order.
        let at = report
            .checks
            .iter()
            .position(|c| c.step > Step::Rules)
            .unwrap_or(report.checks.len());
        report.checks.splice(at..at, old);
    }
}

/// The warning for `name`, `days` old.
fn old_key(name: CredentialName, days: u64, max_days: u32) -> Check {
    let how = match (name.field, name.role) {
        (Field::AccessKey, Role::Primary) => format!(
            "rotate it with 'cio credential rotate --provider {} --access-key'",
            name.provider
        ),
        (Field::AccessKey, Role::Alternate) => format!(
            "rotate it with 'cio credential rotate --provider {} --alternate --access-key'",
            name.provider
        ),
        (_, Role::Primary) => format!("rotate it with 'cio credential rotate {name}'"),
        (_, Role::Alternate) => format!(
            "its repository belongs to another cluster: once that cluster has rotated it, store the new one with 'cio credential create {name} --force'"
        ),
    };
    Check::new(
        Step::Rules,
        Status::Warn,
        "key_old",
        format!("{name} was set {days} days ago, more than max_key_age_days ({max_days}); {how}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Provider, SetId};
    use crate::sets::Stored;
    use crate::store::Action;

    fn stored(name: &str, updated_ms: i64) -> Stored {
        Stored {
            name: name.parse().unwrap(),
            version: 1,
            action: Action::Create,
            updated_ms,
        }
    }

    fn report(set: SetId) -> SetReport {
        let check = |step, status| Check::new(step, status, "ok", "");
        SetReport {
            set,
            checks: vec![
                check(Step::Completeness, Status::Ok),
                check(Step::Rules, Status::Ok),
                check(Step::Endpoint, Status::Skipped),
            ],
            duration_ms: 0,
        }
    }

    #[test]
    fn old_access_keys_and_passwords_warn_after_the_rules() {
        let now = 1_800_000_000_000;
        let set = SetId {
            provider: Provider::Aws,
            role: Role::Primary,
        };
        let listing: Listing = [
            stored("cio_aws_access_key", now - 91 * DAY_MS),
            stored("cio_aws_secret_key", now - 400 * DAY_MS),
            stored("cio_aws_backup_password", now - 90 * DAY_MS),
            stored("cio_aws_backup_repo", now - 400 * DAY_MS),
            stored("cio_aws_alt_backup_password", now - 100 * DAY_MS),
        ]
        .into_iter()
        .collect();
        let mut reports = [report(set)];
        warn_old_keys(&mut reports, &listing, 90, now);
        let steps: Vec<_> = reports[0].checks.iter().map(|c| (c.step, c.code)).collect();
        assert_eq!(
            steps,
            [
                (Step::Completeness, "ok"),
                (Step::Rules, "ok"),
                (Step::Rules, "key_old"),
                (Step::Endpoint, "ok"),
            ]
        );
        assert_eq!(
            reports[0].checks[2].detail,
            "cio_aws_access_key was set 91 days ago, more than max_key_age_days (90); rotate it with 'cio credential rotate --provider aws --access-key'"
        );
        assert_eq!(reports[0].status(), Status::Warn);
        // 0 switches it off; the password at 100 days warns in its own set.
        let mut reports = [report(set)];
        warn_old_keys(&mut reports, &listing, 0, now);
        assert_eq!(reports[0].checks.len(), 3);
        let alt = SetId {
            provider: Provider::Aws,
            role: Role::Alternate,
        };
        let mut reports = [report(alt)];
        warn_old_keys(&mut reports, &listing, 30, now);
        assert!(
            reports[0].checks[2]
                .detail
                .contains("belongs to another cluster")
        );
        assert_eq!(age_days(now + 5, now), 0);
    }
}
