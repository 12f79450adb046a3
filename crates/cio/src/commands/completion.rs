//! `cio completion bash|zsh|fish`: the shell completion script, generated from the one clap
//! definition (clap_complete), so it always matches the commands, flags and credential names.
//!
//! What clap_complete cannot say is added here, from the same definition:
//! - hidden commands (`generate-man`, for packaging) are left out, also under `help`;
//! - bash and fish offer the credential names in the CREDENTIALNAME position only (bash
//!   offered them in every position, `create NAME <Tab>` included, where the secret VALUE
//!   goes; fish's generator completes no positional argument at all);
//! - bash completes a command line of its own after `exec --`, as it does after `sudo`.

use std::fmt::Write as _;
use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionArgs, Shell};
use crate::error::CommandError;

pub fn run(args: CompletionArgs) -> Result<(), CommandError> {
    let mut script = Vec::new();
    let mut cmd = shown_commands();
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    // Builds `cmd` (global options propagated, `help` added), as read below.
    clap_complete::generate(shell, &mut cmd, "cio", &mut script);
    let (credential, commands) = credential_commands(&cmd);
    let added = match args.shell {
        Shell::Bash => bash_additions(&credential, &commands),
        Shell::Zsh => String::new(),
        Shell::Fish => fish_additions(&commands),
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&script)?;
    stdout.write_all(added.as_bytes())?;
    Ok(())
}

/// cio's command tree without its hidden commands: clap_complete offers every subcommand it
/// is given, and clap copies them all into `help`.
fn shown_commands() -> clap::Command {
    let full = Cli::command();
    let mut shown = clap::Command::new(full.get_name().to_string())
        .subcommands(full.get_subcommands().filter(|c| !c.is_hide_set()).cloned());
    if let Some(version) = full.get_version() {
        shown = shown.version(version.to_string());
    }
    if let Some(about) = full.get_about() {
        shown = shown.about(about.clone());
    }
    shown
}

/// A credential command as the additions need it.
struct Completed {
    /// Its name and visible aliases.
    names: Vec<String>,
    /// Its options that take a value: (short, long).
    valued: Vec<(Option<char>, String)>,
    /// Its flags (options without a value): (short, long).
    flags: Vec<(Option<char>, String)>,
    /// The names its first positional argument (CREDENTIALNAME) offers; empty for none.
    credential_names: Vec<String>,
}

/// `cio credential` itself (its options are every command's), and every command of it but
/// `help`, of the built tree.
fn credential_commands(cmd: &clap::Command) -> (Completed, Vec<Completed>) {
    let credential = cmd
        .find_subcommand("credential")
        .expect("cio has a credential command (cli.rs: Top::Credential)");
    let commands = credential
        .get_subcommands()
        .filter(|c| c.get_name() != "help")
        .map(completed)
        .collect();
    (completed(credential), commands)
}

fn completed(c: &clap::Command) -> Completed {
    let options = c.get_arguments().filter(|a| a.get_long().is_some());
    let (valued, flags): (Vec<_>, Vec<_>) =
        options.partition(|a| a.get_num_args().is_none_or(|n| n.takes_values()));
    let spec = |a: &&clap::Arg| (a.get_short(), a.get_long().unwrap_or_default().into());
    Completed {
        names: c
            .get_name_and_visible_aliases()
            .into_iter()
            .map(str::to_string)
            .collect(),
        valued: valued.iter().map(spec).collect(),
        flags: flags.iter().map(spec).collect(),
        credential_names: c
            .get_positionals()
            .next()
            .map(|a| {
                a.get_possible_values()
                    .iter()
                    .map(|v| v.get_name().to_string())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The options of `c` that take a value, as typed: `-o --output`.
fn valued_words(c: &Completed) -> String {
    c.valued
        .iter()
        .flat_map(|(short, long)| {
            short
                .map(|s| format!("-{s}"))
                .into_iter()
                .chain([format!("--{long}")])
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// bash: `_cio_credential` runs first and hands to clap_complete's `_cio` what it does not
/// decide itself: after `exec --`, a command line (bash-completion's `_command_offset`, as
/// for sudo, else command names, then files); once a command's CREDENTIALNAME is given, no
/// name again (and no file: create's VALUE is a secret, typed or piped, never a path).
fn bash_additions(credential: &Completed, commands: &[Completed]) -> String {
    let mut valued = String::new();
    let mut named = Vec::new();
    for c in commands {
        let _ = writeln!(
            valued,
            "        {}) echo '{}' ;;",
            c.names.join("|"),
            valued_words(c)
        );
        if !c.credential_names.is_empty() {
            named.extend(c.names.iter().cloned());
        }
    }
    format!(
        r#"
# Added by cio to clap_complete's script (crates/cio/src/commands/completion.rs).
# The options of cio credential COMMAND that take a value.
_cio_valued_options() {{
    case "$1" in
{valued}        *) echo '{globals}' ;;
    esac
}}

_cio_credential() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" i word sub="" dashdash=0 value=0 positionals=0
    if [[ "${{COMP_WORDS[1]}}" != credential ]]; then
        _cio "$@"
        return
    fi
    for ((i = 2; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        if ((value)); then
            value=0
        elif ((dashdash)) || [[ "$word" != -* ]]; then
            if [[ -z "$sub" ]]; then sub="$word"; else ((positionals++)); fi
        elif [[ "$word" == -- ]]; then
            dashdash=$i
        elif [[ "$word" != *=* && " $(_cio_valued_options "$sub") " == *" $word "* ]]; then
            value=1
        fi
    done
    if [[ "$sub" == exec ]] && ((dashdash)); then
        if ((dashdash == COMP_CWORD - 1)); then
            COMPREPLY=($(compgen -c -- "$cur"))
        elif declare -F _command_offset >/dev/null; then
            _command_offset $((dashdash + 1))
        else
            COMPREPLY=($(compgen -f -- "$cur"))
        fi
        return 0
    fi
    case "$sub" in
        {named})
            if ((!value && positionals > 0)) && [[ "$cur" != -* || $dashdash -gt 0 ]]; then
                COMPREPLY=()
                compopt +o default +o bashdefault 2>/dev/null
                return 0
            fi
            ;;
    esac
    _cio "$@"
}}

if [[ "${{BASH_VERSINFO[0]}}" -eq 4 && "${{BASH_VERSINFO[1]}}" -ge 4 || "${{BASH_VERSINFO[0]}}" -gt 4 ]]; then
    complete -F _cio_credential -o nosort -o bashdefault -o default cio
else
    complete -F _cio_credential -o bashdefault -o default cio
fi
"#,
        named = named.join("|"),
        globals = valued_words(credential),
    )
}

/// fish: the names of each command that takes one, while no positional argument follows
/// the command yet (its options, read with argparse, are skipped).
fn fish_additions(commands: &[Completed]) -> String {
    let mut text = String::from(
        r#"
# Added by cio to clap_complete's script (crates/cio/src/commands/completion.rs).
# Whether the word being completed is the CREDENTIALNAME of `cio credential COMMAND`;
# $argv: argparse's specs of the command's options.
function __fish_cio_credential_name_wanted
    set -l words (commandline -opc)
    set -e words[1]
    argparse -i $argv -- $words 2>/dev/null
    or return 1
    # Left: credential, COMMAND, and the positional arguments given so far.
    test (count $argv) -eq 2
end
"#,
    );
    for c in commands.iter().filter(|c| !c.credential_names.is_empty()) {
        let spec = |(short, long): &(Option<char>, String), valued: bool| {
            let eq = if valued { "=" } else { "" };
            match short {
                Some(s) => format!("{s}/{long}{eq}"),
                None => format!("{long}{eq}"),
            }
        };
        let specs: Vec<String> = c
            .valued
            .iter()
            .map(|o| spec(o, true))
            .chain(c.flags.iter().map(|o| spec(o, false)))
            .collect();
        let _ = writeln!(
            text,
            "complete -c cio -n \"__fish_cio_using_subcommand credential; and __fish_seen_subcommand_from {}; and __fish_cio_credential_name_wanted {}\" -f -a \"{}\"",
            c.names.join(" "),
            specs.join(" "),
            c.credential_names.join(" "),
        );
    }
    text
}
