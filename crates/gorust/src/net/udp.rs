//! `UdpSocket`: `std::net::UdpSocket`'s API, waiting on the netpoller.
//!
//! A handle wraps std's socket, switched to non-blocking mode, and owns a `Registration`
//! (`netpoll/wait.rs`) with a poll descriptor of its own. That descriptor holds a read and a
//! write wait slot, a read and a write deadline, and the closing flag. Nothing is registered
//! with a poller until a goroutine or a future first has to wait. The socket is then added
//! once, edge-triggered, to the current worker's poller (off a worker, to one of the current
//! runtime's).
//!
//! How a call waits. Receives (`recv_from`, `recv`, `peek_from`, `peek`) wait on the read slot
//! and sends (`send_to`, `send`) on the write slot. The poller keeps the write slot up to date
//! only once a send has had to wait (`desc.rs`, "Watched writes"). Each call is tried first
//! and waits only after `EAGAIN`:
//! - A goroutine parks on the slot (`Registration::io`). It tries again once the slot reports
//!   an edge newer than the count taken before its call, or once a close or a deadline change
//!   wakes it.
//! - A future (`poll_recv_from`, `poll_recv`, `poll_send`, `poll_send_to`) returns `Pending`
//!   with its waker in the slot (`Registration::poll_io`).
//! - A plain thread outside the runtime blocks in `poll(2)` on the descriptor, 100 ms at a
//!   time, so that it sees a close or a deadline change.
//!
//! The calls go through `io`, not `io_bytes`. A datagram's length says nothing about what is
//! still queued, so a result never marks a direction drained; only `EAGAIN` leads to a wait.
//! `EINTR` is retried. Each send or receive spends one unit of the cooperative budget
//! (`coop`).
//!
//! Connected and unconnected. `connect` sets the default destination, and the kernel then drops
//! datagrams from other senders. It never waits on the socket, since a UDP connect only records the
//! peer. `send` and `poll_send` need a connected socket and fail with the kernel's error without
//! one. `recv`, `peek` and `poll_recv` take the next datagram (only the peer's, once connected),
//! without its sender's address. `send_to`, `recv_from` and `peek_from` work either way. `send_to`
//! resolves a host name on the blocking pool and sends to its first address. On a connected socket,
//! an ICMP error caused by an earlier send (`ConnectionRefused` from a closed port) comes back as
//! the error of a later call, and is returned, not retried.
//!
//! Zero-length buffers. The stream types answer a zero-length read with `Ok(0)` at once. A
//! receive here instead makes its call with the empty buffer, as std's does: it waits for a
//! datagram and consumes all of it, returning 0 (`peek` and `peek_from` leave it queued). A
//! zero-length send sends an empty datagram. So `Ok(0)` from `recv` means one of three things:
//! an empty datagram, a datagram received into an empty buffer, or reading shut down (below).
//!
//! Deadlines. Go's `set_read_deadline` and `set_write_deadline` live in this handle's poll
//! descriptor. Setting one wakes that slot's waiters, which check it again. A deadline that has
//! passed fails every call in its direction with `TimedOut` until it is moved. std's
//! `set_read_timeout` and `set_write_timeout` are also kept per handle (`timeouts.rs`). Each
//! bounds one blocking call as a whole, together with the deadline. The `poll_*` methods obey
//! the deadlines, through a timer that wakes the future when one passes, but not the
//! timeouts, which have no single call to bound. A `try_clone` gets its own poll descriptor,
//! so its own deadlines and `close`, and starts with a copy of this handle's timeouts.
//!
//! `close` marks this handle's poll descriptor closing and wakes its waiters. They, and every later
//! send or receive on this handle, fail with `ErrClosed` (an `ErrorKind::NotConnected` error that
//! wraps it). `close` does not shut the socket down (see Rejected). It does not reach other handles
//! either: a `try_clone` goes on receiving. Nor does it release the descriptor. The drop does that,
//! after it has deregistered the socket from its poller (if it was registered), so that no other
//! goroutine can see the number reused in the meantime. A plain thread blocked in this handle's
//! receive sees the close when its current 100 ms slice of `poll(2)` ends.
//!
//! Reading shut down from outside: a `shutdown(SHUT_RD)` on the socket, by any handle or
//! process, through its descriptor. It ends a receive the way std's blocking receive ends:
//! `Ok(0)` from `recv` and `peek`, and `InvalidInput` from `recv_from` and `peek_from`, which
//! have no sender's address to give. The kernel keeps answering `EAGAIN` in that state, so
//! `Registration::or_read_end` asks `poll(2)` whether reading is shut down. It asks only where
//! the shutdown may have gone unseen, so a server's receive that drains its socket makes no
//! extra call.
//!
//! Rejected: `close` calling `shutdown(2)`, as the stream types' `close` does (ARCHITECTURE.md,
//! "How a socket waits", item 5). std's `UdpSocket` has no `shutdown`. A datagram socket that
//! has been shut down polls readable for ever while its non-blocking receive says `EAGAIN`, so
//! a plain thread waiting on another handle would spin.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::task::{Context, Poll};
use std::time::Duration;

use super::addr::{each_addr, ToSocketAddrs};
use super::timeouts::Timeouts;
use crate::netpoll::desc::Direction;
use crate::netpoll::wait::Registration;

/// A UDP socket (`std::net::UdpSocket`'s API). Receives and sends park the goroutine.
pub struct UdpSocket {
    reg: Registration,
    inner: std::net::UdpSocket,
    timeouts: Timeouts,
}

/// What `recv_from` and `peek_from` give once reading is shut down: std's blocking receive
/// finds no sender's address then, and fails with `InvalidInput`.
fn no_sender() -> io::Result<(usize, SocketAddr)> {
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "gorust::net: no datagram to receive: reading is shut down on this socket",
    ))
}

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSocket")
            .field("addr", &self.inner.local_addr().ok())
            .finish()
    }
}

impl UdpSocket {
    fn from_std(inner: std::net::UdpSocket) -> io::Result<UdpSocket> {
        inner.set_nonblocking(true)?;
        Ok(UdpSocket {
            reg: Registration::new(inner.as_raw_fd()),
            inner,
            timeouts: Timeouts::default(),
        })
    }

    fn rt(&self) -> Option<Duration> {
        self.timeouts.read()
    }

    fn wt(&self) -> Option<Duration> {
        self.timeouts.write()
    }

    /// Binds to an address, trying each in turn.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(addr, |a| UdpSocket::from_std(std::net::UdpSocket::bind(a)?))
    }

    /// Receives a datagram and its sender's address. Once reading is shut down (a
    /// `shutdown(SHUT_RD)` on the descriptor, by any handle or process) and the queued
    /// datagrams are taken, fails with `InvalidInput`, as std's blocking receive does then
    /// (it finds no sender's address).
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.reg.io(Direction::Read, self.rt(), || {
            self.reg.or_read_end(self.inner.recv_from(buf), no_sender)
        })
    }

    /// As `recv_from`, leaving the datagram queued.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.reg.io(Direction::Read, self.rt(), || {
            self.reg.or_read_end(self.inner.peek_from(buf), no_sender)
        })
    }

    /// Sends a datagram to `addr` (resolved on the blocking pool if it is a name).
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let a = addr.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to")
        })?;
        self.reg
            .io(Direction::Write, self.wt(), || self.inner.send_to(buf, a))
    }

    /// Sets the default destination and filters received datagrams to it.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(addr, |a| self.inner.connect(a))
    }

    /// Sends to the connected address.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.reg
            .io(Direction::Write, self.wt(), || self.inner.send(buf))
    }

    /// Receives from the connected address. `Ok(0)` once reading is shut down and the queued
    /// datagrams are taken, as std's blocking receive gives then (and as an empty datagram
    /// does).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.reg.io(Direction::Read, self.rt(), || {
            self.reg.or_read_end(self.inner.recv(buf), || Ok(0))
        })
    }

    /// As `recv`, leaving the datagram queued.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.reg.io(Direction::Read, self.rt(), || {
            self.reg.or_read_end(self.inner.peek(buf), || Ok(0))
        })
    }

    /// The async face of `recv_from`.
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        self.reg.poll_io(cx, Direction::Read, || {
            self.reg.or_read_end(self.inner.recv_from(buf), no_sender)
        })
    }

    /// The async face of `recv`.
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.reg.poll_io(cx, Direction::Read, || {
            self.reg.or_read_end(self.inner.recv(buf), || Ok(0))
        })
    }

    /// The async face of `send`.
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.reg
            .poll_io(cx, Direction::Write, || self.inner.send(buf))
    }

    /// The async face of `send_to`.
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        addr: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        self.reg
            .poll_io(cx, Direction::Write, || self.inner.send_to(buf, addr))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// Another handle to the same socket, with its own poll descriptor: its deadlines and
    /// `close` are its own, and it starts with a copy of this handle's timeouts, which it then
    /// keeps apart (std's timeouts are socket options that every handle shares; see
    /// ARCHITECTURE.md, known limits).
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        let mut s = UdpSocket::from_std(self.inner.try_clone()?)?;
        s.timeouts = self.timeouts.duplicate();
        Ok(s)
    }

    super::timeouts::timeouts_and_deadlines!();

    /// Wakes parked receives and sends of this handle, which fail with [`super::ErrClosed`];
    /// the descriptor is released on drop. Unlike the stream types' `close`, the socket is not
    /// shut down (std's `UdpSocket` has no `shutdown`): a `try_clone` goes on receiving, and a
    /// plain thread blocked in this handle's receive sees the close within 100 ms.
    pub fn close(&self) -> io::Result<()> {
        self.reg.close();
        Ok(())
    }

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.inner.set_broadcast(on)
    }

    /// Reads `SO_BROADCAST`.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.inner.broadcast()
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.ttl()
    }

    /// Joins an IPv4 multicast group.
    pub fn join_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.join_multicast_v4(group, interface)
    }

    /// Leaves an IPv4 multicast group.
    pub fn leave_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.leave_multicast_v4(group, interface)
    }

    /// Joins an IPv6 multicast group.
    pub fn join_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.inner.join_multicast_v6(group, interface)
    }

    /// Leaves an IPv6 multicast group.
    pub fn leave_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.inner.leave_multicast_v6(group, interface)
    }

    /// Sets `IP_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.inner.set_multicast_loop_v4(on)
    }

    /// Reads `IP_MULTICAST_LOOP`.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.inner.multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_TTL`.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_multicast_ttl_v4(ttl)
    }

    /// Reads `IP_MULTICAST_TTL`.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.inner.multicast_ttl_v4()
    }

    /// Sets `IPV6_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.inner.set_multicast_loop_v6(on)
    }

    /// Reads `IPV6_MULTICAST_LOOP`.
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.inner.multicast_loop_v6()
    }

    /// Reads and clears `SO_ERROR`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl From<OwnedFd> for UdpSocket {
    /// Takes a UDP socket; it is switched to non-blocking mode.
    fn from(fd: OwnedFd) -> UdpSocket {
        let inner = std::net::UdpSocket::from(fd);
        super::adopted(inner.set_nonblocking(true));
        UdpSocket {
            reg: Registration::new(inner.as_raw_fd()),
            inner,
            timeouts: Timeouts::default(),
        }
    }
}

impl From<std::net::UdpSocket> for UdpSocket {
    fn from(s: std::net::UdpSocket) -> UdpSocket {
        UdpSocket::from(OwnedFd::from(s))
    }
}

impl FromRawFd for UdpSocket {
    /// # Safety
    ///
    /// `fd` must be an open UDP socket that the caller owns and gives up.
    unsafe fn from_raw_fd(fd: RawFd) -> UdpSocket {
        // SAFETY: forwarded from the caller.
        UdpSocket::from(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

impl From<UdpSocket> for OwnedFd {
    /// The descriptor, out of the netpoller (as std's `From<UdpSocket> for OwnedFd`). It
    /// stays in non-blocking mode.
    fn from(s: UdpSocket) -> OwnedFd {
        let UdpSocket { reg, inner, .. } = s;
        drop(reg); // leave epoll before giving the descriptor away
        inner.into()
    }
}

impl IntoRawFd for UdpSocket {
    fn into_raw_fd(self) -> RawFd {
        let UdpSocket { reg, inner, .. } = self;
        drop(reg);
        inner.into_raw_fd()
    }
}
