//! The errors a command can end with, and how each maps to an exit code.
//!
//! Rules: every error renders as `Fail: <what>: <why>` plus a `Hint: ` line saying what to
//! do next, on standard error; no error ever contains a credential value.

use std::process::ExitCode;

use cio_credential::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// An error of the library, with the action that failed (e.g. "Create credential").
    #[error("{action}: {source}")]
    Library {
        action: String,
        source: cio_credential::Error,
    },
    /// The text given as CREDENTIALNAME to `cio credential COMMAND` is not a name (the
    /// library's error, with the command, so that the hint shows the command that was run).
    #[error("{action}: {source}")]
    UnknownName {
        action: String,
        command: &'static str,
        /// The names the command takes.
        names: crate::cli::CredentialNames,
        source: cio_credential::UnknownName,
    },
    /// The value could not be read.
    #[error("{action}: {problem}")]
    Input { action: String, problem: InputError },
    /// `create VALUE NAME`: the NAME position holds no name, the VALUE position holds one.
    #[error(
        "Create credential: the text given as CREDENTIALNAME is not a credential name, but the one given as VALUE is: CREDENTIALNAME comes first"
    )]
    Swapped {
        name: cio_credential::CredentialName,
    },
    /// The command given to `exec` could not be started.
    #[error("Run with credentials: cannot run '{program}': {source}")]
    Exec {
        program: String,
        source: std::io::Error,
    },
    /// `exec --alternate` of a restic command that would write to the other cluster's
    /// repository.
    #[error(
        "Run with credentials: 'restic {command}' refused with the alternate set: {why}, in a repository that belongs to another cluster"
    )]
    RestoreOnly {
        command: &'static str,
        why: &'static str,
    },
    /// `exec --alternate` of a line whose restic command cio cannot see.
    #[error(
        "Run with credentials: refused with the alternate set: cio cannot tell what restic will run: {why}; it may write to a repository that belongs to another cluster"
    )]
    RestoreOnlyUnseen { why: &'static str },
    /// The listing is printed, but a credential in it cannot be trusted (the listing names
    /// it; the others were listed).
    #[error("{action}: {source}")]
    Listed {
        action: String,
        source: cio_credential::Error,
    },
    /// `migrate --to WORD`: a bare word (`etcd`, `cluster`) is neither an etcd URL nor a path
    /// anyone means; taken as a path it would make a store file in the current folder.
    #[error(
        "Migrate credentials: the store given with --to is neither an etcd URL nor a path to a file"
    )]
    BareTarget,
    /// Validation ran and found failures (the report is already printed).
    #[error("Validate credentials: {failed} of {total} sets failed")]
    Validation { failed: usize, total: usize },
    /// A file cio was asked to write (metrics, man pages) could not be written.
    #[error(
        "{action}: cannot write {}: {source}",
        cio_credential::shown_path(path)
    )]
    WriteFile {
        action: String,
        path: std::path::PathBuf,
        source: std::io::Error,
        hint: &'static str,
    },
    /// `env` will not write a set's CA bundle: its folder or the file under its name is not
    /// cio's to write.
    #[error(
        "{action}: will not write the CA bundle {}: {why}",
        cio_credential::shown_path(path)
    )]
    CaBundleRefused {
        action: String,
        path: std::path::PathBuf,
        why: String,
        hint: String,
    },
    /// `log --verify` found an entry that is not as it was written.
    #[error("Verify change log: {message}")]
    LogBroken { message: String, broken: LogFault },
    /// Writing our own output failed (other than a closed pipe, which is a clean exit).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

/// Why a value could not be read from standard input or the terminal.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("the value given is not UTF-8 text")]
    NotUtf8,
    #[error("the value read is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the path given with --from-file is not a regular file or a pipe")]
    NotAFile,
    #[error("cannot read the file given with --from-file: {0}")]
    File(std::io::Error),
    #[error("a PEM certificate is several lines, which a prompt cannot take")]
    MultiLineOnTerminal,
    #[error("the two values typed do not match")]
    Mismatch,
    #[error("standard input must hold two lines: the new access key, then the new secret key")]
    NotAPair,
    #[error("cannot read the value: {0}")]
    Io(std::io::Error),
    #[error("the bundle needs its passphrase, and standard input already carries the bundle")]
    PassphraseNeedsInput,
    #[error("cannot read the bundle: {0}")]
    Bundle(std::io::Error),
    /// FILE is standard input (`-`, `/dev/stdin`, ...), and it carries no age file: a
    /// passphrase piped there cannot also be the bundle.
    #[error(
        "the bundle is read from standard input (FILE is standard input), and what it carries is not a bundle: standard input carries one thing, the bundle or its passphrase"
    )]
    StdinNotABundle,
    #[error("standard input must be two lines: the access key, then the secret key")]
    AccessKeysExpected,
}

impl CommandError {
    pub fn library(action: impl Into<String>, source: impl Into<cio_credential::Error>) -> Self {
        CommandError::Library {
            action: action.into(),
            source: source.into(),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.status())
    }

    /// The exit status: 2 usage, 1 failed, 3 the store or key cannot be used.
    pub fn status(&self) -> u8 {
        match self {
            CommandError::Library { source, .. } | CommandError::Listed { source, .. } => {
                match source.kind() {
                    ErrorKind::Usage => 2,
                    ErrorKind::Failed => 1,
                    ErrorKind::Unusable => 3,
                }
            }
            CommandError::Swapped { .. }
            | CommandError::BareTarget
            | CommandError::UnknownName { .. } => 2,
            CommandError::Input { .. }
            | CommandError::Output(_)
            | CommandError::Exec { .. }
            | CommandError::WriteFile { .. }
            | CommandError::CaBundleRefused { .. }
            | CommandError::LogBroken { .. }
            | CommandError::RestoreOnly { .. }
            | CommandError::RestoreOnlyUnseen { .. }
            | CommandError::Validation { .. } => 1,
        }
    }

    pub fn hint(&self) -> String {
        match self {
            CommandError::Library { source, .. } | CommandError::Listed { source, .. } => {
                source.hint()
            }
            CommandError::UnknownName {
                command,
                names,
                source,
                ..
            } => unknown_name_hint(command, names, source),
            CommandError::Input { problem, .. } => match problem {
                InputError::NotUtf8 => {
                    "nothing was changed; pipe the value alone, as UTF-8 text, e.g. printf '%s' \"$VALUE\" | cio credential create NAME".into()
                }
                InputError::TooLarge(_) => format!(
                    "nothing was changed; no credential is that large (a CA certificate at most {} KiB, every other value {} bytes): give the value alone, or for a CA certificate only the certificates the server's chain needs",
                    cio_credential::MAX_CACERT_BYTES / 1024,
                    cio_credential::MAX_VALUE_BYTES
                ),
                InputError::NotAPair => "nothing was changed; pipe both, e.g. printf '%s\\n%s\\n' \"$ACCESS\" \"$SECRET\" | cio credential rotate --provider P --access-key".into(),
                InputError::Mismatch => "nothing was changed; run the command again and type the same value twice".into(),
                InputError::Io(_) => "nothing was changed; give the value on standard input".into(),
                InputError::NotAFile | InputError::File(_) => {
                    "nothing was changed; give --from-file the path of a readable file, e.g. --from-file /etc/ssl/private-ca.pem".into()
                }
                InputError::MultiLineOnTerminal => {
                    "nothing was changed; give the PEM file with --from-file PATH, or pipe it on standard input".into()
                }
                InputError::PassphraseNeedsInput => {
                    "nothing was written; give the bundle as a FILE and the passphrase on standard input, or run on a terminal".into()
                }
                InputError::Bundle(_) => "check the bundle file's path and that this user may read it".into(),
                InputError::StdinNotABundle => "nothing was written; give the bundle as a FILE of its own and pipe the passphrase (printf '%s\\n' \"$PASSPHRASE\" | cio credential import BUNDLE), or pipe the bundle and type the passphrase on a terminal".into(),
                InputError::AccessKeysExpected => {
                    "nothing was written; printf '%s\\n%s\\n' \"$ACCESS\" \"$SECRET\" | cio credential import --from-repository URL ..., or run on a terminal to be asked".into()
                }
            },
            CommandError::Swapped { name } => format!(
                "nothing was changed; run 'cio credential create {name}' and type or pipe the value"
            ),
            CommandError::BareTarget => "nothing was copied; give an etcd URL (--to etcd://10.0.0.1:2379) or a path to a SQLite file (--to /var/lib/cio/credentials.db, or ./NAME for one in the current folder)".into(),
            CommandError::Validation { .. } => {
                "fix the first FAIL of each set (its line says how), then run the validation again".into()
            }
            CommandError::RestoreOnly { .. } => {
                "the alternate set is for restoring; nothing was run. If you mean to change the other cluster's repository, add --allow-write (cio credential exec --alternate --allow-write -- restic ...)".into()
            }
            CommandError::RestoreOnlyUnseen { .. } => {
                "nothing was run. Give restic and its command as cio's own words after -- (cio credential exec --alternate -- restic restore latest --target DIR), or, if you mean to let it change the other cluster's repository, add --allow-write (cio credential exec --alternate --allow-write -- ...)".into()
            }
            CommandError::Exec { .. } => {
                "check the command's name and that it is installed and on PATH (restic: apt-get install restic)".into()
            }
            CommandError::WriteFile { hint, .. } => (*hint).to_string(),
            CommandError::CaBundleRefused { hint, .. } => hint.clone(),
            CommandError::LogBroken {
                broken: LogFault::CredentialsOlder,
                ..
            } => "the credentials were put back from an earlier copy and the change log was not: put back a whole copy of the store taken after the log's newest entry, its credentials and its log together (all of credentials.db, or every key under the etcd prefix); 'cio credential log' lists the changes the credentials lack; until then every other command refuses the store".into(),
            CommandError::LogBroken {
                broken: LogFault::Unanchored,
                ..
            } => format!(
                "the store was changed outside cio: compare it with a backup of credentials.db (or of the etcd prefix); {}; or put back a whole copy taken after the log's newest entry (all of credentials.db, or every key under the etcd prefix)",
                cio_credential::UNANCHORED_WAY_OUT
            ),
            CommandError::LogBroken {
                broken: LogFault::UnanchoredGone,
                ..
            } => "check that the credentials hold the values they should: 'cio credential validate' checks each set against its repository, and a backup of credentials.db (or of the etcd prefix) shows earlier values; if they do, 'cio credential log --acknowledge' accepts the log as it is and keeps every change; if not, put back a whole copy taken before the values went wrong".into(),
            CommandError::LogBroken {
                broken: LogFault::MayHideRollback,
                ..
            } => "the store was changed outside cio, where the evidence of credentials put back from an earlier copy would be: compare it with a backup of credentials.db (or of the etcd prefix); put back a whole copy taken after the log's newest entry (all of credentials.db, or every key under the etcd prefix); this break cannot be acknowledged".into(),
            CommandError::LogBroken {
                broken: LogFault::CredentialsDamaged,
                ..
            } => "the log is not at fault and nothing in it needs acknowledging: 'cio credential list' names each credential that cannot be trusted; copy the whole store back from a backup, or destroy such a credential and create it again (cio credential remove --purge NAME)".into(),
            CommandError::LogBroken {
                broken: LogFault::Entries,
                ..
            } => "the store was changed outside cio: compare it with a backup of credentials.db (or of the etcd prefix) to see what was altered; cio keeps working and logging after the break, and once you know what changed, 'cio credential log --acknowledge' accepts the log as it is (later checks then report only what changes after that)".into(),
            CommandError::Output(_) => "check where standard output goes (a full disk, a closed file)".into(),
        }
    }
}

/// What `log --verify` found wrong, for its hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFault {
    /// An entry of the log is not as it was written.
    Entries,
    /// The log is whole, and newer than the credentials
    /// ([`cio_credential::Problem::CredentialsOlder`]).
    CredentialsOlder,
    /// The log is whole, but credentials beside it were changed below cio.
    CredentialsDamaged,
    /// A break that may hide credentials put back from an earlier copy
    /// ([`cio_credential::Broken::may_hide_a_rollback`]), other than credentials older than
    /// the log and an entry past the manifest that does not open.
    MayHideRollback,
    /// An entry past the store's newest change that does not open
    /// ([`cio_credential::Problem::Unanchored`]): removing it is a way out that keeps data.
    Unanchored,
    /// Such an entry, gone ([`cio_credential::Problem::UnanchoredGone`]): acknowledgeable once
    /// the values are checked.
    UnanchoredGone,
}

/// The hint for a text given as CREDENTIALNAME that is no name: a suggestion only of a name
/// the command takes; the closest name, when the command refuses it, is answered with what
/// it takes instead (only `rotate` refuses names: a key's pair is rotated with
/// --access-key).
fn unknown_name_hint(
    command: &str,
    names: &crate::cli::CredentialNames,
    source: &cio_credential::UnknownName,
) -> String {
    use cio_credential::Field;
    let listed = names.listed;
    match (source.suggestion, source.refused, command) {
        (Some(s), _, _) => format!("did you mean {s}? {listed}"),
        (None, Some(r), _) if matches!(r.field, Field::AccessKey | Field::SecretKey) => format!(
            "an access key pair is rotated together, not by name: cio credential rotate {} --access-key; by name, rotate takes {}",
            r.set().options(),
            names.described
        ),
        (None, _, "create") => "the name comes first, as in 'cio credential create CREDENTIALNAME [VALUE]'; 'cio credential create --help' lists the 24 names".into(),
        (None, _, command) => format!(
            "give {}, as in 'cio credential {command} {}'; {}",
            names.described, names.example, names.more
        ),
    }
}
