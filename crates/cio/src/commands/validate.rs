//! `cio credential validate [NAME] [--provider P] [--alternate] [--offline] [--timeout SECS]
//! [--write-check]`: tell exactly what is wrong with a set, before a backup needs it.

use serde_json::json;

use cio_credential::Error;
use cio_credential::catalog::{Role, SetId};
use cio_credential::store::now_ms;
use cio_credential::validate::{Options, SetReport, Status, validate_sets};

use crate::cli::ValidateArgs;
use crate::context::{Context, parse_name};
use crate::error::CommandError;
use crate::output::table;
use crate::prometheus::{self, SetMetrics};

pub fn run(ctx: &mut Context, args: ValidateArgs) -> Result<(), CommandError> {
    const ACTION: &str = "Validate credentials";
    let fail = |e: Error| CommandError::library(ACTION, e);
    let vault = ctx.vault(ACTION)?;
    let sets: Vec<SetId> = match &args.name {
        Some(text) => {
            let name = parse_name(ACTION, text)?;
            if vault.get(name).map_err(fail)?.is_none() {
                return Err(fail(Error::NotFound { name }));
            }
            vec![name.set()]
        }
        None => {
            let present: Vec<SetId> = vault
                .list()
                .map_err(fail)?
                .iter()
                .map(|e| e.name.set())
                .collect();
            SetId::all()
                .filter(|s| present.contains(s))
                .filter(|s| args.provider.is_none_or(|p| s.provider == p.into()))
                .filter(|s| !args.alternate || s.role == Role::Alternate)
                .collect()
        }
    };
    if sets.is_empty() {
        return Err(fail(Error::NoSuchSet(
            "there are no credentials to validate (of the provider and role asked)".into(),
        )));
    }
    let mut inputs = Vec::with_capacity(sets.len());
    let mut oldest_secrets = Vec::with_capacity(sets.len());
    for set in sets {
        let entries = vault.set(set).map_err(fail)?;
        oldest_secrets.push(
            entries
                .iter()
                .flatten()
                .filter(|e| e.name.field.is_secret())
                .map(|e| e.updated_ms)
                .min(),
        );
        inputs.push((set, entries.map(|e| e.map(|e| e.value))));
    }
    let options = Options {
        offline: args.offline,
        timeout: args.timeout,
        write_check: args.write_check,
    };
    let reports = validate_sets(inputs, &options);
    let checked_at_ms = now_ms();
    let failed = reports.iter().filter(|r| !r.passed()).count();
    if ctx.out.json {
        ctx.out
            .json(&json!({ "passed": failed == 0, "sets": reports }))?;
    } else {
        render(ctx, &reports)?;
    }
    if let Some(path) = &args.prometheus {
        let metrics: Vec<SetMetrics> = reports
            .iter()
            .zip(oldest_secrets)
            .map(|(report, oldest_secret_ms)| SetMetrics {
                report,
                checked_at_ms,
                oldest_secret_ms,
            })
            .collect();
        let text = prometheus::render(&metrics, checked_at_ms);
        prometheus::write_atomically(path, &text).map_err(|source| CommandError::WriteFile {
            action: ACTION.into(),
            path: path.clone(),
            source,
            hint: "create the folder (node_exporter's --collector.textfile.directory) or give --prometheus a file in a folder this user may write; the previous file was left as it was",
        })?;
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

fn render(ctx: &mut Context, reports: &[SetReport]) -> Result<(), CommandError> {
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
        for line in table(&rows) {
            ctx.out.line(line)?;
        }
    }
    if reports.iter().all(SetReport::passed) {
        ctx.out.succeed(
            "Validate",
            format!("{} of {} sets passed", reports.len(), reports.len()),
        )?;
    }
    Ok(())
}
