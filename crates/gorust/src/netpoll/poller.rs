//! A worker's poller: its epoll instance, wake-up eventfd and slab of poll descriptors.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::{Duration, Instant};

use super::desc::PollDesc;
use crate::sys::epoll::{Epoll, Events, Interest};
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
}

/// Descriptors registered with one poller. A token is `generation << 32 | index`; removing an
/// entry bumps the generation, so an event still in flight for the old descriptor is dropped
/// (Go's `fdseq`).
#[derive(Default)]
struct Slab {
    entries: Vec<Entry>,
    free: Vec<u32>,
    live: usize,
}

struct Entry {
    generation: u32,
    desc: Option<Arc<PollDesc>>,
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
        })
    }

    fn slab(&self) -> std::sync::MutexGuard<'_, Slab> {
        self.slab.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `fd` (edge-triggered, read+write+rdhup). Returns the token.
    pub(crate) fn register(&self, fd: RawFd, desc: Arc<PollDesc>) -> io::Result<u64> {
        let tok = {
            let mut slab = self.slab();
            let index = match slab.free.pop() {
                Some(i) => i,
                None => {
                    slab.entries.push(Entry {
                        generation: 0,
                        desc: None,
                    });
                    (slab.entries.len() - 1) as u32
                }
            };
            let e = &mut slab.entries[index as usize];
            e.desc = Some(desc);
            slab.live += 1;
            token(index, slab.entries[index as usize].generation)
        };
        if let Err(e) = self.epoll.add(fd, Interest::EDGE_ALL, tok) {
            self.remove(tok);
            return Err(e);
        }
        Ok(tok)
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
        if let Some(e) = slab.entries.get_mut(index as usize) {
            if e.generation == generation && e.desc.is_some() {
                e.desc = None;
                e.generation = e.generation.wrapping_add(1);
                slab.free.push(index);
                slab.live -= 1;
            }
        }
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
            eprintln!("runtime: epoll_wait failed: {e}");
            std::process::abort();
        }
        if blocking {
            self.in_wait.store(false, Release);
        }
        self.last_poll_us
            .store(self.started.elapsed().as_micros() as u64, Relaxed);
    }

    /// Turns the events of the last `wait` into wakers (woken by the caller once it holds no
    /// borrow). Returns how many I/O events there were.
    ///
    /// Only the owning worker (`owner`) drains the wake-up eventfd. The monitor polls a worker's
    /// epoll while that worker may be about to block in it: had the monitor drained a wake-up
    /// written for the worker, the worker would then sleep through it. Left undrained, the
    /// level-triggered eventfd makes the worker's next wait return at once.
    pub(crate) fn dispatch(&self, events: &Events, wakers: &mut Vec<Waker>, owner: bool) -> usize {
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
                desc: Some(desc),
            }) = slab.entries.get(index)
            else {
                continue;
            };
            if *g != generation {
                continue; // an event for a descriptor that was closed and replaced
            }
            if ready.is_read_final() {
                desc.read.set_final();
            }
            if ready.is_write_final() {
                desc.write.set_final();
            }
            if ready.is_readable() {
                desc.read.set_ready(wakers);
            }
            if ready.is_writable() {
                desc.write.set_ready(wakers);
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
        wakers.drain(..).for_each(Waker::wake);
        n
    }

    /// Microseconds since this poller was last polled, and whether its worker is blocked in it.
    pub(crate) fn staleness(&self) -> (u64, bool) {
        let now = self.started.elapsed().as_micros() as u64;
        (
            now.saturating_sub(self.last_poll_us.load(Relaxed)),
            self.in_wait.load(Acquire),
        )
    }
}
