//! Memory for task cells: size-class blocks carved from large mappings, a free list per thread
//! and class, and a shared depot that moves freed blocks between threads in batches (Go keeps
//! dead goroutines on per-P and global free lists, `gfput`/`gfget`; tcmalloc has the same
//! thread-cache and central-list shape).
//!
//! Why not `malloc`: a burst of spawns whose cells live until joined (1,000,000 in
//! `compare spawn_all`) made glibc grow each worker's arena one page per `mprotect` (42,889
//! calls in one run), every page then taking its own fault: about a third of the run. Here a
//! burst takes memory in chunks that double up to 2 MiB, so a million cells cost ~80 `mmap`s.
//! Within a
//! thread, batches of spawns and joins no longer overflow glibc's per-thread cache (7 blocks
//! per size; ~360 instructions per task in `malloc`/`free` before the first per-thread cache).
//!
//! How a block moves:
//!
//! ```text
//!   alloc:  thread's list ──empty──▶ a batch from the depot ──none──▶ carve the thread's chunk
//!   free:   thread's list ──over LOCAL_MAX──▶ its oldest BATCH blocks go to the depot
//!   thread exit: every list and the uncarved rest of the chunk go to the depot
//! ```
//!
//! - Size classes: multiples of [`CLASS`] bytes up to [`MAX_CLASSED`]. Blocks are carved at
//!   their class's size from page-aligned chunks, so every block is 32-byte aligned and fits
//!   any layout of its class with alignment up to 16. Larger or more aligned cells use the
//!   global allocator.
//! - The usual cross-thread shape (one worker spawns, a thief runs the tasks, the spawner joins,
//!   or a completion frees on another worker) circulates through the depot at one lock per
//!   [`BATCH`] blocks, and neither side maps more memory.
//! - Memory is never returned to the kernel, and a freed block serves only its own class: what
//!   stays in the process is the sum of each class's peak of live cells (a spike of a million
//!   160-byte cells keeps ~160 MB for later tasks of that class), as Go keeps every `g` it ever
//!   made. Uncarved chunk space is shared by all classes. Cells are small next to stacks,
//!   whose pages are returned (`goroutine/stack.rs`). The bytes at the end of a chunk too few
//!   for the next block (under 1 KiB per chunk) are not used.
//!
//! Who touches what: a thread's [`Local`] is its own (`thread_local`, borrowed only inside
//! `alloc`/`dealloc`, which never re-enter); the [`Depot`] only under its lock, with per-class
//! batch counts mirrored in atomics so that an empty depot costs no lock. A block on a list or in
//! the depot belongs to that list; a block handed out belongs to its cell until `dealloc`.
//! During thread teardown, once the thread's `Local` is gone, blocks go to and come from the
//! depot directly.
//!
//! Rejected: transparent huge pages for the chunks (`MADV_HUGEPAGE`: one fault per 2 MiB, but
//! on this VM `spawn_all` on 2 workers became bimodal, 188–464 ns against a steady ~250 with
//! 4 KiB pages, and `MAP_POPULATE` was slower still, ~285); chunks per class (every class a
//! thread ever used would hold a chunk); returning empty chunks to the kernel (a live
//! count per chunk means an atomic on every free from another thread, mimalloc's design, for
//! little: cells are ~150 bytes); a lock-free global list (ABA hazards, and a shared line
//! touched on every spawn); slabs under loom (the models count allocations: there every cell
//! goes to the global allocator).

use std::alloc::Layout;
use std::cell::RefCell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::sys::memory;

/// Class granularity (bytes).
const CLASS: usize = 32;
/// Largest cell served from slabs (bytes). A trivial goroutine's cell is ~150 bytes.
const MAX_CLASSED: usize = 1024;
const CLASSES: usize = MAX_CLASSED / CLASS;
/// Largest alignment served from slabs.
const ALIGN: usize = 16;
/// Blocks a thread keeps per class before it spills a batch to the depot.
const LOCAL_MAX: usize = 1024;
/// Blocks moved between a thread and the depot at once.
const BATCH: usize = 512;
/// A thread's first chunk; each next one is twice the last, up to [`MAX_CHUNK`].
const FIRST_CHUNK: usize = 64 << 10;
const MAX_CHUNK: usize = 2 << 20;

/// The class of a layout served from slabs, or `None` for the global allocator.
fn class_of(layout: Layout) -> Option<usize> {
    if cfg!(loom) || layout.size() == 0 || layout.size() > MAX_CLASSED || layout.align() > ALIGN {
        return None;
    }
    Some(layout.size().div_ceil(CLASS) - 1)
}

fn block_size(class: usize) -> usize {
    (class + 1) * CLASS
}

/// Uncarved memory `[next, end)` of a chunk.
#[derive(Clone, Copy)]
struct Range {
    next: usize,
    end: usize,
}

impl Range {
    const EMPTY: Range = Range { next: 0, end: 0 };

    fn carve(&mut self, size: usize) -> Option<NonNull<u8>> {
        if self.end - self.next < size {
            return None;
        }
        let p = self.next;
        self.next += size;
        NonNull::new(p as *mut u8)
    }

    fn map(len: usize) -> Range {
        match memory::map_chunk(len) {
            Ok(p) => Range {
                next: p.as_ptr() as usize,
                end: p.as_ptr() as usize + len,
            },
            Err(_) => std::alloc::handle_alloc_error(
                Layout::from_size_align(len, memory::page_size()).expect("chunk layout"),
            ),
        }
    }
}

/// A thread's free lists and chunk.
struct Local {
    /// Free blocks per class, the most recently freed (warmest) last.
    free: [Vec<NonNull<u8>>; CLASSES],
    chunk: Range,
    next_chunk_len: usize,
}

/// Blocks and chunk rests that no thread holds.
struct Depot {
    batches: [Vec<Vec<NonNull<u8>>>; CLASSES],
    /// Uncarved rests of the chunks of threads that exited.
    ranges: Vec<Range>,
}

// SAFETY: the pointers are unused blocks that the depot owns; moving the depot's contents to
// another thread moves that ownership with them.
unsafe impl Send for Depot {}

static DEPOT: Mutex<Depot> = Mutex::new(Depot {
    batches: [const { Vec::new() }; CLASSES],
    ranges: Vec::new(),
});

/// `DEPOT.batches[c].len()`, written under the lock, read without it to skip an empty depot.
static DEPOT_BATCHES: [AtomicUsize; CLASSES] = [const { AtomicUsize::new(0) }; CLASSES];

fn depot() -> MutexGuard<'static, Depot> {
    // Nothing panics while holding the lock (allocation failure aborts), so poison carries no
    // meaning here.
    DEPOT.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Depot {
    fn take_batch(&mut self, class: usize) -> Option<Vec<NonNull<u8>>> {
        let batch = self.batches[class].pop();
        DEPOT_BATCHES[class].store(self.batches[class].len(), Relaxed);
        batch
    }

    fn put_batch(&mut self, class: usize, batch: Vec<NonNull<u8>>) {
        if batch.is_empty() {
            return;
        }
        self.batches[class].push(batch);
        DEPOT_BATCHES[class].store(self.batches[class].len(), Relaxed);
    }

    /// A range with room for `size` bytes, if a thread left one.
    fn take_range(&mut self, size: usize) -> Option<Range> {
        let i = self.ranges.iter().position(|r| r.end - r.next >= size)?;
        Some(self.ranges.swap_remove(i))
    }

    /// For threads whose `Local` is gone (teardown): one block, straight from the depot.
    fn alloc_one(&mut self, class: usize) -> NonNull<u8> {
        if let Some(mut batch) = self.take_batch(class) {
            let p = batch.pop().expect("batches are never empty");
            self.put_batch(class, batch);
            return p;
        }
        let size = block_size(class);
        let mut range = self
            .take_range(size)
            .unwrap_or_else(|| Range::map(FIRST_CHUNK));
        let p = range.carve(size).expect("the range has room");
        self.ranges.push(range);
        p
    }

    /// For threads whose `Local` is gone (teardown): one block, straight to the depot.
    fn free_one(&mut self, class: usize, p: NonNull<u8>) {
        match self.batches[class].last_mut() {
            Some(b) if b.len() < BATCH => b.push(p),
            _ => {
                let mut b = Vec::with_capacity(BATCH);
                b.push(p);
                self.put_batch(class, b);
            }
        }
    }
}

impl Local {
    const fn new() -> Local {
        Local {
            free: [const { Vec::new() }; CLASSES],
            chunk: Range::EMPTY,
            next_chunk_len: FIRST_CHUNK,
        }
    }

    fn alloc(&mut self, class: usize) -> NonNull<u8> {
        if let Some(p) = self.free[class].pop() {
            return p;
        }
        if DEPOT_BATCHES[class].load(Relaxed) > 0 {
            if let Some(batch) = depot().take_batch(class) {
                self.free[class] = batch;
                return self.free[class].pop().expect("batches are never empty");
            }
        }
        let size = block_size(class);
        if let Some(p) = self.chunk.carve(size) {
            return p;
        }
        self.chunk = depot().take_range(size).unwrap_or_else(|| {
            let len = self.next_chunk_len;
            self.next_chunk_len = (len * 2).min(MAX_CHUNK);
            Range::map(len)
        });
        self.chunk.carve(size).expect("a fresh chunk has room")
    }

    fn free(&mut self, class: usize, p: NonNull<u8>) {
        let list = &mut self.free[class];
        list.push(p);
        if list.len() > LOCAL_MAX {
            // The oldest blocks are the coldest: those go.
            let batch: Vec<_> = list.drain(..BATCH).collect();
            depot().put_batch(class, batch);
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let mut d = depot();
        for (class, list) in self.free.iter_mut().enumerate() {
            d.put_batch(class, std::mem::take(list));
        }
        if self.chunk.end - self.chunk.next >= CLASS {
            d.ranges.push(self.chunk);
        }
    }
}

thread_local! {
    static LOCAL: RefCell<Local> = const { RefCell::new(Local::new()) };
}

/// Gives this thread's free cells and chunk to the depot, as its exit would: for a thread that
/// stops being a worker and goes on with other work (`Runtime::run`).
pub(crate) fn release_local() {
    let _ = LOCAL.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            let old = std::mem::replace(&mut *l, Local::new());
            drop(l);
            drop(old);
        }
    });
}

/// Allocates memory for a cell of `layout` (never zero-sized). Aborts on allocation failure,
/// as `Box::new` does.
pub(super) fn alloc(layout: Layout) -> NonNull<u8> {
    let Some(class) = class_of(layout) else {
        // SAFETY: `layout` has a non-zero size (cells are never zero-sized).
        let p = unsafe { std::alloc::alloc(layout) };
        return NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
    };
    LOCAL
        .try_with(|l| l.try_borrow_mut().ok().map(|mut l| l.alloc(class)))
        .ok()
        .flatten()
        .unwrap_or_else(|| depot().alloc_one(class))
}

/// Frees memory from [`alloc`] of the same `layout`.
///
/// # Safety
///
/// `p` came from `alloc(layout)` and is not used afterwards.
pub(super) unsafe fn dealloc(p: NonNull<u8>, layout: Layout) {
    let Some(class) = class_of(layout) else {
        // SAFETY: per the contract, `p` was allocated by the global allocator with `layout`.
        unsafe { std::alloc::dealloc(p.as_ptr(), layout) };
        return;
    };
    let kept = LOCAL
        .try_with(|l| match l.try_borrow_mut() {
            Ok(mut l) => {
                l.free(class, p);
                true
            }
            Err(_) => false,
        })
        .unwrap_or(false);
    if !kept {
        depot().free_one(class, p);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Blocks of `class` in the depot.
    fn depot_blocks(class: usize) -> usize {
        depot().batches[class].iter().map(Vec::len).sum()
    }

    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size, 8).unwrap()
    }

    #[test]
    fn a_freed_block_is_reused_by_the_same_class() {
        let a = layout(200);
        let b = Layout::from_size_align(220, 16).unwrap(); // same 224-byte class
        let p = alloc(a);
        // SAFETY: p came from alloc(a).
        unsafe { dealloc(p, a) };
        let q = alloc(b);
        assert_eq!(p, q, "the freed block serves the next cell of its class");
        // SAFETY: q came from alloc(b).
        unsafe { dealloc(q, b) };
    }

    #[test]
    fn large_or_overaligned_cells_use_the_global_allocator() {
        assert!(class_of(layout(MAX_CLASSED + 1)).is_none());
        assert!(class_of(Layout::from_size_align(64, 64).unwrap()).is_none());
        let big = layout(4096);
        let p = alloc(big);
        // SAFETY: p came from alloc(big).
        unsafe { dealloc(p, big) };
    }

    /// Many live blocks of mixed classes: each aligned, none overlapping another (every byte
    /// of each is written with its own tag and read back after all were written).
    #[test]
    fn live_blocks_are_aligned_and_disjoint() {
        let sizes = [24, 100, 160, 500, 1024];
        let mut live = Vec::new();
        for i in 0..20_000usize {
            let l = layout(sizes[i % sizes.len()]);
            let p = alloc(l);
            assert_eq!(p.as_ptr() as usize % ALIGN, 0);
            // SAFETY: p is a fresh block of at least l.size() bytes.
            unsafe { std::ptr::write_bytes(p.as_ptr(), (i % 251) as u8, l.size()) };
            live.push((p, l, (i % 251) as u8));
            if i % 3 == 0 {
                let (p, l, _) = live.swap_remove(i % live.len());
                // SAFETY: p came from alloc(l) and is dropped from `live`.
                unsafe { dealloc(p, l) };
            }
        }
        for &(p, l, tag) in &live {
            // SAFETY: p is a live block of l.size() bytes, written above.
            let bytes = unsafe { std::slice::from_raw_parts(p.as_ptr(), l.size()) };
            assert!(bytes.iter().all(|&b| b == tag), "a block was overwritten");
        }
        for (p, l, _) in live {
            // SAFETY: p came from alloc(l).
            unsafe { dealloc(p, l) };
        }
    }

    /// One thread frees more than it keeps; another thread's allocations take the spilled
    /// blocks instead of carving new memory. Uses the 960-byte class, which no cell of the
    /// crate's tests has.
    #[test]
    fn blocks_freed_on_one_thread_serve_another() {
        let l = layout(950);
        let class = class_of(l).unwrap();
        let n = LOCAL_MAX + BATCH;
        let freed: HashSet<usize> = std::thread::spawn(move || {
            let ps: Vec<_> = (0..n).map(|_| alloc(l)).collect();
            let addrs = ps.iter().map(|p| p.as_ptr() as usize).collect();
            for p in ps {
                // SAFETY: p came from alloc(l).
                unsafe { dealloc(p, l) };
            }
            addrs
        })
        .join()
        .unwrap();
        assert!(
            depot_blocks(class) >= BATCH,
            "the thread spilled and left its blocks"
        );
        let got: Vec<_> = std::thread::spawn(move || {
            (0..BATCH)
                .map(|_| alloc(l).as_ptr() as usize)
                .collect::<Vec<_>>()
        })
        .join()
        .unwrap();
        assert!(
            got.iter().all(|a| freed.contains(a)),
            "another thread reused the freed blocks"
        );
        for a in got {
            // SAFETY: each came from alloc(l); the thread that took them has exited.
            unsafe { dealloc(NonNull::new(a as *mut u8).unwrap(), l) };
        }
    }

    /// A thread that exits gives its free blocks to the depot. Uses the 928-byte class.
    #[test]
    fn an_exiting_thread_leaves_its_blocks_to_the_depot() {
        let l = layout(920);
        let class = class_of(l).unwrap();
        let before = depot_blocks(class);
        std::thread::spawn(move || {
            let ps: Vec<_> = (0..10).map(|_| alloc(l)).collect();
            for p in ps {
                // SAFETY: p came from alloc(l).
                unsafe { dealloc(p, l) };
            }
        })
        .join()
        .unwrap();
        assert_eq!(depot_blocks(class), before + 10);
    }
}
