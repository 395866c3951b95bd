//! std's per-call timeouts (`set_read_timeout`/`set_write_timeout`), shared by every socket
//! type. Each blocking call reads them once and passes them to `Registration::io` as its own
//! deadline, beside the descriptor's Go-style deadline.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Read and write timeouts in nanoseconds, 0 for none. Atomics, not a lock: every read and
/// write call reads its timeout, and a `Mutex` there cost two atomic read-modify-writes per
/// call (~1% of the echo server's CPU). A timeout beyond `u64::MAX` ns (~584 years) is kept as
/// that, which waits just as forever.
#[derive(Debug, Default)]
pub(super) struct Timeouts {
    read: AtomicU64,
    write: AtomicU64,
}

fn encode(t: Option<Duration>) -> u64 {
    // `check` refused zero, so 0 is free to mean "none".
    t.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn decode(ns: u64) -> Option<Duration> {
    (ns != 0).then(|| Duration::from_nanos(ns))
}

impl Timeouts {
    pub(super) fn read(&self) -> Option<Duration> {
        decode(self.read.load(Relaxed))
    }

    pub(super) fn write(&self) -> Option<Duration> {
        decode(self.write.load(Relaxed))
    }

    /// `Some(ZERO)` is an error, as in std.
    pub(super) fn set_read(&self, t: Option<Duration>) -> io::Result<()> {
        check(t)?;
        self.read.store(encode(t), Relaxed);
        Ok(())
    }

    pub(super) fn set_write(&self, t: Option<Duration>) -> io::Result<()> {
        check(t)?;
        self.write.store(encode(t), Relaxed);
        Ok(())
    }

    /// A copy for a cloned handle.
    pub(super) fn duplicate(&self) -> Timeouts {
        Timeouts {
            read: AtomicU64::new(self.read.load(Relaxed)),
            write: AtomicU64::new(self.write.load(Relaxed)),
        }
    }
}

/// Refuses `Some(Duration::ZERO)`, as std does (a zero timeout would mean "never wait").
pub(super) fn check(t: Option<Duration>) -> io::Result<()> {
    if t == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(())
}

/// The seven timeout and deadline methods of the types that read and write (`TcpStream`,
/// `UdpSocket`, `UnixStream`, `UnixDatagram`), written once: std's per-call timeouts and Go's
/// deadlines (`net.Conn`'s and `net.PacketConn`'s three setters). Expands inside an `impl`
/// of a type with `timeouts: Timeouts` and `reg: Registration` fields. A listener has Go's
/// `SetDeadline` alone, for `accept`.
macro_rules! timeouts_and_deadlines {
    () => {
        /// std's per-call read timeout: each read (or receive) fails with `TimedOut` after
        /// waiting this long. `Some(Duration::ZERO)` is an error, as in std. Kept in
        /// nanoseconds: a timeout beyond ~584 years reads back (`read_timeout`) as that.
        pub fn set_read_timeout(&self, t: Option<::std::time::Duration>) -> ::std::io::Result<()> {
            self.timeouts.set_read(t)
        }

        /// std's per-call write (or send) timeout.
        pub fn set_write_timeout(&self, t: Option<::std::time::Duration>) -> ::std::io::Result<()> {
            self.timeouts.set_write(t)
        }

        /// The read (receive) timeout.
        pub fn read_timeout(&self) -> ::std::io::Result<Option<::std::time::Duration>> {
            Ok(self.timeouts.read())
        }

        /// The write (send) timeout.
        pub fn write_timeout(&self) -> ::std::io::Result<Option<::std::time::Duration>> {
            Ok(self.timeouts.write())
        }

        /// Go's `SetReadDeadline`: reads (receives) fail with `TimedOut` once `deadline`
        /// passes, until it is moved; a deadline in the past wakes a parked one at once. `None`
        /// clears it.
        pub fn set_read_deadline(
            &self,
            deadline: Option<::std::time::Instant>,
        ) -> ::std::io::Result<()> {
            use $crate::netpoll::desc::Direction;
            self.reg.desc().set_deadline(Direction::Read, deadline);
            Ok(())
        }

        /// Go's `SetWriteDeadline`, as [`set_read_deadline`](Self::set_read_deadline) for
        /// writes (sends).
        pub fn set_write_deadline(
            &self,
            deadline: Option<::std::time::Instant>,
        ) -> ::std::io::Result<()> {
            use $crate::netpoll::desc::Direction;
            self.reg.desc().set_deadline(Direction::Write, deadline);
            Ok(())
        }

        /// Go's `SetDeadline`: both directions.
        pub fn set_deadline(
            &self,
            deadline: Option<::std::time::Instant>,
        ) -> ::std::io::Result<()> {
            self.set_read_deadline(deadline)?;
            self.set_write_deadline(deadline)
        }
    };
}
pub(super) use timeouts_and_deadlines;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_trip_and_saturate() {
        let t = Timeouts::default();
        assert_eq!((t.read(), t.write()), (None, None));
        t.set_read(Some(Duration::from_nanos(1))).unwrap();
        t.set_write(Some(Duration::from_millis(1500))).unwrap();
        assert_eq!(t.read(), Some(Duration::from_nanos(1)));
        assert_eq!(t.write(), Some(Duration::from_millis(1500)));
        t.set_read(Some(Duration::MAX)).unwrap();
        assert_eq!(t.read(), Some(Duration::from_nanos(u64::MAX)));
        assert!(t.set_write(Some(Duration::ZERO)).is_err());
        assert_eq!(
            t.write(),
            Some(Duration::from_millis(1500)),
            "a refused value changes nothing"
        );
        let d = t.duplicate();
        t.set_read(None).unwrap();
        assert_eq!(
            (t.read(), d.read()),
            (None, Some(Duration::from_nanos(u64::MAX)))
        );
    }
}
