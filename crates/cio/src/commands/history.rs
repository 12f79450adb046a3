//! `cio credential history NAME`: every version of a credential, oldest first, masked.

use clap::Args;
use serde_json::json;

use cio_credential::{Action, SecretValue};

use crate::context::{Context, parse_name};
use crate::error::CommandError;
use crate::output::time;

/// The long help's end.
pub const EXAMPLES: &str = "\
Examples:
  Every version of the secret key, oldest first, masked (the numbers restore takes)
    cio credential history cio_aws_secret_key

  The same as JSON, for scripts
    cio credential history cio_aws_secret_key --json";

#[derive(Args)]
pub struct HistoryArgs {
    /// The credential's name, e.g. cio_aws_access_key
    #[arg(value_name = "CREDENTIALNAME", value_parser = crate::cli::CredentialNames::ANY, hide_possible_values = true)]
    pub name: String,
}

pub fn run(ctx: &mut Context, args: HistoryArgs) -> Result<(), CommandError> {
    const ACTION: &str = "Show history";
    let name = parse_name(
        ACTION,
        "history",
        crate::cli::CredentialNames::ANY,
        &args.name,
    )?;
    let store = ctx.open(ACTION)?;
    let history = store
        .history(name)
        .map_err(|e| CommandError::library(ACTION, e))?;
    if history.is_empty() {
        return Err(CommandError::library(ACTION, store.absent(name)));
    }
    let masked = |v: &Option<SecretValue>| {
        v.as_ref()
            .map_or_else(|| "-".to_string(), |v| name.field.mask(v.expose()))
    };
    if ctx.out.json {
        let versions: Vec<_> = history
            .iter()
            .map(|h| {
                json!({
                    "version": h.version,
                    "action": h.action,
                    "restored_from": h.restored_from,
                    "value": h.value.as_ref().map(|v| name.field.mask(v.expose())),
                    "written": time(h.written_at_ms),
                })
            })
            .collect();
        return Ok(ctx.out.json(&json!({"name": name, "versions": versions}))?);
    }
    let mut rows = vec![
        ["VERSION", "ACTION", "VALUE", "WRITTEN"]
            .map(str::to_string)
            .to_vec(),
    ];
    for h in &history {
        let action = match (h.action, h.restored_from) {
            (Action::Restore, Some(from)) => format!("restore (of {from})"),
            (a, _) => a.as_str().to_string(),
        };
        rows.push(vec![
            h.version.to_string(),
            action,
            masked(&h.value),
            time(h.written_at_ms),
        ]);
    }
    Ok(ctx.out.table(&rows)?)
}
