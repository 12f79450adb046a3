//! The library behind `cio credential`: the credential catalog, secret types, encryption at
//! rest, the stores, and the checks. No terminal, no `process::exit`: the binary renders.
//!
//! The modules are private; the list below is the whole API, and the binary imports from
//! here alone. Start at [`Settings`] (resolve the flags, open the store), then
//! [`CredentialStore`] (one store with its key: every command's operations), which speaks in
//! sets: [`Listing`] and [`SetStatus`] say what each set has and lacks without opening a
//! value, [`SetValues`] holds one set's values by field, [`SetFilter`] with [`Purpose`] picks
//! the sets a command means. `docs/DESIGN-NOTES.md` draws the layout.

mod audit;
mod catalog;
mod credentials;
mod crypto;
mod error;
mod handoff;
mod migrate;
mod paths;
mod restic;
mod secret;
mod sets;
mod settings;
mod store;
mod validate;

#[cfg(test)]
mod suite;

// The catalog: names, sets, value rules.
pub use catalog::{
    Allow, CredentialName, Field, MAX_CACERT_BYTES, MAX_VALUE_BYTES, Provider, RepoUrl, Role,
    RuleViolation, SetId, UnknownName, Warning, check_value,
};
// Secret material.
pub use secret::SecretValue;
// Settings, and opening a store.
pub use settings::{AskPassword, Settings};
// The change log (audit log) and the recorded health of the sets.
pub use audit::{Actor, Broken, LogEntry, LogReading, Problem};
pub use credentials::{CheckResult, HealthRecord};
// One store with its key: what commands use.
pub use credentials::{CredentialStore, EarlierRevisions, Entry, HistoryEntry, Purged, Written};
// Sets: what each has and lacks, their values, which ones a command means.
pub use sets::{Listing, Purpose, SetFilter, SetStatus, SetValues, Stored, select};
// Handing a set to restic.
pub use handoff::{CLEARED, Handoff, sh_quote, variable};
// Moving a store's credentials into another store.
pub use migrate::{Migrated, MigrationReport};
// The stores themselves (backends), for tools and tests that work below the credentials.
pub use store::etcd::{EtcdAuth, EtcdOptions, EtcdSpec};
pub use store::sqlite::SqliteStore;
pub use store::{Action, Identity, LogRecord, Record, SpecError, Store, StoreError, StoreSpec};
// The store key and what can go wrong with it.
pub use crypto::{DoesNotOpen, KeyError};
// restic's key files, as `validate` reads them.
pub use restic::KeyFile;
// Validation of sets against the rules and the real object storage.
pub use validate::{
    Check, Options as ValidateOptions, SetReport, Status, Step, validate_set, validate_sets,
};
// Errors.
pub use error::{ConfigError, Error, ErrorKind, Result};
