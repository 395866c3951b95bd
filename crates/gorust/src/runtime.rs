//! `Runtime` and its `Builder`: starting and stopping the workers.
//!
//! `Builder::build`, in order:
//! 1. Checks the configuration: a setting out of range is an `InvalidInput` error that names it.
//!    The stack size is rounded up to whole pages.
//! 2. Grows the process's descriptor table to `reserve_descriptors` slots
//!    (`sys::fdtable::reserve`) before any thread of the runtime starts, while the growth may
//!    still cost no RCU grace period. A failure is ignored: the table then grows on demand.
//! 3. Installs the `SIGSEGV`/`SIGBUS` handler that reports a goroutine's stack overflow
//!    (`goroutine/overflow.rs`).
//! 4. Makes the shared state, with one poller per worker (`Shared::new`).
//! 5. Starts the threads: worker 0's on standby (below), then workers 1 and up, then the monitor
//!    (`sched/sysmon.rs`). With `schedtrace` set it also starts the trace thread. That thread
//!    holds only a weak reference, ends at its first tick after shutdown and is never joined.
//!    If it cannot start, stderr says so and `build` still succeeds.
//!
//! A worker or the monitor that cannot start is `build`'s error. The runtime built so far is
//! then dropped, which stops and joins the threads that did start.
//!
//! States of worker 0 (`FirstWorker`). `Runtime::run` serves worker 0 on its caller's thread
//! when it can, so that thread does not just wait:
//! - `Standby { go, thread }`: set by `build` once the thread has started. The thread waits on
//!   a one-slot channel for its orders.
//! - `Standby` → `Serving(thread)`: `go`, `spawn`, `block_on` and the drop send `true`
//!   (`serve_first_worker`) before they may queue work for worker 0. From then on worker 0
//!   runs on its own thread for the life of the runtime.
//! - `Standby` → `Done`: `run`, on a thread that belongs to no runtime, sends `false`
//!   (`take_first_worker`). A worker's thread, a blocking-pool thread and a thread inside
//!   `Runtime::block_on` already have a role and do not qualify. Worker 0's thread hands back
//!   its queue and exits, and `run` joins it. Then `run` sets `first_served_inline`, which lets
//!   a one-worker runtime's monitor leave the descriptor table (`sched/sysmon.rs`), and runs
//!   `run_worker` for worker 0 on the caller's thread. The main goroutine begins the shutdown
//!   when it ends, whether it returned or unwound (`ShutdownOnDrop`), and that ends worker 0's
//!   loop. If `run` finds `Serving`, or runs on a thread that has a role, worker 0 keeps its
//!   own thread and `run` waits for `f` with `block_on`.
//! - `Serving` → `Done`: the drop, which then joins the thread. A runtime whose `build` failed
//!   before worker 0's thread started is `Done` from the start.
//!
//! Who touches what: `first` is behind a `Mutex`, because `go`, `spawn` and `block_on` take
//! `&self` and may race on several threads. Those three, `run` and the drop's first step lock
//! it; the drop's joins reach it through `get_mut`. A poisoned lock is taken all the same:
//! every holder swaps the whole state out first (`mem::replace`), so a panic leaves a whole
//! state behind. `threads` (workers 1 and up) and `monitor` are written only by `build` and
//! emptied only by the drop, both with exclusive access, so that `Mutex` is never locked.
//! `handle` is the scheduler's `Arc<Shared>`, cloned into every worker; the monitor and the
//! trace thread hold it weakly.
//!
//! Shutdown (`Drop`), in order:
//! 1. `serve_first_worker`: a worker 0 still on standby serves, so that it runs its own
//!    shutdown step like the other workers.
//! 2. `Shared::begin_shutdown`: sets the shutdown flag, closes the owned-task list, unparks
//!    every worker and stops the blocking pool (steps 1–2 of `sched/mod.rs`).
//! 3. The monitor is woken and joined before this drop lets go of the handle. That way the
//!    monitor never drops the last reference, and never runs destructors in a descriptor
//!    table of its own.
//! 4. If the drop runs inside one of this runtime's own goroutines (`stop_serving_in` finds
//!    that this thread is one of its workers), that worker stops serving. It unwinds its share
//!    at once, outside any goroutine, while the other workers unwind theirs
//!    (`Shared::unwind_share`). This cannot wait until after the joins (review, session 27):
//!    a destructor on another worker may join a goroutine parked here, and that join and this
//!    thread's join of that worker then waited for each other for good.
//! 5. Joins worker 0's thread if it is `Serving`, then workers 1 and up. Here and in step 3 it
//!    skips the calling thread, which cannot join itself: the drop may run inside one of its
//!    own workers, or in a waker the monitor called (`join_unless_current`).
//! 6. `Shared::finish_shutdown`, on this thread and outside any goroutine: cancels what no live
//!    worker holds any more and orphans the pollers' descriptors. (The blocking pool stopped
//!    in step 2, before any unwind.)
//!
//! Rejected (ARCHITECTURE.md, "Threads and the descriptor table"):
//! - Worker 0 always on a thread of its own, with `run`'s caller only waiting, as before
//!   session 18. A one-worker runtime then had three threads in the descriptor table: the
//!   waiting caller, worker 0 and the monitor. While more than one thread shares the table,
//!   Linux counts a file reference on every socket call (`fdget`/`fput`). tokio's
//!   current-thread runtime and a one-thread C loop skip that count.
//! - Starting worker 0's thread only when something needs it. A thread that cannot start
//!   would then fail a later `go` or `spawn`, which return no `Result`. So `build` starts it
//!   on standby.
//! - Giving the workers or `run`'s caller a descriptor table of their own
//!   (`unshare(CLONE_FILES)`): the descriptors they open must be the process's. Only the
//!   monitor leaves the table, and `sched/sysmon.rs` says why it keeps only its pollers'
//!   descriptors there.

use std::future::Future;
use std::io;
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::Duration;

use crate::loom::sync::atomic::Ordering::Release;
use crate::sched::metrics::RuntimeMetrics;
use crate::sched::queue::Local;
use crate::sched::task::{JoinHandle, Kind};
use crate::sched::{Config, Handle, Shared};

/// Configures a [`Runtime`]: the scheduler's intervals, sizes and limits, each with its
/// default. (The cooperative budget, the monitor's 10 ms period and the stack caches' sizes
/// are constants.)
#[derive(Clone, Debug)]
pub struct Builder {
    config: Config,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// A builder with the defaults listed on each method.
    pub fn new() -> Builder {
        Builder {
            config: Config {
                workers: thread::available_parallelism().map_or(1, |n| n.get()),
                stack_size: 256 * 1024,
                reserve_descriptors: 16 * 1024,
                global_queue_interval: 61,
                lifo_limit: 3,
                event_interval: 61,
                spin_rounds: 64,
                timer_check_interval: 16,
                max_blocking_threads: 512,
                blocking_keep_alive: Duration::from_secs(10),
                thread_name: "gorust-worker".into(),
                schedtrace: crate::sched::trace::schedtrace_from_env(),
            },
        }
    }

    /// Worker threads (Go's `GOMAXPROCS`). Default: the number of available cores.
    pub fn workers(mut self, n: usize) -> Self {
        self.config.workers = n;
        self
    }

    /// Usable bytes of each goroutine's stack, rounded up to whole pages (at least 16 KiB).
    /// Default: 256 KiB. This is address space: a goroutine costs physical memory only for the
    /// pages it touches. Overflowing it aborts the process with a message naming the goroutine.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.config.stack_size = bytes;
        self
    }

    /// Slots of the process's descriptor table to make room for when the runtime starts,
    /// capped at the soft `RLIMIT_NOFILE` (raise that limit before `build`, not after); 64 or
    /// fewer, 0 included, leave the table alone. The kernel rounds the table up to a power of
    /// two and keeps it for the life of the process. Default: 16,384 (about 132 KiB of kernel
    /// memory; 8 KiB under the usual limit of 1,024).
    ///
    /// Linux grows the table by doubling as descriptors are opened, and in a process with
    /// several threads each growth stalls the thread that needed the room for an RCU grace
    /// period (10–20 ms measured here): a worker in `accept` would run none of its goroutines
    /// meanwhile. Growing it once in `build`, before the workers start, costs no grace period
    /// if the process is still single-threaded then, and one (spent by the thread calling
    /// `build`) if not (`sys/fdtable.rs`).
    pub fn reserve_descriptors(mut self, slots: usize) -> Self {
        self.config.reserve_descriptors = slots;
        self
    }

    /// A worker takes a task from the global queue before its own every this many ticks, so
    /// that a busy worker cannot starve the global queue. Default: 61 (Go's and tokio's value:
    /// a prime, so it does not fall into step with periodic workloads).
    pub fn global_queue_interval(mut self, ticks: u32) -> Self {
        self.config.global_queue_interval = ticks;
        self
    }

    /// How many times in a row a worker may run the task in its LIFO slot (the task most
    /// recently woken on it) before it takes one from its queues. Default: 3 (tokio's value);
    /// the slot makes message passing run the receiver next, the limit keeps two goroutines
    /// that wake each other from starving the rest.
    pub fn lifo_limit(mut self, n: u32) -> Self {
        self.config.lifo_limit = n;
        self
    }

    /// A busy worker polls its netpoller (without blocking) every this many ticks, so that
    /// I/O readiness is seen even when the run queues never empty. Default: 61 (tokio's
    /// `event_interval`; Go polls from `findrunnable` and `sysmon`).
    pub fn event_interval(mut self, ticks: u32) -> Self {
        self.config.event_interval = ticks;
        self
    }

    /// Rounds a worker with no work keeps looking (each a few hundred nanoseconds of pause
    /// instructions and one look at the queues) before it parks; 0 parks at once. Default: 64
    /// (about 20-50 µs). Spinning saves the eventfd write and two context switches that a
    /// park-then-wake costs when work arrives soon after, as it does while another worker is
    /// spawning; Go's spinning Ms exist for the same reason. Only searching workers spin, and at
    /// most half the workers search.
    pub fn spin_rounds(mut self, rounds: u32) -> Self {
        self.config.spin_rounds = rounds;
        self
    }

    /// A busy worker fires due timers every this many ticks (an idle one fires them when it
    /// wakes). Default: 16.
    pub fn timer_check_interval(mut self, ticks: u32) -> Self {
        self.config.timer_check_interval = ticks;
        self
    }

    /// Most threads the blocking pool may run at once. Default: 512 (tokio's value). At least
    /// one: [`build`](Self::build) refuses 0 (name resolution and `gorust::fs` need a thread
    /// to run on).
    pub fn max_blocking_threads(mut self, n: usize) -> Self {
        self.config.max_blocking_threads = n;
        self
    }

    /// How long an idle blocking-pool thread waits for work before it exits. Default: 10 s.
    pub fn blocking_keep_alive(mut self, d: Duration) -> Self {
        self.config.blocking_keep_alive = d;
        self
    }

    /// Prefix of worker thread names. Default: `gorust-worker` (threads are `gorust-worker-0`…;
    /// worker 0 runs on the caller's thread instead when `Runtime::run` serves it there).
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.config.thread_name = name.into();
        self
    }

    /// Print a scheduler trace line every `every` on stderr (like Go's
    /// `GODEBUG=schedtrace=MS`); a zero period is an error of `build`. Default: from
    /// `GORUST_DEBUG=schedtrace=MS`, else off.
    pub fn schedtrace(mut self, every: Option<Duration>) -> Self {
        self.config.schedtrace = every;
        self
    }

    /// Starts the workers.
    ///
    /// Errors: `InvalidInput` for a setting out of range (zero workers, more than 4,096
    /// workers, no blocking thread, a zero interval, `lifo_limit` or `schedtrace` period, a
    /// stack over 1 GiB, a thread name with a NUL byte); the OS error if a poller or a thread
    /// (a worker, the monitor) cannot be created (for example `EMFILE` when descriptors run
    /// out, `EAGAIN` at the thread limit).
    pub fn build(&self) -> io::Result<Runtime> {
        let mut config = self.config.clone();
        let invalid = |msg: &str| io::Error::new(io::ErrorKind::InvalidInput, msg.to_string());
        if config.workers == 0 {
            return Err(invalid("gorust: Builder::workers must be at least 1"));
        }
        if config.workers > 4096 {
            return Err(invalid("gorust: Builder::workers must be at most 4096"));
        }
        // Zero was quietly taken as one (review, session 25): a pool of no thread would leave
        // every blocking call waiting.
        if config.max_blocking_threads == 0 {
            return Err(invalid(
                "gorust: Builder::max_blocking_threads must be at least 1",
            ));
        }
        // Named one by one: a shared message named neither the setting nor, for `lifo_limit`,
        // what it is (review, session 30).
        for (value, setting) in [
            (config.global_queue_interval, "global_queue_interval"),
            (config.lifo_limit, "lifo_limit"),
            (config.timer_check_interval, "timer_check_interval"),
            (config.event_interval, "event_interval"),
        ] {
            if value == 0 {
                return Err(invalid(&format!(
                    "gorust: Builder::{setting} must be at least 1"
                )));
            }
        }
        if config.stack_size > 1 << 30 {
            return Err(invalid("gorust: Builder::stack_size must be at most 1 GiB"));
        }
        // std's thread spawn panics on a name with a NUL byte.
        if config.thread_name.contains('\0') {
            return Err(invalid(
                "gorust: Builder::thread_name must not contain a NUL byte",
            ));
        }
        // A zero period would print without pause (`GORUST_DEBUG=schedtrace=0` means off).
        if config.schedtrace == Some(Duration::ZERO) {
            return Err(invalid(
                "gorust: Builder::schedtrace period must not be zero",
            ));
        }
        config.stack_size = crate::goroutine::stack::round_size(config.stack_size);
        // Before any thread of ours starts (see `reserve_descriptors`). Only an optimisation:
        // if it fails (`EMFILE` with every number from the target up taken, or `ENOMEM`), the
        // table grows on demand, as it would have anyway.
        let _ = crate::sys::fdtable::reserve(config.reserve_descriptors);
        crate::goroutine::install_overflow_handler();
        let (handle, locals) = Shared::new(config)?;
        let mut rt = Runtime {
            handle,
            threads: Mutex::new(Vec::with_capacity(locals.len())),
            first: Mutex::new(FirstWorker::Done),
            monitor: None,
        };
        let name = |i: usize| format!("{}-{i}", rt.handle.config.thread_name);
        for (i, local) in locals.into_iter().enumerate() {
            let h = rt.handle.clone();
            if i == 0 {
                // Waits on standby (see `FirstWorker`).
                let (go, told) = mpsc::sync_channel::<bool>(1);
                let thread = thread::Builder::new().name(name(0)).spawn(move || {
                    if told.recv() == Ok(false) {
                        return Some(local);
                    }
                    crate::sched::worker::run_worker(h, 0, local);
                    None
                })?;
                rt.first = Mutex::new(FirstWorker::Standby { go, thread });
                continue;
            }
            // On an error `rt` drops: the workers started so far are told to stop and joined.
            let t = thread::Builder::new()
                .name(name(i))
                .spawn(move || crate::sched::worker::run_worker(h, i, local))?;
            rt.threads
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .push(t);
        }
        // On an error `rt` drops, as above.
        rt.monitor = Some(crate::sched::sysmon::start(&rt.handle)?);
        if let Some(every) = rt.handle.config.schedtrace {
            crate::sched::trace::start(&rt.handle, every);
        }
        Ok(rt)
    }
}

/// Worker 0, which [`Runtime::run`] runs on its caller's thread where it can, as Go runs the
/// main goroutine's scheduler on the process's first thread and tokio's current-thread runtime
/// runs on the thread that calls `block_on`: the caller would only wait meanwhile. One thread
/// fewer is one fewer sharing the descriptor table, which the kernel counts on every socket
/// call while more than one thread shares it (`ARCHITECTURE.md`, "Threads and the descriptor
/// table").
///
/// `build` starts its thread on standby, so that a thread that cannot start is still `build`'s
/// error. Everything that may queue work before `run` (`go`, `spawn`, `block_on`, the drop)
/// tells it to serve; `run`, if nothing did and its thread may host a worker, tells it to hand
/// the queue back and exit, and serves worker 0 itself.
enum FirstWorker {
    Standby {
        /// `true`: serve; `false`: return the queue and exit.
        go: mpsc::SyncSender<bool>,
        thread: thread::JoinHandle<Option<Local>>,
    },
    Serving(thread::JoinHandle<Option<Local>>),
    /// Served on `run`'s thread, or never had a thread (`build` failed before it).
    Done,
}

/// A running scheduler: worker threads, their pollers and timers, and a blocking pool.
///
/// Dropping it shuts it down: tasks still running are cancelled when they next park (a
/// goroutine's stack is unwound on its own thread, running its destructors; leaked instead,
/// destructors not run, in a build with `panic = "abort"`, for a goroutine parked while a
/// panic of its worker's thread was unwinding, and for one whose worker thread died without
/// its shutdown step) and the workers are joined. A
/// blocking-pool thread busy in a job is not waited for: it finishes the job and exits, and
/// holds the runtime's shared state (its pollers' descriptors too) until then.
/// Goroutines that neither park nor return keep it waiting. The unwind is a panic: a
/// goroutine that catches it (`catch_unwind` around a wait) runs on, but each wait it then
/// makes panics again instead of waiting, and after a thousand such catches in a row the
/// process aborts with a message that names the goroutine.
pub struct Runtime {
    pub(crate) handle: Handle,
    /// Workers 1 and up.
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
    first: Mutex<FirstWorker>,
    /// The monitor thread (`sched/sysmon.rs`), joined by the drop.
    monitor: Option<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.handle.config.workers)
            .finish()
    }
}

impl Runtime {
    /// A [`Builder`] with the defaults.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A runtime with the defaults.
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// Runs `f` as the main goroutine, waits for it, shuts the runtime down and returns what
    /// `f` returned. A panic in `f` is re-raised here after shutdown.
    ///
    /// On a thread outside any gorust runtime, and if nothing was given to the runtime before
    /// (`go`, `spawn`, `block_on`), this thread serves as worker 0 meanwhile, as Go's first
    /// thread and tokio's current-thread `block_on` do: goroutines and futures on worker 0 run
    /// on it, with its name, thread-locals and (for futures, polled on the thread's own stack)
    /// its stack size; its timer slack and alternate signal stack are restored afterwards. The
    /// runtime shuts down as soon as `f` returns. Otherwise (from a goroutine, a blocking-pool
    /// thread, inside `Runtime::block_on`, or after `go`), worker 0 has a thread of its own and
    /// this thread parks or blocks until `f` returns.
    ///
    /// # Panics
    ///
    /// If called from a future (not a goroutine) running on a worker thread, before `f`
    /// starts: waiting for it there would block the worker. Use `.await` on
    /// [`go`](Runtime::go)'s handle there.
    pub fn run<F, R>(self, f: F) -> R
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        // Checked first: `block_on` below would panic only after `f` started, with a message
        // about itself.
        if crate::blocking::in_a_future_on_a_worker() {
            panic!(
                "gorust: Runtime::run called from a future on a worker thread would block the \
                 worker until f returns; .await the handle of Runtime::go there, or call run \
                 from a goroutine"
            );
        }
        let first = self.take_first_worker();
        let served_here = first.is_some();
        let main = match first {
            Some(local) => {
                // However the main goroutine ends (returned, unwound, or dropped unstarted when
                // it gets no stack): what ends worker 0's loop below.
                let stop = ShutdownOnDrop(self.handle.clone());
                let main = crate::goroutine::go_on(&self.handle, move || {
                    let _stop = stop;
                    f()
                });
                crate::sched::worker::run_worker(self.handle.clone(), 0, local);
                // The shutdown began, so `main` has ended, or is ending on another worker.
                main
            }
            None => self.go(f),
        };
        let res = crate::block_on(main);
        drop(self);
        if served_here {
            crate::goroutine::stack::release_local_cache();
            crate::sched::task::release_local_cells();
        }
        match res {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        }
    }

    /// Worker 0's queue, if its thread is on standby and this thread can serve it (it belongs
    /// to no runtime: a worker's thread or one inside `block_on` already has a role). Its
    /// thread hands the queue back and exits.
    fn take_first_worker(&self) -> Option<Local> {
        if crate::context::handle().is_some() {
            return None;
        }
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        match std::mem::replace(&mut *first, FirstWorker::Done) {
            FirstWorker::Standby { go, thread } => {
                let _ = go.send(false);
                let local = thread.join();
                self.handle.first_served_inline.store(true, Release);
                match local {
                    Ok(Some(local)) => Some(local),
                    // Unreachable: told to hand back, it does nothing else.
                    _ => panic!("gorust: worker 0's thread failed on standby"),
                }
            }
            other => {
                *first = other;
                None
            }
        }
    }

    /// Tells worker 0's thread to serve, if it is still on standby: before anything may queue
    /// work for it.
    fn serve_first_worker(&self) {
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        *first = match std::mem::replace(&mut *first, FirstWorker::Done) {
            FirstWorker::Standby { go, thread } => {
                let _ = go.send(true);
                FirstWorker::Serving(thread)
            }
            other => other,
        };
    }

    /// Starts a goroutine on this runtime.
    pub fn go<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.serve_first_worker();
        crate::goroutine::go_on(&self.handle, f)
    }

    /// Spawns a future on this runtime.
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.serve_first_worker();
        self.handle
            .spawn_with_id(crate::sched::next_task_id(), fut, Kind::Future)
    }

    /// Runs a future to completion on the current thread, with this runtime entered (so that
    /// `gorust::go` and `gorust::spawn` inside it use this runtime). Inside a goroutine (of this
    /// runtime or another) it parks the goroutine, as `gorust::block_on` does; the runtime is
    /// entered only while the future is polled, so the goroutines its worker runs meanwhile
    /// still spawn onto their own runtime.
    ///
    /// # Panics
    ///
    /// As [`crate::block_on`]: from a future (not a goroutine) on a worker thread, if the
    /// future would have to wait.
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.serve_first_worker();
        crate::block_on(crate::context::enter_per_poll(self.handle.clone(), fut))
    }

    /// A snapshot of the scheduler's counters.
    pub fn metrics(&self) -> RuntimeMetrics {
        self.handle.metrics()
    }

    /// Live goroutines on this runtime.
    pub fn num_goroutines(&self) -> usize {
        self.metrics().goroutines
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Worker 0's thread, if on standby, serves its part of the shutdown.
        self.serve_first_worker();
        self.handle.begin_shutdown();
        // Before this drop lets go of the handle, so that the monitor never holds the last
        // reference (see `sysmon.rs`).
        if let Some(m) = self.monitor.take() {
            m.thread().unpark();
            join_unless_current(m);
        }
        // Dropped inside one of its own goroutines: this worker stops serving, and unwinds
        // its share now, while the others unwind theirs, as their own steps would. A
        // destructor unwound on another worker may join a goroutine parked here; left to
        // `finish_shutdown` after the joins below, that join and this thread's join of its
        // worker waited for each other for good (review, session 27). This worker runs no
        // task any more, so destructors may block it (`gorust::block_on`), and none of them
        // (a task dropped unstarted, a future's state) runs as the dropping goroutine.
        if let Some(me) = crate::sched::worker::stop_serving_in(&self.handle) {
            crate::goroutine::outside_goroutine(|| self.handle.unwind_share(me));
        }
        let first = self.first.get_mut().unwrap_or_else(|e| e.into_inner());
        if let FirstWorker::Serving(t) = std::mem::replace(first, FirstWorker::Done) {
            join_unless_current(t);
        }
        let threads = self.threads.get_mut().unwrap_or_else(|e| e.into_inner());
        std::mem::take(threads)
            .into_iter()
            .for_each(join_unless_current);
        // What is left: tasks bound to no live worker (and, dropped inside one of its own
        // goroutines, this worker's own shutdown step has not run), on this thread.
        crate::goroutine::outside_goroutine(|| self.handle.finish_shutdown());
    }
}

/// Joins `t`, unless the drop runs on that very thread (inside one of its own workers, or in a
/// waker the monitor called): a thread cannot join itself.
fn join_unless_current<T>(t: thread::JoinHandle<T>) {
    if t.thread().id() != thread::current().id() {
        let _ = t.join();
    }
}

/// Begins the shutdown when dropped: the end of `run`'s main goroutine, returned or unwound.
struct ShutdownOnDrop(Handle);

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        self.0.begin_shutdown();
    }
}
