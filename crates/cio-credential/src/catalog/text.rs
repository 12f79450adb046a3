//! The rules every value shares: length, line breaks, white space at the ends, and characters
//! nobody means to store.
//!
//! Refused everywhere: Unicode's control (Cc), format (Cf), line separator (Zl) and paragraph
//! separator (Zp) characters, and every other default-ignorable code point (variation
//! selectors, Hangul fillers, tag characters, ...). The categories come from Unicode's own
//! tables (ICU4X `icu_properties`), not a hand-written list. Allowed exceptions: line breaks
//! in multi-line values (PEM text), and tabs in a password whose caller allowed white space.

use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory};
use icu_properties::{CodePointMapData, CodePointSetData};

use super::violations::RuleViolation;

/// How one field's text is checked.
#[derive(Debug, Clone, Copy)]
pub(super) struct TextRule {
    /// The longest value, in bytes.
    pub max_bytes: usize,
    /// Line breaks allowed anywhere and white space at the ends ignored (PEM text).
    pub multi_line: bool,
    /// White space at the ends and tabs inside kept rather than refused.
    pub keep_whitespace: bool,
}

/// Checks `value`; `Ok(true)` when white space was kept because the rule allows it.
pub(super) fn check(value: &str, rule: TextRule) -> Result<bool, RuleViolation> {
    if value.is_empty() {
        return Err(RuleViolation::Empty);
    }
    if value.len() > rule.max_bytes {
        return Err(RuleViolation::TooLong {
            bytes: value.len(),
            max: rule.max_bytes,
        });
    }
    let mut kept = false;
    if !rule.multi_line {
        // White space (Unicode's White_Space property) before `start` and from `end` on.
        let start = value.len() - value.trim_start().len();
        let end = value.trim_end().len();
        let ends = [&value[..start], &value[end..]];
        if ends.iter().any(|part| part.chars().any(is_line_break)) {
            return Err(RuleViolation::SurroundingLineBreak);
        }
        if ends.iter().any(|part| !part.is_empty()) {
            if !rule.keep_whitespace {
                return Err(RuleViolation::SurroundingWhitespace);
            }
            kept = true;
        }
    }
    for (index, c) in value.chars().enumerate() {
        let position = index + 1;
        match c {
            '\n' | '\r' if rule.multi_line => {}
            '\t' if rule.keep_whitespace => kept = true,
            _ if is_line_break(c) => return Err(RuleViolation::LineBreak),
            '\t' => return Err(RuleViolation::Tab(position)),
            _ if is_unwanted(c) => {
                return Err(if c.is_control() {
                    RuleViolation::ControlCharacter(position)
                } else {
                    RuleViolation::InvisibleCharacter(position, u32::from(c))
                });
            }
            _ => {}
        }
    }
    Ok(kept)
}

/// Line feed, carriage return, and the other characters that end a line (Unicode's
/// mandatory breaks: vertical tab, form feed, next line, line and paragraph separators).
fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// Control, format, line or paragraph separator, or default-ignorable.
fn is_unwanted(c: char) -> bool {
    let category = CodePointMapData::<GeneralCategory>::new().get(c);
    matches!(
        category,
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    ) || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE_LINE: TextRule = TextRule {
        max_bytes: 4096,
        multi_line: false,
        keep_whitespace: false,
    };
    const KEEP: TextRule = TextRule {
        keep_whitespace: true,
        ..ONE_LINE
    };
    const PEM: TextRule = TextRule {
        max_bytes: 65536,
        multi_line: true,
        keep_whitespace: false,
    };

    #[test]
    fn length_and_emptiness() {
        assert_eq!(check("", ONE_LINE), Err(RuleViolation::Empty));
        assert_eq!(
            check(&"x".repeat(4097), ONE_LINE),
            Err(RuleViolation::TooLong {
                bytes: 4097,
                max: 4096
            })
        );
        assert_eq!(check(&"x".repeat(4096), ONE_LINE), Ok(false));
        assert_eq!(check(&"x".repeat(65536), PEM), Ok(false));
    }

    #[test]
    fn ends_and_line_breaks() {
        let cases: &[(&str, RuleViolation)] = &[
            (
                "a long enough password\n",
                RuleViolation::SurroundingLineBreak,
            ),
            (
                "a long enough password\r\n",
                RuleViolation::SurroundingLineBreak,
            ),
            (
                "\na long enough password",
                RuleViolation::SurroundingLineBreak,
            ),
            (
                "a long enough password \n ",
                RuleViolation::SurroundingLineBreak,
            ),
            (
                "a long enough password\u{2028}",
                RuleViolation::SurroundingLineBreak,
            ),
            (
                " a long enough password",
                RuleViolation::SurroundingWhitespace,
            ),
            (
                "a long enough password ",
                RuleViolation::SurroundingWhitespace,
            ),
            (
                "\ta long enough password",
                RuleViolation::SurroundingWhitespace,
            ),
            (
                "a long enough password\u{A0}",
                RuleViolation::SurroundingWhitespace,
            ),
            ("a long\nenough password", RuleViolation::LineBreak),
            ("a long\renough password", RuleViolation::LineBreak),
            ("a long\u{2028}enough password", RuleViolation::LineBreak),
            ("a long\u{2029}enough password", RuleViolation::LineBreak),
            ("a long\u{85}enough password", RuleViolation::LineBreak),
            ("a long\tenough password", RuleViolation::Tab(7)),
        ];
        for (value, violation) in cases {
            assert_eq!(check(value, ONE_LINE).as_ref(), Err(violation), "{value:?}");
        }
    }

    #[test]
    fn white_space_is_kept_when_allowed_but_line_breaks_never() {
        assert_eq!(check(" pass word\t", KEEP), Ok(true));
        assert_eq!(check("pass\tword", KEEP), Ok(true));
        assert_eq!(check("pass word", KEEP), Ok(false));
        assert_eq!(
            check("pass word\n", KEEP),
            Err(RuleViolation::SurroundingLineBreak)
        );
        assert_eq!(check("pass\nword", KEEP), Err(RuleViolation::LineBreak));
        assert_eq!(
            check("pass\u{7}word", KEEP),
            Err(RuleViolation::ControlCharacter(5))
        );
    }

    #[test]
    fn pem_text_may_span_lines_and_end_with_one() {
        assert_eq!(
            check("-----BEGIN X-----\r\nabc\n-----END X-----\n", PEM),
            Ok(false)
        );
        assert_eq!(check("a\tb", PEM), Err(RuleViolation::Tab(2)));
        assert_eq!(check("a\u{2028}b", PEM), Err(RuleViolation::LineBreak));
    }

    /// Every kind named in issue 9 (control, format, separators, tag characters, variation
    /// selectors, Hangul fillers, ...) is refused wherever it stands.
    #[test]
    fn invisible_and_control_characters_are_refused_by_unicode_property() {
        let invisible = [
            '\u{AD}',    // soft hyphen (Cf)
            '\u{34F}',   // combining grapheme joiner (default-ignorable Mn)
            '\u{61C}',   // Arabic letter mark (Cf)
            '\u{115F}',  // Hangul choseong filler (default-ignorable Lo)
            '\u{1160}',  // Hangul jungseong filler
            '\u{17B4}',  // Khmer vowel inherent aq (default-ignorable Mn)
            '\u{180B}',  // Mongolian free variation selector
            '\u{180E}',  // Mongolian vowel separator (Cf)
            '\u{200B}',  // zero width space (Cf)
            '\u{200D}',  // zero width joiner
            '\u{200E}',  // left-to-right mark
            '\u{202E}',  // right-to-left override
            '\u{2060}',  // word joiner
            '\u{2066}',  // left-to-right isolate
            '\u{3164}',  // Hangul filler (default-ignorable Lo)
            '\u{FE0F}',  // variation selector 16
            '\u{FEFF}',  // byte order mark
            '\u{FFA0}',  // halfwidth Hangul filler
            '\u{FFF9}',  // interlinear annotation anchor
            '\u{1D173}', // musical symbol begin beam (Cf)
            '\u{E0001}', // language tag
            '\u{E0041}', // tag Latin capital A
            '\u{E0100}', // variation selector 17
            '\u{E0FFF}', // unassigned default-ignorable
        ];
        for c in invisible {
            let value = format!("pass{c}word");
            assert_eq!(
                check(&value, KEEP),
                Err(RuleViolation::InvisibleCharacter(5, u32::from(c))),
                "U+{:04X}",
                u32::from(c)
            );
        }
        for c in ['\u{0}', '\u{1B}', '\u{7F}', '\u{80}', '\u{9F}'] {
            assert_eq!(
                check(&format!("pass{c}word"), KEEP),
                Err(RuleViolation::ControlCharacter(5)),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn ordinary_text_in_any_script_is_accepted() {
        for value in [
            "pässwörd mit Ümläüten 🔑",
            "пароль на русском",
            "密码很长很长",
            "كلمة السر",
            "no\u{A0}break and\u{3000}ideographic space inside",
        ] {
            assert_eq!(check(value, ONE_LINE), Ok(false), "{value}");
        }
    }
}
