//! One timer: a deadline and the waker to call when it passes.
//!
//! States: `PENDING` → `FIRED` (by whoever fires the heap when the deadline passes: its worker,
//! the monitor for a stuck worker, or the fallback thread) or
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

    /// Replaces the waker if the task polling the `Sleep` changed, and returns `true`; or
    /// returns `false` if the timer fired meanwhile (the `Sleep` is then ready). The state is
    /// read under the lock that `fire` takes the waker under after its exchange: if `fire`
    /// took the old waker first, this sees `FIRED`; if not, `fire` finds the new one. (Read
    /// before the lock, a `fire` between the read and the store woke the old waker only, and
    /// a `Sleep` polled again with a new one, by a new `block_on` say, slept on; review,
    /// session 19, model `loom_timer_new_waker_races_fire`.)
    pub(crate) fn set_waker(&self, waker: &Waker) -> bool {
        let mut w = crate::loom::lock(&self.waker);
        if self.state.load(Acquire) != PENDING {
            return false;
        }
        match &*w {
            Some(old) if old.will_wake(waker) => {}
            _ => *w = Some(waker.clone()),
        }
        true
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
        drop(self.cancel_for_waker());
    }

    /// Cancels a pending timer and hands back its waker (for a re-armed timer to keep); `None`
    /// if the timer had fired or been cancelled already.
    pub(crate) fn cancel_for_waker(&self) -> Option<Waker> {
        self.state
            .compare_exchange(PENDING, CANCELLED, AcqRel, Acquire)
            .ok()
            .and_then(|_| crate::loom::lock(&self.waker).take())
    }
}

/// Loom model of a `Sleep` polled with a new waker while its timer fires on another thread
/// (run with the other models: `RUSTFLAGS="--cfg loom" cargo test -p gorust --lib --release
/// loom_`).
#[cfg(all(test, loom))]
mod loom_tests {
    use super::TimerEntry;
    use crate::test_util::counting_waker;
    use loom::sync::atomic::Ordering::SeqCst;
    use loom::sync::Arc;
    use loom::thread;

    /// As `Sleep::poll` does with an entry it registered before: not fired yet, so it sets the
    /// poll's waker and is pending, or it sees the timer fired and is ready. Pending, the new
    /// waker must be the one woken. Fails with the state read before the lock.
    #[test]
    fn loom_timer_new_waker_races_fire() {
        loom::model(|| {
            let (first, w1) = counting_waker();
            let entry = Arc::new(TimerEntry::new(w1));
            let owner = {
                let entry = entry.clone();
                thread::spawn(move || {
                    if let Some(w) = entry.fire() {
                        w.wake();
                    }
                })
            };
            let (second, w2) = counting_waker();
            let pending = !entry.is_fired() && entry.set_waker(&w2);
            owner.join().unwrap();
            if pending {
                assert_eq!(second.0.load(SeqCst), 1, "the new waker was never woken");
                assert_eq!(first.0.load(SeqCst), 0);
            } else {
                assert!(entry.is_fired());
            }
        });
    }
}
