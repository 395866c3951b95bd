//! Waits refused to a goroutine that is being cancelled.
//!
//! At shutdown a goroutine still parked is unwound on its home worker (`Goroutine::drop`:
//! corosensei's forced unwind, a panic raised where it suspended). Its destructors run during
//! that unwind with no goroutine current, so a wait in one of them blocks the thread
//! (`block_on`'s doc). A `catch_unwind` of the goroutine's own around the wait, though, stops
//! the unwind, and the code after it runs on, still with no goroutine current: before this
//! module its next wait blocked the worker's shutdown step, and a loop around the catch kept
//! `Runtime`'s drop waiting for good (review, session 23).
//!
//! So while a goroutine is unwound on this thread ([`Unwinding`]), a wait that blocks the
//! thread asks [`refuse_wait_if_cancelled`] first: outside a destructor run by an unwind
//! (`std::thread::panicking()` is false), the cancellation was caught, and the wait panics
//! again with [`CANCELLED`] instead of waiting. A loop around the catch meets that at each
//! wait; after [`REFUSALS_BEFORE_ABORT`] of them in one unwind the process aborts with a
//! message that names the goroutine, rather than spin for ever.
//!
//! So is the destructor of a future that the shutdown drops (session 29): on a worker, a
//! future's wait panics in any case (`block_on`), and the shutdown drops the futures before
//! it unwinds the parked goroutines (one of those may join a future), so a future's
//! destructor that waited for a goroutine would wait for good.
//!
//! The event loop's `on_disconnect` is refused waits the same way when the runtime's shutdown
//! runs it in place of a handler goroutine it will not start ([`refusing_waits`]): an idle
//! connection closed by the shutdown itself has no goroutine to run it on, and a wait there
//! would hold the shutdown as long as it lasted.
//!
//! State: one thread-local, set only around a forced unwind or such a callback (what is being
//! cancelled and the refusals so far), saved and restored around nested unwinds (a
//! destructor dropping another runtime's parked goroutine). Nothing here runs on the hot
//! path: the checks sit in the waits that block a thread.
//!
//! Rejected: aborting at the first caught cancellation (a server that catches panics around
//! each request, with its accept outside the catch, is the common case, and one more panic
//! ends it cleanly); letting the wait suspend the coroutine so that corosensei unwinds it
//! again (a wait in a destructor during the unwind would then panic inside a panic, an abort);
//! exposing a way to test a payload for the cancellation (the first unwind's payload is
//! corosensei's private type).

use std::cell::Cell;
use std::panic::resume_unwind;

/// The payload of the panic that refuses a wait: what a `catch_unwind` that prints `&str`
/// payloads shows.
pub(crate) const CANCELLED: &str =
    "gorust: this goroutine is being cancelled by its runtime's shutdown and may not wait";

/// Refused waits in one forced unwind before the process aborts.
pub(crate) const REFUSALS_BEFORE_ABORT: u32 = 1_000;

/// What the shutdown is cancelling.
#[derive(Clone, Copy)]
pub(crate) enum Cancelled {
    /// A goroutine, by its id.
    Goroutine(u64),
    /// The event loop's `on_disconnect` of a connection, by its id.
    Disconnect(u64),
    /// A future (a task of `spawn`), by its task id: its destructor, dropped by the shutdown.
    Future(u64),
}

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cancelled::Goroutine(id) => write!(f, "goroutine {id}"),
            Cancelled::Disconnect(id) => {
                write!(f, "the event loop's on_disconnect of connection {id}")
            }
            Cancelled::Future(id) => write!(f, "the destructor of future {id}"),
        }
    }
}

#[derive(Clone, Copy)]
struct State {
    cancelled: Cancelled,
    refusals: u32,
}

thread_local! {
    /// The goroutine being unwound on this thread, if any.
    static UNWINDING: Cell<Option<State>> = const { Cell::new(None) };
}

/// Marks goroutine `id` as unwound on this thread until dropped; then restores what was
/// marked before.
pub(crate) struct Unwinding(Option<State>);

impl Unwinding {
    pub(crate) fn enter(cancelled: Cancelled) -> Self {
        let state = State {
            cancelled,
            refusals: 0,
        };
        Unwinding(UNWINDING.with(|u| u.replace(Some(state))))
    }
}

/// Runs `f`, a callback the shutdown runs in place of a goroutine it cancelled, with waits
/// refused as in that goroutine's unwind (see the module header).
pub(crate) fn refusing_waits<R>(cancelled: Cancelled, f: impl FnOnce() -> R) -> R {
    let _unwinding = Unwinding::enter(cancelled);
    f()
}

impl Drop for Unwinding {
    fn drop(&mut self) {
        UNWINDING.with(|u| u.set(self.0));
    }
}

/// Called by every wait that would block the thread: panics with [`CANCELLED`] if a
/// goroutine unwound here caught its cancellation and went on to wait (see the module
/// header); returns otherwise, also in a destructor that the unwind itself runs.
#[inline]
pub(crate) fn refuse_wait_if_cancelled() {
    if let Some(state) = UNWINDING.with(|u| u.get()) {
        if !std::thread::panicking() {
            refuse(state);
        }
    }
}

/// Whether a wait that blocks the thread would be refused here ([`refuse_wait_if_cancelled`]
/// would panic): for a call that must decide before it starts (a rendezvous send, which once
/// offered may be received at once).
pub(crate) fn waits_refused() -> bool {
    UNWINDING.with(|u| u.get()).is_some() && !std::thread::panicking()
}

#[cold]
#[inline(never)]
fn refuse(mut state: State) -> ! {
    state.refusals += 1;
    UNWINDING.with(|u| u.set(Some(state)));
    if state.refusals >= REFUSALS_BEFORE_ABORT {
        diag!(
            "gorust: {} is being cancelled by its runtime's shutdown, and caught the \
             panic that cancels it {} times, waiting again each time; aborting. A catch_unwind \
             around a wait must let a panic it did not raise go on (std::panic::resume_unwind).",
            state.cancelled,
            state.refusals
        );
        std::process::abort();
    }
    // `resume_unwind`: no panic hook, so no message on stderr for each refusal.
    resume_unwind(Box::new(CANCELLED))
}
