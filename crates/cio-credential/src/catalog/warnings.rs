//! What an accepted value may still get: a warning. None repeats the value.

use std::fmt;

use serde::Serialize;

/// A value that is accepted but probably not what the administrator wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Warning {
    /// `s3:http://...`: credentials and data travel unencrypted.
    PlainHttp,
    /// An `ASIA...` key is temporary and needs a session token the set cannot hold.
    TemporaryAwsKey,
    /// Shorter than 12 characters.
    ShortPassword,
    /// A password from the lists every attacker tries first.
    WellKnownPassword,
    /// White space at an end or a tab inside a password, kept because the caller allowed it
    /// ([`super::Allow::whitespace`]).
    WhitespaceKept,
    /// A repository password with line breaks, control or invisible characters, kept as
    /// given (`--allow-any-character`).
    CharactersKept,
    /// A bucket name with capitals, `_` or `:`: AWS still serves such old buckets but no
    /// longer creates them (restic's S3 library accepts the name for an existing bucket).
    LegacyBucketName,
    /// The host seems to start with the bucket (virtual-host style); restic takes the first
    /// path element as the bucket.
    VirtualHostStyle,
    /// A `?query` or `#fragment`, which restic ignores.
    IgnoredUrlPart,
    /// A certificate of a `cacert` value (the `certificate`-th, from 1) expired `on` that
    /// date: restic refuses a server whose chain ends at it.
    CacertExpired { certificate: usize, on: String },
    /// A certificate of a `cacert` value is valid only `from` that date on (or this machine's
    /// clock is wrong): until then restic refuses a server whose chain ends at it.
    CacertNotYetValid { certificate: usize, from: String },
}

impl Warning {
    /// A stable machine code, for `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            Warning::PlainHttp => "plain_http",
            Warning::TemporaryAwsKey => "temporary_key",
            Warning::ShortPassword => "short_password",
            Warning::WellKnownPassword => "well_known_password",
            Warning::WhitespaceKept => "whitespace_kept",
            Warning::CharactersKept => "characters_kept",
            Warning::LegacyBucketName => "legacy_bucket_name",
            Warning::VirtualHostStyle => "virtual_host_style",
            Warning::IgnoredUrlPart => "ignored_url_part",
            Warning::CacertExpired { .. } => "cacert_expired",
            Warning::CacertNotYetValid { .. } => "cacert_not_yet_valid",
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Warning::CacertExpired { certificate, on } => {
                return write!(
                    f,
                    "certificate {certificate} expired on {on}: restic refuses a server whose certificate chain ends at it (x509: certificate has expired); store the CA's renewed certificate instead"
                );
            }
            Warning::CacertNotYetValid { certificate, from } => {
                return write!(
                    f,
                    "certificate {certificate} is valid only from {from} on: until then restic refuses a server whose certificate chain ends at it; check this machine's clock (NTP), or store a certificate valid now"
                );
            }
            Warning::PlainHttp => {
                "the repository uses http://: keys and backups cross the network unencrypted; use s3:https:// unless this is a trusted local network"
            }
            Warning::TemporaryAwsKey => {
                "ASIA... keys are temporary and need a session token this set cannot hold; create an IAM user access key (AKIA...) for backups"
            }
            Warning::ShortPassword => {
                "the repository password is shorter than 12 characters; a longer one is much harder to guess"
            }
            Warning::WellKnownPassword => {
                "the repository password is one every attacker tries first; choose another before the first backup"
            }
            Warning::WhitespaceKept => {
                "the repository password starts or ends with white space or holds a tab, kept as given (--allow-whitespace): restic needs exactly these characters"
            }
            Warning::CharactersKept => {
                "the repository password holds line breaks, control or invisible characters, kept as given (--allow-any-character): restic needs exactly these characters"
            }
            Warning::LegacyBucketName => {
                "the bucket name has capitals, '_' or ':', which AWS no longer allows for new buckets: it works for an existing bucket, but 'restic init' cannot create it"
            }
            Warning::VirtualHostStyle => {
                "the host seems to start with the bucket name (virtual-host style), but restic takes the first path element as the bucket: write it as s3:https://ENDPOINT/BUCKET[/PREFIX]"
            }
            Warning::IgnoredUrlPart => {
                "restic ignores everything from '?' or '#' on in a repository URL; remove that part"
            }
        })
    }
}
