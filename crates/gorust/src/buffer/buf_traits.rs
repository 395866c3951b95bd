//! `bytes::Buf` and `bytes::BufMut`, so codecs written against `bytes` read and write a
//! `LinkBuffer` directly.
//!
//! As everywhere, bytes put through `BufMut` are pending until [`LinkBuffer::flush`], and
//! `Buf` sees only readable bytes.

use std::io::IoSlice;

use bytes::buf::UninitSlice;
use bytes::{Buf, BufMut};

use super::link::LinkBuffer;
use super::node::Node;
use super::pool;

impl Buf for LinkBuffer {
    fn remaining(&self) -> usize {
        self.len()
    }

    /// The readable bytes of the first node that has some.
    fn chunk(&self) -> &[u8] {
        self.head().2
    }

    /// One `IoSlice` per node, from the cursor, as many as `dst` holds.
    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, run) in dst.iter_mut().zip(self.runs(self.len())) {
            *slot = IoSlice::new(run);
            n += 1;
        }
        n
    }

    /// Consumes `cnt` bytes; nodes read through go back to the pool at once.
    ///
    /// # Panics
    ///
    /// If `cnt` exceeds [`remaining`](Buf::remaining), as `Buf`'s contract allows (the
    /// reader methods, such as [`LinkBuffer::skip`], return an error instead).
    fn advance(&mut self, cnt: usize) {
        assert!(
            cnt <= self.len(),
            "gorust::buffer: advance({cnt}) past the {} readable bytes",
            self.len()
        );
        self.consume_and_release(cnt);
    }
}

// SAFETY: `chunk_mut` returns the tail node's free space, which is this buffer's alone, and
// `advance_mut` commits at most that much (checked), so the bytes committed are ones the caller
// initialised through `chunk_mut` (and were initialised already: blocks are zeroed).
unsafe impl BufMut for LinkBuffer {
    fn remaining_mut(&self) -> usize {
        isize::MAX as usize - self.len() - self.pending
    }

    /// Marks `cnt` more bytes of the tail as written (pending until `flush`).
    ///
    /// # Safety
    ///
    /// As `BufMut` requires: the first `cnt` bytes of the last `chunk_mut` are initialised.
    /// `cnt` beyond that chunk panics.
    unsafe fn advance_mut(&mut self, cnt: usize) {
        if cnt == 0 {
            return;
        }
        let Some(tail) = self.nodes.back_mut() else {
            panic!("gorust::buffer: advance_mut({cnt}) without a chunk_mut");
        };
        tail.commit(cnt);
        self.pending += cnt;
    }

    /// The tail node's free space; a new 4 KiB node if it has none.
    fn chunk_mut(&mut self) -> &mut UninitSlice {
        if self.tail_free() == 0 {
            self.push_node(Node::new(pool::take_class(0)));
        }
        let Some(tail) = self.nodes.back_mut() else {
            unreachable!("gorust::buffer: a tail node was just ensured");
        };
        let free = tail.free_len();
        UninitSlice::new(tail.free_mut(free))
    }

    fn put_slice(&mut self, src: &[u8]) {
        self.write_bytes(src);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::buffer::NODE_SIZES;

    #[test]
    fn buf_reads_across_nodes() {
        let mut b = LinkBuffer::new();
        b.put_u32(0xdead_beef);
        b.malloc(NODE_SIZES[0]).fill(7);
        b.put_u16(0x0102);
        b.flush();
        assert_eq!(b.remaining(), 4 + NODE_SIZES[0] + 2);
        let mut iov = [IoSlice::new(&[]); 4];
        // The malloc did not fit the first node's free space, and the u16 found none in the
        // second: three nodes.
        assert_eq!(b.chunks_vectored(&mut iov), 3);
        assert_eq!(iov[0].len(), 4);
        assert_eq!(iov[1].len(), NODE_SIZES[0]);
        assert_eq!(&*iov[2], &[1, 2]);
        let mut two = [IoSlice::new(&[]); 2];
        assert_eq!(b.chunks_vectored(&mut two), 2);
        assert_eq!(b.get_u32(), 0xdead_beef);
        b.advance(NODE_SIZES[0]);
        assert_eq!(b.get_u16(), 0x0102);
        assert_eq!(b.node_count(), 0);
    }

    #[test]
    fn bufmut_writes_into_chunks() {
        let mut b = LinkBuffer::new();
        let chunk = b.chunk_mut();
        assert_eq!(chunk.len(), NODE_SIZES[0]);
        chunk[..3].copy_from_slice(b"abc");
        // SAFETY: three bytes of the chunk were just written.
        unsafe { b.advance_mut(3) };
        b.put_bytes(b'z', NODE_SIZES[0]);
        b.flush();
        assert_eq!(b.len(), 3 + NODE_SIZES[0]);
        assert_eq!(b.next(4).unwrap(), b"abcz");
        assert_eq!(
            b.copy_to_bytes(NODE_SIZES[0] - 1),
            vec![b'z'; NODE_SIZES[0] - 1]
        );
    }

    #[test]
    #[should_panic(expected = "past the 2 readable bytes")]
    fn advance_past_the_end_panics_as_buf_allows() {
        let mut b = LinkBuffer::new();
        b.write_bytes(b"ab");
        b.flush();
        b.advance(3);
    }
}
