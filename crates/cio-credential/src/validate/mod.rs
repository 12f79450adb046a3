//! `cio credential validate`: checks a set of credentials, offline and against the real object
//! storage, and returns a typed report the binary renders (text or `--json`).
//!
//! Rules:
//! - the steps run in [`Step`] order, declared once ([`Step::ALL`]) and kept by the step
//!   functions' types (each takes what the one before produced) and by the report, which
//!   refuses an earlier step after a later one; a step that fails marks every later step
//!   [`Status::Skipped`], so the first failure is the one to fix;
//! - offline runs completeness and value rules only; the rest is `Skipped` with code `offline`;
//! - every [`Check`] has a stable machine `code` and a one-line `detail` that says what to
//!   do; a detail never contains a key, secret or password (the repository URL is not secret);
//! - live checks ask what restic 0.14 asks, the way it asks (its S3 library minio-go v7.0.34
//!   and Go's HTTP transport): region, proxies, CA certificate, key search, listings
//!   (`encoding-type=url`); `ok` means restic under `cio credential exec` works;
//! - where validate cannot tell whether restic works after a check that passed (a deadline
//!   before every snapshot was read), it warns; where it could not check what makes restic
//!   trust the server (TLS that Go speaks and rustls does not: `tls_unchecked`), it fails,
//!   naming what it could not check and how restic checks it, since a forged certificate
//!   would pass too; any other FAIL names what restic stumbles on;
//! - nothing hangs: each set has one deadline ([`Options::timeout`]) over all its network
//!   work; a request is tried once (no retries); sets are checked concurrently;
//! - credentials are given to the S3 client directly: no environment, profile or default
//!   credential chain is ever read.

mod contents;
mod endpoint;
mod failure;
mod layout;
pub(crate) mod net;
pub(crate) mod object;
mod offline;
mod password;
mod region;
mod report;
mod s3;
mod steps;

use std::time::Duration;

pub use net::proxy::{ProxyEnv, ProxyError};
pub use net::tls::{CaCertError, parse_cacert};
pub use report::{Check, SetReport, Status, Step};

pub(crate) use password::FOREIGN_KEY;

use crate::catalog::SetId;
use crate::sets::SetValues;
use report::Report;

/// The variable restic reads a key hint from (the id, or its first digits, of the key file
/// to try first); validate honours it the same way.
pub const KEY_HINT_VARIABLE: &str = "RESTIC_KEY_HINT";

/// How to validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Run the value rules only, no network.
    pub offline: bool,
    /// The longest a set's network checks may take, all together.
    pub timeout: Duration,
    /// Also check what `restic init` and `restic backup` need: the bucket check of init, and
    /// writing and deleting a small probe object.
    pub write_check: bool,
    /// The proxy variables restic would see ([`ProxyEnv::from_env`] for this process's).
    pub proxies: ProxyEnv,
    /// The key hint restic would see (`RESTIC_KEY_HINT`).
    pub key_hint: Option<String>,
    /// The set's access key and secret key are a new pair being checked (a key rotation),
    /// not the stored ones: details say "the new access key", never the credential that
    /// still holds the old one.
    pub new_keys: bool,
}

impl Default for Options {
    /// Ten seconds, no write check, no proxy, no key hint.
    fn default() -> Self {
        Options {
            offline: false,
            timeout: Duration::from_secs(10),
            write_check: false,
            proxies: ProxyEnv::default(),
            key_hint: None,
            new_keys: false,
        }
    }
}

impl Options {
    /// [`Options::default`] with the proxy variables and key hint of this process's
    /// environment: what restic run from here would see.
    pub fn from_env() -> Options {
        Options {
            proxies: ProxyEnv::from_env(),
            key_hint: std::env::var(KEY_HINT_VARIABLE)
                .ok()
                .filter(|h| !h.is_empty()),
            ..Options::default()
        }
    }
}

/// Validates one set.
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
    steps::run(set, &values, opts, &mut report).await;
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
            // A panic in a check is a bug: let it surface.
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
    let ids: Vec<SetId> = sets.iter().map(|values| values.set).collect();
    match runtime(opts) {
        Ok(rt) => {
            let reports = rt.block_on(check_sets(sets, opts));
            // A key derivation that outlived the deadline must not hold the process: dropping
            // the runtime would wait for its blocking task.
            rt.shutdown_background();
            reports
        }
        Err(e) => ids.iter().map(|set| runtime_failure(*set, &e)).collect(),
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
