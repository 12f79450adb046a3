//! The 24 credential names and the sets they form.
//!
//! A name is `cio_{provider}[_alt]_{field}`. Four fields make a set complete; two more
//! (`region`, `cacert`) are optional. A text that is not a name is refused without being
//! repeated (it may be a secret typed in the wrong place), with the closest name suggested
//! only when the text is a plausible misspelling of one.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// The object storage a set points at: `aws` for Amazon S3, `minio` for any S3-compatible
/// service (MinIO, Ceph RGW, Wasabi, B2, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Aws,
    Minio,
}

/// Whether a set is this cluster's own (primary) or another cluster's (alternate, for
/// disaster recovery).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Alternate,
}

/// One credential of a set: four required fields, then two optional ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The restic repository URL (`s3:...`).
    BackupRepo,
    AccessKey,
    SecretKey,
    /// The restic repository password.
    BackupPassword,
    /// Optional: the S3 signing region (`us-east-1`, `nl-ams`).
    Region,
    /// Optional: PEM text of the certificate authority (or self-signed certificate) the
    /// endpoint's TLS certificate is checked against.
    Cacert,
}

impl Provider {
    pub const ALL: [Provider; 2] = [Provider::Aws, Provider::Minio];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Minio => "minio",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "aws" => Ok(Provider::Aws),
            "minio" => Ok(Provider::Minio),
            _ => Err("unknown provider: use aws or minio".to_string()),
        }
    }
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Primary, Role::Alternate];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Alternate => "alternate",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest value accepted, in bytes, for every field but [`Field::Cacert`].
pub const MAX_VALUE_BYTES: usize = 4096;

/// The longest [`Field::Cacert`] value accepted, in bytes (64 KiB: a long chain of PEM
/// certificates fits many times over).
pub const MAX_CACERT_BYTES: usize = 64 * 1024;

impl Field {
    /// The four fields a set needs to be complete, in catalog order.
    pub const REQUIRED: [Field; 4] = [
        Field::BackupRepo,
        Field::AccessKey,
        Field::SecretKey,
        Field::BackupPassword,
    ];

    /// The fields a set may have besides the required ones: stored, listed and handed over
    /// like the others, never needed for completeness.
    pub const OPTIONAL: [Field; 2] = [Field::Region, Field::Cacert];

    /// Every field, in catalog order.
    pub const ALL: [Field; 6] = [
        Field::BackupRepo,
        Field::AccessKey,
        Field::SecretKey,
        Field::BackupPassword,
        Field::Region,
        Field::Cacert,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::BackupRepo => "backup_repo",
            Field::AccessKey => "access_key",
            Field::SecretKey => "secret_key",
            Field::BackupPassword => "backup_password",
            Field::Region => "region",
            Field::Cacert => "cacert",
        }
    }

    /// Keys and passwords are secret; repository URLs, regions and certificates are not.
    pub fn is_secret(self) -> bool {
        matches!(
            self,
            Field::AccessKey | Field::SecretKey | Field::BackupPassword
        )
    }

    /// Whether a set needs this field to be complete.
    pub fn is_required(self) -> bool {
        Field::REQUIRED.contains(&self)
    }

    /// The longest value accepted, in bytes.
    pub fn max_value_bytes(self) -> usize {
        match self {
            Field::Cacert => MAX_CACERT_BYTES,
            _ => MAX_VALUE_BYTES,
        }
    }

    /// Whether a value may span several lines (PEM text); every other value is one line.
    pub fn is_multi_line(self) -> bool {
        self == Field::Cacert
    }
}

/// A set: the names of one provider and role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SetId {
    pub provider: Provider,
    pub role: Role,
}

impl SetId {
    /// The four sets, in catalog order.
    pub fn all() -> impl Iterator<Item = SetId> {
        Provider::ALL.into_iter().flat_map(|provider| {
            Role::ALL
                .into_iter()
                .map(move |role| SetId { provider, role })
        })
    }

    /// The four names a complete set has, in [`Field::REQUIRED`] order.
    pub fn names(self) -> [CredentialName; 4] {
        Field::REQUIRED.map(|field| self.name(field))
    }

    /// The set's optional names, in [`Field::OPTIONAL`] order.
    pub fn optional_names(self) -> [CredentialName; 2] {
        Field::OPTIONAL.map(|field| self.name(field))
    }

    /// The command that shows the repository's keys through `exec` with this set: restic's
    /// `key list`, and for an alternate set `list keys` (the keys' ids): restic locks the
    /// repository for `key list`, which `exec --alternate` refuses, and `list keys` reads it
    /// without a lock.
    pub fn keys_command(self) -> String {
        let list = match self.role {
            Role::Primary => "key list",
            Role::Alternate => "list keys",
        };
        format!("cio credential exec {} -- restic {list}", self.options())
    }

    /// The options that name this set on the command line: `--provider minio`, and
    /// `--alternate` for an alternate set.
    pub fn options(self) -> String {
        match self.role {
            Role::Primary => format!("--provider {}", self.provider),
            Role::Alternate => format!("--provider {} --alternate", self.provider),
        }
    }

    /// The set's name for `field`.
    pub fn name(self, field: Field) -> CredentialName {
        CredentialName {
            provider: self.provider,
            role: self.role,
            field,
        }
    }
}

impl fmt::Display for SetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.provider, self.role)
    }
}

/// One of the 24 credential names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CredentialName {
    pub provider: Provider,
    pub role: Role,
    pub field: Field,
}

impl CredentialName {
    /// All 24 names, in catalog order (aws before minio, primary before alternate, then
    /// [`Field::ALL`] order).
    pub fn all() -> impl Iterator<Item = CredentialName> {
        SetId::all().flat_map(|set| Field::ALL.map(|field| set.name(field)))
    }

    pub fn set(self) -> SetId {
        SetId {
            provider: self.provider,
            role: self.role,
        }
    }
}

impl fmt::Display for CredentialName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alt = match self.role {
            Role::Primary => "",
            Role::Alternate => "_alt",
        };
        write!(f, "cio_{}{}_{}", self.provider, alt, self.field.as_str())
    }
}

impl Serialize for CredentialName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A text given as NAME that is not one of the 24 names. It keeps nothing of the text: the
/// text may be a secret typed in the wrong place (a forgotten NAME, NAME and VALUE swapped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the text given as CREDENTIALNAME is not one of the 24 credential names")]
pub struct UnknownName {
    /// The closest name the command takes, given only when the text looks like a
    /// misspelling of it (and no name the command refuses is closer).
    pub suggestion: Option<CredentialName>,
    /// The closest name when the command does not take it (`rotate` given a misspelled
    /// access key): never suggested, since the command would refuse it; its hint says what
    /// the command takes instead.
    pub refused: Option<CredentialName>,
}

/// Edits (Damerau-Levenshtein) within which any text counts as a misspelling of a name.
const NEAR: usize = 4;
/// Edits within which a text starting with `cio_` counts as a misspelling of a name.
const NEAR_WITH_PREFIX: usize = 6;

impl FromStr for CredentialName {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CredentialName::parse_taking(s, |_| true)
    }
}

impl CredentialName {
    /// `typed` as a name for a command that takes only the names `takes` accepts: a
    /// misspelling gets a suggestion among those, never one the command refuses. A name
    /// given exactly parses whether taken or not (the command says why it refuses it).
    pub fn parse_taking(
        typed: &str,
        takes: fn(&CredentialName) -> bool,
    ) -> Result<CredentialName, UnknownName> {
        exact(typed).ok_or_else(|| match suggest(typed, takes) {
            Some(closest) if takes(&closest) => UnknownName {
                suggestion: Some(closest),
                refused: None,
            },
            refused => UnknownName {
                suggestion: None,
                refused,
            },
        })
    }
}

/// `typed` read as `cio_{provider}[_alt]_{field}`, exactly; read piece by piece rather than
/// by formatting the 24 names, since every stored record's name is parsed on every read.
fn exact(typed: &str) -> Option<CredentialName> {
    let rest = typed.strip_prefix("cio_")?;
    let (provider, rest) = Provider::ALL
        .into_iter()
        .find_map(|p| Some((p, rest.strip_prefix(p.as_str())?.strip_prefix('_')?)))?;
    let (role, rest) = match rest.strip_prefix("alt_") {
        Some(rest) => (Role::Alternate, rest),
        None => (Role::Primary, rest),
    };
    let field = Field::ALL.into_iter().find(|f| f.as_str() == rest)?;
    Some(CredentialName {
        provider,
        role,
        field,
    })
}

/// The closest name to `typed` when `typed` is a plausible misspelling of it: within a few
/// edits, or starting with `cio_` and not far off. A secret typed as NAME is neither, so it
/// gets no suggestion (which would hint at nothing anyway: a suggestion is a catalog name).
/// Of names as close, one `takes` accepts is preferred.
fn suggest(typed: &str, takes: fn(&CredentialName) -> bool) -> Option<CredentialName> {
    let lowered = typed.trim().to_ascii_lowercase().replace('-', "_");
    let (distance, closest) = CredentialName::all()
        .map(|n| (strsim::damerau_levenshtein(&lowered, &n.to_string()), n))
        .min_by_key(|(distance, n)| (*distance, !takes(n)))?;
    let limit = if lowered.starts_with("cio_") {
        NEAR_WITH_PREFIX
    } else {
        NEAR
    };
    (distance <= limit).then_some(closest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> CredentialName {
        s.parse().expect("a catalog name")
    }

    fn suggestion(s: &str) -> Option<String> {
        s.parse::<CredentialName>()
            .expect_err("not a name")
            .suggestion
            .map(|n| n.to_string())
    }

    #[test]
    fn there_are_twenty_four_distinct_names_that_round_trip() {
        let all: Vec<String> = CredentialName::all().map(|n| n.to_string()).collect();
        assert_eq!(all.len(), 24);
        let mut dedup = all.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 24);
        for s in &all {
            assert_eq!(&name(s).to_string(), s);
        }
        for s in [
            "cio_minio_alt_backup_password",
            "cio_aws_region",
            "cio_minio_alt_region",
            "cio_aws_alt_cacert",
            "cio_minio_cacert",
        ] {
            assert!(all.contains(&s.to_string()), "{s}");
        }
    }

    /// The review's finding: `rotate cio_minio_acess_key` suggested cio_minio_access_key,
    /// a name rotate refuses. A command's suggestion is a name it takes.
    #[test]
    fn a_suggestion_is_a_name_the_command_takes() {
        let passwords = |n: &CredentialName| n.field == Field::BackupPassword;
        let parsed = |s: &str| CredentialName::parse_taking(s, passwords).expect_err("not a name");
        assert_eq!(
            parsed("cio_minio_acess_key"),
            UnknownName {
                suggestion: None,
                refused: Some(name("cio_minio_access_key")),
            }
        );
        assert_eq!(
            parsed("cio_aws_backup_pasword"),
            UnknownName {
                suggestion: Some(name("cio_aws_backup_password")),
                refused: None,
            }
        );
        assert_eq!(
            parsed("foo"),
            UnknownName {
                suggestion: None,
                refused: None,
            }
        );
        // An exact name parses, taken or not: the command says why it refuses it.
        assert_eq!(
            CredentialName::parse_taking("cio_aws_access_key", passwords),
            Ok(name("cio_aws_access_key"))
        );
        assert_eq!(
            suggestion("cio_minio_acess_key").as_deref(),
            Some("cio_minio_access_key")
        );
    }

    #[test]
    fn only_a_whole_name_parses() {
        for n in CredentialName::all() {
            let s = n.to_string();
            for near in [
                format!("{s}_"),
                format!(" {s}"),
                format!("x{s}"),
                s.to_uppercase(),
                s.replace("cio_", "cio__"),
                s[..s.len() - 1].to_string(),
            ] {
                assert!(near.parse::<CredentialName>().is_err(), "{near}");
            }
        }
        for near in [
            "cio_aws_alt",
            "cio_aws_alt_",
            "cio_alt_aws_region",
            "cio_aws",
            "",
        ] {
            assert!(near.parse::<CredentialName>().is_err(), "{near}");
        }
    }
    #[test]
    fn a_set_needs_four_names_and_may_have_two_more() {
        let set = name("cio_minio_alt_region").set();
        assert_eq!(
            set.names().map(|n| n.to_string()),
            [
                "cio_minio_alt_backup_repo",
                "cio_minio_alt_access_key",
                "cio_minio_alt_secret_key",
                "cio_minio_alt_backup_password"
            ]
        );
        assert_eq!(
            set.optional_names().map(|n| n.to_string()),
            ["cio_minio_alt_region", "cio_minio_alt_cacert"]
        );
        assert!(!Field::Region.is_required() && !Field::Cacert.is_required());
        assert!(!Field::Region.is_secret() && !Field::Cacert.is_secret());
        assert_eq!(Field::Cacert.max_value_bytes(), 65536);
        assert_eq!(Field::Region.max_value_bytes(), 4096);
    }

    #[test]
    fn misspelled_names_get_the_closest_suggestion() {
        assert_eq!(
            suggestion("cio_aws_acess_key").as_deref(),
            Some("cio_aws_access_key")
        );
        assert_eq!(
            suggestion("cio_minio_alt_secretkey").as_deref(),
            Some("cio_minio_alt_secret_key")
        );
        assert_eq!(
            suggestion("aws_access_key").as_deref(),
            Some("cio_aws_access_key")
        );
        assert_eq!(
            suggestion("CIO-AWS-REGION").as_deref(),
            Some("cio_aws_region")
        );
        assert_eq!(
            suggestion("cio_minio_ca_cert").as_deref(),
            Some("cio_minio_cacert")
        );
    }

    #[test]
    fn text_that_is_no_misspelling_gets_no_suggestion_and_is_not_kept() {
        for typed in [
            "hello",
            "S3cret-Pw-Canary-1",
            "s3:https://s3.amazonaws.com/backup-123",
            "AKIAYHD623GGZX7VDFMJ",
            "0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8vZd",
            "",
        ] {
            let err = typed.parse::<CredentialName>().expect_err("not a name");
            assert_eq!(err.suggestion, None, "{typed}");
            assert_eq!(
                err.to_string(),
                "the text given as CREDENTIALNAME is not one of the 24 credential names"
            );
            if !typed.is_empty() {
                assert!(!format!("{err:?}").contains(typed));
            }
        }
    }
}
