//! `cio credential env [--provider P] [--alternate] [--format sh|json]`: print a complete set
//! as the variables restic reads, quoted for `eval` in sh/bash.
//!
//! A set with a CA certificate (`_cacert`) adds `SSL_CERT_FILE`, the one file Go's TLS reads
//! its trusted certificates from: a bundle cio writes and keeps (the caller's or the
//! system's certificates, then the set's CA; public certificates only, no secret) in the
//! user's runtime folder, `$XDG_RUNTIME_DIR/cio/` (root: `/run/cio/`), replaced whole by
//! each `env`.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use cio_credential::{CA_FILE_VARIABLE, OVERRIDING, SetId, ca_bundle, sh_quote};

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
    let handoff = chosen_set(ctx, ACTION, &args.set)?;
    let ca_file = match &handoff.cacert {
        Some(pem) => Some(write_ca_bundle(ACTION, handoff.set, pem.expose())?),
        None => None,
    };
    ctx.out.warn_if_secrets_shown();
    if ctx.out.json || args.format == EnvFormat::Json {
        let mut map: serde_json::Map<String, serde_json::Value> = handoff
            .vars
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.expose().into()))
            .collect();
        if let Some(file) = &ca_file {
            map.insert(CA_FILE_VARIABLE.to_string(), file.as_str().into());
        }
        return Ok(ctx.out.json(&map.into())?);
    }
    // What would override the set, never cio's own CIO_ETCD_* (handoff::CIO_SECRETS): they
    // are the caller's, in the caller's shell before this ran.
    ctx.out.data(format!("unset {}", OVERRIDING.join(" ")))?;
    for (var, value) in &handoff.vars {
        ctx.out
            .data(format!("export {var}={}", sh_quote(value.expose())))?;
    }
    if let Some(file) = &ca_file {
        ctx.out
            .data(format!("export {CA_FILE_VARIABLE}={}", sh_quote(file)))?;
    }
    Ok(())
}

/// Where `env` keeps the CA bundle of `set`: the user's runtime folder (a tmpfs that the
/// system empties at logout or boot), else `/run` for root, else the user's cache.
fn ca_bundle_path(set: SetId) -> PathBuf {
    let folder = match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir.join("cio"),
        _ if rustix::process::geteuid().is_root() => PathBuf::from("/run/cio"),
        _ => std::env::var_os("HOME")
            .map_or_else(std::env::temp_dir, PathBuf::from)
            .join(".cache/cio"),
    };
    folder.join(format!("{}-{}-ca.pem", set.provider, set.role))
}

/// Writes the CA bundle of `set` (see the module rules) and returns its path, as text: the
/// line printed must name this file, so a path that is not UTF-8 (a folder from
/// XDG_RUNTIME_DIR or HOME) is refused before anything is written, never printed lossily.
fn write_ca_bundle(action: &str, set: SetId, pem: &str) -> Result<String, CommandError> {
    let path = ca_bundle_path(set);
    let failed = |source| CommandError::WriteFile {
        action: action.into(),
        path: path.clone(),
        source,
        hint: "set XDG_RUNTIME_DIR to a folder this user may write whose path is UTF-8, or use 'cio credential exec', which needs no file",
    };
    let Some(text_path) = path.to_str().map(str::to_string) else {
        return Err(failed(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "its path is not UTF-8, so no shell line or JSON could name it exactly",
        )));
    };
    if let Some(folder) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(folder)
            .map_err(failed)?;
    }
    // The caller's own bundle comes first, unless it is this one (a second eval of `env`).
    let current = std::env::var_os(CA_FILE_VARIABLE)
        .map(PathBuf::from)
        .filter(|p| p.as_path() != Path::new(&path));
    let bundle = ca_bundle(pem, current.as_deref());
    let text = String::from_utf8_lossy(&bundle);
    crate::replace_file::write_atomically(&path, &text).map_err(|e| failed(e.into()))?;
    Ok(text_path)
}
