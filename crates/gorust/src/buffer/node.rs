//! Blocks and nodes: the storage of a [`LinkBuffer`](super::LinkBuffer) and its views of it.
//!
//! A *block* is one heap allocation, a header followed by the data:
//!
//! ```text
//!   ┌─────────────────────────┬─────────────────────────────────────────────┐
//!   │ Header { refs, cap }    │ data: cap bytes (zeroed once, at allocation) │
//!   └─────────────────────────┴─────────────────────────────────────────────┘
//!   ^ FreeBlock / Block point here   ^ Block::data()
//! ```
//!
//! A [`Block`] is a counted reference to it; a [`FreeBlock`] is a block nobody references (in
//! the pool, or on its way to the allocator). A [`Node`] is one buffer's view of a block: the
//! byte range it owns and its cursors, in this order (all offsets into the data):
//!
//! ```text
//!   start ≤ flushed ≤ written ≤ limit ≤ cap
//!   [start, flushed)    readable: immutable while the node lives
//!   [flushed, written)  written by malloc/write_bytes, not yet flushed
//!   [written, limit)    free: the only part ever written, and only through `&mut Node`
//!   [limit, cap)        belongs to another node of the same block (after a split), or unused
//! ```
//!
//! Soundness rests on one rule, kept by this file alone (fields are private, every mutation is
//! checked): the ranges `[start, limit)` of the nodes sharing a block are disjoint. A split hands
//! the prefix `[start, start+k)` to a new node whose `limit` is its end, so it can never write,
//! and the old node keeps `[start+k, limit)`. Reads borrow `&Node`, writes `&mut Node`, so the
//! borrow checker orders them within one node, and no two nodes touch the same byte.

use std::alloc::{self, Layout};
use std::mem::{align_of, size_of};
use std::ptr::NonNull;

use crate::loom::sync::atomic::{fence, AtomicUsize, Ordering::*};

use super::pool;

#[repr(C)]
struct Header {
    /// Nodes referring to this block: 1 while one buffer holds it, more after splits. Atomic:
    /// the nodes may be in buffers on different threads. 0 while free.
    refs: AtomicUsize,
    /// Bytes of data; set at allocation, never changed.
    cap: usize,
    /// Under loom only: stands for the data bytes, so that the model checks that every read
    /// (`Node::bytes`) happens before the block is handed back (`Block::drop`); the bytes
    /// themselves are reached through raw pointers, which loom does not see.
    #[cfg(loom)]
    data: crate::loom::cell::UnsafeCell<()>,
}

/// Where the data starts: after the header, 16-byte aligned.
const DATA_OFFSET: usize = size_of::<Header>().next_multiple_of(16);
const ALIGN: usize = if align_of::<Header>() > 16 {
    align_of::<Header>()
} else {
    16
};

fn layout(cap: usize) -> Layout {
    DATA_OFFSET
        .checked_add(cap)
        .and_then(|size| Layout::from_size_align(size, ALIGN).ok())
        .expect("gorust::buffer: allocation size overflows")
}

/// A block that no [`Block`] refers to: sole owner of its memory.
pub(super) struct FreeBlock(NonNull<Header>);

// SAFETY: a FreeBlock is the only handle to its allocation, so sending it sends sole ownership;
// the header holds only an atomic and an integer.
unsafe impl Send for FreeBlock {}

impl FreeBlock {
    /// Allocates a zeroed block of `cap` data bytes. Zeroing once makes every byte initialised
    /// for the block's whole life (pooled blocks keep old data), so `malloc` may hand out
    /// `&mut [u8]`. Fresh large allocations come zeroed from the kernel at no cost.
    pub(super) fn alloc(cap: usize) -> FreeBlock {
        let layout = layout(cap);
        // SAFETY: the layout's size is at least DATA_OFFSET > 0.
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<Header>()) else {
            alloc::handle_alloc_error(layout)
        };
        let header = Header {
            refs: AtomicUsize::new(0),
            cap,
            #[cfg(loom)]
            data: crate::loom::cell::UnsafeCell::new(()),
        };
        // SAFETY: `ptr` is a fresh allocation, aligned for Header and larger than it.
        unsafe { ptr.as_ptr().write(header) };
        FreeBlock(ptr)
    }

    fn header(&self) -> &Header {
        // SAFETY: the header was written by `alloc` and lives until `dealloc` consumes self.
        unsafe { self.0.as_ref() }
    }

    pub(super) fn cap(&self) -> usize {
        self.header().cap
    }

    /// Makes this the block of one node.
    pub(super) fn into_block(self) -> Block {
        // Relaxed: the FreeBlock is exclusively ours; whoever handed it over (the pool's mutex,
        // or the Acquire fence in Block::drop) ordered every earlier access before this one.
        self.header().refs.store(1, Relaxed);
        Block { header: self.0 }
    }

    /// Returns the memory to the allocator.
    pub(super) fn dealloc(self) {
        let layout = layout(self.cap());
        // SAFETY: self is the sole handle; the header is dropped in place once (it holds a loom
        // atomic under loom), then the allocation is freed with the layout it was made with.
        unsafe {
            std::ptr::drop_in_place(self.0.as_ptr());
            alloc::dealloc(self.0.as_ptr().cast::<u8>(), layout);
        }
    }
}

/// A counted reference to a block. Dropping the last one returns the block to the pool.
pub(super) struct Block {
    header: NonNull<Header>,
}

// SAFETY: the reference count is atomic and `cap` is immutable; the data bytes are reached only
// through a Node, and the nodes of one block own disjoint ranges (module header), so moving a
// Block (inside its Node) to another thread cannot make two threads touch the same byte.
unsafe impl Send for Block {}

// SAFETY: through `&Block` one can only read the immutable `cap`, change the atomic count, and
// (through `&Node`) read a node's readable bytes, which nobody writes while the node lives.
unsafe impl Sync for Block {}

impl Block {
    fn header(&self) -> &Header {
        // SAFETY: the block stays allocated while this reference counts it.
        unsafe { self.header.as_ref() }
    }

    pub(super) fn cap(&self) -> usize {
        self.header().cap
    }

    /// The first data byte. Derived from the allocation's own pointer, so it may address the
    /// whole data range.
    fn data(&self) -> *mut u8 {
        // SAFETY: the allocation is DATA_OFFSET + cap bytes, so DATA_OFFSET is in bounds.
        unsafe { self.header.as_ptr().cast::<u8>().add(DATA_OFFSET) }
    }

    /// Another reference to the same block.
    fn share(&self) -> Block {
        // Relaxed, as in Arc::clone: the new reference is made from an existing one, which
        // keeps the block alive; no data is published by the increment.
        let old = self.header().refs.fetch_add(1, Relaxed);
        if old > isize::MAX as usize {
            diag!("runtime: gorust::buffer block reference count overflow");
            std::process::abort();
        }
        Block {
            header: self.header,
        }
    }

    #[cfg(all(test, not(loom)))]
    fn is_shared(&self) -> bool {
        self.header().refs.load(Acquire) > 1
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // Release, then Acquire on the last reference, as in Arc::drop: every access made
        // through the other references happens before the block is reused or freed.
        if self.header().refs.fetch_sub(1, Release) != 1 {
            return;
        }
        fence(Acquire);
        #[cfg(loom)]
        self.header().data.with_mut(|_| ());
        pool::give(FreeBlock(self.header));
    }
}

/// One buffer's view of a block: the bytes it owns and its cursors (module header).
pub(super) struct Node {
    block: Block,
    start: usize,
    flushed: usize,
    written: usize,
    limit: usize,
}

impl Node {
    /// A node owning all of a block, empty.
    pub(super) fn new(block: Block) -> Node {
        let limit = block.cap();
        Node {
            block,
            start: 0,
            flushed: 0,
            written: 0,
            limit,
        }
    }

    pub(super) fn start(&self) -> usize {
        self.start
    }

    pub(super) fn flushed(&self) -> usize {
        self.flushed
    }

    pub(super) fn written(&self) -> usize {
        self.written
    }

    /// Bytes of the block this node keeps alive (the whole block, even when shared).
    pub(super) fn capacity(&self) -> usize {
        self.block.cap()
    }

    /// Free bytes at the end, writable by this node.
    pub(super) fn free_len(&self) -> usize {
        self.limit - self.written
    }

    /// Whether the node holds no byte, readable or pending (a fresh node, or one read to the
    /// end with nothing pending).
    pub(super) fn holds_nothing(&self) -> bool {
        self.start == self.written
    }

    /// Whether everything written to this node was flushed.
    pub(super) fn is_settled(&self) -> bool {
        self.flushed == self.written
    }

    /// Whether another node refers to the same block.
    #[cfg(all(test, not(loom)))]
    pub(super) fn is_shared(&self) -> bool {
        self.block.is_shared()
    }

    /// The readable bytes `[from, to)`.
    ///
    /// # Panics
    ///
    /// Unless `start <= from <= to <= flushed`.
    pub(super) fn bytes(&self, from: usize, to: usize) -> &[u8] {
        assert!(
            self.start <= from && from <= to && to <= self.flushed,
            "gorust::buffer: read of [{from}, {to}) outside the readable [{}, {})",
            self.start,
            self.flushed
        );
        #[cfg(loom)]
        self.block.header().data.with(|_| ());
        // SAFETY: [from, to) lies in this node's readable range, which is inside the block,
        // initialised (zeroed at allocation), and written by nobody while this node lives:
        // writes go only to [written, limit) through `&mut self`, and other nodes of the same
        // block own disjoint ranges.
        unsafe { std::slice::from_raw_parts(self.block.data().add(from), to - from) }
    }

    /// The first `n` free bytes, to be filled and then committed with [`Node::commit`].
    ///
    /// # Panics
    ///
    /// If `n` exceeds [`Node::free_len`].
    pub(super) fn free_mut(&mut self, n: usize) -> &mut [u8] {
        assert!(
            n <= self.free_len(),
            "gorust::buffer: write past a node's end"
        );
        // SAFETY: [written, written + n) is inside [written, limit), which only this node may
        // touch, and `&mut self` excludes every other borrow of it; the bytes are initialised.
        unsafe { std::slice::from_raw_parts_mut(self.block.data().add(self.written), n) }
    }

    /// The last `n` bytes written, still pending (not flushed).
    ///
    /// # Panics
    ///
    /// If fewer than `n` bytes are pending.
    pub(super) fn pending_mut(&mut self, n: usize) -> &mut [u8] {
        assert!(
            n <= self.written - self.flushed,
            "gorust::buffer: not pending"
        );
        // SAFETY: [written - n, written) is inside [flushed, written), which no reader sees
        // (reads stop at `flushed`) and only this node may touch; `&mut self` excludes every
        // other borrow of it; the bytes are initialised.
        unsafe { std::slice::from_raw_parts_mut(self.block.data().add(self.written - n), n) }
    }

    /// Marks `n` more bytes as written (not yet readable).
    pub(super) fn commit(&mut self, n: usize) {
        assert!(
            n <= self.free_len(),
            "gorust::buffer: commit past a node's end"
        );
        self.written += n;
    }

    /// Takes back the last `n` pending bytes: they become free space again.
    ///
    /// # Panics
    ///
    /// If fewer than `n` bytes are pending.
    pub(super) fn uncommit(&mut self, n: usize) {
        assert!(
            n <= self.written - self.flushed,
            "gorust::buffer: uncommit of bytes not pending"
        );
        self.written -= n;
    }

    /// Makes everything written readable.
    pub(super) fn flush(&mut self) {
        self.flushed = self.written;
    }

    /// Forgets the bytes before `off` (they were read).
    pub(super) fn release_to(&mut self, off: usize) {
        assert!(self.start <= off && off <= self.flushed);
        self.start = off;
    }

    /// Splits off the first `k` readable bytes as a node of their own that shares the block and
    /// can never be written (its `limit` is its end); this node keeps the rest.
    pub(super) fn split_front(&mut self, k: usize) -> Node {
        assert!(k <= self.flushed - self.start);
        let end = self.start + k;
        let front = Node {
            block: self.block.share(),
            start: self.start,
            flushed: end,
            written: end,
            limit: end,
        };
        self.start = end;
        front
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn node(cap: usize) -> Node {
        Node::new(FreeBlock::alloc(cap).into_block())
    }

    #[test]
    fn a_node_reads_what_was_committed_and_flushed() {
        let mut n = node(64);
        n.free_mut(5).copy_from_slice(b"hello");
        n.commit(5);
        assert_eq!(n.flushed(), 0);
        n.flush();
        assert_eq!(n.bytes(0, 5), b"hello");
        assert_eq!(n.free_len(), 59);
        assert!(n.is_settled());
    }

    #[test]
    fn a_split_front_is_read_only_and_shares_the_block() {
        let mut n = node(64);
        n.free_mut(6).copy_from_slice(b"abcdef");
        n.commit(6);
        n.flush();
        let mut front = n.split_front(4);
        assert!(front.is_shared() && n.is_shared());
        assert_eq!(front.bytes(0, 4), b"abcd");
        assert_eq!(front.free_len(), 0);
        assert_eq!(front.free_mut(0), b"");
        assert_eq!(n.start(), 4);
        assert_eq!(n.bytes(4, 6), b"ef");
        n.free_mut(2).copy_from_slice(b"gh");
        n.commit(2);
        n.flush();
        assert_eq!(
            front.bytes(0, 4),
            b"abcd",
            "the front's bytes are untouched"
        );
        drop(front);
        assert!(!n.is_shared());
    }

    #[test]
    #[should_panic(expected = "outside the readable")]
    fn reading_unflushed_bytes_panics_instead_of_reading() {
        let mut n = node(64);
        n.commit(3);
        let _ = n.bytes(0, 3);
    }

    #[test]
    #[should_panic(expected = "past a node's end")]
    fn writing_past_the_limit_panics() {
        let mut n = node(16);
        n.free_mut(17);
    }
}
