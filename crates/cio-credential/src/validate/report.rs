//! The typed report of a validation: steps, statuses, checks, and the collector that keeps
//! the steps in their one declared order ([`Step::ALL`]).

use serde::{Deserialize, Serialize};

use crate::catalog::SetId;

/// The steps of a validation, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// All four names of the set exist.
    Completeness,
    /// Each value follows the catalog's rules.
    Rules,
    /// The repository's host resolves, accepts a connection, completes TLS and answers HTTP.
    Endpoint,
    /// The server accepts the access key and the signature made with the secret key.
    Credentials,
    /// The bucket exists, in the region the requests go to.
    Bucket,
    /// The key may list and read (and with `write_check`, write and delete).
    Permissions,
    /// A restic repository (its `config`) is at the URL.
    Repository,
    /// The password opens one of the repository's key files.
    Password,
    /// What the repository holds.
    Summary,
}

impl Step {
    pub const ALL: [Step; 9] = [
        Step::Completeness,
        Step::Rules,
        Step::Endpoint,
        Step::Credentials,
        Step::Bucket,
        Step::Permissions,
        Step::Repository,
        Step::Password,
        Step::Summary,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Completeness => "completeness",
            Step::Rules => "rules",
            Step::Endpoint => "endpoint",
            Step::Credentials => "credentials",
            Step::Bucket => "bucket",
            Step::Permissions => "permissions",
            Step::Repository => "repository",
            Step::Password => "password",
            Step::Summary => "summary",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// Works, but probably not what the administrator wants.
    Warn,
    Fail,
    /// Not run: offline, or an earlier step failed.
    Skipped,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub step: Step,
    pub status: Status,
    /// A stable machine code (`ok`, `incomplete`, `wrong_password`, ...).
    pub code: &'static str,
    /// One line that says what was found and what to do. Never a secret value.
    pub detail: String,
}

impl Check {
    pub(crate) fn ok(step: Step, detail: impl Into<String>) -> Check {
        Check::new(step, Status::Ok, "ok", detail)
    }

    pub(crate) fn fail(step: Step, code: &'static str, detail: impl Into<String>) -> Check {
        Check::new(step, Status::Fail, code, detail)
    }

    pub(crate) fn new(
        step: Step,
        status: Status,
        code: &'static str,
        detail: impl Into<String>,
    ) -> Check {
        Check {
            step,
            status,
            code,
            detail: detail.into(),
        }
    }
}

/// The report of one set: its checks in step order (the rules step may hold several).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetReport {
    pub set: SetId,
    pub checks: Vec<Check>,
    /// How long the set's checks took, in milliseconds.
    pub duration_ms: u64,
}

impl SetReport {
    /// The worst status of any check, ignoring `Skipped`: `Fail`, else `Warn`, else `Ok`.
    pub fn status(&self) -> Status {
        self.checks
            .iter()
            .map(|c| c.status)
            .filter(|s| *s != Status::Skipped)
            .max()
            .unwrap_or(Status::Ok)
    }

    /// No check failed.
    pub fn passed(&self) -> bool {
        self.status() != Status::Fail
    }

    /// The first check of `step`.
    pub fn check(&self, step: Step) -> Option<&Check> {
        self.checks.iter().find(|c| c.step == step)
    }
}

/// Collects checks and marks the steps left when the run stops.
pub(crate) struct Report {
    set: SetId,
    pub(crate) checks: Vec<Check>,
    started: std::time::Instant,
}

impl Report {
    pub(crate) fn new(set: SetId) -> Report {
        Report {
            set,
            checks: Vec::new(),
            started: std::time::Instant::now(),
        }
    }

    /// Adds a check; `true` when the run may go on (it did not fail).
    ///
    /// The step order is enforced here: a check of an earlier step than the last one reported
    /// is a bug in the step functions, and panics in tests (debug builds).
    pub(crate) fn push(&mut self, check: Check) -> bool {
        debug_assert!(
            self.checks
                .last()
                .is_none_or(|last| last.step <= check.step),
            "step {} reported after {:?}",
            check.step,
            self.checks.last().map(|c| c.step)
        );
        let go_on = check.status != Status::Fail;
        self.checks.push(check);
        go_on
    }

    /// Reports Ok for every step after the last reported one and before `check`'s (their
    /// requests succeeded: `ok` gives each its detail), then `check`. `true` when the run may
    /// go on.
    pub(crate) fn push_after_oks(&mut self, check: Check, ok: &dyn Fn(Step) -> Check) -> bool {
        let last = self.checks.last().map(|c| c.step);
        for step in Step::ALL {
            if last.is_none_or(|l| step > l) && step < check.step {
                self.push(ok(step));
            }
        }
        self.push(check)
    }

    /// Marks every step after the last one reported as skipped, with this code and detail.
    pub(crate) fn skip_rest(&mut self, code: &'static str, detail: &str) {
        let last = self.checks.last().map(|c| c.step);
        for step in Step::ALL {
            if last.is_none_or(|l| step > l) {
                self.checks
                    .push(Check::new(step, Status::Skipped, code, detail));
            }
        }
    }

    pub(crate) fn finish(mut self) -> SetReport {
        let failed = self.checks.iter().any(|c| c.status == Status::Fail);
        if failed {
            self.skip_rest("skipped", "not checked: fix the failure above first");
        } else {
            self.skip_rest("skipped", "not checked");
        }
        SetReport {
            set: self.set,
            checks: self.checks,
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }
}
