//! The parker: how an idle worker sleeps and how others wake it.
//!
//! Each worker sleeps in its own epoll instance (which the netpoller shares), with an eventfd
//! registered on it as the wake-up line. A three-state word makes a burst of wakes cost at most
//! one `write(2)`:
//!
//! ```text
//!            park: CAS EMPTY->PARKED            unpark: swap(NOTIFIED)
//!   EMPTY ───────────────────────────▶ PARKED ─────────────────────────▶ NOTIFIED
//!     ▲   (then epoll_wait)                    (and, only if the swap saw
//!     │                                         PARKED, write the eventfd)
//!     └──────────── park returns: swap(EMPTY) ◀───────────────────────────┘
//! ```
//!
//! - `unpark` before `park`: the state is NOTIFIED, `park` consumes it and returns at once.
//! - `unpark` during `park`: the swap sees PARKED and writes the eventfd, ending the wait.
//! - Many `unpark`s: only the first sees PARKED; the rest see NOTIFIED and do nothing.
//! - The eventfd is level-triggered and drained whenever its event is seen, so a write that
//!   lands after the sleeper already woke (by timeout) costs one spurious, harmless wake-up.
//!
//! Orderings: `unpark`'s swap is `AcqRel` and `park`'s final swap `AcqRel`, so whatever the
//! waker published before `unpark` (a queued task) is visible to the worker after `park`.
//!
//! Under loom the epoll driver is replaced by a mutex and condition variable with the same
//! contract ("wait until notified or timeout; spurious returns allowed").

use std::time::Duration;

use crate::loom::sync::atomic::{AtomicU8, Ordering::*};

const EMPTY: u8 = 0;
const PARKED: u8 = 1;
const NOTIFIED: u8 = 2;

/// Epoll token of the eventfd.
pub(crate) const WAKE_TOKEN: u64 = u64::MAX;

pub(crate) struct Parker {
    state: AtomicU8,
    driver: Driver,
}

impl Parker {
    pub(crate) fn new() -> std::io::Result<Parker> {
        Ok(Parker {
            state: AtomicU8::new(EMPTY),
            driver: Driver::new()?,
        })
    }

    /// Sleeps until `unpark` or the timeout (`None`: no timeout). May return spuriously.
    pub(crate) fn park(&self, timeout: Option<Duration>, scratch: &mut Scratch) {
        if self
            .state
            .compare_exchange(NOTIFIED, EMPTY, AcqRel, Acquire)
            .is_ok()
        {
            return;
        }
        if self
            .state
            .compare_exchange(EMPTY, PARKED, AcqRel, Acquire)
            .is_err()
        {
            // Notified between the two CASes.
            self.state.swap(EMPTY, AcqRel);
            return;
        }
        self.driver.wait(timeout, scratch);
        self.state.swap(EMPTY, AcqRel);
    }

    /// Wakes the parked worker, or makes its next `park` return at once.
    pub(crate) fn unpark(&self) {
        if self.state.swap(NOTIFIED, AcqRel) == PARKED {
            self.driver.notify();
        }
    }
}

#[cfg(not(loom))]
pub(crate) struct Scratch {
    events: crate::sys::epoll::Events,
}

#[cfg(not(loom))]
impl Scratch {
    pub(crate) fn new() -> Scratch {
        Scratch {
            events: crate::sys::epoll::Events::with_capacity(64),
        }
    }
}

#[cfg(not(loom))]
struct Driver {
    epoll: crate::sys::epoll::Epoll,
    wake: crate::sys::eventfd::EventFd,
}

#[cfg(not(loom))]
impl Driver {
    fn new() -> std::io::Result<Driver> {
        use std::os::fd::AsRawFd;
        let epoll = crate::sys::epoll::Epoll::new()?;
        let wake = crate::sys::eventfd::EventFd::new()?;
        epoll.add(
            wake.as_raw_fd(),
            crate::sys::epoll::Interest::READABLE,
            WAKE_TOKEN,
        )?;
        Ok(Driver { epoll, wake })
    }

    fn wait(&self, timeout: Option<Duration>, scratch: &mut Scratch) {
        if let Err(e) = self.epoll.wait(&mut scratch.events, timeout) {
            // epoll_wait fails only on a programming error (EBADF, EFAULT, EINVAL).
            eprintln!("runtime: epoll_wait failed: {e}");
            std::process::abort();
        }
        if scratch.events.tokens().any(|t| t == WAKE_TOKEN) {
            self.wake.drain();
        }
    }

    fn notify(&self) {
        self.wake.notify();
    }
}

#[cfg(loom)]
pub(crate) struct Scratch;

#[cfg(loom)]
impl Scratch {
    pub(crate) fn new() -> Scratch {
        Scratch
    }
}

#[cfg(loom)]
struct Driver {
    flag: crate::loom::sync::Mutex<bool>,
    cond: crate::loom::sync::Condvar,
}

#[cfg(loom)]
impl Driver {
    fn new() -> std::io::Result<Driver> {
        Ok(Driver {
            flag: crate::loom::sync::Mutex::new(false),
            cond: crate::loom::sync::Condvar::new(),
        })
    }

    fn wait(&self, timeout: Option<Duration>, _: &mut Scratch) {
        let mut f = self.flag.lock().unwrap();
        // A timed wait is modelled as "may return without a notification".
        if timeout.is_none() {
            while !*f {
                f = self.cond.wait(f).unwrap();
            }
        }
        *f = false;
    }

    fn notify(&self) {
        *self.flag.lock().unwrap() = true;
        self.cond.notify_one();
    }
}
