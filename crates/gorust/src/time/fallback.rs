//! The fallback timer thread, for timers polled on threads that are not workers.
//!
//! Started on first use (tried again at each use until it starts) and kept for the life of
//! the process; it sleeps on a condition variable until the earliest deadline and fires due
//! timers. Workers use it only once they run no task any more (their shutdown step:
//! `worker::is_serving`), when their own heaps fire nothing.

use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

use super::entry::TimerEntry;
use super::heap::TimerHeap;

struct Fallback {
    state: Mutex<State>,
    cond: Condvar,
}

struct State {
    heap: TimerHeap,
    /// Whether the thread runs. Until it does, each `register` tries to start it.
    running: bool,
    /// Whether a failed start was reported on standard error (once).
    told: bool,
}

fn get() -> &'static Fallback {
    static F: OnceLock<Fallback> = OnceLock::new();
    F.get_or_init(|| Fallback {
        state: Mutex::new(State {
            heap: TimerHeap::new(),
            running: false,
            told: false,
        }),
        cond: Condvar::new(),
    })
}

/// Hands a timer to the fallback thread, starting it on first use. A thread that cannot start
/// (the system's thread limit) leaves the timer queued, and the next `register` tries again:
/// a sleep polled off the runtime then waits until some later timer gets the thread started.
/// Before (review, session 29), the failed start panicked, and a worker's shutdown step
/// (which hands its pending timers over here) died with the rest of its timers unfired.
pub(crate) fn register(deadline: Instant, entry: Arc<TimerEntry>) {
    let f = get();
    let mut st = f.state.lock().unwrap_or_else(|e| e.into_inner());
    let earlier = st.heap.next_deadline().is_none_or(|d| deadline < d);
    st.heap.insert(deadline, entry);
    if !st.running {
        // Under the lock: the thread's first step takes it, and sees this timer.
        match std::thread::Builder::new()
            .name("gorust-timer".into())
            .spawn(move || f.run())
        {
            Ok(_) => st.running = true,
            Err(e) if !st.told => {
                st.told = true;
                diag!(
                    "gorust: cannot start the fallback timer thread ({e}); sleeps polled off \
                     the runtime wait until a later timer starts it"
                );
            }
            Err(_) => {}
        }
        return;
    }
    drop(st);
    if earlier {
        f.cond.notify_one();
    }
}

/// Drops the timers cancelled since they were handed over: a worker's shutdown step hands its
/// whole heap over before it cancels its tasks (see `Shared::hand_timers_to_fallback`), and
/// their entries stayed until their deadlines came or another burst compacted the heap (a
/// million goroutines in an hour's sleep kept ~80 MB for that hour; review, session 31).
pub(crate) fn drop_cancelled() {
    let f = get();
    f.state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .heap
        .drop_cancelled();
}

/// Marks the thread as gone if it unwinds (a panic outside the wakers it calls, which are
/// caught), so that the next `register` starts another instead of leaving every later timer
/// unfired.
struct Running(&'static Fallback);

impl Drop for Running {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .running = false;
        }
    }
}

impl Fallback {
    fn run(&'static self) {
        let _running = Running(self);
        let mut fired = Vec::new();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            st.heap.expire(Instant::now(), &mut fired);
            if !fired.is_empty() {
                drop(st);
                // Past any waker that panics (a foreign executor's, or any custom one polled
                // off the workers): one would otherwise end this thread, drop the other wakers
                // in hand unwoken, and leave every later fallback timer of the process
                // unfired, since `get` keeps handing out this `Fallback` (review, session 23).
                crate::sched::wake::wake_all(fired.drain(..));
                st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            st = match st.heap.next_deadline() {
                None => self.cond.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let wait = d.saturating_duration_since(Instant::now());
                    self.cond
                        .wait_timeout(st, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}
