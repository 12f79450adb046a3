//! `cio credential import FILE|-` and `import --from-repository URL`: open a recovery
//! bundle, show what it would write (masked), and write it all or nothing.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use cio_credential::{
    Allow, BucketKeys, Bundle, Change, CredentialStore, Error, EscrowError, Escrowed, Identities,
    OpenWith, Outcome, PasswordChange, Plan, Planned, Provider, Purpose, ReadWith, RecoveryError,
    Role, SecretValue, SetFilter, SetId, SetReport, SetValues, StoredKeys, ValidateOptions,
    check_changes, check_value, escrow_location, escrowed_beside, needs_passphrase, now_ms,
    open_bundle, prove_escrow, read_bundle, stored_escrow_keys, validate_sets,
};

use crate::cli::ProviderArg;
use crate::commands::{bundle_input, ca_file, escrow as refresh, validate};
use crate::context::Context;
use crate::error::CommandError;
use crate::input::WaitNotice;
use crate::output::{counted, time};

const ACTION: &str = "Import credentials";

pub const EXAMPLES: &str = "\
Examples:
  Rescue a lost cluster's backups: its primary set becomes this cluster's alternate set
    cio credential import --as-alternate --validate /root/cluster-a.recovery.age

  Prove a bundle opens and see what it holds (values masked), writing nothing
    cio credential import --dry-run /root/cluster-a.recovery.age

  From the escrow object beside the lost cluster's repository, with the recovery identity
  and a key that may read the bucket (typed at the prompt, or two lines on standard input)
    cio credential import --as-alternate --identity /root/recovery-key.txt \\
        --from-repository s3:https://minio.example:9000/cluster-a/backups

  A bundle the age command sealed (to a passphrase, or to a recipient) imports too
    age -p -a -o cluster-a.age plain.json && cio credential import cluster-a.age";

// Arguments of `cio credential import` (not a doc comment: clap would make it the description).
#[derive(Args)]
pub struct ImportArgs {
    /// The bundle file, or - for standard input
    #[arg(value_name = "FILE", required_unless_present = "from_repository", value_parser = crate::cli::Utf8Text)]
    pub file: Option<String>,
    /// Open a bundle sealed to recipients with this private key: an age identity file or an
    /// unencrypted OpenSSH key, readable by its owner only (repeatable). Without it, the
    /// passphrase is prompted for (or read from standard input)
    #[arg(long = "identity", short = 'i', value_name = "FILE")]
    pub identities: Vec<PathBuf>,
    /// Write each primary name as its alternate (_alt) name: the lost cluster's own set
    /// becomes this cluster's disaster-recovery set
    #[arg(long)]
    pub as_alternate: bool,
    /// Open the bundle and list what it holds, masked; write nothing. What the import would
    /// refuse is refused the same way (values newer in the store, the value rules, a
    /// password the set's repository does not open: the repository is asked)
    #[arg(long)]
    pub dry_run: bool,
    /// Validate the imported sets live first; write only if they pass
    #[arg(long)]
    pub validate: bool,
    /// Replace values the store holds that are newer than the bundle's and different; with
    /// --from-repository, also take an escrow object whose password the repository could not
    /// be asked about (never one whose password it refuses)
    #[arg(long)]
    pub force: bool,
    /// Keep white space at either end of (or a tab in) a bundled repository password, as
    /// `create --allow-whitespace` stored it (restic accepts such a password)
    #[arg(long)]
    pub allow_whitespace: bool,
    /// Keep any character of a bundled repository password (line breaks, control and
    /// invisible characters), as `create --allow-any-character` stored it
    #[arg(long)]
    pub allow_any_character: bool,
    /// Read the escrow bundle beside this repository (URL as restic takes it) instead of a
    /// file; the keys that read it are this store's alternate set's of --provider, or (without
    /// --provider) of an alternate set whose repository is at the same endpoint (scheme, host,
    /// port), or else are prompted for (or read from standard input: two lines)
    #[arg(long, value_name = "URL", conflicts_with = "file")]
    pub from_repository: Option<String>,
    /// With --from-repository: whose alternate keys in this store read the bucket
    #[arg(long, value_enum, requires = "from_repository")]
    pub provider: Option<ProviderArg>,
    /// With --from-repository: never read the bucket with keys of this store; ask for them
    /// (or read them from standard input: two lines)
    #[arg(long, requires = "from_repository", conflicts_with = "provider")]
    pub no_stored_keys: bool,
}

pub fn run(ctx: &mut Context, args: ImportArgs) -> Result<(), CommandError> {
    let fail = |e: Error| CommandError::library(ACTION, e);
    let recovery = |e: RecoveryError| CommandError::library(ACTION, e);
    let store = ctx.open(ACTION)?;
    // From the repository: the keys that read the object (standard input is taken when
    // they were given there).
    let (sealed, reader) = match (&args.from_repository, &args.file) {
        (Some(url), _) => {
            let (sealed, reader) = fetch_escrow(
                ctx,
                &store,
                url,
                args.provider.map(Into::into),
                args.no_stored_keys,
            )?;
            ((sealed, false), Some(reader))
        }
        (None, Some(file)) => (bundle_input::bundle(ACTION, file)?, None),
        (None, None) => unreachable!("clap requires FILE unless --from-repository is given"),
    };
    let (sealed, stdin_taken) = match (sealed, &reader) {
        ((bytes, _), Some(reader)) => (bytes, matches!(reader, Reader::Given { .. })),
        ((bytes, from_stdin), None) => (bytes, from_stdin),
    };
    // An identity given means it is used: the header is read (a few percent of an import)
    // only to tell a passphrase bundle from one sealed to recipients when none is given.
    let with = if args.identities.is_empty() && needs_passphrase(&sealed).map_err(recovery)? {
        OpenWith::Passphrase(bundle_input::passphrase(ACTION, false, stdin_taken)?)
    } else if args.identities.is_empty() {
        return Err(recovery(RecoveryError::SealedToRecipients));
    } else {
        // A pipe (`--identity <(pass show recovery-key)`) or a named FIFO waits for its
        // writer, said after a moment.
        let load = |path: &PathBuf| {
            let _notice = WaitNotice::saying(format!(
                "waiting for the identity from {}, whose writer has not ended it",
                cio_credential::shown_path(path)
            ));
            Identities::load(path).map_err(recovery)
        };
        let mut identities = load(&args.identities[0])?;
        for path in &args.identities[1..] {
            identities.extend(load(path)?);
        }
        OpenWith::Identities(identities)
    };
    let bundle = open_bundle(&sealed, &with).map_err(recovery)?;
    if let (Some(url), Some(reader)) = (&args.from_repository, &reader) {
        let escrow = |e: EscrowError| recovery(e.into());
        cio_credential::check_escrow_origin(&bundle, url).map_err(escrow)?;
        // The URL is public: only a password that opens the repository proves the object.
        for unproven in prove_escrow(&bundle, url, &reader.keys(), args.force).map_err(escrow)? {
            ctx.out.warn(format!(
                "the {} set of the bundle at {} is not proven to be that repository's: the repository could not be asked whether its password opens it ({}); taken anyway (--force)",
                unproven.set,
                escrow_location(url),
                unproven.why
            ));
        }
    }
    let mut plan = Plan::new(&bundle, &store, args.as_alternate).map_err(fail)?;
    // A stored password dated after the bundle's but refused by its repository (imported
    // from an older bundle) is the stale one: the repository, not the dates, decides.
    for name in plan.settle_stale(&store) {
        ctx.out.warn(format!(
            "{name}: the store's password is dated after the bundle's, but the repository refuses it and opens with the bundle's: the bundle's replaces it (the store's stays in the history)"
        ));
    }
    warn_other_clusters(ctx, &store, &plan);
    let allow = Allow {
        whitespace: args.allow_whitespace,
        any_character: args.allow_any_character,
    };
    if args.dry_run {
        // What the import would refuse, refused as the import refuses it (same error, same
        // exit code, same order): the values newer in the store, the value rules, a password
        // the set's repository does not open (the repository is asked, as the import asks
        // it), then with --validate the live checks.
        let refused = changes(&store, &plan, &args)
            .and_then(|changes| check_changes(&changes, allow).map_err(fail))
            .and_then(|_| check_passwords(&store, &plan, &args, true))
            .and_then(|warnings| match args.validate {
                true => validate_first(ctx, &store, &plan).map(|_| warnings),
                false => Ok(warnings),
            });
        let refused = match refused {
            Ok(warnings) => {
                for warning in warnings {
                    ctx.out.warn(warning);
                }
                None
            }
            Err(e) => Some(e),
        };
        // With --json, standard output holds one document: the error's, when refused.
        if !(ctx.out.json && refused.is_some()) {
            show(ctx, &bundle, &plan, allow, true)?;
        }
        if let Some(e) = refused {
            return Err(e);
        }
        if !ctx.out.json {
            ctx.out
                .succeed("Import", "dry run: the bundle opens; nothing was written")?;
        }
        return Ok(());
    }
    show(ctx, &bundle, &plan, allow, false)?;
    let changes = changes(&store, &plan, &args)?;
    // In the dry run's order: nothing is said stored before a value rule refuses it.
    check_changes(&changes, allow).map_err(fail)?;
    let warnings = check_passwords(&store, &plan, &args, false)?;
    let validated = match args.validate {
        true => Some(validate_first(ctx, &store, &plan)?),
        false => None,
    };
    let written = store
        .write_all_as_seen(&changes, &plan.seen(), allow)
        .map_err(fail)?;
    if let Some(reports) = &validated {
        record_validation(ctx, &store, reports);
    }
    ca_file::sweep(ctx, &store, None);
    for warning in warnings {
        ctx.out.warn(warning);
    }
    let unchanged = plan
        .items
        .iter()
        .filter(|p| p.outcome == Outcome::Unchanged)
        .count();
    let sets = plan.target_sets();
    if ctx.out.json {
        ctx.out.json(&json!({
            "written": written.len(),
            "unchanged": unchanged,
            "sets": sets,
        }))?;
    } else {
        ctx.out.succeed(
            "Import",
            format!(
                "{} written, {unchanged} unchanged, {} (earlier values stay in each credential's history)",
                counted(written.len(), "version"),
                to_the_sets(&sets),
            ),
        )?;
    }
    let names: Vec<_> = written.iter().map(|w| w.name).collect();
    refresh::refresh_after_write(ctx, &store, &names);
    Ok(())
}

/// The plan's changes ([`Plan::changes`]). Refused for values newer in the store, whose hint
/// offers --force: unless a repository password among them is one --force would not store
/// either (the repository refuses it and the store holds a password for the set already);
/// that refusal, which says what works, is the one returned.
fn changes<'b>(
    store: &CredentialStore,
    plan: &Plan<'b>,
    args: &ImportArgs,
) -> Result<Vec<Change<'b>>, CommandError> {
    match plan.changes(args.force) {
        Ok(changes) => Ok(changes),
        Err(newer @ RecoveryError::NewerInStore(_)) => {
            check_passwords(store, plan, args, true)?;
            Err(CommandError::library(ACTION, newer))
        }
        Err(e) => Err(CommandError::library(ACTION, e)),
    }
}

/// A bundle's password must not replace one the repository wants (a bundle older than the
/// last rotation): checked as create and restore check theirs, by the import and its dry
/// run alike. Returns the warnings of what is stored (or with `dry_run`, would be) unchecked
/// or anyway, said once nothing later refuses the import (the write, or every check of the
/// dry run).
fn check_passwords(
    store: &CredentialStore,
    plan: &Plan<'_>,
    args: &ImportArgs,
    dry_run: bool,
) -> Result<Vec<String>, CommandError> {
    let stored = if dry_run { "would be stored" } else { "stored" };
    let checked = plan
        .check_passwords(store, args.force, args.from_repository.is_some())
        .map_err(|e| CommandError::library(ACTION, e))?;
    Ok(checked
        .into_iter()
        .filter_map(|(name, found)| match found {
            PasswordChange::Unchecked(why) => Some(format!(
                "{name}: the repository could not be asked whether the bundle's password opens it ({why}); check it with 'cio credential validate' after the import"
            )),
            PasswordChange::DoesNotOpen(refusal) => Some(format!(
                "{name}: the bundle's password {refusal}; {stored} anyway (--force): restic refuses it until the repository has a key of its own for it"
            )),
            PasswordChange::NotChecked | PasswordChange::Verified => None,
        })
        .collect())
}

/// "to the minio alternate set", "to the aws primary, minio alternate sets". A plan always
/// has a set (a bundle with nothing to import is refused when read), but an empty list never
/// reads "to the  sets".
fn to_the_sets(sets: &[SetId]) -> String {
    match sets {
        [] => "to no set".to_string(),
        [one] => format!("to the {one} set"),
        _ => format!(
            "to the {} sets",
            sets.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The keys an escrow object was read with: they prove it with its password too.
enum Reader {
    Stored(StoredKeys),
    Given {
        access_key: SecretValue,
        secret_key: SecretValue,
    },
}

impl Reader {
    fn keys(&self) -> BucketKeys<'_> {
        match self {
            Reader::Stored(keys) => keys.keys(),
            Reader::Given {
                access_key,
                secret_key,
            } => BucketKeys {
                access_key,
                secret_key,
                region: None,
                cacert: None,
            },
        }
    }
}

/// The escrow object beside `url`, read with this store's keys for that repository (the
/// alternate set of `provider`, or without it one whose repository is at the same endpoint;
/// none with `no_stored_keys`), else with keys prompted for or read from standard input
/// ([`Reader::Given`]: standard input is then taken). Says which keys it used. Returns the
/// bytes and the keys that read them.
fn fetch_escrow(
    ctx: &Context,
    store: &CredentialStore,
    url: &str,
    provider: Option<Provider>,
    no_stored_keys: bool,
) -> Result<(Vec<u8>, Reader), CommandError> {
    let escrow = |e: EscrowError| CommandError::library(ACTION, RecoveryError::from(e));
    let stored = if no_stored_keys {
        None
    } else {
        stored_escrow_keys(store, url, provider).map_err(escrow)?
    };
    let (reader, with) = match stored {
        Some((with, keys)) => {
            ctx.out
                .note(format!("reading {} with {with}", escrow_location(url)));
            (Reader::Stored(keys), with)
        }
        None => {
            let (access_key, secret_key) = bundle_input::access_keys(ACTION)?;
            let reader = Reader::Given {
                access_key,
                secret_key,
            };
            (reader, ReadWith::Given)
        }
    };
    let sealed = read_bundle(url, &reader.keys(), with).map_err(escrow)?;
    Ok((sealed, reader))
}

/// What the bundle holds and what the import would do, values masked.
fn show(
    ctx: &mut Context,
    bundle: &Bundle,
    plan: &Plan<'_>,
    allow: Allow,
    dry_run: bool,
) -> Result<(), CommandError> {
    let renamed = plan.items.iter().any(|p| p.target != p.credential.name);
    if ctx.out.json {
        if dry_run {
            let items: Vec<_> = plan
                .items
                .iter()
                .map(|p| {
                    json!({
                        "name": p.target,
                        "from": p.credential.name,
                        "value": shown(p, allow),
                        "versions": p.credential.versions.len(),
                        "outcome": p.outcome.as_str(),
                    })
                })
                .collect();
            ctx.out.json(&json!({
                "dry_run": true,
                "created": time(bundle.created_at_ms),
                "created_by": bundle.created_by,
                "history": bundle.history,
                "credentials": items,
            }))?;
        }
        return Ok(());
    }
    ctx.out.line(format!(
        "Bundle made {} by {}: {} credentials{}",
        time(bundle.created_at_ms),
        bundle.created_by,
        bundle.credentials.len(),
        if bundle.history {
            ", with every version"
        } else {
            ""
        },
    ))?;
    let mut header = vec!["NAME", "VALUE"];
    if renamed {
        header.push("FROM");
    }
    header.push(if dry_run { "WOULD" } else { "WRITE" });
    let mut rows = vec![header.into_iter().map(str::to_string).collect::<Vec<_>>()];
    for p in &plan.items {
        let mut row = vec![
            p.target.to_string(),
            match (p.value(), shown(p, allow)) {
                (Some(_), None) => NOT_SHOWN.to_string(),
                (_, value) => value.unwrap_or_default(),
            },
        ];
        if renamed {
            row.push(p.credential.name.to_string());
        }
        row.push(p.outcome.as_str().to_string());
        rows.push(row);
    }
    ctx.out.table(&rows)?;
    Ok(())
}

/// What the plan table shows of a value the value rules refuse (the refusal follows).
const NOT_SHOWN: &str = "(refused by the value rules, not shown)";

/// `p`'s value as the plan shows it: masked as `list` masks it, and only when the value rules
/// accept it. The bundle's text is anyone's: a repository URL with a password in it, or a
/// secret pasted in the URL's place, would be shown whole, since a URL is not masked.
fn shown(p: &Planned<'_>, allow: Allow) -> Option<String> {
    let value = p.value()?.expose();
    check_value(p.target, value, allow)
        .is_ok()
        .then(|| p.target.field.mask(value))
}

/// Each set the import writes to, as it would be after the import: the store's values with
/// the bundle's over them.
fn planned_sets(store: &CredentialStore, plan: &Plan<'_>) -> Vec<SetValues> {
    let filter = SetFilter::default();
    let live = store.sets(&filter, Purpose::Check).unwrap_or_default();
    let mut sets = Vec::new();
    for set in plan.target_sets() {
        let mut values = SetValues::empty(set);
        if let Some(current) = live.iter().find(|v| v.set == set) {
            for (name, value) in current.present() {
                values.set_field(name.field, SecretValue::new(value.expose().to_string()));
            }
        }
        for p in plan.items.iter().filter(|p| p.target.set() == set) {
            if let Some(value) = p.value() {
                values.set_field(p.target.field, SecretValue::new(value.expose().to_string()));
            }
        }
        sets.push(values);
    }
    sets
}

/// Validates each set the import writes to, as it would be after the import; any failure
/// stops the import before anything is written. Returns the reports (recorded once written).
fn validate_first(
    ctx: &mut Context,
    store: &CredentialStore,
    plan: &Plan<'_>,
) -> Result<Vec<SetReport>, CommandError> {
    // What `validate` checks, with restic's view of this process's environment (proxies,
    // key hint), as restic under `exec` will see it.
    let options = ValidateOptions::from_env();
    let reports = validate_sets(planned_sets(store, plan), &options);
    let failed = reports.iter().filter(|r| !r.passed()).count();
    if !ctx.out.json {
        validate::render(ctx, &reports)?;
    }
    if failed > 0 {
        return Err(CommandError::library(
            ACTION,
            RecoveryError::NotValid {
                failed,
                total: reports.len(),
            },
        ));
    }
    Ok(reports)
}

/// After an import with `--validate` is written: records the live checks of the sets it
/// validated, as `validate --record` does (list: CHECKED). The import stays written if they
/// cannot be kept: a warning says so and what records them.
fn record_validation(ctx: &mut Context, store: &CredentialStore, reports: &[SetReport]) {
    let recorded = store
        .listing()
        .and_then(|listing| store.record_checks(reports, &listing, now_ms()));
    if let Err(e) = recorded {
        ctx.out.warn(format!(
            "the checks of the imported sets were not recorded: {e}; the import above is kept. Record them with 'cio credential validate --record'"
        ));
    }
}

/// Warns, before an import of primary sets, of each whose repository already holds an escrow
/// bundle sealed to other recipients than this node's recovery_recipients: the set looks like
/// another cluster's, imported here as this cluster's own. (A cluster importing its own
/// bundle again finds its own recipients, and no warning.) Said only when recovery recipients
/// are configured, and only of what the bucket answers: the refresh after the write leaves
/// that bundle alone and says so.
fn warn_other_clusters(ctx: &mut Context, store: &CredentialStore, plan: &Plan<'_>) {
    if plan.target_sets().iter().all(|s| s.role != Role::Primary) {
        return;
    }
    let recipients = match refresh::configured_recipients(ctx, ACTION) {
        Ok(r) if !r.is_empty() => r,
        _ => return,
    };
    let primary = planned_sets(store, plan)
        .into_iter()
        .filter(|v| v.set.role == Role::Primary);
    for values in primary {
        let set = values.set;
        if let Ok((location, Escrowed::Others)) = escrowed_beside(values, &recipients) {
            ctx.out.warn(format!(
                "the {set} set's repository holds a recovery bundle sealed to other recipients than this node's recovery_recipients ({location}): this looks like another cluster's set. To keep it as this cluster's disaster-recovery set, import with --as-alternate; imported as this cluster's own, that bundle is left as it is"
            ));
        }
    }
}
