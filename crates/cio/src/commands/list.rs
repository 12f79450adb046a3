//! `cio credential list|ls`: every credential, secrets masked, the state of each set, and
//! its last recorded check (`validate --record`).

use serde_json::{Value, json};

use cio_credential::{
    Error, HealthRecord, Listed, Listing, SetId, SetStatus, Status, age_days, now_ms,
};

use crate::context::Context;
use crate::error::CommandError;
use crate::output::{ago, time};

/// The long help's end.
pub const EXAMPLES: &str = "\
Examples:
  Every credential (secrets masked), whether each set is complete, and its last check
    cio credential list

  The names missing from each set, for a script
    cio credential list --json | jq -r '.sets[] | .missing[]'";

pub fn run(ctx: &mut Context) -> Result<(), CommandError> {
    const ACTION: &str = "List credentials";
    let store = ctx.open(ACTION)?;
    let Listed { entries, damaged } = store.list().map_err(|e| CommandError::library(ACTION, e))?;
    let checks = store
        .checks()
        .map_err(|e| CommandError::library(ACTION, e))?;
    ctx.out.warn_log_damage(store.log_damage(), false);
    let check_of = |set: SetId| checks.of(set);
    // One line per set that has any credential: complete, or the names it lacks.
    let listing: Listing = entries.iter().map(|e| e.stored()).collect();
    let sets: Vec<SetStatus> = listing.sets();
    // A record of a set that is listed, unreadable: said (a set no longer listed has no
    // CHECKED to show, and its record is of no one's concern).
    let unreadable = |set: SetId| checks.unreadable.contains(&set);
    for s in sets.iter().filter(|s| unreadable(s.set)) {
        ctx.out.warn(format!(
            "the recorded check of the {} set cannot be read (it was altered below cio, or recorded by another version of cio); run 'cio credential validate --record' to record it again",
            s.set
        ));
    }
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
                    "checked": check_json(check_of(e.name.set()), &listing),
                })
            })
            .collect();
        let sets: Vec<_> = sets
            .iter()
            .map(|s| {
                // A damaged credential is there but untrusted, not missing.
                let (untrusted, missing): (Vec<String>, Vec<String>) = s
                    .missing
                    .iter()
                    .map(ToString::to_string)
                    .partition(|n| damaged.iter().any(|e| damaged_name(e) == n));
                json!({
                    "provider": s.set.provider,
                    "role": s.set.role,
                    "complete": s.is_complete(),
                    "missing": missing,
                    "untrusted": untrusted,
                    "checked": check_json(check_of(s.set), &listing),
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
        [
            "NAME", "PROVIDER", "SET", "VALUE", "UPDATED", "AGE", "CHECKED",
        ]
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
            ago(e.updated_ms, now),
            if unreadable(e.name.set()) {
                "unreadable".to_string()
            } else {
                check_text(check_of(e.name.set()), &listing, now)
            },
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
            "-".into(),
        ]);
    }
    ctx.out.table(&rows)?;
    ctx.out.line("")?;
    for s in &sets {
        if s.is_complete() {
            ctx.out.line(format!("{} set: complete", s.set))?;
        } else {
            // A damaged credential is there, but cannot be trusted: said as such, not as
            // missing (creating it again would not be the fix; purging it first is).
            let (untrusted, missing): (Vec<String>, Vec<String>) = s
                .missing
                .iter()
                .map(ToString::to_string)
                .partition(|n| damaged.iter().any(|e| damaged_name(e) == n));
            let mut said = Vec::new();
            if !missing.is_empty() {
                said.push(format!("missing {}", missing.join(", ")));
            }
            if !untrusted.is_empty() {
                said.push(format!("{} cannot be trusted", untrusted.join(", ")));
            }
            ctx.out
                .line(format!("{} set: incomplete, {}", s.set, said.join("; ")))?;
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

/// The CHECKED column: `ok 12m ago`, `FAIL 3h ago: wrong_password`, `never`; with
/// ` (changed since)` when a credential of the set changed after (or while) it was checked.
fn check_text(check: Option<&HealthRecord>, listing: &Listing, now_ms: i64) -> String {
    let Some(check) = check else {
        return "never".into();
    };
    let result = &check.result;
    let word = match result.status {
        Status::Fail => "FAIL",
        Status::Warn => "warn",
        Status::Ok | Status::Skipped => "ok",
    };
    let when = ago(result.checked_at_ms, now_ms);
    let text = match (&result.code, result.status) {
        (Some(code), Status::Fail | Status::Warn) => format!("{word} {when} ago: {code}"),
        _ => format!("{word} {when} ago"),
    };
    if check.is_current(listing) == Some(false) {
        format!("{text} (changed since)")
    } else {
        text
    }
}

/// A set's last recorded check for `--json`; `null` when never checked.
fn check_json(check: Option<&HealthRecord>, listing: &Listing) -> Value {
    check.map_or(Value::Null, |c| {
        json!({
            "status": c.result.status,
            "time": time(c.result.checked_at_ms),
            "step": c.result.step,
            "code": c.result.code,
            "duration_ms": c.result.duration_ms,
            // Whether the check was of the values stored now (null: not known, a record
            // from an earlier cio).
            "current": c.is_current(listing),
        })
    })
}
