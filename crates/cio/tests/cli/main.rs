//! End-to-end tests of the `cio` binary, one test binary (as ripgrep does). Each test runs
//! the real binary in an isolated environment: a cleared environment, a temporary HOME, and
//! a store and key of its own.

mod age;
mod audit;
mod ca_bundle;
mod catalog;
mod cluster;
mod completion;
mod config;
mod drill;
mod errors;
mod escrow_owner;
mod escrow_proof;
mod etcd_handshake;
mod etcd_prefixes;
mod handoff;
mod help;
mod leaks;
mod login;
mod oracle;
mod password_change;
mod pipes;
mod prometheus;
mod prompt;
mod recovery;
mod recovery_drill;
mod recovery_interop;
mod reference;
mod rekey;
mod reliability;
mod restore_only;
mod rotate;
mod rotate_keys;
mod store_file;
mod systemd;
mod tamper;
mod terminal;
mod untrusted;
mod util;
mod validate;
