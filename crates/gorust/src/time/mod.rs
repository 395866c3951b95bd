//! Time: sleeping goroutines, `Sleep` futures and timeouts, on per-worker timers.
//!
//! A timer lives in the heap of the worker that armed it: the one that first polled it, or
//! for a `Sleep::reset` of an armed one, the one that reset it (`heap.rs`); that worker fires
//! it from its scheduling loop and bounds its `epoll_pwait2` by the earliest deadline, with
//! nanosecond resolution (Go still rounds poller sleeps to a millisecond on Linux,
//! golang/go#44343). A `Sleep` polled on a thread that is not a worker (a plain thread's
//! `block_on`, a blocking-pool thread), or on a worker in its shutdown step, uses one shared
//! fallback timer thread instead; a worker's shutdown step hands its heap to that thread
//! before it unwinds anything, so a destructor may wait for a timer armed before it.
//!
//! Guarantees: a sleep never ends before its deadline; it ends as soon after as the worker can
//! run it (typically within tens of microseconds on an idle machine, measured by the `sleep`
//! benchmark, not asserted by tests). Current behaviour: cancelled timers are removed lazily.

pub(crate) mod entry;
pub(crate) mod fallback;
pub(crate) mod heap;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use entry::TimerEntry;

/// A deadline this far out stands for "never": 30 years.
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// `d` from now; when that does not fit in an `Instant` (`Duration::MAX`, say), a deadline
/// [`FAR_FUTURE`] away instead: such a wait is forever in practice, as with std's and tokio's
/// sleeps, where `Instant::now() + d` would panic.
pub(crate) fn deadline_in(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d).unwrap_or_else(|| now + FAR_FUTURE)
}

/// Parks the current goroutine for at least `d`. On a thread that is not running a goroutine,
/// sleeps the thread (`std::thread::sleep`).
///
/// # Panics
///
/// Called from a future (not a goroutine) on a worker thread, with time left to wait: that
/// would block the worker and everything queued on it, as every other wait refuses to (before
/// session 25 it slept the worker). Use `Sleep::new(d).await` there.
pub fn sleep(d: Duration) {
    sleep_until(deadline_in(d))
}

/// Parks the current goroutine until `deadline`. On other threads, sleeps the thread. Panics
/// as [`sleep`] does.
pub fn sleep_until(deadline: Instant) {
    if crate::goroutine::in_goroutine() {
        crate::block_on(Sleep::until(deadline));
    } else if crate::blocking::in_a_future_on_a_worker() {
        if deadline > Instant::now() {
            panic!(
                "gorust::time::sleep from a future on a worker thread would block the worker; \
                 use gorust::time::Sleep::new(d).await there, or sleep in a goroutine"
            );
        }
    } else {
        let now = Instant::now();
        if deadline > now {
            crate::goroutine::refuse_wait_if_cancelled();
            std::thread::sleep(deadline - now);
        }
    }
}

/// A future that completes at a deadline.
///
/// Created with [`Sleep::new`] or [`Sleep::until`]; awaiting it from a task or passing it to
/// [`crate::block_on`] waits without blocking a worker thread.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    deadline: Instant,
    entry: Option<Arc<TimerEntry>>,
}

impl std::fmt::Debug for TimerEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerEntry")
            .field("fired", &self.is_fired())
            .finish()
    }
}

impl Sleep {
    /// Completes `d` from now.
    pub fn new(d: Duration) -> Sleep {
        Sleep::until(deadline_in(d))
    }

    /// Completes at `deadline`.
    pub fn until(deadline: Instant) -> Sleep {
        Sleep {
            deadline,
            entry: None,
        }
    }

    /// The deadline.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// `true` once the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Moves the deadline. A sleep that is armed (polled, and its timer not yet fired) stays
    /// armed, with the waker of its last poll: the task is woken at the new deadline, or at
    /// once if that has passed, even if it does not poll the sleep again first, as with
    /// tokio's `Sleep::reset`. Otherwise the timer is armed at the next poll.
    pub fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        let Some(waker) = self.entry.take().and_then(|e| e.cancel_for_waker()) else {
            return;
        };
        if Instant::now() >= deadline {
            // Woken now, the task's next poll finds the deadline passed.
            waker.wake();
            return;
        }
        self.arm(waker);
    }

    /// Arms a timer at the deadline that wakes `waker`.
    fn arm(&mut self, waker: Waker) {
        let e = Arc::new(TimerEntry::new(waker));
        register(self.deadline, e.clone());
        self.entry = Some(e);
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(e) = &self.entry {
            if e.is_fired() {
                return Poll::Ready(());
            }
        }
        if Instant::now() >= self.deadline {
            if let Some(e) = self.entry.take() {
                e.cancel();
            }
            return Poll::Ready(());
        }
        match &self.entry {
            Some(e) => {
                if !e.set_waker(cx.waker()) {
                    return Poll::Ready(()); // fired since the check above
                }
            }
            None => self.arm(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(e) = self.entry.take() {
            e.cancel();
        }
    }
}

/// Puts a timer in the current worker's heap, or the fallback thread's. A worker in its
/// shutdown step fires no timers any more (a destructor that waits with a time limit there
/// would wait for ever): its timers go to the fallback thread too.
pub(crate) fn register(deadline: Instant, entry: Arc<TimerEntry>) {
    if let Err(entry) = add_to_current_worker(None, deadline, entry) {
        fallback::register(deadline, entry);
    }
}

/// Inserts in the heap of the worker this thread is, if it still serves (and belongs to `of`,
/// when given); otherwise hands the entry back.
#[inline]
fn add_to_current_worker(
    of: Option<&crate::sched::Handle>,
    deadline: Instant,
    entry: Arc<TimerEntry>,
) -> Result<(), Arc<TimerEntry>> {
    crate::sched::worker::with_current(|w| match w {
        Some(w) if w.is_serving() && of.is_none_or(|h| std::ptr::eq(&*w.handle, &**h)) => {
            w.add_timer(deadline, entry)
        }
        _ => Err(entry),
    })
}

/// Puts a timer in the current worker's heap if this thread is a serving worker of `handle`;
/// otherwise in the heap of `handle`'s worker `index` (`Shared::add_timer_to`), or, once that
/// runtime shuts down, the fallback thread's. For timers that belong with a worker whatever
/// thread arms them: the event loop's connection timers.
pub(crate) fn register_on(
    handle: &crate::sched::Handle,
    index: usize,
    deadline: Instant,
    entry: Arc<TimerEntry>,
) {
    let Err(entry) = add_to_current_worker(Some(handle), deadline, entry) else {
        return;
    };
    if let Err(entry) = handle.add_timer_to(index, deadline, entry) {
        fallback::register(deadline, entry);
    }
}

/// The error of a [`timeout`] whose deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl std::fmt::Display for Elapsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(_: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, Elapsed(()))
    }
}

/// Runs `fut` with a time limit: `Err(Elapsed)` if it is not ready within `d`.
pub fn timeout<F: Future>(d: Duration, fut: F) -> Timeout<F> {
    timeout_at(deadline_in(d), fut)
}

/// Runs `fut` until `deadline`: `Err(Elapsed)` if it is not ready by then.
pub fn timeout_at<F: Future>(deadline: Instant, fut: F) -> Timeout<F> {
    Timeout {
        fut,
        sleep: Sleep::until(deadline),
    }
}

/// The future returned by [`timeout`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Timeout<F> {
    fut: F,
    sleep: Sleep,
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `fut` is structurally pinned (never moved out of `self`); `sleep` is Unpin.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above.
        let fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        if let Poll::Ready(v) = fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(&mut this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}
