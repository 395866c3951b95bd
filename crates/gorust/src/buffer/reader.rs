//! The reader: netpoll's `Next`, `Peek`, `Skip`, `Until`, `ReadByte`, `Slice`.
//!
//! Every method that returns bytes takes `&self` and moves the cursor through a `Cell`, so a
//! handler may hold several slices at once (a header and a body); [`LinkBuffer::release`] and
//! every writer take `&mut self`, so none of those slices can be alive when nodes are returned
//! to the pool or bytes are written. Asking for more than is readable returns
//! [`Error`](super::Error) and consumes nothing.

use super::error::{Error, Result};
use super::link::{LinkBuffer, Scan};
use super::slice::Slice;

impl LinkBuffer {
    /// Reads and consumes the next `n` bytes.
    ///
    /// Zero-copy when the `n` bytes lie in one node; when they span nodes they are copied into
    /// a temporary owned buffer ([`Slice::is_borrowed`] tells which). The node memory stays
    /// until [`release`](LinkBuffer::release), which the slice's borrow prevents while it
    /// lives.
    ///
    /// # Errors
    ///
    /// [`Error::Short`] if fewer than `n` bytes are readable; nothing is consumed.
    pub fn next(&self, n: usize) -> Result<Slice<'_>> {
        self.check(n)?;
        let (idx, off, run) = self.head();
        if let Some(bytes) = run.get(..n) {
            self.advance_head(idx, off, n);
            return Ok(Slice::borrowed(bytes));
        }
        let copy = self.copy_out(n);
        self.advance_cursor(n);
        Ok(copy)
    }

    /// Returns the next `n` bytes without consuming them; copied only if they span nodes, as
    /// with [`next`](LinkBuffer::next).
    ///
    /// # Errors
    ///
    /// [`Error::Short`] if fewer than `n` bytes are readable.
    pub fn peek(&self, n: usize) -> Result<Slice<'_>> {
        self.check(n)?;
        match self.head().2.get(..n) {
            Some(bytes) => Ok(Slice::borrowed(bytes)),
            None => Ok(self.copy_out(n)),
        }
    }

    /// Consumes the next `n` bytes without reading them.
    ///
    /// # Errors
    ///
    /// [`Error::Short`] if fewer than `n` bytes are readable; nothing is consumed.
    pub fn skip(&self, n: usize) -> Result<()> {
        self.check(n)?;
        let (idx, off, run) = self.head();
        if n <= run.len() {
            self.advance_head(idx, off, n);
        } else {
            self.advance_cursor(n);
        }
        Ok(())
    }

    /// Reads and consumes the bytes up to and including the first `delim`; borrowed or copied
    /// as with [`next`](LinkBuffer::next).
    ///
    /// # Errors
    ///
    /// [`Error::NoDelimiter`] if no readable byte is `delim`; nothing is consumed.
    pub fn until(&self, delim: u8) -> Result<Slice<'_>> {
        // Search on from the bytes a failed search already read (`Scan`).
        let clean = self.scan.get().clean_for(delim);
        let (idx, off, run) = self.head();
        let from = clean.min(run.len());
        if let Some(i) = run[from..].iter().position(|&b| b == delim) {
            let n = from + i + 1;
            self.advance_head(idx, off, n);
            return Ok(Slice::borrowed(&run[..n]));
        }
        // Not in the cursor's node (the first run): search the next ones, then copy.
        let mut seen = run.len();
        for run in self.runs(self.len()).skip(1) {
            let from = clean.saturating_sub(seen).min(run.len());
            if let Some(i) = run[from..].iter().position(|&b| b == delim) {
                return self.next(seen + from + i + 1);
            }
            seen += run.len();
        }
        self.scan.set(Scan::new(delim, self.len()));
        Err(Error::NoDelimiter {
            delim,
            buffered: self.len(),
        })
    }

    /// Reads and consumes one byte.
    ///
    /// # Errors
    ///
    /// [`Error::Short`] if nothing is readable.
    pub fn read_byte(&self) -> Result<u8> {
        let (idx, off, run) = self.head();
        let Some(&b) = run.first() else {
            return Err(Error::Short {
                wanted: 1,
                buffered: 0,
            });
        };
        self.advance_head(idx, off, 1);
        Ok(b)
    }

    /// The next `n` readable bytes (`n <= len`) copied out.
    fn copy_out(&self, n: usize) -> Slice<'_> {
        let mut copy = Vec::with_capacity(n);
        self.runs(n).for_each(|run| copy.extend_from_slice(run));
        Slice::copied(copy)
    }

    /// Moves the next `n` bytes into a new buffer without copying them.
    ///
    /// Nodes that lie wholly within the `n` bytes move to the new buffer. A node that holds
    /// both sides of the boundary (or unflushed bytes past it) is shared by reference count:
    /// the new buffer gets a read-only view of the first part, this buffer keeps the rest and
    /// the free space. The block returns to the pool when both are done with it. Nodes already
    /// read are released first.
    ///
    /// # Errors
    ///
    /// [`Error::Short`] if fewer than `n` bytes are readable; nothing is moved.
    pub fn slice(&mut self, n: usize) -> Result<LinkBuffer> {
        self.check(n)?;
        self.release();
        let mut out = LinkBuffer::new();
        let mut left = n;
        while left > 0 {
            let Some(head) = self.nodes.front_mut() else {
                unreachable!("gorust::buffer: {left} readable bytes missing from the chain");
            };
            let avail = head.flushed() - head.start();
            if avail <= left && head.is_settled() {
                if let Some(node) = self.nodes.pop_front() {
                    out.push_node(node);
                }
                left -= avail;
            } else {
                let k = avail.min(left);
                out.push_node(head.split_front(k));
                left -= k;
            }
        }
        out.len.set(n);
        self.consumed(n);
        self.reset_cursor();
        // A buffer left with nothing holds no node (a fresh tail from `chunk_mut` stayed
        // behind the moved ones before; review, session 28).
        self.release();
        Ok(out)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::buffer::NODE_SIZES;

    #[test]
    fn next_is_zero_copy_within_a_node_and_copies_across() {
        let mut b = LinkBuffer::new();
        b.write_bytes(b"hello world");
        b.flush();
        let h = b.next(5).unwrap();
        assert!(h.is_borrowed());
        assert_eq!(h, b"hello");
        b.skip(1).unwrap();
        let w = b.next(5).unwrap();
        assert_eq!(w, b"world");
        assert_eq!(h, b"hello", "an earlier slice stays valid");
        assert!(b.is_empty());
        drop((h, w));
        b.release();
        assert_eq!(b.node_count(), 0);
    }

    #[test]
    fn a_read_spanning_nodes_is_copied() {
        let mut b = LinkBuffer::new();
        b.write_bytes(&vec![7u8; NODE_SIZES[0] - 2]);
        b.malloc(NODE_SIZES[0]).fill(9); // does not fit the tail: a second node
        b.flush();
        assert_eq!(b.node_count(), 2);
        b.skip(NODE_SIZES[0] - 4).unwrap();
        let s = b.next(4).unwrap();
        assert!(!s.is_borrowed());
        assert_eq!(s, [7, 7, 9, 9]);
        let s = b.next(4).unwrap();
        assert!(s.is_borrowed());
        assert_eq!(s, [9; 4]);
    }

    #[test]
    fn errors_consume_nothing() {
        let mut b = LinkBuffer::new();
        b.write_bytes(b"abc");
        assert_eq!(
            b.next(1).unwrap_err(),
            Error::Short {
                wanted: 1,
                buffered: 0
            },
            "unflushed bytes are not readable"
        );
        b.flush();
        assert_eq!(
            b.peek(4).unwrap_err(),
            Error::Short {
                wanted: 4,
                buffered: 3
            }
        );
        assert!(b.skip(4).is_err());
        assert_eq!(
            b.until(b'\n').unwrap_err(),
            Error::NoDelimiter {
                delim: b'\n',
                buffered: 3
            }
        );
        assert_eq!(b.len(), 3);
        assert_eq!(b.read_byte(), Ok(b'a'));
        assert_eq!(b.until(b'c').unwrap(), b"bc");
        assert!(b.read_byte().is_err());
        assert_eq!(b.next(0).unwrap(), b"");
    }

    #[test]
    fn a_failed_until_is_not_searched_again() {
        // A long line trickling in: each search reads only the bytes that arrived since the
        // last one, so the whole line is searched once however slowly it comes.
        let mut b = LinkBuffer::new();
        for _ in 0..3 * NODE_SIZES[0] / 100 {
            b.write_bytes(&[b'x'; 100]);
            b.flush();
            assert!(b.until(b'\n').is_err());
            assert_eq!(b.scan.get().clean_for(b'\n'), b.len());
            b.check_invariants().unwrap();
        }
        assert!(b.node_count() > 1, "the line spans nodes");
        // Another delimiter knows nothing of that search.
        assert_eq!(b.scan.get().clean_for(b';'), 0);
        b.write_bytes(b"x;y\nz");
        b.flush();
        let line_len = b.len() - 1;
        assert_eq!(
            b.until(b'\n').unwrap().len(),
            line_len,
            "found past the clean run"
        );
        assert_eq!(b.len(), 1);
        b.check_invariants().unwrap();
    }

    #[test]
    fn consuming_shortens_the_clean_run_and_another_delimiter_ignores_it() {
        let mut b = LinkBuffer::new();
        b.write_bytes(b"abcdef");
        b.flush();
        assert!(b.until(b'\n').is_err());
        assert_eq!(b.scan.get().clean_for(b'\n'), 6);
        b.skip(2).unwrap();
        assert_eq!(b.scan.get().clean_for(b'\n'), 4);
        assert_eq!(b.next(1).unwrap(), b"c");
        assert_eq!(b.read_byte(), Ok(b'd'));
        assert_eq!(b.scan.get().clean_for(b'\n'), 2);
        // A search for another delimiter starts at the cursor, and a success records nothing.
        assert_eq!(b.until(b'e').unwrap(), b"e");
        assert_eq!(b.scan.get().clean_for(b'e'), 0);
        b.write_bytes(b"\n");
        b.flush();
        assert_eq!(b.until(b'\n').unwrap(), b"f\n");
        let mut rest = b.slice(0).unwrap();
        assert!(rest.is_empty());
        rest.write_bytes(b"\n");
        rest.flush();
        assert_eq!(rest.until(b'\n').unwrap(), b"\n");
        b.check_invariants().unwrap();
    }

    #[test]
    fn slice_moves_whole_nodes_and_shares_a_split_one() {
        let mut b = LinkBuffer::new();
        b.write_bytes(&[1; 100]);
        b.malloc(NODE_SIZES[0]).fill(2); // second node
        b.flush();
        b.skip(10).unwrap();
        let mut s = b.slice(90 + 50).unwrap();
        assert_eq!(s.len(), 140);
        assert_eq!(s.node_count(), 2);
        assert_eq!(b.node_count(), 1);
        assert!(b.nodes[0].is_shared());
        assert_eq!(b.len(), NODE_SIZES[0] - 50);
        assert_eq!(&*s.next(90).unwrap(), &[1; 90][..]);
        assert_eq!(&*s.next(50).unwrap(), &[2; 50][..]);
        // Writing to the slice cannot touch the shared block: its view is read-only.
        s.write_bytes(b"xyz");
        s.flush();
        assert_eq!(s.next(3).unwrap(), b"xyz");
        assert_eq!(s.node_count(), 3);
        drop(s);
        assert!(!b.nodes[0].is_shared());
        assert_eq!(b.next(3).unwrap(), [2, 2, 2]);
    }

    /// Sliced to the end, a buffer holds no node, also when `chunk_mut` had pushed a fresh
    /// tail behind a full one (it stayed, 4 KiB held for nothing; review, session 28).
    #[test]
    fn slicing_everything_leaves_no_node() {
        let mut b = LinkBuffer::new();
        b.write_bytes(&[1; NODE_SIZES[0]]);
        b.flush();
        let _ = bytes::BufMut::chunk_mut(&mut b);
        assert_eq!(b.node_count(), 2, "a fresh tail behind the full node");
        let s = b.slice(NODE_SIZES[0]).unwrap();
        assert_eq!((b.len(), b.malloc_len(), b.node_count()), (0, 0, 0));
        assert_eq!(s.len(), NODE_SIZES[0]);
        b.check_invariants().unwrap();
    }

    #[test]
    fn slice_splits_at_unflushed_bytes() {
        let mut b = LinkBuffer::new();
        b.write_bytes(b"ready");
        b.flush();
        b.write_bytes(b"later");
        let mut s = b.slice(5).unwrap();
        assert_eq!(s.next(5).unwrap(), b"ready");
        assert!(b.is_empty());
        b.flush();
        assert_eq!(b.next(5).unwrap(), b"later");
        s.release();
        assert_eq!(s.node_count(), 0);
    }
}
