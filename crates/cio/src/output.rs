//! All terminal output goes through [`Out`]: results (`Succeed:` lines, tables, JSON) on
//! stdout, warnings and failures on stderr, and the prompts (without echo, on the terminal).

use std::io::{self, IsTerminal, Write};

use cio_credential::{CredentialName, SecretValue, Warning};

/// The terminal of one command.
pub struct Out {
    /// `--json`: results and failures as JSON documents on stdout.
    pub json: bool,
    stdout: io::StdoutLock<'static>,
}

impl Out {
    pub fn new(json: bool) -> Out {
        Out {
            json,
            stdout: io::stdout().lock(),
        }
    }

    /// Writes one line of text.
    pub fn line(&mut self, text: impl AsRef<str>) -> io::Result<()> {
        writeln!(self.stdout, "{}", text.as_ref())
    }

    /// Writes a JSON document on one line.
    pub fn json(&mut self, value: &serde_json::Value) -> io::Result<()> {
        self.json_of(value)
    }

    /// Writes a serializable document as JSON on one line, without building a
    /// `serde_json::Value` first (for long documents such as the change log).
    pub fn json_of(&mut self, doc: &impl serde::Serialize) -> io::Result<()> {
        let mut out = io::BufWriter::with_capacity(64 * 1024, &mut self.stdout);
        serde_json::to_writer(&mut out, doc).map_err(io::Error::from)?;
        writeln!(out)?;
        out.flush()
    }

    /// `Succeed: <action> credential: <detail>`
    pub fn succeed(&mut self, action: &str, detail: impl AsRef<str>) -> io::Result<()> {
        self.line(format!("Succeed: {action} credential: {}", detail.as_ref()))
    }

    /// Lays `rows` out in columns and writes them.
    pub fn table(&mut self, rows: &[Vec<String>]) -> io::Result<()> {
        // Buffered as a whole: stdout flushes at every newline, and a log of thousands of
        // lines would be as many writes.
        let mut out = io::BufWriter::with_capacity(64 * 1024, &mut self.stdout);
        write_table(&mut out, rows)?;
        out.flush()
    }

    /// `Fail: <message>` and `Hint: <hint>` on stderr; with `--json` (unless the result is
    /// already on stdout) also `{"error": {...}}` on stdout.
    pub fn fail(&mut self, message: &str, hint: &str, exit_code: u8, result_printed: bool) {
        let mut stderr = io::stderr().lock();
        let _ = writeln!(stderr, "Fail: {message}");
        let _ = writeln!(stderr, "Hint: {hint}");
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

    /// A warning line on stderr.
    pub fn warn(&self, text: impl AsRef<str>) {
        let _ = writeln!(io::stderr(), "Warning: {}", text.as_ref());
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
pub fn time(ms: i64) -> String {
    // humantime writes years 0 to 9999 (and panics past them); a store's decoder refuses
    // other times, this keeps any other caller from a panic too.
    const MAX_MS: u64 = 253_402_300_799_999;
    match u64::try_from(ms).ok().filter(|ms| *ms <= MAX_MS) {
        Some(ms) => {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
            humantime::format_rfc3339_seconds(t).to_string()
        }
        None => "(a time out of range)".to_string(),
    }
}

/// Lays rows out in columns separated by two spaces (the last column is not padded) and
/// writes them to `out`, a line each.
fn write_table(out: &mut impl Write, rows: &[Vec<String>]) -> io::Result<()> {
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
    for row in rows {
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
