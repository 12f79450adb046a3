//! Bucket names, as restic's S3 library (minio-go 7.0.34, the version restic 0.14 uses)
//! checks them: `CheckValidBucketName` for using a bucket, `CheckValidBucketNameStrict`
//! (today's AWS rules) for creating one.

use super::violations::RuleViolation;

/// How a bucket name fares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BucketName {
    /// Follows today's rules: `restic init` can create it.
    Current,
    /// Capitals, `_` or `:`: an old bucket restic can use but not create.
    Legacy,
}

/// Checks a bucket name.
pub(super) fn check(bucket: &str) -> Result<BucketName, RuleViolation> {
    let bytes = bucket.as_bytes();
    let ends_ok = |b: &u8| b.is_ascii_alphanumeric();
    let common = (3..=63).contains(&bytes.len())
        && bytes.first().is_some_and(ends_ok)
        && bytes.last().is_some_and(ends_ok)
        && !looks_like_ipv4(bucket)
        && !["..", ".-", "-."].iter().any(|s| bucket.contains(s));
    let legacy_chars = bytes
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    if !common || !legacy_chars {
        return Err(RuleViolation::RepoBadBucket);
    }
    let current_chars = bytes
        .iter()
        .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'));
    Ok(if current_chars {
        BucketName::Current
    } else {
        BucketName::Legacy
    })
}

/// minio-go's `^(\d+\.){3}\d+$`.
fn looks_like_ipv4(bucket: &str) -> bool {
    let parts: Vec<&str> = bucket.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_legacy_and_invalid_names() {
        for name in [
            "backup-123",
            "abc",
            "a.b-c",
            &"a".repeat(63),
            "192.168.1.1a",
        ] {
            assert_eq!(check(name), Ok(BucketName::Current), "{name}");
        }
        for name in ["Old_Bucket", "MyBackups", "old_bucket", "a:b", "ABC"] {
            assert_eq!(check(name), Ok(BucketName::Legacy), "{name}");
        }
        for name in [
            "",
            "ab",
            &"a".repeat(64),
            "-abc",
            "abc-",
            "_abc",
            "abc.",
            "a..b",
            "a.-b",
            "a-.b",
            "192.168.1.1",
            "a b c",
            "bück",
            "a/b",
            "a%b",
        ] {
            assert_eq!(check(name), Err(RuleViolation::RepoBadBucket), "{name}");
        }
    }
}
