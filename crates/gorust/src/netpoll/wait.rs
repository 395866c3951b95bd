//! `Registration`: how an I/O object waits on its descriptor.
//!
//! Every socket type owns one. It runs a non-blocking system call until the call stops
//! returning `EAGAIN`, waiting in between:
//!
//! - in a goroutine: on the descriptor's wait slot, registered with the poller of the worker it
//!   runs on (the goroutine's home) the first time it must wait; the goroutine parks;
//! - on a plain thread outside the runtime: in `poll(2)` on that one descriptor, so that
//!   `gorust::net` types also work (blocking the thread) where there is no scheduler;
//! - as a future (`poll_io`): on the wait slot, returning `Pending`.
//!
//! Every parking call (`run`, `ready`, the first attempt of a write) and every poll spends one
//! unit of the cooperative budget (`coop`) before its first attempt: a goroutine whose socket
//! never runs dry never parks, so a spent budget yields it instead (a future's poll returns
//! `Pending` with its task woken, and a poll that ends `Pending` for want of readiness gives
//! its unit back), and the others on its worker run. The one-attempt `try_*` calls do not
//! spend, as in tokio.
//!
//! Deadlines (`set_read_deadline`, and the std-style timeouts built on them) and `close` from
//! another goroutine end a wait early: the setter publishes the change, then wakes the slot's
//! waiters, which re-check it (see `slot.rs`). A deadline gives `ErrorKind::TimedOut` and keeps
//! failing until it is moved; a closed descriptor gives [`closed_error`].

use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::deadline_timer::DeadlineTimers;
use super::desc::{Direction, PollDesc, CLOSING, ORPHANED, STOPS};
use super::poller::Poller;
use super::slot::EdgeMark;
use crate::time::Sleep;

/// Locks that serialise first registrations (`Registration::ensure_registered`), striped by
/// descriptor number: the two threads racing to register one object share a stripe.
static REGISTERING: [std::sync::Mutex<()>; 16] = [const { std::sync::Mutex::new(()) }; 16];

pub(crate) struct Registration {
    fd: RawFd,
    desc: Arc<PollDesc>,
    registered: OnceLock<(Arc<Poller>, u64)>,
    /// For the async face's waits with a deadline (`deadline_timer.rs`).
    deadline_timers: DeadlineTimers,
}

/// The error of an operation on a descriptor closed by another goroutine (`close`):
/// `ErrorKind::NotConnected` wrapping [`crate::net::ErrClosed`] (Go's `net.ErrClosed`).
#[cold]
pub(crate) fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, crate::net::ErrClosed)
}

/// The earlier of two optional deadlines.
#[inline(always)]
fn earlier(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What `poll(2)` asks for a direction.
#[inline(always)]
fn poll_events(dir: Direction) -> libc::c_short {
    match dir {
        Direction::Read => libc::POLLIN | libc::POLLRDHUP,
        Direction::Write => libc::POLLOUT,
    }
}

#[cold]
fn orphaned_error() -> io::Error {
    io::Error::other(
        "gorust::net: this socket is registered with a runtime that has shut down, so nothing \
         would wake a wait on it; create or accept it in the runtime that uses it",
    )
}

#[cold]
pub(crate) fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "i/o timeout")
}

/// Whether a call that moved `n` of a `len`-byte buffer emptied its direction: it came up
/// short (the kernel had no more to give or take). The `*_bytes` calls mark the direction
/// drained on such a result.
#[inline(always)]
fn came_up_short(len: usize) -> impl Fn(&usize) -> bool {
    move |&n| n > 0 && n < len
}

/// How an I/O call waits for readiness (see [`Registration::attempt_bytes`]).
#[derive(Clone, Copy)]
pub(crate) enum Attempt {
    /// Park until the call can complete, bounded by this per-call timeout and the deadline.
    Park(Option<Duration>),
    /// One try; `WouldBlock` if the direction is not ready.
    Once,
}

impl Registration {
    pub(crate) fn new(fd: RawFd) -> Registration {
        Registration {
            fd,
            desc: Arc::new(PollDesc::new()),
            registered: OnceLock::new(),
            deadline_timers: DeadlineTimers::default(),
        }
    }

    pub(crate) fn desc(&self) -> &PollDesc {
        &self.desc
    }

    /// Whether a receive that just said `EAGAIN` should ask the kernel if reading is shut
    /// down (`sys::read_shut_down`, one `poll(2)`). A non-blocking datagram receive, and a
    /// Unix listener's accept, say `EAGAIN` for ever after `shutdown(SHUT_RD)` (by any handle
    /// or process) while the socket polls readable: a goroutine would wait for an edge that
    /// never comes, a plain thread would spin. Where a live poller watches the descriptor,
    /// the shutdown reaches the read slot as a final edge, which wakes the goroutines and
    /// futures waiting there; so for them only an `EAGAIN` with that flag still set asks, and
    /// a datagram server's receive that drained its socket asks nothing. A plain thread asks
    /// at every `EAGAIN` (its `poll(2)` would report the shutdown before any poller has seen
    /// it), as does any call on an unwatched descriptor (before registration, or once its
    /// runtime is gone).
    #[inline]
    fn read_may_be_shut(&self) -> bool {
        let watched = self.registered.get().is_some() && self.desc.flags() & ORPHANED == 0;
        !watched || self.desc.read.final_seen() || crate::sync::on_plain_thread()
    }

    /// A receive's (or a Unix accept's) result, with `end()` in its place if it said
    /// `WouldBlock` because reading is shut down (see `read_may_be_shut`), or Go's
    /// `ErrClosed` if this handle's `close` shut it down while the call was under way.
    #[inline]
    pub(crate) fn or_read_end<T>(
        &self,
        r: io::Result<T>,
        end: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        match r {
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    && self.read_may_be_shut()
                    && crate::sys::socket::read_shut_down(self.fd) =>
            {
                if self.is_closing() {
                    return Err(closed_error());
                }
                end()
            }
            r => r,
        }
    }

    /// Runs `op` until it does not report `WouldBlock`, waiting for `dir` readiness between
    /// attempts. `EINTR` is retried. `timeout` (std's per-call `set_read_timeout`) bounds the
    /// whole call, together with the descriptor's deadline.
    pub(crate) fn io<T>(
        &self,
        dir: Direction,
        timeout: Option<Duration>,
        op: impl FnMut() -> io::Result<T>,
    ) -> io::Result<T> {
        self.run(dir, timeout, op, |_| false)
    }

    /// As [`io`](Self::io), for calls that move bytes (`read`, `write`, …) of a buffer of `len`
    /// bytes: a call that moves fewer marks the direction drained, and the next call waits for
    /// an edge before trying (see `slot.rs`), saving the `EAGAIN` system call.
    #[inline]
    pub(crate) fn io_bytes(
        &self,
        dir: Direction,
        timeout: Option<Duration>,
        len: usize,
        op: impl FnMut() -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.run(dir, timeout, op, came_up_short(len))
    }

    /// Go's `Write` loop, behind `TcpStream::write` and `UnixStream::write`: writes `buf` from
    /// `done` bytes on until all of it is written, parking while the send buffer is full.
    /// `timeout` (std's write timeout) bounds the whole call, as `SO_SNDTIMEO` bounds one
    /// blocking `send`: each wait gets the time left, not the full timeout again (review,
    /// session 24). An error before any byte of this loop's went out is returned; after, the
    /// loop ends with the count and that error, which the caller may keep for its next call.
    /// `short_drains`: a short write proves the send buffer full (TCP), or only `EAGAIN` does.
    pub(crate) fn write_rest(
        &self,
        buf: &[u8],
        mut done: usize,
        timeout: Option<Duration>,
        short_drains: bool,
        mut write: impl FnMut(&[u8]) -> io::Result<usize>,
    ) -> io::Result<(usize, Option<io::Error>)> {
        let deadline = timeout.map(crate::time::deadline_in);
        while done < buf.len() {
            let rest = &buf[done..];
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let wrote = if short_drains {
                self.io_bytes(Direction::Write, left, rest.len(), || write(rest))
            } else {
                self.io(Direction::Write, left, || write(rest))
            };
            match wrote {
                Ok(n) => done += n,
                Err(e) if done == 0 => return Err(e),
                Err(e) => return Ok((done, Some(e))),
            }
        }
        Ok((done, None))
    }

    /// The first attempt of [`io_bytes`](Self::io_bytes), for a caller that keeps the
    /// waiting loop out of line: [`try_io_bytes`](Self::try_io_bytes) unless the direction is
    /// known drained, and `None` where that would say `WouldBlock` (it marked the direction
    /// drained where the poller counts its edges, so `io_bytes` waits for an edge instead of
    /// asking again; for an unwatched write, see [`watch_writes`](Self::watch_writes)). The
    /// per-call timeout cannot have passed yet; the descriptor's deadline and `close` are
    /// checked as `io_bytes` checks them.
    #[inline(always)]
    pub(crate) fn first_attempt_bytes(
        &self,
        dir: Direction,
        len: usize,
        op: impl FnMut() -> io::Result<usize>,
    ) -> Option<io::Result<usize>> {
        crate::coop::spend_or_yield();
        if self.edge_aware() && self.desc.counts_edges(dir) && self.desc.slot(dir).is_drained() {
            return None;
        }
        match self.try_io_bytes(dir, len, op) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            r => Some(r),
        }
    }

    /// Whether the drained mark applies to this call: only a registered descriptor gets
    /// edges, and only goroutines wait on the slot for them.
    #[inline(always)]
    fn edge_aware(&self) -> bool {
        self.registered.get().is_some() && crate::goroutine::in_goroutine()
    }

    /// The loop behind `io` and `io_bytes`, for calls that can tell by their result whether
    /// they drained the direction (`short`): a draining result makes the next call wait for
    /// an edge first. Only where the poller counts the direction's edges (a write slot before
    /// its first wait does not, see `desc.rs`): elsewhere every attempt makes the call.
    #[inline(always)]
    pub(crate) fn run<T>(
        &self,
        dir: Direction,
        timeout: Option<Duration>,
        mut op: impl FnMut() -> io::Result<T>,
        short: impl Fn(&T) -> bool,
    ) -> io::Result<T> {
        crate::coop::spend_or_yield();
        let call_deadline = timeout.map(crate::time::deadline_in);
        let slot = self.desc.slot(dir);
        loop {
            self.check(dir, call_deadline)?;
            let registered = self.registered.get().is_some();
            let edge_aware = registered && crate::goroutine::in_goroutine();
            let counted = edge_aware && self.desc.counts_edges(dir);
            if counted {
                if let Some(now) = slot.drained() {
                    self.wait(dir, call_deadline, Some(now))?;
                    continue;
                }
            }
            // The count before the call, for the wait after an `EAGAIN` to see an edge another
            // waiter took meanwhile (`WaitSlot::poll_ready`). Also before the first wait, which
            // registers: two goroutines woken by one edge, where the one that runs first takes
            // it, left the one that had called before registration parked with data (or a
            // connection) queued (review, session 21). Before registration the count moves
            // only by a synthetic edge or a shutdown, each worth one more call at most.
            let since = (counted || !registered).then(|| slot.edges());
            let edges = since.filter(|_| counted);
            match op() {
                Ok(v) => {
                    if let Some(edges) = edges {
                        slot.note_result(edges, short(&v));
                    }
                    return Ok(v);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if edge_aware && !counted {
                        // An unwatched write: this `EAGAIN` may predate an edge the poller
                        // left out. Watch, and ask once more before waiting.
                        self.watch_writes();
                        continue;
                    }
                    // A final flag in the snapshot was not final (an error-queue `EPOLLERR`,
                    // urgent data since read): the drained marks hold again, as after
                    // `try_run`'s and `poll_run`'s `EAGAIN`.
                    if let Some(edges) = edges {
                        slot.clear_final(edges);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.wait(dir, call_deadline, since)?;
        }
    }

    /// For a write that found the send buffer full and will try again at once (`run` and
    /// `poll_run`, or a caller whose first attempt came up short, before it calls `io_bytes`):
    /// starts watching the write slot, and consumes the watch's synthetic edge, which would
    /// only buy a third call. Consuming readiness right before a call is what every waiter
    /// does; a real edge taken with it is answered by that call.
    pub(crate) fn watch_writes(&self) {
        if self.desc.watch(Direction::Write) {
            self.desc.write.take_ready();
        }
    }

    /// The earlier of the descriptor's deadline and the call's.
    #[inline(always)]
    fn effective(&self, dir: Direction, call_deadline: Option<Instant>) -> Option<Instant> {
        earlier(self.desc.deadline(dir), call_deadline)
    }

    /// Whether `close` has marked the descriptor (calls then fail with [`closed_error`]).
    #[inline(always)]
    pub(crate) fn is_closing(&self) -> bool {
        self.desc.flags() & CLOSING != 0
    }

    /// Takes the descriptor's write lock for a blocking-looking write (`write_lock.rs`),
    /// waiting while another write of this handle holds it: parking the goroutine, or blocking
    /// a plain thread. Released when the guard drops.
    #[inline(always)]
    pub(crate) fn lock_writes(&self) -> WriteGuard<'_> {
        if !self.desc.try_lock_writes() {
            self.lock_writes_contended();
        }
        WriteGuard(&self.desc)
    }

    #[cold]
    #[inline(never)]
    fn lock_writes_contended(&self) {
        crate::block_on(LockWrites {
            desc: &self.desc,
            key: None,
        });
    }

    /// The answer to a call with nothing to move (an empty buffer), which makes no system call:
    /// `Ok(0)` at once, or Go's `ErrClosed` once the descriptor is closed, as Go's `Read` and
    /// `Write` check that first too (review, session 27). Deadlines are not checked: Go's `Read`
    /// does not either, but its `Write` does, so an empty write after the write deadline is
    /// `Ok(0)` here and a timeout in Go.
    #[cold]
    pub(crate) fn nothing_to_move(&self) -> io::Result<usize> {
        if self.is_closing() {
            return Err(closed_error());
        }
        Ok(0)
    }

    /// A stream read's result, with Go's `ErrClosed` in place of an end of stream that a
    /// `close` from another thread caused. `close` marks the descriptor and then shuts the
    /// socket down, so a read already past its check, inside `recv`, saw the shutdown as an
    /// end of stream, which its caller could not tell from the peer's (review, session 29).
    /// Go's descriptor stays open until its last call returns, so its reads there fail with
    /// `ErrClosed`. Only an `Ok(0)` loads the flags.
    #[inline(always)]
    pub(crate) fn read_result(&self, r: io::Result<usize>) -> io::Result<usize> {
        match r {
            Ok(0) => self.nothing_to_move(),
            r => r,
        }
    }

    /// As [`read_result`](Self::read_result), for a write (the shutdown answers it with
    /// `EPIPE`) or a listener's accept (`EINVAL`) already under way when `close` ran.
    #[inline(always)]
    pub(crate) fn call_result<T>(&self, r: io::Result<T>) -> io::Result<T> {
        match r {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::EINVAL)) => {
                Err(self.closed_or(e))
            }
            r => r,
        }
    }

    /// `closed_error` if the descriptor is closing, else `e`.
    #[cold]
    fn closed_or(&self, e: io::Error) -> io::Error {
        if self.is_closing() {
            return closed_error();
        }
        e
    }

    /// Fails if the descriptor is closing or a deadline has passed. (Orphaned is not checked
    /// here: the call may still complete without waiting; only a wait on the slot needs the
    /// dead poller, see `orphaned`.) Inlined: it runs before every attempt, and out of line
    /// its frame was one more line of the goroutine's stack per round trip (echo model).
    #[inline(always)]
    pub(crate) fn check(&self, dir: Direction, call_deadline: Option<Instant>) -> io::Result<()> {
        if self.is_closing() {
            return Err(closed_error());
        }
        if let Some(d) = self.effective(dir, call_deadline) {
            if Instant::now() >= d {
                return Err(timed_out());
            }
        }
        Ok(())
    }

    /// Waits once for `dir` readiness (or a close, or a deadline change). May return early.
    /// `since`: the slot's edges before the call that failed (see `WaitSlot::poll_ready`).
    ///
    /// Inlined into the I/O loop so that a goroutine parks with as few call frames above it as
    /// possible (see "Frames across a switch" in `goroutine/mod.rs`); the other cases are out
    /// of line.
    #[inline(always)]
    pub(crate) fn wait(
        &self,
        dir: Direction,
        call_deadline: Option<Instant>,
        since: Option<EdgeMark>,
    ) -> io::Result<()> {
        if crate::goroutine::in_goroutine() {
            if self.registered.get().is_none() {
                self.ensure_registered()?;
            }
            let desc = &*self.desc;
            if desc.flags() & ORPHANED != 0 {
                return self.wait_orphaned(dir);
            }
            desc.watch(dir);
            // The deadline from the word `park_on` compares, read once (see `deadline_of`).
            let seen = desc.deadline_word(dir);
            match earlier(PollDesc::deadline_of(seen), call_deadline) {
                None => park_on(desc, dir, seen, since),
                Some(deadline) => wait_until(desc, dir, seen, since, deadline),
            }
            Ok(())
        } else {
            self.wait_off_goroutine(dir, call_deadline)
        }
    }

    /// `wait` (or a future's) on a descriptor whose runtime shut down: no poller reports its
    /// edges any more, so the kernel is asked, briefly. Ready, the edge is recorded as the
    /// poller would (a drained mark goes stale, and the caller's retry makes its call); not
    /// ready, the wait fails with the error that says why. Before, every wait failed, and the
    /// drained mark of a short read skipped calls with data queued, in the dead runtime's
    /// last call and then in each one after a short read (review, session 31). One
    /// millisecond, not zero: `poll_one` paces an error-queue-only report by its timeout, and
    /// at zero a retry that says `EAGAIN` would come straight back here.
    #[cold]
    #[inline(never)]
    fn wait_orphaned(&self, dir: Direction) -> io::Result<()> {
        if !crate::sys::socket::poll_one(self.fd, poll_events(dir), Duration::from_millis(1))? {
            return Err(orphaned_error());
        }
        self.record_edge(dir);
        Ok(())
    }

    /// `poll(2)` found `dir` ready where no poller reports its edges: records the edge as
    /// the poller would (a drained mark goes stale, and the caller's retry makes its call;
    /// kept, the mark skipped it and the caller came straight back).
    #[cold]
    fn record_edge(&self, dir: Direction) {
        let mut wake = Vec::new();
        self.desc.slot(dir).set_ready(&mut wake);
        crate::sched::wake::wake_all(wake);
    }

    /// `wait` on a worker outside a goroutine (an error) or on a plain thread (or a worker in
    /// its shutdown step, which serves nothing any more: it blocks as a plain thread does).
    #[inline(never)]
    fn wait_off_goroutine(&self, dir: Direction, call_deadline: Option<Instant>) -> io::Result<()> {
        if crate::sched::worker::is_serving() {
            Err(io::Error::other(
                "gorust::net: a blocking call from a future on a worker thread would block the \
                 worker; use the poll_*/async methods there, or call it from a goroutine",
            ))
        } else {
            self.wait_thread(dir, call_deadline)
        }
    }

    /// `io_bytes` (`Attempt::Park`) or `try_io_bytes` (`Attempt::Once`), for callers that
    /// share one body between a parking call and its `try_` form. Inlined: the mode is a
    /// constant at each call site, so the match folds away.
    #[inline(always)]
    pub(crate) fn attempt_bytes(
        &self,
        dir: Direction,
        mode: Attempt,
        len: usize,
        op: impl FnMut() -> io::Result<usize>,
    ) -> io::Result<usize> {
        // `run` and `try_run` directly, as before: no `#[inline]`-only frame between (the
        // goroutine's stack lines on the read path, `costs` in ARCHITECTURE).
        match mode {
            Attempt::Park(timeout) => self.run(dir, timeout, op, came_up_short(len)),
            Attempt::Once => self.try_run(dir, op, came_up_short(len)),
        }
    }

    /// Returns once `dir` looks ready: at once unless the last attempt drained it, else after
    /// parking for a new edge (registering first: epoll reports a descriptor that is already
    /// ready at registration, so data that came before is not missed). For
    /// `readable`/`writable`: the caller then tries a non-blocking call ([`try_io_bytes`]),
    /// which may still see `WouldBlock` (a spurious report); that marks the direction drained,
    /// so the next wait parks (for writes, `ready` first starts watching the write slot, so
    /// that the marks count). No buffer is involved, so a goroutine waiting here holds none.
    ///
    /// [`try_io_bytes`]: Self::try_io_bytes
    pub(crate) fn ready(&self, dir: Direction, timeout: Option<Duration>) -> io::Result<()> {
        let call_deadline = timeout.map(crate::time::deadline_in);
        if !crate::goroutine::in_goroutine() {
            return self.ready_off_goroutine(dir, call_deadline);
        }
        crate::coop::spend_or_yield();
        let slot = self.desc.slot(dir);
        // Before the drained state is read: unwatched, it is stale, and the `try_*` call that
        // follows would not mark it, so a `writable`/`try_write` loop would spin.
        if self.desc.watch(dir) {
            self.settle_first_watch(dir)?;
        }
        loop {
            self.check(dir, call_deadline)?;
            let Some(now) = slot.drained() else {
                return Ok(());
            };
            self.wait(dir, call_deadline, Some(now))?;
        }
    }

    /// `ready` just started watching `dir` (writes): the slot's drained state said nothing
    /// until now (an unwatched `try_write` marks nothing, and the watch moved the edge
    /// count), so `ready` would return at once, though the `try_write` that failed before it
    /// may have been right. Asks the kernel instead, once in the descriptor's life: if the
    /// send buffer is full, the direction is marked drained (and a stale final flag, which a
    /// full buffer disproves, cleared), so that `ready` waits for a real edge. The snapshot
    /// comes first: an edge after it clears the mark, as for any short call. The ordering
    /// holds as for a call: when `poll(2)` finds no room, TCP sets `SOCK_NOSPACE` behind a
    /// full barrier, the flag that makes the freeing side wake the socket's waiters.
    #[cold]
    #[inline(never)]
    fn settle_first_watch(&self, dir: Direction) -> io::Result<()> {
        debug_assert_eq!(dir, Direction::Write, "only writes are ever unwatched");
        let slot = self.desc.slot(dir);
        let edges = slot.edges();
        if !crate::sys::socket::writable_now(self.fd)? {
            slot.clear_final(edges);
            slot.mark_drained(edges);
        }
        Ok(())
    }

    #[inline(never)]
    fn ready_off_goroutine(
        &self,
        dir: Direction,
        call_deadline: Option<Instant>,
    ) -> io::Result<()> {
        if crate::sched::worker::is_serving() {
            // A future must not block its worker: `wait_off_goroutine` says so.
            return self.wait_off_goroutine(dir, call_deadline);
        }
        loop {
            self.check(dir, call_deadline)?;
            if self.poll_thread(dir, call_deadline)? {
                return Ok(());
            }
        }
    }

    /// One attempt of a call that moves bytes from or to a buffer of `len` bytes, never
    /// waiting: `WouldBlock` if the direction is not ready. A short result or `WouldBlock`
    /// marks the direction drained (see `io_bytes`) where the poller counts its edges, which
    /// `ready` then waits out (an unwatched write: `ready` watches first, see there).
    #[inline(always)]
    pub(crate) fn try_io_bytes(
        &self,
        dir: Direction,
        len: usize,
        op: impl FnMut() -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.try_run(dir, op, came_up_short(len))
    }

    /// The non-waiting counterpart of [`run`](Self::run): one attempt (`EINTR` retried);
    /// a result for which `short` holds, or `WouldBlock`, marks the direction drained (where
    /// the poller counts its edges).
    /// Inlined, as `first_attempt_bytes` is, which builds on it for every write: out of line
    /// its frame was more cache lines of the goroutine's stack per call (echo model).
    #[inline(always)]
    pub(crate) fn try_run<T>(
        &self,
        dir: Direction,
        mut op: impl FnMut() -> io::Result<T>,
        short: impl Fn(&T) -> bool,
    ) -> io::Result<T> {
        self.check(dir, None)?;
        let slot = self.desc.slot(dir);
        let counted = self.desc.counts_edges(dir);
        loop {
            let edges = counted.then(|| slot.edges());
            match op() {
                Ok(v) => {
                    if let Some(edges) = edges {
                        slot.note_result(edges, short(&v));
                    }
                    return Ok(v);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Some(edges) = edges {
                        slot.clear_final(edges);
                        slot.mark_drained(edges);
                    }
                    return Err(e);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// A plain thread: block in poll(2), in slices so that deadline changes are noticed.
    fn wait_thread(&self, dir: Direction, call_deadline: Option<Instant>) -> io::Result<()> {
        self.poll_thread(dir, call_deadline).map(drop)
    }

    /// One slice of `wait_thread`; returns whether poll(2) reported the descriptor.
    fn poll_thread(&self, dir: Direction, call_deadline: Option<Instant>) -> io::Result<bool> {
        crate::goroutine::refuse_wait_if_cancelled();
        const SLICE: Duration = Duration::from_millis(100);
        let timeout = match self.effective(dir, call_deadline) {
            Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
            None => SLICE,
        };
        crate::sys::socket::poll_one(self.fd, poll_events(dir), timeout)
    }

    /// Registers with the current worker's poller (or, off a worker, one of the current
    /// runtime's), once.
    ///
    /// Serialised per descriptor (`REGISTERING`): two threads may make an object's first waits
    /// at once (a goroutine and a future in `Runtime::block_on`; always on one poller in a
    /// one-worker runtime). The loser of an unserialised race got `EEXIST` from `epoll_ctl`
    /// while the winner had yet to record its token; session 21 had it wait for the record a
    /// bounded number of yields, which failed the wait when the winner was preempted for
    /// longer (review, session 22). Under the lock the second thread finds the token recorded,
    /// and `EEXIST` only means that another object owns the descriptor's registration (two
    /// owners of one descriptor), an error at once. The lock is taken once per object (with
    /// an `epoll_ctl` beside it), never on the I/O path.
    #[cold]
    fn ensure_registered(&self) -> io::Result<()> {
        if self.registered.get().is_some() {
            return Ok(());
        }
        let poller = crate::sched::current_poller().ok_or_else(|| {
            io::Error::other("gorust::net: asynchronous I/O needs a gorust runtime on this thread")
        })?;
        let stripe = &REGISTERING[self.fd as usize % REGISTERING.len()];
        let _serial = stripe.lock().unwrap_or_else(|e| e.into_inner());
        if self.registered.get().is_some() {
            return Ok(()); // registered by another thread while we waited
        }
        let tok = poller.register(self.fd, self.desc.clone())?;
        #[cfg(all(test, not(loom)))]
        std::thread::sleep(tests::STALL_AFTER_REGISTER.with(std::cell::Cell::get));
        if let Err((p, t)) = self.registered.set((poller, tok)) {
            // Not reachable under the lock (only this function records a token); undone
            // rather than left registered twice if it ever were.
            p.deregister(self.fd, t);
        }
        Ok(())
    }

    /// The async face of [`io`](Self::io): one attempt of `op` (none while the direction is
    /// known drained), or `Pending` with the task's waker registered.
    #[inline]
    pub(crate) fn poll_io<T>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        op: impl FnMut() -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        self.poll_run(cx, dir, op, |_| false)
    }

    /// The async face of [`run`](Self::run): for calls that can tell by their result whether
    /// they drained the direction (`short`), as a goroutine's calls do. A call whose result is
    /// `short`, or that says `WouldBlock`, marks the direction drained, and the next poll waits
    /// on the slot for a new edge instead of making a call that can only say `EAGAIN` (tokio
    /// clears readiness after a short read for the same reason). Only where the poller counts
    /// the direction's edges: once the descriptor is registered, and for writes once watched
    /// (`desc.rs`); until then every poll makes the call.
    #[inline]
    pub(crate) fn poll_run<T>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        mut op: impl FnMut() -> io::Result<T>,
        short: impl Fn(&T) -> bool,
    ) -> Poll<io::Result<T>> {
        if crate::coop::poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        let slot = self.desc.slot(dir);
        loop {
            if let Err(e) = self.check(dir, None) {
                return Poll::Ready(Err(e));
            }
            let registered = self.registered.get().is_some();
            let counted = registered && self.desc.counts_edges(dir);
            let drained = if counted { slot.drained() } else { None };
            let since = if drained.is_some() {
                drained
            } else {
                // Also before registration, as in `run`: a waiter that registered meanwhile
                // may take the edge that the queued data or connection made, and a wait
                // without the count from before this call would not see that it came
                // (review, session 24).
                let snapshot = (counted || !registered).then(|| slot.edges());
                let edges = snapshot.filter(|_| counted);
                match op() {
                    Ok(v) => {
                        if let Some(edges) = edges {
                            slot.note_result(edges, short(&v));
                        }
                        return Poll::Ready(Ok(v));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if let Some(edges) = edges {
                            slot.clear_final(edges);
                            slot.mark_drained(edges);
                        } else if registered {
                            // An unwatched write (see `run`): watch, and ask once more.
                            self.watch_writes();
                            continue;
                        }
                        snapshot
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            };
            match self.poll_slot(cx, dir, since) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    // No progress: the unit goes back (see `coop::refund`).
                    crate::coop::refund();
                    return Poll::Pending;
                }
            }
        }
    }

    /// The waiting half of `poll_run` (and so of `poll_io`): registers the descriptor on the first
    /// wait, fails if its runtime shut down, and waits on the slot. `Ready(Ok)`: try again.
    #[inline]
    fn poll_slot(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        since: Option<EdgeMark>,
    ) -> Poll<io::Result<()>> {
        self.ensure_registered()?;
        let desc = &*self.desc;
        if desc.flags() & ORPHANED != 0 {
            return Poll::Ready(self.wait_orphaned(dir));
        }
        if crate::sched::worker::serving() == Some(false) {
            return self.poll_on_thread(cx, dir);
        }
        desc.watch(dir);
        let (waited, added) = desc
            .slot(dir)
            .poll_ready_adding(cx, since, || desc.flags() & STOPS != 0);
        if waited.is_pending() && desc.deadline(dir).is_some() {
            // Nothing else would wake this future when the deadline passes (a goroutine's
            // wait sleeps on a timer of its own). Armed after the waker is in the slot.
            let word = desc.deadline_word(dir);
            if let Some(deadline) = PollDesc::deadline_of(word) {
                self.deadline_timers.arm(&self.desc, dir, word, deadline);
                // The timer fires once. If it fired while this poll ran (another thread's, or
                // the monitor's), its waker before this poll's was in the slot, it woke nobody,
                // and arming the same word again does nothing: the future would wait for I/O
                // alone (review, session 22). Past the deadline now, the caller's `check` fails
                // with `TimedOut` instead.
                if Instant::now() >= deadline {
                    // Only a waker this poll added: one already there may be another
                    // future's of this task, waiting on (`poll_ready_adding`).
                    if added {
                        desc.slot(dir).forget(cx.waker());
                    }
                    return Poll::Ready(Ok(()));
                }
            }
        }
        waited.map(Ok)
    }

    /// `poll_slot` on a worker in its shutdown step (a destructor's `block_on` of a socket
    /// future while the runtime unwinds its goroutines): no thread polls an epoll any more, and
    /// the waker left in the slot was never woken, so `Runtime`'s drop hung (review, session
    /// 31). The thread waits in `poll(2)` instead, as a blocking call there does, a slice at a
    /// time: ready, the call is tried again; not yet, the future asks to be polled again, so
    /// that what it is combined with (a timeout) gets its turn.
    #[cold]
    fn poll_on_thread(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<io::Result<()>> {
        if self.poll_thread(dir, None)? {
            self.record_edge(dir);
            return Poll::Ready(Ok(()));
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// `poll_run` for a call that moves at most `len` bytes: fewer is a short call.
    #[inline]
    pub(crate) fn poll_io_bytes(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        len: usize,
        op: impl FnMut() -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        self.poll_run(cx, dir, op, came_up_short(len))
    }

    /// Marks the descriptor closing and wakes every waiter.
    pub(crate) fn close(&self) {
        self.desc.close();
    }

    /// After a successful `shutdown(2)` of `how`: the shut directions' waiters wake and make
    /// their call, which no longer blocks (see `PollDesc::shut`).
    pub(crate) fn shut(&self, how: std::net::Shutdown) {
        use std::net::Shutdown;
        if how != Shutdown::Write {
            self.desc.shut(Direction::Read);
        }
        if how != Shutdown::Read {
            self.desc.shut(Direction::Write);
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some((poller, tok)) = self.registered.take() {
            poller.deregister(self.fd, tok);
        }
    }
}

/// `wait` without a deadline, in a goroutine: parks until the slot reports readiness, the
/// descriptor closes, or its deadline word changes from `seen` (a deadline was set).
///
/// Written as a loop over the goroutine's resume waker rather than as a future given to
/// `block_on`: across the park, the future, a waker copy and the context would sit in this
/// frame, one or two more lines of the goroutine's stack to bring back at every resume (echo
/// model at 1,000 connections: 8.1 misses per round trip with the future); here the
/// descriptor, the direction and `seen` stay in registers, which the switch saves anyway.
#[inline(always)]
fn park_on(desc: &PollDesc, dir: Direction, seen: u64, since: Option<EdgeMark>) {
    let slot = desc.slot(dir);
    let stop = || wait_ends(desc, dir, seen);
    while let Some(waker) = crate::goroutine::resume_waker() {
        // SAFETY: the resume's waker is valid until this goroutine suspends; the context made
        // from it is not used after `park` (each turn of the loop makes its own from the next
        // resume's waker). Not scoped to end before `park`: lifetime markers may move this
        // frame's stack slots, which the echo model counts in cache lines.
        let mut cx = Context::from_waker(unsafe { waker.as_ref() });
        if slot.poll_ready(&mut cx, since, stop).is_ready() {
            return;
        }
        crate::goroutine::park();
    }
}

/// What ends a wait besides readiness: the descriptor closing or orphaned, or its deadline
/// for `dir` moving from `seen` (the waiter then re-checks the deadline).
#[inline(always)]
fn wait_ends(desc: &PollDesc, dir: Direction, seen: u64) -> bool {
    desc.flags() & STOPS != 0 || desc.deadline_word(dir) != seen
}

/// `wait` with a deadline, in a goroutine: out of line, so that the frame of a wait without
/// one (`park_on`, every wait of a server without timeouts) holds no timer.
#[inline(never)]
fn wait_until(
    desc: &PollDesc,
    dir: Direction,
    seen: u64,
    since: Option<EdgeMark>,
    deadline: Instant,
) {
    crate::block_on(Wait {
        desc,
        dir,
        seen,
        since,
        deadline,
        sleep: None,
    });
}

/// Readiness, a close, a deadline change, or the deadline itself.
struct Wait<'a> {
    desc: &'a PollDesc,
    dir: Direction,
    /// The descriptor's deadline word when the wait began; a change ends the wait.
    seen: u64,
    /// The slot's edges before the failed call (see `WaitSlot::poll_ready`).
    since: Option<EdgeMark>,
    /// When to stop waiting (descriptor's or call's deadline, whichever is first).
    deadline: Instant,
    sleep: Option<Sleep>,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let desc = self.desc;
        let (dir, seen, since) = (self.dir, self.seen, self.since);
        if desc
            .slot(dir)
            .poll_ready(cx, since, || wait_ends(desc, dir, seen))
            .is_ready()
        {
            return Poll::Ready(());
        }
        let d = self.deadline;
        let sleep = self.sleep.get_or_insert_with(|| Sleep::until(d));
        if Pin::new(sleep).poll(cx).is_ready() {
            // Timed out: the slot's waiter is this goroutine's no more (`WaitSlot::forget`).
            desc.slot(dir).forget(cx.waker());
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// The descriptor's write lock, held for one blocking-looking write (`write_lock.rs`).
pub(crate) struct WriteGuard<'a>(&'a PollDesc);

impl Drop for WriteGuard<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.0.unlock_writes();
    }
}

/// A writer's wait for the write lock; leaves the queue when dropped (a goroutine unwound at
/// shutdown while it waits).
struct LockWrites<'a> {
    desc: &'a PollDesc,
    key: Option<crate::sync::waitlist::WaitKey>,
}

impl Future for LockWrites<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.desc.poll_lock_writes(cx, &mut this.key)
    }
}

impl Drop for LockWrites<'_> {
    fn drop(&mut self) {
        self.desc.leave_lock_wait(&mut self.key);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::cell::Cell;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::Ordering::SeqCst;

    use super::*;
    use crate::sys::epoll::Events;
    use crate::test_util::counting_waker;

    /// A registration on a poller of its own, polled by hand: no runtime needed.
    fn registered(fd: RawFd) -> (Registration, Arc<Poller>) {
        let poller = Arc::new(Poller::new().unwrap());
        let reg = Registration::new(fd);
        let tok = poller.register(fd, reg.desc.clone()).unwrap();
        assert!(reg.registered.set((poller.clone(), tok)).is_ok());
        (reg, poller)
    }

    /// A socket pair, ours non-blocking and registered as `registered` does.
    fn registered_pair() -> (UnixStream, UnixStream, Registration, Arc<Poller>) {
        let (ours, peer) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let (reg, poller) = registered(ours.as_raw_fd());
        (ours, peer, reg, poller)
    }

    fn poll_events(poller: &Poller) {
        poller.poll_now(&mut Events::with_capacity(8), &mut Vec::new(), true);
    }

    #[test]
    fn a_short_async_read_waits_for_the_next_edge_without_a_call() {
        let (ours, mut peer, reg, poller) = registered_pair();
        let (woken, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let calls = Cell::new(0);
        let mut buf = [0u8; 64];
        let read = |cx: &mut Context<'_>, buf: &mut [u8]| {
            let len = buf.len();
            reg.poll_io_bytes(cx, Direction::Read, len, || {
                calls.set(calls.get() + 1);
                (&ours).read(buf)
            })
        };

        peer.write_all(b"hello").unwrap();
        poll_events(&poller);
        assert!(matches!(read(&mut cx, &mut buf), Poll::Ready(Ok(5))));
        assert_eq!(calls.get(), 1);

        // The read came up short: nothing is left, and the next poll waits without a call.
        assert!(read(&mut cx, &mut buf).is_pending());
        assert_eq!(calls.get(), 1, "no call that could only say EAGAIN");

        // New data: its edge wakes the waiter, and the next poll reads it.
        peer.write_all(b"world!").unwrap();
        poll_events(&poller);
        assert_eq!(woken.0.load(SeqCst), 1);
        assert!(matches!(read(&mut cx, &mut buf), Poll::Ready(Ok(6))));
        assert_eq!(calls.get(), 2);

        // A read that fills the buffer cannot tell whether more is queued: the next poll
        // tries, and only its `WouldBlock` marks the direction drained.
        peer.write_all(&[7; 64]).unwrap();
        poll_events(&poller);
        assert!(matches!(read(&mut cx, &mut buf), Poll::Ready(Ok(64))));
        assert!(read(&mut cx, &mut buf).is_pending());
        assert_eq!(calls.get(), 4);
        assert!(read(&mut cx, &mut buf).is_pending());
        assert_eq!(calls.get(), 4, "drained by the WouldBlock");

        // The peer's FIN is a final edge: the read returns 0 at once, every time.
        drop(peer);
        poll_events(&poller);
        assert!(matches!(read(&mut cx, &mut buf), Poll::Ready(Ok(0))));
        assert!(matches!(read(&mut cx, &mut buf), Poll::Ready(Ok(0))));
    }

    /// A future's first call, made before the descriptor was registered, comes back with
    /// `EAGAIN` after another waiter registered, parked, was woken by the edge of data that
    /// came meanwhile and took that edge (a goroutine's wait consumes the readiness it wakes
    /// for), reading part of the data. The future's wait must still see the edge: it carries
    /// the count from before its call, as `run` does. Before, it waited without one, found the
    /// slot empty and parked with data queued (review, session 24).
    #[test]
    fn an_unregistered_first_async_call_sees_an_edge_another_waiter_took() {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let reg = Registration::new(ours.as_raw_fd());
        let poller = Arc::new(Poller::new().unwrap());
        let (first_woken, first_waker) = counting_waker();
        let (_, waker) = counting_waker();
        let calls = Cell::new(0);
        let mut buf = [0u8; 8];
        let polled =
            reg.poll_io_bytes(&mut Context::from_waker(&waker), Direction::Read, 8, || {
                calls.set(calls.get() + 1);
                if calls.get() > 1 {
                    return (&ours).read(&mut buf);
                }
                // While this call is in the kernel: the other waiter registers and parks ...
                let tok = poller.register(ours.as_raw_fd(), reg.desc.clone()).unwrap();
                assert!(reg.registered.set((poller.clone(), tok)).is_ok());
                let mut other = [0u8; 4];
                let mut read_other = |cx: &mut Context<'_>| {
                    reg.poll_io_bytes(cx, Direction::Read, 4, || (&ours).read(&mut other))
                };
                assert!(read_other(&mut Context::from_waker(&first_waker)).is_pending());
                // ... data comes, and its edge wakes the other waiter, which reads part of it.
                peer.write_all(b"12345678").unwrap();
                poll_events(&poller);
                assert_eq!(first_woken.0.load(SeqCst), 1);
                let slot = reg.desc.slot(Direction::Read);
                let took = slot.poll_ready(&mut Context::from_waker(&first_waker), None, || false);
                assert!(took.is_ready(), "the other waiter takes the readiness");
                assert_eq!((&ours).read(&mut other).unwrap(), 4);
                // This call was made before all that.
                Err(io::ErrorKind::WouldBlock.into())
            });
        assert!(matches!(polled, Poll::Ready(Ok(4))), "{polled:?}");
        assert_eq!(&buf[..4], b"5678");
    }

    /// A descriptor whose runtime shut down after a short read (a drained mark) still reads
    /// what arrives later, after every short read: its wait asks the kernel. Before, the mark
    /// skipped the call, and the wait failed with data queued (review, session 31).
    #[test]
    fn an_orphaned_descriptor_tries_a_call_its_drained_mark_would_skip() {
        let (ours, mut peer, reg, poller) = registered_pair();
        let (_, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut buf = [0u8; 8];
        let mut read = |cx: &mut Context<'_>| {
            reg.poll_io_bytes(cx, Direction::Read, 8, || (&ours).read(&mut buf))
        };
        peer.write_all(b"a").unwrap();
        poll_events(&poller);
        assert!(
            matches!(read(&mut cx), Poll::Ready(Ok(1))),
            "short: drained"
        );
        reg.desc.orphan();
        peer.write_all(b"b").unwrap();
        let r = read(&mut cx);
        assert!(matches!(r, Poll::Ready(Ok(1))), "{r:?}");
        // Short again, so drained again, and no poller will ever report the next edge.
        peer.write_all(b"yz").unwrap();
        let r = read(&mut cx);
        assert!(matches!(r, Poll::Ready(Ok(2))), "{r:?}");
        // Nothing queued: the wait fails, saying why.
        let r = read(&mut cx);
        assert!(
            matches!(&r, Poll::Ready(Err(e)) if e.to_string().contains("shut down")),
            "{r:?}"
        );
    }

    /// A descriptor registered with a poller after `orphan_all` (by a blocking-pool job still
    /// running after its runtime was dropped) is orphaned at once: nobody polls that epoll,
    /// and its wait waited for ever (review, session 31).
    #[test]
    fn a_registration_after_orphan_all_is_orphaned() {
        let poller = Arc::new(Poller::new().unwrap());
        poller.orphan_all();
        let (ours, _peer) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let reg = Registration::new(ours.as_raw_fd());
        let tok = poller.register(ours.as_raw_fd(), reg.desc.clone()).unwrap();
        assert!(reg.registered.set((poller.clone(), tok)).is_ok());
        let (_, waker) = counting_waker();
        let r = reg.poll_io_bytes(&mut Context::from_waker(&waker), Direction::Read, 8, || {
            (&ours).read(&mut [0u8; 8])
        });
        assert!(
            matches!(&r, Poll::Ready(Err(e)) if e.to_string().contains("shut down")),
            "{r:?}"
        );
    }

    /// Goroutines that each time out reading a silent socket leave no waker behind in its
    /// slot: each would keep its ended task alive until the next edge (review, session 24).
    #[test]
    fn a_timed_out_wait_leaves_no_waker_in_the_slot() {
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let (ours, _peer) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let fd = ours.as_raw_fd();
        let reg = Arc::new(Registration::new(fd));
        for _ in 0..20 {
            let reg = reg.clone();
            let timed_out = rt
                .go(move || {
                    let mut buf = [0u8; 8];
                    let timeout = Some(Duration::from_millis(1));
                    reg.io_bytes(Direction::Read, timeout, 8, || {
                        crate::sys::socket::recv(fd, &mut buf)
                    })
                })
                .join()
                .unwrap()
                .unwrap_err();
            assert_eq!(timed_out.kind(), io::ErrorKind::TimedOut);
        }
        let left = reg.desc.slot(Direction::Read).waiter_count();
        assert_eq!(left, 0, "wakers of ended goroutines");
        drop(rt);
        drop(ours);
    }

    thread_local! {
        /// How long `ensure_registered` stalls between its `epoll_ctl` and recording the token
        /// on this thread, for the test of a preempted registrant.
        pub(super) static STALL_AFTER_REGISTER: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    }

    /// A first wait that races one stalled between its `epoll_ctl` and recording the token
    /// (preempted, on a busy machine) succeeds once the other records it. It failed with
    /// `EEXIST` after a bounded number of yields, a few milliseconds (review, session 22).
    #[test]
    fn a_first_wait_racing_a_stalled_registration_succeeds() {
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let (ours, _peer) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let reg = Registration::new(ours.as_raw_fd());
        let (first, second) = std::thread::scope(|scope| {
            let stalled = scope.spawn(|| {
                STALL_AFTER_REGISTER.with(|s| s.set(Duration::from_millis(200)));
                rt.block_on(async { reg.ensure_registered() })
            });
            // Well inside the stall: the first thread's epoll_ctl is done, its record is not.
            std::thread::sleep(Duration::from_millis(50));
            let second = rt.block_on(async { reg.ensure_registered() });
            (stalled.join().unwrap(), second)
        });
        first.unwrap();
        second.expect("the racing first wait failed");
        assert!(reg.registered.get().is_some());
    }

    /// A future's deadline timer that fires during one of its polls, after the deadline check
    /// and before the poll's waker is in the slot, wakes nobody; that poll must end the wait
    /// itself. Here the second poll's call lasts until past the deadline, while the timer
    /// fires on the fallback thread.
    #[test]
    fn a_deadline_that_passes_during_a_poll_ends_it_with_timed_out() {
        let (_ours, _peer, reg, _poller) = registered_pair();
        let (woken, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let deadline = Instant::now() + Duration::from_millis(30);
        reg.desc.set_deadline(Direction::Read, Some(deadline));
        let would_block = || Err::<usize, _>(io::Error::from(io::ErrorKind::WouldBlock));
        // First poll: the call would block; the future waits, and its timer is armed.
        let first = reg.poll_io_bytes(&mut cx, Direction::Read, 64, would_block);
        assert!(first.is_pending());
        // Woken by something other than an edge (another future of its task, say), which
        // takes its waker out of the slot; and a full call by another handle since, so the
        // direction is not known drained and the next poll makes its call.
        reg.desc.read.wake_all();
        assert_eq!(woken.0.load(SeqCst), 1);
        reg.desc.read.note_result(reg.desc.read.edges(), false);
        // Second poll, before the deadline: its call lasts until well past it.
        let second = reg.poll_io_bytes(&mut cx, Direction::Read, 64, || {
            std::thread::sleep(Duration::from_millis(100));
            would_block()
        });
        match second {
            Poll::Ready(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::TimedOut),
            other => {
                panic!("past its deadline, a poll ended {other:?} with no timer left to wake it")
            }
        }
    }

    /// `poll_io` (accept, datagrams) has no short results: only `WouldBlock` marks the
    /// direction drained, and then no call is made until a new edge, even with an edge from
    /// before the `WouldBlock` still pending in the slot.
    #[test]
    fn an_async_one_attempt_call_waits_for_a_new_edge_after_would_block() {
        let (ours, mut peer, reg, poller) = registered_pair();
        let (woken, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let calls = Cell::new(0);
        let mut buf = [0u8; 1];
        let read = |cx: &mut Context<'_>, buf: &mut [u8]| {
            reg.poll_io(cx, Direction::Read, || {
                calls.set(calls.get() + 1);
                (&ours).read(buf)
            })
        };

        // Two bytes, one edge: each one-byte read is a full result, so the calls go on until
        // `WouldBlock`; the edge stays pending in the slot, unconsumed.
        peer.write_all(b"ab").unwrap();
        poll_events(&poller);
        assert!(matches!(read(&mut cx, &mut buf), Poll::Ready(Ok(1))));
        assert!(matches!(read(&mut cx, &mut buf), Poll::Ready(Ok(1))));
        assert!(read(&mut cx, &mut buf).is_pending());
        assert_eq!(
            calls.get(),
            3,
            "two reads, one WouldBlock, no retry for the stale edge"
        );
        assert!(read(&mut cx, &mut buf).is_pending());
        assert!(read(&mut cx, &mut buf).is_pending());
        assert_eq!(calls.get(), 3, "drained: no call until a new edge");

        peer.write_all(b"c").unwrap();
        poll_events(&poller);
        assert_eq!(woken.0.load(SeqCst), 1);
        assert!(matches!(read(&mut cx, &mut buf), Poll::Ready(Ok(1))));
        assert_eq!(calls.get(), 4);
    }

    /// The poller leaves the write slot alone until a write has had to wait (`desc.rs`,
    /// "Watched writes"): the first `WouldBlock` costs one more call, once; the wait that
    /// follows is woken by the next edge, and from then on `WouldBlock` marks the direction
    /// drained as for reads.
    #[test]
    fn the_write_slot_is_watched_from_the_first_wait_on() {
        let (ours, mut peer, reg, poller) = registered_pair();
        let desc = &reg.desc;
        // Registration reported the socket writable; unwatched, the slot did not take it.
        poll_events(&poller);
        assert!(!desc.counts_edges(Direction::Write));
        assert!(
            !desc.write.take_ready(),
            "an unwatched write slot got an edge"
        );

        let (woken, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let calls = Cell::new(0);
        let chunk = [1u8; 4096];
        let write = |cx: &mut Context<'_>| {
            reg.poll_io_bytes(cx, Direction::Write, chunk.len(), || {
                calls.set(calls.get() + 1);
                (&ours).write(&chunk)
            })
        };
        // Fill the send buffer: full writes make no mark and never wait.
        let mut full_writes = 0;
        while let Poll::Ready(r) = write(&mut cx) {
            r.unwrap();
            full_writes += 1;
            assert!(full_writes < 1 << 16, "the buffer never filled");
        }
        // The last poll: a WouldBlock unwatched, the watch's synthetic edge, one more
        // WouldBlock (now marked), then the wait.
        assert!(desc.counts_edges(Direction::Write));
        assert_eq!(calls.get(), full_writes + 2);
        assert!(write(&mut cx).is_pending());
        assert_eq!(
            calls.get(),
            full_writes + 2,
            "drained: no call until an edge"
        );

        // The peer reads: the edge reaches the watched slot and wakes the writer.
        let mut sink = vec![0u8; 1 << 20];
        peer.set_nonblocking(true).unwrap();
        while peer.read(&mut sink).is_ok() {}
        poll_events(&poller);
        assert_eq!(woken.0.load(SeqCst), 1);
        assert!(matches!(write(&mut cx), Poll::Ready(Ok(n)) if n > 0));
    }

    #[test]
    fn an_unregistered_async_read_always_makes_the_call() {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let reg = Registration::new(ours.as_raw_fd());
        let calls = Cell::new(0);
        let mut buf = [0u8; 64];
        peer.write_all(b"hi").unwrap();
        let (_, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let r = reg.poll_io_bytes(&mut cx, Direction::Read, buf.len(), || {
            calls.set(calls.get() + 1);
            (&ours).read(&mut buf)
        });
        assert!(matches!(r, Poll::Ready(Ok(2))));
        // Unregistered, no edges are counted: a drained mark could never clear, so none is set.
        assert!(!reg.desc.slot(Direction::Read).is_drained());
        assert_eq!(calls.get(), 1);
    }

    /// A read or write already inside its system call when `close` runs meets the shutdown
    /// that `close` makes: the kernel answers an end of stream or `EPIPE`, which the caller
    /// could not tell from the peer's doing. Those results become Go's `ErrClosed` once the
    /// descriptor is closing, and pass unchanged otherwise.
    #[test]
    fn a_call_under_way_when_close_runs_fails_with_err_closed() {
        let (ours, _peer, reg, _poller) = registered_pair();
        let fd = ours.as_raw_fd();
        // Not closing: an end of stream and `EPIPE` are the caller's to see.
        assert_eq!(reg.read_result(Ok(0)).unwrap(), 0);
        let epipe = reg.call_result::<usize>(Err(io::Error::from_raw_os_error(libc::EPIPE)));
        assert_eq!(epipe.unwrap_err().raw_os_error(), Some(libc::EPIPE));
        // `close` between the attempt's check and its system call, as another thread's would.
        let close = |reg: &Registration, fd| {
            reg.close();
            crate::sys::socket::shut_down_both(fd).unwrap();
        };
        let mut buf = [0u8; 8];
        let calls = Cell::new(0);
        let read = reg.io(Direction::Read, None, || {
            calls.set(calls.get() + 1);
            close(&reg, fd);
            let r = (&ours).read(&mut buf);
            assert_eq!(r.as_ref().unwrap(), &0);
            reg.read_result(r)
        });
        assert!(crate::net::is_closed(&read.unwrap_err()));
        let (ours, _peer, reg, _poller) = registered_pair();
        let fd = ours.as_raw_fd();
        let write = reg.io(Direction::Write, None, || {
            calls.set(calls.get() + 1);
            close(&reg, fd);
            let r = crate::sys::socket::write(fd, b"x");
            assert_eq!(r.as_ref().unwrap_err().raw_os_error(), Some(libc::EPIPE));
            reg.call_result(r)
        });
        assert!(crate::net::is_closed(&write.unwrap_err()));
        assert_eq!(calls.get(), 2);
    }
}
