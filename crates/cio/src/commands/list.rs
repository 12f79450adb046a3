//! `cio credential list|ls`: every credential, secrets masked, and the state of each set.

use serde_json::json;

use cio_credential::{Listing, SetStatus};

use crate::context::Context;
use crate::error::CommandError;
use crate::output::time;

pub fn run(ctx: &mut Context) -> Result<(), CommandError> {
    const ACTION: &str = "List credentials";
    let entries = ctx
        .open(ACTION)?
        .list()
        .map_err(|e| CommandError::library(ACTION, e))?;
    // One line per set that has any credential: complete, or the names it lacks.
    let sets: Vec<SetStatus> = entries
        .iter()
        .map(|e| e.stored())
        .collect::<Listing>()
        .sets();
    if ctx.out.json {
        let credentials: Vec<_> = entries
            .iter()
            .map(|e| {
                json!({
                    "name": e.name,
                    "provider": e.name.provider,
                    "role": e.name.role,
                    "value": e.name.field.mask(e.value.expose()),
                    "version": e.version,
                    "updated": time(e.updated_ms),
                })
            })
            .collect();
        let sets: Vec<_> = sets
            .iter()
            .map(|s| {
                json!({
                    "provider": s.set.provider,
                    "role": s.set.role,
                    "complete": s.is_complete(),
                    "missing": s.missing,
                })
            })
            .collect();
        return Ok(ctx
            .out
            .json(&json!({"credentials": credentials, "sets": sets}))?);
    }
    if entries.is_empty() {
        ctx.out.line("No credentials yet. Create the four of a set with 'cio credential create NAME' ('cio credential create --help' lists the names).")?;
        return Ok(());
    }
    let mut rows = vec![
        ["NAME", "PROVIDER", "SET", "VALUE", "UPDATED"]
            .map(str::to_string)
            .to_vec(),
    ];
    for e in &entries {
        rows.push(vec![
            e.name.to_string(),
            e.name.provider.to_string(),
            e.name.role.to_string(),
            e.name.field.mask(e.value.expose()),
            time(e.updated_ms),
        ]);
    }
    ctx.out.table(&rows)?;
    ctx.out.line("")?;
    for s in &sets {
        if s.is_complete() {
            ctx.out.line(format!("{} set: complete", s.set))?;
        } else {
            let missing: Vec<String> = s.missing.iter().map(ToString::to_string).collect();
            ctx.out.line(format!(
                "{} set: incomplete, missing {}",
                s.set,
                missing.join(", ")
            ))?;
        }
    }
    Ok(())
}
