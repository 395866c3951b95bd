//! `gorust::net`: std's network types, for goroutines.
//!
//! The types have `std::net`'s names, methods and signatures, so a thread-per-connection
//! server ports by changing `std::net` to `gorust::net` and `std::thread::spawn` to
//! `gorust::go`. A call that would block parks the calling goroutine on the netpoller instead;
//! on a plain thread outside the runtime the same call blocks the thread, as std's would.
//!
//! Go's behaviours, each with a test in `tests/net_*.rs`:
//! - a deadline (`set_read_deadline`, or std's `set_read_timeout`) fails a call with
//!   `ErrorKind::TimedOut`, and keeps failing until it is moved; one set in the past wakes a
//!   parked call at once. The setters follow Go's interfaces: the stream and datagram types
//!   (Go's `Conn` and `PacketConn`) have `set_read_deadline`, `set_write_deadline` and
//!   `set_deadline` for both, the listeners `set_deadline` alone, for `accept`;
//! - `close` from another goroutine wakes a parked call, which fails with
//!   `ErrorKind::NotConnected` wrapping [`ErrClosed`] (Go's `net.ErrClosed`); `shutdown`
//!   wakes one too, which then sees end of stream (a read) or `BrokenPipe` (a write);
//! - a zero-length read or write of a stream returns `Ok(0)` at once (`ErrClosed` once
//!   closed); the peer's FIN gives `Ok(0)` (a zero-length datagram receive waits for a
//!   datagram and consumes it, as std's does);
//! - two goroutines writing to one stream at once do not interleave: each `write` (and
//!   `write_all`, `write_vectored`) holds the stream's write lock for its whole loop, as Go's
//!   `Write` holds the descriptor's (`netpoll/write_lock.rs`); the `poll_write` and
//!   `try_write` faces, one system call each, do not take it;
//! - `EINTR` is retried; `accept4` makes sockets non-blocking and close-on-exec in one call;
//!   `ECONNABORTED` from accept is retried silently;
//! - running out of descriptors (`EMFILE`) is returned by `accept` as an error at once, and
//!   [`serve`] backs off (5 ms doubling to 1 s) and recovers when descriptors free up.
//!
//! Host names are resolved on the blocking pool ([`ToSocketAddrs`]).
//!
//! Porting from std, mind where the behaviours differ:
//! - an expired `set_read_timeout`/`set_write_timeout` fails with `TimedOut`, where std on
//!   Unix usually says `WouldBlock` (its `SO_RCVTIMEO` gives `EAGAIN`): a loop that retries on
//!   `WouldBlock` must look for `TimedOut` too;
//! - the sockets are non-blocking underneath and have no `set_nonblocking`: a call that would
//!   block parks the goroutine, and the `poll_*` methods and the async traits give the
//!   non-blocking face;
//! - `close` has no std counterpart (std closes on drop); it acts on the socket, for every
//!   handle, except `UdpSocket::close`, which acts on its handle.
//! - timeouts belong to each handle, not to the socket: std keeps them in the socket
//!   (`SO_RCVTIMEO`), shared by its `try_clone`s; here a clone starts with a copy, and a socket
//!   adopted from std (`From`, `from_raw_fd`) starts with none;
//! - adopting a descriptor sets `O_NONBLOCK` on its open file description, which every
//!   duplicate of it shares (another process's too), and a descriptor handed back
//!   (`into_raw_fd`, `OwnedFd::from`) stays non-blocking;
//! - `TcpStream::write` and `UnixStream::write` write the whole buffer before they return (as
//!   Go's `Write`), parking as often as they must, where std's return after one partial send;
//!   an error after some bytes went out is returned by the next call, with the count written
//!   first;
//! - the `poll_*` methods and the async traits obey the deadlines (`set_read_deadline`) but
//!   not std's `set_read_timeout`/`set_write_timeout`, which bound one blocking-looking call
//!   and have no call to bound in a future's polls: time a future out with its runtime's
//!   timer instead (`tokio::time::timeout`, a deadline);
//! - `ToSocketAddrs` is this module's own trait of std's shape: generic code bounded on std's
//!   trait cannot hand its argument to these types (std's would resolve on the worker);
//! - `UnixStream::connect` to a listener whose backlog is full fails with `WouldBlock` at once,
//!   as Go's does, where std's blocking connect waits for room.

mod addr;
mod async_io;
mod serve;
mod tcp;
mod timeouts;
mod udp;
mod unix;

pub use addr::ToSocketAddrs;
pub(crate) use serve::Backoff;
pub use serve::{is_resource_exhausted, serve};
/// std's address and shutdown types, so that `use gorust::net::{TcpStream, Shutdown,
/// SocketAddr}` ports std code by its import alone.
pub use std::net::{
    AddrParseError, IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6,
};
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixIncoming, UnixListener, UnixStream};

/// The error inside an `io::Error` (kind `NotConnected`) returned by an operation on a socket
/// that another goroutine closed (Go's `net.ErrClosed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrClosed;

impl std::fmt::Display for ErrClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("use of closed network connection")
    }
}

impl std::error::Error for ErrClosed {}

/// Runs an `accept` until it returns something other than `ECONNABORTED` (a client that reset
/// its connection while it waited in the listen queue: nothing to hand the caller, and no
/// reason to fail the listener). Every other error, `EMFILE` included, is returned at once.
pub(crate) fn retry_aborted<T>(
    mut accept: impl FnMut() -> std::io::Result<T>,
) -> std::io::Result<T> {
    loop {
        match accept() {
            Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => continue,
            r => return r,
        }
    }
}

/// Takes the result of switching an adopted descriptor (`From<OwnedFd>`, `from_raw_fd`) to
/// non-blocking mode, which those infallible conversions cannot return. It does not fail:
/// std asks with `ioctl(FIONBIO)`, which the kernel answers for every open file, and an
/// `OwnedFd` is open. Were it ever to, the socket would stay blocking, and a call on it would
/// hold its worker's thread as a std call does, no worse.
pub(crate) fn adopted(switched: std::io::Result<()>) {
    debug_assert!(
        switched.is_ok(),
        "O_NONBLOCK refused on an adopted socket: {switched:?}"
    );
}

/// `true` if `e` is the error of an operation on a socket closed by another goroutine.
pub fn is_closed(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<ErrClosed>())
}

#[cfg(test)]
mod tests {
    use std::io;

    #[test]
    fn accept_retries_aborted_connections_and_returns_the_next() {
        let mut calls = 0;
        let r = super::retry_aborted(|| {
            calls += 1;
            if calls < 3 {
                Err(io::Error::from_raw_os_error(libc::ECONNABORTED))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(r.unwrap(), 3);
    }

    #[test]
    fn accept_returns_other_errors_at_once() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::EAGAIN, libc::EINVAL] {
            let mut calls = 0;
            let r: io::Result<()> = super::retry_aborted(|| {
                calls += 1;
                Err(io::Error::from_raw_os_error(errno))
            });
            assert_eq!(r.unwrap_err().raw_os_error(), Some(errno));
            assert_eq!(calls, 1, "errno {errno} must not be retried");
        }
    }
}
