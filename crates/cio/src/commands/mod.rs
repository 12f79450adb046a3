//! One file per `cio` and `cio credential` subcommand, each `run(ctx, args) -> Result<(), CommandError>`.

mod bundle_input;
mod ca_file;
pub mod completion;
pub mod create;
pub mod env;
mod escrow;
pub mod exec;
pub mod export;
pub mod generate_man;
mod handoff;
pub mod history;
pub mod import;
pub mod list;
pub mod log;
pub mod migrate;
pub mod rekey;
pub mod remove;
pub mod restore;
pub mod rotate;
mod rotate_keys;
pub mod show;
pub mod validate;
