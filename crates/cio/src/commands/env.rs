//! `cio credential env [--provider P] [--alternate] [--format sh|json]`: print a complete set
//! as the variables restic reads, quoted for `eval` in sh/bash.
//!
//! A set with a CA certificate (`_cacert`) adds `SSL_CERT_FILE`, the one file Go's TLS reads
//! its trusted certificates from: a bundle cio writes and keeps (the caller's or the
//! system's certificates, then the set's CA; public certificates only, no secret) in the
//! user's runtime folder, `$XDG_RUNTIME_DIR/cio/` (root: `/run/cio/`), replaced whole by
//! each `env`; the caller's own `SSL_CERT_FILE` is kept in `CIO_CALLER_SSL_CERT_FILE`. A set
//! without one leaves no cio bundle in force: an `SSL_CERT_FILE` naming one goes back to the
//! caller's own file, or is unset (JSON: `null`); a caller's own `SSL_CERT_FILE` stays. Each
//! `env` deletes the bundles made for a CA certificate their set no longer has
//! (`cio_credential::CaFiles`). The bundle takes only the certificates of the caller's
//! file, is written only in a folder of this user's alone, and never over a file cio did
//! not write (`commands::ca_file::write`).

use std::ffi::{OsStr, OsString};

use clap::{Args, ValueEnum};

use cio_credential::{
    CA_FILE_VARIABLE, CALLER_CA_FILE_VARIABLE, CaFiles, OVERRIDING, VarChange, ca_variables,
    sh_quote,
};

use crate::commands::ca_file;
use crate::commands::handoff::{SetArgs, chosen_set};
use crate::context::Context;
use crate::error::CommandError;

/// The long help's end.
pub const EXAMPLES: &str = "\
Examples:
  This cluster's MinIO set in the current shell, then restic with it
    eval \"$(cio credential env --provider minio)\" && restic snapshots

  The alternate set as one JSON object, for a program that reads JSON
    cio credential env --alternate --format json";

#[derive(Args)]
pub struct EnvArgs {
    #[command(flatten)]
    pub set: SetArgs,
    /// sh: `export NAME='value'` lines for eval; json: one object
    #[arg(long, value_enum, default_value = "sh")]
    pub format: EnvFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnvFormat {
    Sh,
    Json,
}

pub fn run(ctx: &mut Context, args: EnvArgs) -> Result<(), CommandError> {
    const ACTION: &str = "Print credentials";
    let (store, handoff) = chosen_set(ctx, ACTION, &args.set)?;
    let suspected = store
        .rollback_suspected()
        .map_err(|e| CommandError::library(ACTION, e))?;
    ctx.out.warn_log_damage(suspected, false);
    let files = CaFiles::of_process();
    let inherited = files.inherited(
        std::env::var_os(CA_FILE_VARIABLE),
        std::env::var_os(CALLER_CA_FILE_VARIABLE),
    );
    ca_file::sweep(ctx, &store, handoff.cacert.as_ref().map(|_| handoff.set));
    let bundle = match &handoff.cacert {
        Some(pem) => Some(ca_file::write(
            ctx,
            ACTION,
            &files,
            handoff.set,
            pem.expose(),
            inherited.own().map(|own| (own, inherited.own_variable())),
        )?),
        None => None,
    };
    let ca = ca_variables(&inherited, bundle.as_deref().map(OsStr::new));
    let ca_changes = [
        (
            CA_FILE_VARIABLE,
            printable(ctx, CA_FILE_VARIABLE, ca.ssl_cert_file),
        ),
        (
            CALLER_CA_FILE_VARIABLE,
            printable(ctx, CALLER_CA_FILE_VARIABLE, ca.caller),
        ),
    ];
    ctx.out.warn_if_secrets_shown();
    if ctx.out.json || args.format == EnvFormat::Json {
        let mut map: serde_json::Map<String, serde_json::Value> = handoff
            .vars
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.expose().into()))
            .collect();
        // SSL_CERT_FILE as it must be (null: remove it); cio's note of the caller's own file
        // only when there is one to keep.
        for (var, change) in &ca_changes {
            let value = match change {
                Printable::Set(value) => value.as_str().into(),
                Printable::Unset if *var == CA_FILE_VARIABLE => serde_json::Value::Null,
                Printable::Unset | Printable::Keep => continue,
            };
            map.insert((*var).to_string(), value);
        }
        return Ok(ctx.out.json(&map.into())?);
    }
    // What would override the set, never cio's own CIO_ETCD_* (handoff::CIO_SECRETS): they
    // are the caller's, in the caller's shell before this ran.
    let mut unset: Vec<&str> = OVERRIDING.to_vec();
    unset.extend(ca_changes.iter().filter_map(|(var, change)| {
        (*change == Printable::Unset && std::env::var_os(var).is_some()).then_some(*var)
    }));
    ctx.out.data(format!("unset {}", unset.join(" ")))?;
    for (var, value) in &handoff.vars {
        ctx.out
            .data(format!("export {var}={}", sh_quote(value.expose())))?;
    }
    for (var, change) in &ca_changes {
        if let Printable::Set(value) = change {
            ctx.out.data(format!("export {var}={}", sh_quote(value)))?;
        }
    }
    Ok(())
}

/// A [`VarChange`] whose value a shell line or JSON can name exactly.
#[derive(Debug, PartialEq, Eq)]
enum Printable {
    Keep,
    Set(String),
    Unset,
}

/// `change` as it can be printed: a value that is not UTF-8 (a caller's own file, from
/// their environment) cannot be named exactly, so the variable is unset instead, and a
/// warning says so.
fn printable(ctx: &Context, var: &str, change: VarChange) -> Printable {
    match change {
        VarChange::Keep => Printable::Keep,
        VarChange::Unset => Printable::Unset,
        VarChange::Set(value) => match OsString::into_string(value) {
            Ok(text) => Printable::Set(text),
            Err(_) => {
                ctx.out.warn(format!(
                    "{var} is unset: the file it should name has a path that is not UTF-8, which no shell line or JSON can name exactly; set it again yourself"
                ));
                Printable::Unset
            }
        },
    }
}
