//! Which runtime the current thread belongs to.
//!
//! A worker thread knows its runtime through its worker context (`sched::worker`). Other
//! threads that act for a runtime (its blocking-pool threads, code inside `Runtime::enter`)
//! carry a handle here, so that `gorust::go` and `gorust::spawn` work from them too.

use std::cell::RefCell;

use crate::sched::Handle;

thread_local! {
    static ENTERED: RefCell<Option<Handle>> = const { RefCell::new(None) };
}

/// The runtime of the current thread, if any.
pub(crate) fn handle() -> Option<Handle> {
    crate::sched::worker::with_current(|w| w.map(|w| w.handle.clone()))
        .or_else(|| ENTERED.with(|e| e.borrow().clone()))
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

pub(crate) struct EnterGuard {
    prev: Option<Handle>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        ENTERED.with(|e| *e.borrow_mut() = prev);
    }
}
