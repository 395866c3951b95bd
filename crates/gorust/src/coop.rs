//! Cooperative budget: one busy task cannot starve the others.
//!
//! Before each poll the worker gives the task a budget of `BUDGET` operations. Every
//! operation of the runtime's own primitives that completes without waiting (a channel receive
//! that finds a message, a timer already due) spends one unit. When the budget is spent, the
//! primitive reports `Pending` after waking its task, so the task goes to the back of its
//! queue and the rest run; a goroutine in such a loop is rescheduled the same way (its
//! `block_on` parks with the task already notified). Outside a worker the budget is unlimited.
//!
//! The budget counts operations, not time: a task that loops on pure computation without
//! touching any runtime primitive must call `gorust::yield_now()` itself, as in Go before
//! asynchronous preemption.

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

/// Spends one unit if one is left and says whether it did (no wake-up either way): for fast
/// paths that fall back to a future when it did not, whose poll then yields.
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

/// Spends one unit; `Pending` (with the task woken) when none is left.
pub fn poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    LEFT.with(|l| {
        let left = l.get();
        if left == 0 {
            cx.waker().wake_by_ref();
            Poll::Pending
        } else {
            if left != UNCONSTRAINED {
                l.set(left - 1);
            }
            Poll::Ready(())
        }
    })
}
