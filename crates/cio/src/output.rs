//! All terminal output goes through [`Out`]: results (`Succeed:` lines, tables, JSON) on
//! stdout, warnings and failures on stderr, and the prompts (without echo, on the terminal).
//!
//! Text is shown through [`shown`]: no control character cio did not write itself reaches
//! a terminal (see there why this is done here, for every line, and not per field). Data
//! for programs (`show --reveal`, `env`, an exported bundle) goes out as it is, through
//! [`Out::data`]; JSON escapes the same characters as `\uXXXX` ([`JsonEscapes`]).

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};

use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory};
use icu_properties::{CodePointMapData, CodePointSetData};

use cio_credential::{CredentialName, SecretValue, Warning};

/// The buffer a table or a JSON document is written through: one write for a listing of
/// every credential (about 2 KiB), a write per 8 KiB for a long change log. Not 64 KiB: the
/// allocator maps its memory in populated (`allocator.rs`), and a 64 KiB buffer made `list`
/// map and zero a 128 KiB segment for 2 KiB of text.
const OUT_BUFFER: usize = 8 * 1024;

/// The terminal of one command.
pub struct Out {
    /// `--json`: results and failures as JSON documents on stdout.
    pub json: bool,
    stdout: io::StdoutLock<'static>,
    /// The options of `cio credential` that this command was given as flags and that a
    /// command offered in its text needs as well ([`Out::offering_flags`]).
    same_flags: Vec<&'static str>,
}

impl Out {
    pub fn new(json: bool) -> Out {
        Out {
            json,
            stdout: io::stdout().lock(),
            same_flags: Vec::new(),
        }
    }

    /// This command was given `flags` (`--store`, `--key-file`, ...) on its command line: the
    /// commands its messages offer ('cio credential restore NAME', the validate details'
    /// 'cio credential exec ... -- restic init', a hint's 'cio credential rekey --stage
    /// switch') act on the store and key these name only when given them again. Each line
    /// of text that offers one then says so ([`with_same_flags`]). Given in the environment
    /// (CIO_STORE, ...) or cio.toml, they are there for the next command too: nothing is said.
    pub fn offering_flags(mut self, flags: Vec<&'static str>) -> Out {
        self.same_flags = flags;
        self
    }

    /// `text`, and when it offers a `cio credential` command, that the command needs the same
    /// flags as this one ([`Out::offering_flags`]).
    pub fn offered<'a>(&self, text: &'a str) -> Cow<'a, str> {
        with_same_flags(text, &self.same_flags)
    }

    /// Writes one line of text, shown safely ([`shown`]).
    pub fn line(&mut self, text: impl AsRef<str>) -> io::Result<()> {
        let text = with_same_flags(text.as_ref(), &self.same_flags);
        writeln!(self.stdout, "{}", shown(&text))
    }

    /// Writes data meant for a program as it is, and a line feed: a revealed value, `env`'s
    /// shell lines, an exported bundle. Never text from elsewhere meant to be read.
    pub fn data(&mut self, data: impl AsRef<str>) -> io::Result<()> {
        writeln!(self.stdout, "{}", data.as_ref())
    }

    /// Writes a JSON document on one line.
    pub fn json(&mut self, value: &serde_json::Value) -> io::Result<()> {
        self.json_of(value)
    }

    /// Writes a serializable document as JSON on one line, without building a
    /// `serde_json::Value` first (for long documents such as the change log).
    pub fn json_of(&mut self, doc: &impl serde::Serialize) -> io::Result<()> {
        let mut out = io::BufWriter::with_capacity(OUT_BUFFER, &mut self.stdout);
        let mut json = serde_json::Serializer::with_formatter(&mut out, JsonEscapes);
        doc.serialize(&mut json).map_err(io::Error::from)?;
        writeln!(out)?;
        out.flush()
    }

    /// `Succeed: <action> credential: <detail>`
    pub fn succeed(&mut self, action: &str, detail: impl AsRef<str>) -> io::Result<()> {
        self.line(format!("Succeed: {action} credential: {}", detail.as_ref()))
    }

    /// Lays `rows` out in columns and writes them.
    pub fn table(&mut self, rows: &[Vec<String>]) -> io::Result<()> {
        // Buffered: stdout flushes at every newline, and a log of thousands of lines would be
        // as many writes.
        let mut out = io::BufWriter::with_capacity(OUT_BUFFER, &mut self.stdout);
        write_table(&mut out, rows, &self.same_flags)?;
        out.flush()
    }

    /// `Fail: <message>` and `Hint: <hint>` on stderr; with `--json` (unless the result is
    /// already on stdout) also `{"error": {...}}` on stdout.
    pub fn fail(&mut self, message: &str, hint: &str, exit_code: u8, result_printed: bool) {
        let message = &*self.offered(message);
        let hint = &*self.offered(hint);
        let mut stderr = io::stderr().lock();
        let _ = writeln!(stderr, "Fail: {}", shown(message));
        let _ = writeln!(stderr, "Hint: {}", shown(hint));
        if self.json && !result_printed {
            let doc = serde_json::json!({
                "error": {"exit_code": exit_code, "message": message, "hint": hint}
            });
            let _ = self.json(&doc);
        }
    }

    /// Help, version, or a missing-subcommand help, as clap renders it (its own text, never
    /// what the user typed).
    pub fn clap_message(&self, e: &clap::Error) {
        let _ = e.print();
    }

    /// Warns that secrets are about to be printed in plain text, when standard output is a
    /// terminal (`env`, `show --reveal`: one text for both).
    pub fn warn_if_secrets_shown(&self) {
        if self.stdout_is_terminal() {
            self.warn(
                "these are secrets in plain text on your terminal; use eval \"$(cio credential env ...)\" or cio credential exec -- COMMAND instead",
            );
        }
    }

    /// A line on stderr that says what the command chose for the user (which keys it read
    /// with, say): not a problem, but worth knowing when something then fails.
    pub fn note(&self, text: impl AsRef<str>) {
        stderr_line(&format!("Note: {}", self.offered(text.as_ref())));
    }

    /// A warning line on stderr.
    pub fn warn(&self, text: impl AsRef<str>) {
        stderr_line(&format!("Warning: {}", self.offered(text.as_ref())));
    }

    /// The one line that says this command found the change log damaged; `changed`: the
    /// command made a change (which was made, and logged, all the same).
    pub fn warn_log_damage(&self, damage: Option<cio_credential::Broken>, changed: bool) {
        if let Some(broken) = damage {
            let made = if changed {
                "; this change was made and logged all the same"
            } else {
                ""
            };
            self.warn(format!(
                "the change log is damaged: {broken}{made}; run 'cio credential log --verify'"
            ));
        }
    }

    /// The warnings a value raised, one line each.
    pub fn warn_value(&self, name: CredentialName, warnings: &[Warning]) {
        for w in warnings {
            self.warn(format!("{name}: {w}"));
        }
    }

    /// Whether a person may be at standard output (secrets printed there would show).
    pub fn stdout_is_terminal(&self) -> bool {
        io::stdout().is_terminal()
    }

    /// Asks on the terminal, without echo, for a secret.
    pub fn prompt_secret(&self, label: &str) -> io::Result<SecretValue> {
        crate::prompt::secret(label)
    }

    /// The etcd password of the user in CIO_ETCD_USER (never shown: it may be a mistyped
    /// secret), asked for on the terminal; `None` when standard input is not a terminal.
    pub fn ask_etcd_password(&self) -> Option<io::Result<SecretValue>> {
        if !io::stdin().is_terminal() {
            return None;
        }
        Some(self.prompt_secret("etcd password for the user in CIO_ETCD_USER: "))
    }
}

/// One line of text on stderr, shown safely ([`shown`]), for the few lines written where
/// no [`Out`] is at hand (a notice from another thread, a summary beside a bundle on stdout).
pub fn stderr_line(text: &str) {
    let _ = writeln!(io::stderr(), "{}", shown(text));
}

/// `text` as it may be written to a terminal: each control character (Unicode's Cc: ESC,
/// BEL, tab, line feed, DEL, the C1 controls such as CSI), format character (Cf: the
/// bidirectional overrides and isolates, zero-width joiners, soft hyphen), line or paragraph
/// separator, or other default-ignorable code point is written as its escape, `\u{1b}`;
/// everything else as it is. The categories are Unicode's (ICU4X `icu_properties`, the
/// tables the value rules use: what they refuse to store is what is escaped here).
///
/// Why every line of text goes through this, in the one layer that writes to the terminal,
/// rather than a call at each field that might hold outside text: the text cio shows comes
/// from many places it does not control, and most of it does not arrive as a field the
/// command picks. A recovery bundle comes from another site (its `created_by`, its values
/// in the preview); a store can be altered below cio (a key fingerprint); the change log
/// holds what another node's environment said (`SUDO_USER`, a host name); errors carry an
/// etcd or S3 server's words, file names and OS messages. A terminal obeys an escape
/// sequence wherever it appears (retitle the window, recolour or clear the screen, rewrite
/// earlier lines, hide or reorder text with a bidi override), and a field forgotten at one
/// call site is enough. cio's own messages hold none of these characters (each is one
/// line), so escaping them all costs nothing, and the line written is the line meant.
/// Backslashes are kept as they are (hints quote `printf '%s\n'`), so outside text that
/// spells `\u{1b}` reads as an escaped ESC would: visible, never obeyed.
pub fn shown(text: &str) -> Cow<'_, str> {
    // The usual line is printable ASCII: no table to consult, nothing copied.
    if text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_hidden(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `c` is one a terminal may act on or draw as nothing, rather than show: control,
/// format, line or paragraph separator, or default-ignorable.
fn is_hidden(c: char) -> bool {
    if (' '..='~').contains(&c) {
        return false;
    }
    matches!(
        CodePointMapData::<GeneralCategory>::new().get(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    ) || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
}

/// serde_json's compact output, with every character [`shown`] escapes written as a JSON
/// escape (`\u001b`, `\u202e`, a surrogate pair beyond the BMP). serde_json escapes the
/// C0 controls itself, but writes DEL, the C1 controls (U+009B is CSI) and the bidi
/// controls as they are, and `--json` output read on a terminal would obey them. A JSON
/// reader gets the same strings either way.
struct JsonEscapes;

impl serde_json::ser::Formatter for JsonEscapes {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if is_hidden(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// `text` as it is, or, when it offers a `cio credential` command and `flags` (the options
/// of `cio credential` this command was given as flags) holds one it does not name, with
/// "with the same --store and --key-file" (the flags it does not name). Never a second
/// parenthesis after one that closes the text:
/// - the command inside that parenthesis: the note goes at its end, as in
///   "(cio credential rekey, with the same --store and --key-file)";
/// - the parenthesis after the command (a remark on it): the flags join its own "with the
///   same ..." list when it has one ("(with the same --store and --key-file; ...)"), else the
///   note opens it ("(with the same --key-file; it can be restored)");
/// - no parenthesis at the end: the note in one of its own.
///
/// "Offers a command": names `cio credential` and one of its commands, other than for `--help`.
pub fn with_same_flags<'a>(text: &'a str, flags: &[&str]) -> Cow<'a, str> {
    // The common case (no such flag given, every `list` cell): nothing to look for.
    if flags.is_empty() {
        return Cow::Borrowed(text);
    }
    let Some(offered) = last_offered_command(text) else {
        return Cow::Borrowed(text);
    };
    let named = |flag: &&str| {
        text.match_indices(*flag).any(|(i, _)| {
            !text[i + flag.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
        })
    };
    let missing: Vec<&str> = flags.iter().filter(|f| !named(f)).copied().collect();
    let Some((last, first)) = missing.split_last() else {
        return Cow::Borrowed(text);
    };
    let note = format!("with the same {}", flag_list(first, last));
    let Some((inner, open)) = text
        .strip_suffix(')')
        .and_then(|inner| Some((inner, inner.rfind('(')?)))
    else {
        return Cow::Owned(format!("{text} ({note})"));
    };
    if open < offered {
        // The parenthesis holds the offered command.
        return Cow::Owned(format!("{inner}, {note})"));
    }
    // A remark on the command: its own "with the same" list, or the note opening it.
    const SAME: &str = "with the same ";
    if let Some(at) = inner[open..].find(SAME).map(|at| open + at + SAME.len()) {
        let (listed, len) = listed_flags(&inner[at..]);
        if !listed.is_empty() {
            let all: Vec<&str> = listed.iter().chain(&missing).copied().collect();
            let (last, first) = all.split_last().unwrap_or((last, first));
            let list = flag_list(first, last);
            return Cow::Owned(format!("{}{list}{})", &inner[..at], &inner[at + len..]));
        }
    }
    Cow::Owned(format!(
        "{}{note}; {})",
        &inner[..=open],
        &inner[open + 1..]
    ))
}

/// `--a`, `--a and --b`, `--a, --b and --c`.
fn flag_list(first: &[&str], last: &str) -> String {
    if first.is_empty() {
        last.to_string()
    } else {
        format!("{} and {last}", first.join(", "))
    }
}

/// The flags a list in the form [`flag_list`] writes at the start of `text` names, and the
/// length of that list.
fn listed_flags(text: &str) -> (Vec<&str>, usize) {
    let mut flags = Vec::new();
    let mut at = 0;
    loop {
        let rest = &text[at..];
        if !rest.starts_with("--") {
            break;
        }
        let len = rest[2..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .map_or(rest.len(), |i| i + 2);
        flags.push(&rest[..len]);
        at += len;
        match [", --", " and --"]
            .iter()
            .find(|sep| text[at..].starts_with(**sep))
        {
            Some(sep) => at += sep.len() - 2,
            None => break,
        }
    }
    (flags, at)
}

/// Where the last `cio credential COMMAND` in `text` begins (COMMAND one of its commands or
/// their aliases, not followed by `--help`).
fn last_offered_command(text: &str) -> Option<usize> {
    const PREFIX: &str = "cio credential ";
    text.match_indices(PREFIX)
        .filter(|(i, _)| {
            let mut words =
                text[i + PREFIX.len()..].split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'));
            let command = words.next().unwrap_or_default();
            crate::cli::is_credential_command(command) && words.next() != Some("--help")
        })
        .map(|(i, _)| i)
        .last()
}

/// Warnings as JSON.
pub fn warnings_json(warnings: &[Warning]) -> serde_json::Value {
    warnings
        .iter()
        .map(|w| serde_json::json!({"code": w.code(), "message": w.to_string()}))
        .collect()
}

/// How long ago `ms` (milliseconds since the epoch) was, at `now_ms`, in the largest whole
/// unit: `<1m`, `12m`, `3h` (up to 47h), `5d`. A time in the future reads `<1m`.
pub fn ago(ms: i64, now_ms: i64) -> String {
    let minutes = now_ms.saturating_sub(ms).max(0) / 60_000;
    match minutes {
        0 => "<1m".to_string(),
        m if m < 60 => format!("{m}m"),
        m if m < 48 * 60 => format!("{}h", m / 60),
        m => format!("{}d", m / (24 * 60)),
    }
}

/// `n` and `noun`, the noun in the plural unless `n` is 1: `1 version`, `3 versions`.
/// (English only, and only nouns whose plural takes an `s`.)
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A time in milliseconds since the epoch, as `2026-11-28T14:02:11Z`.
pub use cio_credential::shown_time as time;

/// Lays rows out in columns separated by two spaces (the last column is not padded) and
/// writes them to `out`, a line each; a cell that offers a command says it needs `same_flags`
/// ([`with_same_flags`]).
fn write_table(out: &mut impl Write, rows: &[Vec<String>], same_flags: &[&str]) -> io::Result<()> {
    let rows: Vec<Vec<Cow<'_, str>>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| match with_same_flags(cell, same_flags) {
                    Cow::Borrowed(cell) => shown(cell),
                    Cow::Owned(cell) => Cow::Owned(shown(&cell).into_owned()),
                })
                .collect()
        })
        .collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &rows {
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                out.write_all(cell.as_bytes())?;
            } else {
                write!(out, "{cell:<w$}  ", w = widths[c])?;
            }
        }
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod time_tests {
    #[test]
    fn ages_in_the_largest_whole_unit() {
        let min = 60_000;
        assert_eq!(super::ago(0, 59_999), "<1m");
        assert_eq!(super::ago(0, 59 * min), "59m");
        assert_eq!(super::ago(0, 47 * 60 * min), "47h");
        assert_eq!(super::ago(0, 100 * 24 * 60 * min), "100d");
        assert_eq!(super::ago(10, 0), "<1m");
    }

    #[test]
    fn any_time_is_written_without_a_panic() {
        assert_eq!(super::time(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::time(253_402_300_799_999), "9999-12-31T23:59:59Z");
        for ms in [i64::MIN, -1, 253_402_300_800_000, i64::MAX] {
            assert_eq!(super::time(ms), "(a time out of range)");
        }
    }
}

#[cfg(test)]
mod escape_tests {
    use super::shown;

    #[test]
    fn control_and_bidi_characters_are_shown_escaped() {
        assert_eq!(
            shown("cio \u{1b}]0;pwned\u{7}\u{1b}[31mRED"),
            "cio \\u{1b}]0;pwned\\u{7}\\u{1b}[31mRED"
        );
        for (c, escape) in [
            ('\n', "\\u{a}"),
            ('\t', "\\u{9}"),
            ('\r', "\\u{d}"),
            ('\u{7f}', "\\u{7f}"),
            ('\u{9b}', "\\u{9b}"),
            ('\u{202e}', "\\u{202e}"),
            ('\u{2066}', "\\u{2066}"),
            ('\u{200b}', "\\u{200b}"),
            ('\u{2028}', "\\u{2028}"),
            ('\u{e0001}', "\\u{e0001}"),
        ] {
            assert_eq!(shown(&format!("a{c}b")), format!("a{escape}b"), "{c:?}");
        }
        // Everything else is kept, backslashes and quotes included.
        for kept in ["printf '%s\\n' \"$V\"", "élise 日本 ✓", ""] {
            assert_eq!(shown(kept), kept);
        }
    }

    #[test]
    fn json_escapes_what_text_escapes_and_reads_back_the_same() {
        let text = "a\u{1b}[2J b\u{9b}c \u{202e}d \u{e0001} é\"\\";
        let doc = serde_json::json!({ "k\u{202e}": text });
        let mut bytes = Vec::new();
        let mut json = serde_json::Serializer::with_formatter(&mut bytes, super::JsonEscapes);
        serde::Serialize::serialize(&doc, &mut json).unwrap();
        let written = String::from_utf8(bytes).unwrap();
        assert_eq!(
            written,
            r#"{"k\u202e":"a\u001b[2J b\u009bc \u202ed \udb40\udc01 é\"\\"}"#
        );
        let read: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert_eq!(read, doc);
    }
}

#[cfg(test)]
mod same_flags_tests {
    use super::with_same_flags;

    const BOTH: &[&str] = &["--store", "--key-file"];

    #[test]
    fn an_offered_command_says_the_flags_it_needs() {
        assert_eq!(
            with_same_flags(
                "create it with 'cio credential exec --provider minio -- restic init'",
                BOTH
            ),
            "create it with 'cio credential exec --provider minio -- restic init' (with the same --store and --key-file)"
        );
        assert_eq!(
            with_same_flags(
                "cio_x (bring it back with: cio credential restore cio_x)",
                BOTH
            ),
            "cio_x (bring it back with: cio credential restore cio_x, with the same --store and --key-file)"
        );
        // A closing parenthesis that is not the command's.
        assert_eq!(
            with_same_flags(
                "run 'cio credential rm NAME' (it can be restored)",
                &["--etcd-cacert"]
            ),
            "run 'cio credential rm NAME' (with the same --etcd-cacert; it can be restored)"
        );
        assert_eq!(
            with_same_flags(
                "cio credential log",
                &["--store", "--key-file", "--etcd-cert"]
            ),
            "cio credential log (with the same --store, --key-file and --etcd-cert)"
        );
    }

    #[test]
    fn nothing_is_added_where_nothing_is_offered_or_all_is_said() {
        for text in [
            "point --store / CIO_STORE at a cio credential store",
            "'cio credential create --help' lists the 24 names",
            "rekey the store (cio credential rekey, with the same --store and --key-file)",
            "run: cio credential migrate --store A --to B --key-file K",
        ] {
            assert_eq!(with_same_flags(text, BOTH), text);
        }
        assert_eq!(
            with_same_flags("cio credential list", &[]),
            "cio credential list"
        );
        // Only the flag the text does not name.
        assert_eq!(
            with_same_flags(
                "cio credential remove --purge --compact N (with the same --store; ...)",
                BOTH
            ),
            "cio credential remove --purge --compact N (with the same --store and --key-file; ...)"
        );
        assert_eq!(
            with_same_flags(
                "run cio credential list (with the same --store, --key-file and --etcd-cert; y)",
                &["--store", "--etcd-cacert", "--etcd-key"]
            ),
            "run cio credential list (with the same --store, --key-file, --etcd-cert, --etcd-cacert and --etcd-key; y)"
        );
    }
}
