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
//! - `state` is one atomic word: the counter in its low 32 bits (Go's is 32 bits too) and, in
//!   its high 32, the round: how many times the counter has come down to zero. `add` and
//!   `done` touch only it, except for the `done` that brings the counter to zero, which moves
//!   the round on in the same read-modify-write, then takes the `waiters` lock and notifies
//!   every waiter (woken after the lock is released). `done` is an `AcqRel` read-modify-write
//!   and a waiter reads `state` with `Acquire`, so everything a goroutine did before its
//!   `done` is visible after `wait` returns (Go's guarantee).
//! - `waiters` (a `WaitList` under a `crate::loom` mutex) is touched only by `wait` futures
//!   and by the zero transition. No lost wake-up: a waiter checks `state` again *under* the
//!   lock before queuing; the zeroing `done` decrements before taking the lock, so either the
//!   waiter's check sees zero or the waiter is queued before the `done` looks.
//! - Rounds. A waiter queues with the round it saw, and returns once the round has moved on
//!   since, notified or not yet; a notification in the same round releases nobody. Between
//!   the zeroing `done`'s decrement and its lock, the group may be reused (Go allows a new
//!   `add` once the last `wait` returned): a waiter of that next round queues with the
//!   counter at one, and the old zero's notification must not release it; it queues again.
//!   Before session 34 the counter had no round, and such a waiter returned with its
//!   goroutines still running (review; loom models
//!   `loom_sync_waitgroup_an_old_zero_does_not_release_the_next_round` and, for a waiter
//!   polled between its zero and its notification,
//!   `loom_sync_waitgroup_a_waiter_polled_after_its_zero_returns`). A waiter asleep for 2^32
//!   rounds exactly would miss its own; Go's word has the same width.
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
use crate::loom::sync::atomic::{AtomicU64, Ordering::*};
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
    /// The counter (low 32 bits) and the round (high 32 bits); see the module header.
    state: AtomicU64,
    waiters: Mutex<WaitList>,
}

/// The counter's bits in `Inner::state`.
const COUNT: u64 = u32::MAX as u64;
/// One round, in `Inner::state`.
const ROUND: u64 = 1 << 32;

fn count_of(state: u64) -> usize {
    (state & COUNT) as usize
}

fn round_of(state: u64) -> u32 {
    (state >> 32) as u32
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
                state: AtomicU64::new(0),
                waiters: Mutex::new(WaitList::new()),
            }),
        }
    }

    /// Adds `n` to the counter.
    ///
    /// # Panics
    ///
    /// If the counter would pass `u32::MAX` (Go's counter is 32 bits too).
    pub fn add(&self, n: usize) {
        // Relaxed: an increment publishes nothing; `done` and `wait` carry the ordering.
        let r = self.inner.state.fetch_update(Relaxed, Relaxed, |s| {
            let n = u64::try_from(n).ok().filter(|&n| n <= COUNT)?;
            ((s & COUNT) + n <= COUNT).then_some(s + n)
        });
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
        // The zeroing one moves the round on in the same step (see "Rounds").
        let prev = self
            .inner
            .state
            .fetch_update(AcqRel, Acquire, |s| match s & COUNT {
                0 => None,
                1 => Some((s - 1).wrapping_add(ROUND)),
                _ => Some(s - 1),
            });
        match prev.map(count_of) {
            Err(_) => panic!("sync: negative WaitGroup counter"),
            Ok(1) => self.inner.wake_all(),
            Ok(_) => {}
        }
    }

    /// The counter now (a snapshot, for diagnostics).
    pub fn count(&self) -> usize {
        count_of(self.inner.state.load(Acquire))
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
            round: 0,
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
    /// The round seen when queuing: a notification releases the wait once it has moved on.
    round: u32,
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
        if this.key.is_none() && count_of(this.inner.state.load(Acquire)) == 0 {
            return Poll::Ready(());
        }
        let mut list = crate::loom::lock(&this.inner.waiters);
        // Read under the lock: see "No lost wake-up" and "Rounds" in the module header.
        let state = this.inner.state.load(Acquire);
        let notified = list.take_notified(&mut this.key);
        // Queued before this poll (notified, or still waiting for the notification), and the
        // round it queued in has ended: its zero came. A still-queued waiter polled between
        // that zero and its notification returns too, rather than take the new round for its
        // own and wait for the next zero.
        if (notified || this.key.is_some()) && round_of(state) != this.round {
            list.remove(&mut this.key);
            return Poll::Ready(());
        }
        if count_of(state) == 0 {
            list.remove(&mut this.key);
            return Poll::Ready(());
        }
        // Queued anew (first poll, or after an earlier round's notification): this round is
        // the one it waits for.
        if this.key.is_none() {
            this.round = round_of(state);
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
