//! How a value is shown in listings (DESIGN.md, "Commands and conventions"): never a secret.

use unicode_segmentation::GraphemeCursor;

use super::cacert;
use super::names::Field;
use super::text::is_unwanted;

/// Keys shorter than this show no character at all: of a 12-character key, the last 4 would
/// be a third of it.
const MIN_KEY_CHARS_FOR_TAIL: usize = 20;

/// The most characters (code points) of a key's tail that listings show.
const TAIL_CHARS: usize = 4;

impl Field {
    /// How a value of this field is shown in listings: keys show 16 stars, and their last 4
    /// characters when they are at least [`MIN_KEY_CHARS_FOR_TAIL`] long (as `aws configure
    /// list` does) and those 4 can be shown as they are ([`shown_tail`]); passwords show 8
    /// stars; repository URLs and regions are shown whole; PEM text as a one-line summary.
    pub fn mask(self, value: &str) -> String {
        match self {
            Field::BackupRepo | Field::Region => value.to_string(),
            Field::BackupPassword => "********".to_string(),
            Field::Cacert => cacert::summary(value),
            Field::AccessKey | Field::SecretKey => {
                format!("****************{}", shown_tail(value).unwrap_or_default())
            }
        }
    }
}

/// The last [`TAIL_CHARS`] characters of a key of at least [`MIN_KEY_CHARS_FOR_TAIL`], when
/// they can be shown as they are: they begin where a user-perceived character begins (a
/// grapheme cluster, UAX #29: never the end of an emoji sequence, a flag or a letter's
/// accents cut from the rest), and hold no character the output escapes (control, format,
/// default-ignorable: `\u{200d}` as text). Else `None`: the key is masked whole, never more
/// of it shown instead.
fn shown_tail(value: &str) -> Option<&str> {
    let count = value.chars().count();
    if count < MIN_KEY_CHARS_FOR_TAIL {
        return None;
    }
    let (start, _) = value.char_indices().nth(count - TAIL_CHARS)?;
    let tail = &value[start..];
    let at_boundary = GraphemeCursor::new(start, value.len(), true)
        .is_boundary(value, 0)
        .unwrap_or(false);
    (at_boundary && !tail.chars().any(is_unwanted)).then_some(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_show_their_last_four_characters_only_from_twenty_on() {
        assert_eq!(
            Field::AccessKey.mask("AKIAYHD623GGZX7VDFMJ"),
            "****************DFMJ"
        );
        assert_eq!(
            Field::SecretKey.mask("0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8vZd"),
            "****************8vZd"
        );
        assert_eq!(
            Field::SecretKey.mask("nineteen-characters"),
            "****************"
        );
        assert_eq!(Field::SecretKey.mask("short-secret"), "****************");
        assert_eq!(Field::AccessKey.mask("tiny"), "****************");
        assert_eq!(
            Field::AccessKey.mask("ключ-из-двадцати-букв"),
            "****************букв"
        );
    }

    /// The review's finding: the last 4 code points of a key ending in a family emoji (a
    /// ZWJ sequence of 5) began with a joiner, which the output showed as `\u{200d}`.
    #[test]
    fn a_tail_that_would_cut_a_character_apart_or_be_escaped_is_not_shown() {
        let stars = "****************";
        for key in [
            "abcdefghijklmnopq\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}",
            // A flag (two regional indicators) cut in half.
            "abcdefghijklmnopq\u{1f1f3}\u{1f1f1}abc",
            // A letter's combining accent without its letter.
            "abcdefghijklmnopqrstuvwxye\u{301}xyz",
            // Characters the output escapes (kept with --allow-any-character).
            "abcdefghijklmnopqrstu\u{200c}vw",
            "abcdefghijklmnopqrstuvw\t",
        ] {
            assert_eq!(Field::AccessKey.mask(key), stars, "{key:?}");
            assert_eq!(Field::SecretKey.mask(key), stars, "{key:?}");
        }
        // Whole characters are shown: a flag, accented letters (precomposed).
        assert_eq!(
            Field::AccessKey.mask("abcdefghijklmnopqrsyz\u{1f1f3}\u{1f1f1}"),
            "****************yz\u{1f1f3}\u{1f1f1}"
        );
        assert_eq!(
            Field::SecretKey.mask("abcdefghijklmnopqrstu\u{e9}t\u{e9}!"),
            "****************\u{e9}t\u{e9}!"
        );
    }

    #[test]
    fn passwords_hide_everything_and_urls_and_regions_show_whole() {
        assert_eq!(Field::BackupPassword.mask("password"), "********");
        assert_eq!(
            Field::BackupRepo.mask("s3:https://s3.amazonaws.com/backup-123"),
            "s3:https://s3.amazonaws.com/backup-123"
        );
        assert_eq!(Field::Region.mask("nl-ams"), "nl-ams");
        assert_eq!(
            Field::Cacert.mask(cacert::tests::CERT),
            format!("PEM, 1 certificate, {} bytes", cacert::tests::CERT.len())
        );
    }
}
