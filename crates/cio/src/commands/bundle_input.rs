//! What `export` and `import` read besides the store: a bundle, its passphrase, the keys
//! that read an escrow object.
//!
//! Rules: a passphrase is prompted for without echo on a terminal (twice when it seals),
//! otherwise read from standard input (one trailing newline stripped); standard input
//! feeds one thing only, so a bundle read from it cannot also bring its passphrase. A
//! passphrase that seals is checked (the library's `check_passphrase`: form and length)
//! as soon as it is first given, so a refused one is never asked for a second time; one
//! that opens is checked by the library when it opens.

use std::io::{self, IsTerminal, Read};
use std::path::Path;

use cio_credential::{InputFileError, SecretValue, check_passphrase};

use crate::error::{CommandError, InputError};
use crate::input::{WaitNotice, read_stdin};

/// The largest bundle read: far more than every set with a long history needs.
const MAX_BUNDLE: u64 = 16 * 1024 * 1024;

fn input_error(action: &str, problem: InputError) -> CommandError {
    CommandError::Input {
        action: action.to_string(),
        problem,
    }
}

/// The bundle passphrase: prompted (twice when `confirm`) on a terminal, else standard
/// input. `confirm`: it seals a new bundle, and is checked before it is asked again.
/// `stdin_taken`: standard input already carries something else.
pub fn passphrase(
    action: &str,
    confirm: bool,
    stdin_taken: bool,
) -> Result<SecretValue, CommandError> {
    let checked = |passphrase: SecretValue| {
        if confirm {
            check_passphrase(&passphrase).map_err(|e| CommandError::library(action, e))?;
        }
        Ok(passphrase)
    };
    // Standard input carrying the bundle leaves the controlling terminal to type on.
    if io::stdin().is_terminal() || (stdin_taken && crate::prompt::has_terminal()) {
        let ask = |label: &str| {
            crate::prompt::secret(label).map_err(|e| input_error(action, InputError::Io(e)))
        };
        let first = checked(ask("Bundle passphrase: ")?)?;
        if confirm {
            let second = ask("Bundle passphrase (again): ")?;
            if !first.ct_eq(&second) {
                return Err(input_error(action, InputError::Mismatch));
            }
        }
        return Ok(first);
    }
    if stdin_taken {
        return Err(input_error(action, InputError::PassphraseNeedsInput));
    }
    checked(read_stdin(io::stdin().lock()).map_err(|problem| input_error(action, problem))?)
}

/// A sealed bundle from FILE, and whether FILE is standard input: `-`, or a path to the
/// open file standard input is (`/dev/stdin`, `/proc/self/fd/0`, the file redirected with
/// `<`), which then carries the bundle and cannot also carry its passphrase. What standard
/// input gives that is no age file (a passphrase piped to `import /dev/stdin`) is refused
/// as such, not as a damaged bundle.
pub fn bundle(action: &str, file: &str) -> Result<(Vec<u8>, bool), CommandError> {
    let from_stdin = file == "-" || is_stdin(Path::new(file));
    let mut bytes = Vec::new();
    let read = if from_stdin {
        io::stdin().lock().take(MAX_BUNDLE).read_to_end(&mut bytes)
    } else {
        // A named FIFO waits for its writer, said after a moment.
        let _notice = WaitNotice::saying(format!(
            "waiting for the bundle from {}, whose writer has not ended it",
            cio_credential::shown_path(Path::new(file))
        ));
        cio_credential::open_input(Path::new(file))
            .map_err(|e| match e {
                InputFileError::Io(e) => e,
                other => io::Error::other(other.to_string()),
            })
            .and_then(|f| f.take(MAX_BUNDLE).read_to_end(&mut bytes))
    };
    read.map_err(|e| input_error(action, InputError::Bundle(e)))?;
    if from_stdin && !looks_like_age(&bytes) {
        return Err(input_error(action, InputError::StdinNotABundle));
    }
    Ok((bytes, from_stdin))
}

/// Whether `path` is the file standard input is open on (the same device and inode).
fn is_stdin(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(stdin) = rustix::fs::fstat(io::stdin()) else {
        return false;
    };
    std::fs::metadata(path).is_ok_and(|m| m.dev() == stdin.st_dev && m.ino() == stdin.st_ino)
}

/// Whether `bytes` begin as an age file does, armored or binary (after white space a
/// copy may have added): anything else is no bundle at all, rather than a damaged one.
fn looks_like_age(bytes: &[u8]) -> bool {
    let start = bytes.trim_ascii_start();
    start.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
        || start.starts_with(b"age-encryption.org/")
}

/// An access key and a secret key, prompted for on a terminal or read from standard input
/// (two lines: the access key, then the secret key).
pub fn access_keys(action: &str) -> Result<(SecretValue, SecretValue), CommandError> {
    if io::stdin().is_terminal() {
        let ask = |label: &str| {
            crate::prompt::secret(label).map_err(|e| input_error(action, InputError::Io(e)))
        };
        return Ok((
            ask("Access key that may read the bucket: ")?,
            ask("Its secret key: ")?,
        ));
    }
    let both = read_stdin(io::stdin().lock()).map_err(|problem| input_error(action, problem))?;
    let mut lines = both.expose().lines();
    match (lines.next(), lines.next(), lines.next()) {
        (Some(access), Some(secret), None) if !access.is_empty() && !secret.is_empty() => Ok((
            SecretValue::new(access.trim_end_matches('\r').to_string()),
            SecretValue::new(secret.trim_end_matches('\r').to_string()),
        )),
        _ => Err(input_error(action, InputError::AccessKeysExpected)),
    }
}
