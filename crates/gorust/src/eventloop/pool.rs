//! [`Pool`]: idle dialed connections to one address, kept for reuse.
//!
//! ```text
//!   get ──▶ pop the newest idle ──(reusable, not expired)──▶ handed out
//!              │ none left                 │ otherwise: dropped (closed), try the next
//!              ▼                           ▼
//!            dial                     ... ─────────────────▶ handed out
//!
//!   put ──(reusable)──▶ pushed as newest; past max_idle the oldest is closed
//!         otherwise: dropped (closed)
//!
//!   reaper (a goroutine, only while some connection is idle): sleeps until the oldest idle
//!   connection expires, closes every expired one, and ends when none is left
//! ```
//!
//! A connection is *reusable* ([`ClientConn::is_reusable`]) when it is open, the peer has not
//! finished, no input is buffered or waiting in the socket, and no output is pending. The test
//! runs on `put` and again on `get`, and it peeks at the socket, so a connection the peer
//! closed is never handed out once its FIN has reached this host (one still in flight cannot
//! be seen by anyone; the caller's first read then fails, as with any client).
//!
//! `get` takes the newest idle connection (LIFO): the warmest one, and it lets the oldest
//! ones expire when traffic falls. The idle list is ordered by the time each connection was
//! put back, so expiry looks only at its front.
//!
//! | setting | default | why |
//! |---|---|---|
//! | [`max_idle`](PoolBuilder::max_idle) | 8 | enough for a few concurrent callers per address; a burst leaves few sockets open after it |
//! | [`idle_timeout`](PoolBuilder::idle_timeout) | 30 s | under the keep-alive timeouts servers commonly use (60 s and more), so the pool closes first instead of reusing a connection the server is closing |
//! | [`dial_timeout`](PoolBuilder::dial_timeout) | 5 s | a dead address fails in seconds, not the kernel's two minutes |
//!
//! # Who touches what
//!
//! | field | who | how |
//! |---|---|---|
//! | `idle` (the list, `reaping`) | `get`, `put`, the reaper | mutex; connections are closed after it is released |
//! | the configuration, the loop, the address | everyone | immutable |
//!
//! The reaper holds a `Weak` reference: dropping the last `Pool` handle closes the idle
//! connections at once, and the reaper ends at once too: it sleeps in a receive on a channel
//! whose only sender the pool holds, so the drop ends that wait. With a plain sleep it stayed,
//! a parked goroutine and a timer, until the oldest connection would have expired (30 s by
//! default) (session 32).
//!
//! # Rejected
//!
//! - *Expiry checked only on `get`*: an unused pool would keep its sockets (and the server's)
//!   open forever.
//! - *One timer per idle connection*: the list is already ordered by expiry, so one sleeper
//!   for the front does the same work with one timer.
//! - *A guard that puts the connection back when dropped*: a connection left mid-request by
//!   an error or a panic would go back into the pool; `put` is explicit (and checks anyway).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::conn::lock;
use super::dial::ClientConn;
use super::serve::EventLoop;

/// Default [`PoolBuilder::max_idle`]: 8.
pub const DEFAULT_MAX_IDLE: usize = 8;
/// Default [`PoolBuilder::idle_timeout`]: 30 s.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`PoolBuilder::dial_timeout`]: 5 s.
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections to one address, dialed on an [`EventLoop`] (see [`crate::eventloop`]).
/// Cloning gives another handle to the same pool.
pub struct Pool<S: Send + 'static = ()> {
    shared: Arc<PoolShared<S>>,
}

impl<S: Send + 'static> Clone for Pool<S> {
    fn clone(&self) -> Self {
        Pool {
            shared: self.shared.clone(),
        }
    }
}

impl<S: Send + 'static> std::fmt::Debug for Pool<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("addr", &self.shared.addr)
            .field("idle", &self.idle_len())
            .finish()
    }
}

/// Builds a [`Pool`].
#[derive(Debug)]
pub struct PoolBuilder<S: Send + 'static = ()> {
    el: EventLoop<S>,
    addr: SocketAddr,
    max_idle: usize,
    idle_timeout: Option<Duration>,
    dial_timeout: Option<Duration>,
}

struct PoolShared<S: Send + 'static> {
    el: EventLoop<S>,
    addr: SocketAddr,
    max_idle: usize,
    idle_timeout: Option<Duration>,
    dial_timeout: Option<Duration>,
    idle: Mutex<Idle<S>>,
    /// Never sent on: dropped with the pool, it ends the reaper's wait.
    _stop: crate::sync::mpsc::Sender<()>,
    /// The reaper's end of `_stop`.
    stopped: Arc<crate::sync::mpsc::Receiver<()>>,
}

struct Idle<S: Send + 'static> {
    /// Oldest first; each with the time it was put back.
    list: VecDeque<(ClientConn<S>, Instant)>,
    /// A reaper goroutine is running.
    reaping: bool,
}

impl<S: Send + 'static> PoolBuilder<S> {
    /// Idle connections kept at most (default [`DEFAULT_MAX_IDLE`]); `put` past it closes
    /// the oldest. 0 keeps none.
    pub fn max_idle(mut self, n: usize) -> Self {
        self.max_idle = n;
        self
    }

    /// How long a connection may stay idle before the reaper closes it (default
    /// [`DEFAULT_POOL_IDLE_TIMEOUT`]; `None`: never).
    pub fn idle_timeout(mut self, d: Option<Duration>) -> Self {
        self.idle_timeout = d;
        self
    }

    /// The time limit of each dial (default [`DEFAULT_DIAL_TIMEOUT`]; `None`: the kernel's).
    pub fn dial_timeout(mut self, d: Option<Duration>) -> Self {
        self.dial_timeout = d;
        self
    }

    /// Builds the pool (no connection is dialed yet).
    pub fn build(self) -> Pool<S> {
        let (stop, stopped) = crate::sync::mpsc::channel();
        Pool {
            shared: Arc::new(PoolShared {
                el: self.el,
                addr: self.addr,
                max_idle: self.max_idle,
                idle_timeout: self.idle_timeout,
                dial_timeout: self.dial_timeout,
                idle: Mutex::new(Idle {
                    list: VecDeque::new(),
                    reaping: false,
                }),
                _stop: stop,
                stopped: Arc::new(stopped),
            }),
        }
    }
}

impl<S: Send + 'static> Pool<S> {
    /// A builder for a pool of connections to `addr`, dialed on `el`.
    pub fn builder(el: &EventLoop<S>, addr: SocketAddr) -> PoolBuilder<S> {
        PoolBuilder {
            el: el.clone(),
            addr,
            max_idle: DEFAULT_MAX_IDLE,
            idle_timeout: Some(DEFAULT_POOL_IDLE_TIMEOUT),
            dial_timeout: Some(DEFAULT_DIAL_TIMEOUT),
        }
    }

    /// An idle connection that is still reusable, or a new one. Call it from inside the
    /// loop's runtime (a dial parks the calling goroutine).
    ///
    /// # Errors
    ///
    /// As [`EventLoop::dial`].
    pub fn get(&self) -> io::Result<ClientConn<S>> {
        let sh = &self.shared;
        loop {
            let Some((c, since)) = lock(&sh.idle).list.pop_back() else {
                break;
            };
            let fresh = sh.idle_timeout.is_none_or(|t| since.elapsed() < t);
            if fresh && c.is_reusable() {
                return Ok(c);
            }
            // Dropped here, off the lock: closed.
        }
        sh.el.dial(sh.addr, sh.dial_timeout)
    }

    /// Gives a connection back. It is kept if it is still reusable (otherwise closed), as the
    /// newest idle one; past [`max_idle`](PoolBuilder::max_idle) the oldest is closed. A
    /// connection to another address than the pool's is closed too: kept, `get` handed it
    /// out as one to this pool's peer (review, session 31).
    pub fn put(&self, conn: ClientConn<S>) {
        let sh = &self.shared;
        if sh.max_idle == 0 || !conn.is_reusable() {
            return;
        }
        if conn.peer_addr().ok() != Some(sh.addr) {
            return;
        }
        // The reaper runs on the pool's loop's runtime, or, if that loop has never served or
        // dialed, on the connection's: a connection dialed on another loop, put into a pool
        // whose loop had none, hit the unset runtime's `unreachable!` (review, session 30).
        let conn_rt = sh
            .el
            .shared
            .runtime_if_set()
            .is_none()
            .then(|| conn.runtime().clone());
        let mut idle = lock(&sh.idle);
        idle.list.push_back((conn, Instant::now()));
        let evicted = if idle.list.len() > sh.max_idle {
            idle.list.pop_front()
        } else {
            None
        };
        // No reaper for a timeout past the clock's range (`Duration::MAX`: never): it slept
        // for good, a parked goroutine left behind by every such pool dropped (review,
        // session 31).
        let expires = sh
            .idle_timeout
            .is_some_and(|t| Instant::now().checked_add(t).is_some());
        let start = expires && !idle.reaping;
        idle.reaping |= start;
        drop(idle);
        drop(evicted);
        if start {
            let weak = Arc::downgrade(&self.shared);
            let stopped = sh.stopped.clone();
            let rt = conn_rt.as_ref().unwrap_or_else(|| sh.el.shared.runtime());
            crate::goroutine::go_on(rt, move || reap(weak, &stopped));
        }
    }

    /// Idle connections held now.
    pub fn idle_len(&self) -> usize {
        lock(&self.shared.idle).list.len()
    }
}

/// The reaper goroutine; see the module header.
fn reap<S: Send + 'static>(pool: Weak<PoolShared<S>>, stopped: &crate::sync::mpsc::Receiver<()>) {
    loop {
        let Some(sh) = pool.upgrade() else {
            return;
        };
        let Some(timeout) = sh.idle_timeout else {
            return;
        };
        let now = Instant::now();
        let mut expired = Vec::new();
        let next = {
            let mut idle = lock(&sh.idle);
            while idle
                .list
                .front()
                .is_some_and(|(_, since)| now.duration_since(*since) >= timeout)
            {
                expired.extend(idle.list.pop_front());
            }
            // Saturating: `Duration::MAX` says "never", and an instant past the clock's range
            // panicked here, ending the reaper with `reaping` still set (review, session 28).
            let next = idle.list.front().map(|(_, since)| {
                since
                    .checked_add(timeout)
                    .unwrap_or_else(|| crate::time::deadline_in(timeout))
            });
            if next.is_none() {
                idle.reaping = false;
            }
            next
        };
        drop(expired);
        drop(sh);
        let Some(at) = next else {
            return;
        };
        // Wakes at `at`, or at once when the pool is dropped (its sender goes with it).
        if let Err(crate::sync::mpsc::RecvTimeoutError::Disconnected) = stopped.recv_deadline(at) {
            return;
        }
    }
}
