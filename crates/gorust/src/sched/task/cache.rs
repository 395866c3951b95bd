//! Memory for task cells: a per-thread cache of freed cells (Go's per-P free list of dead
//! goroutines, `gfput`/`gfget`).
//!
//! A program that spawns in bursts frees cells in bursts: with the global allocator, a batch of
//! 1,000 spawns and joins overflowed glibc's per-thread cache (7 blocks per size) and spent
//! ~360 instructions per task in `malloc`/`free` (callgrind of `compare spawn_batch`), a fifth
//! of the whole spawn+join. Here a freed cell goes to the freeing thread's list for its size
//! class and the next task of that class on that thread reuses it.
//!
//! - Size classes: multiples of 32 bytes up to [`MAX_CACHED`], every block allocated with its
//!   class's size and 16-byte alignment (what `malloc` gives anyway: a larger alignment sends
//!   glibc to `memalign`, slower and ~100 bytes more per block), so any block of a class fits
//!   any cell of that class. Larger or more aligned cells go straight to the global allocator.
//! - Bounded: at most [`PER_CLASS`] blocks per class and thread; past that, blocks are freed.
//!   A thread's blocks are freed when it exits.
//! - Who touches what: each list belongs to one thread (a cell freed on another thread than
//!   the one that made it simply joins that thread's list: the memory is the global
//!   allocator's either way).
//!
//! Rejected: a global lock-free free list (ABA hazards, and cross-core cache-line traffic on
//! every spawn); caching under loom (models count allocations; there the cache is bypassed).

use std::alloc::Layout;
use std::ptr::NonNull;

/// Largest cell kept (bytes). A goroutine's cell is ~300 bytes; a small future's less.
const MAX_CACHED: usize = 1024;
const CLASS: usize = 32;
const CLASSES: usize = MAX_CACHED / CLASS;
/// Alignment of every cached block.
const ALIGN: usize = 16;
/// Blocks kept per class and thread.
const PER_CLASS: usize = 1024;

/// The layout blocks of `layout`'s class are allocated with, or `None` if it is not cached.
fn class_of(layout: Layout) -> Option<(usize, Layout)> {
    if cfg!(loom) || layout.size() == 0 || layout.size() > MAX_CACHED || layout.align() > ALIGN {
        return None;
    }
    let class = layout.size().div_ceil(CLASS) - 1;
    let block = Layout::from_size_align((class + 1) * CLASS, ALIGN).ok()?;
    Some((class, block))
}

struct Lists([Vec<NonNull<u8>>; CLASSES]);

impl Drop for Lists {
    fn drop(&mut self) {
        for (class, list) in self.0.iter_mut().enumerate() {
            let block = Layout::from_size_align((class + 1) * CLASS, ALIGN).expect("valid");
            for p in list.drain(..) {
                // SAFETY: every cached block was allocated with its class's layout.
                unsafe { std::alloc::dealloc(p.as_ptr(), block) };
            }
        }
    }
}

thread_local! {
    static LISTS: std::cell::RefCell<Lists> =
        const { std::cell::RefCell::new(Lists([const { Vec::new() }; CLASSES])) };
}

/// Allocates memory for a cell of `layout` (never zero-sized). Aborts on allocation failure,
/// as `Box::new` does.
pub(super) fn alloc(layout: Layout) -> NonNull<u8> {
    let layout = match class_of(layout) {
        Some((class, block)) => {
            let cached = LISTS
                .try_with(|l| l.try_borrow_mut().ok().and_then(|mut l| l.0[class].pop()))
                .ok()
                .flatten();
            if let Some(p) = cached {
                return p;
            }
            block
        }
        None => layout,
    };
    // SAFETY: `layout` has a non-zero size (cells are never zero-sized).
    let p = unsafe { std::alloc::alloc(layout) };
    NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
}

/// Frees memory from [`alloc`] of the same `layout`.
///
/// # Safety
///
/// `p` came from `alloc(layout)` and is not used afterwards.
pub(super) unsafe fn dealloc(p: NonNull<u8>, layout: Layout) {
    let Some((class, block)) = class_of(layout) else {
        // SAFETY: per the contract, `p` was allocated with exactly `layout`.
        unsafe { std::alloc::dealloc(p.as_ptr(), layout) };
        return;
    };
    let kept = LISTS
        .try_with(|l| match l.try_borrow_mut() {
            Ok(mut l) if l.0[class].len() < PER_CLASS => {
                l.0[class].push(p);
                true
            }
            _ => false,
        })
        .unwrap_or(false);
    if !kept {
        // SAFETY: blocks of a cached class are allocated with the class's layout.
        unsafe { std::alloc::dealloc(p.as_ptr(), block) };
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_freed_block_is_reused_by_the_same_class() {
        let a = Layout::from_size_align(200, 8).unwrap();
        let b = Layout::from_size_align(220, 16).unwrap(); // same 224-byte class
        let p = alloc(a);
        // SAFETY: p came from alloc(a).
        unsafe { dealloc(p, a) };
        let q = alloc(b);
        assert_eq!(p, q, "the cached block serves the next cell of its class");
        // SAFETY: q came from alloc(b).
        unsafe { dealloc(q, b) };
    }

    #[test]
    fn large_or_overaligned_cells_bypass_the_cache() {
        assert!(class_of(Layout::from_size_align(MAX_CACHED + 1, 8).unwrap()).is_none());
        assert!(class_of(Layout::from_size_align(64, 64).unwrap()).is_none());
        let big = Layout::from_size_align(4096, 8).unwrap();
        let p = alloc(big);
        // SAFETY: p came from alloc(big).
        unsafe { dealloc(p, big) };
    }

    #[test]
    fn the_cache_is_bounded() {
        let l = Layout::from_size_align(32, 8).unwrap();
        let ps: Vec<_> = (0..PER_CLASS + 10).map(|_| alloc(l)).collect();
        for p in ps {
            // SAFETY: each came from alloc(l).
            unsafe { dealloc(p, l) };
        }
        let kept = LISTS.with(|l| l.borrow().0[0].len());
        assert!(kept <= PER_CLASS);
    }
}
