//! Vectored system calls: one `readv` into the tail and new nodes, one `writev` of the readable
//! nodes.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd};

use super::link::LinkBuffer;
use super::node::Node;
use super::pool::{self, NODE_SIZES};
use crate::sys;

/// At most this many iovecs per [`LinkBuffer::read_from_fd`]: the tail's free space and new
/// nodes of 4, 16 and then 64 KiB. 8 cover at least 340 KiB.
pub const READ_IOVECS: usize = 8;

/// At most this many iovecs (nodes) per [`LinkBuffer::write_to_fd`].
pub const WRITE_IOVECS: usize = 64;

impl LinkBuffer {
    /// Reads up to `max` bytes from `fd` with one `readv` (retried on `EINTR`), into the free
    /// space of the tail node and then into new nodes of growing size (4 KiB, 16 KiB, then
    /// 64 KiB), at most [`READ_IOVECS`] iovecs; new nodes that receive nothing go straight
    /// back to the pool. What was read is readable at once: this flushes, so bytes written and
    /// not yet flushed become readable too, before the new ones.
    ///
    /// Returns the bytes read: `Ok(0)` at end of file, or at once, without a system call, if
    /// `max` is 0. Reads fewer than `max` bytes when fewer are available, or when `max` is more
    /// than [`READ_IOVECS`] iovecs cover (at least 340 KiB).
    ///
    /// # Errors
    ///
    /// The `readv` error, `WouldBlock` included; the buffer is then as it was.
    pub fn read_from_fd(&mut self, fd: BorrowedFd<'_>, max: usize) -> io::Result<usize> {
        if max == 0 {
            return Ok(0);
        }
        // 1. Plan the iovecs: the tail's free space, then fresh nodes until `max` is covered.
        let first_new = self.nodes.len();
        let use_tail = self.tail_free() > 0;
        let first_iov = first_new - usize::from(use_tail);
        let mut planned = self.tail_free().min(max);
        let mut class = 0;
        while planned < max && self.nodes.len() - first_iov < READ_IOVECS {
            let node = Node::new(pool::take_class(class));
            planned += node.free_len().min(max - planned);
            self.push_fresh(node);
            class = (class + 1).min(NODE_SIZES.len() - 1);
        }
        // 2. One readv.
        let result = {
            let mut iov: [IoSliceMut<'_>; READ_IOVECS] =
                std::array::from_fn(|_| IoSliceMut::new(&mut []));
            let mut left = max;
            let mut cnt = 0;
            for node in self.nodes.range_mut(first_iov..) {
                let k = node.free_len().min(left);
                iov[cnt] = IoSliceMut::new(node.free_mut(k));
                cnt += 1;
                left -= k;
            }
            sys::uio::readv(fd.as_raw_fd(), &mut iov[..cnt])
        };
        // 3. Commit what arrived, in iovec order; give back the fresh nodes that got nothing.
        let n = *result.as_ref().unwrap_or(&0);
        let mut left = n;
        for node in self.nodes.range_mut(first_iov..) {
            let k = node.free_len().min(left);
            node.commit(k);
            left -= k;
        }
        while self.nodes.len() > first_new && self.nodes.back().is_some_and(Node::holds_nothing) {
            self.nodes.pop_back();
        }
        if self.nodes.is_empty() {
            self.reset_cursor();
        }
        self.pending += n;
        if result.is_ok() {
            self.flush();
        }
        result
    }

    /// Writes the readable bytes to `fd` with one vectored write (retried on `EINTR`) of at
    /// most [`WRITE_IOVECS`] nodes, and consumes what was written; nodes written out go back to
    /// the pool at once. On a socket this is `sendmsg` with `MSG_NOSIGNAL` (a closed peer gives
    /// `EPIPE`, not `SIGPIPE`); on other descriptors, `writev`.
    ///
    /// Returns the bytes written; `Ok(0)` at once, without a system call, if nothing is
    /// readable.
    ///
    /// # Errors
    ///
    /// The system call's error, `WouldBlock` included; nothing is consumed.
    pub fn write_to_fd(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        if self.is_empty() {
            return Ok(0);
        }
        let n = {
            let mut iov = [IoSlice::new(&[]); WRITE_IOVECS];
            let mut cnt = 0;
            for run in self.runs(self.len()).take(WRITE_IOVECS) {
                iov[cnt] = IoSlice::new(run);
                cnt += 1;
            }
            sys::uio::writev(fd.as_raw_fd(), &iov[..cnt])?
        };
        self.consume_and_release(n);
        Ok(n)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn reads_into_the_tail_then_new_nodes_and_returns_unused_ones() {
        let (mut a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        let mut buf = LinkBuffer::new();
        buf.write_bytes(b"head:");
        a.write_all(&[5u8; 10_000]).unwrap();
        assert_eq!(buf.read_from_fd(b.as_fd(), 1 << 20).unwrap(), 10_000);
        // The tail (4 KiB, 5 bytes used) filled, then a new 4 KiB node, then a 16 KiB node got
        // the rest; the 64 KiB nodes planned after them got nothing and went back.
        assert_eq!(buf.node_count(), 3);
        assert_eq!(buf.capacity_bytes(), 2 * NODE_SIZES[0] + NODE_SIZES[1]);
        assert_eq!(buf.len(), 10_005);
        assert_eq!(buf.next(5).unwrap(), b"head:");
        assert!(buf.next(10_000).unwrap().iter().all(|&x| x == 5));
        let e = buf.read_from_fd(b.as_fd(), 100).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        buf.release();
        assert_eq!(buf.node_count(), 0);
        assert_eq!(buf.read_from_fd(b.as_fd(), 0).unwrap(), 0);
        drop(a);
        assert_eq!(buf.read_from_fd(b.as_fd(), 100).unwrap(), 0, "end of file");
        assert_eq!(buf.node_count(), 0);
    }

    #[test]
    fn max_bounds_the_read() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(&[1u8; 5000]).unwrap();
        let mut buf = LinkBuffer::new();
        assert_eq!(buf.read_from_fd(b.as_fd(), 4097).unwrap(), 4097);
        assert_eq!(buf.node_count(), 2);
        assert_eq!(buf.read_from_fd(b.as_fd(), 4097).unwrap(), 903);
        assert_eq!(buf.len(), 5000);
    }

    #[test]
    fn writes_every_node_in_one_call_and_consumes_it() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut buf = LinkBuffer::new();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        buf.write_bytes(&data);
        buf.flush();
        assert_eq!(buf.node_count(), 2);
        let mut out = Vec::new();
        while !buf.is_empty() {
            buf.write_to_fd(a.as_fd()).unwrap();
            let mut chunk = [0u8; 1 << 16];
            let n = b.read(&mut chunk).unwrap();
            out.extend_from_slice(&chunk[..n]);
        }
        while out.len() < data.len() {
            let mut chunk = [0u8; 1 << 16];
            let n = b.read(&mut chunk).unwrap();
            out.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(out, data);
        assert_eq!(buf.node_count(), 0);
        assert_eq!(buf.write_to_fd(a.as_fd()).unwrap(), 0);
    }
}
