//! What the process does before anything else, so that the secrets it will hold cannot leak
//! through a core dump or another process of the same user.
//!
//! - `prctl(PR_SET_DUMPABLE, 0)`: no core dump, and no other process of the same user may
//!   attach with ptrace or read `/proc/PID/mem` or `environ`;
//! - `RLIMIT_CORE` 0 (soft and hard), which the child of `exec` inherits: the backup engine
//!   holds the same secrets (the kernel makes it dumpable again at its execve, so the limit is
//!   what keeps its core out of the working folder).

use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};

/// Makes the process non-dumpable with core dumps off. Best effort: both calls only fail on
/// kernels without them, and cio must still run there.
pub fn harden() {
    let _ = set_dumpable_behavior(DumpableBehavior::NotDumpable);
    let _ = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    );
}
