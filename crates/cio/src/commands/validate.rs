//! `cio credential validate [NAME] [--provider P] [--alternate] [--offline] [--timeout SECS]
//! [--write-check]`: tell exactly what is wrong with a set, before a backup needs it.

use clap::Args;
use serde_json::json;

use cio_credential::{
    Purpose, Role, SetFilter, SetReport, Status, ValidateOptions, now_ms, validate_sets,
    warn_old_keys,
};

use crate::cli::ProviderArg;
use crate::context::{Context, parse_name};
use crate::error::CommandError;

#[derive(Args)]
pub struct ValidateArgs {
    /// Validate this credential's set only
    #[arg(value_name = "CREDENTIALNAME")]
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
}

/// The long help's end.
pub const EXAMPLES: &str = "\
Examples:
  cio credential validate                          every set, live
  cio credential validate --offline                the value rules only, no network
  cio credential validate cio_aws_secret_key       that credential's set
  cio credential validate --alternate --json       the disaster-recovery set, for scripts";

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
            name: Some(parse_name(ACTION, text)?),
            ..SetFilter::default()
        },
        None => SetFilter {
            name: None,
            provider: args.provider.map(Into::into),
            role: args.alternate.then_some(Role::Alternate),
        },
    };
    let store = ctx.open(ACTION)?;
    let sets = store
        .sets(&filter, Purpose::Check)
        .map_err(|e| CommandError::library(ACTION, e))?;
    let listing = store
        .listing()
        .map_err(|e| CommandError::library(ACTION, e))?;
    let max_key_age_days = ctx.max_key_age_days(ACTION)?;
    // The proxy variables and key hint restic would see from here.
    let options = ValidateOptions {
        offline: args.offline,
        timeout: args.timeout,
        write_check: args.write_check,
        ..ValidateOptions::from_env()
    };
    let mut reports = validate_sets(sets, &options);
    warn_old_keys(&mut reports, &listing, max_key_age_days, now_ms());
    let failed = reports.iter().filter(|r| !r.passed()).count();
    if ctx.out.json {
        ctx.out
            .json(&json!({ "passed": failed == 0, "sets": reports }))?;
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
