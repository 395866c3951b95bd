//! The monitor thread (Go's `sysmon`): polls the netpoller of a worker that is stuck.
//!
//! A busy worker polls its own epoll every `event_interval` ticks; but a worker stuck in one
//! long-running goroutine polls nothing, and readiness for the goroutines bound to it (and any
//! future registered there) would wait. Every few milliseconds the monitor looks at each
//! worker's poller; one that has not been polled for `STALE` and whose worker is not blocked in
//! it is polled from here, and the woken tasks go to their workers' queues (a bound goroutine
//! still waits for its own worker; a future can be stolen and run elsewhere).
//!
//! It also runs the goroutine stack pool's scavenger (see `goroutine/stack.rs`).
//!
//! The monitor holds a `Weak` reference and exits when the runtime shuts down.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Shared;
use crate::loom::sync::atomic::Ordering::Acquire;
use crate::sys::epoll::Events;

/// How long a poller may go unpolled before the monitor polls it (the 10 ms).
const STALE: Duration = Duration::from_millis(10);
/// How often the monitor looks.
const TICK: Duration = Duration::from_millis(5);
/// Every this many ticks (250 ms) it returns surplus pooled stacks' pages to the kernel.
const SCAVENGE_TICKS: u32 = 50;

pub(crate) fn start(shared: &Arc<Shared>) {
    let weak: Weak<Shared> = Arc::downgrade(shared);
    let _ = std::thread::Builder::new()
        .name("gorust-sysmon".into())
        .spawn(move || {
            let mut events = Events::with_capacity(256);
            let mut wakers = Vec::new();
            let mut ticks: u32 = 0;
            loop {
                std::thread::sleep(TICK);
                ticks = ticks.wrapping_add(1);
                if ticks % SCAVENGE_TICKS == 0 {
                    crate::goroutine::stack::scavenge(crate::goroutine::stack::SCAVENGE_BATCH);
                }
                let Some(s) = weak.upgrade() else { return };
                if s.shutdown.load(Acquire) {
                    return;
                }
                for r in s.remotes.iter() {
                    let (stale_us, in_wait) = r.poller.staleness();
                    if !in_wait && stale_us >= STALE.as_micros() as u64 && r.poller.registered() > 0
                    {
                        // Not the owner: leaves the worker's wake-up eventfd alone.
                        r.poller.poll_now(&mut events, &mut wakers, false);
                    }
                }
            }
        });
}
