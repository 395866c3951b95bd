//! `std::io::Read`, `BufRead` and `Write`.
//!
//! The readers consume through `&mut self`, so they return each node to the pool as soon as it
//! is read. `Write` appends like [`LinkBuffer::write_bytes`]: bytes are pending until
//! `Write::flush` (which is [`LinkBuffer::flush`]).

use std::io::{self, BufRead, Read, Write};

use super::link::LinkBuffer;

impl Read for LinkBuffer {
    /// Copies out and consumes up to `out.len()` readable bytes; `Ok(0)` when none are (an
    /// empty buffer is not an error here, as for `&[u8]`).
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = out.len().min(self.len());
        let mut at = 0;
        for run in self.runs(n) {
            out[at..at + run.len()].copy_from_slice(run);
            at += run.len();
        }
        self.consume_and_release(n);
        Ok(n)
    }
}

impl BufRead for LinkBuffer {
    /// The readable bytes of the first node that has some (empty if none): no copy.
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        Ok(self.head().2)
    }

    /// Consumes `amt` bytes, at most all that are readable.
    fn consume(&mut self, amt: usize) {
        self.consume_and_release(amt.min(self.len()));
    }
}

impl Write for LinkBuffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.write_bytes(bytes);
        Ok(bytes.len())
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_bytes(bytes);
        Ok(())
    }

    /// Makes the written bytes readable; never fails.
    fn flush(&mut self) -> io::Result<()> {
        LinkBuffer::flush(self);
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::buffer::NODE_SIZES;

    #[test]
    fn write_read_and_bufread_round_trip() {
        let mut b = LinkBuffer::new();
        write!(b, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(b.len(), 0);
        Write::flush(&mut b).unwrap();
        let mut line = String::new();
        b.read_line(&mut line).unwrap();
        assert_eq!(line, "GET / HTTP/1.1\r\n");
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"Host: x\r\n\r\n");
        assert_eq!(b.node_count(), 0, "read nodes go back at once");
        assert_eq!(b.read(&mut [0; 4]).unwrap(), 0);
    }

    #[test]
    fn fill_buf_is_the_first_node() {
        let mut b = LinkBuffer::new();
        b.write_bytes(&[1; 10]);
        b.malloc(NODE_SIZES[0]).fill(2);
        b.flush();
        assert_eq!(b.fill_buf().unwrap(), &[1; 10]);
        b.consume(4);
        assert_eq!(b.fill_buf().unwrap(), &[1; 6]);
        b.consume(6);
        assert_eq!(b.node_count(), 1);
        assert_eq!(b.fill_buf().unwrap().len(), NODE_SIZES[0]);
        b.consume(usize::MAX);
        assert!(b.fill_buf().unwrap().is_empty());
        assert_eq!(b.node_count(), 0);
    }
}
