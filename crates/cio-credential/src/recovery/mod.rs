//! Disaster recovery: a cluster's credential sets sealed into a *recovery bundle* that
//! outlives the cluster, its store and its key file.
//!
//! A bundle is a standard age file (<https://age-encryption.org/v1>), ASCII-armored
//! (`-----BEGIN AGE ENCRYPTED FILE-----`), sealed with rage's `age` library to a passphrase
//! (scrypt) or to recipients (X25519 `age1…` keys, SSH public keys). The real `age` command
//! opens one (`age -d`), and cio opens any age file whose plaintext is a bundle.
//!
//! # The plaintext (format `cio-recovery-bundle`, version 1)
//!
//! One UTF-8 JSON object, never written anywhere unencrypted:
//!
//! ```json
//! {
//!   "format": "cio-recovery-bundle",
//!   "format_version": 1,
//!   "created_at_ms": 1790000000000,
//!   "created_by": "cio 0.1.0",
//!   "history": false,
//!   "credentials": [
//!     {"name": "cio_minio_backup_repo",
//!      "versions": [{"version": 3, "action": "update", "written_at_ms": 1789000000000,
//!                    "value": "s3:https://minio.example:9000/backups"}]}
//!   ]
//! }
//! ```
//!
//! - `format` must be `cio-recovery-bundle` and `format_version` 1; a reader refuses any
//!   other (a newer version names itself in the error); fields it does not know are ignored;
//! - `created_at_ms` / `written_at_ms`: milliseconds since the Unix epoch;
//! - `credentials`: at least one entry (a bundle with none is refused, and so is one in
//!   which no entry's newest version has a value: it would import nothing), one per name
//!   (one of the catalog's names, each at most once); its `versions` are oldest first and
//!   never empty. Without history each holds one version,
//!   the live one; with history every version the store kept, `action` one of `create`,
//!   `update`, `remove`, `restore`, and `value` absent for a `remove`.
//!
//! Modules: [`bundle`] (the plaintext), [`seal`] (age), [`escrow`] (the copy beside the
//! repository), [`proof`] (an escrow object
//! proven its repository's by its password), [`output`] (a bundle file written whole or not at all), [`import`] (what an
//! import writes).

pub mod bundle;
pub mod error;
pub mod escrow;
pub mod import;
pub mod output;
pub mod proof;
pub mod seal;

pub use error::RecoveryError;
