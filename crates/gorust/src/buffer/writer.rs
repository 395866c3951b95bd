//! The writer: netpoll's `Malloc`, `MallocAck`, `WriteBinary`, `Flush`.
//!
//! Writes go to the free space of the tail node, and to new nodes from the pool when it is
//! full. Written bytes are *pending* until [`LinkBuffer::flush`] makes them readable, so a
//! reader never sees half a message.

use super::error::{Error, Result};
use super::link::LinkBuffer;
use super::node::Node;
use super::pool;

impl LinkBuffer {
    /// Returns `n` contiguous bytes at the tail, to be filled and then made readable by
    /// [`flush`](LinkBuffer::flush). They count as written from now on.
    ///
    /// Fill all `n`, or acknowledge what was filled with
    /// [`malloc_ack`](LinkBuffer::malloc_ack): the bytes are initialised but not cleared, so a
    /// byte left unfilled holds whatever an earlier user of the pooled node wrote there (zeroes
    /// for a fresh node), and would be sent as it is.
    ///
    /// If the tail node has fewer than `n` free bytes, a new node of the smallest class that
    /// holds `n` is taken (its free space is what remains for the next writes); above the
    /// largest class, a block of `n` bytes rounded up to 4 KiB is allocated, its rounding
    /// slack left as room for the next writes, and freed, not pooled, once read.
    ///
    /// # Panics
    ///
    /// If `n` rounded up to 4 KiB overflows `isize` (as `Vec` does for capacity). If the
    /// allocator cannot provide the block, the process aborts, as for `Vec`
    /// ([`std::alloc::handle_alloc_error`]): a codec that takes a length from the wire must
    /// bound it before it calls `malloc` (the event loop's input limit bounds what it reads,
    /// not what a handler asks for).
    pub fn malloc(&mut self, n: usize) -> &mut [u8] {
        if n == 0 {
            return &mut [];
        }
        if self.tail_free() < n {
            self.push_node(Node::new(pool::take(n)));
        }
        self.pending += n;
        let Some(tail) = self.nodes.back_mut() else {
            unreachable!("gorust::buffer: a tail node was just ensured");
        };
        tail.commit(n);
        tail.pending_mut(n)
    }

    /// Keeps the first `n` bytes written since the last [`flush`](LinkBuffer::flush) and takes
    /// back the rest, netpoll's `MallocAck`: a codec that [`malloc`](LinkBuffer::malloc)s the
    /// most a message can need and fills less acknowledges what it filled, and the bytes after
    /// it are never sent. Nodes left holding nothing go back to the pool.
    ///
    /// # Errors
    ///
    /// [`Error::NotPending`] if fewer than `n` bytes are pending; nothing is changed.
    pub fn malloc_ack(&mut self, n: usize) -> Result<()> {
        if n > self.pending {
            return Err(Error::NotPending {
                kept: n,
                pending: self.pending,
            });
        }
        let mut surplus = self.pending - n;
        self.pending = n;
        // Pending bytes are the chain's last ones, after a fresh tail `chunk_mut` may have
        // pushed (module header): take them back from the end.
        while surplus > 0 {
            if self.pop_empty_tail() {
                continue;
            }
            let Some(tail) = self.nodes.back_mut() else {
                unreachable!("gorust::buffer: {surplus} pending bytes missing from the chain");
            };
            let k = (tail.written() - tail.flushed()).min(surplus);
            assert!(k > 0, "gorust::buffer: a settled node after pending bytes");
            tail.uncommit(k);
            surplus -= k;
        }
        // A node emptied to its start holds nothing; only a tail may, and only a fresh one.
        while self.pop_empty_tail() {}
        if self.nodes.is_empty() {
            self.reset_cursor();
        }
        Ok(())
    }

    /// Copies `bytes` to the tail, into as many nodes as it takes (each new one of the
    /// smallest class holding what is left, at most 64 KiB). Pending until
    /// [`flush`](LinkBuffer::flush).
    pub fn write_bytes(&mut self, mut bytes: &[u8]) {
        self.pending += bytes.len();
        while !bytes.is_empty() {
            if self.tail_free() == 0 {
                let class = pool::class_for(bytes.len()).unwrap_or(pool::NODE_SIZES.len() - 1);
                self.push_node(Node::new(pool::take_class(class)));
            }
            let Some(tail) = self.nodes.back_mut() else {
                unreachable!("gorust::buffer: a tail node was just ensured");
            };
            let k = tail.free_len().min(bytes.len());
            tail.free_mut(k).copy_from_slice(&bytes[..k]);
            tail.commit(k);
            bytes = &bytes[k..];
        }
    }

    /// Makes every written byte readable.
    pub fn flush(&mut self) {
        // Only the nodes at the tail can hold pending bytes: a node gets no writes once a
        // newer one follows it, and every earlier flush settled all nodes before it. A node
        // holding nothing (a fresh tail from `chunk_mut`) may sit after pending ones: pass it.
        for node in self.nodes.iter_mut().rev() {
            if node.is_settled() && !node.holds_nothing() {
                break;
            }
            node.flush();
        }
        self.len.set(self.len() + self.pending);
        self.pending = 0;
    }

    /// Free bytes of the tail node (0 without one).
    pub(super) fn tail_free(&self) -> usize {
        self.nodes.back().map_or(0, Node::free_len)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::buffer::NODE_SIZES;

    #[test]
    fn malloc_fills_the_tail_then_takes_a_node_that_fits() {
        let mut b = LinkBuffer::new();
        b.malloc(3).copy_from_slice(b"abc");
        assert_eq!(b.node_count(), 1);
        assert_eq!(b.capacity_bytes(), NODE_SIZES[0]);
        b.malloc(10_000).fill(b'x');
        assert_eq!(b.node_count(), 2);
        assert_eq!(b.capacity_bytes(), NODE_SIZES[0] + NODE_SIZES[1]);
        assert_eq!((b.len(), b.malloc_len()), (0, 10_003));
        b.flush();
        assert_eq!((b.len(), b.malloc_len()), (10_003, 0));
        assert_eq!(b.next(3).unwrap(), b"abc");
        assert!(b.next(10_000).unwrap().iter().all(|&c| c == b'x'));
    }

    #[test]
    fn large_malloc_takes_a_block_of_its_own() {
        let mut b = LinkBuffer::new();
        let m = b.malloc(200_000);
        assert_eq!(m.len(), 200_000);
        m[199_999] = 1;
        assert_eq!(b.capacity_bytes(), 200_704);
        b.flush();
        assert!(b.next(200_000).unwrap().is_borrowed());
        b.release();
        assert_eq!(b.capacity_bytes(), 0);
    }

    #[test]
    fn malloc_ack_keeps_the_filled_bytes_and_returns_emptied_nodes() {
        let mut b = LinkBuffer::new();
        b.write_bytes(b"hi");
        b.flush();
        // A codec asks for the most a message can take, fills 3 bytes and acknowledges them.
        let m = b.malloc(10_000);
        m[..3].copy_from_slice(b"abc");
        assert_eq!(b.node_count(), 2);
        b.malloc_ack(3).unwrap();
        assert_eq!((b.len(), b.malloc_len()), (2, 3));
        b.check_invariants().unwrap();
        // The malloc's node held 3 bytes of 16 KiB; the next write goes on after them.
        b.write_bytes(b"d");
        b.flush();
        assert_eq!(b.next(6).unwrap(), b"hiabcd");
        // Acknowledging nothing takes back every pending byte and the node they had alone.
        b.release();
        b.write_bytes(b"x");
        b.flush();
        b.malloc(NODE_SIZES[0]).fill(b'y');
        assert_eq!(b.node_count(), 2);
        b.malloc_ack(0).unwrap();
        assert_eq!((b.node_count(), b.len(), b.malloc_len()), (1, 1, 0));
        b.check_invariants().unwrap();
        assert_eq!(b.next(1).unwrap(), b"x");
        b.release();
        assert_eq!(b.node_count(), 0);
        b.malloc(100);
        b.malloc_ack(0).unwrap();
        assert_eq!((b.node_count(), b.capacity_bytes()), (0, 0));
        b.check_invariants().unwrap();
    }

    #[test]
    fn malloc_ack_of_more_than_is_pending_is_an_error_and_changes_nothing() {
        let mut b = LinkBuffer::new();
        b.malloc(5).copy_from_slice(b"hello");
        assert_eq!(
            b.malloc_ack(6),
            Err(Error::NotPending {
                kept: 6,
                pending: 5
            })
        );
        b.malloc_ack(5).unwrap();
        b.flush();
        assert_eq!(
            b.malloc_ack(1),
            Err(Error::NotPending {
                kept: 1,
                pending: 0
            })
        );
        assert_eq!(b.next(5).unwrap(), b"hello");
    }

    /// Found by the model test: `flush` stopped at the fresh tail `chunk_mut` had pushed (it
    /// looked settled) and left the pending bytes before it unflushed, while counting them.
    #[test]
    fn flush_passes_a_fresh_tail_left_by_chunk_mut() {
        use bytes::BufMut;
        let mut b = LinkBuffer::new();
        b.malloc(NODE_SIZES[0]).fill(1); // pending, and the node is full
        let _ = b.chunk_mut(); // a fresh node, no byte committed
        assert_eq!(b.node_count(), 2);
        b.flush();
        assert_eq!(b.next(NODE_SIZES[0]).unwrap().len(), NODE_SIZES[0]);
        b.write_bytes(&[2; 10]); // goes into the fresh node
        let _ = b.chunk_mut();
        b.malloc(NODE_SIZES[0]).fill(3); // does not fit: the fresh tail is replaced
        assert_eq!(b.node_count(), 3);
        b.flush();
        assert_eq!(b.next(10).unwrap(), [2; 10]);
        b.release();
        assert_eq!(b.node_count(), 1);
    }

    #[test]
    fn write_bytes_spreads_over_nodes_of_at_most_64k() {
        let mut b = LinkBuffer::new();
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        b.write_bytes(&data);
        assert_eq!(b.node_count(), 4);
        b.flush();
        assert_eq!(&*b.next(200_000).unwrap(), &data[..]);
    }
}
