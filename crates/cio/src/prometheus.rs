//! `validate --prometheus FILE`: the result of each set in node_exporter's textfile-collector
//! format (Prometheus text exposition format 0.0.4), written atomically.
//!
//! Rules:
//! - one sample per set and metric, labelled `provider` and `role`; only our own words in
//!   labels (step and code names), never a value;
//! - the file is replaced whole: written to a temporary file in the same folder, flushed, then
//!   renamed over FILE, so node_exporter never reads half a file and a failed write leaves the
//!   previous file as it was (node_exporter's documented way to write textfiles);
//! - the file is 0644: node_exporter runs as its own user, and the metrics hold no secret.

use std::fmt::Write as _;

use cio_credential::{SetId, SetReport, Status};

/// What the metrics say about one set.
pub struct SetMetrics<'a> {
    pub report: &'a SetReport,
    /// When the set was checked, in milliseconds since the Unix epoch.
    pub checked_at_ms: i64,
    /// When the oldest of the set's secrets (access key, secret key, password) was last set,
    /// in milliseconds since the Unix epoch; `None` when the set has none.
    pub oldest_secret_ms: Option<i64>,
}

/// One metric family: its name, help text and the value of each set (`None`: no sample).
struct Family<'a> {
    name: &'static str,
    help: &'static str,
    value: &'a dyn Fn(&SetMetrics) -> Option<f64>,
}

/// Renders the metrics of `sets`; `now_ms` is the time the ages are measured at.
pub fn render(sets: &[SetMetrics], now_ms: i64) -> String {
    let seconds = |ms: i64| ms as f64 / 1000.0;
    let families = [
        Family {
            name: "cio_credential_set_passed",
            help: "Whether the set passed its last validation (1) or failed it (0).",
            value: &|m| Some(if m.report.passed() { 1.0 } else { 0.0 }),
        },
        Family {
            name: "cio_credential_set_last_check_timestamp_seconds",
            help: "When the set was last validated, in seconds since the Unix epoch.",
            value: &|m| Some(seconds(m.checked_at_ms)),
        },
        Family {
            name: "cio_credential_set_check_duration_seconds",
            help: "How long the set's last validation took.",
            value: &|m| Some(m.report.duration_ms as f64 / 1000.0),
        },
        Family {
            name: "cio_credential_set_secret_age_seconds",
            help: "Time since the oldest of the set's secrets (access key, secret key, password) was last set.",
            value: &|m| {
                m.oldest_secret_ms
                    .map(|t| seconds(now_ms.saturating_sub(t).max(0)))
            },
        },
    ];
    let mut text = String::new();
    for family in &families {
        let _ = writeln!(text, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(text, "# TYPE {} gauge", family.name);
        for m in sets {
            if let Some(value) = (family.value)(m) {
                let _ = writeln!(
                    text,
                    "{}{{{}}} {value}",
                    family.name,
                    set_labels(m.report.set)
                );
            }
        }
    }
    let info = "cio_credential_set_result_info";
    let _ = writeln!(
        text,
        "# HELP {info} The outcome of the set's last validation (ok, warn, fail) with the step and code of its first failure, or else of its first warning."
    );
    let _ = writeln!(text, "# TYPE {info} gauge");
    for m in sets {
        let status = m.report.status();
        let first = m
            .report
            .checks
            .iter()
            .find(|c| c.status == status && status != Status::Ok);
        let _ = writeln!(
            text,
            "{info}{{{},status=\"{}\",step=\"{}\",code=\"{}\"}} 1",
            set_labels(m.report.set),
            status_label(status),
            first.map_or("", |c| c.step.as_str()),
            escape(first.map_or("", |c| c.code)),
        );
    }
    text
}

fn set_labels(set: SetId) -> String {
    format!(
        "provider=\"{}\",role=\"{}\"",
        set.provider.as_str(),
        set.role.as_str()
    )
}

fn status_label(status: Status) -> &'static str {
    match status {
        Status::Ok | Status::Skipped => "ok",
        Status::Warn => "warn",
        Status::Fail => "fail",
    }
}

/// A label value as the text format wants it: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
