//! `cio credential validate`: checks a set of four credentials, offline and against the real
//! object storage, and returns a typed report the binary renders (text or `--json`).
//!
//! Rules:
//! - the steps run in [`Step`] order; a step that fails marks every later step
//!   [`Status::Skipped`], so the first failure is the one to fix;
//! - offline runs completeness and value rules only; the rest is `Skipped` with code `offline`;
//! - every [`Check`] has a stable machine `code` and a one-line `detail` that says what to
//!   do; a detail never contains a key, secret or password (the repository URL is not secret);
//! - nothing hangs: each set has one deadline ([`Options::timeout`]) over all its network
//!   work; a request is tried once (no retries); sets are checked concurrently;
//! - credentials are given to the S3 client directly: no environment, profile or default
//!   credential chain is ever read.

mod endpoint;
mod live;
mod offline;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::catalog::SetId;
use crate::sets::SetValues;

/// How to validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Run the value rules only, no network.
    pub offline: bool,
    /// The longest a set's network checks may take, all together.
    pub timeout: Duration,
    /// Also write and delete a small probe object (proves the key may back up).
    pub write_check: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            offline: false,
            timeout: Duration::from_secs(10),
            write_check: false,
        }
    }
}

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
    fn new(set: SetId) -> Report {
        Report {
            set,
            checks: Vec::new(),
            started: std::time::Instant::now(),
        }
    }

    /// Adds a check; `true` when the run may go on (it did not fail).
    pub(crate) fn push(&mut self, check: Check) -> bool {
        let go_on = check.status != Status::Fail;
        self.checks.push(check);
        go_on
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

    fn finish(mut self) -> SetReport {
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

/// Validates one set's values.
pub async fn check_set(values: &SetValues, opts: &Options) -> SetReport {
    let set = values.set;
    let mut report = Report::new(set);
    let Some(values) = offline::check(values, &mut report) else {
        return report.finish();
    };
    if opts.offline {
        report.skip_rest("offline", "not checked offline");
        return report.finish();
    }
    live::check(set, values, opts, &mut report).await;
    report.finish()
}

/// Validates several sets concurrently; the reports come back in the order given.
pub async fn check_sets(sets: Vec<SetValues>, opts: &Options) -> Vec<SetReport> {
    let mut tasks = tokio::task::JoinSet::new();
    let order: Vec<SetId> = sets.iter().map(|values| values.set).collect();
    for (index, values) in sets.into_iter().enumerate() {
        let opts = opts.clone();
        tasks.spawn(async move { (index, check_set(&values, &opts).await) });
    }
    let mut reports: Vec<Option<SetReport>> = order.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, report)) => reports[index] = Some(report),
            // A panic in a check is a bug; report it on the set rather than lose the others.
            Err(e) => {
                if e.is_panic() {
                    std::panic::resume_unwind(e.into_panic());
                }
            }
        }
    }
    reports
        .into_iter()
        .zip(order)
        .map(|(report, set)| {
            report.unwrap_or_else(|| {
                let mut r = Report::new(set);
                r.push(Check::fail(
                    Step::Completeness,
                    "internal",
                    "the check was cancelled; run validate again",
                ));
                r.finish()
            })
        })
        .collect()
}

/// [`check_set`] for callers without an async runtime (the binary). Must not be called from
/// inside a tokio runtime.
pub fn validate_set(values: &SetValues, opts: &Options) -> SetReport {
    match runtime(opts) {
        Ok(rt) => {
            let report = rt.block_on(check_set(values, opts));
            // A key derivation that outlived the deadline must not hold the process.
            rt.shutdown_background();
            report
        }
        Err(e) => runtime_failure(values.set, &e),
    }
}

/// [`check_sets`] for callers without an async runtime (the binary): the sets are checked
/// concurrently. Must not be called from inside a tokio runtime.
pub fn validate_sets(sets: Vec<SetValues>, opts: &Options) -> Vec<SetReport> {
    match runtime(opts) {
        Ok(rt) => {
            let reports = rt.block_on(check_sets(sets, opts));
            // A key derivation that outlived the deadline must not hold the process: dropping
            // the runtime would wait for its blocking task.
            rt.shutdown_background();
            reports
        }
        Err(e) => sets
            .iter()
            .map(|values| runtime_failure(values.set, &e))
            .collect(),
    }
}

/// The runtime for one validation: offline needs no worker threads (nothing waits on the
/// network), which keeps `--offline` as quick as `list`.
fn runtime(opts: &Options) -> std::io::Result<tokio::runtime::Runtime> {
    if opts.offline {
        return tokio::runtime::Builder::new_current_thread().build();
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

fn runtime_failure(set: SetId, e: &std::io::Error) -> SetReport {
    let mut r = Report::new(set);
    r.push(Check::fail(
        Step::Endpoint,
        "internal",
        format!("cannot start the network runtime: {e}"),
    ));
    r.finish()
}
