//! The loop itself: accepting, balancing connections over the workers, the registry of live
//! connections, and graceful shutdown.
//!
//! Shutdown, in order: (1) `shutting_down` is set and every listener closed, so each `serve`
//! returns `Ok(())`; (2) each connection with no handler in flight and no output queued is
//! closed at once, gracefully (the write side shut, the socket lingering as after a drain, so
//! that a slow reader still gets its last answer whole); each one with a handler in flight or
//! output queued is marked draining (reads go on only while a handler runs, for the rest of
//! its request; no new runs; it closes when the handler returns and its output is written);
//! (3) the caller waits, up to the grace period, for all of them to leave the registry, the
//! idle ones too (their `on_disconnect` runs on a goroutine of its own: before, `shutdown`
//! returned before it had, and a `main` returning then dropped it unrun; review, session
//! 25), and with them those already closing and those admitted meanwhile (session 34): so
//! for the registry to empty; (4) what is still busy is closed by force: the socket is shut
//! down, so a handler parked on it wakes with an error, and `on_disconnect` runs when it
//! returns (a handler stuck in user code cannot be preempted). The peer of such a handler gets
//! a reset, whatever it was sent so far: its answer is cut short.
//!
//! A runtime that ends without `shutdown` closes the loop's connections too: its pollers
//! orphan them, and each is disconnected where its refused handler goroutine is dropped
//! (`handler::Claim`), with waits refused.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::builder::{Balance, Builder, Callbacks, Config};
use super::conn::{lock, Conn};
use super::handler::{self, Prepare};
use super::listener::Listener;
use crate::sched::Handle;

/// An event-loop server (see the [module documentation](super)). Cloning gives another handle
/// to the same loop, e.g. to call [`shutdown`](EventLoop::shutdown) while another goroutine
/// runs [`serve`](EventLoop::serve).
pub struct EventLoop<S = ()> {
    pub(crate) shared: Arc<Shared<S>>,
}

impl<S> Clone for EventLoop<S> {
    fn clone(&self) -> Self {
        EventLoop {
            shared: self.shared.clone(),
        }
    }
}

impl<S> std::fmt::Debug for EventLoop<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("config", &self.shared.config)
            .field("connections", &lock(&self.shared.conns).len())
            .finish()
    }
}

/// What [`EventLoop::shutdown`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    /// Connections with no handler in flight and no output queued, closed at once.
    pub closed_idle: usize,
    /// Connections whose in-flight handler finished, or whose queued output was written, in
    /// time.
    pub finished: usize,
    /// Connections still busy at the deadline, closed by force.
    pub forced: usize,
}

/// The runtime a loop serves on, fixed by its first `serve`.
pub(crate) struct Rt {
    handle: Handle,
    /// This loop's connections per worker (for `Balance::LeastConnections`).
    per_worker: Box<[AtomicUsize]>,
}

pub(crate) struct Shared<S> {
    pub(crate) config: Config,
    pub(crate) callbacks: Callbacks<S>,
    rt: OnceLock<Rt>,
    conns: Mutex<HashMap<u64, Arc<Conn<S>>>>,
    listeners: Mutex<Vec<Arc<dyn Listener>>>,
    next_id: AtomicU64,
    next_worker: AtomicUsize,
    shutting_down: AtomicBool,
    base: Instant,
    /// Gracefully closed sockets still lingering (`conn::linger`); `shutdown` waits for them.
    pub(crate) lingering: Arc<AtomicUsize>,
}

impl<S> Shared<S> {
    /// Nanoseconds since the loop was built (the timers' clock).
    pub(crate) fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos().min(u64::MAX as u128) as u64
    }

    pub(crate) fn instant(&self, ns: u64) -> Instant {
        self.base + Duration::from_nanos(ns)
    }

    /// The runtime, once `serve` or `dial` has fixed it.
    pub(crate) fn runtime_if_set(&self) -> Option<&Handle> {
        self.rt.get().map(|rt| &rt.handle)
    }

    pub(crate) fn runtime(&self) -> &Handle {
        match self.runtime_if_set() {
            Some(handle) => handle,
            None => unreachable!("runtime: a connection exists only after serve set the runtime"),
        }
    }

    pub(crate) fn find(&self, id: u64) -> Option<Arc<Conn<S>>> {
        lock(&self.conns).get(&id).cloned()
    }

    /// A connection disconnected: out of the registry.
    pub(crate) fn remove(&self, id: u64, worker: usize) {
        let c = lock(&self.conns).remove(&id);
        if c.is_some() {
            if let Some(rt) = self.rt.get() {
                rt.per_worker[worker].fetch_sub(1, Relaxed);
            }
        }
        // The registry's reference is dropped here, off the lock.
        drop(c);
    }
}

impl EventLoop<()> {
    /// A builder with the defaults (see [`Builder`]).
    pub fn builder() -> Builder<()> {
        Builder::new()
    }
}

impl<S: Send + 'static> EventLoop<S> {
    pub(crate) fn new(config: Config, callbacks: Callbacks<S>) -> EventLoop<S> {
        EventLoop {
            shared: Arc::new(Shared {
                config,
                callbacks,
                rt: OnceLock::new(),
                conns: Mutex::new(HashMap::new()),
                listeners: Mutex::new(Vec::new()),
                next_id: AtomicU64::new(1),
                next_worker: AtomicUsize::new(0),
                shutting_down: AtomicBool::new(false),
                base: Instant::now(),
                lingering: Arc::new(AtomicUsize::new(0)),
            }),
        }
    }

    /// Accepts connections from `listener` and serves them, until [`shutdown`] (then returns
    /// `Ok(())`). Call it from a goroutine; several `serve` calls (several listeners) may share
    /// one loop. Resource errors on accept (`EMFILE`, …) are logged and retried after a
    /// back-off of 5 ms doubling to 1 s, as `net::serve` does.
    ///
    /// # Errors
    ///
    /// Outside a gorust runtime, or on a runtime other than the one of an earlier `serve`
    /// (`Other`); an accept error that is not a resource error.
    ///
    /// [`shutdown`]: EventLoop::shutdown
    pub fn serve<L: Listener>(&self, listener: L) -> io::Result<()> {
        let sh = &self.shared;
        let rt = self.bind_runtime("serve")?;
        let listener: Arc<dyn Listener> = Arc::new(listener);
        lock(&sh.listeners).push(listener.clone());
        if sh.shutting_down.load(Acquire) {
            return listener.close();
        }
        let mut backoff = crate::net::Backoff::default();
        loop {
            match listener.accept_fd() {
                Ok(fd) => {
                    backoff.reset();
                    // A refused or unregistrable connection is closed; the loop goes on.
                    let _ = self.admit(rt, fd, false);
                }
                Err(_) if sh.shutting_down.load(Acquire) => return Ok(()),
                Err(e) => backoff.pause("gorust::eventloop", e)?,
            }
        }
    }

    /// The runtime this loop runs on: the caller's, fixed by the first `serve` or `dial`.
    pub(crate) fn bind_runtime(&self, what: &str) -> io::Result<&Rt> {
        let handle = crate::context::handle().ok_or_else(|| {
            io::Error::other(format!(
                "gorust::eventloop: {what} must run inside a gorust runtime"
            ))
        })?;
        let rt = self.shared.rt.get_or_init(|| Rt {
            per_worker: (0..handle.remotes.len())
                .map(|_| AtomicUsize::new(0))
                .collect(),
            handle: handle.clone(),
        });
        if !Arc::ptr_eq(&rt.handle, &handle) {
            return Err(io::Error::other(
                "gorust::eventloop: one loop serves on one runtime",
            ));
        }
        Ok(rt)
    }

    /// `ErrClosed` once this loop shuts down; an error that says so once its runtime does.
    pub(crate) fn refuse_after_shutdown(&self, rt: &Rt) -> io::Result<()> {
        if self.shared.shutting_down.load(Acquire) {
            return Err(crate::netpoll::wait::closed_error());
        }
        if rt.handle.shutdown.load(Acquire) {
            return Err(io::Error::other(
                "gorust::eventloop: the loop's runtime has shut down",
            ));
        }
        Ok(())
    }

    /// Registers a connection (accepted, or `dialed` by `dial.rs`) and starts its `on_connect`.
    ///
    /// # Errors
    ///
    /// `on_prepare`'s refusal or panic, a failed registration, or `NotConnected` wrapping
    /// [`crate::net::ErrClosed`] during shutdown; the descriptor is then closed.
    pub(crate) fn admit(&self, rt: &Rt, fd: OwnedFd, dialed: bool) -> io::Result<Arc<Conn<S>>> {
        let sh = &self.shared;
        if let Some(p) = &sh.callbacks.prepare {
            // A panic refuses the connection as an error does. Uncaught, it ended `serve`,
            // and the listener stayed open with its backlog never served (review, session 28).
            handler::guarded(|| p(&Prepare { fd: fd.as_fd() })).unwrap_or_else(|| {
                Err(io::Error::other("gorust::eventloop: on_prepare panicked"))
            })?;
        }
        let worker = match sh.config.balance {
            Balance::RoundRobin => sh.next_worker.fetch_add(1, Relaxed) % rt.per_worker.len(),
            Balance::LeastConnections => (0..rt.per_worker.len())
                .min_by_key(|&i| rt.per_worker[i].load(Relaxed))
                .unwrap_or(0),
        };
        let poller = rt.handle.remotes[worker].poller.clone();
        let id = sh.next_id.fetch_add(1, Relaxed);
        let conn = Arc::new(Conn::new(id, fd, worker, poller, sh.clone(), dialed));
        rt.per_worker[worker].fetch_add(1, Relaxed);
        lock(&sh.conns).insert(id, conn.clone());
        if let Err(e) = conn.register() {
            sh.remove(id, worker);
            return Err(e);
        }
        super::timer::start(&conn);
        // `Conn::new` gave the claim to this first run (`on_connect`).
        handler::spawn(conn.clone());
        if sh.shutting_down.load(Acquire) {
            // Admitted while `shutdown` took its snapshot: close it (no callback ran yet).
            conn.close_now();
            return Err(crate::netpoll::wait::closed_error());
        }
        Ok(conn)
    }

    /// Live connections.
    pub fn connections(&self) -> usize {
        lock(&self.shared.conns).len()
    }

    /// Graceful shutdown (steps in the module header): stops accepting, closes idle
    /// connections, lets in-flight handlers finish for up to `grace`, closes the rest, and
    /// reports the counts. Within `grace`, it returns once every connection has disconnected
    /// (`on_disconnect` has returned): those it closed, idle ones too, those already closing
    /// and those admitted meanwhile; and once the sockets closed after their output was
    /// written have stopped lingering (a runtime dropped at once after would close those with
    /// a reset, cutting short the answers the drain was for).
    /// A dialed connection's socket lingers only once its `ClientConn` is dropped, and is
    /// waited for only if that happened.
    /// Parks the calling goroutine (sleeps a plain thread) meanwhile.
    ///
    /// # Panics
    ///
    /// Called with a `grace` above zero from a future (not a goroutine) on a worker thread,
    /// where the wait would block the worker; before it changes anything. Call it from a
    /// goroutine or a plain thread.
    pub fn shutdown(&self, grace: Duration) -> ShutdownReport {
        if !grace.is_zero() && crate::blocking::in_a_future_on_a_worker() {
            panic!(
                "gorust::eventloop::EventLoop::shutdown from a future on a worker thread would \
                 block the worker while it waits; call it from a goroutine (gorust::go) or a \
                 plain thread"
            );
        }
        let sh = &self.shared;
        let deadline = crate::time::deadline_in(grace);
        sh.shutting_down.store(true, Release);
        for l in lock(&sh.listeners).drain(..) {
            let _ = l.close();
        }
        let conns: Vec<Arc<Conn<S>>> = lock(&sh.conns).values().cloned().collect();
        let mut report = ShutdownReport::default();
        let mut busy = HashSet::new();
        for c in conns {
            let mut st = lock(&c.st);
            if st.closed {
                continue; // closing already (by its peer, a timer, `admit`): waited for below
            }
            // Output still queued for a slow reader is in flight too: draining, the poller
            // closes the connection once it is written (`State::drained`). Closed at once, as
            // before, a response was cut short (review, session 8). `out_len` is read under
            // `st`, as the handler reads it.
            if st.running || c.out_len.load(Acquire) > 0 {
                st.draining = true;
                c.update_read(&mut st);
                busy.insert(c.id);
            } else {
                // Closed under the same lock as the check: a request arriving in between
                // would start a handler that the close then cut off (review, session 28).
                let closing = c.close_locked(&mut st);
                drop(st);
                c.closed_idle_by(closing);
                report.closed_idle += 1;
            }
        }
        // Every connection in the registry is now draining or closing, and one admitted from
        // now on is closed by `admit` (it sees `shutting_down`): each leaves the registry once
        // its disconnect has run, and all are waited for. Counting only those this call
        // closed or drained, `shutdown` returned before the disconnect of one already closing
        // or admitted meanwhile (review, session 34).
        let left = || lock(&sh.conns).len();
        while left() > 0 && Instant::now() < deadline {
            crate::time::sleep(Duration::from_millis(1));
        }
        let stuck: Vec<Arc<Conn<S>>> = {
            let conns = lock(&sh.conns);
            busy.iter()
                .filter_map(|id| conns.get(id).cloned())
                .collect()
        };
        report.forced = stuck.len();
        report.finished = busy.len() - stuck.len();
        for c in stuck {
            c.close_now();
        }
        while sh.lingering.load(Acquire) > 0 && Instant::now() < deadline {
            crate::time::sleep(Duration::from_millis(1));
        }
        report
    }
}
