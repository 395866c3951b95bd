//! What the echo and compare benches share about the peers they run: their child processes
//! die with the bench, and whether a missing peer may be skipped.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the child die with the thread that starts it (`PR_SET_PDEATHSIG`, SIGKILL; kept
/// across `exec`, so through `taskset` too). Both benches start their children from their
/// main thread: a bench killed or aborted (an allocation that failed) no longer leaves a
/// server bound to its port or a measurement running.
pub fn dies_with_parent(c: &mut Command) -> &mut Command {
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec and makes two system calls
    // (prctl, getppid), both async-signal-safe; it reads only its own copy of `parent`.
    unsafe {
        c.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died before the prctl: no signal will come.
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::other(
                    "the bench exited while starting this",
                ));
            }
            Ok(())
        })
    }
}

/// Whether skipping a peer this machine lacks is forbidden (`GORUST_NO_SKIP=1`, set by
/// `.ci/run`, which installs them all): the bench then exits with status 1 instead.
pub fn skipping_forbidden() -> bool {
    std::env::var_os("GORUST_NO_SKIP").is_some_and(|v| v == "1")
}
