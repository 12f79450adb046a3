//! How a value is shown in listings (DESIGN.md, "Commands and conventions"): never a secret.

use super::cacert;
use super::names::Field;

/// Keys shorter than this show no character at all: of a 12-character key, the last 4 would
/// be a third of it.
const MIN_KEY_CHARS_FOR_TAIL: usize = 20;

impl Field {
    /// How a value of this field is shown in listings: keys show 16 stars, and their last 4
    /// characters when they are at least [`MIN_KEY_CHARS_FOR_TAIL`] long (as `aws configure
    /// list` does); passwords show 8 stars; repository URLs and regions are shown whole; PEM
    /// text as a one-line summary.
    pub fn mask(self, value: &str) -> String {
        match self {
            Field::BackupRepo | Field::Region => value.to_string(),
            Field::BackupPassword => "********".to_string(),
            Field::Cacert => cacert::summary(value),
            Field::AccessKey | Field::SecretKey => {
                let chars: Vec<char> = value.chars().collect();
                let tail: String = if chars.len() >= MIN_KEY_CHARS_FOR_TAIL {
                    chars[chars.len() - 4..].iter().collect()
                } else {
                    String::new()
                };
                format!("****************{tail}")
            }
        }
    }
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
