//! Reading a credential value: from the command line, standard input, or a prompt.
//!
//! Rules:
//! - a value on the command line works, with a one-line warning for secrets;
//! - or the file given with `--from-file` (a regular file or a pipe, whose writer is waited
//!   for), one trailing newline stripped;
//! - otherwise standard input when it is not a terminal, with one trailing newline stripped;
//! - otherwise a prompt without echo on the terminal, twice for passwords, compared in
//!   constant time; never for PEM text, which is several lines;
//! - plaintext buffers are zeroed when dropped.

use std::io::{self, IsTerminal, Read};
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use cio_credential::{
    CredentialName, Field, InputFileError, MAX_CACERT_BYTES, MAX_VALUE_BYTES, SecretValue,
};
use zeroize::Zeroizing;

use crate::error::InputError;
use crate::output::Out;

/// How much of standard input or a file is read at most: twice the longest value (a PEM
/// certificate), enough to tell a too-long value (a clear error from the value rules) from a
/// mistaken pipe of a whole file.
const MAX_STDIN_BYTES: usize = 2 * MAX_CACERT_BYTES;

/// The value for `name`, from `arg`, the file `from_file`, standard input or a prompt.
pub fn read_value(
    out: &Out,
    name: CredentialName,
    arg: Option<String>,
    from_file: Option<&Path>,
) -> Result<SecretValue, InputError> {
    if let Some(value) = arg {
        if name.field.is_secret() {
            out.warn(format!(
                "a secret on the command line lands in shell history and the process list; next time run 'cio credential create {name}' and type or pipe the value"
            ));
        }
        return Ok(SecretValue::new(value));
    }
    if let Some(path) = from_file {
        // A pipe, as `--from-file <(vault kv get -field=cert ...)` gives, or a named FIFO
        // whose writer is waited for (said after a moment): read to its end as standard
        // input is. A device (/dev/zero) or a folder is no value file: it could never end.
        let _notice = WaitNotice::start(name, Source::Pipe);
        let file = cio_credential::open_input(path).map_err(|e| match e {
            InputFileError::Kind(_) => InputError::NotAFile,
            InputFileError::Io(e) => InputError::File(e),
            other => InputError::File(io::Error::other(other.to_string())),
        })?;
        return read_stdin(file);
    }
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        let _notice = WaitNotice::start(name, Source::Stdin);
        return read_stdin(stdin.lock());
    }
    if name.field.is_multi_line() {
        return Err(InputError::MultiLineOnTerminal);
    }
    prompt(out, name)
}

/// How long standard input may stay silent before cio says it is waiting for it.
const WAIT_NOTICE_AFTER: Duration = Duration::from_secs(2);

/// Says on stderr, once, when standard input or a named pipe gives no end within
/// [`WAIT_NOTICE_AFTER`]: a pipe that never closes (a forgotten `| cio credential create NAME`
/// in a script, a process substitution, a FIFO nobody writes yet) would otherwise look like a
/// hang. Dropping it (the input was read) ends it.
pub struct WaitNotice {
    _done: mpsc::Sender<()>,
}

/// Where a value is being read from, for [`WaitNotice`].
#[derive(Clone, Copy)]
enum Source {
    Stdin,
    /// A pipe given with `--from-file`.
    Pipe,
}

impl WaitNotice {
    fn start(name: CredentialName, source: Source) -> WaitNotice {
        let what = match source {
            Source::Stdin => {
                "on standard input; end it (Ctrl-D) or give the value with --from-file"
            }
            Source::Pipe => "from the pipe given with --from-file, whose writer has not ended it",
        };
        WaitNotice::saying(format!("waiting for the value of {name} {what}"))
    }

    /// Says `Warning: {what}` if still waiting after [`WAIT_NOTICE_AFTER`].
    pub fn saying(what: String) -> WaitNotice {
        let (done, waiting) = mpsc::channel::<()>();
        // Not joined: the process may end (the input read) while it still waits.
        std::thread::spawn(move || {
            if waiting.recv_timeout(WAIT_NOTICE_AFTER) == Err(RecvTimeoutError::Timeout) {
                crate::output::stderr_line(&format!("Warning: {what}"));
            }
        });
        WaitNotice { _done: done }
    }
}

/// Reads a value piped on standard input, or from a file.
pub fn read_stdin(reader: impl Read) -> Result<SecretValue, InputError> {
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_VALUE_BYTES));
    let limit = u64::try_from(MAX_STDIN_BYTES + 1).unwrap_or(u64::MAX);
    reader
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(InputError::Io)?;
    if bytes.len() > MAX_STDIN_BYTES {
        return Err(InputError::TooLarge(MAX_STDIN_BYTES));
    }
    let newline = if bytes.ends_with(b"\r\n") {
        2
    } else {
        usize::from(bytes.ends_with(b"\n"))
    };
    let len = bytes.len() - newline;
    bytes.truncate(len);
    let text = String::from_utf8(std::mem::take(&mut *bytes)).map_err(|e| {
        // Zero the rejected bytes too.
        drop(Zeroizing::new(e.into_bytes()));
        InputError::NotUtf8
    })?;
    Ok(SecretValue::new(text))
}

/// Prompts on the terminal without echo; twice for a password.
fn prompt(out: &Out, name: CredentialName) -> Result<SecretValue, InputError> {
    ask(
        out,
        &format!("Value for {name}"),
        name.field == Field::BackupPassword,
    )
}

/// A new secret, described by `label` (e.g. "New password for NAME"): from standard input
/// when it is not a terminal, else asked for twice without echo.
pub fn read_new_secret(out: &Out, label: &str) -> Result<SecretValue, InputError> {
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        return read_stdin(stdin.lock());
    }
    ask(out, label, true)
}

/// A new access key and secret key: from standard input when it is not a terminal (two
/// lines, access key first; a final newline is optional), else asked for without echo.
pub fn read_key_pair(
    out: &Out,
    access: CredentialName,
    secret: CredentialName,
) -> Result<(SecretValue, SecretValue), InputError> {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        return Ok((
            ask(out, &format!("New access key for {access}"), false)?,
            ask(out, &format!("New secret key for {secret}"), false)?,
        ));
    }
    let both = read_stdin(stdin.lock())?;
    let mut lines = both
        .expose()
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l));
    match (lines.next(), lines.next(), lines.next()) {
        (Some(a), Some(s), None) => Ok((
            SecretValue::new(a.to_string()),
            SecretValue::new(s.to_string()),
        )),
        _ => Err(InputError::NotAPair),
    }
}

/// Asks for `label` without echo; with `twice`, again, and the two must match (compared in
/// constant time).
fn ask(out: &Out, label: &str, twice: bool) -> Result<SecretValue, InputError> {
    let first = out
        .prompt_secret(&format!("{label}: "))
        .map_err(InputError::Io)?;
    if twice {
        let second = out
            .prompt_secret(&format!("{label} (again): "))
            .map_err(InputError::Io)?;
        if !first.ct_eq(&second) {
            return Err(InputError::Mismatch);
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_newline_is_stripped() {
        let v = read_stdin(&b"secret\n"[..]).unwrap();
        assert_eq!(v.expose(), "secret");
        let v = read_stdin(&b"secret\r\n"[..]).unwrap();
        assert_eq!(v.expose(), "secret");
        let v = read_stdin(&b"secret\n\n"[..]).unwrap();
        assert_eq!(v.expose(), "secret\n");
        let v = read_stdin(&b"secret"[..]).unwrap();
        assert_eq!(v.expose(), "secret");
    }

    #[test]
    fn non_utf8_and_huge_input_are_refused() {
        assert!(matches!(
            read_stdin(&[0xff, 0xfe][..]),
            Err(InputError::NotUtf8)
        ));
        let huge = vec![b'a'; MAX_STDIN_BYTES + 1];
        assert!(matches!(
            read_stdin(&huge[..]),
            Err(InputError::TooLarge(_))
        ));
    }
}
