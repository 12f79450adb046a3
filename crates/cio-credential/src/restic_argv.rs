//! Whether a restic command line writes to (or changes) the repository it runs against.
//!
//! `exec --alternate` hands restic another cluster's repository: restoring from it is the
//! point, writing into it is not (a backup, a prune or a new key there changes the other
//! cluster's backups). [`restic_access`] reads a command line the way restic 0.14 does (cobra and
//! pflag: flags anywhere, `--flag value`, `--flag=value`, `-r value`, `-rvalue`, combined
//! short flags, `--` ends the flags) and says which restic command it runs.
//!
//! Rules:
//! - only a program named `restic` is read; any other program (a shell, a script) is
//!   [`RepositoryAccess::NotRestic`]: cio cannot see what it runs;
//! - restic's global flags are skipped with their values (`-r`, `-o`, `--cacert`, ...,
//!   from restic 0.14's `cmd/restic/global.go`); a command's own flags never take the place
//!   of the command, because the command is the first word that is not a flag;
//! - `--help`/`-h` anywhere only prints help: it reads;
//! - plain `unlock` writes: it deletes the locks restic deems stale, judged by this host's
//!   clock and host name, which another cluster's live locks can fail;
//! - a command cio does not know is treated as a write (it may be a newer restic's).
//!
//! A pure function: no I/O.

use std::ffi::OsString;
use std::path::Path;

/// What a command line does to the repository restic runs against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepositoryAccess {
    /// It only reads (or touches nothing of the repository).
    Reads,
    /// It writes to or changes the repository; `command` is restic's command (e.g. `key add`;
    /// never text from the command line, which could hold a secret) and `why` says what it
    /// would change.
    Writes {
        command: &'static str,
        why: &'static str,
    },
    /// The program is not restic: cio cannot tell.
    NotRestic,
}

/// restic 0.14's global flags that take a value (long name, short letter).
const GLOBAL_WITH_VALUE: &[(&str, Option<char>)] = &[
    ("repo", Some('r')),
    ("repository-file", None),
    ("password-file", Some('p')),
    ("key-hint", None),
    ("password-command", None),
    ("cache-dir", None),
    ("cacert", None),
    ("tls-client-cert", None),
    ("compression", None),
    ("limit-upload", None),
    ("limit-download", None),
    ("pack-size", None),
    ("option", Some('o')),
];

/// Short flags of restic 0.14 (global and per command) that take a value: after one of
/// these letters in a group (`-vr REPO`), the rest of the group or the next word is its value.
const SHORT_WITH_VALUE: &[char] = &['r', 'p', 'o'];

/// Flags of the `copy` command that name its destination instead of the repository restic
/// runs against (restic 0.14's deprecated `--repo2` / `--repository-file2`).
const COPY_DESTINATION: &[&str] = &["repo2", "repository-file2"];

/// Flags that name the repository restic runs against.
const REPOSITORY: &[&str] = &["repo", "repository-file"];

/// The words of a command line: the non-flag words in order, and the long flags given
/// (names without `--`, without their values).
struct Words {
    positional: Vec<String>,
    long_flags: Vec<String>,
    help: bool,
}

fn takes_value_long(name: &str) -> bool {
    GLOBAL_WITH_VALUE.iter().any(|(long, _)| *long == name)
        || COPY_DESTINATION.contains(&name)
        || name.starts_with("from-")
}

fn split(args: &[String]) -> Words {
    let mut words = Words {
        positional: Vec::new(),
        long_flags: Vec::new(),
        help: false,
    };
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            words.positional.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline_value) = match long.split_once('=') {
                Some((name, _)) => (name, true),
                None => (long, false),
            };
            if name == "help" {
                words.help = true;
            }
            if !inline_value && takes_value_long(name) {
                i += 1;
            }
            words.long_flags.push(name.to_string());
            continue;
        }
        if let Some(group) = arg.strip_prefix('-').filter(|g| !g.is_empty()) {
            for (at, letter) in group.char_indices() {
                if letter == 'h' {
                    words.help = true;
                }
                if SHORT_WITH_VALUE.contains(&letter) {
                    if let Some((long, _)) = GLOBAL_WITH_VALUE
                        .iter()
                        .find(|(_, short)| *short == Some(letter))
                    {
                        words.long_flags.push((*long).to_string());
                    }
                    // The value is the rest of the group (`-rREPO`, `-r=REPO`) or the next
                    // word.
                    if at + letter.len_utf8() == group.len() {
                        i += 1;
                    }
                    break;
                }
            }
            continue;
        }
        words.positional.push(arg.clone());
    }
    words
}

/// Whether `argv` (the program and its arguments, as given to `exec`) writes to or changes
/// the repository restic runs against.
pub fn restic_access(argv: &[OsString]) -> RepositoryAccess {
    let Some((program, rest)) = argv.split_first() else {
        return RepositoryAccess::NotRestic;
    };
    if Path::new(program).file_name() != Some("restic".as_ref()) {
        return RepositoryAccess::NotRestic;
    }
    let args: Vec<String> = rest
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let words = split(&args);
    if words.help {
        return RepositoryAccess::Reads;
    }
    let mut positional = words.positional.iter().map(String::as_str);
    let Some(command) = positional.next() else {
        return RepositoryAccess::Reads;
    };
    let has = |flag: &str| words.long_flags.iter().any(|f| f == flag);
    let writes = |command: &'static str, why| RepositoryAccess::Writes { command, why };
    match command {
        "cache" | "cat" | "check" | "diff" | "dump" | "find" | "generate" | "help" | "list"
        | "ls" | "mount" | "restore" | "self-update" | "snapshots" | "stats" | "version"
        | "options" => RepositoryAccess::Reads,
        "init" => writes("init", "it creates a repository"),
        "backup" => writes("backup", "it adds a snapshot and data"),
        "forget" => writes(
            "forget",
            "it removes snapshots (even with --dry-run it takes the repository's exclusive lock)",
        ),
        "prune" => writes("prune", "it deletes data"),
        "tag" => writes("tag", "it rewrites snapshots"),
        "recover" => writes("recover", "it adds a snapshot"),
        "rebuild-index" => writes("rebuild-index", "it rewrites the index"),
        "repair" => writes(
            "repair",
            "it rewrites the repository's index, snapshots or data",
        ),
        "migrate" => match positional.next() {
            Some(_) => writes("migrate", "it changes the repository's format"),
            None => RepositoryAccess::Reads,
        },
        "key" => match positional.next() {
            Some("list") | None => RepositoryAccess::Reads,
            Some("add") => writes("key add", "it changes the repository's keys"),
            Some("remove") => writes("key remove", "it changes the repository's keys"),
            Some("passwd") => writes("key passwd", "it changes the repository's keys"),
            Some(_) => writes("key", "it may change the repository's keys"),
        },
        "unlock" if has("remove-all") => writes(
            "unlock --remove-all",
            "it removes every lock, also those of the cluster that owns the repository",
        ),
        // restic 0.14 `RemoveStaleLocks` deletes each lock it deems stale: older than 30
        // minutes by this host's clock, or made on a host of this host's name by a process
        // this host does not run. Across clusters neither holds (clocks differ, node names
        // repeat), so a live lock of the owner's prune can go. Reading needs no unlock:
        // `restic --no-lock restore`.
        "unlock" => writes(
            "unlock",
            "it deletes the locks restic judges stale by this host's clock and name, which can be live locks of the owning cluster (restic --no-lock reads past a stale lock)",
        ),
        "copy" if COPY_DESTINATION.iter().any(|f| has(f)) || REPOSITORY.iter().any(|f| has(f)) => {
            // The destination is named on the command line: the repository in the
            // environment (the alternate one) is not written.
            RepositoryAccess::Reads
        }
        "copy" => writes("copy", "it copies snapshots into the repository"),
        _ => writes(
            "<unknown command>",
            "cio does not know this restic command, so it may write",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &str) -> RepositoryAccess {
        let argv: Vec<OsString> = line.split_whitespace().map(OsString::from).collect();
        restic_access(&argv)
    }

    fn writes(line: &str) -> Option<&'static str> {
        match run(line) {
            RepositoryAccess::Writes { command, .. } => Some(command),
            RepositoryAccess::Reads => None,
            RepositoryAccess::NotRestic => panic!("{line}: not restic"),
        }
    }

    #[test]
    fn reading_commands_read() {
        for line in [
            "restic",
            "restic snapshots",
            "restic --no-cache snapshots --json",
            "restic restore latest --target /mnt/r",
            "restic -r s3:http://h/b --no-cache restore latest --target /t",
            "restic -o s3.region=eu-west-1 ls latest",
            "restic --option=s3.region=x check --read-data",
            "restic -vv stats",
            "restic --verbose=2 dump latest /etc/hosts",
            "restic key list",
            "restic key",
            "restic migrate",
            "restic cat config",
            "restic diff a b",
            "restic mount /mnt",
            "restic version",
            "restic backup --help",
            "restic prune -h",
            "restic --cacert /ca.pem --cacert /b.pem find x",
            "restic -p /pw --password-command cmd --key-hint k snapshots",
            "restic --cache-dir /c --tls-client-cert /c.pem --limit-download 10 ls latest",
            "restic copy --repo2 s3:http://h/other",
            "restic -r /dest copy --from-repo s3:http://h/alt",
            "/usr/bin/restic snapshots",
        ] {
            assert_eq!(writes(line), None, "{line}");
        }
    }

    #[test]
    fn writing_commands_write() {
        for (line, command) in [
            ("restic init", "init"),
            ("restic backup /data", "backup"),
            ("restic --no-cache backup /data", "backup"),
            ("restic -r s3:http://h/b backup /data", "backup"),
            ("restic -rs3:http://h/b backup /data", "backup"),
            ("restic -r=s3:http://h/b backup /data", "backup"),
            ("restic -o s3.region=eu backup /data", "backup"),
            ("restic -qvo s3.region=eu backup /data", "backup"),
            ("restic --repo s3:http://h/b forget --keep-last 3", "forget"),
            ("restic forget --dry-run --keep-last 3", "forget"),
            ("restic prune", "prune"),
            ("restic --password-file /pw prune --max-unused 5%", "prune"),
            ("restic key add", "key add"),
            ("restic key remove abc", "key remove"),
            ("restic key passwd", "key passwd"),
            ("restic --json key passwd", "key passwd"),
            ("restic tag --add x latest", "tag"),
            ("restic unlock --remove-all", "unlock --remove-all"),
            ("restic unlock", "unlock"),
            ("restic --no-lock unlock", "unlock"),
            ("restic repair index", "repair"),
            ("restic migrate upgrade_repo_v2", "migrate"),
            ("restic rebuild-index", "rebuild-index"),
            ("restic recover", "recover"),
            ("restic copy --from-repo s3:http://h/other", "copy"),
            ("restic copy", "copy"),
            ("restic frobnicate", "<unknown command>"),
            ("restic --verbose backup /x", "backup"),
            ("restic --cacert /ca.pem backup /x", "backup"),
            ("restic --limit-upload 100 backup /x", "backup"),
            ("restic --pack-size 64 backup /x", "backup"),
            ("restic --compression max backup /x", "backup"),
        ] {
            assert_eq!(writes(line), Some(command), "{line}");
        }
    }

    #[test]
    fn a_flag_value_is_not_the_command() {
        // The value of a global flag that looks like a command is skipped with its flag.
        assert_eq!(writes("restic -r snapshots backup /x"), Some("backup"));
        assert_eq!(writes("restic --repo backup snapshots"), None);
        assert_eq!(writes("restic -o backup snapshots"), None);
    }

    #[test]
    fn other_programs_are_not_read() {
        assert_eq!(run("sh -c restic-backup"), RepositoryAccess::NotRestic);
        assert_eq!(run("restic-wrapper backup"), RepositoryAccess::NotRestic);
        assert_eq!(restic_access(&[]), RepositoryAccess::NotRestic);
    }

    #[test]
    fn words_after_double_dash_are_arguments() {
        assert_eq!(writes("restic -- backup /x"), Some("backup"));
        assert_eq!(writes("restic restore latest --target /t -- -h"), None);
    }
}
