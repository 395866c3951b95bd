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
//! - The eventfd is level-triggered and drained whenever its event is seen (by the worker's
//!   dispatch of the poller's events), so a write that lands after the sleeper already woke (by
//!   timeout) costs one spurious, harmless wake-up.
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

pub(crate) struct Parker {
    state: AtomicU8,
    driver: Driver,
}

impl Parker {
    #[cfg(not(loom))]
    pub(crate) fn new(poller: std::sync::Arc<crate::netpoll::Poller>) -> Parker {
        Parker {
            state: AtomicU8::new(EMPTY),
            driver: Driver { poller },
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Parker {
        Parker {
            state: AtomicU8::new(EMPTY),
            driver: Driver::new(),
        }
    }

    /// Sleeps until `unpark` or the timeout (`None`: no timeout). May return spuriously.
    /// `scratch` holds the events of this park's own wait afterwards, none if it returned
    /// without waiting. (It kept the last wait's, a non-blocking poll's say, and the worker
    /// dispatched those a second time: spurious wake-ups, an `EAGAIN` read each, and a stale
    /// hang-up's final flag set again; review, session 20.)
    pub(crate) fn park(&self, timeout: Option<Duration>, scratch: &mut Scratch) {
        scratch.events.clear();
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

pub(crate) struct Scratch {
    pub(crate) events: crate::sys::epoll::Events,
}

impl Scratch {
    pub(crate) fn new() -> Scratch {
        Scratch {
            events: crate::sys::epoll::Events::with_capacity(256),
        }
    }

    /// A placeholder while the real one is lent out.
    pub(crate) fn empty() -> Scratch {
        Scratch {
            events: crate::sys::epoll::Events::with_capacity(0),
        }
    }
}

/// The worker's poller: parking is `epoll_pwait2` on it; the events it returns are left in
/// `Scratch` for the worker to dispatch.
#[cfg(not(loom))]
struct Driver {
    poller: std::sync::Arc<crate::netpoll::Poller>,
}

#[cfg(not(loom))]
impl Driver {
    fn wait(&self, timeout: Option<Duration>, scratch: &mut Scratch) {
        self.poller.wait(&mut scratch.events, timeout);
    }

    fn notify(&self) {
        self.poller.notify();
    }
}

#[cfg(loom)]
struct Driver {
    flag: crate::loom::sync::Mutex<bool>,
    cond: crate::loom::sync::Condvar,
}

#[cfg(loom)]
impl Driver {
    fn new() -> Driver {
        Driver {
            flag: crate::loom::sync::Mutex::new(false),
            cond: crate::loom::sync::Condvar::new(),
        }
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::netpoll::Poller;
    use std::sync::Arc;

    #[test]
    fn a_park_that_does_not_wait_leaves_no_events_of_an_earlier_poll() {
        let poller = Arc::new(Poller::new().unwrap());
        let parker = Parker::new(poller.clone());
        let mut scratch = Scratch::new();
        poller.notify();
        poller.wait(&mut scratch.events, Some(Duration::ZERO));
        assert!(!scratch.events.is_empty(), "the wake-up line's event");
        parker.unpark();
        parker.park(None, &mut scratch); // notified: returns at once
        assert!(
            scratch.events.is_empty(),
            "an earlier poll's events, to dispatch again"
        );
    }
}
