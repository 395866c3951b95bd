//! The blocking pool: threads for work that would otherwise block a worker.
//!
//! `gorust::blocking(f)` queues `f` here and parks the calling goroutine until a pool thread has
//! run it. Threads are started on demand up to `max_threads`; a thread idle for `keep_alive`
//! exits. Jobs beyond `max_threads` wait in the queue (FIFO).
//!
//! States of a pool thread: *busy* (running a job) → *idle* (waiting on the condition variable,
//! counted in `idle`) → busy again or, after `keep_alive`, *exited*. A new job wakes an idle
//! thread if there is one, else starts a thread if under the limit, else waits in the queue.
//!
//! Shutdown (at the start of the runtime's, before anything is unwound): queued jobs that have
//! not started are dropped (their callers see a cancelled result), new ones are refused, idle
//! threads exit, busy threads finish their job and exit; nobody waits for them,
//! so a busy thread outlives `Runtime`'s drop (and holds the runtime's shared state, its
//! pollers' descriptors included) until its job returns.
//!
//! A thread that cannot be started (the system's thread limit) leaves its job to the threads
//! there are; with none, the queued jobs are dropped as at shutdown.
//!
//! Rejected: handing the worker's P to a new thread when a goroutine blocks (Go's `entersyscall`
//! hand-off): goroutines here are pinned to their thread, so a blocked thread's goroutines could
//! not move anyway.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send + 'static>;

pub(crate) struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    cond: Condvar,
    max_threads: usize,
    keep_alive: Duration,
}

struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    /// Wake-ups sent to idle threads not yet consumed.
    notified: usize,
    shutdown: bool,
}

/// The job was refused because the runtime is shutting down.
#[derive(Debug)]
pub(crate) struct ShutDown;

impl Pool {
    pub(crate) fn new(max_threads: usize, keep_alive: Duration) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                    notified: 0,
                    shutdown: false,
                }),
                cond: Condvar::new(),
                max_threads: max_threads.max(1),
                keep_alive,
            }),
        }
    }

    pub(crate) fn num_threads(&self) -> usize {
        lock(&self.inner.state).threads
    }

    /// Queues a job. `handle` is entered on the pool thread so that `gorust::go` works there.
    pub(crate) fn spawn(&self, job: Job, handle: super::Handle) -> Result<(), ShutDown> {
        let mut st = lock(&self.inner.state);
        if st.shutdown {
            return Err(ShutDown);
        }
        st.queue.push_back(job);
        if st.idle > st.notified {
            st.notified += 1;
            drop(st);
            self.inner.cond.notify_one();
            return Ok(());
        }
        if st.threads < self.inner.max_threads {
            st.threads += 1;
            drop(st);
            let inner = self.inner.clone();
            let spawned = std::thread::Builder::new()
                .name("gorust-blocking".into())
                .spawn(move || {
                    crate::sys::set_usual_timers();
                    let _enter = crate::context::enter(handle);
                    inner.thread_main();
                });
            if let Err(e) = spawned {
                let mut st = lock(&self.inner.state);
                st.threads -= 1;
                if st.threads == 0 {
                    // No thread will run the queue: its jobs are dropped, and their callers
                    // see them cancelled (`gorust::fs` and name resolution: an error). Before,
                    // the process aborted (review, session 25: a container's `pids.max`, or
                    // `RLIMIT_NPROC`, reached while the pool had idled down to no thread).
                    let stranded = std::mem::take(&mut st.queue);
                    drop(st);
                    diag!(
                        "gorust: cannot start a blocking-pool thread ({e}); {} queued call(s) \
                         fail as cancelled",
                        stranded.len()
                    );
                    drop_jobs(stranded);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn shutdown(&self) {
        let dropped = {
            let mut st = lock(&self.inner.state);
            st.shutdown = true;
            std::mem::take(&mut st.queue)
        };
        self.inner.cond.notify_all();
        drop_jobs(dropped);
    }
}

/// Drops jobs that will not run; each one's drop tells its waiter. That waiter's waker may
/// panic (another executor's): the caller must go on (review, session 24).
fn drop_jobs(jobs: VecDeque<Job>) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(jobs)));
}

impl Inner {
    fn thread_main(&self) {
        let mut st = lock(&self.state);
        loop {
            if let Some(job) = st.queue.pop_front() {
                drop(st);
                // A job catches its own panic, but its result is dropped here if nobody waits
                // for it any more, and the waiter's waker runs here: a panic there would end
                // this thread with `threads` still counting it, one slot of the pool lost for
                // good (review, session 19). The panic hook has printed it; the thread goes on.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                st = lock(&self.state);
                continue;
            }
            if st.shutdown {
                break;
            }
            st.idle += 1;
            let (guard, res) = self
                .cond
                .wait_timeout(st, self.keep_alive)
                .unwrap_or_else(|e| e.into_inner());
            st = guard;
            st.idle -= 1;
            if st.notified > 0 {
                st.notified -= 1;
            } else if res.timed_out() && st.queue.is_empty() {
                break;
            }
        }
        st.threads -= 1;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
