//! What the process does before anything else, so that the secrets it will hold cannot leak
//! through a core dump or another process of the same user.
//!
//! - `prctl(PR_SET_DUMPABLE, 0)`: no core dump, and no other process of the same user may
//!   attach with ptrace or read `/proc/PID/mem` or `environ`;
//! - `RLIMIT_CORE` 0 (soft and hard), which the child of `exec` inherits: the backup engine
//!   holds the same secrets (the kernel makes it dumpable again at its execve, so the limit is
//!   what keeps its core out of the working folder);
//! - SIGXFSZ caught (not ignored: a caught signal is reset at the child's execve, an ignored
//!   one would stay ignored there): past a file-size limit (`ulimit -f`) a write then fails
//!   with EFBIG, said as such with "nothing was changed", instead of the kernel killing cio
//!   in the middle of a write with no word and its scratch copy of the store left behind.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};
use signal_hook::consts::SIGXFSZ;

/// Makes the process non-dumpable with core dumps off, and catches SIGXFSZ. Best effort:
/// the calls only fail on kernels without them, and cio must still run there.
pub fn harden() {
    // The flag is never read: the write that raised the signal reports EFBIG itself.
    let _ = signal_hook::flag::register(SIGXFSZ, Arc::new(AtomicBool::new(false)));
    let _ = set_dumpable_behavior(DumpableBehavior::NotDumpable);
    let _ = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    );
}
