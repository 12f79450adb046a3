//! `cio credential env [--provider P] [--alternate] [--format sh|json]`: print a complete set
//! as the variables restic reads, quoted for `eval` in sh/bash.

use cio_credential::engine::{CLEARED, sh_quote};

use crate::cli::{EnvArgs, EnvFormat};
use crate::commands::handoff::chosen_set;
use crate::context::Context;
use crate::error::CommandError;
use crate::output::warn_if_terminal;

pub fn run(ctx: &mut Context, args: EnvArgs) -> Result<(), CommandError> {
    const ACTION: &str = "Print credentials";
    let handoff = chosen_set(ctx, ACTION, &args.set)?;
    warn_if_terminal();
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
