//! What the validate tests share: a MinIO set's values, validate with a given set of proxy
//! variables, restic run with the same values, and what a report says failed.

// Each test binary that includes this module uses part of it.
#![allow(dead_code)]

use std::time::Duration;

use cio_credential::{
    Provider, ProxyEnv, Role, SecretValue, SetId, SetReport, SetValues, Status, Step,
    ValidateOptions, validate_set,
};
use testkit::s3::run_restic;

/// The set the tests fill.
pub const MINIO: SetId = SetId {
    provider: Provider::Minio,
    role: Role::Primary,
};

/// The MinIO primary set with these four values.
pub fn values(repo: &str, access: &str, secret: &str, password: &str) -> SetValues {
    let v = |s: &str| Some(SecretValue::new(s.to_string()));
    SetValues {
        backup_repo: v(repo),
        access_key: v(access),
        secret_key: v(secret),
        backup_password: v(password),
        ..SetValues::empty(MINIO)
    }
}

/// validate (20 s budget) with `vars` as the only proxy variables it sees.
pub fn validate_with_proxies(v: &SetValues, vars: &[(&str, &str)]) -> SetReport {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let opts = ValidateOptions {
        timeout: Duration::from_secs(20),
        proxies: ProxyEnv::from_lookup(|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        }),
        ..ValidateOptions::default()
    };
    validate_set(v, &opts)
}

/// restic with these values and the extra environment `env`; `(success, stderr)`.
pub fn restic(
    url: &str,
    access: &str,
    secret: &str,
    password: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> (bool, String) {
    let home = tempfile::tempdir().expect("a HOME for restic");
    let out = run_restic(home.path(), url, access, secret, password, env, args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The first failing check's step, code and detail; `(None, "ok", "")` when none failed.
pub fn failure(report: &SetReport) -> (Option<Step>, &'static str, String) {
    let failed = report.checks.iter().find(|c| c.status == Status::Fail);
    (
        failed.map(|c| c.step),
        failed.map_or("ok", |c| c.code),
        failed.map(|c| c.detail.clone()).unwrap_or_default(),
    )
}

/// The detail of `step`'s check ("" when it did not run).
pub fn detail(report: &SetReport, step: Step) -> String {
    report
        .check(step)
        .map(|c| c.detail.clone())
        .unwrap_or_default()
}
