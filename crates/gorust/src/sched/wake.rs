//! Waking wakers on a thread that runs no task.
//!
//! A worker between tasks (the timers it fires, the readiness its poller reports), the monitor
//! (a stuck worker's poller and timers), a poller orphaned at shutdown and the fallback timer
//! thread call wakers that anyone may have registered: a future polled with another
//! executor's waker, or with a custom one. `Waker::wake` may panic. Inside a task's poll, the
//! task's harness catches that; here nothing did, and the panic ended the thread: a worker,
//! and with it the goroutines bound to it (they never ran again, and `Runtime`'s drop found
//! their worker gone), or the monitor. It also dropped the wakers still in hand unwoken.
//!
//! Also used where a slot wakes all its waiters (a close, a shutdown, a deadline change, a
//! deadline timer firing on a worker), so that one panicking waker does not leave the others
//! asleep. The join waker a task's completion calls (and drops, when the handle has gone) is
//! caught by the harness itself.
//!
//! [`wake_all`] wakes each waker in order; a panic is left to the panic hook (which has printed
//! it), and the wakers after it are still woken. One `catch_unwind` covers the whole batch and
//! is entered again only after a panic, so the usual path is a plain loop.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::Waker;

/// Wakes every waker of `wakers`, in order, going on past any that panics (module header).
#[inline]
pub(crate) fn wake_all(wakers: impl IntoIterator<Item = Waker>) {
    let mut rest = wakers.into_iter();
    while catch_unwind(AssertUnwindSafe(|| rest.by_ref().for_each(Waker::wake))).is_err() {}
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize, bool);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
            assert!(!self.1, "this waker panics on purpose");
        }
    }

    /// Every waker is woken, in order, also after ones that panic.
    #[test]
    fn wakers_after_a_panicking_one_are_still_woken() {
        let good = Arc::new(Count(AtomicUsize::new(0), false));
        let bad = Arc::new(Count(AtomicUsize::new(0), true));
        let wakers: Vec<Waker> = [&bad, &good, &bad, &bad, &good]
            .iter()
            .map(|c| Waker::from(Arc::clone(c)))
            .collect();
        wake_all(wakers);
        assert_eq!(good.0.load(SeqCst), 2);
        assert_eq!(bad.0.load(SeqCst), 3);
        assert_eq!(Arc::strong_count(&good), 1, "every waker was consumed");
        assert_eq!(Arc::strong_count(&bad), 1, "every waker was consumed");
    }
}
