//! The value rules (DESIGN.md, "The catalog"), checked on create and again by validate.
//! A broken rule refuses the value ([`RuleViolation`]); a doubtful one is accepted with a
//! [`Warning`].

use super::cacert;
use super::names::{CredentialName, Field, Provider};
use super::repo_url::RepoUrl;
use super::text::{self, TextRule};
use super::violations::RuleViolation;
use super::warnings::Warning;

/// What the check lets through that it refuses by default. `Allow::default()` refuses all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allow {
    /// A repository password that starts or ends with white space or holds a tab: a real
    /// restic password (restic uses any bytes), but far more often a paste error, so it is
    /// kept only when asked for, and then with [`Warning::WhitespaceKept`]. Line breaks are
    /// never kept. Other fields are unaffected.
    pub whitespace: bool,
    /// A repository password with line breaks, tabs, control or invisible characters (a
    /// zero-width non-joiner, which Persian writing needs; a soft hyphen; ...), or white space
    /// at either end: restic takes any text from its environment, and another cluster's
    /// password may hold such characters; refused by default, as a paste error far more
    /// often. Kept then with [`Warning::CharactersKept`]; only NUL stays refused (an
    /// environment variable cannot hold it). Other fields are unaffected.
    pub any_character: bool,
}

/// Checks one line of text that is no credential but must be typed again one day (a recovery
/// bundle's passphrase) against the rules every one-line value shares: not empty, at most
/// [`super::MAX_VALUE_BYTES`], no line break, tab, control or invisible character, no white
/// space at either end.
pub(crate) fn check_line(value: &str) -> Result<(), RuleViolation> {
    let rule = TextRule {
        max_bytes: super::MAX_VALUE_BYTES,
        multi_line: false,
        keep_whitespace: false,
        keep_any: false,
    };
    text::check(value, rule).map(drop)
}

/// Checks a value against the rules of its field. `Ok` carries the warnings, if any.
pub fn check_value(
    name: CredentialName,
    value: &str,
    allow: Allow,
) -> Result<Vec<Warning>, RuleViolation> {
    let rule = TextRule {
        max_bytes: name.field.max_value_bytes(),
        multi_line: name.field.is_multi_line(),
        keep_whitespace: (allow.whitespace || allow.any_character)
            && name.field == Field::BackupPassword,
        keep_any: allow.any_character && name.field == Field::BackupPassword,
    };
    let kept = text::check(value, rule)?;
    let mut warnings = Vec::new();
    let len = value.chars().count();
    match (name.field, name.provider) {
        (Field::BackupRepo, _) => warnings = RepoUrl::parse(value)?.warnings(),
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
            if kept {
                // White space alone passes the rule that keeps only white space.
                let whitespace_only = TextRule {
                    keep_any: false,
                    ..rule
                };
                warnings.push(match text::check(value, whitespace_only) {
                    Ok(_) => Warning::WhitespaceKept,
                    Err(_) => Warning::CharactersKept,
                });
            }
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
        (Field::Region, _) if !is_region(value) => return Err(RuleViolation::BadRegion),
        (Field::Cacert, _) => warnings = cacert::check(value, cacert::now())?,
        _ => {}
    }
    Ok(warnings)
}

/// An S3 signing region: AWS's (`us-east-1`, `us-gov-west-1`) and other services' own
/// (`nl-ams`, `fr-par`, `us-west-002`, `auto`, `garage`, a MinIO site's `Europe` or
/// `DC1.zone`): 2 to 64 ASCII letters, digits, `-`, `_` and `.`, starting with a letter,
/// ending with a letter or digit. restic signs with any text, and MinIO takes capitals
/// (`^[a-zA-Z][a-zA-Z0-9-_]+$`); white space, `/` and other characters would break the
/// signature's credential scope, and are refused.
fn is_region(value: &str) -> bool {
    let bytes = value.as_bytes();
    (2..=64).contains(&bytes.len())
        && bytes.first().is_some_and(u8::is_ascii_alphabetic)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::cacert::tests::CERT;

    fn name(s: &str) -> CredentialName {
        s.parse().expect("a catalog name")
    }

    fn check(n: &str, value: &str) -> Result<Vec<Warning>, RuleViolation> {
        check_value(name(n), value, Allow::default())
    }

    #[test]
    fn reference_page_values_are_accepted() {
        assert_eq!(
            check(
                "cio_aws_backup_repo",
                "s3:https://s3.amazonaws.com/backup-123"
            ),
            Ok(vec![])
        );
        assert_eq!(
            check("cio_aws_access_key", "AKIAYHD623GGZX7VDFMJ"),
            Ok(vec![])
        );
        assert_eq!(
            check(
                "cio_aws_secret_key",
                "0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8vZd"
            ),
            Ok(vec![])
        );
        assert_eq!(
            check("cio_aws_backup_password", "password"),
            Ok(vec![Warning::WellKnownPassword, Warning::ShortPassword])
        );
    }

    #[test]
    fn aws_keys() {
        let ak = "cio_aws_alt_access_key";
        let sk = "cio_aws_secret_key";
        assert_eq!(
            check(ak, "AKIA123"),
            Err(RuleViolation::AwsAccessKeyLength(7))
        );
        assert_eq!(
            check(ak, "akiayhd623ggzx7vdfmj"),
            Err(RuleViolation::AwsAccessKeyAlphabet)
        );
        assert_eq!(
            check(ak, "ASIAYHD623GGZX7VDFMJ"),
            Ok(vec![Warning::TemporaryAwsKey])
        );
        assert_eq!(
            check(sk, "0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8vZ"),
            Err(RuleViolation::AwsSecretKeyLength(39))
        );
        assert_eq!(
            check(sk, "0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8vZ!"),
            Err(RuleViolation::AwsSecretKeyAlphabet)
        );
    }

    #[test]
    fn minio_keys() {
        assert_eq!(
            check("cio_minio_access_key", "ab"),
            Err(RuleViolation::MinioAccessKeyLength(2))
        );
        assert_eq!(
            check("cio_minio_secret_key", "1234567"),
            Err(RuleViolation::MinioSecretKeyLength(7))
        );
        assert_eq!(check("cio_minio_secret_key", "minio-secret"), Ok(vec![]));
    }

    #[test]
    fn password_white_space_needs_the_override_and_then_warns() {
        let pw = name("cio_minio_alt_backup_password");
        let keep = Allow {
            whitespace: true,
            any_character: false,
        };
        for value in [
            "  another cluster's pw",
            "another cluster's pw ",
            "another\tcluster's pw",
        ] {
            assert!(
                check_value(pw, value, Allow::default()).is_err(),
                "{value:?}"
            );
            assert_eq!(
                check_value(pw, value, keep),
                Ok(vec![Warning::WhitespaceKept]),
                "{value:?}"
            );
        }
        assert_eq!(
            check_value(pw, "a long enough password\n", keep),
            Err(RuleViolation::SurroundingLineBreak)
        );
        assert_eq!(
            check_value(pw, " pw", keep),
            Ok(vec![Warning::WhitespaceKept, Warning::ShortPassword])
        );
        assert_eq!(
            check_value(name("cio_minio_secret_key"), " minio-secret", keep),
            Err(RuleViolation::SurroundingWhitespace)
        );
    }

    #[test]
    fn regions() {
        for region in [
            "us-east-1",
            "us-gov-west-1",
            "nl-ams",
            "fr-par",
            "us-west-002",
            "auto",
            "garage",
            "my_region",
            "Europe",
            "DC1.zone",
            "US-EAST-1",
        ] {
            assert_eq!(check("cio_minio_region", region), Ok(vec![]), "{region}");
        }
        for region in [
            "us/east",
            "1us",
            "us-",
            "u",
            "us east",
            "us.",
            "-us",
            "us-east-1\u{e9}",
            &"a".repeat(65),
        ] {
            assert_eq!(
                check("cio_aws_alt_region", region),
                Err(RuleViolation::BadRegion),
                "{region}"
            );
        }
    }

    #[test]
    fn cacert_is_pem_on_several_lines_up_to_64_kib() {
        assert_eq!(check("cio_aws_cacert", CERT), Ok(vec![]));
        let big = format!("{}\n{CERT}", "#".repeat(65536 - CERT.len() - 1));
        assert_eq!(check("cio_aws_cacert", &big), Ok(vec![]));
        assert_eq!(
            check("cio_aws_cacert", &format!("#{big}")),
            Err(RuleViolation::TooLong {
                bytes: 65537,
                max: 65536
            })
        );
        assert_eq!(
            check("cio_aws_cacert", "not pem"),
            Err(RuleViolation::CacertNoCertificate)
        );
        assert_eq!(
            check("cio_minio_region", "nl-ams\nfr-par"),
            Err(RuleViolation::LineBreak)
        );
    }
}
