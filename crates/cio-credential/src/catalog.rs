//! The catalog: the 16 credential names, the sets they form, and the value rules.
//!
//! Rules (DESIGN.md, "The catalog"):
//! - a name is `cio_{provider}[_alt]_{field}`; anything else is refused with the closest
//!   known name suggested;
//! - a value is checked offline here, on create and again by validate. A broken rule refuses
//!   the value ([`RuleViolation`]); a doubtful one is accepted with a [`Warning`].
//!
//! Everything here is a pure function: no I/O, no printing.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// The object storage a set points at.
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

/// One of the four credentials of a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    BackupRepo,
    AccessKey,
    SecretKey,
    BackupPassword,
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
            other => Err(format!("unknown provider '{other}': use aws or minio")),
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

impl Field {
    pub const ALL: [Field; 4] = [
        Field::BackupRepo,
        Field::AccessKey,
        Field::SecretKey,
        Field::BackupPassword,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::BackupRepo => "backup_repo",
            Field::AccessKey => "access_key",
            Field::SecretKey => "secret_key",
            Field::BackupPassword => "backup_password",
        }
    }

    /// Keys and passwords are secret; repository URLs are not.
    pub fn is_secret(self) -> bool {
        !matches!(self, Field::BackupRepo)
    }

    /// How a value of this field is shown in listings: keys keep their last 4 characters
    /// (as `aws configure list` does), passwords show nothing, URLs are shown whole.
    pub fn mask(self, value: &str) -> String {
        match self {
            Field::BackupRepo => value.to_string(),
            Field::BackupPassword => "********".to_string(),
            Field::AccessKey | Field::SecretKey => {
                let chars: Vec<char> = value.chars().collect();
                // A key shorter than 12 characters would give away too much of itself.
                let tail: String = if chars.len() >= 12 {
                    chars[chars.len() - 4..].iter().collect()
                } else {
                    String::new()
                };
                format!("****************{tail}")
            }
        }
    }
}

/// A set: the four names of one provider and role.
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

    /// The four names of this set, in field order.
    pub fn names(self) -> [CredentialName; 4] {
        Field::ALL.map(|field| CredentialName {
            provider: self.provider,
            role: self.role,
            field,
        })
    }
}

impl fmt::Display for SetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.provider, self.role)
    }
}

/// One of the 16 credential names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CredentialName {
    pub provider: Provider,
    pub role: Role,
    pub field: Field,
}

impl CredentialName {
    /// All 16 names, in catalog order (aws before minio, primary before alternate).
    pub fn all() -> impl Iterator<Item = CredentialName> {
        SetId::all().flat_map(|set| set.names())
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

/// A name that is not one of the 16.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown credential name '{given}'")]
pub struct UnknownName {
    pub given: String,
    /// The closest known name, when one is close enough to be a likely typo.
    pub suggestion: Option<CredentialName>,
}

impl FromStr for CredentialName {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(name) = CredentialName::all().find(|n| n.to_string() == s) {
            return Ok(name);
        }
        let lowered = s.trim().to_ascii_lowercase().replace('-', "_");
        let suggestion = CredentialName::all()
            .map(|n| (strsim::damerau_levenshtein(&lowered, &n.to_string()), n))
            .min_by_key(|(distance, _)| *distance)
            .filter(|(distance, _)| *distance <= 4)
            .map(|(_, n)| n);
        Err(UnknownName {
            given: s.to_string(),
            suggestion,
        })
    }
}

/// The longest value accepted, in bytes.
pub const MAX_VALUE_BYTES: usize = 4096;

/// A rule a value broke. The text says which rule and, where there is one, the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleViolation {
    #[error("the value is empty")]
    Empty,
    #[error("the value is {0} bytes long; at most 4096 are accepted")]
    TooLong(usize),
    #[error("the value starts or ends with white space (a common paste error); remove it")]
    SurroundingWhitespace,
    #[error("the value contains a line break; a credential is one line")]
    LineBreak,
    #[error("the value contains a control character at position {0}; retype it without one")]
    ControlCharacter(usize),
    #[error(
        "the value contains an invisible character (U+{1:04X}) at position {0}, a common paste error; retype it without one"
    )]
    InvisibleCharacter(usize, u32),
    #[error(
        "a repository URL starts with 's3:'; write it as 's3:{0}' (restic's S3 repository syntax)"
    )]
    RepoMissingS3Prefix(String),
    #[error(
        "a repository URL is 's3:https://HOST[:PORT]/BUCKET[/PREFIX]', 's3:http://...' or 's3:HOST/BUCKET'"
    )]
    RepoNotS3,
    #[error("the repository URL names no host; write it as 's3:https://HOST/BUCKET'")]
    RepoNoHost,
    #[error("the repository URL names no bucket; write it as 's3:https://HOST/BUCKET'")]
    RepoNoBucket,
    #[error(
        "'{0}' is not a valid bucket name: use 3 to 63 lowercase letters, digits, '.' or '-', starting and ending with a letter or digit"
    )]
    RepoBadBucket(String),
    #[error("the repository URL has an invalid port '{0}'")]
    RepoBadPort(String),
    #[error(
        "an AWS access key is 16 to 128 uppercase letters and digits (like AKIAIOSFODNN7EXAMPLE); this one is {0} characters"
    )]
    AwsAccessKeyLength(usize),
    #[error("an AWS access key is uppercase letters and digits only (like AKIAIOSFODNN7EXAMPLE)")]
    AwsAccessKeyAlphabet,
    #[error("an AWS secret key is exactly 40 characters; this one is {0}")]
    AwsSecretKeyLength(usize),
    #[error("an AWS secret key is letters, digits, '/', '+' and '=' only")]
    AwsSecretKeyAlphabet,
    #[error("a MinIO access key is at least 3 characters; this one is {0}")]
    MinioAccessKeyLength(usize),
    #[error("a MinIO secret key is at least 8 characters; this one is {0}")]
    MinioSecretKeyLength(usize),
}

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
}

impl Warning {
    /// A stable machine code, for `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            Warning::PlainHttp => "plain_http",
            Warning::TemporaryAwsKey => "temporary_key",
            Warning::ShortPassword => "short_password",
            Warning::WellKnownPassword => "well_known_password",
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
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
        })
    }
}

/// Passwords every guessing attack starts with. A short list on purpose: a warning, never a
/// refusal (the reference page itself uses `password`).
const WELL_KNOWN_PASSWORDS: &[&str] = &[
    "password",
    "password1",
    "password123",
    "passw0rd",
    "123456",
    "12345678",
    "123456789",
    "1234567890",
    "qwerty",
    "qwerty123",
    "letmein",
    "welcome",
    "admin",
    "administrator",
    "changeme",
    "secret",
    "restic",
    "backup",
    "minio123",
    "minioadmin",
    "iloveyou",
    "abc123",
    "111111",
    "000000",
    "root",
    "toor",
];

/// The parts of a restic S3 repository URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoUrl {
    /// `https` or `http`.
    pub scheme: String,
    /// Host, with `:port` when one was given.
    pub host: String,
    pub bucket: String,
    /// The path inside the bucket, without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

impl RepoUrl {
    /// The endpoint URL an S3 client is given: `scheme://host`.
    pub fn endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.host)
    }

    /// Parses `s3:https://host[:port]/bucket[/prefix]`, `s3:http://...` or `s3:host/bucket`.
    pub fn parse(value: &str) -> Result<RepoUrl, RuleViolation> {
        let Some(rest) = value.strip_prefix("s3:") else {
            if value.starts_with("https://") || value.starts_with("http://") {
                return Err(RuleViolation::RepoMissingS3Prefix(value.to_string()));
            }
            return Err(RuleViolation::RepoNotS3);
        };
        let (scheme, rest) = if let Some(r) = rest.strip_prefix("https://") {
            ("https", r)
        } else if let Some(r) = rest.strip_prefix("http://") {
            ("http", r)
        } else if rest.contains("://") {
            return Err(RuleViolation::RepoNotS3);
        } else {
            ("https", rest)
        };
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty() {
            return Err(RuleViolation::RepoNoHost);
        }
        if let Some((_, port)) = host.rsplit_once(':')
            && !host.ends_with(']')
            && port.parse::<u16>().map_or(true, |p| p == 0)
        {
            return Err(RuleViolation::RepoBadPort(port.to_string()));
        }
        let path = path.trim_matches('/');
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        if bucket.is_empty() {
            return Err(RuleViolation::RepoNoBucket);
        }
        if !is_valid_bucket(bucket) {
            return Err(RuleViolation::RepoBadBucket(bucket.to_string()));
        }
        Ok(RepoUrl {
            scheme: scheme.to_string(),
            host: host.to_string(),
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }
}

fn is_valid_bucket(bucket: &str) -> bool {
    let ok_len = (3..=63).contains(&bucket.len());
    let ok_chars = bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ok_ends = bucket
        .bytes()
        .next()
        .zip(bucket.bytes().last())
        .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
    ok_len && ok_chars && ok_ends
}

/// Checks a value against the rules of its field. `Ok` carries the warnings, if any.
pub fn check_value(name: CredentialName, value: &str) -> Result<Vec<Warning>, RuleViolation> {
    check_common(value)?;
    let mut warnings = Vec::new();
    let len = value.chars().count();
    match (name.field, name.provider) {
        (Field::BackupRepo, _) => {
            let repo = RepoUrl::parse(value)?;
            if repo.scheme == "http" {
                warnings.push(Warning::PlainHttp);
            }
        }
        (Field::AccessKey, Provider::Aws) => {
            if !value
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            {
                return Err(RuleViolation::AwsAccessKeyAlphabet);
            }
            if !(16..=128).contains(&len) {
                return Err(RuleViolation::AwsAccessKeyLength(len));
            }
            if value.starts_with("ASIA") {
                warnings.push(Warning::TemporaryAwsKey);
            }
        }
        (Field::SecretKey, Provider::Aws) => {
            if !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+' | b'='))
            {
                return Err(RuleViolation::AwsSecretKeyAlphabet);
            }
            if len != 40 {
                return Err(RuleViolation::AwsSecretKeyLength(len));
            }
        }
        (Field::AccessKey, Provider::Minio) if len < 3 => {
            return Err(RuleViolation::MinioAccessKeyLength(len));
        }
        (Field::SecretKey, Provider::Minio) if len < 8 => {
            return Err(RuleViolation::MinioSecretKeyLength(len));
        }
        (Field::BackupPassword, _) => {
            if WELL_KNOWN_PASSWORDS
                .iter()
                .any(|w| w.eq_ignore_ascii_case(value))
            {
                warnings.push(Warning::WellKnownPassword);
            }
            if len < 12 {
                warnings.push(Warning::ShortPassword);
            }
        }
        _ => {}
    }
    Ok(warnings)
}

/// The rules every value shares.
fn check_common(value: &str) -> Result<(), RuleViolation> {
    if value.is_empty() {
        return Err(RuleViolation::Empty);
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(RuleViolation::TooLong(value.len()));
    }
    if value.contains(['\n', '\r']) && !value.trim().contains(['\n', '\r']) {
        return Err(RuleViolation::SurroundingWhitespace);
    }
    if value.contains(['\n', '\r']) {
        return Err(RuleViolation::LineBreak);
    }
    if value.trim() != value {
        return Err(RuleViolation::SurroundingWhitespace);
    }
    if let Some(pos) = value.chars().position(char::is_control) {
        return Err(RuleViolation::ControlCharacter(pos + 1));
    }
    if let Some((pos, c)) = value.chars().enumerate().find(|(_, c)| is_invisible(*c)) {
        return Err(RuleViolation::InvisibleCharacter(pos + 1, u32::from(c)));
    }
    Ok(())
}

/// Invisible format characters that ride along with copied text: the byte order mark,
/// zero-width spaces and joiners, direction marks and embeddings, the soft hyphen, word
/// joiners. Listed here (a dozen code points of Unicode's Cf category) rather than pulling
/// in a Unicode database crate for one check.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> CredentialName {
        s.parse().expect("a catalog name")
    }

    #[test]
    fn there_are_sixteen_distinct_names_that_round_trip() {
        let all: Vec<String> = CredentialName::all().map(|n| n.to_string()).collect();
        assert_eq!(all.len(), 16);
        let mut dedup = all.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 16);
        for s in &all {
            assert_eq!(&name(s).to_string(), s);
        }
        assert!(all.contains(&"cio_minio_alt_backup_password".to_string()));
    }

    #[test]
    fn misspelled_names_get_the_closest_suggestion() {
        let err = "cio_aws_acess_key".parse::<CredentialName>().unwrap_err();
        assert_eq!(err.suggestion, Some(name("cio_aws_access_key")));
        let err = "cio_minio_alt_secretkey"
            .parse::<CredentialName>()
            .unwrap_err();
        assert_eq!(err.suggestion, Some(name("cio_minio_alt_secret_key")));
        let err = "hello".parse::<CredentialName>().unwrap_err();
        assert_eq!(err.suggestion, None);
    }

    #[test]
    fn reference_page_values_are_accepted() {
        assert_eq!(
            check_value(
                name("cio_aws_backup_repo"),
                "s3:https://s3.amazonaws.com/backup-123"
            ),
            Ok(vec![])
        );
        assert_eq!(
            check_value(name("cio_aws_access_key"), "AKIAYHD623GGZX7VDFMJ"),
            Ok(vec![])
        );
        assert_eq!(
            check_value(
                name("cio_aws_secret_key"),
                "0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8vZd"
            ),
            Ok(vec![])
        );
        assert_eq!(
            check_value(name("cio_aws_backup_password"), "password"),
            Ok(vec![Warning::WellKnownPassword, Warning::ShortPassword])
        );
    }

    #[test]
    fn repository_urls() {
        let repo = name("cio_minio_backup_repo");
        assert_eq!(
            RepoUrl::parse("s3:http://127.0.0.1:9000/bucket/some/prefix/"),
            Ok(RepoUrl {
                scheme: "http".into(),
                host: "127.0.0.1:9000".into(),
                bucket: "bucket".into(),
                prefix: "some/prefix".into()
            })
        );
        assert_eq!(
            RepoUrl::parse("s3:s3.amazonaws.com/backup-123")
                .map(|r| (r.scheme.clone(), r.endpoint())),
            Ok(("https".into(), "https://s3.amazonaws.com".into()))
        );
        assert_eq!(
            check_value(repo, "s3:http://minio:9000/b12"),
            Ok(vec![Warning::PlainHttp])
        );
        assert_eq!(
            check_value(repo, "https://minio/bucket"),
            Err(RuleViolation::RepoMissingS3Prefix(
                "https://minio/bucket".into()
            ))
        );
        assert_eq!(
            check_value(repo, "s3:https://minio/"),
            Err(RuleViolation::RepoNoBucket)
        );
        assert_eq!(
            check_value(repo, "s3:https://minio/Bad_Bucket"),
            Err(RuleViolation::RepoBadBucket("Bad_Bucket".into()))
        );
        assert_eq!(
            check_value(repo, "s3:https://minio/ab"),
            Err(RuleViolation::RepoBadBucket("ab".into()))
        );
        assert_eq!(
            check_value(repo, "s3:https://minio:99999/abc"),
            Err(RuleViolation::RepoBadPort("99999".into()))
        );
        assert_eq!(
            check_value(repo, "rest:https://x/abc"),
            Err(RuleViolation::RepoNotS3)
        );
        assert_eq!(
            check_value(repo, "s3:https:///abc"),
            Err(RuleViolation::RepoNoHost)
        );
    }

    #[test]
    fn aws_keys() {
        let ak = name("cio_aws_alt_access_key");
        let sk = name("cio_aws_secret_key");
        assert_eq!(
            check_value(ak, "AKIA123"),
            Err(RuleViolation::AwsAccessKeyLength(7))
        );
        assert_eq!(
            check_value(ak, "akiayhd623ggzx7vdfmj"),
            Err(RuleViolation::AwsAccessKeyAlphabet)
        );
        assert_eq!(
            check_value(ak, "ASIAYHD623GGZX7VDFMJ"),
            Ok(vec![Warning::TemporaryAwsKey])
        );
        assert_eq!(
            check_value(sk, "0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8vZ"),
            Err(RuleViolation::AwsSecretKeyLength(39))
        );
        assert_eq!(
            check_value(sk, "0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8vZ!"),
            Err(RuleViolation::AwsSecretKeyAlphabet)
        );
    }

    #[test]
    fn minio_keys() {
        assert_eq!(
            check_value(name("cio_minio_access_key"), "ab"),
            Err(RuleViolation::MinioAccessKeyLength(2))
        );
        assert_eq!(
            check_value(name("cio_minio_secret_key"), "1234567"),
            Err(RuleViolation::MinioSecretKeyLength(7))
        );
        assert_eq!(
            check_value(name("cio_minio_secret_key"), "minio-secret"),
            Ok(vec![])
        );
    }

    #[test]
    fn common_rules() {
        let pw = name("cio_minio_backup_password");
        assert_eq!(check_value(pw, ""), Err(RuleViolation::Empty));
        assert_eq!(
            check_value(pw, "a long enough password\n"),
            Err(RuleViolation::SurroundingWhitespace)
        );
        assert_eq!(
            check_value(pw, " a long enough password"),
            Err(RuleViolation::SurroundingWhitespace)
        );
        assert_eq!(
            check_value(pw, "a long\nenough password"),
            Err(RuleViolation::LineBreak)
        );
        assert_eq!(
            check_value(pw, "a long\u{7}enough password"),
            Err(RuleViolation::ControlCharacter(7))
        );
        assert_eq!(
            check_value(pw, &"x".repeat(4097)),
            Err(RuleViolation::TooLong(4097))
        );
        assert_eq!(check_value(pw, &"x".repeat(4096)), Ok(vec![]));
        assert_eq!(
            check_value(pw, "\u{FEFF}a long enough password"),
            Err(RuleViolation::InvisibleCharacter(1, 0xFEFF))
        );
        assert_eq!(
            check_value(pw, "a long enough password\u{200B}"),
            Err(RuleViolation::InvisibleCharacter(23, 0x200B))
        );
        assert_eq!(check_value(pw, "pässwörd mit Ümläüten 🔑"), Ok(vec![]));
    }

    #[test]
    fn masking_never_shows_more_than_four_characters() {
        assert_eq!(
            Field::AccessKey.mask("AKIAYHD623GGZX7VDFMJ"),
            "****************DFMJ"
        );
        assert_eq!(
            Field::SecretKey.mask("short-secret"),
            "****************cret"
        );
        assert_eq!(Field::SecretKey.mask("tiny"), "****************");
        assert_eq!(Field::BackupPassword.mask("password"), "********");
        assert_eq!(
            Field::BackupRepo.mask("s3:https://s3.amazonaws.com/backup-123"),
            "s3:https://s3.amazonaws.com/backup-123"
        );
    }
}
