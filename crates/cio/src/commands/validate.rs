//! `cio credential validate [NAME] [--provider P] [--alternate] [--offline] [--timeout SECS]
//! [--write-check] [--record] [--prometheus FILE]`: tell exactly what is wrong with a set, before a
//! backup needs it.

use clap::Args;
use serde_json::json;

use cio_credential::{
    Listing, Purpose, Role, SetFilter, SetReport, Status, ValidateOptions, now_ms, validate_sets,
    warn_old_keys,
};

use crate::cli::ProviderArg;
use crate::context::{Context, parse_name};
use crate::error::CommandError;
use crate::output::ago;
use crate::prometheus::{self, SetMetrics};
use crate::replace_file::ReplaceError;

#[derive(Args)]
pub struct ValidateArgs {
    /// Validate this credential's set only
    #[arg(value_name = "CREDENTIALNAME", value_parser = crate::cli::CredentialNames::ANY, hide_possible_values = true)]
    pub name: Option<String>,
    /// Only this provider's sets
    #[arg(long, value_enum)]
    pub provider: Option<ProviderArg>,
    /// Only the alternate (disaster-recovery) sets
    #[arg(long)]
    pub alternate: bool,
    /// Check the value rules only; no network
    #[arg(long)]
    pub offline: bool,
    /// The longest the live checks of one set may take, in seconds
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    pub timeout: std::time::Duration,
    /// Also put and delete a small probe object, to prove the key may back up
    #[arg(long)]
    pub write_check: bool,
    /// Also record each set's result in the store (time, outcome, first failing step and its
    /// code), shown by `list` on every node
    #[arg(long)]
    pub record: bool,
    /// Also write each set's result as Prometheus metrics into FILE (node_exporter's textfile
    /// collector format), replacing it atomically; of live checks only (not with --offline:
    /// a pass of the rules alone would read as a checked, working set)
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath, conflicts_with = "offline")]
    pub prometheus: Option<std::path::PathBuf>,
}

/// The long help's end.
pub const EXAMPLES: &str = "\
Examples:
  cio credential validate                          every set, live
  cio credential validate --offline                the value rules only, no network
  cio credential validate cio_aws_secret_key       that credential's set
  cio credential validate --alternate --json       the disaster-recovery set, for scripts
  cio credential validate --record                 and keep the results (list: CHECKED)
  cio credential validate --prometheus /var/lib/node_exporter/textfile_collector/cio.prom
                                                   also as metrics for node_exporter";

/// A positive number of seconds, e.g. `10` or `2.5`.
fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 3600.0)
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("'{text}' is not a number of seconds between 0 and 3600"))
}

pub fn run(ctx: &mut Context, args: ValidateArgs) -> Result<(), CommandError> {
    const ACTION: &str = "Validate credentials";
    // A name chooses its set; the options narrow a validation of every set.
    let filter = match &args.name {
        Some(text) => SetFilter {
            name: Some(parse_name(
                ACTION,
                "validate",
                crate::cli::CredentialNames::ANY,
                text,
            )?),
            ..SetFilter::default()
        },
        None => SetFilter {
            name: None,
            provider: args.provider.map(Into::into),
            role: args.alternate.then_some(Role::Alternate),
        },
    };
    let store = ctx.open(ACTION)?;
    let fail = |e| CommandError::library(ACTION, e);
    // The values, and from the same read when each secret was last set and its version (for
    // the key-age warnings, the metrics, and what --record says it checked).
    let (sets, listing) = store
        .sets_and_listing(&filter, Purpose::Check)
        .map_err(fail)?;
    let max_key_age_days = ctx.max_key_age_days(ACTION)?;
    // The proxy variables and key hint restic would see from here.
    let options = ValidateOptions {
        offline: args.offline,
        timeout: args.timeout,
        write_check: args.write_check,
        ..ValidateOptions::from_env()
    };
    let mut reports = validate_sets(sets, &options);
    let checked_at_ms = now_ms();
    warn_old_keys(&mut reports, &listing, max_key_age_days, checked_at_ms);
    let failed = reports.iter().filter(|r| !r.passed()).count();
    // Recorded and written before the report is printed: a failure to keep them is then the
    // command's one outcome (one JSON document), not a second word after a success.
    if args.record {
        let kept = store
            .record_checks(&reports, &listing, checked_at_ms)
            .map_err(fail)?;
        for live in kept {
            ctx.out.warn(format!(
                "the {} set keeps its live check from {} ago: an --offline check does not replace it; run 'cio credential validate --record' to check it again",
                live.set,
                ago(live.result.checked_at_ms, checked_at_ms),
            ));
        }
    }
    if let Some(path) = &args.prometheus {
        write_metrics(path, &reports, &listing, checked_at_ms)?;
    }
    if ctx.out.json {
        let mut doc = json!({ "passed": failed == 0, "sets": reports });
        offer_same_flags(ctx, &mut doc);
        ctx.out.json(&doc)?;
    } else {
        render(ctx, &reports)?;
    }
    if failed == 0 {
        return Ok(());
    }
    Err(CommandError::Validation {
        failed,
        total: reports.len(),
    })
}

/// The details of `doc`'s checks that offer a command, as the text report shows them: saying
/// that it needs the flags this validation was given ([`crate::output::Out::offering_flags`]).
fn offer_same_flags(ctx: &Context, doc: &mut serde_json::Value) {
    let checks = doc["sets"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .filter_map(|set| set["checks"].as_array_mut())
        .flatten();
    for check in checks {
        if let Some(detail) = check["detail"].as_str()
            && let std::borrow::Cow::Owned(offered) = ctx.out.offered(detail)
        {
            check["detail"] = offered.into();
        }
    }
}

/// `--prometheus FILE`: the reports as node_exporter textfile metrics.
fn write_metrics(
    path: &std::path::Path,
    reports: &[SetReport],
    listing: &Listing,
    checked_at_ms: i64,
) -> Result<(), CommandError> {
    let metrics: Vec<SetMetrics> = reports
        .iter()
        .map(|report| SetMetrics {
            report,
            checked_at_ms,
            oldest_secret_ms: listing
                .credentials()
                .iter()
                .filter(|c| c.name.set() == report.set && c.name.field.is_secret())
                .map(|c| c.updated_ms)
                .min(),
        })
        .collect();
    let text = prometheus::render(&metrics, checked_at_ms);
    // Only a regular file is replaced (a device, a FIFO or a symbolic link given by mistake
    // is refused and left as it is): the rule lives in write_atomically.
    crate::replace_file::write_atomically(path, &text).map_err(|e| {
        let hint = match e {
            ReplaceError::NotReplaceable(_) => "give --prometheus the path of a regular file (or of none yet) in node_exporter's textfile folder; nothing was written",
            ReplaceError::Io(_) => "create the folder (node_exporter's --collector.textfile.directory) or give --prometheus a file in a folder this user may write; the previous file was left as it was",
        };
        CommandError::WriteFile {
            action: "Validate credentials".into(),
            path: path.to_path_buf(),
            source: e.into(),
            hint,
        }
    })
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Warn => "warn",
        Status::Fail => "FAIL",
        Status::Skipped => "skip",
    }
}

pub(crate) fn render(ctx: &mut Context, reports: &[SetReport]) -> Result<(), CommandError> {
    for (i, report) in reports.iter().enumerate() {
        if i > 0 {
            ctx.out.line("")?;
        }
        ctx.out.line(format!("{} set:", report.set))?;
        let rows: Vec<Vec<String>> = report
            .checks
            .iter()
            .map(|c| {
                vec![
                    format!("  {}", status_word(c.status)),
                    c.step.to_string(),
                    c.detail.clone(),
                ]
            })
            .collect();
        ctx.out.table(&rows)?;
    }
    if reports.iter().all(SetReport::passed) {
        ctx.out.succeed(
            "Validate",
            format!("{} of {} sets passed", reports.len(), reports.len()),
        )?;
    }
    Ok(())
}
