//! The `LinkBuffer` type: its chain of nodes, read cursor and byte counts.
//!
//! The reader methods are in `reader.rs`, the writer's in `writer.rs`, system calls in `io.rs`,
//! the std and `bytes` traits in `std_io.rs` and `buf_traits.rs`, the invariant check in
//! `invariants.rs`; this file holds what they share: the fields and the helpers that keep the
//! invariants (module header).

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;

use super::error::{Error, Result};
use super::node::Node;
use super::pool::NODE_SIZES;
use super::spare;

/// A per-connection byte buffer made of pooled nodes, read without copying.
///
/// Bytes are appended at the tail ([`write_bytes`](LinkBuffer::write_bytes),
/// [`malloc`](LinkBuffer::malloc), [`read_from_fd`](LinkBuffer::read_from_fd)) and become
/// readable at [`flush`](LinkBuffer::flush); they are read from the head by
/// [`next`](LinkBuffer::next), [`peek`](LinkBuffer::peek), [`until`](LinkBuffer::until) and
/// friends, which return [`Slice`](super::Slice)s that borrow the buffer, and the nodes they
/// came from go back to the pool at [`release`](LinkBuffer::release). See the
/// [module documentation](super) for the layout and the rules.
///
/// An empty buffer holds no node and no allocation: an idle connection costs
/// `size_of::<LinkBuffer>()` bytes.
///
/// A `LinkBuffer` is `Send` but not `Sync`: the read methods take `&self` and move a cursor
/// kept in `Cell`s, so that several slices can be held at once.
pub struct LinkBuffer {
    /// The chain, head first. Changed only through `&mut self`.
    pub(super) nodes: VecDeque<Node>,
    /// The read cursor: index of a node in `nodes` and an offset into its block, with
    /// `start <= rd_off <= flushed` of that node. Moved by the `&self` readers; set back to the
    /// head by `release`. `(0, 0)` when `nodes` is empty.
    pub(super) rd_node: Cell<usize>,
    pub(super) rd_off: Cell<usize>,
    /// Readable bytes after the cursor (flushed, not consumed).
    pub(super) len: Cell<usize>,
    /// Bytes written but not yet flushed; they always follow every readable byte.
    pub(super) pending: usize,
    /// What the last failed [`until`](LinkBuffer::until) learnt: a run of readable bytes at
    /// the cursor that holds no delimiter, so the next search for it starts after them.
    pub(super) scan: Cell<Scan>,
}

impl LinkBuffer {
    /// An empty buffer. Allocates nothing.
    pub const fn new() -> LinkBuffer {
        LinkBuffer {
            nodes: VecDeque::new(),
            rd_node: Cell::new(0),
            rd_off: Cell::new(0),
            len: Cell::new(0),
            pending: 0,
            scan: Cell::new(Scan::NONE),
        }
    }

    /// Readable bytes: flushed and not yet consumed.
    pub fn len(&self) -> usize {
        self.len.get()
    }

    /// Whether no byte is readable (unflushed bytes may still be pending).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes written ([`malloc`](LinkBuffer::malloc), [`write_bytes`](LinkBuffer::write_bytes))
    /// but not yet made readable by [`flush`](LinkBuffer::flush). netpoll's `MallocLen`.
    pub fn malloc_len(&self) -> usize {
        self.pending
    }

    /// Nodes held. Zero for a new buffer, and again once everything written was read and
    /// released.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Bytes of node memory this buffer keeps alive: the sum of its nodes' block sizes, what
    /// an input limit should count. A block shared with another buffer after
    /// [`slice`](LinkBuffer::slice) counts in full in both.
    pub fn capacity_bytes(&self) -> usize {
        self.nodes.iter().map(Node::capacity).sum()
    }

    /// Returns the nodes already read to the pool, and any fully read node with nothing
    /// pending in it, so a buffer with nothing left to read holds no node (and frees its
    /// chain's own small allocation). A node still holding unread or unflushed bytes is kept.
    ///
    /// Takes `&mut self`: every [`Slice`](super::Slice) borrowed from the buffer must be gone,
    /// which the compiler checks.
    pub fn release(&mut self) {
        let (idx, off) = (self.rd_node.get(), self.rd_off.get());
        self.nodes.drain(..idx);
        if let Some(head) = self.nodes.front_mut() {
            head.release_to(off);
        }
        while self.nodes.front().is_some_and(Node::holds_nothing) {
            self.nodes.pop_front();
        }
        self.reset_cursor();
    }

    /// Moves the cursor to the head after the chain's front changed; frees an empty chain.
    pub(super) fn reset_cursor(&mut self) {
        self.rd_node.set(0);
        self.rd_off.set(self.nodes.front().map_or(0, Node::start));
        if self.nodes.is_empty() {
            // The ring's allocation too: an idle buffer holds no memory at all (the ring is
            // kept for this thread's next buffer, `spare.rs`).
            spare::give(std::mem::take(&mut self.nodes));
        }
    }

    /// Fails unless `n` bytes are readable.
    pub(super) fn check(&self, n: usize) -> Result<()> {
        if n > self.len() {
            return Err(Error::Short {
                wanted: n,
                buffered: self.len(),
            });
        }
        Ok(())
    }

    /// The read position moved past nodes read to their end, and the readable bytes of its
    /// node (empty only when nothing is readable): the fast path of every reader.
    pub(super) fn head(&self) -> (usize, usize, &[u8]) {
        let (mut idx, mut off) = (self.rd_node.get(), self.rd_off.get());
        if self.is_empty() {
            return (idx, off, &[]);
        }
        loop {
            let node = &self.nodes[idx];
            if off < node.flushed() {
                return (idx, off, node.bytes(off, node.flushed()));
            }
            // Readable bytes remain, so a next node exists.
            idx += 1;
            off = self.nodes[idx].start();
        }
    }

    /// Consumes the first `n` bytes of the run [`head`](LinkBuffer::head) returned at
    /// `(idx, off)`.
    pub(super) fn advance_head(&self, idx: usize, off: usize, n: usize) {
        self.rd_node.set(idx);
        self.rd_off.set(off + n);
        self.consumed(n);
    }

    /// Counts `n` readable bytes consumed from the front (the cursor has moved past them).
    pub(super) fn consumed(&self, n: usize) {
        self.len.set(self.len() - n);
        self.scan.set(self.scan.get().after_consuming(n));
    }

    /// The next `n` readable bytes (`n <= len`), as runs of contiguous bytes, one per node.
    pub(super) fn runs(&self, n: usize) -> Runs<'_> {
        debug_assert!(n <= self.len());
        Runs {
            nodes: &self.nodes,
            idx: self.rd_node.get(),
            off: self.rd_off.get(),
            left: n,
        }
    }

    /// Consumes `n` readable bytes (`n <= len`).
    pub(super) fn advance_cursor(&self, n: usize) {
        let mut runs = self.runs(n);
        for _ in runs.by_ref() {}
        self.rd_node.set(runs.idx);
        self.rd_off.set(runs.off);
        self.consumed(n);
    }

    /// Consumes `n` bytes (`n <= len`) and returns fully read nodes to the pool at once.
    pub(super) fn consume_and_release(&mut self, n: usize) {
        self.advance_cursor(n);
        self.release();
    }

    /// Appends a node at the tail, first dropping a tail that holds nothing (a fresh node
    /// from `chunk_mut` that got no byte), so that fresh nodes never pile up in the chain.
    pub(super) fn push_node(&mut self, node: Node) {
        self.pop_empty_tail();
        self.push_fresh(node);
    }

    /// Drops the tail node if it holds nothing, and says whether it did.
    pub(super) fn pop_empty_tail(&mut self) -> bool {
        if !self.nodes.back().is_some_and(Node::holds_nothing) {
            return false;
        }
        self.nodes.pop_back();
        let len = self.nodes.len();
        if len == 0 {
            // Kept allocated: `push_node` is about to push again (`malloc_ack` frees it).
            self.rd_node.set(0);
            self.rd_off.set(0);
        } else if self.rd_node.get() >= len {
            // The cursor was at the start of the dropped node, so past every byte of the one
            // before: put it at that one's end.
            self.rd_node.set(len - 1);
            self.rd_off.set(self.nodes[len - 1].flushed());
        }
        true
    }

    /// Appends a node at the tail, keeping the current tail whatever it holds.
    pub(super) fn push_fresh(&mut self, node: Node) {
        if self.nodes.is_empty() {
            self.rd_node.set(0);
            self.rd_off.set(node.start());
            if self.nodes.capacity() == 0 {
                self.nodes = spare::take();
            }
        }
        self.nodes.push_back(node);
    }

    /// Moves `other`'s bytes to the end of this buffer, linking its nodes into the chain
    /// without copying when that wastes no memory, and copying them otherwise. Both buffers
    /// are flushed first (every byte written to either becomes readable), since readable bytes
    /// may not follow unflushed ones.
    ///
    /// Linked only if every node of `other` but its last holds at least half its block in
    /// bytes (so none wastes more than it holds, however much is read off the front later),
    /// and then:
    /// - into a buffer with no node, if the last node is well filled too, or is no larger
    ///   than the largest pooled node (64 KiB) and its bytes and free room together fill half
    ///   of it: it becomes the tail, whose room later writes use (a node split off by
    ///   [`slice`](LinkBuffer::slice) has no room; holding 1 byte of a 64 KiB block, it was
    ///   linked, and kept the block for that byte: review, session 32);
    /// - into a buffer with nodes, if the bytes are more than 512, do not fit in the tail's
    ///   room, and `other`'s node memory plus that room (which linking strands) is at most
    ///   twice the bytes.
    ///
    /// Otherwise the bytes are copied (into the tail's room, then into new nodes) and
    /// `other`'s nodes go back to the pool. Node memory so stays within about twice the bytes,
    /// plus the node being read and the tail node.
    ///
    /// History: linked, each small append kept a node of its own, so a peer trickling one
    /// byte per segment cost the event loop 4 KiB per byte (review, session 8), and 513-byte
    /// segments cost a 4 KiB node each (review, session 20). A well-filled append that the
    /// tail had room for was still linked, stranding that room, so alternating large and
    /// small appends to a slow peer's output held 3.4 times the bytes in nodes, and 17 times
    /// with mostly empty `malloc`ed nodes (review, session 28; test
    /// `alternating_appends_keep_node_memory_near_the_bytes`); and the check over all of
    /// `other`'s nodes at once let mostly empty ones sit behind full ones, holding their
    /// memory for a few bytes once the full ones were read (test
    /// `appended_nodes_stay_well_filled_as_the_front_is_read`). The input and output limits
    /// count bytes, so they bound node memory only as far as this does.
    pub fn append(&mut self, mut other: LinkBuffer) {
        self.flush();
        other.flush();
        other.release();
        let Some(last) = other.nodes.back() else {
            return;
        };
        let n = other.len();
        let room = self.tail_free();
        let filled = |node: &Node| 2 * (node.flushed() - node.start()) >= node.capacity();
        let body_filled = other.nodes.iter().rev().skip(1).all(filled);
        let link = body_filled
            && if self.nodes.is_empty() {
                filled(last)
                    || (last.capacity() <= NODE_SIZES[NODE_SIZES.len() - 1]
                        && 2 * (last.flushed() - last.start() + last.free_len()) >= last.capacity())
            } else {
                n > COPY_APPEND_MAX && room < n && other.capacity_bytes() + room <= 2 * n
            };
        if !link {
            for run in other.runs(n) {
                self.write_bytes(run);
            }
            self.flush();
            return;
        }
        self.len.set(self.len() + other.len());
        other.len.set(0);
        for node in other.nodes.drain(..) {
            self.push_node(node);
        }
    }
}

/// The readable bytes at the cursor known to hold no `delim`, packed `clean << 8 | delim` in
/// one word (an idle buffer is 72 bytes with it, 64 without).
///
/// Bytes are only ever consumed from the front and written at the back, so a run found clean
/// stays clean while the buffer fills, and shrinks by what is consumed. A search that fails
/// sets it to every readable byte; the next search for the same delimiter reads only what
/// arrived since. Without it, a peer trickling a long line toward the input limit made each
/// arrival rescan everything buffered: quadratic in the line (review, session 20).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Scan(u64);

impl Scan {
    /// Nothing known.
    pub(crate) const NONE: Scan = Scan(0);

    /// The first `clean` readable bytes hold no `delim`.
    pub(crate) fn new(delim: u8, clean: usize) -> Scan {
        // 2^56 bytes is beyond any buffer; a longer run is simply searched again.
        let clean = (clean as u64).min(u64::MAX >> 8);
        Scan(clean << 8 | u64::from(delim))
    }

    /// The delimiter and the length of the run free of it.
    pub(crate) fn parts(self) -> (u8, usize) {
        // `clean` came from a usize (see `new`).
        (self.0 as u8, (self.0 >> 8) as usize)
    }

    /// How many readable bytes a search for `delim` may skip.
    pub(crate) fn clean_for(self, delim: u8) -> usize {
        match self.parts() {
            (d, clean) if d == delim => clean,
            _ => 0,
        }
    }

    /// The run after `n` bytes left the front.
    fn after_consuming(self, n: usize) -> Scan {
        let (delim, clean) = self.parts();
        Scan::new(delim, clean.saturating_sub(n))
    }
}

/// The most bytes [`LinkBuffer::append`] copies into a buffer that has nodes instead of
/// linking its own, however well they fill them.
pub(crate) const COPY_APPEND_MAX: usize = 512;

/// Runs of contiguous readable bytes from a position, ending after a byte count. `idx`/`off`
/// end where the last run ended.
pub(super) struct Runs<'a> {
    nodes: &'a VecDeque<Node>,
    idx: usize,
    off: usize,
    left: usize,
}

impl<'a> Iterator for Runs<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while self.left > 0 {
            let node = &self.nodes[self.idx];
            let avail = node.flushed() - self.off;
            if avail == 0 {
                // Readable bytes remain (left > 0), so a next node exists.
                self.idx += 1;
                self.off = self.nodes[self.idx].start();
                continue;
            }
            let k = avail.min(self.left);
            let run = node.bytes(self.off, self.off + k);
            self.off += k;
            self.left -= k;
            return Some(run);
        }
        None
    }
}

impl Drop for LinkBuffer {
    /// The nodes go back to the pool as they drop; the ring is kept for this thread's next
    /// buffer (`spare.rs`).
    fn drop(&mut self) {
        if self.nodes.capacity() != 0 {
            self.nodes.clear();
            spare::give(std::mem::take(&mut self.nodes));
        }
    }
}

impl Default for LinkBuffer {
    fn default() -> LinkBuffer {
        LinkBuffer::new()
    }
}

impl fmt::Debug for LinkBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkBuffer")
            .field("len", &self.len())
            .field("malloc_len", &self.pending)
            .field("nodes", &self.nodes.len())
            .field("capacity_bytes", &self.capacity_bytes())
            .finish()
    }
}
