//! The monitor thread (Go's `sysmon`): polls the netpoller, and fires the timers, of a worker
//! that is stuck.
//!
//! A busy worker polls its own epoll every `event_interval` ticks; but a worker stuck in one
//! long-running goroutine polls nothing and fires no timer, and readiness and timers for the
//! goroutines bound to it (and any future registered or armed there) would wait. The monitor
//! looks at each worker's poller; one that has not been polled for `STALE` and whose worker is
//! not blocked in it is polled from here, the worker's due timers are fired from here, and the
//! woken tasks go to their workers' queues (a bound goroutine still waits for its own worker;
//! a future can be stolen and run elsewhere). Timers only while the monitor shares the
//! process's descriptor table (below): a timer's waker may write to any descriptor, and in a
//! one-worker runtime no other worker could run the woken task anyway. (Before session 21,
//! timers fired only on their own worker.)
//!
//! When it looks: it sleeps until the first moment some poller could have gone `STALE` (the
//! oldest last poll plus `STALE`; `STALE` from now when every worker is blocked in its poller
//! or none has registrations), at least `MIN_SLEEP`. A busy runtime's workers poll every few
//! microseconds, so the monitor wakes about once per `STALE`, and a stale poller is polled
//! ~10–11 ms after its last poll. It used to wake every 5 ms regardless (and catch a stale
//! poller 10–15 ms late): on the one-core echo benchmark each wake-up preempts the worker;
//! now the server's involuntary context switches are ~560 per 4 s instead of ~870, with no
//! change of its CPU per round trip that this machine's noise lets us see.
//!
//! **Stranded work.** A task pushed where other workers may steal it (a worker's ring or its
//! stealable LIFO slot) wakes a parked worker unless one is searching (`idle.rs`, rule 2),
//! and a searcher that parks last looks again (rule 4). One window is left, as in Go and
//! tokio: a worker refused the search (enough searchers already) parks after the push's look
//! at the idle state, and re-checks only the global queue and its own inbox. The search then
//! ends elsewhere, and the task waits for the worker that holds it, for as long as that
//! worker's current goroutine runs. Every re-check at each park, closing the window, cost the
//! two-worker ping-pong about 4% and `spawn_all` 10% (session 28). Instead the monitor, which
//! looks every 10 ms anyway, wakes a parked worker (if none searches) when a worker whose
//! poller went stale (stuck in one goroutine) holds stealable work: such a task waits about
//! 10–20 ms, not until the goroutine ends (session 29; test
//! `the_monitor_wakes_a_parked_worker_for_work_behind_a_stuck_one`). Bound goroutines are not
//! stealable and still wait for their worker, as the first limit in ARCHITECTURE says.
//!
//! It also runs the goroutine stack pool's scavenger (see `goroutine/stack.rs`) every
//! `SCAVENGE_EVERY`.
//!
//! The monitor holds a `Weak` reference and exits when the runtime shuts down: `Runtime`'s drop
//! wakes it and joins it before it lets go of its own reference, so the monitor never drops the
//! last one (the destructors that would then run on it close descriptors, which in a table of
//! its own, below, would close the wrong ones or none).
//!
//! **A table of its own.** When a process's descriptor table is shared by more than one thread,
//! Linux takes and drops a reference on the file at every system call that uses a descriptor
//! (`fdget`/`fput`); with one thread it skips both. For a one-worker runtime run from
//! `Runtime::run`, whose caller serves as worker 0, the monitor is the only other thread the
//! runtime always has (blocking-pool threads come and go; a schedtrace thread is opt-in). So
//! there, on its first look after `run` took worker 0 (`first_served_inline`), it moves to a
//! private copy of the table that keeps only the pollers' own descriptors
//! (`sys::fdtable::leave_shared_table`), and the worker's socket calls take the single-thread
//! path: about 1–1.5% of the echo benchmark's CPU per round trip (`bench/RESULTS.md`, session
//! 18). Other runtimes have another thread in the table anyway (more workers, or the thread
//! that waits for `run`), would gain nothing, and keep their monitor where it was.
//!
//! Before it leaves, it blocks the process's signals, so that no handler (one writing to a
//! self-pipe, say) runs here. Once out, it calls only wakers that touch no descriptor: a plain
//! thread's `block_on` waker (`Poller::poll_deferring`). Any other waker may write to a
//! descriptor (this or another runtime's eventfd, an executor's pipe), and this thread's
//! numbers no longer name the process's files; those wait for the worker, which is the only
//! thread that could run this runtime's tasks anyway. A foreign executor's task, or another
//! runtime's, waiting on a worker stuck in one goroutine now waits until that worker polls
//! again (and a goroutine that blocks its thread until such a task runs waits for good).
//!
//! Rejected: the monitor leaving the table and keeping every descriptor (it would hold files
//! open that the process closes, and a number reused in the process would name another file
//! here); keeping stdin, stdout and stderr for its messages (closing stdout must still end a
//! pipe).

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::Shared;
use crate::loom::sync::atomic::Ordering::Acquire;
use crate::sys::epoll::Events;

/// How long a poller may go unpolled before the monitor polls it (the 10 ms).
const STALE: Duration = Duration::from_millis(10);
/// The shortest sleep between two looks.
const MIN_SLEEP: Duration = Duration::from_millis(1);
/// How often it returns surplus pooled stacks' pages to the kernel.
const SCAVENGE_EVERY: Duration = Duration::from_millis(250);

/// Starts the monitor; the OS error if its thread cannot start, which is `Builder::build`'s
/// error. Shutdown: `unpark` the thread once `Shared::shutdown` is set, then join it.
///
/// Before, a monitor that could not start was left out and the runtime ran without it: a
/// stuck worker's timers and descriptors were then never polled, work stranded behind it was
/// never rescued, and pooled stacks never gave their pages back (review, session 30).
pub(crate) fn start(shared: &Arc<Shared>) -> std::io::Result<std::thread::JoinHandle<()>> {
    #[cfg(test)]
    if REFUSE_START.with(std::cell::Cell::get) {
        return Err(std::io::Error::from_raw_os_error(libc::EAGAIN));
    }
    let weak: Weak<Shared> = Arc::downgrade(shared);
    std::thread::Builder::new()
        .name("gorust-sysmon".into())
        .spawn(move || {
            let mut events = Events::with_capacity(256);
            let mut wakers = Vec::new();
            // Declared after `wakers`, so that an unwind reaches it first (see `AbortOnUnwind`).
            let mut private: Option<AbortOnUnwind> = None;
            let mut may_leave = true;
            let mut sleep = STALE;
            let mut scavenged = Instant::now();
            loop {
                // Woken early only by the shutdown (or spuriously): the loop looks again.
                std::thread::park_timeout(sleep);
                if scavenged.elapsed() >= SCAVENGE_EVERY {
                    crate::goroutine::stack::scavenge(crate::goroutine::stack::SCAVENGE_BATCH);
                    scavenged = Instant::now();
                }
                let Some(s) = weak.upgrade() else { return };
                if s.shutdown.load(Acquire) {
                    return;
                }
                if may_leave && s.first_served_inline.load(Acquire) && s.remotes.len() == 1 {
                    may_leave = false;
                    private = leave_the_table(&s).then_some(AbortOnUnwind);
                }
                let stale_us = STALE.as_micros() as u64;
                // Microseconds until the first poller could go stale.
                let mut next_us = stale_us;
                let mut stranded = false;
                for r in s.remotes.iter() {
                    let (since_us, in_wait) = r.poller.staleness();
                    if in_wait {
                        continue;
                    }
                    let stuck = since_us >= stale_us;
                    stranded |= stuck && r.steal.has_work();
                    let io = r.poller.registered() > 0;
                    // Timers' wakers may write to any descriptor: not from a table of our own.
                    let timers = private.is_none() && r.metrics.timers() > 0;
                    if !(io || timers) {
                        continue;
                    }
                    if stuck {
                        match (io, private.is_some()) {
                            (false, _) => {}
                            (true, true) => r.poller.poll_deferring(&mut events, &mut wakers),
                            // Not the owner: leaves the worker's wake-up eventfd alone.
                            (true, false) => {
                                r.poller.poll_now(&mut events, &mut wakers, false);
                            }
                        }
                        if timers {
                            r.expire_timers(&mut wakers);
                            super::wake::wake_all(wakers.drain(..));
                        }
                    } else {
                        next_us = next_us.min(stale_us - since_us);
                    }
                }
                // Work that any worker could take waits behind a stuck one: wake a parked
                // worker to steal it, if none is searching (see the module header).
                if stranded && s.remotes.len() > 1 {
                    s.wake_a_parked_worker();
                }
                sleep = Duration::from_micros(next_us).max(MIN_SLEEP);
            }
        })
}

#[cfg(test)]
thread_local! {
    /// Makes `start` on this thread fail as a thread limit would (tests only).
    pub(crate) static REFUSE_START: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Moves the monitor to a descriptor table of its own that keeps its pollers' descriptors (see
/// the module header). Returns whether it did; where the kernel cannot, it stays in the shared
/// one.
fn leave_the_table(s: &Shared) -> bool {
    let keep: Vec<_> = s.remotes.iter().flat_map(|r| r.poller.own_fds()).collect();
    // A signal handler run here would find no descriptor of the process (a self-pipe); left
    // blocked, the process's signals go to its other threads. Harmless if the table stays.
    crate::sys::signal::block_async_signals();
    crate::sys::fdtable::leave_shared_table(&keep).is_ok()
}

/// Held while the monitor's table is its own: a panic there aborts the process instead of
/// unwinding, which would drop the wakers in hand, and with them perhaps the last reference
/// to a task or socket whose destructor closes a descriptor number this table does not have
/// (the socket would then never be closed). Its message is likely lost: the table has no
/// standard error.
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        if std::thread::panicking() {
            std::process::abort();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::REFUSE_START;

    #[test]
    fn a_monitor_that_cannot_start_fails_the_build() {
        REFUSE_START.with(|r| r.set(true));
        let built = crate::Runtime::builder()
            .workers(2)
            .thread_name("nomonitor")
            .build();
        REFUSE_START.with(|r| r.set(false));
        let Err(err) = built else {
            panic!("a runtime without its monitor was built");
        };
        assert_eq!(err.raw_os_error(), Some(libc::EAGAIN), "{err}");
        // The workers started before it were stopped and joined before `build` returned.
        let left: Vec<String> = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
            .filter(|comm| comm.starts_with("nomonitor"))
            .collect();
        assert!(
            left.is_empty(),
            "threads of the failed build remain: {left:?}"
        );
    }
}
