//! The fallback timer thread, for timers polled on threads that are not workers.
//!
//! Started on first use and kept for the life of the process; it sleeps on a condition variable
//! until the earliest deadline and fires due timers. Workers use it only once they run no task
//! any more (their shutdown step: `worker::is_serving`), when their own heaps fire nothing.

use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

use super::entry::TimerEntry;
use super::heap::TimerHeap;

struct Fallback {
    heap: Mutex<TimerHeap>,
    cond: Condvar,
}

fn get() -> &'static Fallback {
    static F: OnceLock<&'static Fallback> = OnceLock::new();
    F.get_or_init(|| {
        let f: &'static Fallback = Box::leak(Box::new(Fallback {
            heap: Mutex::new(TimerHeap::new()),
            cond: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("gorust-timer".into())
            .spawn(move || f.run())
            .expect("gorust: cannot start the fallback timer thread");
        f
    })
}

pub(crate) fn register(deadline: Instant, entry: Arc<TimerEntry>) {
    let f = get();
    let mut heap = f.heap.lock().unwrap_or_else(|e| e.into_inner());
    let earlier = heap.next_deadline().is_none_or(|d| deadline < d);
    heap.insert(deadline, entry);
    drop(heap);
    if earlier {
        f.cond.notify_one();
    }
}

impl Fallback {
    fn run(&self) {
        let mut fired = Vec::new();
        let mut heap = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            heap.expire(Instant::now(), &mut fired);
            if !fired.is_empty() {
                drop(heap);
                // Past any waker that panics (a foreign executor's, or any custom one polled
                // off the workers): one would otherwise end this thread, drop the other wakers
                // in hand unwoken, and leave every later fallback timer of the process
                // unfired, since `get` keeps handing out this `Fallback` (review, session 23).
                crate::sched::wake::wake_all(fired.drain(..));
                heap = self.heap.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            heap = match heap.next_deadline() {
                None => self.cond.wait(heap).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let wait = d.saturating_duration_since(Instant::now());
                    self.cond
                        .wait_timeout(heap, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}
