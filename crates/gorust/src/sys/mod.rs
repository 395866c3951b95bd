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
//! | `memory::*` | reserve, guard (`MADV_GUARD_INSTALL`, else `mprotect`) and release stack memory; map chunks for task cells |
//! | `socket::*` | the hot-path socket calls: `read`, `readv`, `peek`, `recv`, `recvmsg` with `TCP_INQ` (`enable_inq`, `recv_inq`: the bytes left queued after a read), `send`/`sendmsg` with `MSG_NOSIGNAL` (the four made directly through `syscall(2)`: `raw_syscall`), `accept4` non-blocking and close-on-exec, `poll(2)` on one descriptor for plain threads |
//! | `signal::*` | the `SIGSEGV`/`SIGBUS` handler chain and per-thread alternate stacks |
//! | `set_precise_timers()` | 1 ns timer slack for the calling thread |
//! | `uio::readv` / `uio::writev` | one vectored read or write on any descriptor; `EINTR` retried, no `SIGPIPE` on sockets |
//!
//! Only Linux is implemented (one file per item above); a kqueue backend would add one file per
//! type behind the same names. Everything else in the crate calls these safe wrappers;
//! raw `libc` calls outside `sys` are a review error.

pub(crate) mod epoll;
pub(crate) mod eventfd;
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

/// Makes system call `nr` with six arguments, without glibc's wrapper, and turns a `-1` return
/// into `io::Error::last_os_error()`. For the socket calls of the hot path: glibc's `send`,
/// `recv`, `sendmsg` and `recvmsg` are pthread cancellation points, and in a process with more
/// than one thread (every gorust process: workers and the monitor) each call brackets the system
/// call with `__pthread_enable_asynccancel`/`__pthread_disable_asynccancel`. gorust never
/// cancels threads, so that work buys nothing (about 3% of the echo server's user time, perf).
///
/// Every argument is a `c_long` (pointers cast with `as`), as the kernel reads them: a
/// narrower integer passed through `syscall(2)`'s varargs would leave the upper half undefined.
///
/// # Safety
///
/// The arguments must satisfy system call `nr`'s contract (live, large enough buffers; unused
/// trailing arguments 0).
pub(crate) unsafe fn raw_syscall(
    nr: libc::c_long,
    a: [libc::c_long; 6],
) -> std::io::Result<libc::c_long> {
    // SAFETY: forwarded from the caller.
    let res = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if res == -1 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(res)
    }
}

/// Asks the kernel to fire this thread's timers (the `epoll_pwait2` timeout) with 1 ns of slack
/// instead of the default 50 µs, so sub-millisecond sleeps end close to their deadline.
pub(crate) fn set_precise_timers() {
    // SAFETY: PR_SET_TIMERSLACK takes an integer argument and affects only this thread.
    let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
}
