//! Goroutines: stackful coroutines driven as tasks.
//!
//! A goroutine is a task whose future ([`Goroutine`]) resumes a `corosensei` coroutine. Inside
//! the coroutine, code that must wait (`block_on`, and everything built on it: channel receives,
//! sleeps, joins, network reads) polls a future with the task's waker; if the future is not
//! ready the coroutine suspends, which makes the task's poll return `Pending`. When the waker
//! fires, the task is scheduled, polled, and the coroutine resumes inside `block_on`, which polls
//! again. This is Go's `gopark`/`goready`, and it makes goroutines and futures one kind of task
//! on one scheduler.
//!
//! Lifecycle of a goroutine:
//! 1. `go(f)`: the closure is stored in the task cell, which is queued (unbound: any worker may
//!    take it, so idle workers can steal new goroutines). No stack yet.
//! 2. First poll: the worker binds the task to itself (`Header::home`); from now on it is only
//!    polled on that thread, because compiled code caches thread-local addresses across calls
//!    and would read another thread's data after a migration (DESIGN.md decision 2). It takes
//!    a stack from its own cache and moves the closure onto it (`Goroutine::start`).
//! 3. Parks and resumes any number of times, on the home worker.
//! 4. `f` returns or panics; the panic is caught on the coroutine's stack and handed to the
//!    `JoinHandle`. The stack returns to the pool, as it does when a goroutine still parked at
//!    shutdown is unwound on its home thread.
//!
//! The per-thread `CURRENT` holds the running goroutine's yielder and the waker of the poll
//! that resumed it (valid until it next suspends); it is set only while a goroutine runs.
//! The worker sets it before each resume and clears it when the resume returns (the first
//! resume passes the waker as the coroutine's input and the body sets `CURRENT` itself; the
//! worker learns the yielder when that resume returns). So `park` only reads a thread-local
//! and switches: besides what the switch itself saves (return address, frame pointer, the
//! registers it keeps, and corosensei's link to the parent at the stack top), nothing is
//! spilled to the goroutine's stack around it and no context there needs updating. At 1,000
//! parked connections each such line was a cache miss per round trip (the echo benchmark
//! under `bench/echo-cachesim.sh`).
//!
//! Frames across a switch. After a stack switch the CPU's return-address predictor still holds
//! the other stack's return addresses, so every `ret` into a frame that was live before the
//! switch is mispredicted. Measured here with corosensei alone: a resume+suspend pair costs
//! 3 ns with no frames between the loop and the switch, and about 11 ns more for every frame
//! added on both sides (24 ns at one, 100 at four, 220 at twelve). So the functions between a
//! parking call and the switch (`block_on`, `block_on_in_goroutine`, `park`, the netpoller's
//! `wait` and I/O loop), and between the worker and the resume (`Goroutine::poll`, the task
//! harness's `poll_future`), are `#[inline(always)]`: the ping-pong round trip (four switches)
//! went from ~325 ns to ~230 ns on one worker with nothing else changed.
//!
//! Rejected: stackless-only (every blocking-looking API would need `async`); copying or growing
//! stacks (Rust cannot move a stack: it holds pointers into itself); running goroutines on
//! any worker after they start (unsound with thread-locals, above).

mod cancel;
mod overflow;
pub(crate) mod stack;

use std::cell::Cell;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll, RawWaker, Waker};

use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::sched::task::{JoinHandle, Kind};
use crate::sched::Handle;
use stack::GuardedStack;

type WakerPtr = *const Waker;
type Co<T> = Coroutine<WakerPtr, (), std::thread::Result<T>, GuardedStack>;

/// The goroutine running on this thread: its yielder, and the waker of the poll that
/// resumed it (valid until it suspends). Both null when no goroutine runs.
#[derive(Clone, Copy)]
struct Current {
    yielder: *const Yielder<WakerPtr, ()>,
    waker: WakerPtr,
}

const NOT_RUNNING: Current = Current {
    yielder: std::ptr::null(),
    waker: std::ptr::null(),
};

thread_local! {
    /// The goroutine running on this thread, if any.
    static CURRENT: Cell<Current> = const { Cell::new(NOT_RUNNING) };
}

/// The running goroutine, or `None` on a plain thread or in a task that is not a goroutine.
#[inline(always)]
fn current() -> Option<Current> {
    let c = CURRENT.with(|c| c.get());
    (!c.yielder.is_null()).then_some(c)
}

/// The task future of a goroutine.
///
/// Kept small: a million live goroutines are a million task cells (the id and the stack size
/// live in `guard` only).
pub(crate) struct Goroutine<F, T> {
    stage: Stage<F, T>,
    /// The goroutine's id, its stack's usable size (to take at the first poll, already
    /// rounded) and, once it has a stack, its guard: for overflow reports.
    guard: overflow::GuardInfo,
    /// The thread this goroutine first ran on (`thread_tag`, never 0), or 0 before its first
    /// poll.
    thread: usize,
    /// The address of the coroutine's yielder (on its stack), learnt when it first parks,
    /// or 0: the worker sets `CURRENT` with it before each later resume.
    yielder: usize,
    /// It last parked while the thread was panicking: most likely in a destructor run by
    /// its own panic's unwind (std counts panics per thread, so one left by another
    /// goroutine parked so looks the same). Unwinding it again from there would abort the
    /// process, so its drop leaks it instead.
    parked_unwinding: bool,
}

/// Where a goroutine is in its life.
enum Stage<F, T> {
    /// Spawned, never run: the closure waits in the task cell and no stack is held. The first
    /// poll takes a stack from the running worker's cache and moves the closure onto it.
    New(F),
    /// Running or suspended on its own stack (or finished, until the cell is dropped).
    Started(Co<T>),
    /// Between the two, and after `Drop` took what was there.
    Gone,
}

// The closure is never pinned: it is moved onto the stack at the first poll, and the coroutine
// is a handle to memory that does not move. So the future may move between polls.
impl<F, T> Unpin for Goroutine<F, T> {}

/// This thread's tag: unique in the process for its life, never reused by a later thread
/// (the address of a thread-local, used before, is: a new thread may get the stack and TLS
/// block of one that exited). After the thread's first call it costs one thread-local load.
#[inline(always)]
fn thread_tag() -> usize {
    match TAG.with(|t| t.get()) {
        0 => new_thread_tag(),
        tag => tag,
    }
}

thread_local! {
    /// This thread's `thread_tag`, or 0 before the first call.
    static TAG: Cell<usize> = const { Cell::new(0) };
}

#[cold]
fn new_thread_tag() -> usize {
    // Relaxed: only uniqueness matters, and the counter's single modification order gives it.
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    let tag = NEXT.fetch_add(1, Relaxed);
    TAG.with(|t| t.set(tag));
    tag
}

impl<F, T> Future for Goroutine<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    type Output = T;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        let tag = thread_tag();
        if this.thread != tag {
            if this.thread != 0 {
                // The scheduler's routing guarantees this never happens; if it did, resuming
                // would be unsound, so stop here.
                diag!(
                    "runtime: goroutine {} resumed off its home thread",
                    this.guard.id
                );
                std::process::abort();
            }
            this.thread = tag;
            this.start();
        }
        let Stage::Started(co) = &mut this.stage else {
            unreachable!("a goroutine is started at its first poll")
        };
        let waker = cx.waker() as WakerPtr;
        if this.yielder != 0 {
            let yielder = this.yielder as *const Yielder<WakerPtr, ()>;
            CURRENT.with(|c| c.set(Current { yielder, waker }));
        }
        overflow::enter(&this.guard);
        let res = co.resume(waker);
        overflow::leave();
        // It parked (leaving `CURRENT` as it was) or returned (`CURRENT` cleared): either way
        // it no longer runs here. The first time, this is how the yielder becomes known.
        this.yielder = CURRENT.with(|c| c.replace(NOT_RUNNING)).yielder as usize;
        match res {
            CoroutineResult::Yield(()) => {
                // A global atomic load unless some thread is panicking.
                this.parked_unwinding = std::thread::panicking();
                Poll::Pending
            }
            CoroutineResult::Return(Ok(v)) => Poll::Ready(v),
            // Re-raise on the worker's own stack, where the task harness catches it.
            CoroutineResult::Return(Err(p)) => resume_unwind(p),
        }
    }
}

impl<F, T> Goroutine<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    /// Takes a stack and builds the coroutine around the closure. Runs once, at the first
    /// poll, on the worker the goroutine will live on: so a spawned goroutine that has not run
    /// holds no stack (a burst of a million spawns touches a few stacks, not a million), and
    /// the stack comes from that worker's warm cache. Not inlined: the frame is gone before
    /// the resume (see "Frames across a switch").
    #[inline(never)]
    fn start(&mut self) {
        let Stage::New(f) = std::mem::replace(&mut self.stage, Stage::Gone) else {
            unreachable!("started twice")
        };
        let stack = match stack::get(self.guard.size) {
            Ok(s) => s,
            // Caught by the task harness: the goroutine ends with this panic, which its
            // `JoinHandle::join` returns; the runtime goes on. The closure is dropped first,
            // as an unstarted goroutine's is (`Drop`), outside any goroutine: dropped by the
            // unwind, a destructor that waits would panic in `block_on` on the worker, a
            // panic during a panic (review, session 23).
            Err(e) => {
                outside_goroutine(|| drop(f));
                panic!(
                    "gorust: cannot allocate a {} KiB stack for goroutine {}: {e}",
                    self.guard.size / 1024,
                    self.guard.id
                )
            }
        };
        self.guard.guard_lo = stack.guard_range().0;
        let co: Co<T> = Coroutine::with_stack(stack, move |yielder, first: WakerPtr| {
            CURRENT.with(|c| {
                c.set(Current {
                    yielder,
                    waker: first,
                })
            });
            let out = catch_unwind(AssertUnwindSafe(f));
            CURRENT.with(|c| c.set(NOT_RUNNING));
            out
        });
        self.stage = Stage::Started(co);
    }
}

/// Runs `f` with no goroutine current on this thread, then makes the one that was current
/// again (also if `f` panics). For destructors that run inside another goroutine (a runtime
/// dropped in one of its own goroutines cancels the rest): they must not take that goroutine
/// for theirs, since one that parked would suspend it from the wrong stack.
pub(crate) fn outside_goroutine<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(Current);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(NOT_RUNNING)));
    f()
}

impl<F, T> Drop for Goroutine<F, T> {
    fn drop(&mut self) {
        let co = match std::mem::replace(&mut self.stage, Stage::Gone) {
            // Never ran: only the closure's captures to drop, which are `Send`; no goroutine
            // is theirs (`outside_goroutine`).
            Stage::New(f) => {
                outside_goroutine(|| drop(f));
                return;
            }
            Stage::Gone => return,
            Stage::Started(co) => co,
        };
        let suspended = co.started() && !co.done();
        if suspended && self.thread != thread_tag() {
            // Dropping a suspended coroutine unwinds its stack and runs its destructors on
            // the current thread; off the home thread that is unsound, so leak it instead
            // (the stack is never reused). Only reachable when a worker exited without
            // cancelling its goroutines, which shutdown does not do.
            diag!(
                "gorust: goroutine {} leaked: still suspended after its worker exited",
                self.guard.id
            );
            std::mem::forget(co);
            return;
        }
        if suspended && self.parked_unwinding {
            // Parked in a destructor its own panic's unwind was running: corosensei's forced
            // unwind would start a second unwind out of that destructor, which Rust turns into
            // an abort ("panic in a destructor during cleanup"). Leaked instead, as below
            // (review, session 28; test
            // `a_goroutine_parked_while_unwinding_a_panic_does_not_abort_the_shutdown`).
            diag!(
                "gorust: goroutine {} leaked: it parked while unwinding a panic",
                self.guard.id
            );
            std::mem::forget(co);
            return;
        }
        if suspended && cfg!(panic = "abort") {
            // corosensei unwinds a suspended coroutine by resuming it with a panic payload,
            // and under `panic = "abort"` that panic aborts the process: leak it instead, its
            // stack and whatever its frames own (ARCHITECTURE.md, "Known limits").
            std::mem::forget(co);
            return;
        }
        // Unwinding a suspended goroutine (on its home thread) runs user destructors on its
        // stack. A panic in one of them aborts the process (it is a panic during an unwind);
        // `catch_unwind` only keeps a panic out of this drop if corosensei re-raised one, which
        // it does not: the body catches every panic, the forced unwind's too, and returns. A
        // finished coroutine touches no thread state when dropped. The destructors may run
        // inside another goroutine (`outside_goroutine`), and they run with this goroutine's
        // guard recorded, so that an overflow in one is reported as this goroutine's.
        // Unwound, the coroutine is done, so its stack goes back to the pool like a finished
        // one's (dropping the coroutine instead lost the stack's slot and its touched pages
        // for good: a runtime dropped with 10,000 parked goroutines leaked 10,000 stacks).
        outside_goroutine(|| {
            let _ = catch_unwind(AssertUnwindSafe(move || {
                let mut co = co;
                if !co.done() {
                    // Only here: on every goroutine's exit the two thread-local accesses cost
                    // ~12 ns of a spawn and join (`spawn_batch` on 1 worker, 187 → 199 ns).
                    let _outer_entry = crate::context::suspend_entry();
                    let _unwinding =
                        cancel::Unwinding::enter(cancel::Cancelled::Goroutine(self.guard.id));
                    overflow::entered(&self.guard, || co.force_unwind());
                }
                stack::put(co.into_stack());
            }));
        });
    }
}

/// Starts a goroutine on the current runtime.
pub(crate) fn go<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    crate::context::with_handle("go", |handle| go_on(handle, f))
}

/// Starts a goroutine on `handle`'s runtime.
pub(crate) fn go_on<F, T>(handle: &Handle, f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    go_at(handle, f, Placement::AnyWorker)
}

/// Starts a goroutine bound to the current worker, at the back of its queue (see
/// `Shared::spawn_goroutine_here`); on a thread that is not one of `handle`'s workers, as
/// [`go_on`].
pub(crate) fn go_here<F, T>(handle: &Handle, f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    go_at(handle, f, Placement::ThisWorker)
}

#[derive(Clone, Copy)]
enum Placement {
    AnyWorker,
    ThisWorker,
}

/// Closures larger than this (bytes) are boxed at `go`. The closure waits in the task cell
/// until the first run and that space stays part of the cell for the goroutine's life, so a
/// closure that captured a large value would make every such goroutine's cell that much
/// larger; boxed, it costs one pointer there and one allocation at spawn.
const INLINE_CLOSURE: usize = 64;

fn go_at<F, T>(handle: &Handle, f: F, at: Placement) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if std::mem::size_of::<F>() > INLINE_CLOSURE {
        spawn_goroutine(handle, Box::new(f), at)
    } else {
        spawn_goroutine(handle, f, at)
    }
}

fn spawn_goroutine<F, T>(handle: &Handle, f: F, at: Placement) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (id, g) = new_goroutine(handle, f);
    match at {
        Placement::AnyWorker => handle.spawn_with_id(id, g, Kind::Goroutine),
        Placement::ThisWorker => handle.spawn_goroutine_here(id, g),
    }
}

/// A goroutine's task future, not yet on a stack (see `Goroutine::start`), and its id.
fn new_goroutine<F, T>(handle: &Handle, f: F) -> (u64, Goroutine<F, T>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let id = crate::sched::next_task_id();
    handle.goroutine_started();
    let g = Goroutine {
        stage: Stage::New(f),
        guard: overflow::GuardInfo {
            id,
            guard_lo: 0,
            size: handle.config.stack_size,
        },
        thread: 0,
        yielder: 0,
        parked_unwinding: false,
    };
    (id, g)
}

/// Whether the current thread is running a goroutine.
#[inline]
pub(crate) fn in_goroutine() -> bool {
    current().is_some()
}

/// Suspends the running goroutine until its task is polled again.
///
/// The caller must have arranged a wake-up (registered the waker somewhere) or accept a
/// spurious resume; either way it re-checks its condition after `park` returns.
#[inline(always)]
pub(crate) fn park() {
    let yielder = CURRENT.with(|c| c.get()).yielder;
    assert!(!yielder.is_null(), "runtime: park outside a goroutine");
    // A runtime this goroutine entered (`Runtime::block_on`) is not the next one's.
    let _entry = crate::context::leave_for_park();
    // SAFETY: CURRENT holds the yielder of the coroutine running on this thread, which is
    // us: it lives on our stack until the coroutine body returns, and we are inside it. The
    // resume's input (the waker) is not needed: the worker set `CURRENT` with it before
    // resuming (`Goroutine::poll`).
    let _ = unsafe { &*yielder }.suspend(());
}

/// Polls `fut` to completion, parking the goroutine whenever it is pending.
///
/// Returns `Err(fut)` if the current thread is not running a goroutine.
///
/// The context's waker is a copy, on this frame, of the waker the goroutine was resumed
/// with: a poll of `fut` may itself park (a nested `block_on`, e.g. a channel send spending
/// its budget inside an `async` block), and after that the resume's own waker, on the
/// worker's stack, is gone while `fut`'s poll still holds the context.
#[inline(always)]
pub(crate) fn block_on_in_goroutine<F: Future>(fut: F) -> Result<F::Output, F> {
    let Some(cur) = current() else {
        return Err(fut);
    };
    // SAFETY: `cur.waker` was set by the resume that is running us and is valid until we
    // suspend, which we have not.
    let resumed_with = unsafe { &*cur.waker };
    // SAFETY: a goroutine is only polled by its task's harness, with a waker that borrows
    // the task (`sched::task::raw`: the task cell's address and `WAKER_VTABLE`, no count of
    // its own). A copy of those parts, never dropped, is valid while the cell lives, and the
    // cell outlives every frame of the goroutine's stack.
    let waker = ManuallyDrop::new(unsafe {
        Waker::from_raw(RawWaker::new(resumed_with.data(), resumed_with.vtable()))
    });
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Ok(v);
        }
        park();
    }
}

/// The waker of the resume that is running the current goroutine, or `None` on a thread
/// that is not running one.
///
/// For waits that keep their state in registers rather than in a future (the netpoller's
/// slot waits, `netpoll::wait`): they build a context from this waker, and `park` when it
/// says pending. The waker is valid until the goroutine suspends: read it afresh after each
/// `park`, and do not hold it (or a context made from it) across one; it may be cloned.
#[inline(always)]
pub(crate) fn resume_waker() -> Option<NonNull<Waker>> {
    current().map(|c| {
        // SAFETY: a running goroutine's `waker` is the non-null pointer its resume set.
        unsafe { NonNull::new_unchecked(c.waker.cast_mut()) }
    })
}

/// Lets other goroutines and tasks run; the current goroutine goes to the back of its queue.
pub(crate) fn yield_now() {
    let Some(cur) = current() else {
        std::thread::yield_now();
        return;
    };
    // SAFETY: see `block_on_in_goroutine`.
    let waker = unsafe { &*cur.waker };
    // Waking our own running task marks it NOTIFIED; when the poll returns Pending the harness
    // reschedules it as a yield (back of the queue, not the LIFO slot).
    waker.wake_by_ref();
    park();
}

pub(crate) use cancel::{refuse_wait_if_cancelled, refusing_waits, waits_refused, Cancelled};
pub(crate) use overflow::install as install_overflow_handler;

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::{Arc, Mutex};

    fn stacks_taken_here() -> usize {
        super::stack::TAKEN_HERE.with(|t| t.get())
    }

    /// A goroutine still parked when its runtime shuts down is unwound, and its stack goes
    /// back to the pool: the stacks a runtime took are all there after it is dropped.
    #[test]
    fn stacks_of_goroutines_unwound_at_shutdown_return_to_the_pool() {
        const N: usize = 100;
        // A size no other test uses, so that the pool's stacks of this size are this test's.
        let size = super::stack::round_size(200 * 1024 + 3 * 4096);
        let rt = crate::Runtime::builder()
            .workers(1)
            .stack_size(size)
            .build()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..N {
            let tx = tx.clone();
            rt.go(move || {
                // Parks for good: its own sender is alive and never sends.
                let (keep, never) = crate::sync::mpsc::channel::<()>();
                tx.send(()).unwrap();
                let _ = never.recv();
                drop(keep);
            });
        }
        for _ in 0..N {
            rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        }
        drop(rt);
        let pooled = super::stack::pooled(size);
        assert!(pooled >= N, "{pooled} stacks of {N} back in the pool");
    }

    /// Spawning takes no stack: a goroutine takes one at its first run, on its worker, and a
    /// burst of spawns that have not run yet holds none (a million of them used to fault in a
    /// million stack pages before the first ran).
    #[test]
    fn goroutines_take_their_stacks_when_they_first_run() {
        const N: usize = 10_000;
        let (spawned, joined) = crate::Runtime::builder()
            .workers(1)
            .build()
            .unwrap()
            .run(|| {
                let before = stacks_taken_here();
                let hs: Vec<_> = (0..N).map(|i| crate::go(move || i)).collect();
                let spawned = stacks_taken_here() - before;
                for (i, h) in hs.into_iter().enumerate() {
                    assert_eq!(h.join().unwrap(), i);
                }
                (spawned, stacks_taken_here() - before)
            });
        assert_eq!(spawned, 0, "spawning took stacks");
        assert_eq!(joined, N, "each goroutine takes one stack when it runs");
    }

    /// A thread started after another one exited gets a tag of its own: the address of a
    /// thread-local, the tag before, was the same for both when the new thread reused the
    /// old one's stack (glibc caches them).
    #[test]
    fn thread_tags_are_not_reused() {
        let first = std::thread::spawn(super::thread_tag).join().unwrap();
        let second = std::thread::spawn(super::thread_tag).join().unwrap();
        assert_ne!(first, second);
        let here = super::thread_tag();
        assert_ne!(here, 0);
        assert_eq!(here, super::thread_tag(), "stable on one thread");
    }

    /// A burst of `go_here` goroutines, far larger than a worker's ring, runs first come first
    /// served on the spawning worker; none goes through the global queue (where a busy worker
    /// would reach it only once every 61 ticks).
    #[test]
    fn go_here_bursts_run_in_order_on_this_worker() {
        let order = crate::Runtime::builder()
            .workers(1)
            .build()
            .unwrap()
            .run(|| {
                let handle = crate::context::expect_handle("test");
                let seen = Arc::new(Mutex::new(Vec::new()));
                let hs: Vec<_> = (0..2_000)
                    .map(|i| {
                        let seen = seen.clone();
                        super::go_here(&handle, move || seen.lock().unwrap().push(i))
                    })
                    .collect();
                assert_eq!(
                    crate::metrics().unwrap().global_queue_depth,
                    0,
                    "nothing spilled"
                );
                for h in hs {
                    h.join().unwrap();
                }
                let v = seen.lock().unwrap().clone();
                v
            });
        assert_eq!(order, (0..2_000).collect::<Vec<_>>());
    }

    /// A goroutine bound to its worker from its spawn (`go_here`, as event-loop handlers are)
    /// that never started is cancelled at shutdown before the parked goroutines are unwound,
    /// as an unbound one is: a destructor of theirs may wait for it (for a handler's
    /// `on_disconnect`, say). Before, it was left to the pass of parked ones, and a parked one
    /// listed ahead of it waited there for good (review, session 29). Here every parked one
    /// waits for all the bound ones, so whatever shards their ids fall in, the first parked
    /// one unwound waits for those listed after it.
    #[test]
    fn a_bound_goroutine_that_never_started_is_cancelled_before_parked_ones() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        use std::time::Duration;
        /// Waits, when dropped, until the group is done.
        struct WaitOnDrop(crate::sync::WaitGroup);
        impl Drop for WaitOnDrop {
            fn drop(&mut self) {
                self.0.wait();
            }
        }
        /// Marks one of the group done when dropped.
        struct DoneOnDrop(crate::sync::WaitGroup);
        impl Drop for DoneOnDrop {
            fn drop(&mut self) {
                self.0.done();
            }
        }
        const N: usize = 32;
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let bound = crate::sync::WaitGroup::new();
        bound.add(N);
        for _ in 0..N {
            let wait = WaitOnDrop(bound.clone());
            let (started_tx, started_rx) = std::sync::mpsc::channel();
            drop(rt.go(move || {
                let _wait = wait;
                let (_keep, never) = crate::sync::mpsc::channel::<()>();
                started_tx.send(()).unwrap();
                let _ = never.recv(); // parks: the shutdown unwinds it here
            }));
            started_rx.recv().unwrap();
        }
        // Kept from starting: the spawning goroutine holds the one worker until the shutdown
        // begins.
        let shared = rt.handle.clone();
        let ran = Arc::new(AtomicUsize::new(0));
        let ran_in = ran.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        drop(rt.go(move || {
            let handle = crate::context::expect_handle("test");
            for _ in 0..N {
                let (done, ran) = (DoneOnDrop(bound.clone()), ran_in.clone());
                drop(super::go_here(&handle, move || {
                    ran.fetch_add(1, SeqCst);
                    drop(done)
                }));
            }
            drop(bound);
            ready_tx.send(()).unwrap();
            while !shared.shutdown.load(SeqCst) {
                std::thread::yield_now();
            }
        }));
        ready_rx.recv().unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(rt);
            done_tx.send(()).unwrap();
        });
        done_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the runtime's drop hung");
        assert_eq!(ran.load(SeqCst), 0, "they never started");
    }
}
