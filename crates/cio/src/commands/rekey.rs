//! `cio credential rekey [--stage add|switch|reseal|retire]`: replace the key that seals the
//! store, in stages across a cluster, or all at once on a store no other node uses.

use clap::{Args, ValueEnum};
use serde_json::json;

use cio_credential::{RekeyError, RekeyStage, RekeyStep};

use crate::context::Context;
use crate::error::CommandError;
use crate::output::counted;

#[derive(Args)]
pub struct RekeyArgs {
    /// Run one stage only (on a cluster store, which every node shares, the stages are the
    /// only way); without it, all four, for a store no other node uses
    #[arg(long, value_enum)]
    pub stage: Option<StageArg>,
}

/// A stage, as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StageArg {
    /// Add a new key to this node's key file, open-only (then copy the file to every node)
    Add,
    /// Make the new key the current one (after it reached every node)
    Switch,
    /// Seal every version again under the current key, in one write (on one node)
    Reseal,
    /// Drop every key but the current one from this node's key file (on every node)
    Retire,
}

/// The long help's end.
pub const EXAMPLES: &str = "\
The key file becomes a small keyring: its first key is the current one, which a re-seal
seals with; the store opens with whichever key sealed it. A node whose key file lacks the
key that sealed the store gets exit 3, naming both keys and where the new key lives.

Examples:
  One node (the embedded store):  cio credential rekey
  A cluster (etcd), in stages:
    node1$ cio credential rekey --stage add        then copy /etc/cio/credential.key to every node
    node1$ cio credential rekey --stage switch
    node1$ cio credential rekey --stage reseal
    every node$ cio credential rekey --stage retire";

pub fn run(ctx: &mut Context, args: RekeyArgs) -> Result<(), CommandError> {
    const ACTION: &str = "Rekey credential store";
    let fail = |e: cio_credential::Error| CommandError::library(ACTION, e);
    if args.stage.is_none() && ctx.store_is_shared(ACTION)? {
        return Err(fail(RekeyError::Shared.into()));
    }
    let store = ctx.open(ACTION)?;
    let steps = match args.stage {
        None => store.rekey_all(),
        Some(StageArg::Add) => store.rekey_add().map(|s| vec![s]),
        Some(StageArg::Switch) => store.rekey_switch().map(|s| vec![s]),
        Some(StageArg::Reseal) => store.rekey_reseal().map(|s| vec![s]),
        Some(StageArg::Retire) => store.rekey_retire().map(|s| vec![s]),
    }
    .map_err(fail)?;
    if ctx.out.json {
        return Ok(ctx.out.json(&json!({
            "action": "rekey",
            "key_file": cio_credential::shown_path(store.key_file()).to_string(),
            "steps": steps,
        }))?);
    }
    // What comes next is said once, after the last stage run: a plain rekey runs them all,
    // and the cluster instructions of its first stages are done by the time they are read.
    for (i, step) in steps.iter().enumerate() {
        ctx.out
            .succeed("Rekey", describe(step, i + 1 == steps.len()))?;
    }
    Ok(())
}

/// One line for a stage: what it did, and with `last` (no later stage ran in this command)
/// what comes next.
fn describe(step: &RekeyStep, last: bool) -> String {
    let stage = step.stage.as_str();
    let keys = step.keyring.join(", ");
    let store = step.store_key.as_deref().unwrap_or("(none yet)");
    let done = if step.changed {
        "done"
    } else {
        "nothing left to do"
    };
    let next = match step.stage {
        RekeyStage::Add => {
            "copy the key file to every node, then: cio credential rekey --stage switch"
        }
        // A switch that caught up with a store another node re-sealed: only retire is left.
        RekeyStage::Switch if step.store_key.as_ref() == step.keyring.first() => {
            "the store is sealed with it already; then: cio credential rekey --stage retire"
        }
        RekeyStage::Switch => "then: cio credential rekey --stage reseal (on one node)",
        RekeyStage::Reseal => {
            "then: cio credential rekey --stage retire (on every node, after its key file holds the new key)"
        }
        RekeyStage::Retire => "the old key opens nothing in the store now",
    };
    let versions = if step.stage == RekeyStage::Reseal && step.changed {
        format!(", {} sealed again", counted(step.versions, "version"))
    } else {
        String::new()
    };
    let said =
        format!("stage {stage}: {done} (key file: {keys}; store sealed with {store}{versions})");
    if last {
        format!("{said}; {next}")
    } else {
        said
    }
}
