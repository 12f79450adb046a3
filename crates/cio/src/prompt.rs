//! Asking for a secret on the terminal without echo, and leaving the terminal as it was
//! found whatever ends the process meanwhile.
//!
//! rpassword turns echo, line editing and the signal keys off while a secret is typed and
//! turns them back on when it returns. But it answers Ctrl-C by raising SIGINT before it
//! returns, and a kill from elsewhere does not wait for it either: the process ended with the
//! terminal still silent, and the administrator's shell showed nothing typed after it. So the
//! first prompt saves the terminal's settings and gives SIGINT, SIGTERM, SIGHUP and SIGQUIT
//! a handler that, while a prompt is open, puts them back and ends the line, then lets the
//! signal do what it would have done (signal-hook's emulation of the default action: the
//! process ends by that signal, as before). A signal the process was started ignoring (as
//! `nohup` ignores SIGHUP) stays ignored.

use std::ffi::c_int;
use std::fs::File;
use std::io::{self, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::process;
use rustix::termios::{self, OptionalActions, Termios};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

use cio_credential::SecretValue;

/// The signals whose default action ends the process while a secret is typed.
const ENDING: [c_int; 4] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT];

/// The controlling terminal and its settings before the first prompt; `None` without one.
static SAVED: OnceLock<Option<Saved>> = OnceLock::new();
/// Whether a prompt is open (the terminal may be silent).
static OPEN: AtomicBool = AtomicBool::new(false);

struct Saved {
    tty: File,
    settings: Termios,
}

/// Whether this process has a controlling terminal to ask on (`/dev/tty` opens), whatever
/// its standard input is.
pub fn has_terminal() -> bool {
    File::options()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_ok()
}

/// Asks on the terminal, without echo, for a secret (rpassword: the controlling terminal,
/// `/dev/tty`). Errors are rpassword's: no terminal, or the line could not be read.
pub fn secret(label: &str) -> io::Result<SecretValue> {
    let _open = OpenPrompt::new();
    // A label may name an etcd user from the environment.
    rpassword::prompt_password(crate::output::shown(label)).map(SecretValue::new)
}

/// Marks a prompt open for the signal handlers while it lives.
struct OpenPrompt;

impl OpenPrompt {
    fn new() -> Self {
        if SAVED.get_or_init(save).is_some() {
            OPEN.store(true, Ordering::SeqCst);
        }
        OpenPrompt
    }
}

impl Drop for OpenPrompt {
    fn drop(&mut self) {
        OPEN.store(false, Ordering::SeqCst);
    }
}

/// Saves the terminal's settings and installs the handlers; `None` without a terminal.
fn save() -> Option<Saved> {
    let tty = File::options()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    let settings = termios::tcgetattr(&tty).ok()?;
    for signal in ENDING {
        if ignored(signal) {
            continue;
        }
        // SAFETY: the action makes only async-signal-safe calls: system calls on a file
        // opened before (tcgetpgrp, tcsetattr, write), getpgrp, and signal-hook's
        // default-action emulation.
        // Failing to install one leaves that signal as it was (the old behaviour).
        let _ = unsafe {
            signal_hook::low_level::register(signal, move || restore_then_default(signal))
        };
    }
    Some(Saved { tty, settings })
}

/// Whether `signal` is ignored (`SIG_IGN` inherited from the parent).
fn ignored(signal: c_int) -> bool {
    let mut current = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a query (no new action); `current` is written by the call.
    let queried = unsafe { libc::sigaction(signal, std::ptr::null(), current.as_mut_ptr()) };
    // SAFETY: zeroed is a valid sigaction, and the call filled it when it succeeded.
    queried == 0 && unsafe { current.assume_init() }.sa_sigaction == libc::SIG_IGN
}

/// The signal handler: the terminal as it was, then the signal's default action. Only in
/// the terminal's foreground: from the background, the terminal is another job's (and
/// changing it would stop cio with SIGTTOU instead of ending it).
fn restore_then_default(signal: c_int) {
    if OPEN.load(Ordering::SeqCst)
        && let Some(Some(saved)) = SAVED.get()
        && termios::tcgetpgrp(&saved.tty).is_ok_and(|group| group == process::getpgrp())
    {
        let _ = termios::tcsetattr(&saved.tty, OptionalActions::Now, &saved.settings);
        let _ = (&saved.tty).write(b"\n");
    }
    let _ = signal_hook::low_level::emulate_default_handler(signal);
}
