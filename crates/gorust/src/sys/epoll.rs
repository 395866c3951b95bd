//! epoll(7): a readiness queue per worker.
//!
//! Each worker's `Poller` (`netpoll/poller.rs`) owns one `Epoll`. The worker parks in it, and
//! the netpoller and the event loop register descriptors on it. This file holds the system
//! calls and decodes their flags. The `u64` token in each event is the caller's choice: a slab
//! index and a generation (`netpoll/poller.rs`), never a pointer.
//!
//! Registrations, by kind and by user:
//! - Edge-triggered, `EDGE_ALL` (`EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLPRI|EPOLLET`): the
//!   netpoller's descriptors, which are `gorust::net`'s sockets used by goroutines and futures.
//!   `Poller::register` adds each one once, when a wait first needs it, and it is never
//!   modified. An I/O call tries its system call first and waits only after `EAGAIN`, so there
//!   is no `epoll_ctl` per wait.
//! - Level-triggered, `READABLE`: the poller's own wake-up eventfd (`Poller::new`). Only the
//!   owning worker drains it. When the monitor sees its event and leaves it undrained, it stays
//!   readable, and the worker's next wait returns at once instead of sleeping through it.
//! - Level-triggered, `READABLE`/`WRITABLE`/`NONE`/`HUSHED`, switched with `modify`: event-loop
//!   connections (`eventloop/conn.rs`). Read interest is turned off under back-pressure, and
//!   write interest is on only while output is pending; a hung-up connection that wants
//!   nothing is `HUSHED`. Each is added once and changed only with `modify`, which cannot
//!   fail for lack of memory. `eventloop/mod.rs` explains why these are not edge-triggered.
//!
//! Waiting (`Epoll::wait`): `None` blocks until an event arrives, and `Some(ZERO)` only polls. Any
//! other timeout bounds the wait to the nanosecond through `epoll_pwait2` (Linux 5.11), so a worker
//! parked until its next timer is not woken up to a millisecond late by rounding. The seconds
//! saturate at `time_t`'s bound. Where `time_t` is 32 bits, a deadline decades away used to wrap
//! negative, and the kernel's `EINVAL` aborted the poller (review, session 31).
//!
//! Callers of `wait`:
//! - the worker's parker, which blocks, bounded by the worker's earliest timer if it has one;
//! - the worker's non-blocking polls, made every `event_interval` ticks while it is busy and
//!   when it runs out of local work;
//! - the monitor's non-blocking poll of a stuck worker's epoll.
//!
//! The monitor's poll may run while that worker is about to block in the same epoll. `Epoll`
//! holds only the descriptor and each caller passes its own `Events` buffer, so `wait` takes
//! `&self`.
//!
//! States of the process-wide `NO_PWAIT2` flag. It is clear at start. The first `wait` whose
//! `epoll_pwait2` fails with `ENOSYS` or `EPERM` sets it, for good and for every epoll in the
//! process, and retries at once on the fallback:
//! - `ENOSYS` comes from a kernel before 5.11.
//! - `EPERM` comes from a seccomp filter written before the call existed. Such a filter may
//!   refuse it with `EPERM` rather than `ENOSYS`, and some container runtimes still install one.
//!
//! The fallback is `epoll_wait`, which counts in whole milliseconds. It rounds a timeout *up*
//! (at most `i32::MAX` ms), so that a timer never fires early. Rounded down, a wait under a
//! millisecond would become a zero-timeout poll, and the worker would spin until its timer is
//! due (test `a_seccomp_filter_that_denies_epoll_pwait2_falls_back_to_epoll_wait`). The flag's
//! load and store are `Relaxed` because it guards no other data: a thread that has not seen it
//! yet makes one more failing call and sets it itself.
//!
//! Errors: `EINTR` (a signal handler ran on this thread) is not an error. The wait returns with
//! no events and is not restarted with the time left. Every caller already allows an early
//! return (the parker may return spuriously, `sched/park.rs`): the worker's loop looks at its
//! timers and queues and parks again. Any other error of `wait` means a programming error
//! (`EBADF`, `EFAULT`, `EINVAL`), and `Poller::wait` aborts on it.
//!
//! Rejected:
//! - Millisecond timeouts (`epoll_wait`) as the main path, which is how Go's netpoller waits on
//!   Linux. Rounding every timed park up to a millisecond defeats sub-millisecond sleeps
//!   (DESIGN.md 6, golang/go#44343). Millisecond timeouts remain only as the fallback above.
//! - Pointers in the event data. An event in flight for a descriptor that was closed would
//!   point at freed memory. The token carries a generation instead, and a stale one is dropped
//!   (Go's `fdseq`; DESIGN.md 4).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::syscall;

/// Readiness interest, as epoll flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Interest(u32);

impl Interest {
    /// Read readiness, level-triggered.
    pub(crate) const READABLE: Interest = Interest(libc::EPOLLIN as u32);
    /// Write readiness, level-triggered (the event loop arms it only while output is pending).
    pub(crate) const WRITABLE: Interest = Interest(libc::EPOLLOUT as u32);
    /// No readiness at all: a level-triggered registration with interest removed (the event
    /// loop's back-pressure), still reporting errors and hang-ups, which epoll always does.
    pub(crate) const NONE: Interest = Interest(0);
    /// No readiness, and errors and hang-ups reported once more at most: one-shot with an
    /// empty interest. For a hung-up event-loop connection that wants nothing, whose
    /// level-triggered `EPOLLHUP` would otherwise be reported at every wait. The next
    /// `modify` re-arms it. (Taken out with `EPOLL_CTL_DEL` instead, as before, it had to
    /// come back with `EPOLL_CTL_ADD`, which allocates and can fail with `ENOMEM` or
    /// `ENOSPC`, at `max_user_watches`: the connection then stayed out of epoll for good, its
    /// input never read and its handler never run. `EPOLL_CTL_MOD` allocates nothing.)
    pub(crate) const HUSHED: Interest = Interest(libc::EPOLLONESHOT as u32);

    /// Both interests.
    pub(crate) const fn and(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }
    /// Read, write and peer-half-close readiness, edge-triggered: registered once per
    /// descriptor for goroutine and future I/O (Go's netpoll registration), and TCP's urgent
    /// data (`EPOLLPRI`), which ends a read short with more data behind it (see
    /// [`Readiness::ends_drained_reads`]).
    pub(crate) const EDGE_ALL: Interest = Interest(
        (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLPRI | libc::EPOLLET) as u32,
    );
}

/// What an event reports, decoded from epoll's flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Readiness(u32);

impl Readiness {
    /// Wakes readers: data, a peer's FIN, hang-up or an error.
    pub(crate) fn is_readable(self) -> bool {
        self.0 & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0
    }

    /// Wakes writers: room to write, hang-up or an error.
    pub(crate) fn is_writable(self) -> bool {
        self.0 & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0
    }

    /// A read that comes up short may no longer mean the socket is drained: reads will end
    /// (the peer finished sending, `EPOLLRDHUP`, a hang-up or an error), or urgent data is
    /// queued (`EPOLLPRI`), and the kernel stops a read at the urgent mark with more data
    /// behind it. The poller gives the read slot a final
    /// edge for these (`slot.rs`), which the next `EAGAIN` clears if it was not final.
    pub(crate) fn ends_drained_reads(self) -> bool {
        self.0 & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLPRI) as u32 != 0
    }

    /// Hang-up (both directions shut, or a reset) or an error on the descriptor.
    pub(crate) fn is_hangup(self) -> bool {
        self.0 & (libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0
    }

    /// An error on the descriptor (`EPOLLERR`: a reset, a failed connect).
    pub(crate) fn is_error(self) -> bool {
        self.0 & libc::EPOLLERR as u32 != 0
    }

    /// The raw flags (for a source that accumulates readiness in an atomic word).
    pub(crate) fn bits(self) -> u32 {
        self.0
    }

    /// Readiness from flags returned by [`bits`](Self::bits).
    pub(crate) fn from_bits(bits: u32) -> Readiness {
        Readiness(bits)
    }
}

#[derive(Debug)]
pub(crate) struct Epoll {
    fd: OwnedFd,
}

impl std::os::fd::AsRawFd for Epoll {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// A buffer of events returned by [`Epoll::wait`].
pub(crate) struct Events {
    buf: Vec<libc::epoll_event>,
    len: usize,
}

impl Events {
    pub(crate) fn with_capacity(n: usize) -> Events {
        Events {
            buf: vec![libc::epoll_event { events: 0, u64: 0 }; n],
            len: 0,
        }
    }

    /// The events of the last wait, as (token, readiness).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, Readiness)> + '_ {
        self.buf[..self.len]
            .iter()
            .map(|e| (e.u64, Readiness(e.events)))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets the events of the last wait.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }
}

/// Set once `epoll_pwait2` has returned `ENOSYS` (a kernel before 5.11), or `EPERM` (a
/// seccomp filter that predates it, as older container runtimes install): later waits use
/// `epoll_wait` in milliseconds.
static NO_PWAIT2: AtomicBool = AtomicBool::new(false);

impl Epoll {
    pub(crate) fn new() -> io::Result<Epoll> {
        let fd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
        // SAFETY: `epoll_create1` just returned this descriptor and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll { fd })
    }

    pub(crate) fn add(&self, fd: RawFd, interest: Interest, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: interest.0,
            u64: token,
        };
        // SAFETY: `ev` is a live epoll_event; the kernel copies it.
        syscall!(epoll_ctl(
            self.fd.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            fd,
            &mut ev
        ))?;
        Ok(())
    }

    /// Changes the interest of a registered descriptor (level-triggered registrations of the
    /// event loop: read interest off under back-pressure, write interest on while output is
    /// pending).
    pub(crate) fn modify(&self, fd: RawFd, interest: Interest, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: interest.0,
            u64: token,
        };
        // SAFETY: `ev` is a live epoll_event; the kernel copies it.
        syscall!(epoll_ctl(
            self.fd.as_raw_fd(),
            libc::EPOLL_CTL_MOD,
            fd,
            &mut ev
        ))?;
        Ok(())
    }

    pub(crate) fn delete(&self, fd: RawFd) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: `ev` is a live epoll_event (ignored by DEL, required non-null by old kernels).
        syscall!(epoll_ctl(
            self.fd.as_raw_fd(),
            libc::EPOLL_CTL_DEL,
            fd,
            &mut ev
        ))?;
        Ok(())
    }

    /// Waits for events. `None` blocks until one arrives; `Some(ZERO)` only polls.
    pub(crate) fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        events.len = 0;
        let cap = events.buf.len() as libc::c_int;
        let ptr = events.buf.as_mut_ptr();
        let n = if !NO_PWAIT2.load(Ordering::Relaxed) {
            let ts = timeout.map(|d| libc::timespec {
                // `time_t`'s own bound: where it is 32 bits, a deadline decades away wrapped
                // negative, and the kernel's `EINVAL` aborts the poller (review, session 31).
                tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            });
            let ts_ptr = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `ptr` points at `cap` writable epoll_events, `ts_ptr` is null or a live
            // timespec, and a null sigmask leaves the mask unchanged. The integers go as
            // `c_long`: `syscall` is variadic and reads full registers.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    self.fd.as_raw_fd() as libc::c_long,
                    ptr,
                    cap as libc::c_long,
                    ts_ptr,
                    std::ptr::null::<libc::sigset_t>(),
                    0usize,
                )
            };
            if r == -1
                && matches!(
                    io::Error::last_os_error().raw_os_error(),
                    Some(libc::ENOSYS | libc::EPERM)
                )
            {
                NO_PWAIT2.store(true, Ordering::Relaxed);
                return self.wait(events, timeout);
            }
            r as libc::c_int
        } else {
            // Round up so that a timer is never fired early.
            let ms = timeout.map_or(-1, |d| {
                let ms = d.as_nanos().div_ceil(1_000_000);
                ms.min(i32::MAX as u128) as libc::c_int
            });
            // SAFETY: `ptr` points at `cap` writable epoll_events.
            unsafe { libc::epoll_wait(self.fd.as_raw_fd(), ptr, cap, ms) }
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(err);
        }
        events.len = n as usize;
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    fn tokens(ep: &Epoll) -> Vec<(u64, bool, bool)> {
        let mut ev = Events::with_capacity(8);
        ep.wait(&mut ev, Some(Duration::ZERO)).unwrap();
        ev.iter()
            .map(|(t, r)| (t, r.is_readable(), r.is_writable()))
            .collect()
    }

    #[test]
    fn level_triggered_interest_changes() {
        let ep = Epoll::new().unwrap();
        let (mut a, b) = UnixStream::pair().unwrap();
        let fd = b.as_raw_fd();
        ep.add(fd, Interest::READABLE, 7).unwrap();
        assert!(tokens(&ep).is_empty());
        a.write_all(b"x").unwrap();
        // Level-triggered: reported on every wait until the data is read.
        assert_eq!(tokens(&ep), vec![(7, true, false)]);
        assert_eq!(tokens(&ep), vec![(7, true, false)]);
        // Interest removed (back-pressure): not reported although data is waiting.
        ep.modify(fd, Interest::NONE, 7).unwrap();
        assert!(tokens(&ep).is_empty());
        // Write interest on: the socket has room.
        ep.modify(fd, Interest::WRITABLE.and(Interest::READABLE), 8)
            .unwrap();
        assert_eq!(tokens(&ep), vec![(8, true, true)]);
        ep.delete(fd).unwrap();
        assert!(tokens(&ep).is_empty());
    }

    #[test]
    fn a_hushed_hang_up_is_reported_once_until_modified() {
        let ep = Epoll::new().unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let fd = b.as_raw_fd();
        ep.add(fd, Interest::NONE, 7).unwrap();
        drop(a);
        let hangups = |ep: &Epoll| {
            let mut ev = Events::with_capacity(8);
            ep.wait(&mut ev, Some(Duration::ZERO)).unwrap();
            ev.iter().filter(|(_, r)| r.is_hangup()).count()
        };
        // Level-triggered with no interest, a hang-up is reported at every wait.
        assert_eq!(hangups(&ep), 1);
        assert_eq!(hangups(&ep), 1);
        // Hushed: once more (it was pending at the change), then never.
        ep.modify(fd, Interest::HUSHED, 7).unwrap();
        assert!(hangups(&ep) <= 1);
        assert_eq!(hangups(&ep), 0);
        assert_eq!(hangups(&ep), 0);
        // Modified back, it is reported again: still registered, and no `EPOLL_CTL_ADD`.
        ep.modify(fd, Interest::READABLE, 8).unwrap();
        let mut ev = Events::with_capacity(8);
        ep.wait(&mut ev, Some(Duration::ZERO)).unwrap();
        let got: Vec<_> = ev.iter().map(|(t, r)| (t, r.is_hangup())).collect();
        assert_eq!(got, vec![(8, true)]);
        assert_eq!(hangups(&ep), 1);
    }

    #[test]
    fn sub_millisecond_timeout_is_honoured() {
        let ep = Epoll::new().unwrap();
        let mut ev = Events::with_capacity(1);
        let t = std::time::Instant::now();
        ep.wait(&mut ev, Some(Duration::from_micros(200))).unwrap();
        let took = t.elapsed();
        assert!(took >= Duration::from_micros(200), "woke early: {took:?}");
    }
}
