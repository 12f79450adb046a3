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
mod ca_file;
mod catalog;
mod credentials;
mod crypto;
mod error;
mod files;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod handoff;
mod input_file;
mod integrity;
mod keyring;
mod ledger;
mod migrate;
mod paths;
mod recovery;
mod replace;
mod restic;
mod restic_argv;
mod rotate;
mod secret;
mod sets;
mod settings;
mod shown;
mod store;
mod validate;
mod wipe;

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
pub use audit::{Actor, Broken, LogEntry, LogReading, Problem, UNANCHORED_WAY_OUT};
pub use credentials::{CheckResult, Checks, HealthRecord};
// One store with its key: what commands use.
pub use credentials::{
    Absence, Acknowledged, Change, CredentialStore, EarlierRevisions, Entry, HistoryEntry, Listed,
    Purged, Seen, Written, check_changes,
};
// Why a credential's records cannot be trusted.
pub use integrity::Damage;
// Sets: what each has and lacks, their values, which ones a command means.
pub use sets::{Listing, Purpose, SetFilter, SetStatus, SetValues, SetVersions, Stored, select};
// Handing a set to restic.
pub use handoff::{Handoff, OVERRIDING, cleared, sh_quote, variable};
// Moving a store's credentials into another store.
pub use migrate::{Migrated, MigrationReport};
// The stores themselves (backends), for tools and tests that work below the credentials.
pub use store::etcd::{EtcdAuth, EtcdOptions, EtcdSpec};
pub use store::sqlite::SqliteStore;
pub use store::sqlite::memory::use_process_allocator as sqlite_use_process_allocator;
pub use store::{
    Action, EtcdTlsFault, Identity, LogAppend, LogRecord, ManifestSwap, ReadRecord, Record,
    Snapshot, SpecError, Store, StoreError, StoreSpec, Undecodable,
};
// The store key and what can go wrong with it.
pub use crypto::{DoesNotOpen, KeyError};
// restic's key files, as `validate` reads them; a set's CA certificate handed to restic.
pub use restic::{
    CA_FILE_VARIABLE, CaBundle, CaFileUnread, CaHandoff, KeyFile, MAX_CA_FILE, ca_bundle,
};
// The CA bundle files `env` keeps, and what an inherited SSL_CERT_FILE is to cio.
pub use ca_file::{
    BundleNotOurs, CALLER_CA_FILE_VARIABLE, CaFiles, CaVariables, HandedCa, InheritedCa,
    StaleBundle, UnsafeFolder, VarChange, ca_variables, caller_ca_unread, hand_ca,
};
// How old secrets are (`list`, validate's `key_old`), measured against the clock.
pub use rotate::{DEFAULT_MAX_KEY_AGE_DAYS, age_days, warn_old_keys};
pub use store::now_ms;
// Rotation: a repository password in step with its repository (a bare change caught), and
// an access key pair checked live and written as one.
pub use rotate::{KeysRotated, rotate_access_key};
pub use rotate::{
    OldKey, PasswordChange, PasswordRotated, PasswordRotation, Problem as RotateProblem,
    Refusal as PasswordRefusal, RotateError, Stage as RotateStage, check_password_change,
    check_password_import, check_password_restore, generate_password,
};
// Rotating the store key: the key file as a keyring, in four stages.
pub use credentials::{RekeyError, RekeyStage, RekeyStep};
// Validation of sets against the rules and the real object storage.
pub use validate::{
    CaCertError, Check, KEY_HINT_VARIABLE, Options as ValidateOptions, ProxyEnv, ProxyError,
    SetReport, Status, Step, parse_cacert, validate_set, validate_sets,
};
// Disaster recovery: bundles sealed with age, the escrow copy beside a repository, imports.
pub use files::release_fifo;
pub use input_file::{InputFile, InputFileError, open_input};
pub use recovery::RecoveryError;
pub use recovery::bundle::{Bundle, BundledCredential, BundledVersion};
pub use recovery::error::replace_escrow;
pub use recovery::escrow::{
    BucketKeys, EscrowError, Escrowed, MARKER_NAME as ESCROW_MARKER, OBJECT_NAME as ESCROW_OBJECT,
    ReadWith, StoredKeys, check_origin as check_escrow_origin, escrow_present, escrow_set,
    escrowed_beside, fingerprint as recipients_fingerprint, get_bundle,
    location as escrow_location, read_bundle, stored_keys as stored_escrow_keys,
};
pub use recovery::import::{Outcome, Plan, Planned};
pub use recovery::output::{check_bundle_output, write_bundle_file};
pub use recovery::proof::{Unproven as UnprovenEscrow, prove as prove_escrow};
// Replacing a file cio writes whole: only a regular file, never through a link.
pub use recovery::seal::{
    Identities, OpenWith, Recipient, RecipientSource, SealTo, ShortPassphrase, check_passphrase,
    needs_passphrase, open as open_bundle, seal as seal_bundle,
};
pub use replace::{NotReplaceable, check_replaceable};
// Whether a restic command line writes to the repository it runs against.
pub use restic_argv::{RepositoryAccess, restic_access, without_lock};
// How messages show a file path (byte for byte) and a time.
pub use shown::{ShownPath, shown_path, shown_time};
// Errors.
pub use error::{ConfigError, Error, ErrorKind, Result};
