//! All terminal output goes through here: `Succeed:` lines and tables on stdout, warnings and
//! failures on stderr, JSON for `--json`.

use std::io::{self, Write};

use cio_credential::catalog::{CredentialName, Warning};

/// Standard output, for a command's result.
pub struct Out {
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
        writeln!(self.stdout, "{value}")
    }

    /// `Succeed: <action> credential: <detail>`
    pub fn succeed(&mut self, action: &str, detail: impl AsRef<str>) -> io::Result<()> {
        self.line(format!("Succeed: {action} credential: {}", detail.as_ref()))
    }
}

/// The warning `env` and `show --reveal` give when they print secrets on a terminal.
pub const PLAIN_TEXT_ON_TERMINAL: &str = "these are secrets in plain text on your terminal; use eval \"$(cio credential env ...)\" or cio credential exec -- COMMAND instead";

/// Warns (once, on stderr) when standard output is a terminal: secrets are about to be shown.
pub fn warn_if_terminal() {
    if std::io::IsTerminal::is_terminal(&io::stdout()) {
        warn(PLAIN_TEXT_ON_TERMINAL);
    }
}

/// A warning line on standard error.
pub fn warn(text: impl AsRef<str>) {
    let _ = writeln!(io::stderr(), "Warning: {}", text.as_ref());
}

/// The warnings a value raised, one line each.
pub fn warn_value(name: CredentialName, warnings: &[Warning]) {
    for w in warnings {
        warn(format!("{name}: {w}"));
    }
}

/// Warnings as JSON.
pub fn warnings_json(warnings: &[Warning]) -> serde_json::Value {
    warnings
        .iter()
        .map(|w| serde_json::json!({"code": w.code(), "message": w.to_string()}))
        .collect()
}

/// A time in milliseconds since the epoch, as `2026-11-28T14:02:11Z`.
pub fn time(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Lays rows out in columns separated by two spaces; the last column is not padded.
pub fn table(rows: &[Vec<String>]) -> Vec<String> {
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
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
                }
            }
            line
        })
        .collect()
}
