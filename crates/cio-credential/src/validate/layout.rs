//! The repository's folder layout, detected as restic 0.14 detects it for S3
//! (`backend.ParseLayout` with no `-o s3.layout`, then `DetectLayout`): a file named like an id
//! in `keys/` and none in `key/` is the default layout; one in `key/` and none in `keys/` is
//! the old `s3legacy` layout; anything else (both, neither) is the default. restic lists each
//! folder one level deep and takes a listing that fails for an empty one.

use super::s3::{Listing, S3Failure};
use crate::restic;

/// restic's two layouts of an S3 repository. `config` is at the repository's root in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    Default,
    S3Legacy,
}

impl Layout {
    /// Detects the layout from the listings of `keys/` and `key/` (delimited, one level).
    pub(crate) fn detect(
        keys: &Result<Listing, S3Failure>,
        key: &Result<Listing, S3Failure>,
    ) -> Layout {
        let has_id = |listing: &Result<Listing, S3Failure>| {
            listing.as_ref().is_ok_and(|l| {
                l.keys
                    .iter()
                    .chain(&l.prefixes)
                    .filter_map(|k| k.trim_end_matches('/').rsplit('/').next())
                    .any(restic::is_id)
            })
        };
        if has_id(key) && !has_id(keys) {
            Layout::S3Legacy
        } else {
            Layout::Default
        }
    }

    pub(crate) fn keys(self) -> &'static str {
        match self {
            Layout::Default => "keys",
            Layout::S3Legacy => "key",
        }
    }

    pub(crate) fn snapshots(self) -> &'static str {
        match self {
            Layout::Default => "snapshots",
            Layout::S3Legacy => "snapshot",
        }
    }

    pub(crate) fn locks(self) -> &'static str {
        match self {
            Layout::Default => "locks",
            Layout::S3Legacy => "lock",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(keys: &[&str]) -> Result<Listing, S3Failure> {
        Ok(Listing {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            ..Listing::default()
        })
    }

    #[test]
    fn detected_as_restic_detects_it() {
        let id = format!("r/keys/{}", "a".repeat(64));
        let legacy = format!("r/key/{}", "A".repeat(64));
        let none = listing(&[]);
        assert_eq!(Layout::detect(&listing(&[&id]), &none), Layout::Default);
        assert_eq!(
            Layout::detect(&none, &listing(&[&legacy])),
            Layout::S3Legacy
        );
        assert_eq!(
            Layout::detect(&listing(&[&id]), &listing(&[&legacy])),
            Layout::Default
        );
        assert_eq!(Layout::detect(&none, &none), Layout::Default);
        // Only names like ids count.
        assert_eq!(
            Layout::detect(&listing(&["r/keys/x"]), &listing(&[&legacy])),
            Layout::S3Legacy
        );
        assert_eq!(
            Layout::detect(&none, &listing(&[&format!("{legacy}.bak")])),
            Layout::Default
        );
    }
}
