//! `cio credential list|ls`: every credential, secrets masked, and the state of each set.

use serde_json::json;

use crate::context::Context;
use crate::error::CommandError;
use crate::output::{table, time};
use cio_credential::catalog::SetId;

pub fn run(ctx: &mut Context) -> Result<(), CommandError> {
    const ACTION: &str = "List credentials";
    let vault = ctx.vault(ACTION)?;
    let entries = vault.list().map_err(|e| CommandError::library(ACTION, e))?;
    // One line per set that has any credential: complete, or the names it lacks.
    let sets: Vec<(SetId, Vec<String>)> = SetId::all()
        .filter(|set| entries.iter().any(|e| e.name.set() == *set))
        .map(|set| {
            let missing = set
                .names()
                .into_iter()
                .filter(|n| !entries.iter().any(|e| e.name == *n))
                .map(|n| n.to_string())
                .collect();
            (set, missing)
        })
        .collect();
    if ctx.out.json {
        let credentials: Vec<_> = entries
            .iter()
            .map(|e| {
                json!({
                    "name": e.name,
                    "provider": e.name.provider,
                    "set": e.name.role,
                    "value": e.name.field.mask(e.value.expose()),
                    "version": e.version,
                    "updated": time(e.updated_ms),
                })
            })
            .collect();
        let sets: Vec<_> = sets
            .iter()
            .map(|(set, missing)| {
                json!({
                    "provider": set.provider,
                    "set": set.role,
                    "complete": missing.is_empty(),
                    "missing": missing,
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
    for line in table(&rows) {
        ctx.out.line(line)?;
    }
    ctx.out.line("")?;
    for (set, missing) in &sets {
        if missing.is_empty() {
            ctx.out.line(format!("{set} set: complete"))?;
        } else {
            ctx.out.line(format!(
                "{set} set: incomplete, missing {}",
                missing.join(", ")
            ))?;
        }
    }
    Ok(())
}
