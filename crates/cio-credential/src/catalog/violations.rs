//! The rules a value can break. Each text says which rule and, where there is one, the fix;
//! none repeats the value or any part of it (a value may be a secret, and a repository URL
//! may hold one by mistake).

use super::names::{CredentialName, Field};

/// A rule a value broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleViolation {
    #[error("the value is empty")]
    Empty,
    #[error("the value is {bytes} bytes long; at most {max} are accepted")]
    TooLong { bytes: usize, max: usize },
    #[error("the value starts or ends with a line break (a common paste error); remove it")]
    SurroundingLineBreak,
    #[error("the value starts or ends with white space (a common paste error); remove it")]
    SurroundingWhitespace,
    #[error("the value contains a line break; a credential is one line")]
    LineBreak,
    #[error("the value contains a tab at position {0}; retype it without one")]
    Tab(usize),
    #[error("the value contains a control character at position {0}; retype it without one")]
    ControlCharacter(usize),
    #[error(
        "the value contains a NUL character at position {0}, which no environment variable can hold, so restic could never be given it"
    )]
    NulCharacter(usize),
    #[error(
        "the value contains an invisible character (U+{1:04X}) at position {0}, a common paste error; retype it without one"
    )]
    InvisibleCharacter(usize, u32),

    #[error(
        "a repository URL starts with 's3:' (restic's S3 repository syntax); put 's3:' in front of it, as in s3:https://HOST/BUCKET"
    )]
    RepoMissingS3Prefix,
    #[error(
        "a repository URL is 's3:https://HOST[:PORT]/BUCKET[/PREFIX]', 's3:http://...', 's3:HOST/BUCKET[/PREFIX]' or 's3://HOST/BUCKET[/PREFIX]'"
    )]
    RepoNotS3,
    #[error(
        "restic reads a repository starting with 's3:http' as a URL, and this one is not 'http://' or 'https://' followed by the host; write it as s3:https://HOST/BUCKET"
    )]
    RepoNotHttpUrl,
    #[error("the repository URL names no host; write it as s3:https://HOST/BUCKET")]
    RepoNoHost,
    #[error(
        "the repository URL's host is not a DNS name, an IPv4 address or an IPv6 address in brackets; write it as s3:https://HOST[:PORT]/BUCKET"
    )]
    RepoBadHost,
    #[error("the repository URL's port is not a number from 1 to 65535")]
    RepoBadPort,
    #[error(
        "the repository URL holds a user name or password before '@', which restic ignores and every listing would show; remove it (the keys belong in the set's access_key and secret_key)"
    )]
    RepoUserInfo,
    #[error("the repository URL names no bucket; write it as s3:https://HOST/BUCKET")]
    RepoNoBucket,
    #[error(
        "the repository URL has '//' in its path: restic would read an empty bucket name, or look for the repository under keys starting with '/'; write one '/' between host, bucket and prefix"
    )]
    RepoDoubleSlash,
    #[error(
        "the repository URL's prefix climbs above the bucket with '..': restic would look for keys starting with '../'; remove the '..'"
    )]
    RepoPrefixAboveBucket,
    #[error(
        "the repository URL holds a '%' escape restic cannot use: '%' must be followed by two hex digits, and the escapes must decode to UTF-8 text (minio-go, restic's S3 library, refuses other keys); write '%25' for a '%'"
    )]
    RepoBadEscape,
    #[error(
        "the bucket name is not valid: use 3 to 63 letters, digits, '.' or '-', starting and ending with a letter or digit, not shaped like an IP address, without '..', '.-' or '-.'"
    )]
    RepoBadBucket,
    #[error(
        "restic refuses {0} hosts that start with the bucket name (virtual-host style); write it as s3:https://{1}/BUCKET[/PREFIX]"
    )]
    RepoBucketInHost(&'static str, &'static str),

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

    #[error(
        "a region is 2 to 64 letters, digits, '-', '_' or '.', starting with a letter and ending with a letter or digit, like us-east-1 or nl-ams"
    )]
    BadRegion,

    #[error(
        "the value holds no PEM certificate (a block from '-----BEGIN CERTIFICATE-----' to '-----END CERTIFICATE-----')"
    )]
    CacertNoCertificate,
    #[error("the PEM text does not decode: a block is cut short or its base64 is damaged")]
    CacertBadPem,
    #[error("PEM certificate number {0} is not an X.509 certificate that TLS can trust")]
    CacertBadCertificate(usize),
    #[error(
        "the PEM text holds a private key, which a CA certificate never needs; store only the CERTIFICATE blocks"
    )]
    CacertPrivateKey,
}

impl RuleViolation {
    /// What to do next, for the credential `name` the value was meant for. Every hint
    /// starts by saying that nothing was changed.
    pub fn hint(&self, name: CredentialName) -> String {
        let whitespace = matches!(
            self,
            RuleViolation::SurroundingWhitespace | RuleViolation::Tab(_)
        );
        if whitespace && name.field == Field::BackupPassword {
            return "nothing was changed; if the white space is part of the password (restic accepts it, e.g. another cluster's), run the command again with --allow-whitespace (--allow-any-character if it also holds line breaks or invisible characters)".to_string();
        }
        let character = matches!(
            self,
            RuleViolation::SurroundingLineBreak
                | RuleViolation::LineBreak
                | RuleViolation::InvisibleCharacter(..)
                | RuleViolation::ControlCharacter(_)
        );
        if character && name.field == Field::BackupPassword {
            return "nothing was changed; if the character is part of the password (restic accepts it, e.g. another cluster's), run the command again with --allow-any-character".to_string();
        }
        if let (Field::Cacert, RuleViolation::TooLong { .. }) = (name.field, self) {
            return "nothing was changed; keep only the CA certificates the server's chain needs (those that sign it, not a whole system bundle)".to_string();
        }
        if name.field == Field::Cacert {
            return format!(
                "nothing was changed; give the PEM file itself: cio credential create {name} --from-file PATH"
            );
        }
        "nothing was changed; correct the value and run the command again".to_string()
    }
}
