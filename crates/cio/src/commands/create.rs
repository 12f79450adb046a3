//! `cio credential create|add NAME [VALUE]`: create or replace a credential.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use cio_credential::{Action, Allow, CredentialName, PasswordChange, check_password_change};

use crate::cli::names_help;
use crate::commands::{ca_file, escrow};
use crate::context::{Context, parse_name};
use crate::error::CommandError;
use crate::input::read_value;
use crate::output::warnings_json;

#[derive(Args)]
pub struct CreateArgs {
    /// The credential's name, e.g. cio_aws_access_key
    #[arg(value_name = "CREDENTIALNAME", value_parser = crate::cli::CredentialNames::ANY, hide_possible_values = true)]
    pub name: String,
    /// The value; omit it to read standard input or be prompted
    pub value: Option<String>,
    /// Read the value from this file (one trailing newline is stripped), e.g. the PEM file of
    /// a cio_*_cacert
    #[arg(long, value_name = "PATH", conflicts_with = "value")]
    pub from_file: Option<PathBuf>,
    /// Keep white space at either end of a repository password, or a tab inside it, as given
    /// (restic accepts such a password; another cluster's may hold one). Refused by default:
    /// far more often it is a paste error
    #[arg(long)]
    pub allow_whitespace: bool,
    /// Keep any character of a repository password as given: line breaks, control and
    /// invisible characters (a zero-width non-joiner, which Persian writing needs; a soft
    /// hyphen), white space at either end. restic accepts them all; only NUL is refused.
    /// Refused by default: far more often a paste error
    #[arg(long)]
    pub allow_any_character: bool,
    /// A repository password only: store it although its repository answers, because the
    /// repository's password was already changed elsewhere (it must open the repository)
    #[arg(long)]
    pub force: bool,
}

/// The long help's end: the names, then examples.
pub const EXAMPLES: &str = concat!(
    names_help!(),
    "\n\n",
    "\
Examples:
  Create set of credentials for an AWS S3 repository
    cio credential create cio_aws_backup_repo s3:https://s3.amazonaws.com/backup-123
    cio credential create cio_aws_access_key AKIAYHD623GGZX7VDFMJ
    cio credential create cio_aws_secret_key 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
    cio credential create cio_aws_backup_password password

  Keep a secret out of shell history
    cio credential create cio_minio_secret_key          (prompts without echo)
    vault read -field=secret kv/minio | cio credential create cio_minio_secret_key

  Trust a private CA or a self-signed endpoint
    cio credential create cio_minio_cacert --from-file /etc/ssl/private-ca.pem

Repository URLs, as restic reads them: s3:https://HOST[:PORT]/BUCKET[/PREFIX],
s3:http://..., s3:HOST/BUCKET[/PREFIX] or s3://HOST/BUCKET[/PREFIX]."
);

pub fn run(ctx: &mut Context, args: CreateArgs) -> Result<(), CommandError> {
    const ACTION: &str = "Create credential";
    let name = parse_name(
        ACTION,
        "create",
        crate::cli::CredentialNames::ANY,
        &args.name,
    )
    .map_err(|e| {
        // `create VALUE NAME`: say so, without repeating either.
        match args.value.as_deref().map(str::parse::<CredentialName>) {
            Some(Ok(name)) => CommandError::Swapped { name },
            _ => e,
        }
    })?;
    let value =
        read_value(&ctx.out, name, args.value, args.from_file.as_deref()).map_err(|problem| {
            CommandError::Input {
                action: format!("{ACTION}: {name}"),
                problem,
            }
        })?;
    let store = ctx.open(ACTION)?;
    // A new repository password must not be stored behind the repository's back.
    let change = check_password_change(&store, name, &value, args.force)
        .map_err(|e| CommandError::library(ACTION, e))?;
    if let PasswordChange::Unchecked(why) = change {
        ctx.out.warn(format!(
            "{name}: the repository could not be asked whether it still wants the old password ({why}); if it does, change it with 'cio credential rotate {name}' instead"
        ));
    }
    let allow = Allow {
        whitespace: args.allow_whitespace,
        any_character: args.allow_any_character,
    };
    let written = store
        .put_allowing(name, &value, allow)
        .map_err(|e| CommandError::library(ACTION, e))?;
    ca_file::sweep(ctx, &store, None);
    ctx.out.warn_value(name, &written.warnings);
    ctx.out.warn_log_damage(store.log_damage(), true);
    if ctx.out.json {
        ctx.out.json(&json!({
            "name": name,
            "action": written.action,
            "version": written.version,
            "warnings": warnings_json(&written.warnings),
        }))?;
    } else if written.action == Action::Update {
        ctx.out.succeed(
            "Update",
            format!(
                "{name} (version {}; earlier values: cio credential history {name})",
                written.version
            ),
        )?;
    } else {
        ctx.out.succeed("Create", name.to_string())?;
    }
    escrow::refresh_after_write(ctx, &store, &[name]);
    Ok(())
}
