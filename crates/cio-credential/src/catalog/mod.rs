//! The catalog: the 24 credential names, the sets they form, and the value rules.
//!
//! Rules (DESIGN.md, "The catalog"):
//! - a name is `cio_{provider}[_alt]_{field}`; anything else is refused without being
//!   repeated, with the closest known name suggested when the text looks like a misspelling;
//! - a value is checked offline here, on create and again by validate. A broken rule refuses
//!   the value ([`RuleViolation`]); a doubtful one is accepted with a [`Warning`]. No error or
//!   warning text holds the value;
//! - a repository URL means here what it means to restic 0.14 ([`RepoUrl`]).
//!
//! Everything here is a pure function: no I/O, no printing.

mod amazon;
mod bucket;
pub(crate) mod cacert;
mod host;
mod masking;
mod names;
mod repo_url;
mod rules;
mod text;
mod violations;
mod warnings;

pub(crate) use amazon::{is_amazon, region_from_host};
pub use names::{
    CredentialName, Field, MAX_CACERT_BYTES, MAX_VALUE_BYTES, Provider, Role, SetId, UnknownName,
};
pub use repo_url::RepoUrl;
pub(crate) use repo_url::url_path;
pub(crate) use rules::check_line;
pub use rules::{Allow, check_value};
pub use violations::RuleViolation;
pub use warnings::Warning;
