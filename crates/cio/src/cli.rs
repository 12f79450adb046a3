//! The command line. Doc comments here are the help text users see.

use std::path::PathBuf;

use cio_credential::{CredentialName, Field, Provider, Role, Settings};
use clap::builder::{PossibleValue, StringValueParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands::{
    create, env, exec, export, history, import, list, log, migrate, rekey, remove, restore, rotate,
    show, validate,
};

// No argument type derives `Debug`: `CreateArgs` holds a value given on the command line, and
// nothing may print it.

/// cio: storage cluster tools.
#[derive(Parser)]
#[command(name = "cio", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Top,
}

/// The top-level commands. Not deferred (as `CredentialCommand` is): clap copies the command
/// tree into the `help` command before it would build a deferred one, and the completion
/// scripts then lost `cio help credential <TAB>`.
#[derive(Subcommand)]
pub enum Top {
    /// Manage credentials for cloud providers and backup services.
    Credential(CredentialArgs),

    /// Print the shell completion script for cio
    ///
    /// The Debian package installs it for bash, zsh and fish. By hand, e.g. for bash:
    /// cio completion bash > ~/.local/share/bash-completion/completions/cio
    Completion(CompletionArgs),

    /// Write the man pages of cio and every subcommand into DIR (for packaging)
    #[command(hide = true)]
    GenerateMan(GenerateManArgs),
}

#[derive(Args)]
pub struct CompletionArgs {
    /// The shell to complete for
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

/// A shell `cio completion` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Args)]
pub struct GenerateManArgs {
    /// The folder to write the pages into (it must exist)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Accepts any text as a credential name (the command checks it and suggests the closest
/// known name: clap's own refusal would repeat what was typed) while offering the catalog's
/// names the command takes to shell completion as the argument's possible values.
/// Its words name what the command takes, for the hint of a text that is no name.
#[derive(Clone, Copy, Debug)]
pub struct CredentialNames {
    /// Whether the command takes the name.
    pub takes: fn(&CredentialName) -> bool,
    /// The names the command takes, in words.
    pub described: &'static str,
    /// A name the command takes, for an example.
    pub example: &'static str,
    /// What follows the example.
    pub more: &'static str,
    /// What follows a suggestion.
    pub listed: &'static str,
}

impl CredentialNames {
    /// Every name of the catalog.
    pub const ANY: CredentialNames = CredentialNames {
        takes: |_| true,
        described: "one of the 24 names",
        example: "cio_aws_access_key",
        more: "'cio credential create --help' lists them",
        listed: "'cio credential create --help' lists the 24 names",
    };
    /// The primary sets' repository passwords: what `rotate` changes by name.
    pub const ROTATED: CredentialNames = CredentialNames {
        takes: |n| n.field == Field::BackupPassword && n.role == Role::Primary,
        described: "cio_aws_backup_password or cio_minio_backup_password",
        example: "cio_aws_backup_password",
        more: ROTATED_KEYS,
        listed: ROTATED_KEYS,
    };
}

/// How `rotate` changes what it does not take by name.
const ROTATED_KEYS: &str =
    "an access key pair is rotated with 'cio credential rotate --provider P --access-key'";

/// A value that must be text (a store location, which may be a URL; a bundle file that may
/// be `-`): one that is not UTF-8 is refused naming its argument, never read lossily (U+FFFD
/// for each invalid byte would name another file).
#[derive(Clone, Copy)]
pub struct Utf8Text;

impl TypedValueParser for Utf8Text {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        use clap::error::{ContextKind, ContextValue, ErrorKind};
        value.to_str().map(str::to_string).ok_or_else(|| {
            let mut e = clap::Error::new(ErrorKind::InvalidUtf8).with_cmd(cmd);
            if let Some(arg) = arg {
                e.insert(
                    ContextKind::InvalidArg,
                    ContextValue::String(arg.to_string()),
                );
            }
            e
        })
    }
}

impl TypedValueParser for CredentialNames {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            CredentialName::all()
                .filter(|name| (self.takes)(name))
                .map(|name| PossibleValue::new(name.to_string())),
        ))
    }
}

#[derive(Args)]
#[command(after_long_help = NAMES_HELP)]
pub struct CredentialArgs {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: CredentialCommand,
}

// Options every credential command takes. Each also comes from the environment
// (CIO_STORE, CIO_KEY_FILE, CIO_ETCD_*) or the node configuration file (/etc/cio/cio.toml as
// root, or $XDG_CONFIG_HOME/cio/cio.toml; CIO_CONFIG overrides); a flag wins over both.
// (Not a doc comment: clap would make it the description of `cio credential`, as it builds
// these options after the description; see `defer` on `CredentialCommand`.)
#[derive(Args)]
pub struct GlobalArgs {
    /// The credential store: a file path for the embedded store, or
    /// etcd://HOST:PORT[,HOST:PORT...][/PREFIX] (etcds:// for TLS) for the cluster store
    /// [env: CIO_STORE] [default: /var/lib/cio/credentials.db as root, else
    /// $XDG_DATA_HOME/cio/credentials.db]
    #[arg(long, global = true, value_name = "STORE", value_parser = Utf8Text)]
    pub store: Option<String>,

    /// The key file that seals the store's values [env: CIO_KEY_FILE] [default:
    /// /etc/cio/credential.key as root, else $XDG_CONFIG_HOME/cio/credential.key]
    #[arg(long, global = true, value_name = "PATH")]
    pub key_file: Option<PathBuf>,

    /// etcds:// only: the CA certificate of the etcd members [env: CIO_ETCD_CACERT]
    #[arg(long, global = true, value_name = "PATH")]
    pub etcd_cacert: Option<PathBuf>,

    /// etcds:// only: this node's client certificate [env: CIO_ETCD_CERT]
    #[arg(long, global = true, value_name = "PATH")]
    pub etcd_cert: Option<PathBuf>,

    /// etcds:// only: this node's client key [env: CIO_ETCD_KEY]
    #[arg(long, global = true, value_name = "PATH")]
    pub etcd_key: Option<PathBuf>,

    /// Print machine-readable JSON on standard output instead of text
    #[arg(long, global = true)]
    pub json: bool,
}

impl GlobalArgs {
    /// The options given as flags that choose the store and how it is opened (not `--json`):
    /// a command cio offers in its text needs them again ([`crate::output::Out::offering_flags`]).
    pub fn given_flags(&self) -> Vec<&'static str> {
        [
            ("--store", self.store.is_some()),
            ("--key-file", self.key_file.is_some()),
            ("--etcd-cacert", self.etcd_cacert.is_some()),
            ("--etcd-cert", self.etcd_cert.is_some()),
            ("--etcd-key", self.etcd_key.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect()
    }

    /// The flags' layer of the settings (the library resolves the others).
    pub fn settings(&self) -> Settings {
        let mut flags = Settings::default();
        flags.store.clone_from(&self.store);
        flags.key_file.clone_from(&self.key_file);
        flags.etcd_cacert.clone_from(&self.etcd_cacert);
        flags.etcd_cert.clone_from(&self.etcd_cert);
        flags.etcd_key.clone_from(&self.etcd_key);
        flags
    }
}

/// Whether `word` is the name or an alias of a credential command (`restore`, `rm`, ...).
pub fn is_credential_command(word: &str) -> bool {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    NAMES
        .get_or_init(|| {
            let commands = CredentialCommand::augment_subcommands(clap::Command::new("credential"));
            commands
                .get_subcommands()
                .flat_map(|c| {
                    std::iter::once(c.get_name())
                        .chain(c.get_all_aliases())
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .collect()
        })
        .iter()
        .any(|name| name == word)
}

// The credential commands. With `defer`, a command's arguments are built only when it runs or
// its help, completion or man page is asked for: before, every start built all 15 commands'
// arguments, and clap copied the six global options into each (BENCHMARKS.md, session 7).
// Not a doc comment: clap would make it the description of `cio credential`, as with
// `GlobalArgs`.
#[derive(Subcommand)]
#[command(defer = true)]
pub enum CredentialCommand {
    /// Create credential for provider or backup service
    ///
    /// Without VALUE the value is read from standard input when it is not a terminal (one
    /// trailing newline is stripped), else prompted for without echo (twice for passwords).
    /// A secret given as VALUE works but lands in shell history and the process list.
    /// Creating a name that exists replaces its value; the earlier value is kept as a version.
    #[command(visible_alias = "add", after_long_help = create::EXAMPLES)]
    Create(create::CreateArgs),

    /// List all credentials (secrets masked) and whether each set is complete
    #[command(visible_alias = "ls", after_long_help = list::EXAMPLES)]
    List,

    /// Remove a credential (it can be restored until purged)
    #[command(visible_aliases = ["delete", "rm"], after_long_help = remove::EXAMPLES)]
    Remove(remove::RemoveArgs),

    /// Show one credential: its metadata and masked value
    #[command(after_long_help = show::EXAMPLES)]
    Show(show::ShowArgs),

    /// List the versions of a credential, oldest first, values masked
    #[command(after_long_help = history::EXAMPLES)]
    History(history::HistoryArgs),

    /// Bring back a removed credential or an earlier value
    #[command(after_long_help = restore::EXAMPLES)]
    Restore(restore::RestoreArgs),

    /// Validate a credential: offline rules, then live checks of its set
    ///
    /// Without CREDENTIALNAME, every set that has a credential (narrowed by --provider and
    /// --alternate). Per set, in order: completeness, value rules, endpoint (DNS, TCP, TLS),
    /// credentials, bucket and region, permissions (list, read; with --write-check also put
    /// and delete of a probe object), repository, password, and a summary of the snapshots.
    /// The first failure skips the later checks. Sets are checked concurrently.
    /// Exit 0 when nothing failed (warnings allowed), 1 otherwise.
    #[command(after_long_help = validate::EXAMPLES)]
    Validate(validate::ValidateArgs),

    /// Run a command (the backup engine) with a complete set in its environment
    ///
    /// COMMAND replaces cio: its signals and exit status are its own. It gets
    /// RESTIC_REPOSITORY, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and RESTIC_PASSWORD (and
    /// AWS_DEFAULT_REGION when the set has a region), as restic reads them, and none of
    /// AWS_SESSION_TOKEN, RESTIC_PASSWORD_FILE,
    /// RESTIC_PASSWORD_COMMAND, RESTIC_REPOSITORY_FILE. An incomplete set runs nothing.
    #[command(after_long_help = exec::EXAMPLES)]
    Exec(exec::ExecArgs),

    /// Print a complete set as environment variables for restic
    ///
    /// For `eval "$(cio credential env --provider minio)"` in sh or bash. The values are
    /// secrets: prefer `cio credential exec`, which never prints them.
    ///
    /// The first line unsets, in the shell that runs it, what would override the set, so that
    /// restic sees only the set, as validate checked it: AWS_SESSION_TOKEN,
    /// AWS_SECURITY_TOKEN, AWS_DEFAULT_REGION, AWS_REGION, AWS_PROFILE, AWS_CONFIG_FILE,
    /// AWS_SHARED_CREDENTIALS_FILE, AWS_CA_BUNDLE, RESTIC_REPOSITORY_FILE,
    /// RESTIC_PASSWORD_FILE, RESTIC_PASSWORD_COMMAND, RESTIC_FROM_REPOSITORY,
    /// RESTIC_FROM_REPOSITORY_FILE, RESTIC_FROM_PASSWORD, RESTIC_FROM_PASSWORD_FILE,
    /// RESTIC_FROM_PASSWORD_COMMAND, RESTIC_FROM_KEY_HINT, RESTIC_CACERT and
    /// RESTIC_TLS_CLIENT_CERT (AWS_DEFAULT_REGION is then set again when the set has a
    /// region). cio's own CIO_ETCD_USER and CIO_ETCD_PASSWORD are left as they are: they were
    /// in that shell already, and the next cio command needs them (exec removes them from its
    /// command's environment).
    ///
    /// A set with a CA certificate also sets SSL_CERT_FILE to a bundle cio keeps in the
    /// runtime folder ($XDG_RUNTIME_DIR/cio, or /run/cio for root), and keeps an
    /// SSL_CERT_FILE of your own in CIO_CALLER_SSL_CERT_FILE. The bundle holds only the
    /// certificates (PEM CERTIFICATE blocks) of your own file, or of the system's, then the
    /// set's; your file is read only when it is a regular file of at most 16 MiB. It is
    /// written only in a folder (not a link) that is this user's or root's and that no one
    /// else may write, made 0700 when missing, and never over a file cio did not write (one
    /// without its '# cio-cacert-sha256:' line): else env refuses, and exec, which needs no
    /// file, still works. Once the set has no CA certificate, an SSL_CERT_FILE that names a
    /// cio bundle is set back to your own file, or unset; cio deletes a bundle once its
    /// certificate is removed or replaced, never a file it did not write.
    #[command(after_long_help = env::EXAMPLES)]
    Env(env::EnvArgs),

    /// Copy every credential, with its history, into another store
    ///
    /// For a single node that grows into a cluster: copies the embedded store into the
    /// cluster store (etcd), with the same key. Names the target already holds identically
    /// are skipped; newer or different data there is never overwritten.
    #[command(after_long_help = migrate::EXAMPLES)]
    Migrate(migrate::MigrateArgs),

    /// Seal sets into a recovery bundle: an age file that outlives this cluster
    ///
    /// The bundle holds every complete set (narrowed by --provider and --alternate) with its
    /// optional credentials, sealed with age to a passphrase or to recipients, ASCII-armored
    /// so it can be printed or kept in a password manager. Nothing unencrypted is written.
    #[command(after_long_help = export::EXAMPLES)]
    Export(export::ExportArgs),

    /// Write the sets of a recovery bundle into this store, all or nothing
    ///
    /// Shows what it will write (values masked) and keeps earlier values as versions. A
    /// changed, cut or wrongly opened bundle writes nothing.
    #[command(after_long_help = import::EXAMPLES)]
    Import(import::ImportArgs),

    /// Change a repository password in step with the repository, safely
    ///
    /// Reads the new password from standard input when it is not a terminal, else asks for
    /// it twice without echo (or makes one with --generate). The repository gets a restic key
    /// for the new password before it is stored, and loses the old password's key after.
    /// Only a primary set is rotated: the alternate set's repository belongs to another
    /// cluster.
    #[command(after_long_help = rotate::EXAMPLES)]
    Rotate(rotate::RotateArgs),

    /// Replace the key that seals the store: add, switch, reseal, retire
    ///
    /// Without --stage, all four at once, for a store no other node uses. Across a cluster,
    /// one stage at a time, the way Kubernetes rotates its encryption keys: a node keeps
    /// working until the re-seal, and then needs the new key file.
    #[command(after_long_help = rekey::EXAMPLES)]
    Rekey(rekey::RekeyArgs),

    /// Show the change log: who changed which credential, when, on which node
    ///
    /// Every change is an entry: its time, the user (uid and name, and the sudo user), the
    /// host, the command, the credential and its version, the outcome; never a value. With
    /// --verify, checks that no entry was edited, deleted or replaced.
    #[command(after_long_help = log::EXAMPLES)]
    Log(log::LogArgs),
}

impl CredentialCommand {
    /// The files the command reads input from (a `--from-file`, a recipients file, a bundle,
    /// an identity): a named FIFO among them that the command stops before reading, or
    /// refuses, is let go ([`cio_credential::release_fifo`]) when it fails.
    pub fn input_files(&self) -> Vec<PathBuf> {
        match self {
            CredentialCommand::Create(a) => a.from_file.iter().cloned().collect(),
            CredentialCommand::Export(a) => a.recipients_files.clone(),
            CredentialCommand::Import(a) => a
                .file
                .iter()
                .filter(|file| *file != "-")
                .map(PathBuf::from)
                .chain(a.identities.iter().cloned())
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// The options that name an input file ([`CredentialCommand::input_files`]).
const INPUT_FILE_OPTIONS: [&str; 4] = ["--from-file", "--recipients-file", "--identity", "-i"];

/// The input files a command line's words name through [`INPUT_FILE_OPTIONS`] (`--NAME FILE`
/// or `--NAME=FILE`), and import's FILE ([`import_files_named`]): for a line clap refused,
/// which was never read into a command, so that a FIFO among them is let go all the same.
pub fn input_files_named(words: &[std::ffi::OsString]) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut found = Vec::new();
    let mut rest = words.iter();
    while let Some(word) = rest.next() {
        let bytes = word.as_bytes();
        for option in INPUT_FILE_OPTIONS {
            if bytes == option.as_bytes() {
                found.extend(rest.clone().next().map(PathBuf::from));
            } else if let Some(value) = bytes
                .strip_prefix(option.as_bytes())
                .and_then(|rest| rest.strip_prefix(b"="))
            {
                found.push(PathBuf::from(std::ffi::OsStr::from_bytes(value)));
            }
        }
    }
    found.extend(import_files_named(words));
    found
}

/// The words of a refused `cio credential import` line that are neither an option nor an
/// option's value: its FILE, possibly among words clap refused. Empty for any other command,
/// so that no other command's words (a VALUE of `create`, a secret) are ever looked up as
/// paths. Which options take a value is read from the command tree itself.
fn import_files_named(words: &[std::ffi::OsString]) -> Vec<PathBuf> {
    use clap::CommandFactory;
    let mut top = Cli::command();
    top.build();
    let mut command = &top;
    let mut positional = Vec::new();
    let mut words = words.iter().skip(1);
    let mut options_end = false;
    while let Some(word) = words.next() {
        let text = word.to_string_lossy();
        if !options_end && text == "--" {
            options_end = true;
        } else if !options_end && text.len() > 1 && text.starts_with('-') {
            let takes_value = |arg: &clap::Arg| arg.get_action().takes_values();
            let named = match text.strip_prefix("--") {
                Some(long) if !long.contains('=') => command.get_arguments().find(|a| {
                    a.get_long() == Some(long)
                        || a.get_all_aliases().is_some_and(|all| all.contains(&long))
                }),
                Some(_) => None,
                None if text.chars().count() == 2 => {
                    let short = text.chars().nth(1);
                    command.get_arguments().find(|a| a.get_short() == short)
                }
                None => None,
            };
            if named.is_some_and(takes_value) {
                words.next();
            }
        } else if let Some(sub) = (!options_end)
            .then(|| command.find_subcommand(word))
            .flatten()
        {
            command = sub;
        } else {
            positional.push(PathBuf::from(word));
        }
    }
    match command.get_name() == "import" {
        true => positional,
        false => Vec::new(),
    }
}

/// The credential names and exit codes, for the long help of `credential` and `create`.
macro_rules! names_help {
    () => {
        "\
Credential names (a set is the four of one provider; _alt names are the alternate
cluster's set, used to restore its backups for disaster recovery):
  cio_aws_backup_repo        cio_aws_alt_backup_repo        URL of the S3 repository
  cio_aws_access_key         cio_aws_alt_access_key         access key of the backup user
  cio_aws_secret_key         cio_aws_alt_secret_key         secret key of the backup user
  cio_aws_backup_password    cio_aws_alt_backup_password    password of the backup repository
  cio_minio_backup_repo      cio_minio_alt_backup_repo      and the same four for MinIO
  cio_minio_access_key       cio_minio_alt_access_key       (or any S3-compatible service)
  cio_minio_secret_key       cio_minio_alt_secret_key
  cio_minio_backup_password  cio_minio_alt_backup_password
Optional, per set (not needed for a complete set):
  cio_aws_region             cio_aws_alt_region             S3 signing region (us-east-1, nl-ams)
  cio_aws_cacert             cio_aws_alt_cacert             PEM CA certificate to trust (TLS)
  cio_minio_region           cio_minio_alt_region
  cio_minio_cacert           cio_minio_alt_cacert

Settings: a flag wins, then the CIO_* environment variables, then the node configuration
file (/etc/cio/cio.toml as root, else $XDG_CONFIG_HOME/cio/cio.toml; CIO_CONFIG overrides),
with the keys store, key_file, etcd_cacert, etcd_cert, etcd_key; then the defaults.
etcd user and password: CIO_ETCD_USER and CIO_ETCD_PASSWORD.

Exit codes: 0 success, 1 the operation or a validation failed, 2 usage error,
3 the store or key cannot be used."
    };
}

const NAMES_HELP: &str = names_help!();

pub(crate) use names_help;

/// A provider, as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderArg {
    Aws,
    Minio,
}

impl From<ProviderArg> for Provider {
    fn from(p: ProviderArg) -> Self {
        match p {
            ProviderArg::Aws => Provider::Aws,
            ProviderArg::Minio => Provider::Minio,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::input_files_named;
    use std::ffi::OsString;
    use std::path::PathBuf;

    fn named(line: &[&str]) -> Vec<PathBuf> {
        let words: Vec<OsString> = line.iter().map(OsString::from).collect();
        input_files_named(&words)
    }

    /// Only import's words are taken as its FILE: no other command's words (a VALUE, a
    /// secret) are ever looked up as paths.
    #[test]
    fn only_imports_positional_words_are_taken_as_files() {
        assert_eq!(
            named(&[
                "cio",
                "credential",
                "create",
                "cio_aws_secret_key",
                "S3cret",
                "--bogus"
            ]),
            Vec::<PathBuf>::new()
        );
        assert_eq!(
            named(&["cio", "credential", "show", "S3cret", "--bogus"]),
            Vec::<PathBuf>::new()
        );
        assert_eq!(
            named(&[
                "cio",
                "credential",
                "--store",
                "/s.db",
                "import",
                "--provider",
                "aws",
                "-i",
                "/id",
                "/b.age",
                "--bogus"
            ]),
            [PathBuf::from("/id"), PathBuf::from("/b.age")]
        );
        assert_eq!(
            named(&[
                "cio",
                "credential",
                "import",
                "--as-alternate",
                "--",
                "-b.age"
            ]),
            [PathBuf::from("-b.age")]
        );
    }
}
