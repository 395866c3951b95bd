//! What the event loop can accept from: any listening socket that yields descriptors.

use std::io;
use std::os::fd::OwnedFd;

/// A listening socket the event loop accepts connections from.
///
/// Implemented for [`crate::net::TcpListener`] and [`crate::net::UnixListener`]. An
/// implementation's `accept_fd` parks the calling goroutine until a connection arrives and
/// returns it **non-blocking** (`accept4` with `SOCK_NONBLOCK`, as gorust's listeners do).
pub trait Listener: Send + Sync + 'static {
    /// Accepts one connection.
    ///
    /// # Errors
    ///
    /// As the listener's `accept`; after [`close`](Listener::close), an error.
    fn accept_fd(&self) -> io::Result<OwnedFd>;

    /// Stops accepting: a parked or later `accept_fd` fails.
    ///
    /// # Errors
    ///
    /// As the listener's `close`.
    fn close(&self) -> io::Result<()>;
}

impl Listener for crate::net::TcpListener {
    fn accept_fd(&self) -> io::Result<OwnedFd> {
        self.accept().map(|(s, _)| s.into())
    }

    fn close(&self) -> io::Result<()> {
        crate::net::TcpListener::close(self)
    }
}

impl Listener for crate::net::UnixListener {
    fn accept_fd(&self) -> io::Result<OwnedFd> {
        self.accept().map(|(s, _)| s.into())
    }

    fn close(&self) -> io::Result<()> {
        crate::net::UnixListener::close(self)
    }
}
