//! The G-M-P scheduler.
//!
//! Go's names map onto this module as follows: a *G* is a task ([`task`]), either a future or a
//! goroutine (a task that drives a stackful coroutine); an *M* is a worker thread
//! ([`worker`]); a *P* is the worker's [`Core`](worker::Core), its run queues, with its timers
//! in the shared part (`Remote::timers`, which the monitor fires for a stuck worker). Unlike
//! Go, an M never gives its P away: goroutines are pinned to the thread of their first poll
//! (DESIGN.md decision 2), so a worker blocked in a system call would strand them; blocking work
//! goes to the [`blocking`] pool instead.
//!
//! Where a woken task goes (`Shared::schedule`):
//!
//! | task | woken on its home worker | woken elsewhere |
//! |---|---|---|
//! | started goroutine (bound) | the core's LIFO slot (`runnext`), or back of the pinned queue if it yielded | home worker's inbox, then unpark that worker |
//! | future or unstarted goroutine (unbound) | the stealable LIFO slot, or back of the local ring if it yielded or a worker is parked or searching (then `notify_parked`) | global inject queue, then `notify_parked` |
//!
//! A bound goroutine's LIFO slot is its worker's alone (`Core::runnext`, no thief may take it).
//! Unbound tasks have a slot of their own, beside the ring (`queue`), which a worker that runs
//! dry takes last, after every ring and the global queue (Go's thieves take `runnext`): a task
//! put there while every worker was busy no longer waits for its worker's current task. An
//! unbound task still goes there only while every worker is busy: with one parked or
//! searching, it goes to the ring and that worker is notified at once, so that
//! `let h = go(f); compute(); h.join()` runs `f` beside `compute` (test
//! `a_new_goroutine_runs_on_an_idle_worker_while_its_spawner_computes`; Go wakes an idle P at
//! `newproc`), and a worker that runs dry later takes it from the slot (test
//! `a_goroutine_spawned_while_every_worker_is_busy_runs_on_the_first_to_run_dry`).
//!
//! One exception keeps the order fair under overload: an unbound task woken by its worker's
//! non-blocking poll (the one every `event_interval` ticks, or when its queues run dry), with
//! tasks already waiting in the global queue, goes to the back of the global queue, behind them
//! (Go's netpoll hands what it finds to `injectglist`). A worker woken from its parked epoll
//! wait had nothing queued, so it keeps the usual route.
//! Had it gone ahead into the ring, the ring would keep refilling from each poll while the
//! tasks that spilled from it ran once every 61 ticks (test
//! `futures_woken_by_io_under_overload_take_turns`).
//!
//! A new goroutine is unbound and starts in the LIFO slot (Go's `newproc`; in the ring while a
//! worker is parked or searching); a new future at the back of the ring (tokio's `spawn`); an
//! event-loop handler is bound at spawn to the spawning worker and starts at the back of its
//! pinned queue (`spawn_goroutine_here`).
//!
//! What a worker runs next (`worker::WorkerCtx::next_local_task`): every
//! `global_queue_interval` (61) ticks one task from the inject queue first, for fairness; then
//! a LIFO slot, the core's then the stealable one (at most `lifo_limit` runs in a row from
//! either); then its pinned queue and local ring,
//! alternating which goes first (by a flag flipped at each such pick: by the tick's parity, the
//! LIFO slot's runs could take every turn of one queue). On the ring's turn an empty ring
//! first refills with a batch from the inject queue: pinned goroutines never leave, so under
//! load the pinned queue never runs dry, and a burst of new goroutines that spilled from the
//! ring waited for the 61-tick check alone (test
//! `a_burst_of_new_goroutines_starts_while_started_ones_stay_busy`). Then a batch from the
//! inject queue; then it steals half of a random victim's ring (never a victim's pinned queue),
//! looks at the inject queue once more, and takes a victim's stealable LIFO slot; then it parks
//! in its epoll until woken or until its next timer.
//!
//! Shutdown, in order: (1) `shutdown` is set and the owned list closed, so new tasks are cancelled
//! at once; (2) every worker is unparked, and the blocking pool stops (its queue dropped, new calls
//! refused); (3) each worker hands its pending timers to the fallback thread, cancels the
//! goroutines nobody started (claimed by binding them to itself, which no start can then do), then
//! every future, then, on its own thread, the goroutines bound to it, then closes its inbox and
//! drops what its queues still hold; (4) `Runtime` joins the workers, closes the inject queue, and
//! cancels what is left (nobody started first). A runtime dropped inside one of its own goroutines
//! runs the cancelling part of step 3 for that worker (`Shared::unwind_share`) on its thread before
//! step 4's joins, while the others run theirs.
//! A task running when shutdown begins is cancelled when its poll returns; a goroutine that
//! never parks or returns keeps its worker (and so `Runtime::drop`) waiting.
//! From step 3 on a worker runs no task (`worker::is_serving` is false), and neither does the
//! worker of a runtime dropped inside one of its own goroutines once that drop unwinds the
//! rest (the dropping goroutine itself goes on): a destructor that `block_on`s there blocks
//! the thread as on a plain thread (a warning once it has waited 5 s), and its timers go
//! to the fallback thread.

pub(crate) mod blocking;
pub(crate) mod idle;
pub(crate) mod inject;
pub(crate) mod metrics;
pub(crate) mod owned;
pub(crate) mod park;
pub(crate) mod queue;
pub(crate) mod sysmon;
pub(crate) mod task;
pub(crate) mod trace;
pub(crate) mod wake;
pub(crate) mod worker;

#[cfg(all(test, loom))]
mod loom_tests;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use crate::loom::sync::Mutex;
use crate::time::heap::TimerHeap;
use task::{JoinHandle, Kind, Notified, Schedule, TaskRef, UNBOUND};

/// A new task ready to schedule, or (the runtime shutting down) its handle alone.
type NewTask<T> = Result<(Notified, JoinHandle<T>), JoinHandle<T>>;

/// Settings fixed when the runtime is built (see `Builder` for each default and its reason).
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) workers: usize,
    pub(crate) stack_size: usize,
    pub(crate) reserve_descriptors: usize,
    pub(crate) global_queue_interval: u32,
    pub(crate) lifo_limit: u32,
    pub(crate) event_interval: u32,
    pub(crate) spin_rounds: u32,
    pub(crate) timer_check_interval: u32,
    pub(crate) max_blocking_threads: usize,
    pub(crate) blocking_keep_alive: Duration,
    pub(crate) thread_name: String,
    pub(crate) schedtrace: Option<Duration>,
}

pub(crate) type Handle = Arc<Shared>;

/// State shared by all workers of one runtime.
///
/// Aligned to 128 bytes (two lines, for the adjacent-line prefetcher) so that the `Arc`'s
/// reference counts, which every spawn writes (each task holds a handle), do not share a line
/// with the fields every worker reads all the time (`remotes`, `inject`'s length, `idle`).
/// With them together, a spawning worker invalidated the other worker's copy of that line at
/// every spawn (false sharing).
#[repr(align(128))]
pub(crate) struct Shared {
    pub(crate) remotes: Box<[Remote]>,
    pub(crate) inject: inject::Inject,
    pub(crate) idle: idle::Idle,
    pub(crate) owned: owned::OwnedTasks,
    pub(crate) config: Config,
    pub(crate) shutdown: AtomicBool,
    /// Set when `Runtime::run` serves worker 0 on its caller's thread: a one-worker runtime's
    /// monitor then leaves the descriptor table (`sysmon.rs`).
    pub(crate) first_served_inline: AtomicBool,
    /// Goroutine starts and ends counted on threads that are not this runtime's workers (the
    /// workers count in their own `WorkerMetrics`); see `live_goroutines`.
    pub(crate) goroutines_started_elsewhere: std::sync::atomic::AtomicU64,
    pub(crate) goroutines_finished_elsewhere: std::sync::atomic::AtomicU64,
    pub(crate) blocking: blocking::Pool,
    pub(crate) started: Instant,
    /// Unit tests only: `notify_parked` does nothing, as when it lost the race that the
    /// monitor's rescue covers (`sysmon.rs`).
    #[cfg(all(test, not(loom)))]
    pub(crate) mute_notify: AtomicBool,
}

/// The part of a worker that other threads may touch.
pub(crate) struct Remote {
    pub(crate) steal: queue::Steal,
    inbox: Mutex<Inbox>,
    /// Length of `inbox`, readable without the lock.
    inbox_len: AtomicUsize,
    pub(crate) parker: park::Parker,
    /// The worker's netpoller (its epoll; parking waits on it too).
    pub(crate) poller: Arc<crate::netpoll::Poller>,
    /// The timers armed on this worker. The worker inserts and fires them; the monitor fires
    /// them too when the worker is stuck in one task (`sysmon.rs`), and other threads insert
    /// the event loop's connection timers (`Shared::add_timer_to`). So they are behind a lock,
    /// which the worker skips while `metrics` counts no timer.
    pub(crate) timers: Mutex<TimerHeap>,
    pub(crate) metrics: metrics::WorkerMetrics,
}

impl Remote {
    /// Fires this worker's due timers, pushing their wakers to `out` (to be woken by the
    /// caller, after the lock). Returns how many fired. Callers skip it while `metrics`
    /// counts no timer.
    pub(crate) fn expire_timers(&self, out: &mut Vec<std::task::Waker>) -> usize {
        let mut heap = crate::loom::lock(&self.timers);
        let n = heap.expire(Instant::now(), out);
        self.metrics.set_timers(heap.len());
        n
    }
}

struct Inbox {
    tasks: VecDeque<Notified>,
    closed: bool,
}

/// Task ids are unique across runtimes in one process.
static NEXT_TASK_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A process-unique task id. Each thread takes ids from the global counter in blocks, so a
/// spawn costs no locked instruction on the shared counter.
pub(crate) fn next_task_id() -> u64 {
    const BLOCK: u64 = 1024;
    thread_local! {
        static IDS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
    }
    IDS.with(|ids| {
        let (mut next, mut end) = ids.get();
        if next == end {
            next = NEXT_TASK_ID.fetch_add(BLOCK, Relaxed);
            end = next + BLOCK;
        }
        ids.set((next + 1, end));
        next
    })
}

/// The poller new registrations on this thread should use: the current worker's, or, on a
/// thread that only belongs to a runtime (a blocking-pool thread, `Runtime::block_on`), one of
/// that runtime's chosen round-robin.
pub(crate) fn current_poller() -> Option<Arc<crate::netpoll::Poller>> {
    if let Some(p) = worker::with_current(|w| w.map(|w| w.handle.remotes[w.index].poller.clone())) {
        return Some(p);
    }
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let h = crate::context::handle()?;
    let i = NEXT.fetch_add(1, Relaxed) % h.remotes.len();
    Some(h.remotes[i].poller.clone())
}

impl Shared {
    /// Moves worker `index`'s pending timers to the fallback timer thread: at shutdown, where
    /// that worker's loop will fire none of them any more. `Sleep`s that outlive their task
    /// (moved to a plain thread, say) still fire (review, session 19), and so do those a
    /// destructor at shutdown waits for (session 31).
    ///
    /// Returns whether any were handed over: the caller then drops, once it has cancelled its
    /// tasks, the entries their cancellation left in the fallback's heap
    /// (`time::fallback::drop_cancelled`).
    pub(crate) fn hand_timers_to_fallback(&self, index: usize) -> bool {
        let remote = &self.remotes[index];
        let timers = std::mem::take(&mut *crate::loom::lock(&remote.timers));
        remote.metrics.set_timers(0);
        let mut handed = false;
        for (deadline, entry) in timers.into_pending() {
            crate::time::fallback::register(deadline, entry);
            handed = true;
        }
        handed
    }

    /// Inserts a timer in worker `index`'s heap from any thread, and wakes that worker if it
    /// may be asleep past the new deadline. For a timer that belongs with one worker's
    /// registrations but is armed elsewhere: an event-loop connection's timer re-armed by its
    /// own firing on the monitor thread, or armed by a dial on a plain thread. Through the
    /// current thread's heap (`time::register`) such a timer went to the fallback thread,
    /// and each re-arm from there kept it there for the life of the connection (review,
    /// session 22). `Err` (the entry back) once the runtime shuts down: the worker's shutdown
    /// step may have emptied its heap already.
    pub(crate) fn add_timer_to(
        &self,
        index: usize,
        deadline: Instant,
        entry: Arc<crate::time::entry::TimerEntry>,
    ) -> Result<(), Arc<crate::time::entry::TimerEntry>> {
        let remote = &self.remotes[index];
        let mut heap = crate::loom::lock(&remote.timers);
        // Under the lock the shutdown step empties the heap under: an entry inserted here is
        // either in the heap it takes or refused (`shutdown` is set before that step).
        if self.shutdown.load(Acquire) {
            return Err(entry);
        }
        let earliest = heap.next_deadline().is_none_or(|d| deadline < d);
        heap.insert(deadline, entry);
        remote.metrics.set_timers(heap.len());
        drop(heap);
        // A parked worker bounded its sleep by the deadline it read before this insert.
        if earliest {
            remote.parker.unpark();
        }
        Ok(())
    }

    pub(crate) fn new(config: Config) -> std::io::Result<(Handle, Vec<queue::Local>)> {
        let mut locals = Vec::with_capacity(config.workers);
        let mut remotes = Vec::with_capacity(config.workers);
        for _ in 0..config.workers {
            let (local, steal) = queue::new();
            locals.push(local);
            let poller = Arc::new(crate::netpoll::Poller::new()?);
            remotes.push(Remote {
                steal,
                inbox: Mutex::new(Inbox {
                    tasks: VecDeque::new(),
                    closed: false,
                }),
                inbox_len: AtomicUsize::new(0),
                #[cfg(not(loom))]
                parker: park::Parker::new(poller.clone()),
                #[cfg(loom)]
                parker: park::Parker::new(),
                poller,
                timers: Mutex::new(TimerHeap::new()),
                metrics: metrics::WorkerMetrics::default(),
            });
        }
        let shared = Arc::new(Shared {
            remotes: remotes.into_boxed_slice(),
            inject: inject::Inject::new(),
            idle: idle::Idle::new(config.workers),
            owned: owned::OwnedTasks::new(),
            blocking: blocking::Pool::new(config.max_blocking_threads, config.blocking_keep_alive),
            config,
            shutdown: AtomicBool::new(false),
            first_served_inline: AtomicBool::new(false),
            goroutines_started_elsewhere: std::sync::atomic::AtomicU64::new(0),
            goroutines_finished_elsewhere: std::sync::atomic::AtomicU64::new(0),
            started: Instant::now(),
            #[cfg(all(test, not(loom)))]
            mute_notify: AtomicBool::new(false),
        });
        Ok((shared, locals))
    }

    /// Allocates a task bound to worker `home` (or `UNBOUND`) and lists it as owned; `Err`
    /// (the task cancelled, its handle for the caller to return) if the runtime is shutting
    /// down. Bound from creation, before it is listed: a worker's shutdown step claims listed
    /// goroutines that are unbound, and a bind stored after the listing could overwrite that
    /// claim, so that the goroutine was both cancelled there and run here (review, session
    /// 27).
    fn new_owned<F>(
        self: &Arc<Self>,
        id: u64,
        future: F,
        kind: Kind,
        home: u32,
    ) -> NewTask<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let (notified, owned_ref, join) = task::new_task(future, self.clone(), kind, id, home);
        if !self.owned.insert(owned_ref) {
            // Closed: cancel at once. The list's reference is ours to give to `shutdown`.
            // SAFETY: the task never ran, so it can be cancelled on any thread; we pass the
            // owned reference that was not listed.
            unsafe { owned_ref.shutdown() };
            drop(notified);
            return Err(join);
        }
        Ok((notified, join))
    }

    /// Allocates and schedules a task.
    pub(crate) fn spawn_with_id<F>(
        self: &Arc<Self>,
        id: u64,
        future: F,
        kind: Kind,
    ) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let (notified, join) = match self.new_owned(id, future, kind, UNBOUND) {
            Ok(t) => t,
            Err(join) => return join,
        };
        match kind {
            // Go puts a new goroutine in the LIFO slot (it runs next, on this worker).
            Kind::Goroutine => self.schedule(notified, false),
            // tokio puts a new future at the back of the queue.
            Kind::Future => self.schedule(notified, true),
        }
        join
    }

    /// Starts a goroutine bound from the start to the current worker (if this thread is one of
    /// this runtime's workers; otherwise as [`spawn_with_id`](Self::spawn_with_id)), queued at
    /// the back of that worker's pinned queue: first come, first served, never stolen.
    ///
    /// For the event loop's handlers: they are spawned in bursts (one per connection with
    /// data, hundreds per poll), and through the LIFO slot a burst larger than the ring spilled
    /// into the global queue, which a busy worker visits once every 61 ticks: at 1,000
    /// connections a quarter of them waited ~400 ms (p99) while the rest cycled through the
    /// ring. A handler runs where its connection's poller read the data, so binding costs no
    /// balance the connection's placement did not already fix.
    pub(crate) fn spawn_goroutine_here<F>(
        self: &Arc<Self>,
        id: u64,
        future: F,
    ) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let Some(index) = worker::current_index_in(self) else {
            return self.spawn_with_id(id, future, Kind::Goroutine);
        };
        // Bound before anyone can see it: routing (and the first-poll check) then keep it here.
        let (notified, join) = match self.new_owned(id, future, Kind::Goroutine, index as u32) {
            Ok(t) => t,
            Err(join) => return join,
        };
        self.schedule(notified, true);
        join
    }

    /// Routes a task that must be polled; see the table in the module header.
    pub(crate) fn schedule(self: &Arc<Self>, task: Notified, is_yield: bool) {
        let task = worker::with_current(|w| match w {
            Some(w) if std::ptr::eq(&*w.handle, &**self) => w.schedule_local(task, is_yield),
            _ => Err(task),
        });
        let Err(task) = task else { return };
        let home = task.header().home.load(Relaxed);
        if home != UNBOUND {
            self.push_inbox(home as usize, task);
        } else if self.inject.push(task) {
            self.notify_parked();
        }
    }

    /// Queues a bound goroutine on its home worker and wakes that worker.
    fn push_inbox(&self, home: usize, task: Notified) {
        let remote = &self.remotes[home];
        let mut inbox = crate::loom::lock(&remote.inbox);
        if inbox.closed {
            drop(inbox);
            drop(task); // the runtime is shutting down; the task was cancelled
            return;
        }
        inbox.tasks.push_back(task);
        remote.inbox_len.store(inbox.tasks.len(), Release);
        drop(inbox);
        remote.parker.unpark();
    }

    pub(crate) fn inbox_len(&self, index: usize) -> usize {
        self.remotes[index].inbox_len.load(Acquire)
    }

    /// Moves a worker's inbox into `out`.
    pub(crate) fn drain_inbox(&self, index: usize, out: &mut VecDeque<Notified>) {
        let remote = &self.remotes[index];
        let mut inbox = crate::loom::lock(&remote.inbox);
        out.append(&mut inbox.tasks);
        remote.inbox_len.store(0, Release);
    }

    /// Closes a worker's inbox and returns what it held (to be dropped by the caller).
    pub(crate) fn close_inbox(&self, index: usize) -> VecDeque<Notified> {
        let remote = &self.remotes[index];
        let mut inbox = crate::loom::lock(&remote.inbox);
        inbox.closed = true;
        remote.inbox_len.store(0, Release);
        std::mem::take(&mut inbox.tasks)
    }

    /// Wakes a parked worker to look for work, unless one is already searching.
    pub(crate) fn notify_parked(&self) {
        #[cfg(all(test, not(loom)))]
        if self.mute_notify.load(Relaxed) {
            return;
        }
        self.wake_a_parked_worker();
    }

    /// `notify_parked`'s wake, also for the monitor's rescue of work stranded behind a stuck
    /// worker (`sysmon.rs`).
    pub(crate) fn wake_a_parked_worker(&self) {
        if let Some(i) = self.idle.worker_to_notify() {
            self.remotes[i].parker.unpark();
        }
    }

    /// Whether any queue another worker could take from holds work (for the last searcher),
    /// the stealable LIFO slots included.
    pub(crate) fn work_visible(&self) -> bool {
        !self.inject.is_empty() || self.remotes.iter().any(|r| r.steal.has_work())
    }

    /// Takes the futures off the owned list and cancels them, a shutdown's step between the
    /// unstarted goroutines and the parked ones (a destructor of those may join a future).
    /// Each future's destructor has its waits refused (`goroutine/cancel.rs`): such a wait
    /// panics, and the panic, caught with the rest of the drop (`raw.rs`), cuts that
    /// destructor short. On a worker a future's wait panics anyway; here, where the parked
    /// goroutines are unwound only after the futures, one that waited for such a goroutine
    /// (joined it, or took a lock it holds) would wait for good (review, session 29). A wait
    /// that needs no waiting (a finished join, a free lock) still returns.
    pub(crate) fn cancel_futures(&self) {
        let futures = self
            .owned
            .drain_matching(|h| h.kind == Kind::Future && h.home.load(Relaxed) == UNBOUND);
        for t in futures {
            let cancelled = crate::goroutine::Cancelled::Future(t.header().id);
            crate::goroutine::refusing_waits(cancelled, move || {
                // SAFETY: we pass the list's reference; a future may be dropped on any thread.
                unsafe { t.shutdown() }
            });
        }
    }

    /// Begins shutdown (steps 1–2 of the module header).
    pub(crate) fn begin_shutdown(&self) {
        if self.shutdown.swap(true, AcqRel) {
            return;
        }
        self.owned.close();
        for r in self.remotes.iter() {
            r.parker.unpark();
        }
        // The blocking pool refuses new calls and drops its queue now, before anything is
        // unwound: a destructor unwound in the shutdown steps may wait for a queued call (a
        // `spawn_blocking` handle), which a busy pool thread kept queued. Stopped after the
        // workers' joins, as before, the drop waited for that busy call to end, for good if it
        // never did, and the queued calls ran afterwards with their callers unwound (review,
        // session 35). This may run inside a goroutine (`run`'s main, or a runtime dropped in
        // one of its own): the dropped calls' destructors run outside it, so that none of
        // them parks it here (on a worker, a wait there panics instead of blocking it, and
        // `drop_jobs` catches the panic).
        crate::goroutine::outside_goroutine(|| self.blocking.shutdown());
    }

    /// The part of worker `index`'s shutdown step (step 3 of the module header) that cancels
    /// tasks: hands its timers to the fallback thread, then cancels the goroutines nobody
    /// started, the futures, and the goroutines bound to it, on the calling thread, which must
    /// be that worker's; then drops from the fallback heap the timers those cancellations
    /// left behind, if any were handed over. Run by the worker's own step, and by a runtime
    /// dropped inside one of its own goroutines before it joins the other workers.
    pub(crate) fn unwind_share(&self, index: usize) {
        let me = index as u32;
        // Before anything is cancelled: a destructor unwound below may wait for a `Sleep` its
        // goroutine armed here before the shutdown, and with this worker's loop stopped and
        // the monitor gone only the fallback thread can fire it. Handed over after the
        // unwinds, such a wait hung `Runtime`'s drop for good (review, session 31). Nothing
        // lands in this heap afterwards: this worker no longer serves (its timers go to the
        // fallback), and `add_timer_to` refuses once `shutdown` is set.
        let handed = self.hand_timers_to_fallback(index);
        // First the goroutines nobody started: a destructor unwound below may wait for one
        // (join it, or wait on a channel its closure holds), and only their cancellation ends
        // that wait. Each is claimed by binding it here (`Header::try_bind`): another worker
        // may have taken it before shutdown and be about to start it, and whichever binds it
        // first has it (review, session 20: one cancelled here while another worker started
        // it was dropped on the wrong thread; session 25: cancelled only after the workers
        // were joined, such a wait hung `Runtime`'s drop).
        // Bound here from their spawn (event-loop handlers, `go_here`), goroutines that never
        // started are told by their header's flag (review, session 29: they were left to the
        // pass of parked ones, and a destructor there waiting for a handler's
        // `on_disconnect` hung).
        let unstarted = self.owned.drain_matching(|h| {
            h.kind == Kind::Goroutine
                && (h.try_bind(me) || (h.home.load(Relaxed) == me && !h.started()))
        });
        for t in unstarted {
            // SAFETY: we pass the list's reference; the goroutine never started (binding it
            // here kept any worker from starting it; one bound here from its spawn can start
            // only on this thread, which runs no task any more), so it may be cancelled on any
            // thread.
            unsafe { t.shutdown() };
        }
        // Then the futures (any thread may drop them), before any goroutine is unwound: a
        // destructor there may join one, which only its cancellation ends. Mixed in one pass,
        // in the list's order, a goroutine listed ahead of the future it joined waited for
        // good (review, session 29).
        self.cancel_futures();
        // Then the goroutines bound here.
        let goroutines = self.owned.drain_matching(|h| h.home.load(Relaxed) == me);
        for t in goroutines {
            // SAFETY: we pass the list's reference; these goroutines are bound to this thread.
            unsafe { t.shutdown() };
        }
        if handed {
            crate::time::fallback::drop_cancelled();
        }
    }

    /// Cancels every task still listed (those bound to no live worker), after the workers
    /// exited.
    pub(crate) fn finish_shutdown(&self) {
        // The timers of a worker whose shutdown step has not run (a runtime dropped inside one
        // of its own goroutines: that worker still runs the dropping one), before the
        // destructors below may wait for them; the other workers' heaps are empty by now.
        let mut handed = false;
        for i in 0..self.remotes.len() {
            handed |= self.hand_timers_to_fallback(i);
        }
        for t in self.inject.close() {
            drop(t);
        }
        for i in 0..self.remotes.len() {
            drop(self.close_inbox(i));
        }
        // Goroutines nobody started first, as in a worker's step (`worker::WorkerCtx::
        // shutdown`): a destructor of the parked ones cancelled next may wait for them. No
        // worker can start one any more: the others are joined, and this thread's (a runtime
        // dropped inside one of its own goroutines) runs no task now.
        let unstarted = self.owned.drain_matching(|h| {
            h.kind == Kind::Goroutine && (h.home.load(Relaxed) == UNBOUND || !h.started())
        });
        for t in unstarted {
            // SAFETY: we pass the list's reference; the goroutine never started.
            unsafe { t.shutdown() };
        }
        // Then the futures, before the parked goroutines, as in a worker's step.
        self.cancel_futures();
        for t in self.owned.drain_matching(|_| true) {
            // SAFETY: we pass the list's reference. A started goroutine whose worker is gone
            // is not unwound here: `Goroutine::drop` leaks its stack instead (it checks the
            // thread), which is safe.
            unsafe { t.shutdown() };
        }
        for r in self.remotes.iter() {
            r.poller.orphan_all();
        }
        if handed {
            crate::time::fallback::drop_cancelled();
        }
    }
}

impl Schedule for Handle {
    fn schedule(&self, task: Notified, is_yield: bool) {
        Shared::schedule(self, task, is_yield)
    }

    fn release(&self, task: TaskRef) -> bool {
        if task.header().kind == Kind::Goroutine {
            self.goroutine_finished();
        }
        self.owned.remove(task)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::Ordering::SeqCst;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use crate::test_util::counting_waker;
    use crate::time::entry::TimerEntry;

    /// A timer inserted from another thread into the heap of a worker blocked in its poller
    /// with no timer to bound the sleep wakes that worker, which then fires it on time.
    #[test]
    fn a_timer_added_from_another_thread_wakes_its_parked_worker() {
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        rt.block_on(async {});
        let remote = &rt.handle.remotes[0];
        let parked_by = Instant::now() + Duration::from_secs(5);
        while !remote.poller.staleness().1 {
            assert!(Instant::now() < parked_by, "the worker never parked");
            std::thread::sleep(Duration::from_millis(1));
        }
        let (fired, waker) = counting_waker();
        let entry = Arc::new(TimerEntry::new(waker));
        let armed = Instant::now();
        rt.handle
            .add_timer_to(0, armed + Duration::from_millis(20), entry)
            .unwrap();
        while fired.0.load(SeqCst) == 0 {
            assert!(
                armed.elapsed() < Duration::from_secs(5),
                "the parked worker slept past the timer"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(armed.elapsed() >= Duration::from_millis(20));
    }

    /// A goroutine left in a stuck worker's ring while the other worker sleeps (here by a
    /// muted `notify_parked`, as when a parking worker missed the push) is taken by that
    /// worker once the monitor sees the stuck one's poller go stale, long before the stuck
    /// goroutine ends. Before, it waited for the stuck goroutine (here its 20 s limit).
    #[test]
    fn the_monitor_wakes_a_parked_worker_for_work_behind_a_stuck_one() {
        use std::sync::atomic::AtomicBool;
        let rt = crate::Runtime::builder().workers(2).build().unwrap();
        let shared = rt.handle.clone();
        let ran = Arc::new(AtomicBool::new(false));
        let waited = {
            let ran = ran.clone();
            rt.run(move || {
                // Both workers idle and parked, then this goroutine's worker gets stuck.
                let parked_by = Instant::now() + Duration::from_secs(5);
                let me = crate::sched::worker::current_index_in(&shared).unwrap();
                let other = &shared.remotes[1 - me];
                while !other.poller.staleness().1 {
                    assert!(Instant::now() < parked_by, "the other worker never parked");
                    crate::yield_now();
                }
                shared.mute_notify.store(true, SeqCst);
                let start = Instant::now();
                let r = ran.clone();
                drop(crate::go(move || r.store(true, SeqCst)));
                // Stuck: no park, no yield, until the goroutine above ran elsewhere.
                while !ran.load(SeqCst) && start.elapsed() < Duration::from_secs(20) {
                    std::hint::spin_loop();
                }
                shared.mute_notify.store(false, SeqCst);
                start.elapsed()
            })
        };
        assert!(ran.load(SeqCst), "the goroutine never ran");
        assert!(waited < Duration::from_secs(2), "it waited {waited:?}");
    }
}
