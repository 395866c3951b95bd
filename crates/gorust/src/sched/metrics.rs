//! Counters that describe what the scheduler is doing.
//!
//! Each worker's counters are written only by that worker (`Relaxed` increments on its own
//! cache line), except the `timers` gauge, which whoever inserts into or fires the worker's
//! heap publishes under the heap's lock (the monitor, `Shared::add_timer_to`); anyone taking a
//! snapshot reads them, so reading them never slows a worker.

use crate::loom::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default)]
#[repr(align(64))]
pub(crate) struct WorkerMetrics {
    polls: AtomicU64,
    steals: AtomicU64,
    parks: AtomicU64,
    /// Goroutines started, and finished, on this worker (see `Shared::goroutines`).
    started: AtomicU64,
    finished: AtomicU64,
    /// Entries in the worker's timer heap, cancelled ones not yet dropped included.
    timers: AtomicU64,
}

/// Adds one to a counter that only the calling worker writes: a plain load and store, not a
/// locked read-modify-write (which costs several nanoseconds on every task poll).
fn bump(c: &AtomicU64) {
    c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
}

impl WorkerMetrics {
    pub(crate) fn inc_polls(&self) {
        bump(&self.polls);
    }
    pub(crate) fn inc_steals(&self) {
        bump(&self.steals);
    }
    pub(crate) fn inc_parks(&self) {
        bump(&self.parks);
    }
    pub(crate) fn inc_started(&self) {
        bump(&self.started);
    }
    pub(crate) fn inc_finished(&self) {
        bump(&self.finished);
    }
    pub(crate) fn set_timers(&self, n: usize) {
        self.timers.store(n as u64, Relaxed);
    }
    /// The timers in the worker's heap as last published, under the heap's lock, by whoever
    /// inserted or fired last: the worker, the monitor, or a thread arming an event-loop
    /// timer there (`Shared::add_timer_to`). A worker that read a stale 0 and parked without a
    /// timeout is woken by that insert's unpark, and reads the count again.
    pub(crate) fn timers(&self) -> usize {
        self.timers.load(Relaxed) as usize
    }
}

/// A snapshot of one worker's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Task polls (goroutine resumptions included) since start.
    pub polls: u64,
    /// Successful steals (each moves up to half a victim's ring).
    pub steals: u64,
    /// Times the worker parked in its poller.
    pub parks: u64,
    /// Tasks waiting in the worker's stealable ring and inbox.
    pub queue_depth: usize,
    /// Timers in the worker's heap, counting cancelled ones it has not dropped yet (it drops
    /// them when they come to the top, or all at once when they pile up).
    pub timers: usize,
}

/// A snapshot of the runtime's counters; see [`crate::metrics`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuntimeMetrics {
    /// One entry per worker, by index.
    pub workers: Vec<WorkerStats>,
    /// Tasks waiting in the global inject queue.
    pub global_queue_depth: usize,
    /// Live goroutines.
    pub goroutines: usize,
    /// Live tasks of any kind (goroutines and futures).
    pub tasks: usize,
    /// Threads of the blocking pool (busy or idle).
    pub blocking_threads: usize,
    /// Workers parked in their poller.
    pub idle_workers: usize,
    /// Workers looking for work to steal.
    pub searching_workers: usize,
}

impl super::Shared {
    /// Goroutines started and not yet finished: the per-worker counters (each written only by
    /// its worker, so counting costs no locked instruction) plus the shared ones for threads
    /// that are not workers.
    pub(crate) fn live_goroutines(&self) -> usize {
        let (mut started, mut finished) = (
            self.goroutines_started_elsewhere.load(Relaxed),
            self.goroutines_finished_elsewhere.load(Relaxed),
        );
        for r in self.remotes.iter() {
            started += r.metrics.started.load(Relaxed);
            finished += r.metrics.finished.load(Relaxed);
        }
        started.saturating_sub(finished) as usize
    }

    /// Counts a goroutine start on the calling thread's counter.
    pub(crate) fn goroutine_started(&self) {
        match super::worker::current_index_in(self) {
            Some(i) => self.remotes[i].metrics.inc_started(),
            None => {
                self.goroutines_started_elsewhere.fetch_add(1, Relaxed);
            }
        }
    }

    /// Counts a goroutine end on the calling thread's counter.
    pub(crate) fn goroutine_finished(&self) {
        match super::worker::current_index_in(self) {
            Some(i) => self.remotes[i].metrics.inc_finished(),
            None => {
                self.goroutines_finished_elsewhere.fetch_add(1, Relaxed);
            }
        }
    }

    pub(crate) fn metrics(&self) -> RuntimeMetrics {
        RuntimeMetrics {
            workers: self
                .remotes
                .iter()
                .enumerate()
                .map(|(i, r)| WorkerStats {
                    polls: r.metrics.polls.load(Relaxed),
                    steals: r.metrics.steals.load(Relaxed),
                    parks: r.metrics.parks.load(Relaxed),
                    queue_depth: r.steal.len() + self.inbox_len(i),
                    timers: r.metrics.timers(),
                })
                .collect(),
            global_queue_depth: self.inject.len(),
            goroutines: self.live_goroutines(),
            tasks: self.owned.len(),
            blocking_threads: self.blocking.num_threads(),
            idle_workers: self.idle.num_idle(),
            searching_workers: self.idle.num_searching(),
        }
    }
}
