//! Address resolution that never blocks a worker.
//!
//! `std::net::ToSocketAddrs` resolves host names with a blocking `getaddrinfo` on the calling
//! thread. This trait has the same name and the same implementations; literal addresses are
//! parsed in place, and names are resolved on the blocking pool while the goroutine parks.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Converts to socket addresses, resolving host names on the blocking pool.
pub trait ToSocketAddrs {
    /// The addresses, in the resolver's order.
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>>;
}

fn resolve(host_port: String) -> io::Result<Vec<SocketAddr>> {
    crate::blocking::blocking_io(move || {
        std::net::ToSocketAddrs::to_socket_addrs(&host_port).map(|i| i.collect())
    })
}

impl ToSocketAddrs for SocketAddr {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![*self])
    }
}

impl ToSocketAddrs for SocketAddrV4 {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::V4(*self)])
    }
}

impl ToSocketAddrs for SocketAddrV6 {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::V6(*self)])
    }
}

impl ToSocketAddrs for (IpAddr, u16) {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::new(self.0, self.1)])
    }
}

impl ToSocketAddrs for (Ipv4Addr, u16) {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::new(IpAddr::V4(self.0), self.1)])
    }
}

impl ToSocketAddrs for (Ipv6Addr, u16) {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::new(IpAddr::V6(self.0), self.1)])
    }
}

impl ToSocketAddrs for (&str, u16) {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        if let Ok(ip) = self.0.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, self.1)]);
        }
        resolve(format!("{}:{}", self.0, self.1))
    }
}

impl ToSocketAddrs for (String, u16) {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        (self.0.as_str(), self.1).to_socket_addrs()
    }
}

impl ToSocketAddrs for str {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        if let Ok(a) = self.parse::<SocketAddr>() {
            return Ok(vec![a]);
        }
        // Split and checked here, as std does before it resolves: a string with no port or a
        // bad one is `InvalidInput` at once, with std's message, without a trip to the pool
        // (from a future on a worker, which may not wait for the pool, it was the error
        // saying so instead; review, session 23).
        let invalid = |what| io::Error::new(io::ErrorKind::InvalidInput, what);
        let (host, port) = self
            .rsplit_once(':')
            .ok_or_else(|| invalid("invalid socket address"))?;
        let port: u16 = port.parse().map_err(|_| invalid("invalid port value"))?;
        (host, port).to_socket_addrs()
    }
}

impl ToSocketAddrs for String {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.as_str().to_socket_addrs()
    }
}

impl ToSocketAddrs for [SocketAddr] {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.to_vec())
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        (**self).to_socket_addrs()
    }
}

/// Tries `f` on each address in turn; returns the first success or the last error.
pub(crate) fn each_addr<T>(
    addr: impl ToSocketAddrs,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let addrs = addr.to_socket_addrs()?;
    let mut last = None;
    for a in &addrs {
        match f(a) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}
