//! One file per `cio credential` subcommand, each `run(ctx, args) -> Result<(), CommandError>`.

pub mod create;
pub mod env;
pub mod exec;
mod handoff;
pub mod history;
pub mod list;
pub mod migrate;
pub mod rekey;
pub mod remove;
pub mod restore;
pub mod rotate;
mod rotate_keys;
pub mod show;
pub mod validate;
