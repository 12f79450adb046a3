//! Step 9: what the repository holds that restic reads before it backs up.
//!
//! - Snapshots: `restic backup` looks for its parent among all snapshots
//!   (`restic.FindLatestSnapshot`) and stops at the first it cannot load — a file whose
//!   content is not its id's, does not open with the master key, or does not decode. So every
//!   snapshot file is read and opened here, as restic does (a GET each, at most
//!   [`CONNECTIONS`] at once, restic's default for S3), within the set's deadline: what the
//!   deadline leaves unread is said, not guessed. `restic snapshots` and `restore` only warn
//!   about such a file, so for the alternate (restore-only) set it is a warning.
//! - Locks (`restic.Lock`): an exclusive lock makes every other restic command fail ("repository
//!   is already locked exclusively"), stale or not — restic 0.14 never removes a lock by
//!   itself; a stale lock (restic's rule, [`crate::restic::Lock::stale`]) stays until
//!   `restic unlock`. Lock files restic cannot load it ignores, and so does validate.

use bytes::Bytes;
use futures_util::StreamExt;

use super::failure::{Action, Place};
use super::password::{Opened, listed_names, short};
use super::s3::{Listing, S3, S3Failure};
use super::steps::object_key;
use super::{Check, Status, Step};
use crate::catalog::{Role, SetId};
use crate::restic::{self, Lock, ResticError, SnapshotFile};

/// How many files are read at once: restic's default number of S3 connections.
const CONNECTIONS: usize = 5;

/// Each id listed in `folder` (restic skips other names), with its content: `Ok(None)` when
/// listed but not readable as a file.
async fn read_all(
    s3: &S3,
    place: &Place,
    folder: &str,
    listing: &Listing,
) -> Vec<(String, Result<Option<Bytes>, S3Failure>)> {
    let dir = object_key(&place.prefix, folder);
    let ids: Vec<String> = listed_names(listing)
        .into_iter()
        .filter(|n| restic::is_id(n))
        .collect();
    futures_util::stream::iter(ids)
        .map(|id| {
            let key = format!("{dir}/{id}");
            async move {
                let read = s3.get(&key).await;
                (id, read)
            }
        })
        .buffered(CONNECTIONS)
        .collect()
        .await
}

/// The snapshots check: ok with their number, or what stops `restic backup`.
pub(super) async fn snapshots(
    s3: &S3,
    place: &Place,
    folder: &str,
    listing: &Listing,
    opened: &Opened,
    role: Role,
) -> Check {
    let reads = read_all(s3, place, folder, listing).await;
    let total = reads.len();
    let mut damaged: Vec<(String, ResticError)> = Vec::new();
    let mut unread = 0;
    for (id, read) in reads {
        let bytes = match read {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                damaged.push((
                    id,
                    ResticError::Malformed {
                        what: "snapshot",
                        why: "it is listed but cannot be read".into(),
                    },
                ));
                continue;
            }
            Err(S3Failure::Http(_)) if tokio::time::Instant::now() >= s3.deadline() => {
                unread += 1;
                continue;
            }
            Err(f) => return place.check(Step::Summary, Action::Read, &f),
        };
        let loaded = opened
            .master
            .open_unpacked("snapshot", &id, &bytes, opened.config.version)
            .and_then(|plain| SnapshotFile::parse(&plain));
        if let Err(e) = loaded {
            damaged.push((id, e));
        }
    }
    if let Some((id, error)) = damaged.first() {
        let more = match damaged.len() {
            1 => String::new(),
            n => format!(" ({} more cannot be loaded either)", n - 1),
        };
        let path = format!(
            "{}/{}/{id}",
            place.bucket,
            object_key(&place.prefix, folder)
        );
        let detail = format!(
            "restic cannot load snapshot {}{more}: {error}; 'restic backup' reads every snapshot to find its parent and fails on it ('restic snapshots' only warns); restic 0.14 cannot forget a snapshot it cannot load: delete the object '{path}' with an S3 tool (restic 0.16 or later: 'restic repair snapshots --forget')",
            short(id)
        );
        return match role {
            Role::Primary => Check::fail(Step::Summary, "snapshot_damaged", detail),
            Role::Alternate => Check::new(Step::Summary, Status::Warn, "snapshot_damaged", detail),
        };
    }
    if unread > 0 {
        return Check::new(
            Step::Summary,
            Status::Warn,
            "snapshots_unchecked",
            format!(
                "{total} snapshots; {unread} of them could not be read within --timeout, and restic fails on a snapshot it cannot load: validate again with a longer --timeout to check them all"
            ),
        );
    }
    Check::ok(
        Step::Summary,
        match total {
            0 => "no snapshots yet".to_string(),
            1 => "1 snapshot".to_string(),
            n => format!("{n} snapshots"),
        },
    )
}

/// This host's name as Go's `os.Hostname` reads it on Linux.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim_end_matches('\n').to_string())
        .unwrap_or_default()
}

/// Go's `Process.Signal(0)` succeeds: the process exists and may be signalled.
fn alive(pid: i64) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
}

fn age(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} seconds"),
        s if s < 2 * 3600 => format!("{} minutes", s / 60),
        s if s < 2 * 86400 => format!("{} hours", s / 3600),
        s => format!("{} days", s / 86400),
    }
}

/// The lock checks: nothing when no lock is in the way.
pub(super) async fn locks(
    s3: &S3,
    place: &Place,
    folder: &str,
    listing: &Listing,
    opened: &Opened,
    set: SetId,
) -> Vec<Check> {
    let here = hostname();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut found: Vec<(String, Lock, bool)> = Vec::new();
    for (id, read) in read_all(s3, place, folder, listing).await {
        // restic ignores a lock it cannot load.
        let Ok(Some(bytes)) = read else { continue };
        let lock = opened
            .master
            .open_unpacked("lock", &id, &bytes, opened.config.version)
            .and_then(|plain| Lock::parse(&plain));
        if let Ok(lock) = lock {
            let stale = lock.stale(&here, now, alive);
            // A lock read while its restic ran on this host, whose process exited before
            // its PID was looked up, was removed by that restic on its way out: it is read
            // again before it is called stale (a backup finishing during validate is no
            // stale lock).
            let key = format!("{}/{id}", object_key(&place.prefix, folder));
            if stale && !matches!(s3.get(&key).await, Ok(Some(_))) {
                continue;
            }
            found.push((id, lock, stale));
        }
    }
    // Who removes a lock, and with which command: this cluster's own repository through
    // exec with the set's options, another cluster's by its administrators.
    let (unlock, unlock_live) = match set.role {
        Role::Primary => {
            let restic = format!("cio credential exec {} -- restic", set.options());
            (
                format!("remove it with '{restic} unlock'"),
                format!(
                    "if no restic runs there any more, remove it with '{restic} unlock --remove-all' (or '{restic} unlock' once it is 30 minutes old)"
                ),
            )
        }
        Role::Alternate => (
            "the repository is another cluster's: its administrators remove it with 'restic unlock'"
                .to_string(),
            "the repository is another cluster's: if no restic runs there any more, its administrators remove it with 'restic unlock --remove-all'"
                .to_string(),
        ),
    };
    let mut checks = Vec::new();
    let who = |id: &str, lock: &Lock| {
        let since = lock.time.map_or("an unknown time".to_string(), |t| {
            format!("{} ago", age(now - t))
        });
        format!(
            "lock {} by PID {} on host '{}' (user '{}'), made {since}",
            short(id),
            lock.pid,
            lock.hostname,
            lock.username
        )
    };
    if let Some((id, lock, stale)) = found.iter().find(|(_, l, _)| l.exclusive) {
        let what = who(id, lock);
        // `exec --alternate` runs restic's reading commands with --no-lock: an exclusive
        // lock stops no restore there, so it is no failure of the alternate set.
        let reads = format!(
            "restores through 'cio credential exec {} -- restic ...' work (cio runs restic's reading commands there with --no-lock)",
            set.options()
        );
        checks.push(match (set.role, *stale) {
            (Role::Primary, true) => Check::fail(
                Step::Summary,
                "repo_locked",
                format!(
                    "the repository is locked exclusively by a stale {what}: every restic command fails ('repository is already locked exclusively') until it is removed; {unlock}"
                ),
            ),
            (Role::Primary, false) => Check::new(
                Step::Summary,
                Status::Warn,
                "repo_locked",
                format!(
                    "the repository is locked exclusively by {what} (a prune, check or key change): restic backup and snapshots fail until it ends; {unlock_live}"
                ),
            ),
            (Role::Alternate, true) => Check::new(
                Step::Summary,
                Status::Warn,
                "repo_locked",
                format!(
                    "the repository is locked exclusively by a stale {what}: {reads}, but 'restic key list' and the owning cluster's restic commands fail until it is removed; {unlock} (if that cluster is lost: 'cio credential exec {} --allow-write -- restic unlock')",
                    set.options()
                ),
            ),
            (Role::Alternate, false) => Check::new(
                Step::Summary,
                Status::Warn,
                "repo_locked",
                format!(
                    "the repository is locked exclusively by {what} (a prune, check or key change): {reads}, but a prune may remove data a restore started now reads: restore once it ends"
                ),
            ),
        });
    } else if let Some((id, lock, _)) = found.iter().find(|(_, l, stale)| !l.exclusive && *stale) {
        checks.push(Check::new(
            Step::Summary,
            Status::Warn,
            "stale_lock",
            format!(
                "a stale {} stays in the repository: backups work, but restic prune, forget and check fail until it is removed; {unlock}",
                who(id, lock)
            ),
        ));
    }
    checks
}
