//! Whether a command line `exec` runs writes to (or changes) the repository restic runs against.
//!
//! `exec --alternate` hands restic another cluster's repository: restoring from it is the
//! point, writing into it is not (a backup, a prune or a new key there changes the other
//! cluster's backups). [`restic_access`] finds the restic a command line runs and reads its
//! arguments the way restic 0.14 does (cobra and pflag: flags anywhere, `--flag value`,
//! `--flag=value`, `-r value`, `-rvalue`, combined short flags, `--` ends the flags) to say
//! which restic command it runs.
//!
//! Rules:
//! - restic is the program whose name is `restic` or a release's versioned file name
//!   (`restic_0.16.4_linux_amd64`), or whose file (a link followed to its end) is so named or
//!   is the very file (device and inode) of the restic on cio's `PATH`;
//!   a program is found as `execvp` finds it: a word with a `/` from the current folder,
//!   else through `PATH` (`/bin:/usr/bin` when unset, an empty entry is the current folder);
//! - the everyday programs that run their operand as a command are seen through, nested or
//!   not: GNU coreutils' `env`, `nice`, `timeout`, `nohup` and `stdbuf`, util-linux's
//!   `ionice`, `chrt`, `taskset`, `setsid` and `flock` (`Wrapper`), known by their name or
//!   their file's. Each one's options are read as its glibc `getopt_long` reads them
//!   (options up to the first operand, `--`, groups, values attached or in the next word,
//!   unique long prefixes), with the options of coreutils 9.1 (Debian 12) up to its current
//!   sources and of util-linux 2.38.1 up to its current sources together, so an option's
//!   value is never taken for the program. What `env` changes is followed: `-i`, `-`,
//!   `-u PATH` and `PATH=...` change the search, `-C` the folder;
//! - where versions of a wrapper disagree on what runs, the reading that runs a command wins
//!   (`chrt`/`taskset` `-p` is read as absent: util-linux 2.38 runs the command when the PID
//!   is 0; `ionice -p` likewise); a line the versions run differently (`chrt +5 CMD`), an
//!   option cio does not know, a missing value, or an option cio cannot follow
//!   (`env -S STRING`, `env --env0-from FILE`) is [`RepositoryAccess::Unseen`] with
//!   [`UNREADABLE_WRAPPER`]: what it runs may be restic, and refusing costs the user one
//!   `--allow-write` where letting it through would let any write through;
//! - any other program (a shell, a script, `sudo`, `xargs`, `systemd-run`, a copy of a
//!   wrapper under another name) is [`RepositoryAccess::NotRestic`]: cio cannot see what it
//!   runs. Except, a safety net, for the words of its line (and of `flock FILE -c`'s): a word
//!   that is restic followed by a known writing command is that write (`sudo -E restic
//!   backup`, `systemd-run -E RESTIC_PASSWORD ... restic backup`, `strace restic backup`); a
//!   word that is restic followed by no command cio knows (nothing, only options, `key`
//!   alone, a placeholder: `xargs restic` with `backup` on its input, `xargs -a FILE restic`,
//!   `xargs -I{} restic {}`, `parallel restic ::: backup`), or a word that is a command line
//!   naming restic (`sh -c "restic backup"`, `su -c`, `watch "restic ..."`, `ssh HOST
//!   "restic ..."`), is [`RepositoryAccess::Unseen`]: restic's command comes from
//!   elsewhere. A word restic followed by a reading command gets `--no-lock` (see
//!   [`without_lock`]). The price: a line where `restic` is another program's word (`grep
//!   restic log`) is refused too, and costs one `--allow-write`;
//! - out of reach: a copy of restic under a name of another kind (another file), a script
//!   that runs restic (a file, or the commands `sh` or `parallel` read from their input:
//!   no word of the line names restic), and a shell line that names restic only through expansion
//!   (`sh -c '$0 backup' restic` aside, where the word restic has no command after it);
//! - restic's global flags are skipped with their values (`-r`, `-o`, `--cacert`, ...,
//!   from restic 0.14's `cmd/restic/global.go`); a command's own flags never take the place
//!   of the command, because the command is the first word that is not a flag;
//! - `--help`/`-h` anywhere only prints help: it reads;
//! - `key list` and `migrate` without a migration write: restic 0.14 writes a lock file for
//!   them (and deletes it) whatever `--no-lock` says;
//! - plain `unlock` writes: it deletes the locks restic deems stale, judged by this host's
//!   clock and host name, which another cluster's live locks can fail;
//! - a command cio does not know is treated as a write (it may be a newer restic's).
//!
//! Reading the line is pure; finding a program reads the file system (`stat`, `realpath`).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

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
    /// restic may run, but cio cannot see the command it runs, so it may write; `why` says
    /// what hides it.
    Unseen { why: &'static str },
    /// The program is not restic: cio cannot tell.
    NotRestic,
}

/// The `command` of a restic command cio does not know.
const UNKNOWN_COMMAND: &str = "<unknown command>";

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

/// restic 0.14's global flags that take no value (cobra gives them a default when bare):
/// the only flags that do not take the next word while cobra looks for the command.
const GLOBAL_SWITCHES: &[(&str, Option<char>)] = &[
    ("quiet", Some('q')),
    ("verbose", Some('v')),
    ("no-lock", None),
    ("json", None),
    ("no-cache", None),
    ("insecure-tls", None),
    ("cleanup-cache", None),
    ("help", Some('h')),
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
        // Before the command, cobra (restic's command line) takes every bare flag but the
        // global switches to hold the next word, whatever the flag: `restic -x snapshots
        // backup d` runs backup (its own -x then reads as a switch, snapshots as a path).
        let before_command = words.positional.is_empty();
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
            let switch = GLOBAL_SWITCHES.iter().any(|(long, _)| *long == name);
            if !inline_value && (takes_value_long(name) || (before_command && !switch)) {
                i += 1;
            }
            words.long_flags.push(name.to_string());
            continue;
        }
        if let Some(group) = arg.strip_prefix('-').filter(|g| !g.is_empty()) {
            let mut letters = group.chars();
            if let (Some(letter), None) = (letters.next(), letters.next())
                && before_command
                && !GLOBAL_SWITCHES
                    .iter()
                    .any(|(_, short)| *short == Some(letter))
                && !SHORT_WITH_VALUE.contains(&letter)
            {
                // A lone `-X` cobra does not know as a switch: it holds the next word.
                i += 1;
                continue;
            }
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

/// Why a wrapper whose options cio cannot read hides the command (see the module's rules).
const UNREADABLE_WRAPPER: &str = "a program on the line runs a command it takes in a way cio does not read (env -S or --env0-from, or an option cio does not know)";

/// Why a word naming restic behind a program cio does not read hides restic's command.
const COMMAND_ELSEWHERE: &str = "a word on the line names restic, but what follows it is no restic command cio knows (nothing, only options, or a placeholder), so the command may come from elsewhere (xargs reads it from its input or a file, parallel from its arguments)";

/// Why a word holding a command line that names restic hides restic's command.
const SHELL_LINE: &str = "a word on the line is a command line that names restic (sh -c, su -c, watch, ssh, ...), and cio does not read shell lines";

/// Whether `argv` (the program and its arguments, as given to `exec`) writes to or changes
/// the repository restic runs against. Programs are found through this process's `PATH`,
/// from its current folder.
pub fn restic_access(argv: &[OsString]) -> RepositoryAccess {
    let host = Host::new(
        std::env::var_os("PATH"),
        std::env::current_dir().unwrap_or_default(),
    );
    classify(argv, &host)
}

/// The glibc default search path of `execvp` when `PATH` is not set (`_CS_PATH`).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// Where programs are found: the search path and the current folder, as a wrapper (`env`)
/// may change them before it runs its command.
#[derive(Clone)]
struct Place {
    path: Option<OsString>,
    cwd: PathBuf,
}

/// The host cio runs on: where it starts finding programs, and which file its restic is.
struct Host {
    start: Place,
    /// Device and inode of the restic found through `PATH`.
    restic: Option<(u64, u64)>,
}

impl Host {
    fn new(path: Option<OsString>, cwd: PathBuf) -> Host {
        let start = Place { path, cwd };
        let restic = find(OsStr::new("restic"), &start)
            .and_then(|file| std::fs::metadata(file).ok())
            .map(|meta| (meta.dev(), meta.ino()));
        Host { start, restic }
    }

    fn is_restic(&self, file: &Path) -> bool {
        self.restic.is_some_and(|restic| {
            std::fs::metadata(file).is_ok_and(|meta| (meta.dev(), meta.ino()) == restic)
        })
    }
}

/// The file `execvp` would run for `program`, every link followed; `None` when there is none.
fn find(program: &OsStr, place: &Place) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.as_bytes().contains(&b'/') {
        return executable(&place.cwd.join(program));
    }
    let path = place
        .path
        .as_deref()
        .unwrap_or_else(|| OsStr::new(DEFAULT_PATH));
    path.as_bytes().split(|byte| *byte == b':').find_map(|dir| {
        let dir = if dir.is_empty() { b"." } else { dir };
        executable(&place.cwd.join(OsStr::from_bytes(dir)).join(program))
    })
}

fn executable(file: &Path) -> Option<PathBuf> {
    let meta = std::fs::metadata(file).ok()?;
    if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
        std::fs::canonicalize(file).ok()
    } else {
        None
    }
}

/// Whether a program's file name is restic's: `restic`, or a copy named for its version as
/// restic's releases are (`restic_0.16.4_linux_amd64`, `restic-0.17`, `restic-v0.14.0`): a
/// separator (`_`, `-`, `.`) then a digit, or `v` and a digit. A name that goes on with a
/// word (`restic-wrapper`, `restic-exporter`) is another program.
fn is_restic_name(name: &OsStr) -> bool {
    let Some(rest) = name.as_bytes().strip_prefix(b"restic") else {
        return false;
    };
    match rest {
        [] => true,
        [b'_' | b'-' | b'.', version @ ..] => {
            let version = version.strip_prefix(b"v").unwrap_or(version);
            version.first().is_some_and(u8::is_ascii_digit)
        }
        _ => false,
    }
}

/// What a program word is.
enum Program {
    Restic,
    Wrapper(Wrapper),
    Other,
}

fn identify(word: &OsStr, place: &Place, host: &Host) -> Program {
    let file = find(word, place);
    let names = [
        Path::new(word).file_name(),
        file.as_deref().and_then(Path::file_name),
    ];
    if names.into_iter().flatten().any(is_restic_name)
        || file.as_deref().is_some_and(|file| host.is_restic(file))
    {
        return Program::Restic;
    }
    names
        .into_iter()
        .flatten()
        .find_map(Wrapper::named)
        .map_or(Program::Other, Program::Wrapper)
}

fn classify(argv: &[OsString], host: &Host) -> RepositoryAccess {
    match locate(argv, host) {
        Located::Restic(at) => restic_command(&argv[at + 1..]),
        Located::Other(at, place) => behind_other(&argv[at + 1..], &place, host).0,
        Located::Nothing => RepositoryAccess::Reads,
        Located::Empty => RepositoryAccess::NotRestic,
        Located::Unreadable => RepositoryAccess::Unseen {
            why: UNREADABLE_WRAPPER,
        },
    }
}

/// Where a command line's program is, the wrappers cio reads passed over.
enum Located {
    /// restic, at this index of the line.
    Restic(usize),
    /// Another program (or a wrapper that runs a one-word shell command, `flock FILE -c
    /// "..."`), at this index, found from this place.
    Other(usize, Place),
    /// A wrapper that runs no command.
    Nothing,
    /// A wrapper whose options cio cannot read.
    Unreadable,
    /// No program at all.
    Empty,
}

fn locate(argv: &[OsString], host: &Host) -> Located {
    let mut place = host.start.clone();
    let mut at = 0;
    loop {
        let Some((program, args)) = argv.get(at..).and_then(<[OsString]>::split_first) else {
            return Located::Empty;
        };
        match identify(program, &place, host) {
            Program::Restic => return Located::Restic(at),
            Program::Other => return Located::Other(at, place),
            Program::Wrapper(wrapper) => match wrapper.operand(args, &mut place) {
                Operand::Command(operand) => at += 1 + operand,
                Operand::Nothing => return Located::Nothing,
                Operand::Script => return Located::Other(at, place),
                Operand::Unreadable => return Located::Unreadable,
            },
        }
    }
}

/// `argv` with restic's global `--no-lock` added right after the restic program word, when
/// `argv` runs restic (itself, behind the wrappers cio reads, or as a word behind another
/// program, `sudo -E restic restore ...`) for a command that only
/// reads the repository ([`RepositoryAccess::Reads`]) and does not say `--no-lock` already;
/// `None` otherwise. restic 0.14 locks the repository for reading commands (`snapshots`,
/// `restore`, `ls`, ...): it writes a lock file and deletes it after, which a restore-only
/// key may not do, and restic then fails after a minute of retries.
pub fn without_lock(argv: &[OsString]) -> Option<Vec<OsString>> {
    let host = Host::new(
        std::env::var_os("PATH"),
        std::env::current_dir().unwrap_or_default(),
    );
    unlocked(argv, &host)
}

fn unlocked(argv: &[OsString], host: &Host) -> Option<Vec<OsString>> {
    let at = match locate(argv, host) {
        Located::Restic(at) => at,
        // Behind a program cio does not read: the word restic whose reading command is on
        // the line (`sudo -E restic restore ...`).
        Located::Other(program, place) => {
            program + 1 + behind_other(&argv[program + 1..], &place, host).1?
        }
        _ => return None,
    };
    let rest = &argv[at + 1..];
    let words = restic_words(rest);
    let said = words.long_flags.iter().any(|f| f == "no-lock");
    if said || restic_command(rest) != RepositoryAccess::Reads {
        return None;
    }
    let mut line = argv.to_vec();
    line.insert(at + 1, OsString::from("--no-lock"));
    Some(line)
}

/// The safety net behind a program cio does not read (its arguments `args`): each word that
/// is restic is judged by the words after it, and each word that is a command line naming
/// restic hides restic's command. A known writing command is [`RepositoryAccess::Writes`];
/// a word restic with no command cio knows after it (`xargs restic`, `xargs -I{} restic {}`,
/// `parallel restic :::`), or a shell line naming restic, is [`RepositoryAccess::Unseen`];
/// else [`RepositoryAccess::NotRestic`], with the index in `args` of the first word restic
/// followed by a reading command, if any.
fn behind_other(
    args: &[OsString],
    place: &Place,
    host: &Host,
) -> (RepositoryAccess, Option<usize>) {
    let mut unseen = None;
    let mut reading = None;
    for (at, word) in args.iter().enumerate() {
        if names_restic_in_a_line(word, place, host) {
            unseen.get_or_insert(SHELL_LINE);
            continue;
        }
        if !matches!(identify(word, place, host), Program::Restic) {
            continue;
        }
        let rest = &args[at + 1..];
        match restic_command(rest) {
            RepositoryAccess::Writes { command, .. } if command == UNKNOWN_COMMAND => {
                unseen.get_or_insert(COMMAND_ELSEWHERE);
            }
            access @ RepositoryAccess::Writes { .. } => return (access, None),
            _ if open_ended(&restic_words(rest)) => {
                unseen.get_or_insert(COMMAND_ELSEWHERE);
            }
            _ => {
                reading.get_or_insert(at);
            }
        }
    }
    match unseen {
        Some(why) => (RepositoryAccess::Unseen { why }, None),
        None => (RepositoryAccess::NotRestic, reading),
    }
}

/// Whether restic's words leave its command to words that may follow them: no command, or
/// `key` without its subcommand (help aside, which only prints).
fn open_ended(words: &Words) -> bool {
    !words.help
        && match words.positional.as_slice() {
            [] => true,
            [command] => command == "key",
            _ => false,
        }
}

/// Whether `word` is a command line in one word (a script for a shell) with a word that is
/// restic: split at blanks and the shell's operators and quotes.
fn names_restic_in_a_line(word: &OsStr, place: &Place, host: &Host) -> bool {
    let separator = |byte: &u8| byte.is_ascii_whitespace() || b";|&()<>`'\"$".contains(byte);
    let bytes = word.as_bytes();
    bytes.iter().any(separator)
        && bytes
            .split(separator)
            .filter(|token| !token.is_empty())
            .any(|token| {
                matches!(
                    identify(OsStr::from_bytes(token), place, host),
                    Program::Restic
                )
            })
}

/// The programs that run their operand as a command, and whose options cio reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrapper {
    Env,
    Nice,
    Timeout,
    Nohup,
    Stdbuf,
    Ionice,
    Chrt,
    Taskset,
    Setsid,
    Flock,
}

/// What a wrapper's line runs.
#[derive(Debug, PartialEq, Eq)]
enum Operand {
    /// The command starting at this index of the wrapper's arguments.
    Command(usize),
    /// No command (the wrapper prints something, or fails on its line).
    Nothing,
    /// A shell command line in one word (`flock FILE -c "..."`): not read, as `sh -c`.
    Script,
    /// cio cannot tell what runs.
    Unreadable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    No,
    Required,
    /// Only attached: `--name=VALUE` or `-xVALUE`.
    Optional,
}

/// One option of a wrapper, as its `getopt_long` tables declare it.
#[derive(Debug)]
struct Opt {
    short: Option<u8>,
    long: Option<&'static str>,
    arg: Arg,
}

impl Opt {
    /// Options with the same key are one option (flock's `--nb` and `--nonblocking`).
    fn key(&self) -> (Option<u8>, Option<&'static str>) {
        match self.short {
            Some(short) => (Some(short), None),
            None => (None, self.long),
        }
    }

    /// Whether this is the option of this long name (a short letter finds the entry that
    /// also has the long name).
    fn is(&self, long: &str) -> bool {
        self.long == Some(long)
    }
}

const fn opt(short: u8, long: &'static str, arg: Arg) -> Opt {
    Opt {
        short: Some(short),
        long: Some(long),
        arg,
    }
}

const fn long(long: &'static str, arg: Arg) -> Opt {
    Opt {
        short: None,
        long: Some(long),
        arg,
    }
}

const fn short(short: u8, arg: Arg) -> Opt {
    Opt {
        short: Some(short),
        long: None,
        arg,
    }
}

use Arg::{No, Optional, Required};

/// coreutils `env` (9.1: `+C:iS:u:v0`; 9.5 adds `-a`, the current sources `--env0-from`).
const ENV: &[Opt] = &[
    opt(b'a', "argv0", Required),
    opt(b'i', "ignore-environment", No),
    long("env0-from", Required),
    opt(b'0', "null", No),
    opt(b'u', "unset", Required),
    opt(b'C', "chdir", Required),
    long("default-signal", Optional),
    long("ignore-signal", Optional),
    long("block-signal", Optional),
    long("list-signal-handling", No),
    opt(b'v', "debug", No),
    opt(b'S', "split-string", Required),
    long("help", No),
    long("version", No),
];

/// coreutils `nice` (`+n:`; and `-N`, `--N`, `-+N`, read before each option).
const NICE: &[Opt] = &[
    opt(b'n', "adjustment", Required),
    long("help", No),
    long("version", No),
];

/// coreutils `timeout` (9.1: `+k:s:v`; 9.6: `+fk:ps:v`).
const TIMEOUT: &[Opt] = &[
    opt(b'f', "foreground", No),
    opt(b'k', "kill-after", Required),
    opt(b'p', "preserve-status", No),
    opt(b's', "signal", Required),
    opt(b'v', "verbose", No),
    long("help", No),
    long("version", No),
];

/// coreutils `nohup`: `--help` and `--version` only.
const NOHUP: &[Opt] = &[long("help", No), long("version", No)];

/// coreutils `stdbuf` (`+i:o:e:`).
const STDBUF: &[Opt] = &[
    opt(b'i', "input", Required),
    opt(b'o', "output", Required),
    opt(b'e', "error", Required),
    long("help", No),
    long("version", No),
];

/// util-linux `ionice` (`+n:c:p:P:u:tVh`).
const IONICE: &[Opt] = &[
    opt(b'n', "classdata", Required),
    opt(b'c', "class", Required),
    opt(b'h', "help", No),
    opt(b't', "ignore", No),
    opt(b'p', "pid", Required),
    opt(b'P', "pgid", Required),
    opt(b'u', "uid", Required),
    opt(b'V', "version", No),
];

/// util-linux `chrt` (2.38: `+abdD:fiphmoP:T:rRvV`; 2.42: `+abdD:efiphmoOP:T:rRU:X:GvV`).
const CHRT: &[Opt] = &[
    opt(b'a', "all-tasks", No),
    opt(b'b', "batch", No),
    opt(b'U', "clamp-min", Required),
    opt(b'X', "clamp-max", Required),
    opt(b'd', "deadline", No),
    opt(b'O', "deadline-overrun", No),
    opt(b'e', "ext", No),
    opt(b'f', "fifo", No),
    opt(b'i', "idle", No),
    opt(b'p', "pid", No),
    opt(b'h', "help", No),
    opt(b'm', "max", No),
    opt(b'o', "other", No),
    opt(b'r', "rr", No),
    opt(b'T', "sched-runtime", Required),
    opt(b'P', "sched-period", Required),
    opt(b'D', "sched-deadline", Required),
    opt(b'R', "reset-on-fork", No),
    opt(b'G', "reclaim-grub", No),
    opt(b'v', "verbose", No),
    opt(b'V', "version", No),
];

/// util-linux `taskset` (`+apchV`).
const TASKSET: &[Opt] = &[
    opt(b'a', "all-tasks", No),
    opt(b'p', "pid", No),
    opt(b'c', "cpu-list", No),
    opt(b'h', "help", No),
    opt(b'V', "version", No),
];

/// util-linux `setsid` (`+Vhcfw`).
const SETSID: &[Opt] = &[
    opt(b'c', "ctty", No),
    opt(b'f', "fork", No),
    opt(b'w', "wait", No),
    opt(b'V', "version", No),
    opt(b'h', "help", No),
];

/// util-linux `flock` (2.38: `+sexnoFuw:E:hV?`; 2.41 adds `--fcntl`, `--start`, `--length`;
/// the current sources `--fd`, and `-c`/`--command` before the operands).
const FLOCK: &[Opt] = &[
    opt(b's', "shared", No),
    opt(b'x', "exclusive", No),
    short(b'e', No),
    opt(b'u', "unlock", No),
    opt(b'n', "nonblocking", No),
    opt(b'n', "nb", No),
    opt(b'w', "timeout", Required),
    opt(b'w', "wait", Required),
    opt(b'E', "conflict-exit-code", Required),
    opt(b'o', "close", No),
    opt(b'F', "no-fork", No),
    long("verbose", No),
    long("fcntl", No),
    long("start", Required),
    long("length", Required),
    long("fd", Required),
    opt(b'c', "command", Required),
    opt(b'h', "help", No),
    opt(b'V', "version", No),
    short(b'?', No),
];

/// The options a wrapper's line gives (with their values), and where its operands start.
struct Options<'a> {
    given: Vec<(&'static Opt, Option<&'a OsStr>)>,
    operands: usize,
}

impl Options<'_> {
    fn has(&self, long: &str) -> bool {
        self.given.iter().any(|(opt, _)| opt.is(long))
    }
}

/// glibc's `getopt_long` with an option string starting with `+` (options end at the first
/// operand or after `--`). `None` when the line has an option `table` does not hold, an
/// ambiguous long prefix, or a value missing or given to an option that takes none: the
/// real program refuses such a line, a newer one may read it otherwise.
fn getopt<'a>(args: &'a [OsString], table: &'static [Opt], nice: bool) -> Option<Options<'a>> {
    let mut given = Vec::new();
    let mut at = 0;
    while let Some(word) = args.get(at) {
        let word = word.as_bytes();
        if nice && word.first() == Some(&b'-') {
            // `nice -10`, `nice --10`, `nice -+10`: an adjustment, the old way.
            let digit = 1 + usize::from(matches!(word.get(1), Some(b'-' | b'+')));
            if word.get(digit).is_some_and(u8::is_ascii_digit) {
                at += 1;
                continue;
            }
        }
        if word == b"--" {
            at += 1;
            break;
        }
        if let Some(name) = word.strip_prefix(b"--") {
            at += 1;
            let (name, attached) = match name.iter().position(|byte| *byte == b'=') {
                Some(equals) => (&name[..equals], Some(&name[equals + 1..])),
                None => (name, None),
            };
            let opt = long_option(table, name)?;
            let value = match (opt.arg, attached) {
                (No, Some(_)) => return None,
                (No, None) | (Optional, None) => None,
                (Optional | Required, Some(value)) => Some(OsStr::from_bytes(value)),
                (Required, None) => {
                    at += 1;
                    Some(args.get(at - 1)?.as_os_str())
                }
            };
            given.push((opt, value));
            continue;
        }
        if word.len() > 1 && word[0] == b'-' {
            at += 1;
            for (index, letter) in word[1..].iter().enumerate() {
                let opt = table.iter().find(|opt| opt.short == Some(*letter))?;
                let rest = &word[2 + index..];
                match opt.arg {
                    No => given.push((opt, None)),
                    Optional => {
                        let value = (!rest.is_empty()).then(|| OsStr::from_bytes(rest));
                        given.push((opt, value));
                        break;
                    }
                    Required => {
                        let value = if rest.is_empty() {
                            at += 1;
                            args.get(at - 1)?.as_os_str()
                        } else {
                            OsStr::from_bytes(rest)
                        };
                        given.push((opt, Some(value)));
                        break;
                    }
                }
            }
            continue;
        }
        break;
    }
    Some(Options {
        given,
        operands: at,
    })
}

/// A long option by its name or a prefix of it that names one option only.
fn long_option(table: &'static [Opt], name: &[u8]) -> Option<&'static Opt> {
    let named = |opt: &&Opt| opt.long.is_some_and(|long| long.as_bytes() == name);
    if let Some(opt) = table.iter().find(named) {
        return Some(opt);
    }
    let mut matches = table.iter().filter(|opt| {
        opt.long
            .is_some_and(|long| long.as_bytes().starts_with(name))
    });
    let first = matches.next()?;
    matches
        .all(|other| other.key() == first.key() && other.arg == first.arg)
        .then_some(first)
}

/// An integer as `strtol` reads a whole word (util-linux `strtos32_or_err`).
fn c_integer(word: &[u8]) -> bool {
    let word = match word
        .iter()
        .position(|byte| !byte.is_ascii_whitespace() && *byte != 0x0b)
    {
        Some(start) => &word[start..],
        None => return false,
    };
    let digits = word
        .strip_prefix(b"+")
        .or_else(|| word.strip_prefix(b"-"))
        .unwrap_or(word);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

impl Wrapper {
    fn named(name: &OsStr) -> Option<Wrapper> {
        Some(match name.as_bytes() {
            b"env" => Wrapper::Env,
            b"nice" => Wrapper::Nice,
            b"timeout" => Wrapper::Timeout,
            b"nohup" => Wrapper::Nohup,
            b"stdbuf" => Wrapper::Stdbuf,
            b"ionice" => Wrapper::Ionice,
            b"chrt" => Wrapper::Chrt,
            b"taskset" => Wrapper::Taskset,
            b"setsid" => Wrapper::Setsid,
            b"flock" => Wrapper::Flock,
            _ => return None,
        })
    }

    fn table(self) -> &'static [Opt] {
        match self {
            Wrapper::Env => ENV,
            Wrapper::Nice => NICE,
            Wrapper::Timeout => TIMEOUT,
            Wrapper::Nohup => NOHUP,
            Wrapper::Stdbuf => STDBUF,
            Wrapper::Ionice => IONICE,
            Wrapper::Chrt => CHRT,
            Wrapper::Taskset => TASKSET,
            Wrapper::Setsid => SETSID,
            Wrapper::Flock => FLOCK,
        }
    }

    /// The command this wrapper's line (`args`, after its name) runs; `env` may change where
    /// that command is found (`place`).
    fn operand(self, args: &[OsString], place: &mut Place) -> Operand {
        let Some(options) = getopt(args, self.table(), self == Wrapper::Nice) else {
            return Operand::Unreadable;
        };
        let operands = &args[options.operands..];
        let command_at = |skip: usize| {
            if operands.len() > skip {
                Operand::Command(options.operands + skip)
            } else {
                Operand::Nothing
            }
        };
        match self {
            Wrapper::Env => env(&options, args, place),
            // `nohup` reads one option only, and `--help`/`--version` exit.
            Wrapper::Nohup if !options.given.is_empty() => Operand::Nothing,
            Wrapper::Nice | Wrapper::Nohup | Wrapper::Stdbuf | Wrapper::Setsid => command_at(0),
            // `ionice -p|-P|-u ID` runs no command, but such a line is read as if it did
            // (the safe side).
            Wrapper::Ionice => command_at(0),
            // DURATION, MASK: the command is the second operand.
            Wrapper::Timeout | Wrapper::Taskset => command_at(1),
            Wrapper::Chrt => {
                // util-linux 2.38 to 2.41: PRIORITY COMMAND; 2.42: [PRIORITY] COMMAND, PRIORITY
                // all digits, and a `--` after it skipped.
                let first = operands.first().map(|word| word.as_bytes());
                let mut skip = 0;
                if operands.len() > 1
                    && let Some(first) = first
                {
                    if !first.is_empty() && first.iter().all(u8::is_ascii_digit) {
                        skip = 1;
                    } else if c_integer(first) {
                        return Operand::Unreadable;
                    }
                }
                if skip == 1 && operands.get(1).is_some_and(|word| word == "--") {
                    skip = 2;
                }
                command_at(skip)
            }
            Wrapper::Flock => {
                if options.has("command") {
                    return Operand::Script;
                }
                if options.has("fd") {
                    return command_at(0);
                }
                match operands.get(1) {
                    Some(word) if word == "-c" || word == "--command" => Operand::Script,
                    Some(_) => command_at(1),
                    None => Operand::Nothing,
                }
            }
        }
    }
}

/// coreutils `env`: options, then `-` (an empty environment), then `NAME=VALUE` words, then
/// the command, found through the `PATH` those leave, from the folder `-C` names.
fn env(options: &Options, args: &[OsString], place: &mut Place) -> Operand {
    if options.has("split-string") || options.has("env0-from") {
        return Operand::Unreadable;
    }
    let mut at = options.operands;
    let mut empty = options.has("ignore-environment");
    if args.get(at).is_some_and(|word| word == "-") {
        empty = true;
        at += 1;
    }
    let unset_path = options
        .given
        .iter()
        .any(|(opt, value)| opt.is("unset") && *value == Some(OsStr::new("PATH")));
    if empty || unset_path {
        place.path = None;
    }
    while let Some(word) = args.get(at).map(|word| word.as_bytes()) {
        let Some(equals) = word.iter().position(|byte| *byte == b'=') else {
            break;
        };
        if &word[..equals] == b"PATH" {
            place.path = Some(OsStr::from_bytes(&word[equals + 1..]).to_os_string());
        }
        at += 1;
    }
    if at >= args.len() {
        return Operand::Nothing;
    }
    for (opt, value) in &options.given {
        if opt.is("chdir")
            && let Some(dir) = value
        {
            place.cwd = place.cwd.join(dir);
        }
    }
    Operand::Command(at)
}

/// restic's own arguments (after the program), read as restic reads them.
fn restic_words(rest: &[OsString]) -> Words {
    let args: Vec<String> = rest
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    split(&args)
}

/// The `why`s of the commands restic 0.14 locks the repository for even with `--no-lock`.
const KEY_LIST_LOCKS: &str = "restic writes a lock file into the repository for it, --no-lock or not ('restic list keys' lists the keys' ids without one)";
const MIGRATE_LOCKS: &str = "restic writes a lock file into the repository for it, --no-lock or not, even to list the migrations";

/// What restic's own arguments (`args`, after the program) do to the repository.
fn restic_command(rest: &[OsString]) -> RepositoryAccess {
    let words = restic_words(rest);
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
        // restic 0.14 locks the repository for `key list` and for `migrate` without a
        // migration (which lists them), whatever --no-lock says: a lock file written into
        // the repository and deleted after.
        "migrate" => match positional.next() {
            Some(_) => writes("migrate", "it changes the repository's format"),
            None => writes("migrate", MIGRATE_LOCKS),
        },
        "key" => match positional.next() {
            None => RepositoryAccess::Reads,
            Some("list") => writes("key list", KEY_LIST_LOCKS),
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
            UNKNOWN_COMMAND,
            "cio does not know this restic command, so it may write",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host whose PATH holds nothing: only names (and `/bin:/usr/bin` after `env -i`)
    /// find programs.
    fn bare() -> Host {
        Host::new(Some("/nonexistent-cio-test".into()), PathBuf::from("/"))
    }

    fn run(line: &str) -> RepositoryAccess {
        let argv: Vec<OsString> = line.split_whitespace().map(OsString::from).collect();
        classify(&argv, &bare())
    }

    /// The line `exec --alternate` runs for `line` (`None`: as it is).
    fn unlocked_line(line: &str) -> Option<String> {
        let argv: Vec<OsString> = line.split_whitespace().map(OsString::from).collect();
        unlocked(&argv, &bare()).map(|argv| {
            argv.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
    }

    /// The review's finding: restic 0.14 locks the repository for snapshots and restore,
    /// which a restore-only key may not; `exec --alternate` adds --no-lock to reading lines.
    #[test]
    fn reading_lines_get_no_lock_right_after_restic() {
        for (line, expected) in [
            ("restic snapshots", "restic --no-lock snapshots"),
            (
                "restic restore latest --target /mnt/r",
                "restic --no-lock restore latest --target /mnt/r",
            ),
            (
                "nice -n 5 restic -r s3:x ls latest",
                "nice -n 5 restic --no-lock -r s3:x ls latest",
            ),
            (
                "env A=1 timeout 60 restic check",
                "env A=1 timeout 60 restic --no-lock check",
            ),
            // Behind a program cio does not read, the word restic its reading command follows.
            (
                "sudo -E restic restore latest --target /t",
                "sudo -E restic --no-lock restore latest --target /t",
            ),
            ("xargs restic snapshots", "xargs restic --no-lock snapshots"),
        ] {
            assert_eq!(unlocked_line(line).as_deref(), Some(expected), "{line}");
        }
        for line in [
            "restic --no-lock snapshots",
            "restic snapshots --no-lock",
            "restic backup /etc",
            "restic unlock",
            "restic key list",
            "restic migrate",
            "sh -c restic",
            "sudo restic --no-lock snapshots",
            "xargs restic",
            "ls",
        ] {
            assert_eq!(unlocked_line(line), None, "{line}");
        }
    }

    fn writes(line: &str) -> Option<&'static str> {
        match run(line) {
            RepositoryAccess::Writes { command, .. } => Some(command),
            RepositoryAccess::Reads => None,
            RepositoryAccess::Unseen { .. } => panic!("{line}: unseen"),
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
            "restic key",
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

    /// Before the command, cobra takes every bare flag but restic's global switches to hold
    /// the next word (`stripFlags`), so the command is the word after that one.
    #[test]
    fn a_command_flag_before_the_command_holds_the_next_word_as_cobra_reads_it() {
        for (line, command) in [
            ("restic -x snapshots backup d", Some("backup")),
            (
                "restic --one-file-system snapshots backup d",
                Some("backup"),
            ),
            ("restic --host vm forget --keep-last 1", Some("forget")),
            ("restic -H vm snapshots", None),
            ("restic --host vm snapshots", None),
            ("restic --json -q -v --no-lock snapshots", None),
            ("restic -qv backup /d", Some("backup")),
            ("restic -x=1 backup /d", Some("backup")),
            ("restic --tag=a backup /d", Some("backup")),
        ] {
            assert_eq!(writes(line), command, "{line}");
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
            // restic 0.14 locks the repository for these, --no-lock or not.
            ("restic key list", "key list"),
            ("restic --no-lock key list", "key list"),
            ("restic migrate", "migrate"),
            ("restic migrate --no-lock", "migrate"),
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

    /// restic's releases are files named for their version, run where they were unpacked.
    #[test]
    fn a_restic_named_for_its_version_is_restic() {
        for program in [
            "restic_0.16.4_linux_amd64",
            "./restic_0.17.3_linux_arm64",
            "/opt/restic-0.14.0",
            "restic-v0.16",
            "restic.0.15",
        ] {
            assert_eq!(
                writes(&format!("{program} backup /x")),
                Some("backup"),
                "{program}"
            );
            assert_eq!(writes(&format!("{program} snapshots")), None, "{program}");
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
        assert_eq!(run("restic-v backup"), RepositoryAccess::NotRestic);
        assert_eq!(run("restic_ backup"), RepositoryAccess::NotRestic);
        assert_eq!(run("resticx backup"), RepositoryAccess::NotRestic);
        assert_eq!(restic_access(&[]), RepositoryAccess::NotRestic);
    }

    #[test]
    fn words_after_double_dash_are_arguments() {
        assert_eq!(writes("restic -- backup /x"), Some("backup"));
        assert_eq!(writes("restic restore latest --target /t -- -h"), None);
    }

    #[test]
    fn wrappers_are_seen_through() {
        for line in [
            // coreutils env: options, `-`, NAME=VALUE words, then the command.
            "env restic backup /x",
            "env VAR=x restic backup /x",
            "env A=1 B=2 restic backup /x",
            "env -i VAR=x restic backup /x",
            "env - restic backup /x",
            "env -i - A=b restic backup /x",
            "env -u HOME restic backup /x",
            "env -uHOME restic backup /x",
            "env --unset HOME restic backup /x",
            "env --unset=HOME restic backup /x",
            "env --uns HOME restic backup /x",
            "env -iu HOME restic backup /x",
            "env -C / restic backup /x",
            "env --chdir=/ restic backup /x",
            "env -a name restic backup /x",
            "env --default-signal restic backup /x",
            "env --ignore-signal=INT --block-signal restic backup /x",
            "env -v0 -- restic backup /x",
            // coreutils nice: -n N, the old -N / --N / -+N, --adjustment and its prefixes.
            "nice restic backup /x",
            "nice -n 10 restic backup /x",
            "nice -n10 restic backup /x",
            "nice -n -5 restic backup /x",
            "nice --adjustment=10 restic backup /x",
            "nice --adjustment 10 restic backup /x",
            "nice --adj 10 restic backup /x",
            "nice -10 restic backup /x",
            "nice --10 restic backup /x",
            "nice -+10 restic backup /x",
            "nice -n 5 -3 restic backup /x",
            "nice -- restic backup /x",
            // coreutils timeout: DURATION, then the command.
            "timeout 30 restic backup /x",
            "timeout -s KILL 30 restic backup /x",
            "timeout -sKILL -k 5 30 restic backup /x",
            "timeout --signal=TERM --kill-after 5s 1h restic backup /x",
            "timeout -v --foreground --preserve-status 30 restic backup /x",
            "timeout -fp 30 restic backup /x",
            "timeout -- 30 restic backup /x",
            // coreutils nohup and stdbuf.
            "nohup restic backup /x",
            "nohup -- restic backup /x",
            "stdbuf -oL restic backup /x",
            "stdbuf -o L -e 0 restic backup /x",
            "stdbuf --output=L --error 0 restic backup /x",
            "stdbuf -i0 -- restic backup /x",
            // util-linux ionice, chrt, taskset, setsid, flock.
            "ionice -c3 restic backup /x",
            "ionice -c 2 -n 7 restic backup /x",
            "ionice --class idle -t restic backup /x",
            "ionice -c3 -- restic backup /x",
            "chrt -o 0 restic backup /x",
            "chrt --other 0 restic backup /x",
            "chrt -r 10 restic backup /x",
            "chrt 10 restic backup /x",
            "chrt -f 10 -- restic backup /x",
            "chrt -o restic backup /x",
            "chrt -b -R 0 restic backup /x",
            "chrt -d -T 1000 -P 2000 -D 2000 0 restic backup /x",
            "chrt -p 0 restic backup /x",
            "taskset 1 restic backup /x",
            "taskset -c 0-3 restic backup /x",
            "taskset --cpu-list 0 restic backup /x",
            "taskset -p 0x1 restic backup 0",
            "setsid restic backup /x",
            "setsid -w restic backup /x",
            "setsid --fork -c restic backup /x",
            "setsid -fw restic backup /x",
            "flock /tmp/lock restic backup /x",
            "flock -n /tmp/lock restic backup /x",
            "flock -w 10 /tmp/lock restic backup /x",
            "flock -w10 -E 3 /tmp/lock restic backup /x",
            "flock --timeout=10 -x --verbose /tmp/lock restic backup /x",
            "flock --nb -o /tmp/lock restic backup /x",
            "flock --fd 3 restic backup /x",
            "flock restic restic backup /x",
            // Nested, and by path.
            "nice -n 5 ionice -c3 timeout 1h env X=1 stdbuf -oL setsid flock /l taskset 1 chrt -o 0 nohup restic backup /x",
            "env env nice nice restic backup /x",
            "/usr/bin/env /usr/bin/nice restic backup /x",
        ] {
            assert_eq!(writes(line), Some("backup"), "{line}");
        }
        assert_eq!(
            writes("nice restic -r s3:h/b forget --keep-last 1"),
            Some("forget")
        );
        assert_eq!(writes("env -i restic key add"), Some("key add"));
        assert_eq!(writes("timeout 5 restic unlock"), Some("unlock"));
        // Reading commands still read behind a wrapper.
        for line in [
            "nice restic snapshots",
            "timeout 30 restic restore latest --target /t",
            "env RESTIC_X=1 restic backup --help",
            "ionice -c3 nice -n 19 restic check",
        ] {
            assert_eq!(run(line), RepositoryAccess::Reads, "{line}");
        }
    }

    #[test]
    fn a_wrapper_option_value_is_not_the_program() {
        for line in [
            "env -u restic backup /x",
            "env -C restic backup /x",
            "env A=restic backup /x",
            "nice -n restic backup /x",
            "timeout -s restic 30 backup /x",
            "timeout restic backup /x",
            "ionice -c restic backup /x",
            "stdbuf -o restic backup /x",
            "flock restic backup /x",
            "flock -w restic /l backup /x",
            "taskset restic backup /x",
            "chrt -T restic 0 backup /x",
        ] {
            assert_eq!(run(line), RepositoryAccess::NotRestic, "{line}");
        }
    }

    #[test]
    fn a_wrapper_line_that_runs_nothing_reads() {
        for line in [
            "env",
            "env A=b",
            "env -i",
            "nice",
            "nice -n 5",
            "timeout 30",
            "timeout",
            "nohup",
            "nohup --help restic backup",
            "stdbuf -oL",
            "setsid",
            "flock /tmp/l",
            "taskset 1",
            "chrt -o",
            "ionice -c3",
        ] {
            assert_eq!(run(line), RepositoryAccess::Reads, "{line}");
        }
    }

    fn access(argv: &[&str]) -> RepositoryAccess {
        let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
        classify(&argv, &bare())
    }

    #[test]
    fn a_wrapper_cio_cannot_read_may_write() {
        let unreadable = RepositoryAccess::Unseen {
            why: UNREADABLE_WRAPPER,
        };
        for argv in [
            &["env", "-S", "restic backup /x"][..],
            &["env", "-Srestic backup /x"],
            &["env", "-iS", "restic backup /x"],
            &["env", "--split-string=restic backup /x"],
            &["env", "--env0-from=/f", "restic", "backup"],
            &["env", "--i", "restic", "backup"],
            &["env", "-u"],
            &["env", "--chdir"],
            &["env", "-x", "restic", "backup"],
            &["nice", "--bogus", "restic", "backup"],
            &["nice", "-x", "restic", "backup"],
            &["timeout", "-k"],
            &["setsid", "--wait=1", "restic", "backup"],
            &["stdbuf", "-x", "restic", "backup"],
            &["flock", "-Z", "/l", "restic", "backup"],
            &["chrt", "+5", "restic", "backup"],
            &["chrt", " 5", "restic", "backup"],
            &["nice", "env", "-S", "restic backup"],
        ] {
            assert_eq!(access(argv), unreadable, "{argv:?}");
        }
    }

    /// A shell line naming restic hides restic's command: cio does not read shell lines.
    #[test]
    fn a_shell_line_naming_restic_is_unseen() {
        let unseen = RepositoryAccess::Unseen { why: SHELL_LINE };
        for argv in [
            &["flock", "/l", "-c", "restic backup /x"][..],
            &["flock", "/l", "--command", "restic snapshots"],
            &["flock", "-c", "restic backup /x"],
            &["sh", "-c", "restic backup /x"],
            &["bash", "-c", "r=x; /usr/bin/restic $r"],
            &["sh", "-c", "exec restic \"$@\"", "sh", "backup", "/x"],
            &["nice", "sh", "-c", "restic snapshots | head"],
            &["su", "-c", "restic_0.16.4_linux_amd64 backup /x", "user"],
            &["watch", "-n", "5", "restic snapshots"],
            &["ssh", "host", "$(restic backup /x)"],
            &["parallel", "restic {}", ":::", "backup"],
        ] {
            assert_eq!(access(argv), unseen, "{argv:?}");
        }
        // A word naming something else, or restic alone in one word, is no shell line.
        for argv in [
            &["sh", "-c", "restic-backup /x"][..],
            &["sh", "-c", "ls /srv/restic-data"],
        ] {
            assert_eq!(access(argv), RepositoryAccess::NotRestic, "{argv:?}");
        }
    }

    /// The review's finding: `xargs restic` with `backup ...` on its input ran a backup into
    /// the other cluster's repository. A word restic whose command is not on the line
    /// (nothing after it, only options, a placeholder) hides what restic runs.
    #[test]
    fn a_restic_word_without_its_command_is_unseen() {
        let unseen = RepositoryAccess::Unseen {
            why: COMMAND_ELSEWHERE,
        };
        for line in [
            "xargs restic",
            "xargs -a /tmp/args restic",
            "xargs -0 -n 9 restic",
            "xargs restic -r s3:h/b",
            "xargs restic --verbose",
            "xargs restic -r",
            "xargs restic --host",
            "xargs restic key",
            "xargs -I{} restic {} /x",
            "parallel restic ::: backup",
            "sudo restic",
            "sudo -E env restic",
            "busybox xargs restic",
            "runuser -u u -- restic",
            // A word restic followed by another program's words: refused all the same.
            "grep restic backup.log",
            "sudo -u restic id",
            // An earlier restic word without a command outweighs a later reading one.
            "xargs -I{} restic {} restic snapshots",
        ] {
            assert_eq!(run(line), unseen, "{line}");
        }
        // restic itself, or behind the wrappers cio reads, takes no words from elsewhere.
        for line in [
            "restic",
            "env restic",
            "nice -n 5 restic -r s3:h/b",
            "restic key",
        ] {
            assert_eq!(run(line), RepositoryAccess::Reads, "{line}");
        }
        // Help only prints, whatever follows.
        assert_eq!(run("xargs restic --help"), RepositoryAccess::NotRestic);
    }

    #[test]
    fn restic_behind_another_program_is_caught_when_it_writes() {
        assert_eq!(writes("sudo -E restic backup /x"), Some("backup"));
        assert_eq!(
            writes("systemd-run --pipe -E RESTIC_PASSWORD restic backup /x"),
            Some("backup")
        );
        assert_eq!(writes("strace -f restic -r x forget"), Some("forget"));
        assert_eq!(writes("nice sudo -E restic key add"), Some("key add"));
        assert_eq!(writes("xargs restic backup"), Some("backup"));
        assert_eq!(writes("watch restic key list"), Some("key list"));
        assert_eq!(writes("parallel restic backup ::: /x"), Some("backup"));
        // A reading command is on the line: not refused.
        for line in ["sudo restic snapshots", "xargs restic restore --target /t"] {
            assert_eq!(run(line), RepositoryAccess::NotRestic, "{line}");
        }
    }

    /// bin/restic (an executable file), bin/rst -> restic, bin/rst2 (a hard link to it),
    /// bin/copy (a copy), other/r3 -> ../bin/restic, bin/myenv -> /usr/bin/env.
    fn programs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let bin = dir.path().join("bin");
        let other = dir.path().join("other");
        std::fs::create_dir(&bin).unwrap();
        std::fs::create_dir(&other).unwrap();
        let restic = bin.join("restic");
        std::fs::write(&restic, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&restic, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("restic", bin.join("rst")).unwrap();
        std::fs::hard_link(&restic, bin.join("rst2")).unwrap();
        std::fs::copy(&restic, bin.join("copy")).unwrap();
        std::os::unix::fs::symlink("../bin/restic", other.join("r3")).unwrap();
        std::os::unix::fs::symlink("/usr/bin/env", bin.join("myenv")).unwrap();
        dir
    }

    #[test]
    fn restic_is_known_by_its_file() {
        let dir = programs();
        let host = Host::new(
            Some(dir.path().join("bin").into_os_string()),
            dir.path().to_path_buf(),
        );
        let other = dir.path().join("other");
        let check = |argv: &[&str]| {
            let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
            match classify(&argv, &host) {
                RepositoryAccess::Writes { command, .. } => Some(command),
                RepositoryAccess::Reads => Some("reads"),
                RepositoryAccess::Unseen { .. } => Some("unseen"),
                RepositoryAccess::NotRestic => None,
            }
        };
        let path_other = format!("PATH={}", other.display());
        for argv in [
            &["rst", "backup"][..],
            &["rst2", "backup"],
            &["bin/rst2", "backup"],
            &["./bin/rst2", "backup"],
            &["other/r3", "backup"],
            &["env", "rst2", "backup"],
            &["nice", "-n", "5", "rst", "backup"],
            &["env", "-C", "bin", "./rst2", "backup"],
            &["env", &path_other, "r3", "backup"],
            &["env", "-i", &path_other, "r3", "backup"],
            &["sudo", "-E", "rst2", "backup"],
        ] {
            assert_eq!(check(argv), Some("backup"), "{argv:?}");
        }
        assert_eq!(check(&["rst2", "snapshots"]), Some("reads"));
        // A wrapper known by its file: myenv is env.
        assert_eq!(check(&["myenv", "-S", "rst2 backup"]), Some("unseen"));
        // What env takes away from the search, and a copy under another name: not restic.
        for argv in [
            &["env", "-u", "PATH", "rst2", "backup"][..],
            &["env", "-i", "rst2", "backup"],
            &["env", "PATH=/nonexistent", "rst2", "backup"],
            &["copy", "backup"],
        ] {
            assert_eq!(check(argv), None, "{argv:?}");
        }
        // The same file is restic only when it is the restic on cio's PATH.
        let elsewhere = Host::new(Some("/nonexistent".into()), dir.path().to_path_buf());
        let argv: Vec<OsString> = ["bin/rst2", "backup"].iter().map(OsString::from).collect();
        assert_eq!(classify(&argv, &elsewhere), RepositoryAccess::NotRestic);
    }
}
