//! A connection's timer: the idle timeout and the write timeout, on the runtime's timers.
//!
//! At most one live timer per connection is in a worker's heap (`Conn::timer`: the entry
//! and its deadline). It is not moved on every read or write: reads and writes only store
//! `last_active` (a relaxed store), as does the end of each handler run or call, and the
//! timer, when it fires, compares. If the connection was active since, the timer is re-armed
//! for `last_active + idle`; if not, and no handler is running, the connection is closed
//! (`on_disconnect` follows). The write timeout is checked the same way against
//! `write_since` (when output became pending, and again at each write that makes progress:
//! the timeout bounds a stall, not a long answer).
//!
//! A deadline earlier than the armed one replaces it (output became pending while only the
//! idle timer, far off, was armed): the armed entry is cancelled and a new one registered.
//! Each entry's waker carries the generation it was armed with, so an entry that fired while
//! it was being replaced finds itself stale and does nothing. (Before, `arm_for` kept
//! whatever was armed: with an idle timeout set, the write timeout acted only when the idle
//! timer fired; review, session 19.)
//!
//! Where the timer lives: armed on a worker of the loop's runtime (the acceptor, a handler),
//! in that worker's heap; armed anywhere else (the monitor thread, which fires a stuck
//! worker's timers and so runs `on_timer`'s re-arm, or a plain thread that dials), in the heap
//! of the worker whose poller holds the connection (`time::register_on`). Armed in the arming
//! thread's heap, as a `Sleep` is, a re-arm on the monitor went to the process's fallback
//! timer thread, and every later re-arm ran there too, for the life of the connection
//! (review, session 22).
//!
//! Go's netpoll deadlines and netpoll's idle timeout both rest on a real timer too; TCP
//! keepalive (what netpoll users often mistook for an idle timeout) detects dead peers, not
//! idle ones.
//!
//! The timer's waker holds a `Weak` reference, and `Conn::teardown` cancels the armed entry,
//! which drops that waker: a closed connection is freed (and its descriptor closed) at once,
//! not when its timer would have fired. (Before the cancel, the `Weak` kept each closed
//! connection's allocation until then: with a long idle timeout, memory grew with the
//! connection churn; review, session 8.)

use std::sync::atomic::Ordering::*;
use std::sync::{Arc, Weak};
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use super::conn::{lock, Conn};
use crate::time::entry::TimerEntry;

/// The armed timer, under `Conn::timer`.
#[derive(Default)]
pub(crate) struct Armed {
    /// The live entry and its deadline; `None` when no timer is armed.
    entry: Option<(Arc<TimerEntry>, Instant)>,
    /// Counts arms; an entry's waker carries the value it was armed with.
    generation: u64,
}

impl Armed {
    /// Takes the live entry out (teardown cancels it).
    pub(crate) fn take(&mut self) -> Option<Arc<TimerEntry>> {
        self.entry.take().map(|(e, _)| e)
    }
}

struct TimerWake<S> {
    conn: Weak<Conn<S>>,
    generation: u64,
}

impl<S: Send + 'static> Wake for TimerWake<S> {
    fn wake(self: Arc<Self>) {
        if let Some(c) = self.conn.upgrade() {
            on_timer(&c, self.generation);
        }
    }
}

/// Arms the idle timer of a new connection (if the loop has an idle timeout).
pub(crate) fn start<S: Send + 'static>(conn: &Arc<Conn<S>>) {
    if let Some(idle) = conn.lp.config.idle_timeout {
        arm(conn, crate::time::deadline_in(idle));
    }
}

/// Makes sure a timer fires at `at` or earlier (it re-arms itself as needed).
pub(crate) fn arm_for<S: Send + 'static>(conn: &Conn<S>, at: Instant) {
    if let Some(c) = conn.lp.find(conn.id) {
        arm(&c, at);
    }
}

fn arm<S: Send + 'static>(conn: &Arc<Conn<S>>, at: Instant) {
    let entry = {
        let mut t = lock(&conn.timer);
        // Under the lock `Conn::teardown` takes the entry under, after it sets `torn`: an
        // entry stored here is either seen by teardown or not stored at all.
        if conn.torn.load(Acquire) {
            return;
        }
        if let Some((old, armed_at)) = &t.entry {
            if *armed_at <= at {
                return;
            }
            old.cancel();
        }
        t.generation += 1;
        let waker = Waker::from(Arc::new(TimerWake {
            conn: Arc::downgrade(conn),
            generation: t.generation,
        }));
        let entry = Arc::new(TimerEntry::new(waker));
        t.entry = Some((entry.clone(), at));
        entry
    };
    // Off the lock. An entry cancelled meanwhile (teardown, an earlier deadline) is dropped
    // by the heap unfired. Off the workers, in the heap of the worker that polls the
    // connection (see the module header).
    crate::time::register_on(conn.lp.runtime(), conn.worker, at, entry);
}

fn on_timer<S: Send + 'static>(conn: &Arc<Conn<S>>, generation: u64) {
    {
        let mut t = lock(&conn.timer);
        if t.generation != generation || t.entry.is_none() {
            return; // replaced by an earlier deadline, or torn down
        }
        t.entry = None;
    }
    if conn.torn.load(Acquire) {
        return;
    }
    let cfg = &conn.lp.config;
    let now = conn.lp.now_ns();
    let ns = |d: Duration| d.as_nanos().min(u64::MAX as u128) as u64;
    let mut next: Option<u64> = None;
    if let Some(idle) = cfg.idle_timeout {
        let mut st = lock(&conn.st);
        // Read under `st`: a run's end stores `last_active` before it releases the claim
        // under this lock, so a claim seen released comes with that run's end.
        let due = conn.last_active.load(Relaxed).saturating_add(ns(idle));
        let running = st.running;
        if now >= due && !running {
            // Closed under the lock the check read: bytes arriving in between would start a
            // handler that the close then cut off (review, session 28).
            let closing = conn.close_locked(&mut st);
            drop(st);
            conn.closed_idle_by(closing);
            return;
        }
        drop(st);
        // Saturating: `idle_timeout(Some(Duration::MAX))` is a valid "never" (review, session
        // 23: the sum overflowed, a panic in a debug build, a deadline in the past in release).
        next = Some(if running {
            now.saturating_add(ns(idle))
        } else {
            due
        });
    }
    if let Some(wt) = cfg.write_timeout {
        let since = conn.write_since.load(Relaxed);
        if since != 0 {
            let due = since.saturating_add(ns(wt));
            if now >= due {
                conn.write_timed_out.store(true, Release);
                conn.close_now();
                return;
            }
            next = Some(next.map_or(due, |n| n.min(due)));
        }
    }
    if let Some(n) = next {
        arm(conn, conn.lp.instant(n));
    }
}
