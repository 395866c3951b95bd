//! Which runtime the current thread belongs to.
//!
//! A worker thread knows its runtime through its worker context (`sched::worker`). Other
//! threads that act for a runtime (its blocking-pool threads, code inside `Runtime::block_on`)
//! carry a handle here, so that `gorust::go` and `gorust::spawn` work from them too.
//!
//! An entered handle takes precedence over the worker's own runtime: a goroutine that calls
//! another runtime's `Runtime::block_on` spawns onto that runtime, as the method promises.
//! Because a goroutine parks inside `block_on` and its worker runs other goroutines meanwhile,
//! `Runtime::block_on` enters for each poll of its future (`enter_per_poll`), never across a
//! park: an entry held across the park would leak into the goroutines run in between, and
//! two of them leaving in the other order would restore a stale handle for good.

use std::cell::RefCell;
use std::future::Future;

use crate::sched::Handle;

thread_local! {
    static ENTERED: RefCell<Option<Handle>> = const { RefCell::new(None) };
}

/// The runtime of the current thread, if any.
pub(crate) fn handle() -> Option<Handle> {
    entered().or_else(|| crate::sched::worker::with_current(|w| w.map(|w| w.handle.clone())))
}

fn entered() -> Option<Handle> {
    ENTERED.with(|e| e.borrow().clone())
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
    let prev = ENTERED.with(|e| e.borrow_mut().replace(handle));
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
        ENTERED.with(|e| *e.borrow_mut() = prev);
    }
}
