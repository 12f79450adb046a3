//! `cio generate-man DIR` (hidden, for packaging): the man pages of `cio`, `cio-credential`
//! and every subcommand (`cio-credential-create.1`, ...), generated from the one clap
//! definition by clap_mangen, never written by hand.
//!
//! Each page is rendered by clap_mangen and written with [`write_atomically`] (clap_mangen's
//! own `generate_to` truncates whatever has the name, through a symbolic link too): a page
//! replaces only a regular file, whole.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::cli::{Cli, GenerateManArgs};
use crate::error::CommandError;
use crate::replace_file::{ReplaceError, write_atomically};

pub fn run(args: GenerateManArgs) -> Result<(), CommandError> {
    // As clap_mangen's generate_to: no page for the help subcommand.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    write_pages(&cmd, &args.dir).map_err(|(path, e)| {
        let hint = match e {
            ReplaceError::NotReplaceable(_) => {
                "remove what has that name (a page replaces only a regular file), or give another folder"
            }
            ReplaceError::Io(_) => "give a folder that exists and that this user may write to",
        };
        CommandError::WriteFile {
            action: "Generate man pages".into(),
            path,
            source: e.into(),
            hint,
        }
    })
}

/// The pages of `cmd` and of its visible subcommands, in `dir`; on failure, the page's path.
fn write_pages(cmd: &clap::Command, dir: &Path) -> Result<(), (PathBuf, ReplaceError)> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir)?;
    }
    let man = clap_mangen::Man::new(cmd.clone());
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page)
        .map_err(|e| (path.clone(), ReplaceError::Io(e)))?;
    write_atomically(&path, &String::from_utf8_lossy(&page)).map_err(|e| (path, e))
}
