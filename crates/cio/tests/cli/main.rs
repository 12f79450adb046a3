//! End-to-end tests of the `cio` binary, one test binary (as ripgrep does). Each test runs
//! the real binary in an isolated environment: a cleared environment, a temporary HOME, and
//! a store and key of its own.

mod audit;
mod catalog;
mod cluster;
mod completion;
mod drill;
mod errors;
mod handoff;
mod help;
mod login;
mod prometheus;
mod prompt;
mod reference;
mod reliability;
mod systemd;
mod terminal;
mod util;
mod validate;
