//! `cio credential list|ls`: every credential, secrets masked, and the state of each set.

use serde_json::json;

use cio_credential::{Error, Listed, Listing, SetStatus, age_days, now_ms};

use crate::context::Context;
use crate::error::CommandError;
use crate::output::time;

pub fn run(ctx: &mut Context) -> Result<(), CommandError> {
    const ACTION: &str = "List credentials";
    let Listed { entries, damaged } = ctx
        .open(ACTION)?
        .list()
        .map_err(|e| CommandError::library(ACTION, e))?;
    // One line per set that has any credential: complete, or the names it lacks.
    let sets: Vec<SetStatus> = entries
        .iter()
        .map(|e| e.stored())
        .collect::<Listing>()
        .sets();
    let now = now_ms();
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
                    "age_days": age_days(e.updated_ms, now),
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
        let damaged_json: Vec<_> = damaged
            .iter()
            .map(|e| json!({"name": damaged_name(e), "problem": e.to_string(), "hint": e.hint()}))
            .collect();
        ctx.out
            .json(&json!({"credentials": credentials, "sets": sets, "damaged": damaged_json}))?;
        return damaged_failure(ctx, ACTION, damaged);
    }
    if entries.is_empty() && damaged.is_empty() {
        ctx.out.line("No credentials yet. Create the four of a set with 'cio credential create NAME' ('cio credential create --help' lists the names).")?;
        return Ok(());
    }
    let mut rows = vec![
        ["NAME", "PROVIDER", "SET", "VALUE", "UPDATED", "AGE"]
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
            age(e.updated_ms, now),
        ]);
    }
    for e in &damaged {
        rows.push(vec![
            damaged_name(e).to_string(),
            "-".into(),
            "-".into(),
            "(cannot be trusted)".into(),
            "-".into(),
            "-".into(),
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
    damaged_failure(ctx, ACTION, damaged)
}

/// The name a damage error is about.
fn damaged_name(e: &Error) -> &str {
    match e {
        Error::Damaged { name, .. } => name,
        _ => "",
    }
}

/// After the listing: every damaged credential named on stderr, the last as the command's
/// failure (exit 3), so that a script notices; nothing when all is well.
fn damaged_failure(
    ctx: &mut Context,
    action: &str,
    mut damaged: Vec<Error>,
) -> Result<(), CommandError> {
    let Some(last) = damaged.pop() else {
        return Ok(());
    };
    for e in &damaged {
        ctx.out.fail(&format!("{action}: {e}"), &e.hint(), 3, true);
    }
    Err(CommandError::Listed {
        action: action.to_string(),
        source: last,
    })
}

/// How long ago `since_ms` was, in the largest whole unit: `12d`, `5h`, `3m`, `<1m`.
fn age(since_ms: i64, now_ms: i64) -> String {
    let minutes = now_ms.saturating_sub(since_ms).max(0) / 60_000;
    match minutes {
        0 => "<1m".to_string(),
        m if m < 60 => format!("{m}m"),
        m if m < 24 * 60 => format!("{}h", m / 60),
        m => format!("{}d", m / (24 * 60)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_in_the_largest_whole_unit() {
        let min = 60_000;
        assert_eq!(super::age(0, 59_999), "<1m");
        assert_eq!(super::age(0, 59 * min), "59m");
        assert_eq!(super::age(0, 23 * 60 * min), "23h");
        assert_eq!(super::age(0, 100 * 24 * 60 * min), "100d");
        assert_eq!(super::age(10, 0), "<1m");
    }
}
