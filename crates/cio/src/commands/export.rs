//! `cio credential export`: seal the chosen sets into a recovery bundle (a standard,
//! ASCII-armored age file), to a file, standard output, or beside each set's repository.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use cio_credential::{
    Bundle, CredentialStore, Error, EscrowError, Listed, Recipient, RecipientSource, RecoveryError,
    Role, SealTo, SetId, check_bundle_output, check_passphrase, escrow_set, seal_bundle,
    write_bundle_file,
};

use crate::cli::ProviderArg;
use crate::commands::bundle_input;
use crate::commands::escrow::configured_recipients;
use crate::context::Context;
use crate::error::CommandError;
use crate::input::WaitNotice;

const ACTION: &str = "Export credentials";

pub const EXAMPLES: &str = "\
Examples:
  A bundle of every complete set, sealed to a passphrase, kept offline (print it, or store
  it in a password manager)
    cio credential export --output /root/cluster-a.recovery.age

  Sealed to a recovery key (made with age-keygen) and to the administrators' SSH keys
    cio credential export --recipient \"$(age-keygen -y /root/recovery-key.txt)\" \\
        --recipients-file /etc/cio/admins.pub --output /root/cluster-a.recovery.age

  Escrow: each primary set's bundle beside its repository, sealed to recovery_recipients
  (cio.toml) or --recipient
    cio credential export --to-repository

  Open a bundle with the age command itself
    age -d -i recovery-key.txt cluster-a.recovery.age";

// Arguments of `cio credential export` (not a doc comment: clap would make it the description).
#[derive(Args)]
#[command(group(clap::ArgGroup::new("destination").args(["output", "to_repository"])))]
pub struct ExportArgs {
    /// Only this provider's sets
    #[arg(long, value_enum)]
    pub provider: Option<ProviderArg>,
    /// Only the alternate (disaster-recovery) sets
    #[arg(long)]
    pub alternate: bool,
    /// Every version of each credential, not only the live one
    #[arg(long)]
    pub history: bool,
    /// Seal to this recipient: an age X25519 key (age1...) or an ssh-ed25519 / ssh-rsa
    /// public key (repeatable). Without recipients the bundle is sealed to a passphrase,
    /// prompted for twice (or read from standard input)
    #[arg(long = "recipient", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,
    /// Seal to each recipient in this file: one per line, # comments (age's -R format)
    #[arg(long = "recipients-file", value_name = "FILE")]
    pub recipients_files: Vec<PathBuf>,
    /// Seal to a passphrase (the default when no recipient is given); a bundle is sealed to
    /// a passphrase or to recipients, not both
    #[arg(long)]
    pub passphrase: bool,
    /// Write the bundle to FILE (mode 0600, never a partial file); default or -: standard output
    #[arg(
        long,
        short = 'o',
        value_name = "FILE",
        conflicts_with = "to_repository"
    )]
    pub output: Option<PathBuf>,
    /// Replace FILE if it is a regular file (never a link, a device or a FIFO); with
    /// --to-repository, replace an escrow object this node did not seal to these recipients
    /// (another cluster's, one sealed before they changed, or an older cio's)
    #[arg(long, requires = "destination")]
    pub force: bool,
    /// Store each primary set's bundle as one object beside its repository
    /// (<repository>/cio-recovery.age), sealed to the recipients (never a passphrase)
    #[arg(long, conflicts_with = "passphrase")]
    pub to_repository: bool,
}

pub fn run(ctx: &mut Context, args: ExportArgs) -> Result<(), CommandError> {
    let fail = |e: Error| CommandError::library(ACTION, e);
    let store = ctx.open(ACTION)?;
    // One reading of the store serves the choice of sets and the bundle.
    let listed = store.list().map_err(fail)?;
    let sets = chosen_sets(&listed, &args).map_err(fail)?;
    let mut recipients = given_recipients(&args).map_err(fail)?;
    if args.to_repository {
        if recipients.is_empty() {
            recipients = configured_recipients(ctx, ACTION)?;
        }
        return to_repository(ctx, &store, &sets, recipients, args.force);
    }
    if args.passphrase && !recipients.is_empty() {
        return Err(fail(RecoveryError::PassphraseAndRecipients.into()));
    }
    // `-o -` is standard output, as FILE `-` of import is standard input.
    let output = args.output.as_ref().filter(|p| p.as_os_str() != "-");
    let own = ctx.own_files(ACTION)?;
    // Refused before the passphrase is asked for and the bundle sealed.
    if let Some(path) = output {
        check_bundle_output(path, args.force, &own).map_err(|e| fail(e.into()))?;
    }
    let seal_to = if recipients.is_empty() {
        let passphrase = bundle_input::passphrase(ACTION, true, false)?;
        if let Some(short) = check_passphrase(&passphrase).map_err(|e| fail(e.into()))? {
            ctx.out.warn(short.to_string());
        }
        SealTo::Passphrase(passphrase)
    } else {
        SealTo::Recipients(std::mem::take(&mut recipients))
    };
    let bundle = Bundle::from_listed(&store, listed, &sets, args.history).map_err(fail)?;
    let sealed = seal_bundle(&bundle, &seal_to).map_err(|e| fail(e.into()))?;
    let sealed_to = match &seal_to {
        SealTo::Passphrase(_) => "a passphrase".to_string(),
        SealTo::Recipients(r) if r.len() == 1 => "1 recipient".to_string(),
        SealTo::Recipients(r) => format!("{} recipients", r.len()),
    };
    let summary = format!(
        "{} credentials of the {} set{}{}, sealed to {sealed_to}",
        bundle.credentials.len(),
        sets.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        if sets.len() == 1 { "" } else { "s" },
        if args.history {
            " with every version"
        } else {
            ""
        },
    );
    match output {
        Some(path) => {
            write_bundle_file(path, sealed.as_bytes(), args.force, &own)
                .map_err(|e| fail(e.into()))?;
            if ctx.out.json {
                ctx.out.json(&json!({
                    "output": cio_credential::shown_path(path).to_string(), "sets": sets,
                    "credentials": bundle.credentials.len(), "history": args.history,
                }))?;
            } else {
                ctx.out.succeed(
                    "Export",
                    format!("{summary}, to {}", cio_credential::shown_path(path)),
                )?;
            }
        }
        None if ctx.out.json => {
            ctx.out.json(&json!({
                "bundle": sealed, "sets": sets,
                "credentials": bundle.credentials.len(), "history": args.history,
            }))?;
        }
        None => {
            ctx.out.data(sealed.trim_end())?;
            // Standard output is the bundle: the summary goes to standard error.
            crate::output::stderr_line(&format!("Succeed: Export credential: {summary}"));
        }
    }
    Ok(())
}

/// Every complete set of the provider and role asked; none is an error.
fn chosen_sets(listed: &Listed, args: &ExportArgs) -> Result<Vec<SetId>, Error> {
    let listing = listed.listing();
    let sets: Vec<SetId> = SetId::all()
        .filter(|s| args.provider.is_none_or(|p| s.provider == p.into()))
        .filter(|s| !args.alternate || s.role == Role::Alternate)
        .filter(|s| !args.to_repository || s.role == Role::Primary)
        // A set with a damaged credential is chosen, to be refused by name, never left out.
        .filter(|s| listing.set(*s).is_complete() || listed.damages(&[*s]))
        .collect();
    if args.to_repository && args.alternate {
        return Err(RecoveryError::Escrow(EscrowError::AlternateSet).into());
    }
    if sets.is_empty() {
        return Err(Error::NoSuchSet(
            "there is no complete set to export (of the provider and role asked)".into(),
        ));
    }
    Ok(sets)
}

/// The recipients of --recipient and --recipients-file.
fn given_recipients(args: &ExportArgs) -> Result<Vec<Recipient>, Error> {
    let mut recipients = Vec::new();
    for (i, text) in args.recipients.iter().enumerate() {
        recipients.push(Recipient::parse(text, RecipientSource::Flag(i + 1))?);
    }
    for path in &args.recipients_files {
        // A named FIFO waits for its writer, said after a moment.
        let _notice = WaitNotice::saying(format!(
            "waiting for the recipients from {}, whose writer has not ended it",
            cio_credential::shown_path(path)
        ));
        recipients.extend(Recipient::load_file(path)?);
    }
    Ok(recipients)
}

/// `--to-repository`: each set's bundle beside its repository; one this node did not seal
/// to these recipients is replaced only with `force`.
fn to_repository(
    ctx: &mut Context,
    store: &CredentialStore,
    sets: &[SetId],
    recipients: Vec<Recipient>,
    force: bool,
) -> Result<(), CommandError> {
    let fail = |e: Error| CommandError::library(ACTION, e);
    if recipients.is_empty() {
        return Err(fail(RecoveryError::NothingToSealTo.into()));
    }
    let mut stored = Vec::new();
    for set in sets {
        let location = escrow_set(store, *set, recipients.clone(), force).map_err(fail)?;
        if !ctx.out.json {
            ctx.out.succeed(
                "Export",
                format!("the {set} set, sealed to the recovery recipients, at {location}"),
            )?;
        }
        stored.push(json!({"provider": set.provider, "role": set.role, "location": location}));
    }
    if ctx.out.json {
        ctx.out.json(&json!({ "escrow": stored }))?;
    }
    Ok(())
}
