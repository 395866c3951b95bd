//! The handler side: the goroutine that runs `on_connect`, `on_request` and `on_disconnect`,
//! and the [`Connection`] they see.
//!
//! A handler goroutine is started by whoever takes the connection's claim (`state.rs`): the
//! accept loop (for `on_connect`), the poller when data arrives at an idle connection, or a
//! closer (for `on_disconnect`). It holds the claim, and so the connection's `work` (input
//! buffer and user state), until its run ends:
//!
//! 1. First run only: `on_connect` makes the user state.
//! 2. Take the inbox into the input (`LinkBuffer::append`: linked, not copied, into an empty
//!    input) and, if the input is not empty, call `on_request`; release what it consumed;
//!    flush what it wrote.
//! 3. Ask the state machine: rerun (new data arrived meanwhile, or input left after a run
//!    that consumed some; each rerun spends a unit of the cooperative budget, so a long
//!    backlog yields to the worker's other tasks), idle (release the claim; the goroutine
//!    ends and its stack goes back to the pool), or close.
//! 4. Close: `on_disconnect` with the user state, then every buffer is dropped (nodes back to
//!    the pool) and the connection leaves the loop's registry.
//!
//! A panic in a callback is caught here: it closes only its connection (the default panic
//! hook has printed it). An error or a panic in `on_request` closes it as [`Connection::close`]
//! does: after the output the run wrote is written, with a graceful shutdown.
//!
//! A handler goroutine the runtime will not run (refused by a runtime that is shutting down,
//! or dropped unstarted by its shutdown) still ends its connection: the claim it was handed
//! ([`Claim`]) closes the connection and runs `on_disconnect` where it is dropped, with waits
//! refused as in a cancelled goroutine's unwind. This is how the runtime's shutdown ends the
//! connections that no handler holds: the poller orphaning them closes them, and the
//! disconnect goroutine it starts is refused (before, they stayed open, their `on_disconnect`
//! never ran, and the loop leaked with them; review, session 25).

use std::cell::{RefCell, RefMut};
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use super::conn::{lock, Conn, Work};
use super::state::{CloseBy, Next};
use crate::buffer::LinkBuffer;
use crate::netpoll::slot::WaitSlot;
use crate::netpoll::wait::{closed_error, timed_out};
use crate::time::Sleep;

/// What a [`Connection`] needs from its connection, without the user state's type.
pub(crate) trait ConnIo {
    fn id(&self) -> u64;
    fn fd(&self) -> BorrowedFd<'_>;
    /// Writes `buf` now as far as the socket takes it; hands the rest to the poller.
    fn flush_out(&self, buf: &mut LinkBuffer) -> io::Result<()>;
    /// Moves arrived bytes into `input` until it holds `n`; returns the bytes moved.
    fn pull(&self, input: &mut LinkBuffer, n: usize) -> io::Result<usize>;
    /// Close once this run's output is written.
    fn close_soon(&self);
    fn is_active(&self) -> bool;
}

/// A connection as its callbacks see it: the input buffer (bytes that have arrived), an
/// output buffer, and a few controls.
///
/// Reading: [`reader`](Connection::reader) gives the input; its `next`/`peek`/`until`/`skip`
/// borrow the connection, and what they consume is released when the callback returns. Bytes
/// left unconsumed stay for the next call, made when more data arrives.
///
/// Writing: write into [`writer`](Connection::writer), then [`flush`](Connection::flush) (or
/// return: the runtime flushes what is left).
pub struct Connection<'a> {
    io: &'a dyn ConnIo,
    input: &'a mut LinkBuffer,
    output: RefCell<LinkBuffer>,
    /// Whether this callback called [`close`](Connection::close).
    closed_here: std::cell::Cell<bool>,
    /// Bytes `wait_input` moved in from the inbox during this run.
    pub(crate) pulled: usize,
}

impl std::fmt::Debug for Connection<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.io.id())
            .field("input", &self.input.len())
            .finish()
    }
}

impl<'a> Connection<'a> {
    pub(crate) fn new(io: &'a dyn ConnIo, input: &'a mut LinkBuffer) -> Connection<'a> {
        Connection {
            io,
            input,
            output: RefCell::new(LinkBuffer::new()),
            closed_here: std::cell::Cell::new(false),
            pulled: 0,
        }
    }

    /// This connection's number, unique within its event loop.
    pub fn id(&self) -> u64 {
        self.io.id()
    }

    /// The input: bytes that have arrived and were not consumed yet.
    pub fn reader(&self) -> &LinkBuffer {
        self.input
    }

    /// The input, for the `&mut` readers (`release`, `slice`, `bytes::Buf`, `BufRead`).
    pub fn reader_mut(&mut self) -> &mut LinkBuffer {
        self.input
    }

    /// The output buffer. Hold the guard only while writing: `flush` needs it back.
    pub fn writer(&self) -> RefMut<'_, LinkBuffer> {
        self.output.borrow_mut()
    }

    /// Writes what was written to [`writer`](Self::writer) now, as far as the socket takes
    /// it; the poller writes the rest when the socket has room. Never blocks a poller; parks
    /// this handler only when the connection's pending output is past the output limit,
    /// until it drains below (bounded by the write timeout).
    ///
    /// # Errors
    ///
    /// The write's error (the connection is then closed), `TimedOut` (write timeout while
    /// waiting for room), `NotConnected` wrapping [`crate::net::ErrClosed`] on a closed
    /// connection, `WouldBlock` if a `writer()` guard is still alive.
    pub fn flush(&self) -> io::Result<()> {
        let mut out = self.output.try_borrow_mut().map_err(|_| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                "gorust::eventloop: flush while a writer() guard is alive",
            )
        })?;
        self.io.flush_out(&mut out)
    }

    /// Parks this handler until the input holds at least `n` bytes (netpoll's blocking
    /// `Next`). Releases what was consumed first, so no slice may be alive (the borrow checker
    /// sees to it).
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` if the peer finished first, `TimedOut` after the read timeout,
    /// `NotConnected` (closed), `InvalidInput` if `n` is more than the input limit.
    pub fn wait_input(&mut self, n: usize) -> io::Result<()> {
        self.input.release();
        if self.input.len() >= n {
            return Ok(());
        }
        self.pulled += self.io.pull(self.input, n)?;
        Ok(())
    }

    /// Closes the connection once this call has returned and its output is written
    /// (`Connection: close`). `on_disconnect` follows.
    pub fn close(&self) {
        self.closed_here.set(true);
        self.io.close_soon();
    }

    /// Whether the connection is still open: not closed here, not timed out, not reset or
    /// failed. A peer that has only finished sending (its FIN read) leaves it active, as a
    /// half-closed TCP connection still takes writes; reads then end.
    pub fn is_active(&self) -> bool {
        self.io.is_active()
    }

    /// Flushes what the callback left in the output buffer.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        let out = self.output.get_mut();
        if out.is_empty() && out.malloc_len() == 0 {
            return Ok(());
        }
        self.io.flush_out(out)
    }
}

impl AsFd for Connection<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.fd()
    }
}

/// A connection before it is registered, as [`on_prepare`](super::Builder::on_prepare) sees
/// it.
#[derive(Debug)]
pub struct Prepare<'a> {
    pub(crate) fd: BorrowedFd<'a>,
}

impl Prepare<'_> {
    /// Sets `TCP_NODELAY` (an error on a socket that is not TCP).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        socket2::SockRef::from(&self.fd).set_tcp_nodelay(on)
    }

    /// The peer's address, for a TCP connection (`InvalidInput` otherwise).
    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        socket2::SockRef::from(&self.fd)
            .peer_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an inet socket"))
    }
}

impl AsFd for Prepare<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd
    }
}

/// Starts the handler goroutine of `conn`; the caller took the claim for it.
pub(crate) fn spawn<S: Send + 'static>(conn: Arc<Conn<S>>) {
    let rt = conn.lp.runtime().clone();
    let claim = Claim(Some(conn));
    // Bound to this worker, first come first served: see `Shared::spawn_goroutine_here`.
    crate::goroutine::go_here(&rt, move || {
        let mut claim = claim;
        if let Some(conn) = claim.0.take() {
            run(conn);
        }
    });
}

/// The claim a handler goroutine is handed, taken when it runs. Dropped untaken (the
/// goroutine will never run), it ends the connection here: see the module header.
struct Claim<S: Send + 'static>(Option<Arc<Conn<S>>>);

impl<S: Send + 'static> Drop for Claim<S> {
    fn drop(&mut self) {
        let Some(conn) = self.0.take() else {
            return;
        };
        conn.close_holding_claim(false);
        let cancelled = crate::goroutine::Cancelled::Disconnect(conn.id);
        crate::goroutine::refusing_waits(cancelled, || disconnect(&conn, &mut lock(&conn.work)));
    }
}

/// Calls `f`, turning a panic into `None`.
pub(crate) fn guarded<R>(f: impl FnOnce() -> R) -> Option<R> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

/// Flushes what a handler wrote; `false` if that failed or panicked. Guarded like the handler
/// itself: the flush may park for room, and a shutdown's unwind there (or a wait refused after
/// a caught one) must still end in the disconnect. Unguarded, it unwound out of `run` with
/// the claim taken, and the connection, its descriptor and the loop were never freed
/// (review, session 26).
fn flushed(c: &mut Connection<'_>) -> bool {
    matches!(guarded(|| c.finish()), Some(Ok(())))
}

/// The handler goroutine; see the module header.
fn run<S: Send + 'static>(conn: Arc<Conn<S>>) {
    let cb = &conn.lp.callbacks;
    let limit = conn.lp.config.input_limit;
    let mut ok = true;
    // `close` in `on_connect`: no `on_request` follows, not even for a request that had
    // already arrived (it was answered after the goodbye; review, session 30). Only then: a
    // graceful shutdown's draining still lets a handler already started answer what it found.
    let mut closed_on_connect = false;
    {
        let mut guard = lock(&conn.work);
        let work: &mut Work<S> = &mut guard;
        if work.user.is_none() && !lock(&conn.st).closed {
            let mut c = Connection::new(&*conn, &mut work.input);
            match guarded(|| (cb.connect)(&mut c)) {
                Some(s) => {
                    closed_on_connect = c.closed_here.get();
                    ok = flushed(&mut c);
                    drop(c);
                    work.user = Some(s);
                }
                None => ok = false,
            }
        }
    }
    while ok {
        // Uncontended: only the holder of the claim locks `work`. It is unlocked before the
        // claim is released, so a handler started next never waits for it.
        let mut guard = lock(&conn.work);
        let work: &mut Work<S> = &mut guard;
        let inbox = {
            let mut st = lock(&conn.st);
            if st.closed {
                break;
            }
            let inbox = st.take_inbox();
            // Still counted against the limit, now as input.
            st.input_len = work.input.len() + inbox.len();
            inbox
        };
        work.input.append(inbox);
        let before = work.input.len();
        let mut pulled = 0;
        if before > 0 && !closed_on_connect {
            let Some(user) = work.user.as_mut() else {
                break;
            };
            let mut c = Connection::new(&*conn, &mut work.input);
            if !matches!(guarded(|| (cb.request)(&mut c, user)), Some(Ok(()))) {
                // An error or a panic closes the connection once what the run wrote is
                // written, as `close` does (the builder's promise). Closed at once, an answer
                // longer than the socket buffers took was cut short, and the FIN after what
                // they held passed it to the peer as whole (review, session 28).
                c.close();
            }
            ok = flushed(&mut c);
            pulled = c.pulled;
            drop(c);
            work.input.release();
        }
        if !ok {
            break;
        }
        let after = work.input.len();
        drop(guard);
        // The run's end is activity: idle time starts from it, not from the last read or
        // write before a long run (stored before the claim is released, so the timer sees
        // either the run or this). After a 5 s run that wrote nothing, a 2 s idle timeout
        // closed the connection 1 s later (review, session 34).
        conn.touch();
        let consumed = (before + pulled).saturating_sub(after);
        let next = {
            let mut st = lock(&conn.st);
            // Read under `st`: `write_out` stores `out_len` before it takes `st`, so either this
            // sees the output written, or its `drained` sees the claim released and closes.
            // Read before the lock, a write finishing in between left a draining connection
            // idle with nothing to close it (review, session 8).
            let out_pending = conn.out_len.load(Acquire) > 0;
            let next = st.finish(after, consumed, out_pending, limit);
            conn.update_read(&mut st);
            next
        };
        match next {
            Next::Rerun => {
                // Each rerun spends a unit of the cooperative budget, and a spent budget yields:
                // a connection with a long pipelined backlog (one request per call) kept its
                // worker until the backlog was done, while connections queued behind it on
                // the same worker waited (review, session 30).
                // Guarded as the flush is: a shutdown's unwind of the yielded goroutine must
                // still end in the disconnect (unguarded, it left with the claim taken, and the
                // connection and its loop were never freed; review, session 30).
                ok = guarded(crate::coop::spend_or_yield).is_some();
                continue;
            }
            Next::Idle => {
                conn.released();
                return;
            }
            Next::Close { deregister } => {
                if deregister {
                    conn.teardown_gracefully();
                }
                break;
            }
        }
    }
    if !ok {
        // Our error: we hold the claim, so `close` leaves the disconnect to us.
        conn.close_holding_claim(false);
    }
    disconnect(&conn, &mut lock(&conn.work));
}

/// Step 4 of the module header: `on_disconnect`, then every buffer back to the pool.
fn disconnect<S: Send + 'static>(conn: &Arc<Conn<S>>, work: &mut Work<S>) {
    // Bytes the poller read after the handler last took them (a close while it ran): still
    // readable, as `on_disconnect`'s doc says (before, they were dropped unseen; review,
    // session 25).
    let inbox = lock(&conn.st).take_inbox();
    work.input.append(inbox);
    if let (Some(user), Some(d)) = (work.user.take(), &conn.lp.callbacks.disconnect) {
        let gone = Disconnected(&**conn);
        let mut c = Connection::new(&gone, &mut work.input);
        let _ = guarded(|| d(&mut c, user));
    }
    work.input = LinkBuffer::new();
    lock(&conn.st).inbox = LinkBuffer::new();
    *lock(&conn.out) = LinkBuffer::new();
    conn.out_len.store(0, Release);
    conn.lp.remove(conn.id, conn.worker);
}

/// The connection as `on_disconnect` sees it: closed, whoever closed it. Its input is still
/// readable; its writes fail. Through the connection itself, a write in the moment between
/// another thread's close and its teardown (a timer, a forced close) reached the socket, and
/// one after a drain's close could be reset away having reported success (review, session
/// 34).
struct Disconnected<'a, S: Send + 'static>(&'a Conn<S>);

impl<S: Send + 'static> ConnIo for Disconnected<'_, S> {
    fn id(&self) -> u64 {
        self.0.id
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.0.fd.as_fd()
    }

    fn flush_out(&self, w: &mut LinkBuffer) -> io::Result<()> {
        w.flush();
        if w.is_empty() {
            return Ok(()); // nothing to write, as the connection's own
        }
        *w = LinkBuffer::new();
        Err(closed_error())
    }

    fn pull(&self, input: &mut LinkBuffer, n: usize) -> io::Result<usize> {
        self.0.pull(input, n)
    }

    fn close_soon(&self) {}

    fn is_active(&self) -> bool {
        false
    }
}

impl<S: Send + 'static> ConnIo for Conn<S> {
    fn id(&self) -> u64 {
        self.id
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn flush_out(&self, w: &mut LinkBuffer) -> io::Result<()> {
        self.queue_out(w, true)
    }

    fn pull(&self, input: &mut LinkBuffer, n: usize) -> io::Result<usize> {
        let limit = self.lp.config.input_limit;
        if n > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "gorust::eventloop: wait_input for more than the input limit",
            ));
        }
        let deadline = self.read_deadline();
        let mut pulled = 0;
        loop {
            {
                let mut st = lock(&self.st);
                let inbox = st.take_inbox();
                pulled += inbox.len();
                input.append(inbox);
                st.input_len = input.len();
                self.update_read(&mut st);
                if input.len() >= n {
                    return Ok(pulled);
                }
                if st.closed {
                    return Err(closed_error());
                }
                if st.eof {
                    // The handler has seen the end: no extra run for it (`grant_end_run`).
                    st.end_offered = true;
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
            park_once(&self.data, &self.ended, deadline, || false)?;
        }
    }

    fn close_soon(&self) {
        lock(&self.st).draining = true;
    }

    fn is_active(&self) -> bool {
        !self.torn()
    }
}

/// Parks the handler on `slot` once: until it is ready, `stop` is set, `done` holds, or
/// `deadline` (`TimedOut`). May return early; callers re-check their condition and call
/// again.
pub(crate) fn park_once(
    slot: &WaitSlot,
    stop: &AtomicBool,
    deadline: Option<Instant>,
    done: impl Fn() -> bool + Unpin,
) -> io::Result<()> {
    if stop.load(Acquire) {
        return Ok(());
    }
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return Err(timed_out());
    }
    crate::block_on(SlotWait {
        slot,
        stop,
        done,
        sleep: deadline.map(Sleep::until),
    });
    Ok(())
}

/// Readiness of a slot, a stop flag, the caller's own condition, or a deadline.
pub(super) struct SlotWait<'a, D> {
    pub(super) slot: &'a WaitSlot,
    pub(super) stop: &'a AtomicBool,
    pub(super) done: D,
    pub(super) sleep: Option<Sleep>,
}

impl<D: Fn() -> bool + Unpin> Future for SlotWait<'_, D> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let (stop, done) = (this.stop, &this.done);
        // No edge snapshot (`WaitSlot::poll_ready`). A waiter that consumes READY takes what
        // it announced where one waiter gains from it (the claim, the input: their next
        // change signals again); where several wait for one state (room below the output
        // limit, for every sender), `done` is that state: a sender that lost READY to another
        // would wait again for a signal no write will send.
        //
        // `done` is read twice: under the slot's lock before registering, and again after.
        // The first read alone is not enough, because the writer signals without that lock
        // (it stores `out_len`, then swaps READY, and takes the lock only if it saw WAITING):
        // a sender could read `done` before the store, see READY taken by another sender,
        // and register after the one swap. After registering (WAITING, `SeqCst`), either the
        // writer's swap sees WAITING and wakes us, or it came first and so did its store,
        // which the second read (`SeqCst`) sees. Loom model
        // `loom_eventloop_every_sender_past_the_output_limit_returns` (found session 20).
        let ended = || stop.load(Acquire) || done();
        if this.slot.poll_ready(cx, None, ended).is_ready() || ended() {
            return Poll::Ready(());
        }
        let timed_out = this
            .sleep
            .as_mut()
            .is_some_and(|s| Pin::new(s).poll(cx).is_ready());
        if !timed_out {
            return Poll::Pending;
        }
        // Over at the deadline, registered: the waker leaves the slot, as a netpoll wait's
        // does (`WaitSlot::forget`). Left there until the next signal, it kept its task, and
        // each timed-out `call_timeout` of a claim held long added one (review, session 34). A
        // stop comes with a wake-up of every waiter (teardown), and `done` with the signal
        // that changed it, which empty the list themselves.
        this.slot.forget(cx.waker());
        Poll::Ready(())
    }
}

impl<S: Send + 'static> Conn<S> {
    /// Closes after a failed write. The claim's holder (a handler, a client's `call`)
    /// disconnects itself; a writer without the claim (a client's `send`) takes it here and
    /// starts the disconnect.
    fn fail_now(&self) {
        // Off the lock: a refused handler goroutine disconnects where it is dropped (`Claim`).
        let closing = self.close_locked(&mut lock(&self.st));
        match closing.by {
            CloseBy::Nobody => {}
            CloseBy::Handler => self.teardown(closing.cut),
            CloseBy::Caller => {
                self.teardown(closing.cut);
                // The registry holds the connection until its disconnect, which is ours.
                if let Some(c) = self.lp.find(self.id) {
                    spawn(c);
                }
            }
        }
    }

    /// Writes `w` out, or queues what the socket does not take for the poller, then waits
    /// while the output is past the limit. `claimed`: the caller holds the claim (a handler's
    /// or a call's `flush`), whose wait a running `call_timeout` bounds too; else a
    /// `ClientConn::send` from any goroutine.
    pub(crate) fn queue_out(&self, w: &mut LinkBuffer, claimed: bool) -> io::Result<()> {
        w.flush();
        if w.is_empty() {
            return Ok(());
        }
        if self.torn() {
            *w = LinkBuffer::new();
            return Err(closed_error());
        }
        {
            let mut out = lock(&self.out);
            // A sender without the claim checks the close under `out`, which the poller's
            // drain holds while it decides to close (`write_out`, `State::drained`): after
            // that decision, its bytes would be written or queued, reported sent, and then
            // reset away by the teardown (review, session 34). The claim's holder need not: a
            // drain waits for it, and any other close cuts its answer anyway.
            if !claimed && lock(&self.st).closed {
                drop(out);
                *w = LinkBuffer::new();
                return Err(closed_error());
            }
            if out.is_empty() {
                while !w.is_empty() {
                    match w.write_to_fd(self.fd.as_fd()) {
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            drop(out);
                            *w = LinkBuffer::new();
                            self.fail_now();
                            return Err(e);
                        }
                    }
                }
                self.touch();
                if w.is_empty() {
                    return Ok(());
                }
            }
            out.append(std::mem::take(w));
            self.out_len.store(out.len(), Release);
            self.output_pending_since();
            self.want_write();
        }
        if let Some(wt) = self.lp.config.write_timeout {
            super::timer::arm_for(self, crate::time::deadline_in(wt));
        }
        let limit = self.lp.config.output_limit;
        if self.out_len.load(Acquire) <= limit {
            return Ok(());
        }
        // The running `call_timeout`'s deadline is its claim holder's; another goroutine's
        // `send` has the write timeout alone (it timed out at the call's deadline; review,
        // session 34).
        let deadline = if claimed {
            self.write_deadline()
        } else {
            self.lp.config.write_timeout.map(crate::time::deadline_in)
        };
        let below = || self.out_len.load(Acquire) <= limit;
        while !below() {
            if self.torn() {
                // The connection's write timer (counting from the first pending byte) may
                // close it before this flush's own deadline: the same timeout (before, this
                // said `ErrClosed`; review, session 25).
                return Err(if self.write_timed_out.load(Acquire) {
                    timed_out()
                } else {
                    closed_error()
                });
            }
            park_once(&self.drain, &self.torn, deadline, below)?;
        }
        Ok(())
    }

    /// The claim was released: wake a client's `call` waiting for it (`dial.rs`).
    pub(crate) fn released(&self) {
        let mut w = Vec::new();
        self.unclaimed.set_ready(&mut w);
        w.into_iter().for_each(Waker::wake);
    }

    /// When a `wait_input` started now gives up: the read timeout, or the deadline of a
    /// client's `call_timeout` if that is earlier.
    pub(crate) fn read_deadline(&self) -> Option<Instant> {
        self.or_call_deadline(self.lp.config.read_timeout)
    }

    /// When a `flush` waiting for room started now gives up: the write timeout, or the
    /// deadline of a client's `call_timeout` if that is earlier. With the write timeout alone
    /// (none by default), a call whose peer stopped reading outlived its time limit for good,
    /// which promises to bound the whole exchange (review, session 31).
    fn write_deadline(&self) -> Option<Instant> {
        self.or_call_deadline(self.lp.config.write_timeout)
    }

    /// `timeout` from now, or the running `call_timeout`'s deadline if earlier.
    fn or_call_deadline(&self, timeout: Option<std::time::Duration>) -> Option<Instant> {
        let by_timeout = timeout.map(crate::time::deadline_in);
        match self.call_deadline.load(Relaxed) {
            0 => by_timeout,
            ns => {
                let at = self.lp.instant(ns);
                Some(by_timeout.map_or(at, |d| d.min(at)))
            }
        }
    }

    fn torn(&self) -> bool {
        self.torn.load(Acquire)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    use super::park_once;
    use crate::netpoll::slot::WaitSlot;

    /// A wait that ends at its deadline leaves no waker in the slot.
    #[test]
    fn a_timed_out_wait_leaves_no_waker_behind() {
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        rt.run(|| {
            let (slot, stop) = (WaitSlot::new(), AtomicBool::new(false));
            let deadline = Instant::now() + Duration::from_millis(10);
            while park_once(&slot, &stop, Some(deadline), || false).is_ok() {}
            assert_eq!(slot.waiter_count(), 0, "the waker stayed in the slot");
        });
    }
}
