//! `cio credential env [--provider P] [--alternate] [--format sh|json]`: print a complete set
//! as the variables restic reads, quoted for `eval` in sh/bash.

use clap::{Args, ValueEnum};

use cio_credential::{CLEARED, sh_quote};

use crate::commands::handoff::{SetArgs, chosen_set};
use crate::context::Context;
use crate::error::CommandError;

#[derive(Args)]
pub struct EnvArgs {
    #[command(flatten)]
    pub set: SetArgs,
    /// sh: `export NAME='value'` lines for eval; json: one object
    #[arg(long, value_enum, default_value = "sh")]
    pub format: EnvFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnvFormat {
    Sh,
    Json,
}

pub fn run(ctx: &mut Context, args: EnvArgs) -> Result<(), CommandError> {
    const ACTION: &str = "Print credentials";
    let handoff = chosen_set(ctx, ACTION, &args.set)?;
    ctx.out.warn_if_secrets_shown();
    if ctx.out.json || args.format == EnvFormat::Json {
        let map: serde_json::Map<String, serde_json::Value> = handoff
            .vars
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.expose().into()))
            .collect();
        return Ok(ctx.out.json(&map.into())?);
    }
    ctx.out.line(format!("unset {}", CLEARED.join(" ")))?;
    for (var, value) in &handoff.vars {
        ctx.out
            .line(format!("export {var}={}", sh_quote(value.expose())))?;
    }
    Ok(())
}
