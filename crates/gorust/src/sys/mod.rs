//! The operating-system contract: every system call the runtime makes goes through this module.
//!
//! A backend provides:
//!
//! | item | what it must do |
//! |---|---|
//! | `Epoll::new()` | a close-on-exec readiness queue |
//! | `Epoll::add(fd, interest, token)` | register `fd`; `token` comes back in each event |
//! | `Epoll::modify` / `delete` | change a registration's interest (level-triggered, event loop) / remove it |
//! | `Epoll::wait(events, timeout)` | block until an event or the timeout; `None` waits forever; timeouts below a millisecond are honoured (`epoll_pwait2`), or rounded *up* where the kernel lacks it; `EINTR` returns zero events |
//! | `EventFd::new()` / `notify()` / `drain()` | a counter that makes the queue readable; `notify` is safe from any thread |
//! | `fdtable::reserve(slots)` | grow the process's descriptor table up front (capped at the soft `RLIMIT_NOFILE`), opening no descriptor that outlives the call |
//! | `memory::*` | reserve, guard (`MADV_GUARD_INSTALL`, else `mprotect`), release and unreserve stack memory; map chunks for task cells |
//! | `socket::*` | the hot-path socket calls: `read`, `readv`, `peek`, `recv`, `write`/`writev` (`sendto`/`sendmsg` with `MSG_NOSIGNAL`; `recv`, `write` and `writev` made directly, with no glibc wrapper: `raw_syscall`, the `syscall` instruction inline on x86-64), `accept4` non-blocking and close-on-exec, `poll(2)` on one descriptor for plain threads |
//! | `signal::*` | the `SIGSEGV`/`SIGBUS` handler chain and per-thread alternate stacks |
//! | `set_precise_timers()` | 1 ns timer slack for the calling thread, until the guard drops |
//! | `uio::readv` / `uio::writev` | one vectored read or write on any descriptor; `EINTR` retried, no `SIGPIPE` on sockets |
//!
//! Only Linux is implemented (one file per item above); a kqueue backend would add one file per
//! type behind the same names. Everything else in the crate calls these safe wrappers;
//! raw `libc` calls outside `sys` are a review error.

pub(crate) mod epoll;
pub(crate) mod eventfd;
pub(crate) mod fdtable;
pub(crate) mod memory;
pub(crate) mod signal;
pub(crate) mod socket;
pub(crate) mod uio;

/// Runs a libc call and turns a `-1` return into `io::Error::last_os_error()`.
macro_rules! syscall {
    ($fn: ident ( $($arg: expr),* $(,)* ) ) => {{
        // SAFETY: every use passes arguments that satisfy the call's contract; the caller's own
        // SAFETY comment states why.
        let res = unsafe { libc::$fn($($arg, )*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}
pub(crate) use syscall;

/// Makes system call `nr` with six arguments, without glibc's wrapper, and turns an error
/// return into an `io::Error`. For the socket calls of the hot path: glibc's `send`, `recv`,
/// `sendmsg` and `recvmsg` are pthread cancellation points, and in a process with more than
/// one thread (every gorust process: workers and the monitor) each call brackets the system
/// call with `__pthread_enable_asynccancel`/`__pthread_disable_asynccancel`. gorust never
/// cancels threads, so that work buys nothing (about 3% of the echo server's user time, perf).
///
/// On x86-64 the `syscall` instruction is issued inline (the kernel's calling convention:
/// number in `rax`, arguments in `rdi rsi rdx r10 r8 r9`, result or `-errno` in `rax`, `rcx`
/// and `r11` clobbered, the user stack untouched). Through `syscall(2)` each call was a call
/// into glibc, whose return address is one more line of the calling goroutine's stack to bring
/// in at every call, plus the `errno` round trip (echo model at 1,000 connections: see
/// ARCHITECTURE's costs table). Elsewhere it goes through `syscall(2)`.
///
/// Every argument is a `c_long` (pointers cast with `as`), as the kernel reads them: a
/// narrower integer passed through `syscall(2)`'s varargs would leave the upper half undefined.
///
/// # Safety
///
/// The arguments must satisfy system call `nr`'s contract (live, large enough buffers; unused
/// trailing arguments 0).
#[inline(always)]
pub(crate) unsafe fn raw_syscall(
    nr: libc::c_long,
    a: [libc::c_long; 6],
) -> std::io::Result<libc::c_long> {
    #[cfg(target_arch = "x86_64")]
    {
        let res: libc::c_long;
        // SAFETY: forwarded from the caller (the kernel only reads and writes what the
        // arguments describe); the asm clobbers exactly what the instruction does: `rax`
        // (the result), `rcx` and `r11`. The kernel does not touch the user stack (`nostack`).
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") nr => res,
                in("rdi") a[0],
                in("rsi") a[1],
                in("rdx") a[2],
                in("r10") a[3],
                in("r8") a[4],
                in("r9") a[5],
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        // The kernel returns -4095..=-1 for an error, the negated errno.
        if (-4095..0).contains(&res) {
            Err(std::io::Error::from_raw_os_error(-res as i32))
        } else {
            Ok(res)
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: forwarded from the caller.
        let res = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }
}

/// Asks the kernel to fire this thread's timers (the `epoll_pwait2` timeout) with 1 ns of slack
/// instead of the default 50 µs, so sub-millisecond sleeps end close to their deadline, until
/// the guard drops: then the thread's previous slack is back (a worker may run on a thread
/// that goes on with other work, `Runtime::run`).
pub(crate) fn set_precise_timers() -> TimerSlack {
    // SAFETY: PR_GET_TIMERSLACK takes no argument and returns this thread's slack.
    let old = unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) };
    // SAFETY: PR_SET_TIMERSLACK takes an integer argument and affects only this thread.
    let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    TimerSlack(old)
}

/// Gives this thread the kernel's usual timer slack (50 µs). A thread inherits its creator's
/// slack, as its current and its default value, so a thread started from a worker (a
/// blocking-pool thread) kept the worker's 1 ns for life, and every sleep and timeout on it
/// lost the kernel's coalescing (review, session 28).
pub(crate) fn set_usual_timers() {
    // SAFETY: PR_SET_TIMERSLACK takes an integer argument and affects only this thread.
    let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, USUAL_SLACK_NS, 0, 0, 0) };
}

/// The kernel's default timer slack for a thread started by `init`.
const USUAL_SLACK_NS: libc::c_ulong = 50_000;

/// The slack [`set_precise_timers`] replaced.
pub(crate) struct TimerSlack(libc::c_int);

impl Drop for TimerSlack {
    fn drop(&mut self) {
        if self.0 > 0 {
            // SAFETY: as in `set_precise_timers`; the value came from PR_GET_TIMERSLACK.
            let _ =
                unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, self.0 as libc::c_ulong, 0, 0, 0) };
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::raw_syscall;
    use std::os::fd::AsRawFd;

    #[test]
    fn raw_syscall_returns_counts_and_negated_errnos() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let msg = b"ping";
        // fd, buffer, length, flags, and no address (sendto/recvfrom).
        let args = |fd: i32, ptr: usize, len: usize, flags: i32| {
            [
                fd as libc::c_long,
                ptr as libc::c_long,
                len as libc::c_long,
                flags as libc::c_long,
                0,
                0,
            ]
        };
        let send = args(
            a.as_raw_fd(),
            msg.as_ptr() as usize,
            msg.len(),
            libc::MSG_NOSIGNAL,
        );
        // SAFETY: a live socket and a live buffer of the given length; no address.
        assert_eq!(unsafe { raw_syscall(libc::SYS_sendto, send) }.unwrap(), 4);
        let mut buf = [0u8; 8];
        let recv = args(
            b.as_raw_fd(),
            buf.as_mut_ptr() as usize,
            buf.len(),
            libc::MSG_DONTWAIT,
        );
        // SAFETY: as above, `buf` writable for its length.
        assert_eq!(unsafe { raw_syscall(libc::SYS_recvfrom, recv) }.unwrap(), 4);
        assert_eq!(&buf[..4], msg);
        // Nothing queued: EAGAIN comes back as the error, not as a count.
        // SAFETY: as above.
        let e = unsafe { raw_syscall(libc::SYS_recvfrom, recv) }.unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EAGAIN));
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
        // A descriptor that is not open: EBADF.
        let mut bad = recv;
        bad[0] = -1;
        // SAFETY: the kernel rejects the descriptor before touching the buffer.
        let e = unsafe { raw_syscall(libc::SYS_recvfrom, bad) }.unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF));
        // A peer that went away: EPIPE, with no SIGPIPE (MSG_NOSIGNAL).
        drop(b);
        // SAFETY: as for the first send.
        let e = unsafe { raw_syscall(libc::SYS_sendto, send) }.unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPIPE));
    }
}
