//! Address resolution that never blocks a worker.
//!
//! `std::net::ToSocketAddrs` resolves host names with a blocking `getaddrinfo` on the calling
//! thread. This trait has the same name, the same shape (an iterator of addresses, as
//! `type Iter`) and the same implementations; literal addresses are parsed in place, and names
//! are resolved on the blocking pool while the goroutine parks.
//!
//! It is a trait of its own, not std's: a bound on std's trait would take any implementation,
//! and std's resolves on the calling thread, which here is a worker. So generic code bounded
//! on `std::net::ToSocketAddrs` cannot hand its argument on; code that calls the method
//! (`addr.to_socket_addrs()?.next()`) ports unchanged (before session 30 it returned a `Vec`,
//! which is not an iterator).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Converts to socket addresses, resolving host names on the blocking pool.
pub trait ToSocketAddrs {
    /// The iterator of addresses returned.
    type Iter: Iterator<Item = SocketAddr>;

    /// The addresses, in the resolver's order.
    fn to_socket_addrs(&self) -> io::Result<Self::Iter>;
}

/// The iterator of every implementation here but `&T`'s.
type Addrs = std::vec::IntoIter<SocketAddr>;

fn resolve(host_port: String) -> io::Result<Addrs> {
    crate::blocking::blocking_io(move || {
        std::net::ToSocketAddrs::to_socket_addrs(&host_port)
            .map(|i| i.collect::<Vec<_>>().into_iter())
    })
}

impl ToSocketAddrs for SocketAddr {
    type Iter = Addrs;

    fn to_socket_addrs(&self) -> io::Result<Addrs> {
        Ok(vec![*self].into_iter())
    }
}

impl ToSocketAddrs for SocketAddrV4 {
    type Iter = Addrs;

    fn to_socket_addrs(&self) -> io::Result<Addrs> {
        Ok(vec![SocketAddr::V4(*self)].into_iter())
    }
}

impl ToSocketAddrs for SocketAddrV6 {
    type Iter = Addrs;

    fn to_socket_addrs(&self) -> io::Result<Addrs> {
        Ok(vec![SocketAddr::V6(*self)].into_iter())
    }
}

impl ToSocketAddrs for (IpAddr, u16) {
    type Iter = Addrs;

    fn to_socket_addrs(&self) -> io::Result<Addrs> {
        Ok(vec![SocketAddr::new(self.0, self.1)].into_iter())
    }
}

impl ToSocketAddrs for (Ipv4Addr, u16) {
    type Iter = Addrs;

    fn to_socket_addrs(&self) -> io::Result<Addrs> {
        Ok(vec![SocketAddr::new(IpAddr::V4(self.0), self.1)].into_iter())
    }
}

impl ToSocketAddrs for (Ipv6Addr, u16) {
    type Iter = Addrs;

    fn to_socket_addrs(&self) -> io::Result<Addrs> {
        Ok(vec![SocketAddr::new(IpAddr::V6(self.0), self.1)].into_iter())
    }
}

impl ToSocketAddrs for (&str, u16) {
    type Iter = Addrs;

    fn to_socket_addrs(&self) -> io::Result<Addrs> {
        if let Ok(ip) = self.0.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, self.1)].into_iter());
        }
        resolve(format!("{}:{}", self.0, self.1))
    }
}

impl ToSocketAddrs for (String, u16) {
    type Iter = Addrs;

    fn to_socket_addrs(&self) -> io::Result<Addrs> {
        (self.0.as_str(), self.1).to_socket_addrs()
    }
}

impl ToSocketAddrs for str {
    type Iter = Addrs;

    fn to_socket_addrs(&self) -> io::Result<Addrs> {
        if let Ok(a) = self.parse::<SocketAddr>() {
            return Ok(vec![a].into_iter());
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
    type Iter = Addrs;

    fn to_socket_addrs(&self) -> io::Result<Addrs> {
        self.as_str().to_socket_addrs()
    }
}

impl ToSocketAddrs for [SocketAddr] {
    type Iter = Addrs;

    fn to_socket_addrs(&self) -> io::Result<Addrs> {
        Ok(Vec::from(self).into_iter())
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    type Iter = T::Iter;

    fn to_socket_addrs(&self) -> io::Result<T::Iter> {
        (**self).to_socket_addrs()
    }
}

/// Tries `f` on each address in turn; returns the first success or the last error.
pub(crate) fn each_addr<T>(
    addr: impl ToSocketAddrs,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in &addr.to_socket_addrs()?.collect::<Vec<_>>() {
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
