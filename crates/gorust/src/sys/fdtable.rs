//! The process's descriptor table, grown once when a runtime starts.
//!
//! Linux keeps a process's open descriptors in one table that it grows by doubling when a new
//! descriptor does not fit (64 slots built in on 64-bit, then 128, 256, …). In a process with
//! more than one thread sharing the table (a gorust process: the workers, the monitor until it
//! leaves, see `leave_shared_table`, and the caller of `run` unless it serves worker 0),
//! each growth first waits for an RCU grace period (`expand_fdtable` calls `synchronize_rcu`,
//! so that every `fd_install` in flight has either finished or seen the resize in progress),
//! and the thread that needed the room sleeps uninterruptibly meanwhile. Measured here
//! (`sched_switch` with call chains, an echo server accepting 1,000 connections): 10–20 ms per
//! growth inside `accept4`, during which the accepting worker ran none of its goroutines; the
//! connections accepted across the 256, 512 and 1,024 boundaries started 25 ms late, and
//! their first requests with them. A single-threaded process (the C loop, tokio's
//! current-thread runtime on the main thread) skips the wait.
//!
//! So `Runtime::build` grows the table to its expected size before it starts any thread: it
//! duplicates a descriptor to the lowest free number at or above that size and closes the copy
//! at once. If the process is still single-threaded then, as a program that builds its runtime
//! first in `main` is, the growth costs no grace period at all; otherwise one, spent by the
//! thread that calls `build`, instead of one per doubling while connections arrive. A table
//! never shrinks, and a forked child's is sized by its own highest open descriptor.
//!
//! Cost: the kernel rounds the table up to a power of two and keeps it for the life of the
//! process, at eight bytes per slot plus two bits of bitmaps (about 132 KiB for the default
//! 16,384, charged to the process's cgroup). The size asked for is capped at the soft
//! `RLIMIT_NOFILE`, past which no descriptor can be opened anyway (1,024 on most systems, so
//! 8 KiB); a limit raised after `build` is not seen.
//!
//! Rejected: growing the table lazily from the monitor thread (the growth still takes a grace
//! period, and a worker's `accept` that needs a slot beyond the current table meanwhile waits
//! for the resize to end); raising the soft limit to the hard one as Go does at start-up (a
//! process-wide setting a library should not change behind its user's back; the CLI's
//! `load` and `serve` do it for themselves, `gorust-cli/src/sys.rs`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::syscall;

/// Slots the kernel's table holds before any growth (`NR_OPEN_DEFAULT`, one word of bits).
const BUILT_IN_SLOTS: usize = usize::BITS as usize;

/// The soft `RLIMIT_NOFILE`: one more than the highest descriptor number the process may
/// open.
fn open_files_limit() -> io::Result<usize> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live rlimit for the kernel to fill.
    syscall!(getrlimit(libc::RLIMIT_NOFILE, &mut lim))?;
    Ok(usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX))
}

/// How many slots to ask for: `slots`, capped at the soft limit; 0 when the built-in table
/// already holds that many.
fn target(slots: usize, limit: usize) -> usize {
    let slots = slots.min(limit);
    if slots <= BUILT_IN_SLOTS {
        0
    } else {
        slots
    }
}

/// Grows the descriptor table to at least `slots` slots, or to the soft limit if that is lower.
/// Opens no descriptor that outlives the call.
///
/// Errors: the OS error of `eventfd` or `fcntl`, in practice `EMFILE` when every number from
/// the target up is taken, or `ENOMEM`. The table is then left to grow on demand.
pub(crate) fn reserve(slots: usize) -> io::Result<()> {
    let slots = target(slots, open_files_limit()?);
    if slots == 0 {
        return Ok(());
    }
    // Any open descriptor can be duplicated; an eventfd is the cheapest to make.
    let probe = syscall!(eventfd(0, libc::EFD_CLOEXEC))?;
    // SAFETY: `eventfd` just returned this descriptor and nothing else owns it.
    let probe = unsafe { OwnedFd::from_raw_fd(probe) };
    let highest = libc::c_int::try_from(slots - 1).unwrap_or(libc::c_int::MAX);
    // SAFETY: `F_DUPFD_CLOEXEC` only allocates a free number at or above `highest`; unlike
    // `dup2` it never closes or replaces an open descriptor, and it touches no memory of ours.
    let copy = syscall!(fcntl(probe.as_raw_fd(), libc::F_DUPFD_CLOEXEC, highest))?;
    // SAFETY: `fcntl` just returned this descriptor and nothing else owns it.
    drop(unsafe { OwnedFd::from_raw_fd(copy) });
    Ok(())
}

/// Gives the calling thread a descriptor table of its own that holds only `keep` (Linux's
/// `close_range` with `CLOSE_RANGE_UNSHARE`, then without it for the gaps between the kept
/// numbers). For the monitor thread of a one-worker runtime (`sched/sysmon.rs`): the kernel
/// counts a reference on every descriptor a system call uses, except where one thread alone
/// uses the table.
///
/// The copy is of the table at the time of the call, so the thread must never use a descriptor
/// number other than `keep`'s afterwards: another thread's later `open` does not appear here,
/// and a number closed and reused there still names the old file here (closed below, so a
/// stray call fails with `EBADF` instead). Keeping no other copy also keeps this thread from
/// holding a file open that the process closes (a socket would never send its FIN); between
/// the two steps it holds them for a moment, so such a file may be released here instead.
///
/// Errors: `ENOSYS` (a kernel before 5.9), `InvalidInput` (with `keep` empty), `ENOMEM`, or
/// a filter's refusal; the thread then still shares the process's table and nothing changed.
/// A later step cannot fail on a valid range; if one did, this aborts rather than leave the
/// thread holding files the process closes.
pub(crate) fn leave_shared_table(keep: &[RawFd]) -> io::Result<()> {
    let mut keep: Vec<u32> = keep.iter().map(|&fd| fd as u32).collect();
    keep.sort_unstable();
    keep.dedup();
    let Some(&highest) = keep.last() else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    if highest == u32::MAX {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // Everything above the highest kept number, unsharing first: the one step that may fail,
    // and then leaves the table shared.
    // SAFETY: unsharing first, the range is closed in the new private copy (see `close_range`).
    unsafe { close_range(highest + 1, u32::MAX, libc::CLOSE_RANGE_UNSHARE) }?;
    let mut from = 0;
    for k in keep {
        if k > from {
            // SAFETY: the table is this thread's private copy now.
            if unsafe { close_range(from, k - 1, 0) }.is_err() {
                // No message: this table's standard error, if any, is not the process's.
                std::process::abort();
            }
        }
        from = k + 1;
    }
    Ok(())
}

/// # Safety
///
/// The range must be closed in a table of the calling thread's own (`flags` with
/// `CLOSE_RANGE_UNSHARE`, or after a call that had it), whose entries no `OwnedFd` or other
/// object owns: the process's objects use the shared table. In the shared table this would
/// close descriptors that others own.
unsafe fn close_range(first: u32, last: u32, flags: libc::c_uint) -> io::Result<()> {
    // Passed as `c_long`: `syscall` is variadic and reads each argument as a full register,
    // whose upper half a narrower value leaves unspecified.
    let (first, last, flags) = (
        first as libc::c_long,
        last as libc::c_long,
        flags as libc::c_long,
    );
    // SAFETY: `close_range` touches no memory; the caller vouches for the table.
    syscall!(syscall(libc::SYS_close_range, first, last, flags)).map(drop)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    // What the reservation does to the process's table is tested in a child process of its
    // own (`tests/runtime.rs`): this process's table is shared with every other test here and
    // never shrinks.

    #[test]
    fn the_target_is_capped_at_the_limit() {
        assert_eq!(target(16_384, 20_000), 16_384);
        assert_eq!(target(16_384, 1_024), 1_024);
        assert_eq!(target(usize::MAX, 1_048_576), 1_048_576);
    }

    #[test]
    fn nothing_is_asked_that_the_built_in_table_holds() {
        assert_eq!(target(0, 20_000), 0);
        assert_eq!(target(BUILT_IN_SLOTS, 20_000), 0);
        assert_eq!(target(16_384, BUILT_IN_SLOTS), 0);
        assert_eq!(target(BUILT_IN_SLOTS + 1, 20_000), BUILT_IN_SLOTS + 1);
    }

    /// A thread that leaves the table keeps what it asked for and loses the rest, and the
    /// process's table is untouched; a descriptor opened afterwards is not in the copy.
    #[test]
    fn a_thread_leaves_the_table_with_only_what_it_keeps() {
        let open = || {
            let fd = syscall!(eventfd(0, libc::EFD_CLOEXEC)).unwrap();
            // SAFETY: just returned, owned by nobody else.
            unsafe { OwnedFd::from_raw_fd(fd) }
        };
        let valid = |fd: RawFd| syscall!(fcntl(fd, libc::F_GETFD)).is_ok();
        if !leaving_is_supported() {
            // `.ci/run` sets GORUST_NO_SKIP: its machine can, so a skip there hides a failure.
            assert!(
                std::env::var_os("GORUST_NO_SKIP").is_none(),
                "this kernel (or a filter) refuses close_range's unsharing"
            );
            eprintln!("skipped: this kernel (or a filter) refuses close_range's unsharing");
            return;
        }
        let (kept, dropped) = (open(), open());
        let (k, d) = (kept.as_raw_fd(), dropped.as_raw_fd());
        let (go_on, told) = std::sync::mpsc::channel::<RawFd>();
        let t = std::thread::spawn(move || {
            leave_shared_table(&[k]).unwrap();
            let here = (valid(k), valid(d));
            let later = told.recv().unwrap();
            (here, valid(later))
        });
        let later = open();
        go_on.send(later.as_raw_fd()).unwrap();
        let ((k_there, d_there), later_there) = t.join().unwrap();
        assert!(k_there, "the kept descriptor is gone");
        assert!(!d_there, "a descriptor not kept is still in the copy");
        assert!(!later_there, "a later descriptor in the copy");
        assert!(valid(k) && valid(d), "the process's table changed");
    }

    /// Whether a thread may leave the table here (a kernel from 5.9, no filter refusing it):
    /// asked by a thread that leaves it, keeping nothing, and then ends.
    fn leaving_is_supported() -> bool {
        std::thread::spawn(|| {
            // SAFETY: unshares this short-lived thread's table and closes no descriptor
            // (nothing is open at the highest number).
            unsafe { close_range(u32::MAX, u32::MAX, libc::CLOSE_RANGE_UNSHARE) }.is_ok()
        })
        .join()
        .unwrap()
    }

    #[test]
    fn the_limit_is_read() {
        assert!(open_files_limit().unwrap() >= 3, "stdin, stdout, stderr");
    }
}
