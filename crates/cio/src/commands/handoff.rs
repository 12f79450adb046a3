//! Choosing the set that `exec` and `env` hand to the backup engine.

use cio_credential::catalog::Role;
use cio_credential::engine::{Handoff, choose};

use crate::cli::SetArgs;
use crate::context::Context;
use crate::error::CommandError;

/// The complete set the arguments name, or an error listing the choices.
pub fn chosen_set(ctx: &Context, action: &str, args: &SetArgs) -> Result<Handoff, CommandError> {
    let vault = ctx.vault(action)?;
    let role = if args.alternate {
        Role::Alternate
    } else {
        Role::Primary
    };
    choose(&vault, args.provider.map(Into::into), role)
        .map_err(|e| CommandError::library(action, e))
}
