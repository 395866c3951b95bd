//! epoll(7): a readiness queue per worker.

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
            // timespec, and a null sigmask leaves the mask unchanged.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    self.fd.as_raw_fd(),
                    ptr,
                    cap,
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
    fn sub_millisecond_timeout_is_honoured() {
        let ep = Epoll::new().unwrap();
        let mut ev = Events::with_capacity(1);
        let t = std::time::Instant::now();
        ep.wait(&mut ev, Some(Duration::from_micros(200))).unwrap();
        let took = t.elapsed();
        assert!(took >= Duration::from_micros(200), "woke early: {took:?}");
    }
}
