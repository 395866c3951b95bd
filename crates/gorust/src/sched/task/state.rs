//! The task state word: one atomic `usize` holding lifecycle bits and the reference count.
//!
//! ```text
//!  63 ........................ 6   5        4          3         2        1        0
//! [        reference count      ][JOIN_WAKER][JOIN_INT][CANCELLED][NOTIFIED][COMPLETE][RUNNING]
//! ```
//!
//! | bit | set by | cleared by | meaning |
//! |---|---|---|---|
//! | `RUNNING` | the worker taking the task off a queue (`transition_to_running`) or a canceller that found it idle | `transition_to_idle`, `transition_to_complete` | one thread has exclusive access to the future |
//! | `COMPLETE` | the runner (`transition_to_complete`) | never | the future is gone; the output (if any) is in the stage |
//! | `NOTIFIED` | a waker (`transition_to_notified_*`) | `transition_to_running` | exactly one `Notified` reference exists (in a queue or about to be), or the task is running and must be polled again |
//! | `CANCELLED` | `transition_to_shutdown` | never | the next runner drops the future instead of polling it |
//! | `JOIN_INTEREST` | creation | the `JoinHandle` on drop | someone will read the output; otherwise the completer drops it |
//! | `JOIN_WAKER` | the `JoinHandle` after writing its waker | the `JoinHandle` (before rewriting) or the completer (after waking) | who owns the trailer's waker field: set = the completer may read it |
//!
//! References: the owned-task list holds one until completion, the `JoinHandle` one, a queued or
//! running `Notified` one, and each `Waker` one. The last `ref_dec` deallocates.
//!
//! Orderings: every transition that hands the future from one thread to another is an `AcqRel`
//! read-modify-write, so a runner sees everything the previous runner wrote to the stage, and a
//! `JoinHandle` that observes `COMPLETE` (Acquire) sees the output the completer wrote before it.
//! Reference increments are `Relaxed` (the holder already has access); decrements are `AcqRel` so
//! that the deallocating thread sees every other holder's last use.

use crate::loom::sync::atomic::{AtomicUsize, Ordering::*};

const RUNNING: usize = 1 << 0;
const COMPLETE: usize = 1 << 1;
const NOTIFIED: usize = 1 << 2;
const CANCELLED: usize = 1 << 3;
const JOIN_INTEREST: usize = 1 << 4;
const JOIN_WAKER: usize = 1 << 5;
const REF_SHIFT: usize = 6;
const REF_ONE: usize = 1 << REF_SHIFT;

/// A new task: referenced by the owned list, its first `Notified` and its `JoinHandle`.
const INITIAL: usize = (3 * REF_ONE) | JOIN_INTEREST | NOTIFIED;

pub(crate) struct State {
    word: AtomicUsize,
}

/// A copy of the state word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot(usize);

impl Snapshot {
    pub(crate) fn is_running(self) -> bool {
        self.0 & RUNNING != 0
    }
    pub(crate) fn is_complete(self) -> bool {
        self.0 & COMPLETE != 0
    }
    pub(crate) fn is_notified(self) -> bool {
        self.0 & NOTIFIED != 0
    }
    pub(crate) fn is_cancelled(self) -> bool {
        self.0 & CANCELLED != 0
    }
    pub(crate) fn is_join_interested(self) -> bool {
        self.0 & JOIN_INTEREST != 0
    }
    pub(crate) fn is_join_waker_set(self) -> bool {
        self.0 & JOIN_WAKER != 0
    }
    pub(crate) fn ref_count(self) -> usize {
        self.0 >> REF_SHIFT
    }
    fn is_idle(self) -> bool {
        self.0 & (RUNNING | COMPLETE) == 0
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("running", &self.is_running())
            .field("complete", &self.is_complete())
            .field("notified", &self.is_notified())
            .field("cancelled", &self.is_cancelled())
            .field("join_interest", &self.is_join_interested())
            .field("join_waker", &self.is_join_waker_set())
            .field("refs", &self.ref_count())
            .finish()
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToRunning {
    /// The caller now has exclusive access to the future and must poll it.
    Success,
    /// As `Success`, but the task was cancelled: drop the future instead of polling.
    Cancelled,
    /// The task is running elsewhere or complete; the caller's reference was released.
    Failed,
    /// As `Failed`, and that was the last reference: deallocate.
    Dealloc,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToIdle {
    /// Parked; the runner's reference was released.
    Ok,
    /// Woken while running: the runner's reference becomes the new `Notified`; reschedule it.
    OkNotified,
    /// Cancelled while running: the runner keeps access and must drop the future.
    Cancelled,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToNotified {
    /// Schedule the task: a `Notified` reference is now held by the caller.
    Submit,
    /// Nothing to do.
    DoNothing,
    /// Nothing to do, and the waker's reference was the last: deallocate.
    Dealloc,
}

/// Aborts with a `runtime:` message: an impossible state means memory safety is already lost.
#[cold]
fn corrupt(what: &str, s: Snapshot) -> ! {
    diag!("runtime: task state corrupt: {what}: {s:?}");
    std::process::abort()
}

impl State {
    pub(crate) fn new() -> State {
        State {
            word: AtomicUsize::new(INITIAL),
        }
    }

    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.word.load(Acquire))
    }

    fn update<T>(&self, mut f: impl FnMut(Snapshot) -> (Option<Snapshot>, T)) -> (Snapshot, T) {
        let mut cur = Snapshot(self.word.load(Acquire));
        loop {
            let (next, out) = f(cur);
            let Some(next) = next else { return (cur, out) };
            match self
                .word
                .compare_exchange_weak(cur.0, next.0, AcqRel, Acquire)
            {
                Ok(_) => return (cur, out),
                Err(actual) => cur = Snapshot(actual),
            }
        }
    }

    /// Called with a `Notified` reference, by the thread about to poll.
    pub(crate) fn transition_to_running(&self) -> ToRunning {
        self.update(|s| {
            if !s.is_notified() {
                corrupt("run without NOTIFIED", s);
            }
            if !s.is_idle() {
                let next = Snapshot(s.0 - REF_ONE);
                let out = if next.ref_count() == 0 {
                    ToRunning::Dealloc
                } else {
                    ToRunning::Failed
                };
                return (Some(next), out);
            }
            let next = Snapshot((s.0 | RUNNING) & !NOTIFIED);
            let out = if s.is_cancelled() {
                ToRunning::Cancelled
            } else {
                ToRunning::Success
            };
            (Some(next), out)
        })
        .1
    }

    /// Called by the runner after a poll returned `Pending`.
    pub(crate) fn transition_to_idle(&self) -> ToIdle {
        self.update(|s| {
            if !s.is_running() {
                corrupt("idle while not running", s);
            }
            if s.is_cancelled() {
                return (None, ToIdle::Cancelled);
            }
            if s.is_notified() {
                (Some(Snapshot(s.0 & !RUNNING)), ToIdle::OkNotified)
            } else {
                if s.ref_count() < 2 {
                    // The owned list's reference outlives the runner's.
                    corrupt("idle would release the last reference", s);
                }
                (Some(Snapshot((s.0 & !RUNNING) - REF_ONE)), ToIdle::Ok)
            }
        })
        .1
    }

    /// Called by the runner once the output (or cancellation) is stored.
    pub(crate) fn transition_to_complete(&self) -> Snapshot {
        let prev = Snapshot(self.word.fetch_xor(RUNNING | COMPLETE, AcqRel));
        if !prev.is_running() || prev.is_complete() {
            corrupt("complete while not running", prev);
        }
        prev
    }

    /// A waker consuming its own reference.
    pub(crate) fn transition_to_notified_by_val(&self) -> ToNotified {
        self.update(|s| {
            if s.is_running() {
                // The runner will see NOTIFIED in transition_to_idle; drop the waker's ref.
                let next = Snapshot((s.0 | NOTIFIED) - REF_ONE);
                (Some(next), ToNotified::DoNothing)
            } else if s.is_complete() || s.is_notified() {
                let next = Snapshot(s.0 - REF_ONE);
                let out = if next.ref_count() == 0 {
                    ToNotified::Dealloc
                } else {
                    ToNotified::DoNothing
                };
                (Some(next), out)
            } else {
                // The waker's reference becomes the Notified reference.
                (Some(Snapshot(s.0 | NOTIFIED)), ToNotified::Submit)
            }
        })
        .1
    }

    /// A waker keeping its reference.
    pub(crate) fn transition_to_notified_by_ref(&self) -> ToNotified {
        self.update(|s| {
            if s.is_complete() || s.is_notified() {
                (None, ToNotified::DoNothing)
            } else if s.is_running() {
                (Some(Snapshot(s.0 | NOTIFIED)), ToNotified::DoNothing)
            } else {
                (
                    Some(Snapshot((s.0 | NOTIFIED) + REF_ONE)),
                    ToNotified::Submit,
                )
            }
        })
        .1
    }

    /// Marks the task cancelled. Returns `true` if it was idle, in which case the caller now
    /// holds `RUNNING` and must drop the future and complete the task.
    pub(crate) fn transition_to_shutdown(&self) -> bool {
        self.update(|s| {
            let mut next = s.0 | CANCELLED;
            if s.is_idle() {
                next |= RUNNING;
            }
            (Some(Snapshot(next)), s.is_idle())
        })
        .1
    }

    /// The `JoinHandle` is being dropped. Returns the previous state. If the task was not
    /// complete, `JOIN_WAKER` is cleared too and the handle owns the waker field.
    pub(crate) fn unset_join_interested(&self) -> Snapshot {
        self.update(|s| {
            let mut next = s.0 & !JOIN_INTEREST;
            if !s.is_complete() {
                next &= !JOIN_WAKER;
            }
            (Some(Snapshot(next)), ())
        })
        .0
    }

    /// Publishes the waker the `JoinHandle` just wrote. Fails if the task completed first.
    pub(crate) fn set_join_waker(&self) -> Result<(), Snapshot> {
        let (prev, ok) = self.update(|s| {
            if s.is_complete() {
                return (None, false);
            }
            (Some(Snapshot(s.0 | JOIN_WAKER)), true)
        });
        if ok {
            Ok(())
        } else {
            Err(prev)
        }
    }

    /// Takes back the waker field to replace it. Fails if the task completed first.
    pub(crate) fn unset_join_waker(&self) -> Result<(), Snapshot> {
        let (prev, ok) = self.update(|s| {
            if s.is_complete() {
                return (None, false);
            }
            (Some(Snapshot(s.0 & !JOIN_WAKER)), true)
        });
        if ok {
            Ok(())
        } else {
            Err(prev)
        }
    }

    /// The completer is done with the join waker. Returns the previous state: if the handle has
    /// lost interest meanwhile, the completer must drop the waker.
    pub(crate) fn unset_join_waker_after_complete(&self) -> Snapshot {
        Snapshot(self.word.fetch_and(!JOIN_WAKER, AcqRel))
    }

    pub(crate) fn ref_inc(&self) {
        let prev = self.word.fetch_add(REF_ONE, Relaxed);
        if prev > isize::MAX as usize {
            corrupt("reference count overflow", Snapshot(prev));
        }
    }

    /// Releases `n` references; returns `true` if they were the last.
    pub(crate) fn ref_dec(&self, n: usize) -> bool {
        let prev = Snapshot(self.word.fetch_sub(n * REF_ONE, AcqRel));
        if prev.ref_count() < n {
            corrupt("reference count underflow", prev);
        }
        prev.ref_count() == n
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn run_park_wake_complete() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), ToRunning::Success);
        // A waker clone exists: +1.
        s.ref_inc();
        assert_eq!(s.transition_to_idle(), ToIdle::Ok);
        assert_eq!(s.load().ref_count(), 3); // owned, join, waker
        assert_eq!(s.transition_to_notified_by_val(), ToNotified::Submit);
        assert_eq!(s.transition_to_running(), ToRunning::Success);
        let prev = s.transition_to_complete();
        assert!(prev.is_join_interested());
        assert!(s.load().is_complete());
        assert!(!s.ref_dec(2)); // runner + owned
        let prev = s.unset_join_interested();
        assert!(prev.is_complete());
        assert!(s.ref_dec(1));
    }

    #[test]
    fn wake_while_running_reschedules() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), ToRunning::Success);
        assert_eq!(s.transition_to_notified_by_ref(), ToNotified::DoNothing);
        assert_eq!(s.transition_to_idle(), ToIdle::OkNotified);
        assert!(s.load().is_notified());
        assert_eq!(s.transition_to_running(), ToRunning::Success);
    }

    #[test]
    fn duplicate_wakes_submit_once() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), ToRunning::Success);
        s.ref_inc();
        s.ref_inc();
        assert_eq!(s.transition_to_idle(), ToIdle::Ok);
        assert_eq!(s.transition_to_notified_by_ref(), ToNotified::Submit);
        assert_eq!(s.transition_to_notified_by_ref(), ToNotified::DoNothing);
        assert_eq!(s.transition_to_notified_by_val(), ToNotified::DoNothing);
    }

    #[test]
    fn shutdown_idle_task_takes_it() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), ToRunning::Success);
        assert_eq!(s.transition_to_idle(), ToIdle::Ok);
        assert!(s.transition_to_shutdown());
        assert!(s.load().is_running());
        assert!(!s.transition_to_shutdown());
    }

    #[test]
    fn shutdown_running_task_is_seen_at_idle() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), ToRunning::Success);
        assert!(!s.transition_to_shutdown());
        assert_eq!(s.transition_to_idle(), ToIdle::Cancelled);
    }

    #[test]
    fn join_waker_handoff() {
        let s = State::new();
        assert!(s.set_join_waker().is_ok());
        assert!(s.unset_join_waker().is_ok());
        assert!(s.set_join_waker().is_ok());
        assert_eq!(s.transition_to_running(), ToRunning::Success);
        let prev = s.transition_to_complete();
        assert!(prev.is_join_waker_set());
        assert!(s.set_join_waker().is_err());
        let prev = s.unset_join_waker_after_complete();
        assert!(prev.is_join_interested());
    }
}
