//! Which runtime the current thread belongs to.
//!
//! A worker thread knows its runtime through its worker context (`sched::worker`). Other
//! threads that act for a runtime (its blocking-pool threads, code inside `Runtime::block_on`)
//! carry a handle here, so that `gorust::go` and `gorust::spawn` work from them too.
//!
//! An entered handle takes precedence over the worker's own runtime: a goroutine that calls
//! another runtime's `Runtime::block_on` spawns onto that runtime, as the method promises.
//!
//! The entry belongs to the goroutine, not to the thread, though it is kept in a thread-local:
//! a goroutine parks inside `block_on` and its worker runs other goroutines meanwhile, and an
//! entry left in place across the park would leak into them, and two of them leaving in the
//! other order would restore a stale handle for good. So `Runtime::block_on` enters for each
//! poll of its future (`enter_per_poll`), and a goroutine that parks *inside* such a poll (a
//! blocking-looking call in the `async` block: a sync `sleep`, a socket read, a spent budget)
//! takes its entry out of the thread-local for the length of the park (`goroutine::park`,
//! through [`leave_for_park`]); session 8 covered only the parks between polls (review,
//! session 21).

use std::cell::Cell;
use std::future::Future;

use crate::sched::Handle;

thread_local! {
    static ENTERED: Cell<Option<Handle>> = const { Cell::new(None) };
}

/// The runtime of the current thread, if any.
pub(crate) fn handle() -> Option<Handle> {
    entered().or_else(|| crate::sched::worker::with_current(|w| w.map(|w| w.handle.clone())))
}

fn entered() -> Option<Handle> {
    ENTERED.with(|e| {
        let h = e.take();
        let copy = h.clone();
        e.set(h);
        copy
    })
}

/// Takes the running goroutine's entry out of the thread for the length of a park; the guard
/// puts it back when the goroutine runs again. A pointer load and store when none is entered.
#[inline(always)]
pub(crate) fn leave_for_park() -> ParkedEntry {
    ParkedEntry(ENTERED.with(Cell::take))
}

/// Takes the thread's own entry out until the guard drops, for a drop that unwinds parked
/// goroutines inline (a runtime dropped inside one of its goroutines, possibly inside another
/// runtime's `block_on` poll, which entered that runtime). Left in place, the entry was seen
/// by the unwinding goroutines' destructors, and one that had parked with an entry of its own
/// put that back on its resume for the unwind, over the thread's (review, session 22). A
/// thread never becomes a worker with an entry: `Runtime::run` serves inline only where no
/// runtime is entered.
pub(crate) fn suspend_entry() -> EnterGuard {
    EnterGuard {
        prev: ENTERED.with(Cell::take),
    }
}

/// A parked goroutine's entry (see [`leave_for_park`]).
pub(crate) struct ParkedEntry(Option<Handle>);

impl Drop for ParkedEntry {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            ENTERED.with(|e| e.set(Some(h)));
        }
    }
}

/// The runtime of the current thread, or a panic that says how to get one.
pub(crate) fn expect_handle(what: &str) -> Handle {
    handle().unwrap_or_else(|| {
        panic!(
            "gorust::{what} called outside a gorust runtime: start one with gorust::run(...) \
             or Runtime::builder().build()?.run(...)"
        )
    })
}

/// Calls `f` with the current thread's runtime, or panics as [`expect_handle`]. On a worker
/// (where every goroutine runs) the handle is borrowed, not cloned: a spawn then writes the
/// shared reference count once (for the task's own handle) instead of three times (see
/// `sched::Shared`'s alignment).
pub(crate) fn with_handle<R>(what: &str, f: impl FnOnce(&Handle) -> R) -> R {
    if let Some(h) = entered() {
        return f(&h);
    }
    let mut f = Some(f);
    let on_worker = crate::sched::worker::with_current(|w| {
        w.map(|w| (f.take().expect("called once"))(&w.handle))
    });
    match on_worker {
        Some(r) => r,
        None => (f.take().expect("called once"))(&expect_handle(what)),
    }
}

/// Makes `handle` the current thread's runtime until the guard drops.
pub(crate) fn enter(handle: Handle) -> EnterGuard {
    let prev = ENTERED.with(|e| e.replace(Some(handle)));
    EnterGuard { prev }
}

/// `fut`, polled with `handle` entered for the length of each poll only (see the header).
pub(crate) async fn enter_per_poll<F: Future>(handle: Handle, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        let _enter = enter(handle.clone());
        fut.as_mut().poll(cx)
    })
    .await
}

pub(crate) struct EnterGuard {
    prev: Option<Handle>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        ENTERED.with(|e| e.set(prev));
    }
}
