//! `TcpListener` and `TcpStream`.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::addr::{each_addr, ToSocketAddrs};
use super::timeouts::Timeouts;
use crate::netpoll::desc::Direction;
use crate::netpoll::wait::Attempt;
use crate::netpoll::wait::Registration;
use crate::sys::socket as sys;

/// Listen backlog (the kernel caps it at `net.core.somaxconn`, as Go's listeners do).
const BACKLOG: i32 = 4096;

fn new_socket(addr: &SocketAddr) -> io::Result<Socket> {
    Socket::new(
        Domain::for_address(*addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )
}

fn to_inet(addr: socket2::SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an internet address"))
}

/// A TCP socket server, listening for connections (`std::net::TcpListener`'s API).
///
/// `accept` parks the calling goroutine until a connection arrives.
pub struct TcpListener {
    // Field order: the registration is removed from epoll before the descriptor closes.
    reg: Registration,
    sock: Socket,
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("addr", &self.local_addr().ok())
            .field("fd", &self.sock.as_raw_fd())
            .finish()
    }
}

impl TcpListener {
    fn from_socket(sock: Socket) -> TcpListener {
        TcpListener {
            reg: Registration::new(sock.as_raw_fd()),
            sock,
        }
    }

    /// Binds and listens (with `SO_REUSEADDR`, as Go and std do), trying each address in turn.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |a| {
            let sock = new_socket(a)?;
            sock.set_reuse_address(true)?;
            sock.bind(&(*a).into())?;
            sock.listen(BACKLOG)?;
            Ok(TcpListener::from_socket(sock))
        })
    }

    /// Accepts a connection, parking the goroutine until one arrives.
    ///
    /// `ECONNABORTED` (a client that gave up while queued) is retried silently. Running out of
    /// descriptors (`EMFILE`/`ENFILE`) is returned as an error at once, never retried in a loop.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let fd = self.sock.as_raw_fd();
        let (sock, addr) = self.reg.io(Direction::Read, None, || {
            self.reg.call_result(accept_retrying_aborted(fd))
        })?;
        Ok((TcpStream::from_owned(sock), to_inet(addr)?))
    }

    /// The async face of [`accept`](Self::accept).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let fd = self.sock.as_raw_fd();
        self.reg
            .poll_io(cx, Direction::Read, || {
                self.reg.call_result(accept_retrying_aborted(fd))
            })
            .map(|r| {
                let (sock, addr) = r?;
                Ok((TcpStream::from_owned(sock), to_inet(addr)?))
            })
    }

    /// An iterator over accepted connections (never `None`).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        to_inet(self.sock.local_addr()?)
    }

    /// Go's `SetDeadline` for `accept`: a parked `accept` fails with `TimedOut` once it passes;
    /// `None` clears it.
    pub fn set_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.reg.desc().set_deadline(Direction::Read, deadline);
        Ok(())
    }

    /// Stops accepting: a parked or later `accept` fails with [`super::ErrClosed`]. The
    /// descriptor is released when the listener is dropped.
    ///
    /// It acts on the socket, not only on this handle: the socket is shut down, so it refuses
    /// new connections at once (as Go's `Close` of the only descriptor does), and connections
    /// queued and not yet accepted are reset. Every other handle to it (a
    /// [`try_clone`](Self::try_clone), a descriptor inherited by another process) stops
    /// accepting too, with `EINVAL`. To hand a listener to another process and stop using it
    /// here, drop it instead.
    pub fn close(&self) -> io::Result<()> {
        self.reg.close();
        // Wakes threads blocked in poll(2) outside the runtime too.
        let _ = self.sock.shutdown(Shutdown::Both);
        Ok(())
    }

    /// Another handle to the same listening socket (its own poll descriptor).
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener::from_socket(self.sock.try_clone()?))
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.set_ttl_v4(ttl)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.ttl_v4()
    }

    /// Reads and clears `SO_ERROR`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }
}

fn accept_retrying_aborted(fd: RawFd) -> io::Result<(OwnedFd, socket2::SockAddr)> {
    super::retry_aborted(|| sys::accept(fd))
}

/// The iterator of [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl From<OwnedFd> for TcpListener {
    /// Takes a listening socket; it is switched to non-blocking mode.
    fn from(fd: OwnedFd) -> TcpListener {
        let sock = Socket::from(fd);
        super::adopted(sock.set_nonblocking(true));
        TcpListener::from_socket(sock)
    }
}

impl FromRawFd for TcpListener {
    /// # Safety
    ///
    /// `fd` must be an open listening socket that the caller owns and gives up.
    unsafe fn from_raw_fd(fd: RawFd) -> TcpListener {
        // SAFETY: forwarded from the caller.
        TcpListener::from(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

impl IntoRawFd for TcpListener {
    fn into_raw_fd(self) -> RawFd {
        let TcpListener { reg, sock } = self;
        drop(reg); // leave epoll before giving the descriptor away
        sock.into_raw_fd()
    }
}

impl From<TcpListener> for OwnedFd {
    /// The descriptor, out of the netpoller (as std's `From<TcpListener> for OwnedFd`). It
    /// stays in non-blocking mode.
    fn from(l: TcpListener) -> OwnedFd {
        let TcpListener { reg, sock } = l;
        drop(reg); // leave epoll before giving the descriptor away
        sock.into()
    }
}

/// A TCP connection (`std::net::TcpStream`'s API).
///
/// Reads and writes park the calling goroutine until the socket is ready. A read and a write
/// may run at the same time from two goroutines (through `&TcpStream`).
pub struct TcpStream {
    reg: Registration,
    sock: Socket,
    timeouts: Timeouts,
    /// The OS error that ended a write after some of its bytes had gone out (`write_parking`),
    /// or 0. That write returned its count; the kernel reports a socket error once, so the
    /// calls after it see `EPIPE` instead. The next write call of this handle that fails with
    /// `EPIPE`, or `take_error`, returns this one (review, session 24: a reset mid-write
    /// surfaced as `BrokenPipe`). Touched only on those paths.
    write_error: AtomicI32,
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .field("fd", &self.sock.as_raw_fd())
            .finish()
    }
}

impl TcpStream {
    fn from_socket(sock: Socket) -> TcpStream {
        TcpStream {
            reg: Registration::new(sock.as_raw_fd()),
            sock,
            timeouts: Timeouts::default(),
            write_error: AtomicI32::new(0),
        }
    }

    fn from_owned(fd: OwnedFd) -> TcpStream {
        TcpStream::from_socket(Socket::from(fd))
    }

    fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    fn read_timeout_value(&self) -> Option<Duration> {
        self.timeouts.read()
    }

    fn write_timeout_value(&self) -> Option<Duration> {
        self.timeouts.write()
    }

    /// Connects, trying each address in turn; parks until the handshake completes.
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |a| TcpStream::connect_deadline(a, None))
    }

    /// Connects with a time limit; fails with `TimedOut` when it passes.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        super::timeouts::check(Some(timeout))?;
        TcpStream::connect_deadline(addr, Some(timeout))
    }

    /// A non-blocking connect: start it, wait for writability, then read `SO_ERROR`.
    fn connect_deadline(addr: &SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
        let sock = new_socket(addr)?;
        let stream = TcpStream::from_socket(sock);
        match stream.sock.connect(&(*addr).into()) {
            Ok(()) => return Ok(stream),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let sock = &stream.sock;
        stream.reg.io(Direction::Write, timeout, || {
            // Writable means the handshake finished, one way or the other.
            match sock.take_error()? {
                Some(e) => Err(e),
                None => match sock.peer_addr() {
                    Ok(_) => Ok(()),
                    Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    Err(e) => Err(e),
                },
            }
        })?;
        // The connect waited on the write slot, which watched it; nobody else holds the stream
        // yet, so its writes may go unwatched until one has to wait (`netpoll/desc.rs`).
        stream.reg.desc().unwatch_writes();
        Ok(stream)
    }

    /// Reads without removing the data from the socket's queue.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return self.reg.nothing_to_move();
        }
        let fd = self.fd();
        self.reg.io(Direction::Read, self.read_timeout_value(), || {
            self.reg.read_result(sys::peek(fd, buf))
        })
    }

    /// Parks until the stream is readable — data, the peer's FIN or an error is waiting —
    /// without a buffer (tokio's `readable`; Go has no equivalent).
    ///
    /// For servers with many idle connections: a goroutine parked in `read` keeps its buffer
    /// (on its stack, typically, so its stack's pages stay resident), while one parked here
    /// can take a buffer only once data has arrived, read with [`try_read`](Self::try_read)
    /// and give the buffer back:
    ///
    /// ```no_run
    /// # fn serve(mut conn: gorust::net::TcpStream) -> std::io::Result<()> {
    /// use std::io::{ErrorKind, Write};
    /// loop {
    ///     conn.readable()?;
    ///     let mut buf = vec![0u8; 4096]; // held only while there is something to read
    ///     match conn.try_read(&mut buf) {
    ///         Ok(0) => return Ok(()), // the peer closed
    ///         Ok(n) => conn.write_all(&buf[..n])?,
    ///         Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// # }
    /// ```
    ///
    /// It may return when a read would still block (a readiness report can be stale); the
    /// `try_read` then fails with `WouldBlock`, and the next `readable` waits for new data.
    /// The read timeout and deadline apply, as to `read`.
    pub fn readable(&self) -> io::Result<()> {
        self.reg.ready(Direction::Read, self.read_timeout_value())
    }

    /// Parks until the stream is writable (there is room in the send buffer, or an error),
    /// as [`readable`](Self::readable) for reads. The write timeout and deadline apply.
    pub fn writable(&self) -> io::Result<()> {
        self.reg.ready(Direction::Write, self.write_timeout_value())
    }

    /// One read that never parks: `ErrorKind::WouldBlock` if no data is queued. `Ok(0)` means
    /// the peer closed (or `buf` is empty). Like `read`, it fails with `TimedOut` once the
    /// read deadline has passed and with [`super::ErrClosed`] after [`close`](Self::close).
    /// See [`readable`](Self::readable).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // `read`'s body, one attempt.
        self.read_inner(buf, Attempt::Once)
    }

    /// One write that never parks: writes what fits in the send buffer now, or fails with
    /// `ErrorKind::WouldBlock` if nothing does. Deadlines and `close` apply as to `try_read`.
    /// See [`writable`](Self::writable).
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return self.reg.nothing_to_move();
        }
        let fd = self.fd();
        self.reg.try_io_bytes(Direction::Write, buf.len(), || {
            self.sent(sys::write(fd, buf))
        })
    }

    /// Shuts down one or both halves. Shutting down reading (or both) also wakes a read
    /// parked in another goroutine, which then returns `Ok(0)`, end of stream, as every later
    /// read does (use [`close`](Self::close) for reads that fail with [`super::ErrClosed`]);
    /// shutting down writing sends FIN, wakes a parked write (it fails with
    /// `ErrorKind::BrokenPipe`, as later writes do) and leaves reads working (a half-close).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)?;
        self.reg.shut(how);
        Ok(())
    }

    /// Closes the connection for every goroutine using this handle: parked and later reads and
    /// writes fail with [`super::ErrClosed`] (a `try_clone`'s see the shutdown instead: end of
    /// stream, `BrokenPipe`), and the peer sees FIN. The descriptor itself is released
    /// when the stream is dropped.
    pub fn close(&self) -> io::Result<()> {
        self.reg.close();
        sys::shut_down_both(self.fd())
    }

    /// Sets `TCP_NODELAY` (Go sets it by default on every connection; std and this crate leave
    /// the OS default).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.sock.set_tcp_nodelay(nodelay)
    }

    /// Reads `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.sock.tcp_nodelay()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        to_inet(self.sock.local_addr()?)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        to_inet(self.sock.peer_addr()?)
    }

    /// Another handle to the same connection, with its own poll descriptor: its deadlines are
    /// its own (`close` and `shutdown` act on the connection, for every handle), and it starts
    /// with a copy of this handle's timeouts, which it then keeps apart (std's timeouts are
    /// socket options that every handle shares; see ARCHITECTURE.md, known limits).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        let mut s = TcpStream::from_socket(self.sock.try_clone()?);
        s.timeouts = self.timeouts.duplicate();
        Ok(s)
    }

    super::timeouts::timeouts_and_deadlines!();

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.set_ttl_v4(ttl)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.ttl_v4()
    }

    /// Reads and clears `SO_ERROR`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self.write_error.swap(0, Relaxed) {
            0 => self.sock.take_error(),
            code => Ok(Some(io::Error::from_raw_os_error(code))),
        }
    }

    /// A write call's result, with the error kept by `write_parking` in place of the `EPIPE`
    /// that follows it (see `write_error`). Only the error path does more than return `r`.
    #[inline(always)]
    fn sent(&self, r: io::Result<usize>) -> io::Result<usize> {
        match r {
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => Err(self.kept_write_error(e)),
            r => r,
        }
    }

    /// Go's `ErrClosed` comes first: the `EPIPE` of a write under way when `close` ran (see
    /// `Registration::read_result`).
    #[cold]
    fn kept_write_error(&self, epipe: io::Error) -> io::Error {
        if self.reg.is_closing() {
            return crate::netpoll::wait::closed_error();
        }
        match self.write_error.swap(0, Relaxed) {
            0 => epipe,
            code => io::Error::from_raw_os_error(code),
        }
    }

    /// A read that returns fewer bytes than asked emptied the socket, so the next read waits
    /// for an edge instead of trying (and getting `EAGAIN`). A read that fills the buffer
    /// cannot tell, and the next read tries (as tokio's does). Asking the kernel instead
    /// (`recvmsg` with `TCP_INQ`, which reports the bytes left queued) saved that `EAGAIN`
    /// call but cost more than it: removed in session 15, when the echo server at 4 KiB cost
    /// about 2.5–3% less per round trip without it (ARCHITECTURE, costs).
    ///
    /// `mode`: parking (`read`) or one attempt (`try_read`).
    #[inline]
    fn read_inner(&self, buf: &mut [u8], mode: Attempt) -> io::Result<usize> {
        if buf.is_empty() {
            return self.reg.nothing_to_move();
        }
        let fd = self.fd();
        self.reg
            .attempt_bytes(Direction::Read, mode, buf.len(), || {
                self.reg.read_result(sys::recv(fd, buf))
            })
    }

    fn read_vectored_inner(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        if bufs.iter().all(|b| b.is_empty()) {
            return self.reg.nothing_to_move();
        }
        let fd = self.fd();
        self.reg.io(Direction::Read, self.read_timeout_value(), || {
            self.reg.read_result(sys::readv(fd, bufs))
        })
    }

    /// Go's `Write`: loops until the whole buffer is written. If an error (a closed peer, a
    /// deadline, std's write timeout, which bounds the whole call) interrupts it after some
    /// bytes went out, the count written so far is returned and the error comes from the next
    /// call; std's `Write` contract allows both. An OS error (a reset) is kept for that call,
    /// which the kernel would otherwise answer with `EPIPE`.
    ///
    /// The first attempt is inline and the loop that parks is not: a write usually goes out
    /// whole at once, and the parking loop's frame (its future, its context, the registers
    /// saved around the switch) spread its stack writes over four more cache lines of the
    /// goroutine's stack per call, each a miss at 1,000 connections (callgrind's cache model).
    /// `always`, as for `write_all_inner`: see there.
    #[inline(always)]
    fn write_inner(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return self.reg.nothing_to_move();
        }
        // One write at a time, for the whole loop: another goroutine's bytes never land in
        // the middle of this buffer (Go's write lock).
        let _one_writer = self.reg.lock_writes();
        let fd = self.fd();
        let done = match self
            .reg
            .first_attempt_bytes(Direction::Write, buf.len(), || {
                self.sent(sys::write(fd, buf))
            }) {
            Some(Ok(n)) if n == buf.len() => return Ok(n),
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(e),
            None => 0,
        };
        self.write_parking(buf, done)
    }

    /// std's `write_all`, over `write_inner`. That already loops until everything is written
    /// or an error stops it, so this is one call in the usual case; std's default method,
    /// not inlined, put two more frames (two more cache lines) on the goroutine's stack per
    /// call. `always`: under a plain `#[inline]` LLVM kept this out of a large caller (the
    /// echo loop), and its frame cost a line below the caller's (six registers pushed) and a
    /// second read of the descriptor from the `TcpStream`, two misses per round trip at 1,000
    /// connections in the cache model (5.9 → 5.0 at 64 B).
    #[inline(always)]
    fn write_all_inner(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write_inner(buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "failed to write whole buffer",
                    ))
                }
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// `write_inner` from `done` bytes on, parking while the send buffer is full
    /// (`Registration::write_rest`; its timeout bounds the whole call). An OS error that cuts
    /// the write short is kept for the next call.
    #[inline(never)]
    fn write_parking(&self, buf: &[u8], done: usize) -> io::Result<usize> {
        let fd = self.fd();
        // The first attempt found the buffer full; unwatched, it marked nothing.
        self.reg.watch_writes();
        let (done, cut) =
            self.reg
                .write_rest(buf, done, self.write_timeout_value(), true, |rest| {
                    self.sent(sys::write(fd, rest))
                })?;
        if let Some(code) = cut.and_then(|e| e.raw_os_error()) {
            self.write_error.store(code, Relaxed);
        }
        Ok(done)
    }

    fn write_vectored_inner(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if bufs.iter().all(|b| b.is_empty()) {
            return self.reg.nothing_to_move();
        }
        // Not into the middle of another goroutine's `write` (see `write_inner`).
        let _one_writer = self.reg.lock_writes();
        let fd = self.fd();
        self.reg
            .io(Direction::Write, self.write_timeout_value(), || {
                self.sent(sys::writev(fd, bufs))
            })
    }

    /// The async face of `read`, with its system calls: a read that comes up short makes the
    /// next poll wait for an edge first (see `read_inner`).
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(self.reg.nothing_to_move());
        }
        let fd = self.fd();
        self.reg.poll_io_bytes(cx, Direction::Read, buf.len(), || {
            self.reg.read_result(sys::recv(fd, buf))
        })
    }

    /// The async face of `write`.
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(self.reg.nothing_to_move());
        }
        let fd = self.fd();
        self.reg.poll_io_bytes(cx, Direction::Write, buf.len(), || {
            self.sent(sys::write(fd, buf))
        })
    }

    /// The async face of `write_vectored`.
    pub fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // As `poll_write`: nothing to move, nothing to wait for (after a `shutdown(Write)`
        // this said `BrokenPipe`; review, session 33).
        if bufs.iter().all(|b| b.is_empty()) {
            return Poll::Ready(self.reg.nothing_to_move());
        }
        let fd = self.fd();
        // Only the slices one call passes count: past `MAX_IOV` the call's full count is less
        // than the sum of all, and that would have marked a direction with room drained, and
        // the next poll waited for an edge that never comes (review, session 19).
        let bufs = &bufs[..bufs.len().min(sys::MAX_IOV)];
        let len = bufs.iter().map(|b| b.len()).sum();
        self.reg.poll_io_bytes(cx, Direction::Write, len, || {
            self.sent(sys::writev(fd, bufs))
        })
    }
}

impl Read for TcpStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf, Attempt::Park(self.read_timeout_value()))
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.read_vectored_inner(bufs)
    }
}

impl Read for &TcpStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf, Attempt::Park(self.read_timeout_value()))
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.read_vectored_inner(bufs)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }
    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write_all_inner(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_vectored_inner(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }
    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write_all_inner(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_vectored_inner(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl From<TcpStream> for OwnedFd {
    /// The descriptor, out of the netpoller (as std's `From<TcpStream> for OwnedFd`). It
    /// stays in non-blocking mode.
    fn from(s: TcpStream) -> OwnedFd {
        let TcpStream { reg, sock, .. } = s;
        drop(reg); // leave epoll before giving the descriptor away
        sock.into()
    }
}

impl From<OwnedFd> for TcpStream {
    /// Takes a connected socket; it is switched to non-blocking mode.
    fn from(fd: OwnedFd) -> TcpStream {
        let sock = Socket::from(fd);
        super::adopted(sock.set_nonblocking(true));
        TcpStream::from_socket(sock)
    }
}

impl FromRawFd for TcpStream {
    /// # Safety
    ///
    /// `fd` must be an open connected TCP socket that the caller owns and gives up.
    unsafe fn from_raw_fd(fd: RawFd) -> TcpStream {
        // SAFETY: forwarded from the caller.
        TcpStream::from(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

impl IntoRawFd for TcpStream {
    fn into_raw_fd(self) -> RawFd {
        let TcpStream { reg, sock, .. } = self;
        drop(reg); // leave epoll before giving the descriptor away
        sock.into_raw_fd()
    }
}

impl From<std::net::TcpStream> for TcpStream {
    /// Adopts a std stream (switched to non-blocking mode).
    fn from(s: std::net::TcpStream) -> TcpStream {
        TcpStream::from(OwnedFd::from(s))
    }
}

impl From<std::net::TcpListener> for TcpListener {
    /// Adopts a std listener (switched to non-blocking mode).
    fn from(l: std::net::TcpListener) -> TcpListener {
        TcpListener::from(OwnedFd::from(l))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::io::{Read, Write};
    use std::time::Duration;

    use super::TcpStream;
    use crate::netpoll::desc::Direction;

    /// A connect that waits watches the write slot; the connected stream's writes start
    /// unwatched again (`netpoll/desc.rs`, "Watched writes"), and a write that has to wait
    /// watches them. On loopback a handshake is over before the connect's first check, so the
    /// listener's accept queue is full first: the SYN is dropped and the connect waits for its
    /// retransmission (~1 s), which finds room once a plain thread has accepted.
    #[test]
    fn a_connected_stream_starts_with_its_writes_unwatched() {
        let l = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        l.bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
        l.listen(1).unwrap();
        let l: std::net::TcpListener = l.into();
        let addr = l.local_addr().unwrap();
        // A backlog of 1 queues two connections.
        let queued: Vec<_> = (0..2)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        let server = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            let mut conns: Vec<_> = (0..3).map(|_| l.accept().unwrap().0).collect();
            let mut sink = Vec::new();
            conns[2].read_to_end(&mut sink).unwrap();
            sink.len()
        });
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let sent = rt.run(move || {
            let started = std::time::Instant::now();
            let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(20)).unwrap();
            // What follows means something only if the connect waited (for the SYN's
            // retransmission, ~1 s; the server accepts after 200 ms).
            let took = started.elapsed();
            assert!(
                took >= Duration::from_millis(500),
                "the connect did not wait ({took:?}): its SYN was not dropped"
            );
            assert!(!c.reg.desc().counts_edges(Direction::Write));
            c.write_all(b"small").unwrap();
            assert!(!c.reg.desc().counts_edges(Direction::Write));
            // Far more than the buffers hold before the server reads: this write waits.
            let big = vec![3u8; 32 << 20];
            c.write_all(&big).unwrap();
            assert!(c.reg.desc().counts_edges(Direction::Write));
            5 + big.len()
        });
        assert_eq!(server.join().unwrap(), sent);
        drop(queued);
    }
}
