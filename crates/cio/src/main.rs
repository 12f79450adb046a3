//! `cio`: the command-line tool. Thin: parse, run one command, render its error, exit.

mod allocator;
mod cli;
mod commands;
mod context;
mod error;
mod hardening;
mod input;
mod output;
mod prometheus;
mod prompt;
mod replace_file;

use std::io;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::cli::{Cli, CredentialCommand, Top};
use crate::context::Context;
use crate::error::CommandError;
use crate::output::Out;

/// The process's allocator, for Rust and (through `sqlite_use_process_allocator`) SQLite.
/// The shipped build links musl, whose allocator returns each freed page to the kernel at
/// once: `cio --version` made 66 `mmap`/`munmap` calls, `list` 140, one page fault each.
/// dlmalloc keeps freed memory (`--version` went from 0.76 to 0.39 ms of CPU, `list` from
/// 2.7 to 1.1 ms), and [`allocator`] maps its memory in populated (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: allocator::Allocator = allocator::Allocator::new();

/// The command line, as `Cli::try_parse` reads it, but the command tree clap builds for it is
/// left to the process's exit: dropping its hundreds of strings cost as many instructions
/// as parsing (callgrind, `cio credential list`: 237 k of 2.3 M).
fn parse() -> Result<Cli, clap::Error> {
    let mut command = Cli::command();
    let parsed = command
        .try_get_matches_from_mut(std::env::args_os())
        .and_then(|mut matches| {
            Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command))
        });
    std::mem::forget(command);
    parsed
}

fn main() -> ExitCode {
    hardening::harden();
    // SAFETY: no other thread exists yet, so none uses SQLite.
    unsafe { cio_credential::sqlite_use_process_allocator() };
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => {
            // A writer waiting on a named FIFO of a refused line would wait forever.
            let words: Vec<std::ffi::OsString> = std::env::args_os().collect();
            for path in cli::input_files_named(&words) {
                cio_credential::release_fifo(&path);
            }
            return usage_error(&e);
        }
    };
    let args = match cli.command {
        Top::Credential(args) => args,
        Top::Completion(a) => return finish(commands::completion::run(a), &mut Out::new(false)),
        Top::GenerateMan(a) => {
            return finish(commands::generate_man::run(a), &mut Out::new(false));
        }
    };
    let mut ctx = Context::new(args.global);
    let inputs = args.command.input_files();
    let result = match args.command {
        CredentialCommand::Create(a) => commands::create::run(&mut ctx, a),
        CredentialCommand::List => commands::list::run(&mut ctx),
        CredentialCommand::Remove(a) => commands::remove::run(&mut ctx, a),
        CredentialCommand::Show(a) => commands::show::run(&mut ctx, a),
        CredentialCommand::History(a) => commands::history::run(&mut ctx, a),
        CredentialCommand::Restore(a) => commands::restore::run(&mut ctx, a),
        CredentialCommand::Validate(a) => commands::validate::run(&mut ctx, a),
        CredentialCommand::Exec(a) => commands::exec::run(&mut ctx, a),
        CredentialCommand::Env(a) => commands::env::run(&mut ctx, a),
        CredentialCommand::Migrate(a) => commands::migrate::run(&mut ctx, a),
        CredentialCommand::Log(a) => commands::log::run(&mut ctx, a),
        CredentialCommand::Export(a) => commands::export::run(&mut ctx, a),
        CredentialCommand::Import(a) => commands::import::run(&mut ctx, a),
        CredentialCommand::Rotate(a) => commands::rotate::run(&mut ctx, a),
        CredentialCommand::Rekey(a) => commands::rekey::run(&mut ctx, a),
    };
    // "Nothing was changed" is of the credentials: files a first write made stay.
    if result.is_err() {
        for made in ctx.first_write_made() {
            ctx.out.warn(made);
        }
        // A writer waiting on a named FIFO the command did not read would wait forever.
        for path in &inputs {
            cio_credential::release_fifo(path);
        }
    }
    finish(result, &mut ctx.out)
}

/// The exit code of a command's result, after rendering its error on `out`.
fn finish(result: Result<(), CommandError>, out: &mut Out) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`cio credential list | head -1`) is a normal end, as in ripgrep.
        Err(CommandError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            // validate and list have already printed their result on stdout.
            let reported = matches!(
                e,
                CommandError::Validation { .. }
                    | CommandError::Listed { .. }
                    | CommandError::LogBroken { .. }
            );
            out.fail(&e.to_string(), &e.hint(), e.status(), reported);
            e.exit_code()
        }
    }
}

/// The credential commands' own option (`--store`, `--json`, ...: `GlobalArgs`) given before
/// `credential` (`cio --json credential list`): its name and how it is given
/// (`--store STORE`); `None` for anything else.
fn credential_option_before_credential() -> Option<(String, String)> {
    use clap::Args;
    let before: Vec<String> = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "credential")
        .map(|a| {
            a.to_string_lossy()
                .split('=')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let options = crate::cli::GlobalArgs::augment_args(clap::Command::new("credential"));
    options.get_arguments().find_map(|arg| {
        let name = format!("--{}", arg.get_long()?);
        before.contains(&name).then(|| {
            let given = match arg.get_value_names() {
                Some([value, ..]) if arg.get_action().takes_values() => format!("{name} {value}"),
                _ => name.clone(),
            };
            (name, given)
        })
    })
}

/// Renders a command-line error in cio's form, without the text the user typed: a
/// mistyped line may hold a secret (`create NAME -s3cret`, an unquoted password with
/// spaces), and clap's own message would repeat it.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let mut out = Out::new(std::env::args_os().any(|a| a == "--json"));
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            out.clap_message(e);
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            out.clap_message(e);
            return ExitCode::from(2);
        }
        _ => {}
    }
    if e.kind() == ErrorKind::UnknownArgument
        && let Some((option, given)) = credential_option_before_credential()
    {
        out.fail(
            &format!("usage: {option} is an option of the credential commands"),
            &format!("give it after 'credential', as in: cio credential list {given}"),
            2,
            false,
        );
        return ExitCode::from(2);
    }
    // An option given twice: clap says it as a conflict (of the option with itself). Each
    // option is taken once, rather than the last one winning (args_override_self): of two
    // --store, --key-file or --from-file, cio would otherwise pick one without a word.
    if e.kind() == ErrorKind::ArgumentConflict
        && let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg)
        && e.get(ContextKind::PriorArg) == e.get(ContextKind::InvalidArg)
    {
        out.fail(
            &format!("usage: {arg} is given more than once"),
            "give each option once; run the command again without the repeated one",
            2,
            false,
        );
        return ExitCode::from(2);
    }
    let what = match e.kind() {
        ErrorKind::UnknownArgument => "an argument that this command does not take".to_string(),
        ErrorKind::InvalidSubcommand => "an unknown command".to_string(),
        kind => kind
            .as_str()
            .unwrap_or("a command line it cannot read")
            .to_string(),
    };
    // The names of cio's own arguments are safe to show; for an unknown argument clap puts
    // the typed text there, so it is left out.
    let known = match (e.kind(), e.get(ContextKind::InvalidArg)) {
        (ErrorKind::UnknownArgument, _) | (_, None) => String::new(),
        (_, Some(ContextValue::String(arg))) => format!(": {arg}"),
        (_, Some(ContextValue::Strings(args))) => format!(": {}", args.join(", ")),
        (_, Some(_)) => String::new(),
    };
    // The accepted values (e.g. the shells of `completion`) are cio's own words: safe to show.
    let valid = match e.get(ContextKind::ValidValue) {
        Some(ContextValue::Strings(values)) if !values.is_empty() => {
            format!(" (one of: {})", values.join(", "))
        }
        _ => String::new(),
    };
    let hint = match e.kind() {
        ErrorKind::InvalidUtf8 => {
            "give it as UTF-8 text: for a file whose path is not, rename it or point at it through a link whose path is UTF-8 (cio never reads such a value lossily: it would name another file)"
        }
        _ => {
            "run 'cio credential --help' (or COMMAND --help; 'cio --help' for completion); a value with spaces needs quotes, and one that starts with '-' goes after '--' (cio credential create NAME -- VALUE), or better on standard input"
        }
    };
    out.fail(&format!("usage: {what}{known}{valid}"), hint, 2, false);
    ExitCode::from(2)
}
