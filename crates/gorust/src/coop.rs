//! Cooperative budget: one busy task cannot starve the others.
//!
//! Before each poll the worker gives the task a budget of `BUDGET` operations. Every
//! operation of the runtime's own primitives that completes without waiting (a channel send or
//! receive, a lock taken, a socket call that finds its socket ready) spends one unit. When the
//! budget is spent, the primitive reports `Pending` after waking its task, so the task goes to
//! the back of its queue and the rest run. A goroutine in such a loop is rescheduled the same
//! way: its `block_on` parks with the task already notified, and a socket call yields
//! (`spend_or_yield`). A future of a socket, lock, channel or wait group gives its unit back
//! when it ends `Pending` without progress, so a task that polls many waiting futures in one
//! poll still reaches every one of them. Outside a worker the budget is unlimited; so is the
//! one poll `block_on` makes for a future on a worker (it cannot wait). (Timers do not spend:
//! a sleep that is already due returns, as Go's `time.Sleep(0)` does.) The non-waiting
//! `try_*` socket calls do not spend either, as in tokio; a loop of them alone must park
//! (`readable`, which spends) or yield.
//!
//! The budget counts operations, not time: a task that loops on pure computation without
//! touching any runtime primitive must call `gorust::yield_now()` itself, as in Go before
//! asynchronous preemption.
//!
//! Who touches what: the budget is one thread-local counter (`LEFT`, a `Cell`). It needs no
//! synchronisation, because a task's poll runs on its worker's thread, and so does a
//! goroutine's code inside that poll, on the goroutine's own stack. The worker sets the counter
//! to `BUDGET` right before each task's poll (`reset`, in `WorkerCtx::run_task`) and back to
//! unlimited right after (`unconstrain`), so its own loop between polls is never refused. The
//! primitives that run on that thread during the poll spend units (`poll_proceed`,
//! `try_spend`, `spend_or_yield`) and give them back (`refund`). `unconstrained` runs a wait
//! with no budget and puts the old value back afterwards, also on a panic. The waits that
//! cannot starve another task use it: `wait_on_thread` (a plain thread's `block_on`, or a
//! worker's in its shutdown step, both blocking the thread), and the single poll that
//! `block_on` makes for a future on a worker.
//!
//! Rejected:
//! - Preemption by signal, as Go has done since 1.14 (ARCHITECTURE.md lists the missing
//!   preemption as a known limit). A future's poll is a plain call on the worker's stack, with
//!   nowhere to be suspended to. A goroutine stopped at an arbitrary instruction could hold a
//!   lock, or be in the middle of the allocator, when the next goroutine on that thread needs
//!   the same. Go stops a goroutine only where its compiler and runtime know it is safe to, and
//!   Rust's compiler records no such points. Even a voluntary yield must avoid one state here:
//!   a goroutine does not yield while its thread is unwinding a panic (`yield_spent`), since
//!   std counts panics per thread. A preempting signal would have to know every such state.
//! - A budget of time instead of operations. Each operation would read a clock, on a path where
//!   even an out-of-line call to `try_spend` showed in the echo server's profile. A loop that
//!   touches no primitive would still be unbounded, because nothing there would look at the
//!   clock either.

use std::cell::Cell;
use std::task::{Context, Poll};

/// Operations a task may complete per poll before it must yield (tokio uses 128 too).
pub(crate) const BUDGET: u32 = 128;
const UNCONSTRAINED: u32 = u32::MAX;

thread_local! {
    static LEFT: Cell<u32> = const { Cell::new(UNCONSTRAINED) };
}

pub(crate) fn reset() {
    LEFT.with(|l| l.set(BUDGET));
}

pub(crate) fn unconstrain() {
    LEFT.with(|l| l.set(UNCONSTRAINED));
}

/// Runs `f` with no budget, then puts back the budget there was (also if `f` panics): for a
/// wait that blocks the thread, where no other task can be starved and a spent budget would
/// only make every primitive report `Pending` for ever.
pub(crate) fn unconstrained<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(u32);
    impl Drop for Restore {
        fn drop(&mut self) {
            LEFT.with(|l| l.set(self.0));
        }
    }
    let _restore = Restore(LEFT.with(|l| l.replace(UNCONSTRAINED)));
    f()
}

/// Spends one unit if one is left and says whether it did (no wake-up either way): for fast
/// paths that fall back to a future when it did not, whose poll then yields. Inlined: every
/// socket call makes it (out of line it was a call of its own, ~10 ns, per call in the echo
/// server's profile).
#[inline(always)]
pub(crate) fn try_spend() -> bool {
    LEFT.with(|l| {
        let left = l.get();
        if left == 0 {
            return false;
        }
        if left != UNCONSTRAINED {
            l.set(left - 1);
        }
        true
    })
}

/// For a goroutine's call that may complete without waiting (network I/O on a socket that is
/// already ready): spends one unit, and when none is left yields first. A goroutine whose
/// socket never runs dry (an accept loop under a burst, a reader of a fast peer, a writer to
/// a fast reader) never parks, so without this it would keep its worker for as long as its
/// loop runs. Every resume brings a fresh budget, so the unit spent by a call that then parks
/// is not missed. Off a goroutine it only spends: a blocking call from a future on a worker
/// fails when it would wait, and a plain thread has no budget.
#[inline(always)]
pub(crate) fn spend_or_yield() {
    if !try_spend() {
        yield_spent();
    }
}

#[cold]
#[inline(never)]
fn yield_spent() {
    // A goroutine that dropped its own runtime is cancelled once it parks: it only spends.
    // Nor does a goroutine yield while it unwinds a panic: std counts panics per thread, so
    // the goroutines its worker ran meanwhile would see `std::thread::panicking()` (and
    // poison every std `Mutex` guard they dropped; review, session 21). A destructor that
    // must wait still parks; one that would not is not made to.
    if crate::goroutine::in_goroutine()
        && crate::sched::worker::is_serving()
        && !std::thread::panicking()
    {
        crate::goroutine::yield_now();
    }
}

/// Gives back the unit a `poll_proceed` took, for a poll that then made no progress and ends
/// `Pending` (tokio restores it the same way): without it, a task polling more waiting futures
/// (idle sockets, held locks, empty channels) than its budget in one poll would spend it all
/// on those that are not ready and never reach the rest.
pub(crate) fn refund() {
    LEFT.with(|l| {
        let left = l.get();
        if left < BUDGET {
            l.set(left + 1);
        }
    })
}

/// Spends one unit; `Pending` (with the task woken) when none is left, but for a thread that
/// is unwinding a panic: a goroutine that yielded there would let other goroutines run while
/// `std::thread::panicking()` is true on their thread, and every std lock they released would
/// be poisoned (as in `yield_spent`).
pub fn poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    LEFT.with(|l| {
        let left = l.get();
        if left == 0 && !std::thread::panicking() {
            cx.waker().wake_by_ref();
            Poll::Pending
        } else {
            if left != UNCONSTRAINED && left != 0 {
                l.set(left - 1);
            }
            Poll::Ready(())
        }
    })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::Duration;

    /// A thread that blocks in `block_on` polls without a budget: with the budget spent (as a
    /// goroutine that drops its runtime may have it), a primitive would otherwise report
    /// `Pending` and wake itself at every poll, and the wait would never end.
    #[test]
    fn a_blocking_wait_ignores_a_spent_budget_and_puts_it_back() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            super::reset();
            while super::try_spend() {}
            let polls = std::cell::Cell::new(0);
            crate::block_on(std::future::poll_fn(|cx| {
                polls.set(polls.get() + 1);
                super::poll_proceed(cx)
            }));
            // The spent budget is back after the wait.
            let _ = tx.send((polls.get(), super::try_spend()));
        });
        let (polls, spent) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("block_on with a spent budget never finished");
        assert_eq!((polls, spent), (1, false));
    }
}
