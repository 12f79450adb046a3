//! `cio`: the command-line tool. Thin: parse, run one command, render its error, exit.

mod cli;
mod commands;
mod context;
mod error;
mod input;
mod output;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, CredentialCommand, Top};
use crate::context::Context;
use crate::error::CommandError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Top::Credential(args) = cli.command;
    let mut ctx = Context::new(args.global);
    let json = ctx.out.json;
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`cio credential list | head -1`) is a normal end, as in ripgrep.
        Err(CommandError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            let mut stderr = io::stderr().lock();
            let _ = writeln!(stderr, "Fail: {e}");
            let _ = writeln!(stderr, "Hint: {}", e.hint());
            // With --json the failure is also a JSON document on stdout (validate has
            // already printed its report there).
            if json && !matches!(e, CommandError::Validation { .. }) {
                let doc = serde_json::json!({
                    "error": {"exit_code": e.status(), "message": e.to_string(), "hint": e.hint()}
                });
                let _ = writeln!(io::stdout(), "{doc}");
            }
            e.exit_code()
        }
    }
}
