//! One event-loop connection, and its poller side: reading into the inbox, writing pending
//! output, interest changes and closing.
//!
//! The connection is a level-triggered slab entry of one worker's poller. `dispatch` calls
//! [`LevelSource::ready`] under the slab lock (an atomic `fetch_or`, nothing else) and queues
//! the connection's waker; [`Conn::on_wake`] then runs on the thread that polled (the worker,
//! or the monitor thread for a stuck worker) with no lock held, and does the system calls:
//!
//! - writable: write the pending output (`writev`); once it is empty, remove write interest,
//!   wake a handler waiting for room, and finish a close that waited for it;
//! - readable: one read of at most `min(READ_MAX, room under the input limit, the read plan)`
//!   bytes into the inbox (`State::read_size`); start a handler if none is in flight; at the
//!   limit, remove read interest; at the peer's FIN (read returns 0), remove it too
//!   (level-triggered, it would fire forever);
//! - an error: a read error closes, and so does `EPOLLERR` where the read finds nothing (an
//!   error-queue entry) or, with output pending, no read is wanted (at the input limit: the
//!   write meets the error). A hang-up, or an error with data still queued, is read on like
//!   any readable socket, so the data the peer sent before it closed or reset reaches the
//!   handler (`read_in`); at the input limit with nothing to write, the connection is hushed
//!   until the handler consumes, and then read on.
//!
//! Both pollers may run `on_wake` for one connection at the same time (the worker and the
//! monitor); every step is under the connection's locks, so the second finds nothing to do.
//!
//! Closing (`close_now`, or a handler ending with `Next::Close`): whoever sets `closed` under
//! `st` takes the descriptor out of the poller and shuts the socket down (so the peer sees
//! the close at once, and a parked handler wakes); the holder of the claim runs the
//! disconnect (`handler::disconnect`). The descriptor itself is closed when the last `Arc`
//! goes, so no handler can write to a reused descriptor number. A close after the output was
//! written (`teardown_gracefully`) shuts down only the write side, and the socket then
//! lingers at that last drop (`linger`: read and drop what the peer still sends, up to
//! `LINGER`), so that late input does not reset it and cut the answer short; not once the
//! peer has finished (nothing more can come), nor with output left unwritten (the cut
//! answer must not end in a FIN, as if whole: a TCP connection is then reset at once, see
//! `teardown`). A dialed connection's socket lingers too, from the drop of its `ClientConn`.

use std::io::{self, Read};
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Wake, Waker};

use super::serve::Shared;
use super::state::{CloseBy, Pending, State};
use super::timer::Armed;
use crate::buffer::LinkBuffer;
use crate::netpoll::poller::LevelSource;
use crate::netpoll::slot::WaitSlot;
use crate::netpoll::Poller;
use crate::sys::epoll::{Interest, Readiness};

/// The most one read takes (also bounded by the room under the input limit).
pub(crate) const READ_MAX: usize = 64 << 10;

/// The handler-side half: touched only by the holder of the claim (`State::running`).
pub(crate) struct Work<S> {
    pub(crate) input: LinkBuffer,
    pub(crate) user: Option<S>,
}

pub(crate) struct Conn<S> {
    pub(crate) id: u64,
    /// Closed, or handed to [`linger`], when the connection is dropped (`Drop`).
    pub(crate) fd: ManuallyDrop<OwnedFd>,
    /// [`LINGERS`] (set by `teardown_gracefully`: the drop lingers instead of closing) and
    /// [`UNHELD`] (no `ClientConn` holds the connection); the loop counts the socket as
    /// lingering from when both are set (`mark`).
    linger: AtomicU8,
    /// Index of the worker whose poller holds the registration.
    pub(crate) worker: usize,
    poller: Arc<Poller>,
    /// Slab token; written once before the descriptor is added to epoll.
    token: AtomicU64,
    pub(crate) lp: Arc<Shared<S>>,
    pending: Pending,
    pub(crate) st: Mutex<State>,
    /// Set (before waking `data`/`drain` waiters) when the peer finished or it closed.
    pub(crate) ended: AtomicBool,
    /// Woken when bytes arrive or the input ends (handler in `wait_input`).
    pub(crate) data: WaitSlot,
    /// Woken when pending output is written (handler in `flush` past the output limit).
    pub(crate) drain: WaitSlot,
    /// Woken when the claim is released or the connection torn down (a client's `call`
    /// waiting for a handler to finish, `dial.rs`).
    pub(crate) unclaimed: WaitSlot,
    /// Output the socket did not take yet; the poller writes it when writable.
    pub(crate) out: Mutex<LinkBuffer>,
    pub(crate) out_len: AtomicUsize,
    /// Nanoseconds since the loop's base of the last read or write.
    pub(crate) last_active: AtomicU64,
    /// When output became pending (ns since the base, 0: none pending).
    pub(crate) write_since: AtomicU64,
    /// Set by `teardown`: out of the poller, socket shut down.
    pub(crate) torn: AtomicBool,
    /// Set (before the close) when the write timeout closed the connection: a `flush`
    /// waiting for room then fails with `TimedOut`, as documented, not `ErrClosed`.
    pub(crate) write_timed_out: AtomicBool,
    /// The armed timer (`timer.rs`), cancelled by `teardown`: its waker holds a `Weak` of
    /// this connection, which would keep the allocation until the timer fired.
    pub(crate) timer: Mutex<Armed>,
    /// The deadline of a client's `call_timeout` in flight (ns since the loop's base, 0:
    /// none). Written and read only by the claim's holder, so relaxed.
    pub(crate) call_deadline: AtomicU64,
    pub(crate) work: Mutex<Work<S>>,
}

/// What a close asks of its caller ([`Conn::close_locked`]): who disconnects, and whether the
/// socket ends with a reset because output was left unwritten.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Closing {
    pub(crate) by: CloseBy,
    pub(crate) cut: bool,
}

/// Locks, ignoring poisoning: a panicking handler is caught before it can leave these
/// half-updated (the state machine is updated only by the runtime's code).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<S: Send + 'static> Conn<S> {
    pub(crate) fn new(
        id: u64,
        fd: OwnedFd,
        worker: usize,
        poller: Arc<Poller>,
        lp: Arc<Shared<S>>,
        dialed: bool,
    ) -> Conn<S> {
        let now = lp.now_ns();
        Conn {
            id,
            fd: ManuallyDrop::new(fd),
            // A dialed connection is held by its `ClientConn` until that is dropped.
            linger: AtomicU8::new(if dialed { 0 } else { UNHELD }),
            worker,
            poller,
            token: AtomicU64::new(0),
            lp,
            pending: Pending::new(),
            st: Mutex::new(State {
                read_on: true,
                running: true, // on_connect runs first, holding the claim
                ..State::default()
            }),
            ended: AtomicBool::new(false),
            data: WaitSlot::new(),
            drain: WaitSlot::new(),
            unclaimed: WaitSlot::new(),
            out: Mutex::new(LinkBuffer::new()),
            out_len: AtomicUsize::new(0),
            last_active: AtomicU64::new(now),
            write_since: AtomicU64::new(0),
            torn: AtomicBool::new(false),
            write_timed_out: AtomicBool::new(false),
            timer: Mutex::new(Armed::default()),
            call_deadline: AtomicU64::new(0),
            work: Mutex::new(Work {
                input: LinkBuffer::new(),
                user: None,
            }),
        }
    }

    /// Puts the connection in its poller's slab and epoll, reading.
    pub(crate) fn register(self: &Arc<Self>) -> io::Result<()> {
        let waker = Waker::from(self.clone());
        let tok = self
            .poller
            .insert_level(self.clone() as Arc<dyn LevelSource>, waker);
        self.token.store(tok, Release);
        self.poller
            .add_level(self.fd.as_raw_fd(), Interest::READABLE, tok)
    }

    pub(crate) fn touch(&self) {
        // Only the idle timer reads it: without one, skip the clock (a read of it was ~2% of
        // the echo server's CPU at 1,000 connections, three per request).
        if self.lp.config.idle_timeout.is_some() {
            self.last_active.store(self.lp.now_ns(), Relaxed);
        }
    }

    /// Brings epoll's interest in line with `st` (read on while below the limit, write on
    /// while output is pending). A descriptor whose peer hung up reports `EPOLLHUP` at every
    /// poll whatever its interest: while it wants nothing, it is hushed (`muted`: one-shot
    /// with no interest, `Interest::HUSHED`), and it is re-armed when it wants something
    /// again (the handler consumed input at the limit); `read_in` ignores the one report a
    /// hushed registration may still give. It used to leave epoll and come back with
    /// `EPOLL_CTL_ADD`, which can fail for lack of memory, and a connection that failed it
    /// stayed out of epoll, never read or closed (session 35).
    fn set_interest(&self, st: &mut State, write: bool) {
        let read = st.wants_read(self.lp.config.input_limit);
        let mute = st.hup && !read && !write;
        if st.closed || (read == st.read_on && write == st.write_on && mute == st.muted) {
            return;
        }
        st.read_on = read;
        st.write_on = write;
        let i = match (mute, read, write) {
            (true, _, _) => Interest::HUSHED,
            (false, true, true) => Interest::READABLE.and(Interest::WRITABLE),
            (false, true, false) => Interest::READABLE,
            (false, false, true) => Interest::WRITABLE,
            (false, false, false) => Interest::NONE,
        };
        let (fd, tok) = (self.fd.as_raw_fd(), self.token.load(Acquire));
        // `EPOLL_CTL_MOD` allocates nothing: it fails only for a descriptor that is not
        // registered, and this one is until `closed` is set, under `st`, as here.
        let _ = self.poller.modify(fd, i, tok);
        st.muted = mute;
    }

    /// Re-checks read interest after the handler reported its input (`st.input_len`).
    pub(crate) fn update_read(&self, st: &mut State) {
        let write = st.write_on;
        self.set_interest(st, write);
    }

    /// Arms write interest (output was handed to the poller). Called with `out` locked.
    pub(crate) fn want_write(&self) {
        let mut st = lock(&self.st);
        self.set_interest(&mut st, true);
    }

    /// The poller side; see the module header.
    fn on_wake(self: &Arc<Self>) {
        let r = self.pending.take();
        // A reset or a hang-up is read before it is written to: what the peer sent before it
        // is still queued, and a write first met the error, closed, and dropped those bytes
        // unread (review, session 34). Otherwise writing first frees output for the handler.
        let read_first = r.is_error() || r.is_hangup();
        // And while that read brings bytes, nothing is written: one read takes 4–64 KiB, and
        // a write after it would meet the error and close with the rest unread. The descriptor
        // is level-triggered, so the next poll reports the error again, until a read returns
        // it (or 0) and the write may go.
        if read_first && r.is_readable() && self.read_in(r.is_hangup(), r.is_error()) {
            return;
        }
        if r.is_writable() {
            self.write_out();
        }
        if !read_first && r.is_readable() {
            self.read_in(false, false);
        }
    }

    /// Reads what arrived. A hang-up is read on like any readable socket: the data the peer
    /// sent before it closed reaches the handler, and the read that returns 0 ends the input
    /// (`eof`). So is an error (`EPOLLERR`) while reading is wanted: the read that returns the
    /// error closes. (Before, a Unix-socket peer that wrote and closed, reported as one
    /// `EPOLLIN|EPOLLHUP`, was closed with its last data unread by any handler; session 20.
    /// A reset peer's last data, session 31.) `true`: bytes were read, and the connection
    /// is open.
    fn read_in(self: &Arc<Self>, hangup: bool, error: bool) -> bool {
        let limit = self.lp.config.input_limit;
        let mut st = lock(&self.st);
        // Hushed, the connection wants nothing, and the one report a hushed registration may
        // still give is the hang-up or reset that was pending when it was hushed, not news:
        // the state stays as the hush left it. (A first version took it for a new error at
        // the input limit and closed with the peer's last bytes unread; review, session 35.)
        if st.closed || st.muted {
            return false;
        }
        st.hup |= hangup;
        let mut start = false;
        // An error closes at once only where nothing is read: where a read is wanted, the
        // read decides. A peer's reset leaves what it sent before it queued and readable (the
        // kernel reports the reset only once that is read), and a reply longer than one read
        // lost its rest when the first `EPOLLERR` closed the connection (review, session 31;
        // as a hang-up since session 20). Level-triggered, the error is reported again until
        // a read returns it. Where no read is wanted (at the input limit) and no output is
        // pending, the connection is hushed (`set_interest`: the error counts as a hang-up)
        // until the handler consumes, and the read then decides too; closed at once, as
        // until session 35, it lost what the peer sent before a reset that came while the
        // handler was behind. With output pending, the write meets the error and closes.
        let read = st.wants_read(limit);
        let mut fail = error && !read && st.write_on;
        let mut got = false;
        let mut bytes = false;
        if read {
            let max = st.read_size(limit);
            match st.inbox.read_from_fd(self.fd.as_fd(), max) {
                Ok(0) => {
                    st.eof = true;
                    got = true;
                }
                Ok(n) => {
                    st.learn_read(max, n);
                    got = true;
                    bytes = true;
                    start = st.arrived();
                }
                // An error reported with nothing to read (an error-queue entry, which no read
                // takes): close, as before, rather than be told again at every poll.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => fail = error,
                Err(_) => fail = true,
            }
        }
        let write = st.write_on;
        self.set_interest(&mut st, write);
        let eof = st.eof;
        // The peer finished and no handler is in flight. Input a run left unconsumed (a
        // message that may end at the FIN) gets one more run, which finds the end of the
        // stream (`wait_input` says so) and may still answer; the close follows it. Before,
        // the connection closed here, unanswered, unless the FIN happened to come while the
        // handler was parked in `wait_input` (review, session 34). With nothing left to
        // answer: close once output is written (`write_out` does it then, through
        // `State::drained`).
        if eof && !fail && !st.running {
            if st.grant_end_run() && st.start() {
                start = true;
            } else if self.out_len.load(Acquire) == 0 {
                let closing = self.close_locked(&mut st);
                drop(st);
                self.closed_by(closing);
                return false;
            }
        }
        drop(st);
        if got {
            self.touch();
            if eof {
                self.ended.store(true, Release);
            }
            let mut w = Vec::new();
            self.data.set_ready(&mut w);
            w.into_iter().for_each(Waker::wake);
        }
        if fail {
            if start {
                // The data took the claim for a handler that will not run now: the claim is
                // ours, so the disconnect is too. (`close_now` would have left it to that
                // handler, and nobody would have run it; review, session 8.)
                self.close_holding_claim(false);
                super::handler::spawn(self.clone());
            } else {
                self.close_now();
            }
        } else if start {
            super::handler::spawn(self.clone());
        }
        bytes && !fail
    }

    /// Writes pending output (the poller side of `flush`).
    fn write_out(self: &Arc<Self>) {
        let mut out = lock(&self.out);
        let mut fail = false;
        let mut wrote = false;
        while !out.is_empty() {
            match out.write_to_fd(self.fd.as_fd()) {
                Ok(_) => wrote = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    fail = true;
                    break;
                }
            }
        }
        self.out_len.store(out.len(), Release);
        let empty = out.is_empty();
        let mut st = lock(&self.st);
        if st.closed {
            return;
        }
        let mut close = false;
        if empty {
            self.write_since.store(0, Relaxed);
            self.set_interest(&mut st, false);
            close = st.drained();
        } else if wrote && self.lp.config.write_timeout.is_some() {
            // The write timeout counts from the last byte the socket took, as nginx's
            // `send_timeout`: a peer reading steadily is not cut off because its answer is
            // long. Counted from the first pending byte, a 100 MB download at 10 MB/s was
            // reset after the timeout (review, session 32).
            self.write_since.store(self.lp.now_ns().max(1), Relaxed);
        }
        drop(st);
        drop(out);
        if wrote {
            self.touch();
            let mut w = Vec::new();
            self.drain.set_ready(&mut w);
            w.into_iter().for_each(Waker::wake);
        }
        if close {
            // The output is written: a graceful close (the disconnect is ours).
            self.teardown_gracefully();
            super::handler::spawn(self.clone());
        } else if fail {
            self.close_now();
        }
    }

    /// Closes a connection whose claim the caller holds: tears it down unless another thread
    /// closed it first (and tore it down then), and leaves the disconnect to the caller.
    /// `abandon`: what the caller wrote is dropped, whatever of it reached the socket, so a
    /// TCP connection is reset (a failed `ClientConn::call`); else output left unwritten
    /// alone decides.
    pub(crate) fn close_holding_claim(&self, abandon: bool) {
        let mut closing = self.close_locked(&mut lock(&self.st));
        closing.cut |= abandon && !is_unix(&self.fd);
        if closing.by == CloseBy::Handler {
            self.teardown(closing.cut);
        }
    }

    /// Closes now: deregisters, and disconnects here or leaves that to the running handler.
    /// A handler still running has its answer cut short, whatever it has written so far: a
    /// TCP connection is reset. Before, only output left in the buffer counted, and a handler
    /// that had flushed part of its answer straight to the socket, then been forced closed at
    /// the loop's shutdown, ended it with a FIN, as whole (review, session 32).
    pub(crate) fn close_now(self: &Arc<Self>) {
        let mut st = lock(&self.st);
        let running = st.running;
        let mut closing = self.close_locked(&mut st);
        drop(st);
        closing.cut |= running && !is_unix(&self.fd);
        self.closed_by(closing);
    }

    /// Sets `closed` ([`State::close`]) under `st`, which the caller holds, and decides there
    /// whether the close cuts the output short. Decided after the lock, a handler that saw
    /// `closed` meanwhile could disconnect and empty its output first, and a cut answer ended
    /// in a FIN, as whole (review, session 30).
    pub(crate) fn close_locked(&self, st: &mut State) -> Closing {
        Closing {
            by: st.close(),
            cut: self.cuts_output(),
        }
    }

    /// Output is left unwritten, on a socket that can say so with a reset.
    fn cuts_output(&self) -> bool {
        self.out_len.load(Acquire) > 0 && !is_unix(&self.fd)
    }

    /// The caller set `closed`; `closing` says who disconnects and how the socket ends.
    pub(crate) fn closed_by(self: &Arc<Self>, closing: Closing) {
        self.ended_by(closing, || self.teardown(closing.cut));
    }

    /// [`closed_by`](Self::closed_by) for an idle connection (no handler running, no output
    /// pending, both read under `st` with the close): the graceful teardown, as after a
    /// drain. Its last answer may still sit in the kernel's send buffer for a slow reader; shut
    /// down both ways, the socket answered the peer's next bytes (a pipelined request, a
    /// keep-alive probe) with a reset, which threw that answer's tail away (review, session
    /// 32). For the loop's shutdown and the idle timeout.
    pub(crate) fn closed_idle_by(self: &Arc<Self>, closing: Closing) {
        self.ended_by(closing, || self.teardown_gracefully());
    }

    fn ended_by(self: &Arc<Self>, closing: Closing, teardown: impl FnOnce()) {
        match closing.by {
            CloseBy::Nobody => {}
            CloseBy::Handler => teardown(),
            CloseBy::Caller => {
                teardown();
                super::handler::spawn(self.clone());
            }
        }
    }

    /// Out of the poller, socket shut down, waiters woken. Once, by whoever set `closed`.
    ///
    /// With output left unwritten (the write timeout, the input limit, a forced close at the
    /// loop's shutdown), the answer is cut short, and a FIN after what the kernel holds would
    /// pass it to the peer as whole. A TCP connection is then reset at once
    /// (`sys::socket::abort`), which also drops what the kernel has not sent; the descriptor
    /// stays open until the last handle goes, as always. Before, only a close with unread
    /// input reset the connection, and only when the descriptor closed; a write timeout's cut
    /// ended in a clean FIN (review, session 28). A Unix socket has no reset: shut down both
    /// ways.
    ///
    /// `cut`: output was left unwritten when `closed` was set ([`close_locked`]).
    ///
    /// [`close_locked`]: Self::close_locked
    pub(crate) fn teardown(&self, cut: bool) {
        self.teardown_with(if cut {
            End::Reset
        } else {
            End::Shutdown(std::net::Shutdown::Both)
        });
    }

    /// [`teardown`](Self::teardown) for a close after the output was written (the handler's
    /// `close`, a drain): only the write side is shut down, and the socket lingers when the
    /// connection goes (see [`linger`]). A socket closed with input nobody read, or that
    /// receives some after its close, resets the connection (TCP sends a reset instead of a
    /// FIN and throws away what it has not sent yet; a Unix peer's next read fails): a peer
    /// that sent a request body the handler skipped, or pipelined a request behind the last
    /// answer, lost the end of that answer (review, session 25).
    ///
    /// Not when output is left unwritten (the close at the input limit): that answer is cut
    /// short whatever happens, and a FIN after it would present it as whole; the socket is
    /// torn down at once, with a reset ([`teardown`](Self::teardown); review, session 26).
    /// Nor does a socket linger whose peer has finished (its FIN was read): nothing more can
    /// arrive, and the goroutine would only wait out the peer.
    pub(crate) fn teardown_gracefully(&self) {
        if self.out_len.load(Acquire) > 0 {
            return self.teardown(self.cuts_output());
        }
        self.teardown_with(End::Shutdown(std::net::Shutdown::Write));
        if !lock(&self.st).eof {
            self.mark(LINGERS);
        }
    }

    fn teardown_with(&self, how: End) {
        self.torn.store(true, Release);
        // After `torn`, under the lock `timer::arm` stores under: an entry armed concurrently
        // is either taken here or cancelled by `arm` itself.
        if let Some(t) = lock(&self.timer).take() {
            t.cancel();
        }
        self.ended.store(true, Release);
        self.poller
            .deregister(self.fd.as_raw_fd(), self.token.load(Acquire));
        let _ = match how {
            End::Shutdown(how) => socket2::SockRef::from(&*self.fd).shutdown(how),
            End::Reset => crate::sys::socket::abort(self.fd.as_raw_fd()),
        };
        self.data.wake_all();
        self.drain.wake_all();
        self.unclaimed.wake_all();
    }

    /// When output became pending; records now if none was.
    pub(crate) fn output_pending_since(&self) {
        let _ = self
            .write_since
            .compare_exchange(0, self.lp.now_ns().max(1), Relaxed, Relaxed);
    }
}

/// `Conn::linger`: the socket lingers when the connection goes.
const LINGERS: u8 = 1;
/// `Conn::linger`: no `ClientConn` holds the connection (from the start for an accepted one).
const UNHELD: u8 = 2;

/// How a teardown ends the connection for the peer.
enum End {
    /// A FIN (the write side), or none for the read side alone.
    Shutdown(std::net::Shutdown),
    /// A reset, now (`sys::socket::abort`).
    Reset,
}

/// How long a gracefully closed TCP socket goes on reading (and dropping) what its peer sends,
/// so that bytes the peer sent before it saw the close do not reset it: Go's `net/http` waits
/// as long (`rstAvoidanceDelay`).
const LINGER: std::time::Duration = std::time::Duration::from_millis(500);

/// Keeps a gracefully closed socket (TCP or Unix) open for up to [`LINGER`], reading and
/// dropping until the peer finishes, on a goroutine of `rt` that owns the descriptor from
/// here; then closes it. Where the runtime takes no goroutine any more (its shutdown), closes
/// it now. `lingering` is counted until then.
fn linger(rt: &crate::sched::Handle, fd: OwnedFd, lingering: Lingering) {
    let unix = is_unix(&fd);
    crate::goroutine::go_on(rt, move || {
        let _lingering = lingering;
        let until = Some(crate::time::deadline_in(LINGER));
        if unix {
            let s = crate::net::UnixStream::from(fd);
            if s.set_read_deadline(until).is_ok() {
                read_until_done(&s);
            }
        } else {
            let s = crate::net::TcpStream::from(fd);
            if s.set_read_deadline(until).is_ok() {
                read_until_done(&s);
            }
        }
    });
}

/// Whether the connection's socket is a Unix one (otherwise TCP: the loop serves and dials
/// nothing else).
fn is_unix(fd: &OwnedFd) -> bool {
    socket2::SockRef::from(fd)
        .local_addr()
        .is_ok_and(|a| a.domain() == socket2::Domain::UNIX)
}

/// Reads and drops until the end of input, an error or the read deadline.
fn read_until_done(mut r: impl Read) {
    let mut buf = [0u8; 4096];
    while matches!(r.read(&mut buf), Ok(1..)) {}
}

/// One lingering socket, counted in the loop's `lingering` (`Conn::mark`); the count goes
/// down when this is dropped (the lingering goroutine ends, or is never started).
struct Lingering(Arc<AtomicUsize>);

impl Drop for Lingering {
    fn drop(&mut self) {
        self.0.fetch_sub(1, AcqRel);
    }
}

impl<S> Conn<S> {
    /// Sets `bit` of `linger`; the call that completes [`LINGERS`] | [`UNHELD`] counts the
    /// socket in the loop's `lingering`, once. Counted from the graceful close, not from the
    /// drop, so that `EventLoop::shutdown` cannot see the connection gone and nothing
    /// lingering in between (`Drop` takes the count over); but a dialed connection only once
    /// its `ClientConn` is gone too, since a held handle may outlive the shutdown, which
    /// waited out its whole grace for it (review, session 28).
    fn mark(&self, bit: u8) {
        let prev = self.linger.fetch_or(bit, AcqRel);
        if prev & bit == 0 && (prev | bit) & (LINGERS | UNHELD) == LINGERS | UNHELD {
            self.lp.lingering.fetch_add(1, AcqRel);
        }
    }

    /// The `ClientConn` holding this dialed connection is being dropped.
    pub(crate) fn handle_dropped(&self) {
        self.mark(UNHELD);
    }
}

impl<S> Drop for Conn<S> {
    fn drop(&mut self) {
        // SAFETY: taken once, here, as the connection goes; nothing touches `fd` after.
        let fd = unsafe { ManuallyDrop::take(&mut self.fd) };
        // No handle can hold it any more (counted now, if it lingers and was not yet).
        self.mark(UNHELD);
        if *self.linger.get_mut() & LINGERS == 0 {
            return drop(fd);
        }
        let lingering = Lingering(self.lp.lingering.clone());
        match self.lp.runtime_if_set() {
            Some(rt) => linger(rt, fd, lingering),
            None => drop((fd, lingering)),
        }
    }
}

impl<S: Send + 'static> LevelSource for Conn<S> {
    fn ready(&self, r: Readiness) -> bool {
        self.pending.add(r)
    }

    /// The runtime shut down: closed now. The disconnect goroutine this starts is refused,
    /// and its claim disconnects in its place (`handler::Claim`).
    fn orphan(self: Arc<Self>) {
        self.close_now();
    }
}

impl<S: Send + 'static> Wake for Conn<S> {
    fn wake(self: Arc<Self>) {
        self.on_wake();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.on_wake();
    }
}
