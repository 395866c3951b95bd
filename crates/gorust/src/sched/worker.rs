//! A worker thread: the M with its P. It owns a [`Core`] and runs the scheduling loop.
//!
//! Who touches what: `Core` is owned by the worker thread alone (a `RefCell` in the thread's
//! context, borrowed only between task polls; a waker firing on this thread during a poll takes
//! the borrow briefly to push into the LIFO slot or a local queue). Other threads reach the
//! worker only through its [`Remote`](super::Remote): the stealable end of the ring, the inbox
//! (locked), the parker, the poller (whose readiness the monitor collects for a stuck worker),
//! the timer heap (locked: the monitor fires it, `Shared::add_timer_to` inserts) and the
//! metrics (atomics).
//!
//! States of a worker: *running* a task; *searching* (no local work, stealing; counted in
//! `Idle`, at most half the workers); *parked* in its epoll (listed in `Idle`).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::task::Waker;
use std::time::Instant;

use super::park::Scratch;
use super::queue::{self, CAP};
use super::task::{Kind, Notified, UNBOUND};
use super::Handle;
use crate::loom::sync::atomic::Ordering::*;

/// Pause instructions between two looks at the queues while spinning (`Builder::spin_rounds`).
const SPIN_PAUSES: u32 = 32;

/// The worker's private scheduling state (Go's P).
pub(crate) struct Core {
    /// The ring and the stealable LIFO slot of unbound tasks.
    local: queue::Local,
    /// The LIFO slot of bound goroutines, which no thief may take.
    runnext: Option<Notified>,
    /// Started goroutines bound here; never stolen.
    pinned: VecDeque<Notified>,
    /// Whose turn it is between the local ring and the pinned queue. Flipped at each pick
    /// between the two, not taken from a tick count: the LIFO slot runs on ticks of its own,
    /// and a task that wakes a goroutine into it at every run took every other tick, which
    /// with the tick's parity always fell on the same queue's turn.
    ring_first: bool,
    /// Ticks left until the next timer check, netpoll check and global-queue-first pick.
    /// Countdowns, not `tick % interval`: a division by a runtime value costs tens of cycles
    /// on every tick (it showed in the ping-pong profile).
    until_timers: u32,
    until_events: u32,
    until_global: u32,
    lifo_streak: u32,
    rng: u32,
    is_searching: bool,
    /// Set while this worker dispatches the events of a non-blocking poll (`poll_io_now`) and
    /// tasks wait in the global queue: an unbound task woken then queues behind them.
    wakes_behind_global: bool,
    scratch: Scratch,
    fired: Vec<Waker>,
}

/// The thread-local context of a worker thread.
pub(crate) struct WorkerCtx {
    pub(crate) handle: Handle,
    pub(crate) index: usize,
    pub(crate) core: RefCell<Core>,
    /// Set when the worker has stopped running tasks and unwinds what it owned (`shutdown`), or
    /// when its runtime is dropped inside one of its goroutines (`stop_serving_in`).
    shutting_down: Cell<bool>,
}

thread_local! {
    static CURRENT: Cell<*const WorkerCtx> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` with this thread's worker context, if it is a worker.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&WorkerCtx>) -> R) -> R {
    let p = CURRENT.with(|c| c.get());
    // SAFETY: CURRENT points at the WorkerCtx on the worker thread's own stack frame
    // (`run_worker`), set for exactly the duration of that frame.
    f(unsafe { p.as_ref() })
}

/// The index of the worker this thread is, if it is a worker of `shared`.
pub(crate) fn current_index_in(shared: &super::Shared) -> Option<usize> {
    with_current(|w| match w {
        Some(w) if std::ptr::eq(&*w.handle, shared) => Some(w.index),
        _ => None,
    })
}

/// Whether this thread is a worker that still runs tasks: there, a wait that blocks the thread
/// would stall everything queued on it. `false` on other threads, and on a worker in its
/// shutdown step, which serves nothing any more while destructors run.
pub(crate) fn is_serving() -> bool {
    serving() == Some(true)
}

/// Whether this thread's worker still runs tasks (`is_serving`), or `None` on a thread that
/// is not a worker.
pub(crate) fn serving() -> Option<bool> {
    with_current(|w| w.map(WorkerCtx::is_serving))
}

/// Marks this thread's worker, if it is one of `shared`'s, as serving no more, and returns its
/// index: for a runtime dropped inside one of its own goroutines, whose worker unwinds its
/// share (`Shared::unwind_share`) and then what is left (`Shared::finish_shutdown`) on its
/// thread before its own shutdown step.
pub(crate) fn stop_serving_in(shared: &super::Shared) -> Option<usize> {
    with_current(|w| {
        let w = w.filter(|w| std::ptr::eq(&*w.handle, shared))?;
        w.shutting_down.set(true);
        Some(w.index)
    })
}

pub(crate) fn run_worker(handle: Handle, index: usize, local: queue::Local) {
    let _altstack = crate::sys::signal::ensure_altstack();
    let _slack = crate::sys::set_precise_timers();
    let ctx = WorkerCtx {
        handle,
        index,
        core: RefCell::new(Core {
            local,
            runnext: None,
            pinned: VecDeque::new(),
            ring_first: false,
            until_timers: 1,
            until_events: 1,
            until_global: 1,
            lifo_streak: 0,
            rng: (index as u32).wrapping_mul(0x9E37_79B9) | 1,
            is_searching: false,
            wakes_behind_global: false,
            scratch: Scratch::new(),
            fired: Vec::new(),
        }),
        shutting_down: Cell::new(false),
    };
    CURRENT.with(|c| c.set(&ctx));
    // Cleared however the frame is left: the thread may go on (`Runtime::run` runs worker 0
    // on its caller's thread), and must not keep a pointer to this frame.
    let _clear = ClearCurrent;
    ctx.run();
    ctx.shutdown();
}

struct ClearCurrent;

impl Drop for ClearCurrent {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(std::ptr::null()));
    }
}

/// Takes a fair share of the global queue (Go's `globrunqget`: len / workers + 1, at most half
/// a ring) into the local ring and returns one task of it.
fn take_global_batch(shared: &super::Shared, core: &mut Core) -> Option<Notified> {
    let queued = shared.inject.len();
    if queued == 0 {
        return None;
    }
    let n = (queued / shared.remotes.len() + 1).min(CAP / 2);
    let mut batch = shared.inject.pop_n(n).into_iter();
    let first = batch.next()?;
    for t in batch {
        core.local.push_back(t, &shared.inject);
    }
    Some(first)
}

/// Decrements `left`; when it reaches zero, resets it to `every` and returns `true`.
fn countdown(left: &mut u32, every: u32) -> bool {
    *left -= 1;
    if *left == 0 {
        *left = every;
        true
    } else {
        false
    }
}

impl Core {
    fn next_rand(&mut self) -> u32 {
        // xorshift32
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        x
    }

    /// Pushes to the back of the right queue; returns `true` if it went to the stealable ring.
    fn push_back(&mut self, task: Notified, overflow: &super::inject::Inject) -> bool {
        if task.header().home.load(Relaxed) != UNBOUND {
            self.pinned.push_back(task);
            false
        } else {
            self.local.push_back(task, overflow);
            true
        }
    }
}

impl WorkerCtx {
    /// Whether this worker still runs tasks (`is_serving`).
    pub(crate) fn is_serving(&self) -> bool {
        !self.shutting_down.get()
    }

    fn shared(&self) -> &super::Shared {
        &self.handle
    }

    /// A waker fired on this worker's thread. Returns the task back if it must take the
    /// remote path (bound to another worker, or the core is borrowed).
    pub(crate) fn schedule_local(&self, task: Notified, is_yield: bool) -> Result<(), Notified> {
        let home = task.header().home.load(Relaxed);
        if home != UNBOUND && home as usize != self.index {
            return Err(task);
        }
        let Ok(mut core) = self.core.try_borrow_mut() else {
            return Err(task);
        };
        if home == UNBOUND && core.wakes_behind_global {
            // Readiness found by a poll while older tasks wait in the global queue: queue
            // behind them, as Go's netpoll does (`injectglist`), not ahead of them in the ring.
            return Err(task);
        }
        let shared = self.shared();
        // An unbound task goes to the ring while a worker is parked or searching, and that
        // worker is notified; otherwise to the stealable LIFO slot. A bound goroutine goes to
        // the core's own slot (the module header of `sched`). A one-worker runtime, which has
        // no thief, uses the stealable slot too: its two swaps cost a spawn and join ~3 ns
        // (`spawn_batch` on 1 worker), and the plain slot for that case measured no faster.
        let notify = if is_yield || (home == UNBOUND && shared.idle.any_free()) {
            core.push_back(task, &shared.inject)
        } else if home == UNBOUND {
            match core.local.put_lifo(task) {
                Some(prev) => core.push_back(prev, &shared.inject),
                // Rule 2 of `idle` for the slot: `any_free` was read before the put, and a
                // worker that stopped and parked in between, its re-check (rule 4) done before
                // the put landed, would sleep while the task waits for this worker's current
                // one. So as after a push to the ring: the same fence and look at the idle
                // state (review, session 24). Only with a thief to wake.
                None => shared.remotes.len() > 1,
            }
        } else if let Some(prev) = core.runnext.replace(task) {
            core.push_back(prev, &shared.inject)
        } else {
            false
        };
        drop(core);
        if notify {
            shared.notify_parked();
        }
        Ok(())
    }

    /// Inserts a timer in this worker's heap.
    pub(crate) fn add_timer(
        &self,
        deadline: Instant,
        entry: std::sync::Arc<crate::time::entry::TimerEntry>,
    ) -> Result<(), std::sync::Arc<crate::time::entry::TimerEntry>> {
        let remote = &self.shared().remotes[self.index];
        let mut heap = crate::loom::lock(&remote.timers);
        heap.insert(deadline, entry);
        remote.metrics.set_timers(heap.len());
        Ok(())
    }

    fn run(&self) {
        let shared = self.shared();
        let config = &shared.config;
        loop {
            if shared.shutdown.load(Acquire) {
                return;
            }
            let (timers_due, events_due) = {
                let mut core = self.core.borrow_mut();
                (
                    countdown(&mut core.until_timers, config.timer_check_interval),
                    countdown(&mut core.until_events, config.event_interval),
                )
            };
            if timers_due {
                self.fire_timers();
            }
            if events_due {
                self.poll_io_now();
            }
            if let Some(t) = self.next_local_task() {
                self.run_task(t);
                continue;
            }
            if self.fire_timers() > 0 || self.poll_io_now() > 0 {
                continue;
            }
            if let Some(t) = self.steal() {
                self.run_task(t);
                continue;
            }
            if let Some(t) = self.spin() {
                self.run_task(t);
                continue;
            }
            self.park();
        }
    }

    fn run_task(&self, task: Notified) {
        let shared = self.shared();
        let was_searching = {
            let mut core = self.core.borrow_mut();
            std::mem::replace(&mut core.is_searching, false)
        };
        if was_searching && shared.idle.transition_worker_from_searching() {
            // Rule 3 of `idle`: the last searcher found work; more may be queued.
            shared.notify_parked();
        }
        let h = task.header();
        if h.kind == Kind::Goroutine {
            if !h.may_poll_on(self.index as u32) {
                // A goroutine's first poll binds it here for life, unless a worker's shutdown
                // step claimed it first to cancel it (`shutdown`): that step owns it now, and
                // this reference is only dropped. Readers of `home` (wakers) synchronise
                // through the AcqRel state transition that publishes the first park.
                drop(task);
                return;
            }
            h.mark_started();
        }
        shared.remotes[self.index].metrics.inc_polls();
        crate::coop::reset();
        task.run();
        crate::coop::unconstrain();
    }

    fn next_local_task(&self) -> Option<Notified> {
        let shared = self.shared();
        let mut core = self.core.borrow_mut();
        if countdown(&mut core.until_global, shared.config.global_queue_interval) {
            if let Some(t) = shared.inject.pop() {
                return Some(t);
            }
        }
        if shared.inbox_len(self.index) > 0 {
            shared.drain_inbox(self.index, &mut core.pinned);
        }
        if core.lifo_streak < shared.config.lifo_limit {
            if let Some(t) = core.runnext.take().or_else(|| core.local.take_lifo()) {
                core.lifo_streak += 1;
                return Some(t);
            }
        }
        core.lifo_streak = 0;
        // On the ring's turn an empty ring refills from the inject queue before the pinned
        // queue goes again (the module header of `sched` says why).
        core.ring_first = !core.ring_first;
        let t = if !core.ring_first {
            core.pinned.pop_front().or_else(|| core.local.pop())
        } else {
            core.local
                .pop()
                .or_else(|| take_global_batch(shared, &mut core))
                .or_else(|| core.pinned.pop_front())
        };
        if t.is_some() {
            return t;
        }
        if let Some(t) = core.runnext.take().or_else(|| core.local.take_lifo()) {
            return Some(t);
        }
        take_global_batch(shared, &mut core)
    }

    fn steal(&self) -> Option<Notified> {
        let shared = self.shared();
        let n = shared.remotes.len();
        let mut core = self.core.borrow_mut();
        if n > 1 {
            if !core.is_searching {
                if !shared.idle.transition_worker_to_searching() {
                    return None;
                }
                core.is_searching = true;
            }
            let start = core.next_rand() as usize % n;
            let me = self.index;
            let mut victims = (0..n).map(|i| (start + i) % n).filter(|&v| v != me);
            let metrics = &shared.remotes[me].metrics;
            let from_ring = victims
                .clone()
                .find_map(|v| shared.remotes[v].steal.steal_into(&mut core.local));
            if from_ring.is_some() {
                metrics.inc_steals();
                return from_ring;
            }
            if let Some(t) = take_global_batch(shared, &mut core) {
                return Some(t);
            }
            // Every ring and the global queue are empty: take a busy worker's LIFO slot (Go's
            // thieves take `runnext` last, too). Its task waits until that worker's current
            // task parks or ends, which may be long.
            let from_slot = victims.find_map(|v| shared.remotes[v].steal.steal_lifo());
            if from_slot.is_some() {
                metrics.inc_steals();
            }
            return from_slot;
        }
        take_global_batch(shared, &mut core)
    }

    /// Keeps searching a little before parking, as Go's spinning Ms do: a worker that parks the
    /// moment its steal fails is woken again by the next spawn, and each such round trip costs
    /// two context switches and an eventfd write. Only a searching worker spins (at most half
    /// of them, by `Idle` rule 1), for at most `Builder::spin_rounds` rounds.
    fn spin(&self) -> Option<Notified> {
        if !self.core.borrow().is_searching {
            return None;
        }
        let shared = self.shared();
        for _ in 0..shared.config.spin_rounds {
            for _ in 0..SPIN_PAUSES {
                std::hint::spin_loop();
            }
            if shared.shutdown.load(Acquire) {
                return None;
            }
            if shared.inbox_len(self.index) > 0 || !shared.inject.is_empty() {
                return self.next_local_task();
            }
            // The LIFO slots too (`work_visible`): a task put in one as this worker began to
            // search (before it was counted) is found here rather than waiting for its worker.
            if shared.work_visible() {
                if let Some(t) = self.steal() {
                    return Some(t);
                }
            }
        }
        None
    }

    /// Polls this worker's netpoller without blocking and wakes what is ready. Returns the
    /// number of I/O events.
    fn poll_io_now(&self) -> usize {
        let poller = &self.shared().remotes[self.index].poller;
        if poller.registered() == 0 {
            poller.mark_polled();
            return 0;
        }
        let behind = !self.shared().inject.is_empty();
        let (mut scratch, mut wakers) = {
            let mut core = self.core.borrow_mut();
            core.wakes_behind_global = behind;
            (
                std::mem::replace(&mut core.scratch, Scratch::empty()),
                std::mem::take(&mut core.fired),
            )
        };
        let n = poller.poll_now(&mut scratch.events, &mut wakers, true);
        let mut core = self.core.borrow_mut();
        core.wakes_behind_global = false;
        core.scratch = scratch;
        core.fired = wakers;
        n
    }

    /// Fires due timers and wakes their tasks. Returns how many fired.
    fn fire_timers(&self) -> usize {
        let remote = &self.shared().remotes[self.index];
        if remote.metrics.timers() == 0 {
            return 0;
        }
        let mut fired = std::mem::take(&mut self.core.borrow_mut().fired);
        remote.expire_timers(&mut fired);
        let n = fired.len();
        // Wake with the core released: wakers push into it.
        super::wake::wake_all(fired.drain(..));
        self.core.borrow_mut().fired = fired;
        n
    }

    fn park(&self) {
        let shared = self.shared();
        let idle = &shared.idle;
        let mut core = self.core.borrow_mut();
        let was_searching = std::mem::replace(&mut core.is_searching, false);
        let last_searcher = idle.transition_worker_to_parked(self.index, was_searching);
        // Rule 4 of `idle`, and this worker's own wake-up sources, re-checked after it is
        // counted as parked (the transition ends with a SeqCst fence).
        if (last_searcher && shared.work_visible())
            || !shared.inject.is_empty()
            || shared.inbox_len(self.index) > 0
            || shared.shutdown.load(Acquire)
        {
            if !idle.unpark_self(self.index) {
                // A `notify_parked` took us off the list meanwhile and counted us as
                // searching: we must carry that count, or it leaks and no parked worker is
                // ever notified again (found by the sync tests; loom model
                // `loom_idle_abort_park_keeps_count`).
                core.is_searching = true;
            }
            return;
        }
        let remote = &shared.remotes[self.index];
        let timeout = if remote.metrics.timers() == 0 {
            None
        } else {
            let mut heap = crate::loom::lock(&remote.timers);
            let next = heap.next_deadline();
            remote.metrics.set_timers(heap.len());
            next.map(|d| d.saturating_duration_since(Instant::now()))
        };
        remote.metrics.inc_parks();
        remote.parker.park(timeout, &mut core.scratch);
        if !idle.unpark_self(self.index) {
            // `notify_parked` took us off the list and counted us as searching.
            core.is_searching = true;
        }
        // Readiness found while parked: collect the wakers, wake them with the core released.
        let mut wakers = std::mem::take(&mut core.fired);
        remote
            .poller
            .dispatch(&core.scratch.events, &mut wakers, true);
        drop(core);
        super::wake::wake_all(wakers.drain(..));
        self.core.borrow_mut().fired = wakers;
    }

    /// Step 3 of shutdown (module header of `sched`).
    fn shutdown(&self) {
        self.shutting_down.set(true);
        let shared = self.shared();
        shared.unwind_share(self.index);
        let inbox = shared.close_inbox(self.index);
        drop(inbox);
        let (runnext, pinned) = {
            let mut core = self.core.borrow_mut();
            let mut local: Vec<_> = core.local.take_lifo().into_iter().collect();
            while let Some(t) = core.local.pop() {
                local.push(t);
            }
            (
                (core.runnext.take(), local),
                std::mem::take(&mut core.pinned),
            )
        };
        drop(runnext);
        drop(pinned);
        let was_searching = std::mem::replace(&mut self.core.borrow_mut().is_searching, false);
        if was_searching {
            shared.idle.transition_worker_from_searching();
        }
    }
}
