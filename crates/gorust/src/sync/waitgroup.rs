//! `WaitGroup`: Go's `sync.WaitGroup` — wait for a collection of goroutines to finish.
//!
//! ```
//! use gorust::sync::WaitGroup;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//!
//! gorust::Runtime::builder().workers(2).build().unwrap().run(|| {
//!     let wg = WaitGroup::new();
//!     let hits = Arc::new(AtomicUsize::new(0));
//!     for _ in 0..100 {
//!         wg.add(1);
//!         let (wg, hits) = (wg.clone(), hits.clone());
//!         gorust::go(move || {
//!             hits.fetch_add(1, Ordering::Relaxed);
//!             wg.done();
//!         });
//!     }
//!     wg.wait(); // parks until the hundred `done`s
//!     assert_eq!(hits.load(Ordering::Relaxed), 100);
//! });
//! ```
//!
//! Design. A counter and a list of waiters, shared through an `Arc` (so `Clone` shares the
//! group, as Go code shares a `*sync.WaitGroup`).
//!
//! - `count` is atomic: `add` and `done` touch only it, except for the `done` that brings it to
//!   zero, which takes the `waiters` lock and notifies every waiter (woken after the lock is
//!   released). `done` is an `AcqRel` read-modify-write and a waiter reads `count` with
//!   `Acquire`, so everything a goroutine did before its `done` is visible after `wait`
//!   returns (Go's guarantee).
//! - `waiters` (a `WaitList` under a `crate::loom` mutex) is touched only by `wait` futures
//!   and by the zero transition. No lost wake-up: a waiter checks `count` again *under* the
//!   lock before queuing; the zeroing `done` decrements before taking the lock, so either the
//!   waiter's check sees zero or the waiter is queued before the `done` looks.
//! - A waiter that was notified returns even if the counter has meanwhile been raised again by
//!   a new `add` (Go's behaviour: the wait was for that zero).
//! - `done` below zero panics with Go's message; the counter is left at zero.
//!
//! Rejected: a `Mutex<usize>` + list for everything (a lock per `done` on the common path);
//! a `Condvar` (blocks threads, not goroutines).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use super::on_plain_thread;
use super::waitlist::{WaitKey, WaitList};
use crate::loom::sync::atomic::{AtomicUsize, Ordering::*};
use crate::loom::sync::{Arc, Mutex};

/// Waits for a collection of goroutines (or tasks, or threads) to finish. See the module
/// docs of [`crate::sync`].
///
/// `add(n)` before starting work, `done()` when each piece finishes, `wait()` to park until
/// the counter is back at zero. Clones share one counter.
#[derive(Clone)]
pub struct WaitGroup {
    inner: Arc<Inner>,
}

struct Inner {
    count: AtomicUsize,
    waiters: Mutex<WaitList>,
}

impl Default for WaitGroup {
    fn default() -> Self {
        WaitGroup::new()
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .finish()
    }
}

impl WaitGroup {
    /// A group with counter zero.
    pub fn new() -> WaitGroup {
        WaitGroup {
            inner: Arc::new(Inner {
                count: AtomicUsize::new(0),
                waiters: Mutex::new(WaitList::new()),
            }),
        }
    }

    /// Adds `n` to the counter.
    ///
    /// # Panics
    ///
    /// If the counter would overflow `usize`.
    pub fn add(&self, n: usize) {
        // Relaxed: an increment publishes nothing; `done` and `wait` carry the ordering.
        let r = self
            .inner
            .count
            .fetch_update(Relaxed, Relaxed, |c| c.checked_add(n));
        if r.is_err() {
            panic!("sync: WaitGroup counter overflow");
        }
    }

    /// Subtracts one from the counter; at zero, wakes every waiter.
    ///
    /// # Panics
    ///
    /// With "sync: negative WaitGroup counter" if the counter is already zero (more `done`s
    /// than `add`s), like Go. The counter stays at zero.
    pub fn done(&self) {
        // AcqRel: Release publishes this goroutine's work to the waiter; Acquire makes the
        // zeroing `done` see every other `done`'s work before it wakes anybody.
        let prev = self
            .inner
            .count
            .fetch_update(AcqRel, Acquire, |c| c.checked_sub(1));
        match prev {
            Err(_) => panic!("sync: negative WaitGroup counter"),
            Ok(1) => self.inner.wake_all(),
            Ok(_) => {}
        }
    }

    /// The counter now (a snapshot, for diagnostics).
    pub fn count(&self) -> usize {
        self.inner.count.load(Acquire)
    }

    /// Parks until the counter is zero; returns at once if it is.
    ///
    /// # Panics
    ///
    /// If called from a future on a worker thread while the count is not zero; use
    /// [`wait_async`](Self::wait_async) there.
    pub fn wait(&self) {
        if on_plain_thread() && self.count() == 0 {
            return;
        }
        crate::block_on(self.wait_async())
    }

    /// The async face of [`wait`](Self::wait). Cancellation-safe.
    pub fn wait_async(&self) -> Wait<'_> {
        Wait {
            inner: &self.inner,
            key: None,
        }
    }

    /// Go 1.25's `wg.Go(f)`: `add(1)`, then runs `f` in a new goroutine that calls `done()`
    /// when `f` returns or panics.
    ///
    /// # Panics
    ///
    /// Outside a gorust runtime, like [`crate::go`].
    pub fn go<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        struct DoneOnDrop(WaitGroup);
        impl Drop for DoneOnDrop {
            fn drop(&mut self) {
                self.0.done();
            }
        }
        self.add(1);
        let guard = DoneOnDrop(self.clone());
        // The handle is dropped: the group is how callers wait.
        drop(crate::go(move || {
            let _guard = guard;
            f();
        }));
    }
}

impl Inner {
    fn wake_all(&self) {
        let mut list = crate::loom::lock(&self.waiters);
        if list.is_empty() {
            return;
        }
        let mut wakers = Vec::new();
        list.notify_all(&mut wakers);
        drop(list);
        crate::sched::wake::wake_all(wakers);
    }
}

/// The future of [`WaitGroup::wait_async`].
#[must_use = "futures do nothing unless polled"]
pub struct Wait<'a> {
    inner: &'a Inner,
    /// Our slot in `waiters` while parked or notified.
    key: Option<WaitKey>,
}

impl fmt::Debug for Wait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("waiting", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        ready!(crate::coop::poll_proceed(cx));
        if this.key.is_none() && this.inner.count.load(Acquire) == 0 {
            return Poll::Ready(());
        }
        let mut list = crate::loom::lock(&this.inner.waiters);
        if list.take_notified(&mut this.key) {
            return Poll::Ready(());
        }
        // Checked under the lock: see "No lost wake-up" in the module header.
        if this.inner.count.load(Acquire) == 0 {
            list.remove(&mut this.key);
            return Poll::Ready(());
        }
        list.register(&mut this.key, cx.waker());
        // No progress: the unit goes back (see `coop::refund`).
        crate::coop::refund();
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if self.key.is_some() {
            // A notification needs no passing on: every waiter was notified.
            crate::loom::lock(&self.inner.waiters).remove(&mut self.key);
        }
    }
}
