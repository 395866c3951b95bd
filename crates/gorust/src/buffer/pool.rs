//! The global node pool: a bounded cache of free blocks for each size class.
//!
//! A block returned by its last node goes back to the free list of its class unless that list
//! already holds [`POOL_LIMITS`]`[class]` blocks, in which case it is freed to the allocator; a
//! block of the large path (more than the largest class) is always freed. So the memory the pool
//! keeps after a burst is bounded: at most 4 MiB per class, 12 MiB in all.
//!
//! Each class has one free list behind a mutex. The lists are touched only on the way in and out
//! of a node (a push or a pop under the lock, no allocation but the list's own growth), and a
//! node lives across many reads, so the lock is not on the per-byte path. A per-thread cache in
//! front was rejected for now: goroutines are pinned, but event-loop pollers and handlers may
//! free on another thread than the one that allocated, and a per-thread bound multiplies the
//! global one by the number of threads.
//!
//! The lists use `std::sync::Mutex` directly rather than the `crate::loom` facade: they are a
//! plain lock-protected stack, not a state machine, and a `static` needs a `const` constructor,
//! which loom's mutex lacks. Under `--cfg loom` nothing is cached, so no block (whose reference
//! count is then a loom atomic) outlives the model that made it.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use super::node::{Block, FreeBlock};

/// Data capacities of the pooled size classes: 4 KiB, 16 KiB, 64 KiB. A node of the smallest
/// class that fits is taken; a `malloc` larger than the largest class takes a block of its own
/// size (rounded up to 4 KiB), which is freed, never cached, when it is released.
pub const NODE_SIZES: [usize; 3] = [4 << 10, 16 << 10, 64 << 10];

/// How many free blocks of each class the global pool keeps (1,024 × 4 KiB, 256 × 16 KiB,
/// 64 × 64 KiB: 4 MiB per class). Blocks freed beyond these go back to the allocator.
pub const POOL_LIMITS: [usize; 3] = [1024, 256, 64];

/// Large blocks are rounded up to a multiple of this.
const LARGE_ROUND: usize = 4 << 10;

static FREE: [Mutex<Vec<FreeBlock>>; 3] = [const { Mutex::new(Vec::new()) }; 3];

/// Blocks currently held by some buffer (every class and the large path). Relaxed: a statistic.
static IN_USE: AtomicUsize = AtomicUsize::new(0);

/// A snapshot of the global node pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Free blocks cached per class (indexes of [`NODE_SIZES`]); never above [`POOL_LIMITS`].
    pub cached: [usize; 3],
    /// Blocks held by buffers now, of every size (a block shared by two buffers counts once).
    pub in_use: usize,
}

/// Returns the pool's current counts.
pub fn pool_stats() -> PoolStats {
    let mut cached = [0; 3];
    for (c, list) in FREE.iter().enumerate() {
        cached[c] = lock(list).len();
    }
    PoolStats {
        cached,
        in_use: IN_USE.load(Relaxed),
    }
}

/// The smallest class whose blocks hold `n` bytes, if any does.
pub(super) fn class_for(n: usize) -> Option<usize> {
    NODE_SIZES.iter().position(|&size| size >= n)
}

/// A block of at least `min` bytes (`min` > 0): pooled if a class fits, else of its own size.
///
/// # Panics
///
/// If `min` rounded up to 4 KiB overflows `isize`.
pub(super) fn take(min: usize) -> Block {
    match class_for(min) {
        Some(class) => take_class(class),
        None => {
            let cap = min
                .checked_next_multiple_of(LARGE_ROUND)
                .expect("gorust::buffer: allocation size overflows");
            // Counted once allocated: `alloc` panics on a size past `isize::MAX`, and a count
            // taken before stayed up for good (review, session 28).
            let block = FreeBlock::alloc(cap);
            IN_USE.fetch_add(1, Relaxed);
            block.into_block()
        }
    }
}

/// A block of class `class`, from the free list if it has one.
pub(super) fn take_class(class: usize) -> Block {
    IN_USE.fetch_add(1, Relaxed);
    let cached = lock(&FREE[class]).pop();
    cached
        .unwrap_or_else(|| FreeBlock::alloc(NODE_SIZES[class]))
        .into_block()
}

/// Takes back a block that no node refers to any more.
pub(super) fn give(block: FreeBlock) {
    IN_USE.fetch_sub(1, Relaxed);
    let block = match NODE_SIZES.iter().position(|&size| size == block.cap()) {
        Some(class) => {
            let mut list = lock(&FREE[class]);
            if list.len() < limit(class) {
                list.push(block);
                return;
            }
            block
        }
        None => block,
    };
    block.dealloc();
}

fn limit(class: usize) -> usize {
    if cfg!(loom) {
        0
    } else {
        POOL_LIMITS[class]
    }
}

/// Locks a free list, ignoring poisoning: a push or a pop cannot leave the list inconsistent.
fn lock(list: &Mutex<Vec<FreeBlock>>) -> MutexGuard<'_, Vec<FreeBlock>> {
    list.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn classes_pick_the_smallest_fit() {
        assert_eq!(class_for(1), Some(0));
        assert_eq!(class_for(4096), Some(0));
        assert_eq!(class_for(4097), Some(1));
        assert_eq!(class_for(65536), Some(2));
        assert_eq!(class_for(65537), None);
        assert_eq!(take(100).cap(), 4096);
        assert_eq!(take(20_000).cap(), 65536);
        assert_eq!(take(70_000).cap(), 73_728);
    }

    #[test]
    fn free_lists_never_exceed_their_limits() {
        let blocks: Vec<_> = (0..POOL_LIMITS[2] + 10).map(|_| take_class(2)).collect();
        drop(blocks);
        let stats = pool_stats();
        for (cached, limit) in stats.cached.iter().zip(POOL_LIMITS) {
            assert!(*cached <= limit, "{stats:?}");
        }
    }
}
