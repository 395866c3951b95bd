//! Which workers are parked and which are searching for work.
//!
//! One atomic word counts `unparked` workers and `searching` workers (those stealing, with no
//! task of their own); a mutex-guarded list holds the parked workers' indices.
//!
//! Rules (Go's "spinning M" protocol, `proc.go`):
//! 1. At most half the workers search at once (`transition_worker_to_searching` refuses past
//!    that), so an idle runtime does not burn every core stealing from itself.
//! 2. Whoever makes work stealable (a push to the inject queue or to a local ring, a put in a
//!    worker's stealable LIFO slot) calls `notify_parked`, which wakes one parked worker only
//!    if *nobody* is searching: a searcher will find the work anyway. The woken worker starts
//!    out searching.
//! 3. A searcher that finds work stops searching; if it was the last searcher, it wakes another
//!    (`notify_parked`), since more work may be queued behind the task it found.
//! 4. The last searcher to park re-checks every queue after it is counted as parked, the
//!    stealable LIFO slots included (`Shared::work_visible`; they were left out until session
//!    24, and a task put in one as its worker's last peer parked waited for that worker).
//!
//! No lost wake-up: a pusher does `push; fence(SeqCst); read state`; a parking worker does
//! `update state (RMW under the lock); fence(SeqCst); read queues`. With the two fences at least
//! one side sees the other (store-buffering), so either the pusher wakes someone or the worker
//! sees the task. The loom models `loom_idle_no_lost_wakeup` (a parking worker) and
//! `loom_idle_last_searcher_parking_sees_work_or_is_woken` (the last searcher parking, rule 4)
//! check this; both fail with the two fences removed.

use crate::loom::sync::atomic::{fence, AtomicUsize, Ordering::*};
use crate::loom::sync::Mutex;

const SEARCH_MASK: usize = 0xFFFF;
const UNPARK_SHIFT: usize = 16;
const UNPARK_ONE: usize = 1 << UNPARK_SHIFT;

pub(crate) struct Idle {
    state: AtomicUsize,
    sleepers: Mutex<Vec<usize>>,
    num_workers: usize,
}

fn searching(s: usize) -> usize {
    s & SEARCH_MASK
}

fn unparked(s: usize) -> usize {
    s >> UNPARK_SHIFT
}

impl Idle {
    pub(crate) fn new(num_workers: usize) -> Idle {
        Idle {
            state: AtomicUsize::new(num_workers << UNPARK_SHIFT),
            sleepers: Mutex::new(Vec::with_capacity(num_workers)),
            num_workers,
        }
    }

    pub(crate) fn num_searching(&self) -> usize {
        searching(self.state.load(Acquire))
    }

    pub(crate) fn num_idle(&self) -> usize {
        self.num_workers - unparked(self.state.load(Acquire))
    }

    /// Whether some worker is parked or searching, so could take a task from a ring.
    pub(crate) fn any_free(&self) -> bool {
        let s = self.state.load(Acquire);
        searching(s) > 0 || unparked(s) < self.num_workers
    }

    /// Rule 1. Returns `false` if enough workers are searching already.
    pub(crate) fn transition_worker_to_searching(&self) -> bool {
        let s = self.state.load(SeqCst);
        if 2 * searching(s) >= self.num_workers.max(2) {
            return false;
        }
        self.state.fetch_add(1, SeqCst);
        true
    }

    /// Rule 3. Returns `true` if this was the last searcher.
    pub(crate) fn transition_worker_from_searching(&self) -> bool {
        let prev = self.state.fetch_sub(1, SeqCst);
        debug_assert!(searching(prev) > 0);
        searching(prev) == 1
    }

    /// Rule 2: wake a parked worker if nobody is searching. Returns the index woken.
    pub(crate) fn worker_to_notify(&self) -> Option<usize> {
        fence(SeqCst);
        if !self.should_notify() {
            return None;
        }
        let mut sleepers = crate::loom::lock(&self.sleepers);
        if !self.should_notify() {
            return None;
        }
        let idx = sleepers.pop()?;
        // The woken worker counts as unparked and searching.
        self.state.fetch_add(UNPARK_ONE | 1, SeqCst);
        Some(idx)
    }

    fn should_notify(&self) -> bool {
        let s = self.state.load(SeqCst);
        searching(s) == 0 && unparked(s) < self.num_workers
    }

    /// Rule 4 begins here. Returns `true` if the worker was the last searcher (it must then
    /// re-check every queue).
    pub(crate) fn transition_worker_to_parked(&self, index: usize, is_searching: bool) -> bool {
        let mut sleepers = crate::loom::lock(&self.sleepers);
        let dec = UNPARK_ONE + is_searching as usize;
        let prev = self.state.fetch_sub(dec, SeqCst);
        sleepers.push(index);
        drop(sleepers);
        fence(SeqCst);
        is_searching && searching(prev) == 1
    }

    /// A worker that woke by itself (timer, inbox, spurious) or gave up parking takes itself
    /// off the list. Returns `false` if it was not listed, i.e. `worker_to_notify` woke it and
    /// counted it as searching: the caller must then act as a searcher (and later call
    /// `transition_worker_from_searching`), or the count leaks and no parked worker is ever
    /// notified again. Loom model: `loom_idle_abort_park_keeps_count`.
    #[must_use = "false means the worker is now counted as searching"]
    pub(crate) fn unpark_self(&self, index: usize) -> bool {
        let mut sleepers = crate::loom::lock(&self.sleepers);
        if let Some(pos) = sleepers.iter().position(|&i| i == index) {
            sleepers.swap_remove(pos);
            self.state.fetch_add(UNPARK_ONE, SeqCst);
            true
        } else {
            false
        }
    }
}
