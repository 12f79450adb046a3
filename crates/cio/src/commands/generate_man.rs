//! `cio generate-man DIR` (hidden, for packaging): the man pages of `cio`, `cio-credential`
//! and every subcommand (`cio-credential-create.1`, ...), generated from the one clap
//! definition by clap_mangen, never written by hand.

use clap::CommandFactory;

use crate::cli::{Cli, GenerateManArgs};
use crate::error::CommandError;

pub fn run(args: GenerateManArgs) -> Result<(), CommandError> {
    clap_mangen::generate_to(Cli::command(), &args.dir).map_err(|source| CommandError::WriteFile {
        action: "Generate man pages".into(),
        path: args.dir.clone(),
        source,
        hint: "give a folder that exists and that this user may write to",
    })
}
