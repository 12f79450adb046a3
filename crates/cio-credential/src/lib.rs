//! The library behind `cio credential`: the credential catalog, secret types, encryption at
//! rest, the stores, and the checks. No terminal, no `process::exit`: the binary renders.

pub mod audit;
pub mod catalog;
pub mod config;
pub mod credentials;
pub mod crypto;
pub mod engine;
pub mod error;
pub mod migrate;
pub mod paths;
pub mod restic;
pub mod secret;
pub mod store;
pub mod validate;

pub use error::{Error, ErrorKind, Result};
