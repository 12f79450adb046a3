//! The rules every value shares: length, line breaks, white space at the ends, and characters
//! nobody means to store.
//!
//! Refused everywhere: Unicode's control (Cc), format (Cf), line separator (Zl) and paragraph
//! separator (Zp) characters, and every other default-ignorable code point (variation
//! selectors, Hangul fillers, tag characters, ...). The categories come from Unicode's own
//! tables (ICU4X `icu_properties`), not a hand-written list. Allowed exceptions: line breaks
//! in multi-line values (PEM text), and tabs in a password whose caller allowed white space.
//!
//! Also allowed, in every field: the joiners and selectors that are part of a visible emoji,
//! as Unicode's emoji sequences (UTS #51, by the `Emoji`, `Extended_Pictographic` and
//! `Emoji_Modifier` properties) place them: U+FE0F or U+FE0E right after an emoji character
//! (after a keycap base `0-9#*` only when U+20E3 follows: the keycap sequence), U+200D
//! between two pictographic emoji (a ZWJ sequence such as 👨‍👩), and the three flags of
//! subdivisions Unicode recommends (U+1F3F4, the tag letters of `gbeng`, `gbsct` or
//! `gbwls`, U+E007F). Such a
//! character draws as part of the emoji next to it, so it is not the invisible paste error
//! this rule is for; restic, S3 and age take any UTF-8, so one rule serves every field (a
//! password, a MinIO key, a prefix in a URL, a bundle passphrase). The same character
//! anywhere else (alone, after a letter, doubled) is still refused.

use icu_properties::props::{
    DefaultIgnorableCodePoint, Emoji, EmojiModifier, ExtendedPictographic, GeneralCategory,
};
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
    /// Every character kept but NUL (which no environment variable can hold): line breaks,
    /// control and invisible characters, white space.
    pub keep_any: bool,
}

/// Checks `value`; `Ok(true)` when something the default refuses was kept because the rule
/// allows it (white space; with `keep_any`, any character).
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
    if rule.keep_any {
        if let Some(index) = value.chars().position(|c| c == '\0') {
            return Err(RuleViolation::NulCharacter(index + 1));
        }
        let strict = TextRule {
            keep_whitespace: false,
            keep_any: false,
            ..rule
        };
        return Ok(check(value, strict).is_err());
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
    let chars: Vec<char> = value.chars().collect();
    let in_emoji = emoji_sequence_parts(&chars);
    for (index, &c) in chars.iter().enumerate() {
        let position = index + 1;
        match c {
            _ if in_emoji[index] => {}
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

const ZWJ: char = '\u{200D}';
const TEXT_SELECTOR: char = '\u{FE0E}';
const EMOJI_SELECTOR: char = '\u{FE0F}';
const KEYCAP: char = '\u{20E3}';
const TAG_END: char = '\u{E007F}';
/// The waving black flag, the base of every emoji tag sequence (flags of subdivisions).
const TAG_BASE: char = '\u{1F3F4}';
/// The subdivisions of Unicode's RGI emoji tag sequences (`emoji-sequences.txt`, since
/// Emoji 5.0): England, Scotland, Wales.
const RGI_SUBDIVISIONS: [&str; 3] = ["gbeng", "gbsct", "gbwls"];

/// For each of `chars`, whether it is a joiner, selector or tag character standing where an
/// emoji sequence puts it (see the module documentation); false for every other character.
fn emoji_sequence_parts(chars: &[char]) -> Vec<bool> {
    let emoji = CodePointSetData::new::<Emoji>();
    let pictographic = CodePointSetData::new::<ExtendedPictographic>();
    let modifier = CodePointSetData::new::<EmojiModifier>();
    let mut part = vec![false; chars.len()];
    for (i, &c) in chars.iter().enumerate() {
        let before = i.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i + 1).copied();
        match c {
            TEXT_SELECTOR | EMOJI_SELECTOR => {
                part[i] = before
                    .is_some_and(|b| emoji.contains(b) && (!b.is_ascii() || after == Some(KEYCAP)));
            }
            ZWJ => {
                // The emoji before may carry a skin tone or a presentation selector.
                let element = match before {
                    Some(EMOJI_SELECTOR) => i.checked_sub(2).map(|j| chars[j]),
                    Some(b) if modifier.contains(b) => Some(b),
                    other => other,
                };
                part[i] = element.is_some_and(|e| pictographic.contains(e) || modifier.contains(e))
                    && after.is_some_and(|a| pictographic.contains(a));
            }
            _ => {}
        }
    }
    // Tag sequences, as emoji use them: the black flag, then a subdivision's code in tag
    // letters, then the cancel tag. Only the codes of Unicode's RGI tag sequences (the
    // flags of England, Scotland and Wales, the only ones since Emoji 5.0): any other run
    // of tags would carry hidden text, even one shaped like a code. Written here because
    // ICU4X has no set of RGI tag sequences (only Basic_Emoji among the emoji sets).
    let is_tag = |c: char| {
        ('\u{E0030}'..='\u{E0039}').contains(&c) || ('\u{E0061}'..='\u{E007A}').contains(&c)
    };
    let mut i = 0;
    while i < chars.len() {
        let starts = i > 0 && is_tag(chars[i]) && chars[i - 1] == TAG_BASE;
        if !starts {
            i += 1;
            continue;
        }
        let end = (i..chars.len())
            .find(|&j| !is_tag(chars[j]))
            .unwrap_or(chars.len());
        let code: String = chars[i..end]
            .iter()
            .filter_map(|c| char::from_u32(u32::from(*c) - 0xE0000))
            .collect();
        if chars.get(end) == Some(&TAG_END) && RGI_SUBDIVISIONS.contains(&code.as_str()) {
            part[i..=end].iter_mut().for_each(|p| *p = true);
        }
        i = end + 1;
    }
    part
}

/// Control, format, line or paragraph separator, or default-ignorable.
pub(super) fn is_unwanted(c: char) -> bool {
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
        keep_any: false,
    };
    const ANY: TextRule = TextRule {
        keep_whitespace: true,
        keep_any: true,
        ..ONE_LINE
    };
    const KEEP: TextRule = TextRule {
        keep_whitespace: true,
        ..ONE_LINE
    };
    const PEM: TextRule = TextRule {
        max_bytes: 65536,
        multi_line: true,
        keep_whitespace: false,
        keep_any: false,
    };

    /// The review's finding: restic takes a password with a zero-width non-joiner (Persian
    /// writing needs it), a soft hyphen, a line break; the override keeps them, NUL aside.
    #[test]
    fn keep_any_keeps_every_character_but_nul() {
        for value in [
            "\u{645}\u{6cc}\u{200c}\u{62e}\u{648}\u{627}\u{647}\u{645}-passphrase",
            "left\u{200e}to-right",
            "soft\u{ad}hyphen",
            "line1\nline2-password",
            "cr\rpassword",
            "next\u{85}line",
            "line\u{2028}separator",
            " ends with space ",
            "bell\u{7}",
        ] {
            assert_eq!(check(value, ANY), Ok(true), "{value:?}");
        }
        assert_eq!(check("plain password", ANY), Ok(false));
        assert_eq!(check("nul\0byte", ANY), Err(RuleViolation::NulCharacter(4)));
        assert_eq!(check("", ANY), Err(RuleViolation::Empty));
        assert!(matches!(
            check(&"x".repeat(4097), ANY),
            Err(RuleViolation::TooLong { .. })
        ));
    }

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

    /// The joiners and selectors of an emoji sequence are part of a visible emoji: kept, in
    /// every kind of sequence UTS #51 defines.
    #[test]
    fn emoji_sequences_keep_their_joiners_and_selectors() {
        for value in [
            "i-\u{2764}\u{FE0F}-my-backups", // ❤️ presentation sequence
            "i-\u{2764}\u{FE0E}-my-backups", // ❤︎ text presentation
            "family \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467} backups", // 👨‍👩‍👧
            "\u{1F469}\u{1F3FD}\u{200D}\u{1F4BB} at work", // 👩🏽‍💻 (skin tone)
            "\u{1F3F3}\u{FE0F}\u{200D}\u{1F308} flag", // 🏳️‍🌈
            "\u{1F3F4}\u{200D}\u{2620}\u{FE0F} pirate", // 🏴‍☠️
            "\u{2764}\u{FE0F}\u{200D}\u{1F525} fire", // ❤️‍🔥
            "keycap 1\u{FE0F}\u{20E3} and #\u{FE0F}\u{20E3}", // 1️⃣ #️⃣
            "scotland \u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F} flag",
            "england \u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F} and wales \u{1F3F4}\u{E0067}\u{E0062}\u{E0077}\u{E006C}\u{E0073}\u{E007F}",
        ] {
            assert_eq!(check(value, ONE_LINE), Ok(false), "{value:?}");
        }
    }

    /// The same characters outside an emoji sequence are the invisible paste errors they
    /// were: refused with the same message.
    #[test]
    fn joiners_and_selectors_outside_an_emoji_sequence_are_refused() {
        for (value, position, c) in [
            ("\u{FE0F}password", 1, 0xFE0F),
            ("pass\u{FE0F}word", 5, 0xFE0F),
            ("pass1\u{FE0F}word", 6, 0xFE0F), // a digit is a keycap base only with U+20E3
            ("\u{2764}\u{FE0F}\u{FE0F}pw", 3, 0xFE0F),
            ("\u{1F468}\u{200D}word", 2, 0x200D),
            ("pass\u{200D}\u{1F469}", 5, 0x200D),
            ("\u{1F468}\u{200D}", 2, 0x200D),
            ("\u{1F468}\u{200D}\u{200D}\u{1F469}", 2, 0x200D),
            ("a\u{FE0F}\u{200D}\u{1F469}", 2, 0xFE0F),
            ("\u{1F3F4}\u{E0067}\u{E0062} no end", 2, 0xE0067),
            ("x\u{E0067}\u{E007F}", 2, 0xE0067),
            ("\u{1F3F4}\u{E007F}", 2, 0xE007F),
            // The review's finding: hidden text in tags after a digit, '#', an emoji, or a
            // flag with a run longer than any subdivision code.
            ("password1\u{E0074}\u{E0068}\u{E0065}\u{E007F}", 10, 0xE0074),
            ("#\u{E0078}\u{E0079}\u{E007A}\u{E007F}", 2, 0xE0078),
            ("\u{1F600}\u{E0078}\u{E0079}\u{E007A}\u{E007F}", 2, 0xE0078),
            (
                "\u{1F3F4}\u{E0068}\u{E0075}\u{E006E}\u{E0074}\u{E0065}\u{E0072}\u{E0032}\u{E007F}",
                2,
                0xE0068,
            ),
            ("\u{1F3F4}\u{E0067}\u{E0020}\u{E0062}\u{E007F}", 2, 0xE0067),
            ("\u{1F3F4}\u{E0047}\u{E0042}\u{E0053}\u{E007F}", 2, 0xE0047),
            // Shaped like a code, but no flag: six hidden letters (the re-review's finding).
            (
                "\u{1F3F4}\u{E0068}\u{E0069}\u{E0064}\u{E0064}\u{E0065}\u{E006E}\u{E007F}",
                2,
                0xE0068,
            ),
            (
                "\u{1F3F4}\u{E0075}\u{E0073}\u{E0063}\u{E0061}\u{E007F}",
                2,
                0xE0075,
            ),
            ("pass\u{200B}\u{2764}\u{FE0F}", 5, 0x200B),
        ] {
            assert_eq!(
                check(value, ONE_LINE),
                Err(RuleViolation::InvisibleCharacter(position, c)),
                "{value:?}"
            );
        }
    }

    proptest::proptest! {
        /// A joiner or selector after a character that is no emoji is refused, wherever
        /// it stands and whatever follows.
        #[test]
        fn a_joiner_or_selector_after_no_emoji_is_refused(
            head in "[a-zA-Z0-9 .-]{0,10}",
            letter in "[a-zA-Z]",
            junk in proptest::sample::select(vec!['\u{FE0F}', '\u{FE0E}', '\u{200D}']),
            tail in "[\u{1F300}-\u{1F5FF}a-z]{0,5}",
        ) {
            let value = format!("x{head}{letter}{junk}{tail}");
            let position = value.chars().position(|c| c == junk).map(|i| i + 1);
            proptest::prop_assert_eq!(
                check(&value, ONE_LINE),
                Err(RuleViolation::InvisibleCharacter(position.unwrap_or(0), u32::from(junk)))
            );
        }

        /// Any emoji with U+FE0F, joined to any pictographic emoji by U+200D, is accepted.
        #[test]
        fn any_emoji_zwj_sequence_is_accepted(
            a in "[\u{1F300}-\u{1F5FF}\u{1F900}-\u{1F9FF}\u{2600}-\u{27BF}]",
            b in "[\u{1F300}-\u{1F5FF}\u{1F900}-\u{1F9FF}\u{2600}-\u{27BF}]",
        ) {
            let first = a.chars().next().unwrap_or('a');
            let second = b.chars().next().unwrap_or('a');
            let pictographic = CodePointSetData::new::<ExtendedPictographic>();
            proptest::prop_assume!(
                CodePointSetData::new::<Emoji>().contains(first)
                    && pictographic.contains(first)
                    && pictographic.contains(second)
            );
            let value = format!("pw-{a}\u{FE0F}\u{200D}{b}-pw");
            proptest::prop_assert_eq!(check(&value, ONE_LINE), Ok(false));
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
