//! gorust: Go's goroutine scheduler and netpoller, for Rust.
//!
//! ```no_run
//! use std::io::{Read, Write};
//!
//! fn main() {
//!     gorust::run(|| {
//!         let handles: Vec<_> = (0..10_000)
//!             .map(|i| gorust::go(move || {
//!                 gorust::time::sleep(std::time::Duration::from_millis(10)); // parks, not blocks
//!                 i * 2
//!             }))
//!             .collect();
//!         let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
//!         println!("{sum}");
//!     });
//! }
//! ```
//!
//! A *goroutine* ([`go`]) is a function on its own small stack; when it waits (a sleep, a
//! channel, a join, and later a socket) it parks and its worker thread runs something else. A
//! *task* ([`spawn`]) is a future on the same scheduler. [`block_on`] lets a goroutine wait for
//! any future. See `ARCHITECTURE.md` for the design.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

/// Writes a line of the runtime's own diagnostics to stderr, and never panics. `eprintln!`
/// panics when stderr is a pipe whose reader has gone (`EPIPE`: Rust ignores `SIGPIPE`), and
/// these lines are written in destructors, on the way to an abort, and where a goroutine is
/// leaked so that its destructors do not run: a panic there aborted the process or ran the
/// destructors it was avoiding (review, session 30).
macro_rules! diag {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod blocking;
pub mod buffer;
mod context;
pub mod coop;
pub mod eventloop;
pub mod fs;
mod goroutine;
pub(crate) mod loom;
pub mod net;
pub(crate) mod netpoll;
mod runtime;
pub(crate) mod sched;
pub mod sync;
pub(crate) mod sys;
pub mod time;

// Std atomics only: the unit tests and the loom models share it.
#[cfg(test)]
mod test_util;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::time::{Duration, Instant};

pub use blocking::{blocking, spawn_blocking, BlockingHandle};
pub use runtime::{Builder, Runtime};
pub use sched::metrics::{RuntimeMetrics, WorkerStats};
pub use sched::task::{JoinError, JoinHandle};

/// Starts a runtime with the default settings, runs `f` as its main goroutine, and returns
/// what `f` returns once it does; the runtime is then shut down.
///
/// # Panics
///
/// If the runtime cannot start (the error says why; use [`Runtime::builder`] to handle it),
/// or, after shutdown, with the main goroutine's panic.
pub fn run<F, R>(f: F) -> R
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    match Runtime::new() {
        Ok(rt) => rt.run(f),
        Err(e) => panic!("gorust::run: cannot start the runtime: {e}"),
    }
}

/// Starts a goroutine: `f` runs on a worker thread with its own stack, and may park (on
/// channels, timers, joins, I/O) without blocking the thread.
///
/// A goroutine runs on the worker that first picks it up and stays on that thread for its
/// whole life, so it may keep `!Send` values (and thread-locals) across parks.
///
/// # Panics
///
/// Outside a gorust runtime (a worker, a blocking-pool thread or inside `Runtime::block_on`).
/// The goroutine takes its stack when it first runs; if no stack memory can be reserved then,
/// the goroutine ends with a panic that says so, which its `JoinHandle::join` returns.
pub fn go<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    goroutine::go(f)
}

/// Spawns a future as a task. It may run on any worker, moving between them at every poll.
///
/// # Panics
///
/// Outside a gorust runtime.
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    context::with_handle("spawn", |handle| {
        handle.spawn_with_id(sched::next_task_id(), fut, sched::task::Kind::Future)
    })
}

/// Waits for a future.
///
/// Inside a goroutine it parks the goroutine (its worker runs other work meanwhile); on a
/// thread that is not a worker it blocks the thread.
///
/// In a future's poll on a worker thread, a future that is ready at once (a free lock, a
/// message already queued) completes.
///
/// In a destructor that a runtime's shutdown runs on a worker (a parked goroutine unwound, a
/// task dropped; also when the runtime is dropped inside one of its own goroutines), it
/// blocks the worker thread, which runs no task any more by then: a lock that another
/// worker's destructor or a plain thread holds is waited for, as a timer is. A wait that only
/// a goroutine of the same runtime could end (a lock it holds across a park, or one handed to
/// it while it waited) never ends and `Runtime`'s drop hangs, as with std's locks; a wait of
/// 5 s prints a warning that says so.
///
/// # Panics
///
/// If called from a future (not a goroutine) running on a worker thread and the future would
/// have to wait: blocking there would stall the worker and everything queued on it. Use
/// `.await` there.
///
/// In a goroutine that a runtime's shutdown is unwinding and that caught that unwind, if the
/// future would have to wait: see [`Runtime`].
#[inline(always)]
pub fn block_on<F: Future>(fut: F) -> F::Output {
    match goroutine::block_on_in_goroutine(fut) {
        Ok(v) => v,
        Err(fut) => match sched::worker::serving() {
            Some(true) => block_on_worker(fut),
            Some(false) => block_on_shutting_down(fut),
            None => block_on_thread(fut),
        },
    }
}

/// `block_on` on a worker that still runs tasks, outside a goroutine: one poll. Before, this
/// panicked even for a future ready at once, and a parked goroutine whose destructor took a
/// free `gorust::sync::Mutex` aborted the process at shutdown (a panic during the unwind that
/// runs the destructors; review, session 8). The shutdown step no longer comes here (session
/// 12): with two workers unwinding at once, one's destructor could find the lock held by the
/// other's for a moment, and the panic in that unwind aborted the process (1 run in ~16 of
/// `tests/runtime.rs`).
///
/// The poll runs without the cooperative budget: it cannot wait, so it starves nobody, and
/// with the task's budget spent every primitive would report `Pending` before looking, and a
/// task taking a free lock for the 129th time in one poll panicked (review, session 19).
#[cold]
fn block_on_worker<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let polled = coop::unconstrained(|| fut.as_mut().poll(&mut Context::from_waker(Waker::noop())));
    if let Poll::Ready(v) = polled {
        return v;
    }
    goroutine::refuse_wait_if_cancelled();
    panic!(
        "gorust::block_on called from a future on a worker thread, and it would have to \
         wait: that would block the worker; use .await there, or call block_on from a goroutine"
    );
}

/// Lets other goroutines and tasks run: the calling goroutine goes to the back of its queue.
/// On a thread that is not running a goroutine, yields the thread.
pub fn yield_now() {
    goroutine::yield_now()
}

/// Live goroutines of the current thread's runtime (0 outside any runtime).
pub fn num_goroutines() -> usize {
    context::handle().map_or(0, |h| h.live_goroutines())
}

/// A snapshot of the current thread's runtime's counters, or `None` outside a runtime.
pub fn metrics() -> Option<RuntimeMetrics> {
    context::handle().map(|h| h.metrics())
}

/// What a plain thread's `block_on` gives its future as waker: waking unparks the thread.
struct ThreadWaker {
    thread: std::thread::Thread,
    notified: AtomicBool,
}

impl ThreadWaker {
    fn notify(&self) {
        if !self.notified.swap(true, Ordering::Release) {
            self.thread.unpark();
        }
    }

    /// The waker, on a vtable of its own so that [`is_thread_waker`] can tell it from others
    /// (the vtable of `Waker::from` is not guaranteed one address per type).
    fn waker(self: Arc<Self>) -> Waker {
        let raw = RawWaker::new(Arc::into_raw(self).cast(), &THREAD_WAKER_VTABLE);
        // SAFETY: the data is an `Arc<ThreadWaker>` turned raw, whose count this waker now
        // holds; the vtable's functions keep that count as `RawWaker`'s contract requires.
        unsafe { Waker::from_raw(raw) }
    }
}

static THREAD_WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(tw_clone, tw_wake, tw_wake_by_ref, tw_drop);

/// # Safety
/// `p` is the data of a live waker made by `ThreadWaker::waker` (as for the three below).
unsafe fn tw_clone(p: *const ()) -> RawWaker {
    // SAFETY: `p` came from `Arc::into_raw` and the waker being cloned holds a count.
    unsafe { Arc::increment_strong_count(p.cast::<ThreadWaker>()) };
    RawWaker::new(p, &THREAD_WAKER_VTABLE)
}

/// # Safety
/// As `tw_clone`; consumes the waker's count.
unsafe fn tw_wake(p: *const ()) {
    // SAFETY: takes back the count the consumed waker held.
    let tw = unsafe { Arc::from_raw(p.cast::<ThreadWaker>()) };
    tw.notify();
}

/// # Safety
/// As `tw_clone`.
unsafe fn tw_wake_by_ref(p: *const ()) {
    // SAFETY: the waker holds a count, so the `ThreadWaker` is alive for this call.
    unsafe { &*p.cast::<ThreadWaker>() }.notify();
}

/// # Safety
/// As `tw_clone`; releases the waker's count.
unsafe fn tw_drop(p: *const ()) {
    // SAFETY: takes back the count the dropped waker held.
    drop(unsafe { Arc::from_raw(p.cast::<ThreadWaker>()) });
}

/// Whether `w` is a plain thread's `block_on` waker: waking it unparks a thread and touches
/// no descriptor, so a monitor with a descriptor table of its own may call it
/// (`Poller::poll_deferring`).
pub(crate) fn is_thread_waker(w: &Waker) -> bool {
    std::ptr::eq(w.vtable(), &THREAD_WAKER_VTABLE)
}

fn block_on_thread<F: Future>(fut: F) -> F::Output {
    wait_on_thread(fut, None)
}

/// How long a destructor that a worker's shutdown step runs may wait in `block_on`, counted
/// from its first `Pending`, before a warning says what may be wrong.
const SHUTDOWN_WARN_AFTER: Duration = Duration::from_secs(5);

/// `block_on` in a worker's shutdown step: the thread blocks, with a warning on stderr if one
/// wait lasts `SHUTDOWN_WARN_AFTER` (`block_on`'s doc says why).
#[cold]
fn block_on_shutting_down<F: Future>(fut: F) -> F::Output {
    wait_on_thread(fut, Some(SHUTDOWN_WARN_AFTER))
}

/// Polls `fut` on this thread, parking the thread between polls until its waker is called,
/// with no cooperative budget (no task is starved by a thread that blocks, and a spent budget
/// would make every gorust primitive report `Pending` for ever). `warn_after`: a shutdown
/// step's wait, which prints a warning once if it lasts that long. Timed from its first
/// `Pending`, not from the last wake-up: a future that wakes itself to be polled again (a
/// socket's wait there is a `poll(2)` slice at a time) restarted the count at every slice,
/// and a wait that never ended never said so (review, session 31).
fn wait_on_thread<F: Future>(fut: F, warn_after: Option<Duration>) -> F::Output {
    let tw = Arc::new(ThreadWaker {
        thread: std::thread::current(),
        notified: AtomicBool::new(false),
    });
    let waker = tw.clone().waker();
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    let mut warned = false;
    let mut started = None;
    coop::unconstrained(|| loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        goroutine::refuse_wait_if_cancelled();
        let started = *started.get_or_insert_with(Instant::now);
        while !tw.notified.swap(false, Ordering::Acquire) {
            let Some(after) = warn_after.filter(|_| !warned) else {
                std::thread::park();
                continue;
            };
            let waited = started.elapsed();
            if waited < after {
                std::thread::park_timeout(after - waited);
                continue;
            }
            warned = true;
            diag!(
                "gorust: a destructor run at runtime shutdown has waited {} s in block_on (a \
                 lock, a channel, a join, a timer, a socket) and is still waiting. If only \
                 a goroutine of the same runtime could end the wait (a lock it holds across a \
                 park, or one handed to it while it waited; the end of a goroutine that this \
                 worker has yet to unwind), it never ends: release such things, or join such \
                 goroutines, before the runtime is dropped.",
                after.as_secs()
            );
        }
    })
}
