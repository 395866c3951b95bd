//! Spare chains: the emptied node rings (`VecDeque<Node>`) of a thread's buffers, kept for the
//! next buffer on that thread that needs one.
//!
//! An empty [`LinkBuffer`](super::LinkBuffer) holds no allocation (module header of `buffer`),
//! so a buffer that gets a node allocates its ring and frees it again once it is read empty.
//! In the event loop that is three times per request: the poller's inbox, the handler's input
//! and the handler's output each get one node and lose it within the request. A poller's batch
//! reads ~60 inboxes before their handlers run, which overflows the allocator's per-thread
//! cache, so each of those frees went the slow way (perf at 1,000 × 64 B: `_int_free` ~140 ns
//! per round trip, session 30). Here an emptied ring is kept instead, and the next buffer on
//! the same thread that needs one takes it.
//!
//! Bounds: at most [`SPARE_MAX`] rings per thread, each of at most [`CAPACITY_MAX`] nodes, so a
//! thread keeps at most about 20 KiB (64 × 8 × 40 bytes); a ring that grew larger (a buffer that once held many nodes)
//! is freed as before. Idle buffers still hold nothing: only empty rings are kept, and only
//! here. Only the thread-local list is touched, with no lock and no atomic.
//!
//! A ring freed on another thread than the one that allocated it is kept by the thread that
//! freed it; nothing needs them to match. Past the thread-local's destruction (a buffer dropped
//! by another thread-local's destructor) a ring is freed as before.
//!
//! Under `--cfg loom` nothing is kept: a model's threads are not the threads of this list.

use std::collections::VecDeque;

use super::node::Node;

/// Rings kept per thread.
pub(super) const SPARE_MAX: usize = 64;

/// The largest ring kept, in nodes: a buffer of a request or two.
pub(super) const CAPACITY_MAX: usize = 8;

#[cfg(not(loom))]
thread_local! {
    static SPARE: std::cell::RefCell<Vec<VecDeque<Node>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// An empty ring: a kept one if this thread has one, else a new one (which allocates at its
/// first push).
#[inline]
pub(super) fn take() -> VecDeque<Node> {
    #[cfg(not(loom))]
    if let Ok(Some(ring)) = SPARE.try_with(|s| s.borrow_mut().pop()) {
        return ring;
    }
    VecDeque::new()
}

/// Keeps `ring`'s allocation for a later [`take`], if it is empty, allocated and small, and
/// this thread keeps fewer than [`SPARE_MAX`]; frees it otherwise.
#[inline]
pub(super) fn give(ring: VecDeque<Node>) {
    if !ring.is_empty() || ring.capacity() == 0 || ring.capacity() > CAPACITY_MAX {
        return;
    }
    #[cfg(not(loom))]
    let _ = SPARE.try_with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < SPARE_MAX {
            s.push(ring);
        }
    });
}

/// Rings this thread keeps now.
#[cfg(all(test, not(loom)))]
pub(super) fn kept() -> usize {
    SPARE.with(|s| s.borrow().len())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::buffer::LinkBuffer;

    #[test]
    fn an_emptied_buffer_s_ring_is_reused_by_the_next_buffer() {
        // Other tests on this thread may have left rings: count from here.
        let mut a = LinkBuffer::new();
        a.write_bytes(b"hello");
        a.flush();
        let before = kept();
        a.skip(5).unwrap();
        a.release();
        assert_eq!(a.node_count(), 0);
        assert_eq!(kept(), before + 1, "the emptied ring is kept");
        let mut b = LinkBuffer::new();
        b.write_bytes(b"x");
        assert_eq!(kept(), before, "the next buffer took it");
        drop(b);
        assert_eq!(kept(), before + 1, "a dropped buffer's ring is kept too");
    }

    #[test]
    fn the_list_is_bounded_and_large_rings_are_freed() {
        let full: Vec<LinkBuffer> = (0..SPARE_MAX + 10)
            .map(|_| {
                let mut b = LinkBuffer::new();
                b.write_bytes(b"x");
                b
            })
            .collect();
        drop(full);
        assert_eq!(kept(), SPARE_MAX);
        let mut big = VecDeque::with_capacity(CAPACITY_MAX * 4);
        big.shrink_to(CAPACITY_MAX * 4);
        let taken: Vec<_> = (0..SPARE_MAX).map(|_| take()).collect();
        assert_eq!(kept(), 0);
        give(big);
        assert_eq!(kept(), 0, "a ring larger than CAPACITY_MAX is freed");
        drop(taken);
    }
}
