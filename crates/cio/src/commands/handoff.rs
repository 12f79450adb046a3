//! Choosing the set that `exec` and `env` hand to the backup engine.

use clap::Args;

use cio_credential::{CredentialStore, Handoff, Role, SetFilter};

use crate::cli::ProviderArg;
use crate::context::Context;
use crate::error::CommandError;

// Which set to hand over. (Not a doc comment: clap would make it the description of `exec`
// and `env`, which build it after theirs; see `defer` on `CredentialCommand`.)
#[derive(Args)]
pub struct SetArgs {
    /// The provider of the set; may be omitted when only one set of the role is complete
    #[arg(long, value_enum)]
    pub provider: Option<ProviderArg>,
    /// Use the alternate (disaster-recovery) set instead of the primary one
    #[arg(long)]
    pub alternate: bool,
}

/// The store, and the complete set the arguments name in it, or an error listing the choices.
pub fn chosen_set(
    ctx: &Context,
    action: &str,
    args: &SetArgs,
) -> Result<(CredentialStore, Handoff), CommandError> {
    let filter = SetFilter {
        name: None,
        provider: args.provider.map(Into::into),
        role: Some(if args.alternate {
            Role::Alternate
        } else {
            Role::Primary
        }),
    };
    let store = ctx.open(action)?;
    let handoff = store
        .handoff(&filter)
        .map_err(|e| CommandError::library(action, e))?;
    Ok((store, handoff))
}
