//! The process's descriptor table, grown once when a runtime starts.
//!
//! Linux keeps a process's open descriptors in one table that it grows by doubling when a new
//! descriptor does not fit (64, 128, 256, … slots). In a process with more than one thread
//! that shares the table (every gorust process: the workers and the monitor), each growth waits
//! for an RCU grace period before it returns (`expand_fdtable` calls `synchronize_rcu`, so
//! that no other thread still reads the old table when it is freed). The thread that opened
//! the descriptor sleeps uninterruptibly meanwhile. Measured here (`sched_switch` with call
//! chains, an echo server accepting 1,000 connections): 10–20 ms per growth inside `accept4`,
//! during which the accepting worker ran none of its goroutines; the connections accepted
//! across the 256, 512 and 1,024 boundaries started 25 ms late, and their first requests
//! with them. A single-threaded process (the C loop, tokio's current-thread runtime on the
//! main thread) skips the wait.
//!
//! So `Runtime::build` grows the table to its expected size before it starts any thread: it
//! duplicates a descriptor to the lowest free number at or above that size and closes the copy
//! at once. If the process is still single-threaded then, as a program that builds its runtime
//! first in `main` is, the growth costs no grace period at all; otherwise one, instead of one
//! per doubling while connections arrive. A table never shrinks.
//!
//! Cost: eight bytes of kernel memory per slot (128 KiB for the default 16,384) for the life of
//! the process. The size is capped at the soft `RLIMIT_NOFILE`, past which no descriptor can
//! be opened anyway (1,024 on most systems, so 8 KiB).
//!
//! Rejected: growing the table lazily from the monitor thread (the growth still takes a grace
//! period, and a worker's `accept` that needs a slot meanwhile waits for the resize to end);
//! raising the soft limit to the hard one as Go does at start-up (a process-wide setting a
//! library should not change behind its user's back; `gorust load` does it for itself).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::syscall;

/// The soft `RLIMIT_NOFILE`: one more than the highest descriptor number the process may
/// open.
pub(crate) fn open_files_limit() -> io::Result<usize> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live rlimit for the kernel to fill.
    syscall!(getrlimit(libc::RLIMIT_NOFILE, &mut lim))?;
    Ok(usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX))
}

/// Grows the descriptor table to at least `slots` slots, or to the soft limit if that is lower.
/// Returns the number of slots asked of the kernel (0: nothing to do). Opens no descriptor that
/// outlives the call.
pub(crate) fn reserve(slots: usize) -> io::Result<usize> {
    let slots = slots.min(open_files_limit()?);
    // The table starts with 64 slots; asking for fewer is a no-op.
    if slots <= 64 {
        return Ok(0);
    }
    // Any open descriptor can be duplicated; an eventfd is the cheapest to make.
    let probe = syscall!(eventfd(0, libc::EFD_CLOEXEC))?;
    // SAFETY: `eventfd` just returned this descriptor and nothing else owns it.
    let probe = unsafe { OwnedFd::from_raw_fd(probe) };
    let highest = libc::c_int::try_from(slots - 1).unwrap_or(libc::c_int::MAX);
    // SAFETY: `F_DUPFD_CLOEXEC` on a descriptor we own; it returns a new descriptor numbered at
    // least `highest`, which fits only if the table holds `slots` slots.
    let copy = syscall!(fcntl(probe.as_raw_fd(), libc::F_DUPFD_CLOEXEC, highest))?;
    // SAFETY: `fcntl` just returned this descriptor and nothing else owns it.
    drop(unsafe { OwnedFd::from_raw_fd(copy) });
    Ok(slots)
}

/// The size of the descriptor table (`FDSize` in `/proc/self/status`), for tests.
#[cfg(test)]
pub(crate) fn table_size() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("FDSize:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_what_was_reserved_and_no_descriptor_is_left_open() {
        let limit = open_files_limit().unwrap();
        let want = 2048.min(limit);
        let asked = reserve(want).unwrap();
        assert_eq!(asked, want);
        assert!(table_size() >= want, "FDSize {} < {want}", table_size());
        // The copy was closed: its number is free again.
        // SAFETY: F_GETFD only reads the flags of a descriptor number.
        let r = unsafe { libc::fcntl(libc::c_int::try_from(want - 1).unwrap(), libc::F_GETFD) };
        assert_eq!(r, -1);
        assert_eq!(io::Error::last_os_error().raw_os_error(), Some(libc::EBADF));
    }

    #[test]
    fn a_reservation_past_the_limit_stops_at_the_limit() {
        let limit = open_files_limit().unwrap();
        assert_eq!(reserve(usize::MAX).unwrap(), limit);
        assert!(table_size() >= limit);
    }

    #[test]
    fn a_small_reservation_does_nothing() {
        assert_eq!(reserve(0).unwrap(), 0);
        assert_eq!(reserve(64).unwrap(), 0);
    }
}
