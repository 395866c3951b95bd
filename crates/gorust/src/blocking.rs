//! `gorust::blocking` and `spawn_blocking`: run blocking code on the blocking pool.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// Runs `f` on a blocking-pool thread and parks the calling goroutine until it returns.
///
/// Use it for anything that blocks a thread: file I/O, a C library call, CPU-heavy work.
/// A panic in `f` is re-raised in the caller. Outside a runtime (a plain thread in
/// `Runtime::block_on` included), on a blocking-pool thread already, in a destructor that a
/// runtime's shutdown runs on a worker (which runs no task any more), or in one that a panic's
/// unwind runs (a goroutine must not park mid-unwind, see the source), `f` simply runs on the
/// current thread. Called from a goroutine still running
/// on a serving worker once its runtime has begun to shut down, it parks until the shutdown
/// unwinds the goroutine, as any wait begun then does, and `f` does not run.
///
/// # Panics
///
/// If called from a future (not a goroutine) running on a worker thread, before `f` runs:
/// waiting for it there would block the worker. Use `spawn_blocking(f).await` there. If the
/// pool drops `f` without running it (its runtime shuts down, or no pool thread can be
/// started while it has none: the system's thread limit), with a `&str` payload that says so.
pub fn blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    run_blocking(f).unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// [`blocking`], returning `f`'s panic (or the pool's cancellation) as the payload.
fn run_blocking<F, T>(f: F) -> std::thread::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // A worker in its shutdown step runs no task any more: `f` may block it.
    let on_worker = crate::sched::worker::is_serving();
    let handle = crate::context::handle();
    // In a panic's unwind (a cleanup guard's destructor), too: parked there, the goroutine
    // would leave its thread's panic count raised while other goroutines ran on it, and a lock
    // guard one of them dropped meanwhile would poison its mutex, as if it had panicked
    // (review, session 35). `coop` keeps such a goroutine from yielding for the same reason.
    let Some(handle) = handle.filter(|_| on_worker && !std::thread::panicking()) else {
        return Ok(f());
    };
    if in_a_future_on_a_worker() {
        // Before queueing `f`: `block_on` would panic after it, with `f` still to run.
        panic!("{}", FROM_A_FUTURE);
    }
    let r = crate::block_on(spawn_blocking(f));
    if matches!(&r, Err(p) if not_run(&**p))
        && handle.shutdown.load(std::sync::atomic::Ordering::Acquire)
    {
        // The pool stopped with the runtime's shutdown (which sets the flag first), and `f`
        // did not run. The goroutine, still running when the shutdown began, parks here as
        // at any other wait, and its worker's shutdown step unwinds it, rather than panic.
        loop {
            crate::block_on(std::future::pending::<()>());
        }
    }
    r
}

/// Whether this thread is a worker that still runs tasks, outside any goroutine: a future's
/// poll, where waiting (for the pool, for another runtime) would block the worker.
pub(crate) fn in_a_future_on_a_worker() -> bool {
    crate::sched::worker::is_serving() && !crate::goroutine::in_goroutine()
}

const FROM_A_FUTURE: &str = "gorust::blocking (or a gorust::fs call, or a host name to resolve) \
    from a future on a worker thread would block the worker; use spawn_blocking(f).await \
    there, or call it from a goroutine";

/// [`blocking`] for calls that return `io::Result` (`gorust::fs`, name resolution): from a
/// future on a worker thread, an error that says so instead of a panic, as the network calls
/// give, and `f` does not run.
pub(crate) fn blocking_io<T, F>(f: F) -> std::io::Result<T>
where
    F: FnOnce() -> std::io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    if in_a_future_on_a_worker() {
        return Err(std::io::Error::other(FROM_A_FUTURE));
    }
    match run_blocking(f) {
        Ok(r) => r,
        Err(p) if not_run(&*p) => Err(std::io::Error::other(NOT_RUN)),
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// The payload of a call the blocking pool dropped without running it: what [`blocking`]
/// panics with then, and what `gorust::fs` and name resolution return as an error. Not the
/// tasks' "runtime shut down": the pool also drops its queue when it cannot start a thread
/// while it has none, with the runtime alive (review, session 26).
pub(crate) const NOT_RUN: &str = "gorust: the blocking pool dropped this call without running \
    it: its runtime is shutting down, or no pool thread could be started (the reason is on \
    stderr)";

/// Whether a call's payload is the pool's [`NOT_RUN`], not `f`'s own panic. Takes the payload
/// itself: a `&Box<dyn Any>` coerced here would be the box, and never match.
fn not_run(payload: &(dyn std::any::Any + Send)) -> bool {
    payload.downcast_ref::<&str>() == Some(&NOT_RUN)
}

/// Runs `f` on a blocking-pool thread; the returned future resolves to its result (or its
/// panic's payload, or a payload that says it was not run: the runtime shut down first, or
/// no pool thread could be started).
///
/// # Panics
///
/// Outside a gorust runtime.
pub fn spawn_blocking<F, T>(f: F) -> BlockingHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let handle = crate::context::expect_handle("spawn_blocking");
    let slot = Arc::new(Mutex::new(Slot {
        result: None,
        waker: None,
    }));
    let tx = Sender {
        slot: Some(slot.clone()),
    };
    let job = Box::new(move || {
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        tx.send(res);
    });
    if handle.blocking.spawn(job, handle.clone()).is_err() {
        // The job (and its Sender) was dropped: the receiver sees the cancellation.
    }
    BlockingHandle { slot }
}

struct Slot<T> {
    result: Option<std::thread::Result<T>>,
    waker: Option<Waker>,
}

/// Completes the slot exactly once: with the job's result, or, if dropped unsent (the pool
/// refused or discarded the job at shutdown), with a cancellation payload.
struct Sender<T> {
    slot: Option<Arc<Mutex<Slot<T>>>>,
}

impl<T> Sender<T> {
    fn send(mut self, res: std::thread::Result<T>) {
        self.complete(res);
    }

    fn complete(&mut self, res: std::thread::Result<T>) {
        let Some(slot) = self.slot.take() else { return };
        let waker = {
            let mut s = slot.lock().unwrap_or_else(|e| e.into_inner());
            s.result = Some(res);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.complete(Err(Box::new(NOT_RUN)));
    }
}

/// The result of [`spawn_blocking`], as a future.
pub struct BlockingHandle<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

impl<T> std::fmt::Debug for BlockingHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlockingHandle")
    }
}

impl<T> Future for BlockingHandle<T> {
    type Output = std::thread::Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = s.result.take() {
            return Poll::Ready(r);
        }
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn not_run_tells_the_pools_payload_from_a_panic() {
        let dropped: Box<dyn std::any::Any + Send> = Box::new(NOT_RUN);
        let panicked: Box<dyn std::any::Any + Send> = Box::new("f panicked");
        assert!(not_run(&*dropped));
        assert!(!not_run(&*panicked));
        // Through a reference to the box, as `run_blocking` holds it.
        let r: std::thread::Result<()> = Err(dropped);
        assert!(matches!(&r, Err(p) if not_run(&**p)));
    }
}
