//! `cio credential log [NAME] [--since DURATION] [--verify]`: who changed which credential,
//! when, on which node; and whether the log is whole.

use std::time::Duration;

use clap::Args;
use serde::Serialize;

use cio_credential::{Acknowledged, Broken, LogEntry, LogReading, Problem, now_ms};

use crate::context::{Context, parse_name};
use crate::error::{CommandError, LogFault};
use crate::output::time;

#[derive(Args)]
pub struct LogArgs {
    /// Only the changes of this credential
    #[arg(value_name = "CREDENTIALNAME", value_parser = crate::cli::CredentialNames::ANY, hide_possible_values = true)]
    pub name: Option<String>,
    /// Only the changes of the last DURATION, e.g. 90m, 12h, 7d, 2w
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub since: Option<Duration>,
    /// Check that no entry was edited, deleted or replaced; exit 1 naming the first that was
    #[arg(long)]
    pub verify: bool,
    /// Accept the log's breaks as they are now (once a backup shows what was changed): an
    /// entry records it, and later checks report only what changes after it
    #[arg(long, conflicts_with_all = ["verify", "name", "since"])]
    pub acknowledge: bool,
}

/// The long help's end.
pub const EXAMPLES: &str = "\
Every change (create, update, remove, restore, purge, migrate) is logged in the store with
it, so a cluster store shares one log. Entries are numbered, chained and authenticated
under the store key. Read-only commands are not logged.

Examples:
  cio credential log                               every change
  cio credential log cio_aws_secret_key --since 7d that credential's changes of the last week
  cio credential log --verify                      is the log whole? (exit 1 names the break)
  cio credential log --acknowledge                 accept its breaks as they are now";

/// A duration as humantime reads it (`90m`, `12h`, `7d`, `2w`, `1h 30m`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|_| "not a duration such as 12h or 7d".to_string())
}

pub fn run(ctx: &mut Context, args: LogArgs) -> Result<(), CommandError> {
    if args.acknowledge {
        return acknowledge(ctx);
    }
    let action = if args.verify {
        "Verify change log"
    } else {
        "Show change log"
    };
    let name = args
        .name
        .as_deref()
        .map(|n| parse_name(action, "log", crate::cli::CredentialNames::ANY, n))
        .transpose()?;
    let store = ctx.open(action)?;
    let reading = store
        .change_log()
        .map_err(|e| CommandError::library(action, e))?;
    // The log can be whole while the credentials beside it were changed or put back (the
    // log's own checks see only what the manifest says): --verify also reads them as every
    // other command does. A store refused whole fails here, as it fails every command.
    let damaged: Vec<String> = if args.verify && reading.broken.is_none() {
        store
            .list()
            .map_err(|e| CommandError::library(action, e))?
            .damaged
            .iter()
            .map(ToString::to_string)
            .collect()
    } else {
        Vec::new()
    };
    let since_ms = args
        .since
        .map(|d| now_ms().saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
    let shown: Vec<&LogEntry> = reading
        .entries
        .iter()
        .filter(|e| {
            name.is_none_or(|n| {
                let n = n.to_string();
                e.name.as_deref() == Some(&n) || e.names.contains(&n)
            })
        })
        .filter(|e| since_ms.is_none_or(|since| e.at_ms >= since))
        .collect();
    // The first break, described, and every other after it.
    let broken = reading.broken.as_ref().map(|first| {
        let mut said = describe(first, &reading);
        for other in reading.breaks.iter().skip(1) {
            said.push_str(&format!("; also {other}"));
        }
        said
    });
    if ctx.out.json {
        ctx.out.json_of(&LogJson {
            entries: shown.iter().map(|e| EntryJson::of(e)).collect(),
            verified: reading.broken.is_none() && damaged.is_empty(),
            acknowledged_by: reading.acknowledged,
            broken: reading.broken.as_ref().map(|b| BrokenJson {
                seq: b.seq,
                problem: b.problem,
                message: describe(b, &reading),
            }),
            breaks: reading
                .breaks
                .iter()
                .map(|b| BrokenJson {
                    seq: b.seq,
                    problem: b.problem,
                    message: describe(b, &reading),
                })
                .collect(),
            damaged: &damaged,
        })?;
    } else if args.verify {
        if reading.broken.is_none() && damaged.is_empty() {
            ctx.out.succeed(
                "Verify",
                format!(
                    "change log whole: {}, chained and authenticated under the store key{}",
                    match reading.entries.len() {
                        1 => "1 entry".to_string(),
                        n => format!("{n} entries"),
                    },
                    reading.acknowledged.map_or(String::new(), |seq| format!(
                        " (entry {seq} accepted its breaks before it: 'cio credential log' shows that entry)"
                    ))
                ),
            )?;
        }
    } else {
        render(ctx, &shown, &reading)?;
    }
    if let Some(first) = damaged.first() {
        return Err(CommandError::LogBroken {
            message: format!(
                "the change log is whole, but {} of the credentials beside it {} not what the log and the manifest record: {first}",
                damaged.len(),
                if damaged.len() == 1 { "is" } else { "are" }
            ),
            broken: LogFault::CredentialsDamaged,
        });
    }
    match broken {
        Some(message) if args.verify => Err(CommandError::LogBroken {
            message,
            broken: match reading.broken.as_ref() {
                Some(b) if b.problem == Problem::CredentialsOlder => LogFault::CredentialsOlder,
                Some(b) if b.problem == Problem::Unanchored => LogFault::Unanchored,
                Some(b) if b.problem == Problem::UnanchoredGone => LogFault::UnanchoredGone,
                Some(b) if b.may_hide_a_rollback() => LogFault::MayHideRollback,
                _ => LogFault::Entries,
            },
        }),
        Some(message) => {
            ctx.out.warn(format!(
                "the change log is damaged: {message}; run 'cio credential log --verify'"
            ));
            Ok(())
        }
        None => Ok(()),
    }
}

/// The break, and for credentials older than the log, the first change they lack as the log
/// records it (what the credentials and the log disagree on).
fn describe(broken: &Broken, reading: &LogReading) -> String {
    let first_lacking = reading
        .entries
        .iter()
        .find(|e| e.seq == broken.seq)
        .filter(|_| broken.problem == Problem::CredentialsOlder);
    match first_lacking {
        Some(e) => {
            let what = match (&e.name, e.version) {
                (Some(name), Some(version)) => format!("{} of {name} version {version}", e.command),
                (Some(name), None) => format!("{} of {name}", e.command),
                _ => e.command.clone(),
            };
            format!(
                "{broken}; the first change they lack: entry {} ({what}, {})",
                e.seq,
                time(e.at_ms)
            )
        }
        None => broken.to_string(),
    }
}

fn user(e: &LogEntry) -> String {
    match &e.actor.sudo_user {
        Some(sudo) => format!("{} (uid {}, sudo {sudo})", e.actor.user, e.actor.uid),
        None => format!("{} (uid {})", e.actor.user, e.actor.uid),
    }
}

fn render(
    ctx: &mut Context,
    shown: &[&LogEntry],
    reading: &LogReading,
) -> Result<(), CommandError> {
    // Never "nothing logged" for a log whose entries were deleted (the warning says which).
    let none = match (reading.entries.is_empty(), &reading.broken) {
        (true, Some(_)) => Some("No entry of the change log can be shown: it is damaged."),
        (true, None) => Some("No changes logged yet."),
        (false, _) if shown.is_empty() => {
            Some("No logged change matches the credential or the --since given.")
        }
        (false, _) => None,
    };
    if let Some(none) = none {
        ctx.out.line(none)?;
        return Ok(());
    }
    let mut rows = vec![
        [
            "#",
            "TIME",
            "USER",
            "HOST",
            "COMMAND",
            "CREDENTIAL",
            "VERSION",
            "OUTCOME",
        ]
        .map(str::to_string)
        .to_vec(),
    ];
    for e in shown {
        let mut outcome = e.outcome.clone();
        if let Some(detail) = &e.detail {
            outcome = format!("{outcome} ({detail})");
        }
        rows.push(vec![
            e.seq.to_string(),
            time(e.at_ms),
            user(e),
            e.actor.host.clone(),
            e.command.clone(),
            if e.names.is_empty() {
                e.name.clone().unwrap_or_else(|| "-".into())
            } else {
                e.names.join(",")
            },
            e.version.map_or("-".into(), |v| v.to_string()),
            outcome,
        ]);
    }
    Ok(ctx.out.table(&rows)?)
}

/// `log --acknowledge`: accepts the log's breaks as they are now.
fn acknowledge(ctx: &mut Context) -> Result<(), CommandError> {
    const ACTION: &str = "Acknowledge change log";
    let store = ctx.open(ACTION)?;
    let done = store
        .acknowledge_log()
        .map_err(|e| CommandError::library(ACTION, e))?;
    // An entry written outside cio that is gone: the log can no longer show a rollback it
    // may have hidden, and the administrator is told so plainly, text or JSON.
    let unseen = matches!(&done, Acknowledged::Accepted { breaks, .. }
        if breaks.iter().any(|b| b.problem == Problem::UnanchoredGone));
    if unseen {
        ctx.out.warn(ROLLBACK_UNSEEN);
    }
    let (by, breaks, since) = match &done {
        Acknowledged::Whole { since } => (None, Vec::new(), *since),
        Acknowledged::Accepted { seq, breaks } => (
            Some(*seq),
            breaks.iter().map(ToString::to_string).collect::<Vec<_>>(),
            None,
        ),
    };
    if ctx.out.json {
        ctx.out.json_of(&serde_json::json!({
            "acknowledged_by": by,
            "breaks": breaks,
        }))?;
    } else {
        let said = match (by, since) {
            (Some(seq), _) => format!(
                "entry {seq} accepts the log as it is now, with {}: {}; 'cio credential log --verify' checks what changes after it",
                match breaks.len() {
                    1 => "its break".to_string(),
                    n => format!("its {n} breaks"),
                },
                breaks.join("; ")
            ),
            (None, Some(since)) => format!(
                "the change log has no break after entry {since}, which accepted those before it: nothing to acknowledge"
            ),
            (None, None) => "the change log is whole: nothing to acknowledge".to_string(),
        };
        ctx.out.succeed("Acknowledge", said)?;
    }
    Ok(())
}

/// What `log --acknowledge` says when it accepted an entry written outside cio that is gone
/// ([`Problem::UnanchoredGone`]).
const ROLLBACK_UNSEEN: &str = "an entry written outside cio stood where entries showing credentials put back from an earlier copy would have been, and it is gone: an earlier copy of the credentials put back then would hide behind this acknowledgement, and the log can no longer show it; check that every credential holds the value it should ('cio credential validate' checks each set against its repository; a backup of credentials.db or of the etcd prefix shows earlier values)";

/// `log --json` (docs/JSON.md).
#[derive(Serialize)]
struct LogJson<'a> {
    entries: Vec<EntryJson<'a>>,
    verified: bool,
    /// Every break, `broken` first.
    breaks: Vec<BrokenJson>,
    /// The entry that accepted the breaks before it (`log --acknowledge`), if one holds.
    acknowledged_by: Option<u64>,
    broken: Option<BrokenJson>,
    /// With `--verify`: each credential that does not match the log and manifest, why.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    damaged: &'a [String],
}

#[derive(Serialize)]
struct BrokenJson {
    seq: u64,
    problem: cio_credential::Problem,
    message: String,
}

#[derive(Serialize)]
struct EntryJson<'a> {
    seq: u64,
    time: String,
    uid: u32,
    user: &'a str,
    sudo_user: Option<&'a str>,
    host: &'a str,
    command: &'a str,
    name: Option<&'a str>,
    /// Every credential of a change of several names (empty for one name).
    names: &'a [String],
    version: Option<u64>,
    outcome: &'a str,
    detail: Option<&'a str>,
}

impl EntryJson<'_> {
    fn of(e: &LogEntry) -> EntryJson<'_> {
        EntryJson {
            seq: e.seq,
            time: time(e.at_ms),
            uid: e.actor.uid,
            user: &e.actor.user,
            sudo_user: e.actor.sudo_user.as_deref(),
            host: &e.actor.host,
            command: &e.command,
            name: e.name.as_deref(),
            names: &e.names,
            version: e.version,
            outcome: &e.outcome,
            detail: e.detail.as_deref(),
        }
    }
}
