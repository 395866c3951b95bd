//! One timer: a deadline and the waker to call when it passes.
//!
//! States: `PENDING` → `FIRED` (by the heap's owner when the deadline passes) or
//! `PENDING` → `CANCELLED` (by the `Sleep` being dropped or reset, on any thread). Whichever
//! CAS wins decides; the heap drops cancelled entries lazily and compacts when they pile up.
//! The waker sits behind a small mutex because a `Sleep` future may be polled on one worker
//! while its entry lives in another's heap.

use std::task::Waker;

use crate::loom::sync::atomic::{AtomicU8, Ordering::*};
use crate::loom::sync::Mutex;

const PENDING: u8 = 0;
const FIRED: u8 = 1;
const CANCELLED: u8 = 2;

pub(crate) struct TimerEntry {
    state: AtomicU8,
    waker: Mutex<Option<Waker>>,
}

impl TimerEntry {
    pub(crate) fn new(waker: Waker) -> TimerEntry {
        TimerEntry {
            state: AtomicU8::new(PENDING),
            waker: Mutex::new(Some(waker)),
        }
    }

    pub(crate) fn is_fired(&self) -> bool {
        self.state.load(Acquire) == FIRED
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.state.load(Acquire) == CANCELLED
    }

    /// Replaces the waker if the task polling the `Sleep` changed.
    pub(crate) fn set_waker(&self, waker: &Waker) {
        let mut w = crate::loom::lock(&self.waker);
        match &*w {
            Some(old) if old.will_wake(waker) => {}
            _ => *w = Some(waker.clone()),
        }
    }

    /// Fires the timer; returns the waker to call (outside any lock).
    pub(crate) fn fire(&self) -> Option<Waker> {
        if self
            .state
            .compare_exchange(PENDING, FIRED, AcqRel, Acquire)
            .is_ok()
        {
            crate::loom::lock(&self.waker).take()
        } else {
            None
        }
    }

    pub(crate) fn cancel(&self) {
        if self
            .state
            .compare_exchange(PENDING, CANCELLED, AcqRel, Acquire)
            .is_ok()
        {
            let w = crate::loom::lock(&self.waker).take();
            drop(w);
        }
    }
}
