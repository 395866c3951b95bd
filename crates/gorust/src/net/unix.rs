//! `UnixListener`, `UnixStream` and `UnixDatagram` (`std::os::unix::net`'s API).
//!
//! Each wraps std's type, switched to non-blocking mode, with a poll descriptor; addresses are
//! std's `std::os::unix::net::SocketAddr`.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::{self as std_unix, SocketAddr};
use std::path::Path;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::timeouts::Timeouts;
use crate::netpoll::desc::Direction;
use crate::netpoll::wait::Registration;
// Writes go through `send`/`sendmsg` with `MSG_NOSIGNAL`, as TCP's do: a write to a closed
// peer fails with `BrokenPipe` instead of raising `SIGPIPE` (std's `write(2)` relies on the
// signal being ignored, which a host that is not a Rust program may not do).
use crate::sys::socket as sys;

fn rt(t: &Timeouts) -> Option<Duration> {
    t.read()
}

fn wt(t: &Timeouts) -> Option<Duration> {
    t.write()
}

/// Implements the descriptor traits and the close and address methods shared by the three
/// types. Each type builds itself from its std socket with its own `wrap`.
macro_rules! unix_common {
    ($ty:ident, $std:ty) => {
        impl $ty {
            fn from_std(inner: $std) -> io::Result<$ty> {
                inner.set_nonblocking(true)?;
                Ok($ty::wrap(inner))
            }

            /// Closes the socket for every goroutine using it, as `TcpStream::close` and
            /// `TcpListener::close` do: parked and later calls on this handle fail with
            /// [`super::ErrClosed`], and the socket is shut down both ways, so a stream's
            /// peer reads end of file, a listener refuses new connections, and other
            /// handles' calls end (a `try_clone`'s, a descriptor inherited by another
            /// process: to hand a socket over and stop using it here, drop it instead). The
            /// descriptor itself is released on drop.
            pub fn close(&self) -> io::Result<()> {
                self.reg.close();
                sys::shut_down_both(self.inner.as_raw_fd())
            }

            /// Reads and clears `SO_ERROR`.
            pub fn take_error(&self) -> io::Result<Option<io::Error>> {
                self.inner.take_error()
            }

            /// The local address.
            pub fn local_addr(&self) -> io::Result<SocketAddr> {
                self.inner.local_addr()
            }
        }

        impl AsRawFd for $ty {
            fn as_raw_fd(&self) -> RawFd {
                self.inner.as_raw_fd()
            }
        }

        impl AsFd for $ty {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.inner.as_fd()
            }
        }

        impl From<OwnedFd> for $ty {
            /// Takes the socket; it is switched to non-blocking mode.
            fn from(fd: OwnedFd) -> $ty {
                let inner = <$std>::from(fd);
                super::adopted(inner.set_nonblocking(true));
                $ty::wrap(inner)
            }
        }

        impl From<$std> for $ty {
            fn from(s: $std) -> $ty {
                $ty::from(OwnedFd::from(s))
            }
        }

        impl FromRawFd for $ty {
            /// # Safety
            ///
            /// `fd` must be an open socket of this kind that the caller owns and gives up.
            unsafe fn from_raw_fd(fd: RawFd) -> $ty {
                // SAFETY: forwarded from the caller.
                $ty::from(unsafe { OwnedFd::from_raw_fd(fd) })
            }
        }

        impl IntoRawFd for $ty {
            fn into_raw_fd(self) -> RawFd {
                let $ty { reg, inner, .. } = self;
                drop(reg); // leave epoll before giving the descriptor away
                inner.into_raw_fd()
            }
        }

        impl From<$ty> for OwnedFd {
            /// The descriptor, out of the netpoller. It stays in non-blocking mode.
            fn from(s: $ty) -> OwnedFd {
                let $ty { reg, inner, .. } = s;
                drop(reg); // leave epoll before giving the descriptor away
                inner.into()
            }
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("fd", &self.inner.as_raw_fd())
                    .finish()
            }
        }
    };
}

/// std's timeouts, Go's three deadline setters and `try_clone`, for the two types that read
/// and write (a listener has `set_deadline` alone).
macro_rules! unix_deadlines {
    ($ty:ident, $std:ty) => {
        impl $ty {
            fn wrap(inner: $std) -> $ty {
                $ty {
                    reg: Registration::new(inner.as_raw_fd()),
                    inner,
                    timeouts: Timeouts::default(),
                }
            }

            super::timeouts::timeouts_and_deadlines!();

            /// Another handle to the same socket, with its own poll descriptor: its
            /// deadlines are its own (`close` and `shutdown` act on the socket, for every
            /// handle), and it starts with a copy of this handle's timeouts, which it then
            /// keeps apart (std's timeouts are socket options that every handle shares; see
            /// ARCHITECTURE.md, known limits).
            pub fn try_clone(&self) -> io::Result<$ty> {
                let mut s = $ty::from_std(self.inner.try_clone()?)?;
                s.timeouts = self.timeouts.duplicate();
                Ok(s)
            }
        }
    };
}

/// A Unix-domain stream listener.
pub struct UnixListener {
    reg: Registration,
    inner: std_unix::UnixListener,
}

unix_common!(UnixListener, std_unix::UnixListener);

impl UnixListener {
    fn wrap(inner: std_unix::UnixListener) -> UnixListener {
        UnixListener {
            reg: Registration::new(inner.as_raw_fd()),
            inner,
        }
    }

    /// Go's `SetDeadline` for `accept`, as [`super::TcpListener::set_deadline`]: a parked
    /// `accept` fails with `TimedOut` once it passes, until it is moved; `None` clears it.
    pub fn set_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.reg.desc().set_deadline(Direction::Read, deadline);
        Ok(())
    }

    /// Another handle to the same listening socket, with its own poll descriptor (and so its
    /// own deadline); `close` acts on the socket, for every handle.
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        UnixListener::from_std(self.inner.try_clone()?)
    }

    /// Binds to a filesystem path and listens.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::from_std(std_unix::UnixListener::bind(path)?)
    }

    /// Binds to `addr` and listens: a path, or on Linux an abstract name
    /// (`std::os::linux::net::SocketAddrExt::from_abstract_name`).
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        UnixListener::from_std(std_unix::UnixListener::bind_addr(addr)?)
    }

    /// Accepts a connection, parking the goroutine until one arrives. After `close` on this
    /// handle, fails with `NotConnected` wrapping [`super::ErrClosed`]; once another handle
    /// has closed the socket (shutting it down), with `InvalidInput` (`EINVAL`), as a TCP
    /// listener's accept does then.
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (sock, addr) = self.reg.io(Direction::Read, None, || self.accept_once())?;
        accepted(sock, &addr)
    }

    /// The async face of [`accept`](Self::accept).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(UnixStream, SocketAddr)>> {
        self.reg
            .poll_io(cx, Direction::Read, || self.accept_once())
            .map(|r| r.and_then(|(sock, addr)| accepted(sock, &addr)))
    }

    /// One non-blocking accept. A shut-down Unix listener answers it with `EAGAIN` for ever (a
    /// blocking one with `EINVAL`) while it polls readable: a clone's goroutine parked on it
    /// waited for an edge that never came, and a plain thread spun (review, session 23). A TCP
    /// listener says `EINVAL` itself.
    fn accept_once(&self) -> io::Result<(OwnedFd, socket2::SockAddr)> {
        let fd = self.inner.as_raw_fd();
        let r = self.reg.or_read_end(
            super::retry_aborted(|| crate::sys::socket::accept(fd)),
            || Err(io::Error::from_raw_os_error(libc::EINVAL)),
        );
        self.reg.call_result(r)
    }

    /// An iterator over accepted connections (never `None`).
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { listener: self }
    }
}

/// The iterator of [`UnixListener::incoming`].
#[derive(Debug)]
pub struct UnixIncoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for UnixIncoming<'_> {
    type Item = io::Result<UnixStream>;
    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// `for stream in &listener`, as std's `UnixListener` has.
impl<'a> IntoIterator for &'a UnixListener {
    type Item = io::Result<UnixStream>;
    type IntoIter = UnixIncoming<'a>;

    fn into_iter(self) -> UnixIncoming<'a> {
        self.incoming()
    }
}

/// A Unix-domain stream connection.
pub struct UnixStream {
    reg: Registration,
    inner: std_unix::UnixStream,
    timeouts: Timeouts,
}

unix_common!(UnixStream, std_unix::UnixStream);
unix_deadlines!(UnixStream, std_unix::UnixStream);

impl UnixStream {
    /// Connects to the socket at `path`.
    ///
    /// A Unix-domain connect has no handshake: it completes or fails at once. The socket is
    /// non-blocking from the start, so a listener whose backlog is full gives an error
    /// (`ErrorKind::WouldBlock`, as Go's and tokio's connects do) instead of putting the
    /// thread to sleep in the kernel: a blocking connect there stalled every goroutine of the
    /// worker, and for good if the accepting goroutine was one of them.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let path = path.as_ref();
        if std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).contains(&0) {
            // std's message; socket2 would cut the path at the first NUL, or take a leading
            // one for an abstract name, which `bind` (through std) refuses.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "paths must not contain interior null bytes",
            ));
        }
        connect_to(&socket2::SockAddr::unix(path)?, &path.display())
    }

    /// Connects to `addr`: a path, or on Linux an abstract name. Non-blocking as
    /// [`connect`](Self::connect) is.
    pub fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        if let Some(path) = addr.as_pathname() {
            return UnixStream::connect(path);
        }
        let Some(name) = std::os::linux::net::SocketAddrExt::as_abstract_name(addr) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot connect to an unnamed address",
            ));
        };
        // socket2 reads a path whose first byte is NUL as an abstract name.
        let mut raw = vec![0u8];
        raw.extend_from_slice(name);
        let path = Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&raw));
        let shown = format!("the abstract name {:?}", String::from_utf8_lossy(name));
        connect_to(&socket2::SockAddr::unix(path)?, &shown)
    }

    /// A connected pair.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std_unix::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// Shuts down one or both halves; see [`super::TcpStream::shutdown`].
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)?;
        self.reg.shut(how);
        Ok(())
    }

    /// Parks until the stream is readable, holding no buffer; see
    /// [`super::TcpStream::readable`].
    pub fn readable(&self) -> io::Result<()> {
        self.reg.ready(Direction::Read, rt(&self.timeouts))
    }

    /// Parks until the stream is writable; see [`super::TcpStream::writable`].
    pub fn writable(&self) -> io::Result<()> {
        self.reg.ready(Direction::Write, wt(&self.timeouts))
    }

    /// One read that never parks (`WouldBlock` if nothing is queued); see
    /// [`super::TcpStream::try_read`].
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return self.reg.nothing_to_move();
        }
        // Drained only on `WouldBlock`: a short read does not prove the queue empty on a
        // Unix socket (the kernel stops at a message carrying descriptors or credentials).
        self.reg.try_run(
            Direction::Read,
            || self.reg.read_result((&self.inner).read(buf)),
            |_| false,
        )
    }

    /// One write that never parks; see [`super::TcpStream::try_write`].
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return self.reg.nothing_to_move();
        }
        let fd = self.inner.as_raw_fd();
        self.reg.try_run(
            Direction::Write,
            || self.reg.call_result(sys::write(fd, buf)),
            |_| false,
        )
    }

    fn read_inner(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return self.reg.nothing_to_move();
        }
        self.reg.io(Direction::Read, rt(&self.timeouts), || {
            self.reg.read_result((&self.inner).read(buf))
        })
    }

    /// Go's `Write`, as `TcpStream`'s (`Registration::write_rest`): loops until the whole
    /// buffer is written, parking while the send buffer is full. An error after some bytes
    /// went out (a deadline, the write timeout, a peer gone) returns the count written, and
    /// the next call meets the error again. Before, one `send` was made and a partial count
    /// returned, std's way, while the porting notes promised Go's for TCP only (review,
    /// session 31). Drained only on `EAGAIN`, as the other Unix calls.
    fn write_inner(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return self.reg.nothing_to_move();
        }
        // One write at a time, for the whole loop (Go's write lock; `netpoll/write_lock.rs`).
        let _one_writer = self.reg.lock_writes();
        let fd = self.inner.as_raw_fd();
        let (done, _) = self
            .reg
            .write_rest(buf, 0, wt(&self.timeouts), false, |rest| {
                self.reg.call_result(sys::write(fd, rest))
            })?;
        Ok(done)
    }

    fn read_vectored_inner(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        // Before the call, as `read_inner`: an empty read of a Unix stream is `EAGAIN` to the
        // kernel (it waits for one byte), and parked until the peer wrote (review, session 31).
        if bufs.iter().all(|b| b.is_empty()) {
            return self.reg.nothing_to_move();
        }
        self.reg.io(Direction::Read, rt(&self.timeouts), || {
            self.reg.read_result((&self.inner).read_vectored(bufs))
        })
    }

    fn write_vectored_inner(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // An all-empty call moves nothing and waits for nothing, as `write_inner`'s (after a
        // `shutdown(Write)`, it said `BrokenPipe`; review, session 33).
        if bufs.iter().all(|b| b.is_empty()) {
            return self.reg.nothing_to_move();
        }
        // Not into the middle of another goroutine's `write`.
        let _one_writer = self.reg.lock_writes();
        let fd = self.inner.as_raw_fd();
        self.reg.io(Direction::Write, wt(&self.timeouts), || {
            self.reg.call_result(sys::writev(fd, bufs))
        })
    }

    /// The async face of `read`.
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        // An empty read would wait for a byte (`read_vectored_inner`): tokio's `AsyncRead`
        // passes an empty slice when its buffer is full (review, session 31).
        if buf.is_empty() {
            return Poll::Ready(self.reg.nothing_to_move());
        }
        // Drained only on `WouldBlock`, as `try_read` (a short read proves nothing here).
        self.reg.poll_run(
            cx,
            Direction::Read,
            || self.reg.read_result((&self.inner).read(buf)),
            |_| false,
        )
    }

    /// The async face of `write`.
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(self.reg.nothing_to_move());
        }
        let fd = self.inner.as_raw_fd();
        self.reg.poll_run(
            cx,
            Direction::Write,
            || self.reg.call_result(sys::write(fd, buf)),
            |_| false,
        )
    }

    /// The async face of `write_vectored`: one `writev`, as `poll_write` makes one `write`.
    pub fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Poll::Ready(self.reg.nothing_to_move());
        }
        let fd = self.inner.as_raw_fd();
        self.reg.poll_run(
            cx,
            Direction::Write,
            || self.reg.call_result(sys::writev(fd, bufs)),
            |_| false,
        )
    }
}

macro_rules! unix_stream_io {
    ($t:ty) => {
        impl Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.read_inner(buf)
            }
            fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
                self.read_vectored_inner(bufs)
            }
        }
        impl Write for $t {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.write_inner(buf)
            }
            fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                self.write_vectored_inner(bufs)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
    };
}

unix_stream_io!(UnixStream);
unix_stream_io!(&UnixStream);

/// The stream and address of an accepted connection. `accept4` made the socket non-blocking
/// and gave the peer's address: neither is asked again (it was, with an `ioctl` and a
/// `getpeername` per connection, before session 29).
fn accepted(sock: OwnedFd, addr: &socket2::SockAddr) -> io::Result<(UnixStream, SocketAddr)> {
    let inner = std_unix::UnixStream::from(sock);
    // std refuses to build some addresses the kernel hands out (a path of the full 108
    // bytes, which has no terminating NUL): it reads those back by `getpeername` (review,
    // session 29: the accept failed, and ended an event loop's accept loop).
    let addr = unix_addr(addr).or_else(|_| inner.peer_addr())?;
    Ok((UnixStream::wrap(inner), addr))
}

/// std's form of a Unix socket address that `accept4` filled in (std builds one from a path
/// or an abstract name, not from a raw `sockaddr_un`). A client that never bound has an
/// unnamed address, which an empty path gives.
fn unix_addr(a: &socket2::SockAddr) -> io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    match (a.as_pathname(), a.as_abstract_namespace()) {
        (Some(path), _) => SocketAddr::from_pathname(path),
        (None, Some(name)) => SocketAddr::from_abstract_name(name),
        (None, None) => unnamed(),
    }
}

/// An unnamed Unix socket address (std builds one from an empty path).
fn unnamed() -> io::Result<SocketAddr> {
    SocketAddr::from_pathname("")
}

/// What `recv_from` gives once reading is shut down: nothing, from an unnamed address, as
/// std's blocking receive gives then.
fn nothing_received() -> io::Result<(usize, SocketAddr)> {
    unnamed().map(|a| (0, a))
}

/// Paces a plain thread's retries of an unconnected datagram send to a receiver whose queue
/// is full. The sender's `poll(2)` judges only the sender's own buffer then, so it reports
/// writable at once, and each retry says `EAGAIN` again: the thread spun at full speed until
/// the receiver read (review, session 29), where std's blocking send sleeps in the kernel.
/// From the second refusal on, it sleeps 1, 2, 4, then 8 ms before each retry (a deadline may
/// be passed by that much). A goroutine or a future waits for an edge instead.
#[derive(Default)]
struct FullReceiver {
    refusals: u32,
}

impl FullReceiver {
    fn pace(&mut self, r: io::Result<usize>) -> io::Result<usize> {
        let refused = matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        if refused && crate::sync::on_plain_thread() {
            if self.refusals > 0 {
                let ms = 1 << (self.refusals - 1).min(3);
                std::thread::sleep(Duration::from_millis(ms));
            }
            self.refusals += 1;
        }
        r
    }
}

/// A non-blocking connect to `addr` (`shown` in the error): see [`UnixStream::connect`].
fn connect_to(addr: &socket2::SockAddr, shown: &dyn std::fmt::Display) -> io::Result<UnixStream> {
    let sock = socket2::Socket::new(
        socket2::Domain::UNIX,
        socket2::Type::STREAM.nonblocking().cloexec(),
        None,
    )?;
    match sock.connect(addr) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("connect to {shown}: the listener's backlog is full; retry later"),
            ));
        }
        Err(e) => return Err(e),
    }
    // Created non-blocking: not switched again (it was, with one more system call).
    Ok(UnixStream::wrap(std_unix::UnixStream::from(OwnedFd::from(
        sock,
    ))))
}

/// A Unix-domain datagram socket.
pub struct UnixDatagram {
    reg: Registration,
    inner: std_unix::UnixDatagram,
    timeouts: Timeouts,
}

unix_common!(UnixDatagram, std_unix::UnixDatagram);
unix_deadlines!(UnixDatagram, std_unix::UnixDatagram);

impl UnixDatagram {
    /// Binds to a filesystem path.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std_unix::UnixDatagram::bind(path)?)
    }

    /// Binds to `addr`: a path, or on Linux an abstract name.
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std_unix::UnixDatagram::bind_addr(addr)?)
    }

    /// A socket bound to no address.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std_unix::UnixDatagram::unbound()?)
    }

    /// A connected pair.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std_unix::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_std(a)?, UnixDatagram::from_std(b)?))
    }

    /// Sets the default destination.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.inner.connect(path)
    }

    /// Sets the default destination to `addr`: a path, or on Linux an abstract name.
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.inner.connect_addr(addr)
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// Receives a datagram and its sender's address. Once reading is shut down (by
    /// [`shutdown`](Self::shutdown) on any handle) and the queued datagrams are taken, returns
    /// `Ok(0)` and an unnamed address, as std's blocking receive does.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.reg.io(Direction::Read, rt(&self.timeouts), || {
            self.reg
                .or_read_end(self.inner.recv_from(buf), nothing_received)
        })
    }

    /// Receives from the connected peer; `Ok(0)` once reading is shut down, as `recv_from`.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.reg.io(Direction::Read, rt(&self.timeouts), || {
            self.reg.or_read_end(self.inner.recv(buf), || Ok(0))
        })
    }

    /// Sends to the socket at `path`, waiting while its receive queue is full (a plain thread
    /// retries after 1, 2, 4, then every 8 ms; see ARCHITECTURE.md's known limits for a
    /// goroutine).
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        let mut full = FullReceiver::default();
        self.reg.io(Direction::Write, wt(&self.timeouts), || {
            full.pace(self.reg.call_result(self.inner.send_to(buf, path)))
        })
    }

    /// Sends to `addr`: a path, or on Linux an abstract name. Waits as `send_to` does.
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        let mut full = FullReceiver::default();
        self.reg.io(Direction::Write, wt(&self.timeouts), || {
            full.pace(self.reg.call_result(self.inner.send_to_addr(buf, addr)))
        })
    }

    /// Sends to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.reg.io(Direction::Write, wt(&self.timeouts), || {
            self.reg.call_result(self.inner.send(buf))
        })
    }

    /// The async face of [`recv_from`](Self::recv_from).
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        self.reg.poll_io(cx, Direction::Read, || {
            self.reg
                .or_read_end(self.inner.recv_from(buf), nothing_received)
        })
    }

    /// The async face of [`recv`](Self::recv).
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.reg.poll_io(cx, Direction::Read, || {
            self.reg.or_read_end(self.inner.recv(buf), || Ok(0))
        })
    }

    /// The async face of [`send_to`](Self::send_to). A future waits for an edge while the
    /// receiver's queue is full, which an unconnected sender may not get before its deadline
    /// (ARCHITECTURE.md, known limits).
    pub fn poll_send_to<P: AsRef<Path>>(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        path: P,
    ) -> Poll<io::Result<usize>> {
        let path = path.as_ref();
        self.reg.poll_io(cx, Direction::Write, || {
            self.reg.call_result(self.inner.send_to(buf, path))
        })
    }

    /// The async face of [`send_to_addr`](Self::send_to_addr): a path, or on Linux an
    /// abstract name. Waits as `poll_send_to` does.
    pub fn poll_send_to_addr(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        addr: &SocketAddr,
    ) -> Poll<io::Result<usize>> {
        self.reg.poll_io(cx, Direction::Write, || {
            self.reg.call_result(self.inner.send_to_addr(buf, addr))
        })
    }

    /// The async face of [`send`](Self::send).
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.reg.poll_io(cx, Direction::Write, || {
            self.reg.call_result(self.inner.send(buf))
        })
    }
    /// Shuts down one or both halves.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)?;
        self.reg.shut(how);
        Ok(())
    }
}
