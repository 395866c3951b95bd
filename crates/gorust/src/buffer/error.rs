//! The buffer's error: too few bytes buffered, or pending for `malloc_ack`.

use std::fmt;
use std::io;

/// Why a read of a [`LinkBuffer`](super::LinkBuffer) failed (nothing was consumed), or a
/// [`malloc_ack`](super::LinkBuffer::malloc_ack) (nothing was changed).
///
/// Converts into an [`io::Error`] of kind [`io::ErrorKind::UnexpectedEof`] for a read and
/// [`io::ErrorKind::InvalidInput`] for `malloc_ack`, whose inner error
/// (`get_ref`/`into_inner`) downcasts back to this type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `wanted` bytes were asked for but only `buffered` are readable.
    Short {
        /// Bytes asked for.
        wanted: usize,
        /// Bytes readable (flushed and not yet consumed).
        buffered: usize,
    },
    /// [`until`](super::LinkBuffer::until) found no `delim` in the `buffered` readable bytes.
    NoDelimiter {
        /// The byte looked for.
        delim: u8,
        /// Bytes readable, all searched.
        buffered: usize,
    },
    /// [`malloc_ack`](super::LinkBuffer::malloc_ack) was asked to keep `kept` bytes but only
    /// `pending` were written since the last flush.
    NotPending {
        /// Bytes asked to keep.
        kept: usize,
        /// Bytes written and not yet flushed.
        pending: usize,
    },
}

/// The result of a [`LinkBuffer`](super::LinkBuffer) read.
pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Short { wanted, buffered } => {
                write!(f, "wanted {wanted} bytes but only {buffered} are buffered")
            }
            Error::NoDelimiter { delim, buffered } => {
                write!(
                    f,
                    "no delimiter {delim:#04x} in the {buffered} buffered bytes"
                )
            }
            Error::NotPending { kept, pending } => write!(
                f,
                "cannot keep {kept} bytes: only {pending} were written since the last flush"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match e {
            Error::NotPending { .. } => io::ErrorKind::InvalidInput,
            Error::Short { .. } | Error::NoDelimiter { .. } => io::ErrorKind::UnexpectedEof,
        };
        io::Error::new(kind, e)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn converts_to_unexpected_eof_and_back() {
        let e = Error::Short {
            wanted: 5,
            buffered: 2,
        };
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(
            io.get_ref().and_then(|i| i.downcast_ref::<Error>()),
            Some(&e)
        );
        assert_eq!(e.to_string(), "wanted 5 bytes but only 2 are buffered");
        let d = Error::NoDelimiter {
            delim: b'\n',
            buffered: 3,
        };
        assert_eq!(d.to_string(), "no delimiter 0x0a in the 3 buffered bytes");
        let p = Error::NotPending {
            kept: 4,
            pending: 1,
        };
        assert_eq!(io::Error::from(p).kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            p.to_string(),
            "cannot keep 4 bytes: only 1 were written since the last flush"
        );
    }
}
