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

#[cfg(all(test, not(loom)))]
mod test_util;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
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
/// worker's destructor or a plain thread holds for a moment is waited for. A wait that only a
/// goroutine of the same worker could end (a lock held by it across a park, or handed to it
/// while it waited) would never end: after 5 s without a wake-up the process prints what
/// happened and aborts, rather than hang in `Runtime`'s drop.
///
/// # Panics
///
/// If called from a future (not a goroutine) running on a worker thread and the future would
/// have to wait: blocking there would stall the worker and everything queued on it. Use
/// `.await` there.
#[inline(always)]
pub fn block_on<F: Future>(fut: F) -> F::Output {
    match goroutine::block_on_in_goroutine(fut) {
        Ok(v) => v,
        Err(fut) => {
            if sched::worker::is_serving() {
                return block_on_worker(fut);
            }
            if sched::worker::is_shutting_down() {
                return block_on_shutting_down(fut);
            }
            block_on_thread(fut)
        }
    }
}

/// `block_on` on a worker that still runs tasks, outside a goroutine: one poll. Before, this
/// panicked even for a future ready at once, and a parked goroutine whose destructor took a
/// free `gorust::sync::Mutex` aborted the process at shutdown (a panic during the unwind that
/// runs the destructors; review, session 8). The shutdown step no longer comes here (session
/// 12): with two workers unwinding at once, one's destructor could find the lock held by the
/// other's for a moment, and the panic in that unwind aborted the process (1 run in ~16 of
/// `tests/runtime.rs`).
#[cold]
fn block_on_worker<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    if let Poll::Ready(v) = fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        return v;
    }
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

struct ThreadWaker {
    thread: std::thread::Thread,
    notified: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.notified.swap(true, Ordering::Release) {
            self.thread.unpark();
        }
    }
}

fn block_on_thread<F: Future>(fut: F) -> F::Output {
    match wait_on_thread(fut, None) {
        Some(v) => v,
        None => unreachable!("a wait without a limit ends only when the future is ready"),
    }
}

/// How long a destructor that a worker's shutdown step runs may wait in `block_on` without
/// being woken.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// `block_on` in a worker's shutdown step: the thread blocks, for at most `SHUTDOWN_WAIT`
/// between wake-ups (`block_on`'s doc says why).
#[cold]
fn block_on_shutting_down<F: Future>(fut: F) -> F::Output {
    if let Some(v) = wait_on_thread(fut, Some(SHUTDOWN_WAIT)) {
        return v;
    }
    eprintln!(
        "gorust: a destructor run at runtime shutdown waited {} s in block_on (a lock, a \
         channel, a join) without a wake-up: only a goroutine of this worker that is not \
         unwound yet could end that wait (a lock it holds across a park, or one handed to it \
         while it waited). Aborting rather than hanging; release such things before the \
         runtime is dropped.",
        SHUTDOWN_WAIT.as_secs()
    );
    std::process::abort();
}

/// Polls `fut` on this thread, parking the thread between polls until its waker is called;
/// `None` if `limit` passes in one wait without a wake-up.
fn wait_on_thread<F: Future>(fut: F, limit: Option<Duration>) -> Option<F::Output> {
    let tw = Arc::new(ThreadWaker {
        thread: std::thread::current(),
        notified: AtomicBool::new(false),
    });
    let waker = Waker::from(tw.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Some(v);
        }
        let give_up = limit.map(|l| Instant::now() + l);
        while !tw.notified.swap(false, Ordering::Acquire) {
            match give_up {
                None => std::thread::park(),
                Some(at) => {
                    let now = Instant::now();
                    if now >= at {
                        return None;
                    }
                    std::thread::park_timeout(at - now);
                }
            }
        }
    }
}
