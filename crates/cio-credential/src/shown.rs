//! How messages show what is not a value: a file path exactly as cio uses it, and a time.
//!
//! Rules: a path is shown byte for byte so that the message names the very file cio opened.
//! Printable UTF-8 text is shown as it is; every other byte (a byte that is not UTF-8, such
//! as 0xff, or a control character) as `\xFF` (tab, line feed and carriage return as `\t`,
//! `\n`, `\r`), and a backslash as `\\`, as `ls --quoting-style=escape` does: no two paths
//! look alike, and no path can start a new line of a message. (`Path::display` writes U+FFFD
//! for a byte that is not UTF-8, naming a file that does not exist.)

use std::fmt::{self, Display, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `path` for a message: see the module rules.
pub fn shown_path(path: &Path) -> ShownPath<'_> {
    ShownPath(path)
}

/// A path shown unambiguously ([`shown_path`]).
#[derive(Debug, Clone, Copy)]
pub struct ShownPath<'a>(&'a Path);

impl Display for ShownPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.as_os_str().as_bytes().utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    '\t' => f.write_str("\\t")?,
                    '\n' => f.write_str("\\n")?,
                    '\r' => f.write_str("\\r")?,
                    c if c.is_control() => {
                        let mut utf8 = [0u8; 4];
                        for byte in c.encode_utf8(&mut utf8).bytes() {
                            write!(f, "\\x{byte:02X}")?;
                        }
                    }
                    c => f.write_char(c)?,
                }
            }
            for byte in chunk.invalid() {
                write!(f, "\\x{byte:02X}")?;
            }
        }
        Ok(())
    }
}

/// A time in milliseconds since the Unix epoch, as `2026-11-28T14:02:11Z` (UTC, seconds).
pub fn shown_time(ms: i64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn shown(bytes: &[u8]) -> String {
        shown_path(Path::new(OsStr::from_bytes(bytes))).to_string()
    }

    #[test]
    fn paths_are_shown_byte_for_byte() {
        assert_eq!(shown(b"/etc/cio/credential.key"), "/etc/cio/credential.key");
        assert_eq!(shown("/tmp/clé ü.key".as_bytes()), "/tmp/clé ü.key");
        assert_eq!(shown(b"/tmp/k\xffey"), "/tmp/k\\xFFey");
        // Not U+FFFD, which is a file name of its own.
        assert_eq!(shown("/tmp/k\u{fffd}ey".as_bytes()), "/tmp/k\u{fffd}ey");
        assert_eq!(shown(b"/tmp/a\\xFF"), "/tmp/a\\\\xFF");
        assert_eq!(shown(b"/tmp/a\nFail: b\t\x1b"), "/tmp/a\\nFail: b\\t\\x1B");
        assert_eq!(shown("/tmp/\u{85}".as_bytes()), "/tmp/\\xC2\\x85");
    }

    #[test]
    fn times_are_rfc3339_seconds() {
        assert_eq!(shown_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(shown_time(-1), "(a time out of range)");
    }
}
