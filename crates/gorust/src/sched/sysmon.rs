//! The monitor thread (Go's `sysmon`): polls the netpoller of a worker that is stuck.
//!
//! A busy worker polls its own epoll every `event_interval` ticks; but a worker stuck in one
//! long-running goroutine polls nothing, and readiness for the goroutines bound to it (and any
//! future registered there) would wait. The monitor looks at each worker's poller; one that has
//! not been polled for `STALE` and whose worker is not blocked in it is polled from here, and
//! the woken tasks go to their workers' queues (a bound goroutine still waits for its own
//! worker; a future can be stolen and run elsewhere).
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
//! It also runs the goroutine stack pool's scavenger (see `goroutine/stack.rs`) every
//! `SCAVENGE_EVERY`.
//!
//! The monitor holds a `Weak` reference and exits when the runtime shuts down.

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

pub(crate) fn start(shared: &Arc<Shared>) {
    let weak: Weak<Shared> = Arc::downgrade(shared);
    let _ = std::thread::Builder::new()
        .name("gorust-sysmon".into())
        .spawn(move || {
            let mut events = Events::with_capacity(256);
            let mut wakers = Vec::new();
            let mut sleep = STALE;
            let mut scavenged = Instant::now();
            loop {
                std::thread::sleep(sleep);
                if scavenged.elapsed() >= SCAVENGE_EVERY {
                    crate::goroutine::stack::scavenge(crate::goroutine::stack::SCAVENGE_BATCH);
                    scavenged = Instant::now();
                }
                let Some(s) = weak.upgrade() else { return };
                if s.shutdown.load(Acquire) {
                    return;
                }
                let stale_us = STALE.as_micros() as u64;
                // Microseconds until the first poller could go stale.
                let mut next_us = stale_us;
                for r in s.remotes.iter() {
                    let (since_us, in_wait) = r.poller.staleness();
                    if in_wait || r.poller.registered() == 0 {
                        continue;
                    }
                    if since_us >= stale_us {
                        // Not the owner: leaves the worker's wake-up eventfd alone.
                        r.poller.poll_now(&mut events, &mut wakers, false);
                    } else {
                        next_us = next_us.min(stale_us - since_us);
                    }
                }
                sleep = Duration::from_micros(next_us).max(MIN_SLEEP);
            }
        });
}
