//! The client side: [`EventLoop::dial`] and the [`ClientConn`] it returns.
//!
//! ```no_run
//! use gorust::eventloop::EventLoop;
//!
//! gorust::run(|| -> std::io::Result<()> {
//!     // Replies are read in `call`; `on_request` leaves stray bytes for the next call.
//!     let client = EventLoop::builder().on_request(|_, _| Ok(())).build()?;
//!     let conn = client.dial("127.0.0.1:8080".parse().unwrap(), None)?;
//!     let reply = conn.call(|c, _| {
//!         c.writer().write_bytes(b"ping\n");
//!         c.flush()?;
//!         let line = loop {
//!             if let Ok(line) = c.reader().until(b'\n') {
//!                 break line.to_vec();
//!             }
//!             let have = c.reader().len();
//!             c.wait_input(have + 1)?;              // parks this goroutine
//!         };
//!         Ok(line)
//!     })?;
//!     assert_eq!(reply, b"ping\n");
//!     Ok(())
//! });
//! ```
//!
//! A dialed connection is an event-loop connection like an accepted one: the descriptor is
//! connected with [`crate::net::TcpStream::connect_timeout`] (parking the dialling goroutine,
//! so a refused or slow connect is an ordinary `io::Error`), taken out of the netpoller, and
//! handed to the same `admit` as `serve`'s accepted connections: `on_prepare`, level-triggered
//! registration on a worker's poller, the idle timer, `on_connect`, then `on_request` when data
//! arrives and `on_disconnect` exactly once. Input limit, output limit and timeouts are the
//! loop's.
//!
//! # Two ways to use it
//!
//! 1. *Callbacks*, as a server: [`ClientConn::send`] writes a request from any goroutine
//!    (straight to the socket, the rest through the poller, as `Connection::flush`), and
//!    replies arrive in `on_request`. Suits streams where the peer pushes (subscriptions).
//! 2. *From the calling goroutine*, as netpoll's `DialConnection` with its `Reader`/`Writer`:
//!    [`ClientConn::call`] runs a closure that sees the same [`Connection`] a handler sees: it
//!    writes and flushes a request, parks in [`Connection::wait_input`] until the reply has
//!    arrived, and reads it in place. Suits request/response (RPC, pools).
//!
//! Both rest on the connection's claim (`state.rs`): whoever holds it owns the input and the
//! user state. `call` takes the claim as a handler run would (parking on the connection's
//! `unclaimed` slot while a handler or another `call` holds it), so a reply is seen either by the
//! `call` waiting for it or, if it arrives outside any call, by `on_request`, never by both.
//! When `call` ends it asks the state machine the same question a handler run does: bytes
//! that arrived after its last read start `on_request` (it hands the claim to a handler), a
//! peer's FIN closes the connection. A loop that only calls can use a no-op `on_request`
//! (`|_, _| Ok(())`): it consumes nothing, and what it leaves is the next call's input.
//!
//! Trade-off of the second way: while the caller waits for its reply it holds the claim, so
//! the connection costs the caller's goroutine (and its stack) for the round trip, as a
//! `gorust::net::TcpStream` would; between calls it costs nothing, as a server connection.
//! Holding no goroutine across the round trip needs the callback way.
//!
//! # Who touches what
//!
//! | field | who | how |
//! |---|---|---|
//! | `ClientConn::conn` | the handle's owner; the loop's registry and handlers hold other `Arc`s | immutable |
//! | the connection's `work` | the claim's holder: a handler, or a `call` | as in `conn.rs` |
//! | the connection's `out` | `send`, a `call`'s or a handler's `flush`, the poller | mutex (`conn.rs`) |
//! | the connection's `call_deadline` | the `call_timeout` holding the claim (set, clear); its `wait_input` and `flush` (read; a `send` from another goroutine does not) | relaxed atomic: one thread at a time, the claim orders them |
//!
//! # Rejected
//!
//! - *A separate client connection type* with its own read path: a second state machine to
//!   model-check, and a client could not share handlers with a server.
//! - *Reads from the caller without the claim* (the caller reading the inbox directly): a
//!   handler started by the poller would race it for the same bytes.
//! - *`send` keeping the connection open after a failed write*: the request stream's state is
//!   unknown; the connection is closed, as a handler's failed `flush` closes it.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::{lock, Conn, Work};
use super::handler::{self, park_once, ConnIo, Connection};
use super::serve::EventLoop;
use super::state::Next;
use crate::buffer::LinkBuffer;
use crate::netpoll::wait::closed_error;

/// A dialed event-loop connection (see [`crate::eventloop`]). Dropping it closes
/// the connection (`on_disconnect` follows, once).
pub struct ClientConn<S: Send + 'static = ()> {
    conn: Arc<Conn<S>>,
}

impl<S: Send + 'static> std::fmt::Debug for ClientConn<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConn")
            .field("id", &self.conn.id)
            .field("fd", &self.conn.fd.as_raw_fd())
            .finish()
    }
}

impl<S: Send + 'static> EventLoop<S> {
    /// Connects to `addr` (parking the calling goroutine for at most `timeout`, if given) and
    /// registers the connection on this loop as an accepted one would be: `on_prepare`, then
    /// `on_connect` on a goroutine, `on_request` when data arrives, `on_disconnect` once.
    /// Call it from inside the runtime the loop serves on (it fixes that runtime if the loop
    /// has none yet).
    ///
    /// # Errors
    ///
    /// The connect's error (`ConnectionRefused`, `TimedOut`, …), `InvalidInput` for a zero
    /// timeout, `on_prepare`'s refusal, `Other` outside a gorust runtime or on another runtime
    /// than the loop's, `NotConnected` wrapping [`crate::net::ErrClosed`] once the loop is
    /// shutting down.
    pub fn dial(&self, addr: SocketAddr, timeout: Option<Duration>) -> io::Result<ClientConn<S>> {
        let rt = self.bind_runtime("dial")?;
        // Before connecting: past either shutdown the connection would be torn down as soon
        // as registered (its `on_connect` refused), and `dial` returned it as if alive, the
        // peer seeing a connect and a FIN (review, session 31).
        self.refuse_after_shutdown(rt)?;
        let stream = match timeout {
            Some(t) => crate::net::TcpStream::connect_timeout(&addr, t)?,
            None => crate::net::TcpStream::connect(addr)?,
        };
        // Out of the netpoller (edge-triggered) before the loop registers it level-triggered.
        let fd = OwnedFd::from(stream);
        let conn = self.admit(rt, fd, true)?;
        Ok(ClientConn { conn })
    }
}

impl<S: Send + 'static> ClientConn<S> {
    /// The connection's number, unique within its loop (the `Connection::id` its callbacks
    /// see).
    pub fn id(&self) -> u64 {
        self.conn.id
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// As `getsockname`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(socket2::SockRef::from(&*self.conn.fd).local_addr()?)
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// As `getpeername` (`NotConnected` once the socket is shut down).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(socket2::SockRef::from(&*self.conn.fd).peer_addr()?)
    }

    /// Writes `bytes` from any goroutine (or plain thread): now as far as the socket takes
    /// them, the rest through the poller, as [`Connection::flush`]. Concurrent `send`s and
    /// flushes are written whole, one after the other. Parks only past the output limit.
    ///
    /// # Errors
    ///
    /// As [`Connection::flush`]; a failed write closes the connection.
    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let mut b = LinkBuffer::new();
        b.write_bytes(bytes);
        self.conn.queue_out(&mut b, false)
    }

    /// Runs `f` on the calling goroutine as if it were a handler run: it sees the
    /// connection's input (bytes that arrived since the last run or call), an output buffer
    /// (flushed when `f` returns), [`Connection::wait_input`] to park for a reply, and the
    /// connection's state. Waits first while a handler or another `call` is running.
    ///
    /// Afterwards, as after a handler run: bytes that arrived after `f` last read start
    /// `on_request`; input `f` left unconsumed stays for the next call or handler run; a
    /// peer's FIN closes the connection (after one more `on_request` run if input is left).
    ///
    /// # Errors
    ///
    /// `NotConnected` wrapping [`crate::net::ErrClosed`] on a closed connection; `f`'s error
    /// or the final flush's. An error closes the connection at once, dropping what `f` wrote
    /// (a TCP connection is reset, even if part of it was flushed: the peer must not take a
    /// part for a whole request; and a reply that comes later would otherwise be read as the
    /// next call's; a handler's error, by contrast, first writes what its run wrote). A panic
    /// in `f` closes it too and is resumed here.
    pub fn call<R>(
        &self,
        f: impl FnOnce(&mut Connection<'_>, &mut S) -> io::Result<R>,
    ) -> io::Result<R> {
        self.call_until(None, f)
    }

    /// [`call`](Self::call) with a time limit on the whole exchange: waiting for a handler in
    /// flight to return, and every [`Connection::wait_input`] in `f` (the loop's read timeout
    /// still applies if it is shorter).
    ///
    /// # Errors
    ///
    /// As `call`; `TimedOut` when `timeout` passes. A `TimedOut` while waiting for the
    /// handler leaves the connection open (this call never touched it); one inside `f`
    /// closes it, as any error from `f` does.
    pub fn call_timeout<R>(
        &self,
        timeout: Duration,
        f: impl FnOnce(&mut Connection<'_>, &mut S) -> io::Result<R>,
    ) -> io::Result<R> {
        self.call_until(Some(timeout), f)
    }

    fn call_until<R>(
        &self,
        timeout: Option<Duration>,
        f: impl FnOnce(&mut Connection<'_>, &mut S) -> io::Result<R>,
    ) -> io::Result<R> {
        let conn = &self.conn;
        let ns = timeout.map(|d| {
            let d = d.as_nanos().min(u64::MAX as u128) as u64;
            conn.lp.now_ns().saturating_add(d).max(1)
        });
        acquire(conn, ns.map(|ns| conn.lp.instant(ns)))?;
        // Ours while we hold the claim; `wait_input` reads it (`Conn::read_deadline`).
        conn.call_deadline.store(ns.unwrap_or(0), Relaxed);
        let mut guard = lock(&conn.work);
        let work: &mut Work<S> = &mut guard;
        let inbox = {
            let mut st = lock(&conn.st);
            let inbox = st.take_inbox();
            st.input_len = work.input.len() + inbox.len();
            inbox
        };
        work.input.append(inbox);
        let before = work.input.len();
        let (result, pulled) = match work.user.as_mut() {
            // `on_connect` failed: the connection is closing.
            None => (Ok(Err(closed_error())), 0),
            Some(user) => {
                let mut c = Connection::new(&**conn, &mut work.input);
                // What `f` wrote is flushed only if it succeeded: the connection closes
                // otherwise. The flush is inside the catch too: it may park for room, and a
                // panic there (a refused wait, a wait from a future on a worker) must still
                // release the claim below (review, session 26).
                let r = catch_unwind(AssertUnwindSafe(|| {
                    f(&mut c, user).and_then(|v| c.finish().map(|()| v))
                }));
                (r, c.pulled)
            }
        };
        work.input.release();
        let after = work.input.len();
        drop(guard);
        conn.call_deadline.store(0, Relaxed);
        let ok = matches!(result, Ok(Ok(_)));
        release(conn, ok, after, (before + pulled).saturating_sub(after));
        match result {
            Ok(r) => r,
            Err(panic) => resume_unwind(panic),
        }
    }

    /// Whether the connection is still open: not closed here, not timed out, not reset or
    /// failed. A peer that has only finished sending (its FIN read) leaves it active, as a
    /// half-closed TCP connection still takes writes; reads then end.
    pub fn is_active(&self) -> bool {
        self.conn.is_active()
    }

    /// The runtime of the loop this connection was dialed on (set by that dial).
    pub(crate) fn runtime(&self) -> &crate::sched::Handle {
        self.conn.lp.runtime()
    }

    /// Whether the connection can carry a new request: open, the peer has not finished, no
    /// input is buffered or waiting in the socket, and no output is pending (the
    /// [`Pool`](super::Pool)'s test before it keeps or hands out a connection).
    pub fn is_reusable(&self) -> bool {
        let c = &self.conn;
        {
            let st = lock(&c.st);
            if st.closed || st.eof || st.draining || st.buffered() > 0 {
                return false;
            }
        }
        if c.out_len.load(Acquire) > 0 || !c.is_active() {
            return false;
        }
        // The poller may not have read a FIN (or stray bytes) yet: look at the socket.
        let mut one = [0u8; 1];
        matches!(
            crate::sys::socket::peek(c.fd.as_raw_fd(), &mut one),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock
        )
    }

    /// Closes now: output the socket has not taken yet is dropped, the socket is shut down
    /// (a TCP connection with output dropped is reset), and `on_disconnect` follows once
    /// (after a handler or `call` in flight returns). Dropping the handle does the same.
    pub fn close(&self) {
        self.conn.close_now();
    }
}

impl<S: Send + 'static> AsFd for ClientConn<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.conn.fd.as_fd()
    }
}

impl<S: Send + 'static> Drop for ClientConn<S> {
    fn drop(&mut self) {
        self.conn.handle_dropped();
        self.conn.close_now();
    }
}

fn sock_addr(a: socket2::SockAddr) -> io::Result<SocketAddr> {
    a.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an inet socket"))
}

/// Takes the claim for a `call`, parking while someone else holds it (until `deadline`).
fn acquire<S: Send + 'static>(conn: &Arc<Conn<S>>, deadline: Option<Instant>) -> io::Result<()> {
    loop {
        {
            let mut st = lock(&conn.st);
            if st.start() {
                return Ok(());
            }
            if st.closed || st.draining {
                return Err(closed_error());
            }
        }
        // Woken by `released` (a handler or call went idle) or by teardown.
        park_once(&conn.unclaimed, &conn.torn, deadline, || false)?;
    }
}

/// Ends a `call` holding the claim: the handler's end-of-run step (`handler::run`).
fn release<S: Send + 'static>(conn: &Arc<Conn<S>>, ok: bool, left: usize, consumed: usize) {
    // Idle time starts at the call's end, as at a handler run's (`handler::run`).
    conn.touch();
    if !ok {
        // Reset, on TCP: a request `f` flushed part of, then failed, must not end in a FIN,
        // which a peer reads as the end of a whole request (review, session 34).
        conn.close_holding_claim(true);
        // Still ours: the handler goroutine disconnects.
        handler::spawn(conn.clone());
        return;
    }
    let next = {
        let mut st = lock(&conn.st);
        // Under `st`, as in `handler::run`.
        let out_pending = conn.out_len.load(Acquire) > 0;
        let next = st.finish(left, consumed, out_pending, conn.lp.config.input_limit);
        conn.update_read(&mut st);
        next
    };
    match next {
        Next::Idle => conn.released(),
        // New data for `on_request`, or the disconnect: the claim goes to a handler.
        Next::Rerun => handler::spawn(conn.clone()),
        Next::Close { deregister } => {
            if deregister {
                conn.teardown_gracefully();
            }
            handler::spawn(conn.clone());
        }
    }
}
