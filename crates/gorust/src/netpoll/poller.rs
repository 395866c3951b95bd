//! A worker's poller: its epoll instance, wake-up eventfd and slab of registrations.
//!
//! A slab entry is one of two kinds:
//!
//! - *edge*: a [`PollDesc`] of `gorust::net` (registered once, edge-triggered; readiness sets
//!   its wait slots, the write slot only once watched, and wakes the tasks parked there);
//! - *level*: an event-loop connection ([`LevelSource`], registered level-triggered with an
//!   interest it changes through [`Poller::modify`]). Under the slab lock `dispatch` only
//!   records the readiness in the source ([`LevelSource::ready`], an atomic `fetch_or`) and,
//!   the first time, queues the entry's waker; the socket reads happen when that waker is
//!   woken, after the lock (and the worker's core) are released.
//!
//! Both kinds use the same generation-tagged tokens.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::{Duration, Instant};

use super::desc::{Direction, PollDesc};
use crate::sys::epoll::{Epoll, Events, Interest, Readiness};
use crate::sys::eventfd::EventFd;

/// Epoll token of the eventfd.
pub(crate) const WAKE_TOKEN: u64 = u64::MAX;

pub(crate) struct Poller {
    epoll: Epoll,
    wake: EventFd,
    slab: Mutex<Slab>,
    /// When this poller was last polled, in microseconds since `started`.
    last_poll_us: AtomicU64,
    /// Set while the owning worker is blocked in `epoll_wait`.
    in_wait: AtomicBool,
    started: Instant,
    /// Wakers the monitor found but may not call (`poll_deferring`), for the owner's next
    /// `dispatch`; `has_deferred` tells it without the lock.
    deferred: Mutex<Vec<Waker>>,
    has_deferred: AtomicBool,
}

/// Descriptors registered with one poller. A token is `generation << 32 | index`; removing an
/// entry bumps the generation, so an event still in flight for the old descriptor is dropped
/// (Go's `fdseq`).
#[derive(Default)]
struct Slab {
    entries: Vec<Entry>,
    free: Vec<u32>,
    live: usize,
    /// Set by `orphan_all`: this poller's runtime has shut down, and nobody polls it.
    orphaned: bool,
}

struct Entry {
    generation: u32,
    source: Option<Source>,
}

/// What a slab entry holds.
enum Source {
    /// A `gorust::net` descriptor, edge-triggered.
    Edge(Arc<PollDesc>),
    /// An event-loop connection, level-triggered; `waker` runs its I/O off the slab lock.
    Level {
        source: Arc<dyn LevelSource>,
        waker: Waker,
    },
}

/// A level-triggered registration (the event loop's connections).
pub(crate) trait LevelSource: Send + Sync {
    /// Records readiness `r`; returns `true` if the entry's waker must be queued (no earlier
    /// readiness is still waiting to be handled). Called under the slab lock, from the owning
    /// worker or the monitor thread: must not block or make system calls.
    fn ready(&self, r: Readiness) -> bool;

    /// The runtime shut down: nobody will poll this registration again. Called off the slab
    /// lock, once the workers have exited; the source ends itself (it may deregister).
    fn orphan(self: Arc<Self>);
}

fn token(index: u32, generation: u32) -> u64 {
    ((generation as u64) << 32) | index as u64
}

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        let epoll = Epoll::new()?;
        let wake = EventFd::new()?;
        epoll.add(wake.as_raw_fd(), Interest::READABLE, WAKE_TOKEN)?;
        Ok(Poller {
            epoll,
            wake,
            slab: Mutex::new(Slab::default()),
            last_poll_us: AtomicU64::new(0),
            in_wait: AtomicBool::new(false),
            started: Instant::now(),
            deferred: Mutex::new(Vec::new()),
            has_deferred: AtomicBool::new(false),
        })
    }

    /// The descriptors of the poller itself: its epoll instance and wake-up eventfd (all a
    /// monitor with a table of its own keeps, `sched/sysmon.rs`).
    pub(crate) fn own_fds(&self) -> [RawFd; 2] {
        [self.epoll.as_raw_fd(), self.wake.as_raw_fd()]
    }

    fn slab(&self) -> std::sync::MutexGuard<'_, Slab> {
        self.slab.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `fd` (edge-triggered, read+write+rdhup+pri: `Interest::EDGE_ALL`). Returns
    /// the token.
    pub(crate) fn register(&self, fd: RawFd, desc: Arc<PollDesc>) -> io::Result<u64> {
        let (tok, orphaned) = self.insert(Source::Edge(desc.clone()));
        if let Err(e) = self.epoll.add(fd, Interest::EDGE_ALL, tok) {
            self.remove(tok);
            return Err(e);
        }
        // Registered after `orphan_all` (a blocking-pool job still running after its runtime
        // was dropped): nobody polls this epoll any more, and a wait on it waited for ever
        // (review, session 31). Orphaned like the rest, its waits fail with the error that
        // says so.
        if orphaned {
            desc.orphan();
        }
        Ok(tok)
    }

    /// Takes a slab entry for a level-triggered source and returns its token; the caller
    /// stores the token, then calls [`add_level`](Self::add_level) (so that the source knows
    /// its token before its first event).
    pub(crate) fn insert_level(&self, source: Arc<dyn LevelSource>, waker: Waker) -> u64 {
        self.insert(Source::Level { source, waker }).0
    }

    /// Adds `fd` to epoll, level-triggered with `interest`, for the entry `tok` of
    /// [`insert_level`](Self::insert_level). On failure the entry is removed.
    pub(crate) fn add_level(&self, fd: RawFd, interest: Interest, tok: u64) -> io::Result<()> {
        if let Err(e) = self.epoll.add(fd, interest, tok) {
            self.remove(tok);
            return Err(e);
        }
        Ok(())
    }

    /// Changes the interest of a level-triggered registration.
    pub(crate) fn modify(&self, fd: RawFd, interest: Interest, tok: u64) -> io::Result<()> {
        self.epoll.modify(fd, interest, tok)
    }

    /// Takes a slab entry for `source`; also returns whether `orphan_all` has run (read
    /// under the lock it sets that under, so an entry is either in its pass or told here).
    fn insert(&self, source: Source) -> (u64, bool) {
        {
            let mut slab = self.slab();
            let index = match slab.free.pop() {
                Some(i) => i,
                None => {
                    slab.entries.push(Entry {
                        generation: 0,
                        source: None,
                    });
                    (slab.entries.len() - 1) as u32
                }
            };
            let e = &mut slab.entries[index as usize];
            e.source = Some(source);
            slab.live += 1;
            (
                token(index, slab.entries[index as usize].generation),
                slab.orphaned,
            )
        }
    }

    /// Removes `fd` from epoll and its descriptor from the slab.
    pub(crate) fn deregister(&self, fd: RawFd, tok: u64) {
        // ENOENT/EBADF here mean the kernel already dropped it: nothing to undo.
        let _ = self.epoll.delete(fd);
        self.remove(tok);
    }

    fn remove(&self, tok: u64) {
        let mut slab = self.slab();
        let index = tok as u32;
        let generation = (tok >> 32) as u32;
        let mut old = None;
        if let Some(e) = slab.entries.get_mut(index as usize) {
            if e.generation == generation && e.source.is_some() {
                old = e.source.take();
                e.generation = e.generation.wrapping_add(1);
                slab.free.push(index);
                slab.live -= 1;
            }
        }
        drop(slab);
        // Dropped off the lock: a level source's last reference may go with it.
        drop(old);
    }

    /// The runtime shut down: nobody will poll this epoll again. Marks every descriptor still
    /// registered here orphaned and wakes its waiters, so that a socket that outlives the
    /// runtime fails its next wait in another runtime instead of waiting forever (its own
    /// runtime's goroutines and futures are gone by now), and ends every level-triggered
    /// source (an event-loop connection closes and disconnects).
    pub(crate) fn orphan_all(&self) {
        let mut descs = Vec::new();
        let mut levels = Vec::new();
        {
            let mut slab = self.slab();
            slab.orphaned = true;
            for e in slab.entries.iter() {
                match &e.source {
                    Some(Source::Edge(d)) => descs.push(d.clone()),
                    Some(Source::Level { source, .. }) => levels.push(source.clone()),
                    None => {}
                }
            }
        }
        // Off the slab lock: waking runs wakers, and a level source deregisters.
        for d in descs {
            d.orphan();
        }
        // The event loop's connections: closed, and disconnected (before, they were left
        // registered, open and leaked; review, session 25).
        for l in levels {
            l.orphan();
        }
        // Wakers the monitor left for a worker that is gone (`poll_deferring`): their waiters
        // see the readiness, or the orphaned descriptor, when they try again.
        let deferred =
            std::mem::take(&mut *self.deferred.lock().unwrap_or_else(|e| e.into_inner()));
        crate::sched::wake::wake_all(deferred);
    }

    /// Descriptors registered here.
    pub(crate) fn registered(&self) -> usize {
        self.slab().live
    }

    /// Wakes a worker blocked in `wait`.
    pub(crate) fn notify(&self) {
        self.wake.notify();
    }

    /// Blocks in epoll for events (`None`: until one arrives or `notify`).
    pub(crate) fn wait(&self, events: &mut Events, timeout: Option<Duration>) {
        let blocking = timeout != Some(Duration::ZERO);
        if blocking {
            self.in_wait.store(true, Release);
        }
        if let Err(e) = self.epoll.wait(events, timeout) {
            // epoll_wait fails only on a programming error (EBADF, EFAULT, EINVAL).
            diag!("runtime: epoll_wait failed: {e}");
            std::process::abort();
        }
        // Marked polled before it stops counting as waiting: in between, after a long wait,
        // the monitor read it as a worker neither waiting nor polled for seconds, polled its
        // epoll beside it and fired its timers (review, session 34).
        self.mark_polled();
        if blocking {
            self.in_wait.store(false, Release);
        }
    }

    /// Records a poll now, for `staleness`; the owner also calls it when it skips a poll of an
    /// epoll with nothing registered, so that the monitor sees it alive (and leaves its timers
    /// to it).
    pub(crate) fn mark_polled(&self) {
        self.last_poll_us
            .store(self.started.elapsed().as_micros() as u64, Relaxed);
    }

    /// Turns the events of the last `wait` into wakers (woken by the caller once it holds no
    /// borrow), and for the owner adds the wakers the monitor left (`poll_deferring`).
    /// Returns how many I/O events and left wakers there were.
    ///
    /// Only the owning worker (`owner`) drains the wake-up eventfd. The monitor polls a worker's
    /// epoll while that worker may be about to block in it: had the monitor drained a wake-up
    /// written for the worker, the worker would then sleep through it. Left undrained, the
    /// level-triggered eventfd makes the worker's next wait return at once.
    pub(crate) fn dispatch(&self, events: &Events, wakers: &mut Vec<Waker>, owner: bool) -> usize {
        let io = self.dispatch_events(events, wakers, owner);
        // After the events, and so after the eventfd's drain: the monitor sets the flag before
        // it writes to the eventfd, and the kernel orders that write before the `read` that
        // drains it, so a drain that took its write is followed by a load that sees the flag.
        if owner && self.has_deferred.load(Acquire) {
            self.has_deferred.store(false, Relaxed);
            let mut deferred = self.deferred.lock().unwrap_or_else(|e| e.into_inner());
            let n = deferred.len();
            wakers.append(&mut deferred);
            return io + n;
        }
        io
    }

    fn dispatch_events(&self, events: &Events, wakers: &mut Vec<Waker>, owner: bool) -> usize {
        if events.is_empty() {
            return 0;
        }
        let mut io = 0;
        let mut slab = None;
        for (tok, ready) in events.iter() {
            if tok == WAKE_TOKEN {
                if owner {
                    self.wake.drain();
                }
                continue;
            }
            io += 1;
            let slab = slab.get_or_insert_with(|| self.slab());
            let index = tok as u32 as usize;
            let generation = (tok >> 32) as u32;
            let Some(Entry {
                generation: g,
                source: Some(source),
            }) = slab.entries.get(index)
            else {
                continue;
            };
            if *g != generation {
                continue; // an event for a descriptor that was closed and replaced
            }
            match source {
                Source::Edge(desc) => {
                    // A final edge is also a readiness edge (`is_readable` and `is_writable`
                    // include them); urgent data gets one too (`ends_drained_reads`).
                    if ready.ends_drained_reads() {
                        desc.read.set_final_ready(wakers);
                    } else if ready.is_readable() {
                        desc.read.set_ready(wakers);
                    }
                    // The write slot only while watched (`desc.rs`): epoll reports `EPOLLOUT`
                    // with every event of a writable socket, and the slot is another line.
                    if ready.is_hangup() {
                        desc.write.set_final_ready(wakers);
                    } else if ready.is_writable() && desc.counts_edges(Direction::Write) {
                        desc.write.set_ready(wakers);
                    }
                }
                Source::Level { source, waker } => {
                    if source.ready(ready) {
                        wakers.push(waker.clone());
                    }
                }
            }
        }
        io
    }

    /// Polls without blocking and wakes the ready waiters. Used by busy workers, by idle workers
    /// before they steal, and by the monitor for a worker that has not polled for a while.
    pub(crate) fn poll_now(
        &self,
        events: &mut Events,
        wakers: &mut Vec<Waker>,
        owner: bool,
    ) -> usize {
        self.wait(events, Some(Duration::ZERO));
        let n = self.dispatch(events, wakers, owner);
        crate::sched::wake::wake_all(wakers.drain(..));
        n
    }

    /// The monitor's poll when its descriptor table is its own (`sched/sysmon.rs`): the
    /// readiness goes to the slots as usual, and a plain thread's `block_on` waker (it
    /// unparks a thread, no descriptor involved) is called at once; any other waker may write
    /// to a descriptor (this runtime's or another's eventfd, an executor's pipe) and waits for
    /// the owner, whose next wait the eventfd ends at once. The owner calls them in its next
    /// `dispatch`.
    pub(crate) fn poll_deferring(&self, events: &mut Events, wakers: &mut Vec<Waker>) {
        self.wait(events, Some(Duration::ZERO));
        self.dispatch(events, wakers, false);
        wakers.retain(|w| {
            let thread = crate::is_thread_waker(w);
            if thread {
                w.wake_by_ref();
            }
            !thread
        });
        if wakers.is_empty() {
            return;
        }
        self.deferred
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .append(wakers);
        self.has_deferred.store(true, Release);
        self.notify();
    }

    /// Microseconds since this poller was last polled, and whether its worker is blocked in it.
    pub(crate) fn staleness(&self) -> (u64, bool) {
        // `in_wait` first: a wait seen ended (Acquire, against `poll`'s Release) comes with
        // the poll time stored before it ended.
        let in_wait = self.in_wait.load(Acquire);
        let now = self.started.elapsed().as_micros() as u64;
        (now.saturating_sub(self.last_poll_us.load(Relaxed)), in_wait)
    }
}
