//! Goroutine stacks: fixed virtual size, guarded, pooled.
//!
//! ```text
//!   one chunk (a single mmap of `Layout::stacks` slots):
//!
//!   low addresses                                                        high addresses
//!   +--------+----------------------+--------+----------------------+----
//!   | guard  |  usable stack        | guard  |  usable stack        | ...
//!   | 16 KiB |  stack_size          |        |                      |
//!   +--------+----------------------+--------+----------------------+----
//!   ^ limit()                       ^ base() (stacks grow down toward their guard)
//! ```
//!
//! Every length is a whole number of pages (`Layout`): the guard is 16 KiB or one page if
//! pages are larger (64 KiB on some arm64 and ppc64 kernels, where a 16 KiB guard left slots
//! off page boundaries and every `madvise`/`mprotect` failed with `EINVAL`). A chunk holds 64
//! stacks, fewer when that would be more than 16 MiB of usable stack (one stack at least): a
//! 1 GiB `stack_size` used to reserve 64 GiB of address space at the first goroutine.
//!
//! Colouring. Stacks of one chunk sit one slot apart (guard + stack, 272 KiB by default), and
//! every goroutine's first frames are written at its stack's top: with page-aligned tops and an
//! even-page slot, those lines of a thousand live goroutines all fell into a few sets of the L2
//! cache and evicted each other (perf: a third of a spawn+join batch on the two first stores to
//! a stack top). So the slot is an odd number of pages (one untouched page added when needed:
//! address space, not memory), which spreads the tops over every page position of the cache's
//! index, and each top starts at one of 8 cache lines below the page end, chosen by the page
//! number. Measured on a quiet machine, interleaved: spawn+join batches of 1,000 on 1 worker
//! 255 → 195 ns; RSS per parked goroutine unchanged (4.21 KiB). (An earlier attempt, measured
//! while builds loaded the machine, was rejected as no gain; callgrind's cache simulation did not
//! show the conflict either.)
//!
//! - Memory is reserved with `MAP_NORESERVE`: a stack costs physical memory only for the pages
//!   a goroutine touches (typically one or two), so the default 256 KiB is address space.
//! - Guards are `MADV_GUARD_INSTALL` markers (Linux 6.13+): they do not split the mapping, so a
//!   million stacks use a few thousand entries of `vm.max_map_count` (65,530 by default), not
//!   two million. Older kernels fall back to `mprotect(PROT_NONE)`, which splits the
//!   mapping: two entries per stack, about 32,000 goroutines at the default limit.
//! - A touch of a guard raises `SIGSEGV`; `overflow.rs` reports which goroutine overflowed and
//!   aborts (the guard is larger than any frame Rust allocates without stack probes).
//! - Freed stacks go to the freeing thread's cache (up to `LOCAL_CACHE`), then to a global warm
//!   list. Past `GLOBAL_WARM` warm stacks, the monitor thread (`sched::sysmon`, every 250 ms)
//!   returns the surplus's pages to the kernel (`MADV_DONTNEED`; guard markers survive it) a
//!   batch at a time and moves them to a cold list for reuse. (A thread of its own was rejected:
//!   it counted against the "workers + blocking + 2 threads" budget of a server.) Doing it on the freeing path instead cost
//!   a system call and a TLB flush per goroutine exit and made a burst of 100,000 exits 5x
//!   slower (measured with `gorust demo`). Address space is never unmapped (but for a chunk
//!   whose guards could not be installed): it is bounded by the peak number of live goroutines.
//!
//! Who touches what: a `GuardedStack` is owned by one coroutine; the caches are thread-local;
//! the global lists are behind one mutex, taken once per cache miss or overflow, which moves
//! half a local cache at a time.

use std::cell::RefCell;
use std::io;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::Mutex;

use crate::sys::memory;

/// Least guard below each stack (`Layout::guard`: a page, if pages are larger). Larger than a
/// 4 KiB page so that a frame of up to 16 KiB that skips ahead without probing still lands in
/// it.
const GUARD: usize = 16 * 1024;
/// Most stacks in a chunk, and the most usable stack bytes a chunk holds when that is more
/// than one stack (`Layout::stacks`).
const STACKS_PER_CHUNK: usize = 64;
const CHUNK_STACK_BYTES: usize = 16 << 20;
/// Distinct starting lines of stack tops (see "Colouring"); at most 7 × 64 = 448 bytes unused.
const LINE_COLOURS: usize = 8;
const CACHE_LINE: usize = 64;
const LOCAL_CACHE: usize = 256;
const GLOBAL_WARM: usize = 4096;
/// Stacks released per scavenging pass (the monitor thread runs one every 250 ms).
pub(crate) const SCAVENGE_BATCH: usize = 8192;

pub(crate) struct GuardedStack {
    /// Lowest address: the start of the guard.
    low: NonNull<u8>,
    /// The coloured top (`base`), computed once: corosensei asks for it at every resume.
    /// The usable size is derived from it (`size`): one word less in every task cell.
    top: NonZeroUsize,
}

// SAFETY: a stack is plain memory owned by exactly one GuardedStack.
unsafe impl Send for GuardedStack {}

// SAFETY: `limit` is the start of the guard, GUARD bytes that fault on access, and `base` the
// top of the `size` usable bytes above it less the colour; `limit` is page-aligned, `base` a
// page-aligned address minus a multiple of 64 bytes, so both are aligned to STACK_ALIGNMENT
// (16).
unsafe impl corosensei::stack::Stack for GuardedStack {
    fn base(&self) -> corosensei::stack::StackPointer {
        self.top
    }

    fn limit(&self) -> corosensei::stack::StackPointer {
        NonZeroUsize::new(self.low.as_ptr() as usize).expect("non-null")
    }
}

impl GuardedStack {
    fn new(low: NonNull<u8>, size: usize) -> GuardedStack {
        let end = low.as_ptr() as usize + guard_len() + size;
        let top = NonZeroUsize::new(end - colour(low)).expect("non-null");
        GuardedStack { low, top }
    }

    /// Usable bytes above the guard (the colour is part of them).
    fn size(&self) -> usize {
        self.top.get() + colour(self.low) - self.low.as_ptr() as usize - guard_len()
    }

    /// `[low, low + guard_len())`: the guard region, for overflow reports.
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        let lo = self.low.as_ptr() as usize;
        (lo, lo + guard_len())
    }
}

/// Bytes of the guard below each stack on this machine (`Layout::guard`).
pub(crate) fn guard_len() -> usize {
    Layout::guard(memory::page_size())
}

/// Where things sit in a chunk, from the page size and the usable size of its stacks (a whole
/// number of pages, as `round_size` makes it). A pure function, so that the arithmetic is
/// tested for page sizes other than this machine's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    /// Bytes from one stack's start (its guard) to the next; a whole, odd number of pages.
    slot: usize,
    /// Stacks in one chunk.
    stacks: usize,
}

impl Layout {
    /// The guard: `GUARD`, or one page if pages are larger (a guard must be whole pages).
    const fn guard(page: usize) -> usize {
        if page > GUARD {
            page
        } else {
            GUARD
        }
    }

    fn new(page: usize, size: usize) -> Layout {
        debug_assert!(page.is_power_of_two() && size.is_multiple_of(page));
        // Guard and stack, plus one untouched page when that is an even number of pages (see
        // "Colouring" above).
        let slot = Layout::guard(page) + size;
        let slot = if (slot / page).is_multiple_of(2) {
            slot + page
        } else {
            slot
        };
        let stacks = (CHUNK_STACK_BYTES / size).clamp(1, STACKS_PER_CHUNK);
        Layout { slot, stacks }
    }
}

/// Bytes left unused at the top of the stack at `low` (see "Colouring" above): a multiple of
/// the cache line, from the stack's page number, so that neighbouring stacks start on different
/// lines.
fn colour(low: NonNull<u8>) -> usize {
    ((low.as_ptr() as usize >> memory::page_shift()) % LINE_COLOURS) * CACHE_LINE
}

struct Global {
    warm: Vec<GuardedStack>,
    cold: Vec<GuardedStack>,
}

static GLOBAL: Mutex<Global> = Mutex::new(Global {
    warm: Vec::new(),
    cold: Vec::new(),
});

struct LocalCache {
    stacks: Vec<GuardedStack>,
}

impl Drop for LocalCache {
    fn drop(&mut self) {
        let mut g = lock_global();
        for s in self.stacks.drain(..) {
            put_global(&mut g, s);
        }
    }
}

thread_local! {
    static LOCAL: RefCell<LocalCache> = const { RefCell::new(LocalCache { stacks: Vec::new() }) };
}

/// Gives this thread's cached stacks to the global pool, as its exit would: for a thread that
/// stops being a worker and goes on with other work (`Runtime::run`).
pub(crate) fn release_local_cache() {
    let _ = LOCAL.try_with(|l| {
        let cache = std::mem::replace(&mut *l.borrow_mut(), LocalCache { stacks: Vec::new() });
        drop(cache);
    });
}

fn lock_global() -> std::sync::MutexGuard<'static, Global> {
    GLOBAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn put_global(g: &mut Global, s: GuardedStack) {
    g.warm.push(s);
}

/// Returns the pages of up to `max` surplus warm stacks to the kernel. Returns how many.
pub(crate) fn scavenge(max: usize) -> usize {
    let batch: Vec<GuardedStack> = {
        let mut g = lock_global();
        let surplus = g.warm.len().saturating_sub(GLOBAL_WARM).min(max);
        // The oldest entries (front) are the least recently used.
        g.warm.drain(..surplus).collect()
    };
    let n = batch.len();
    let guard = guard_len();
    for s in &batch {
        // SAFETY: the usable range of a pooled stack nobody runs on.
        unsafe { memory::release(NonNull::new_unchecked(s.low.as_ptr().add(guard)), s.size()) };
    }
    lock_global().cold.extend(batch);
    n
}

/// Rounds a requested size up to whole pages (and at least 16 KiB).
pub(crate) fn round_size(size: usize) -> usize {
    let page = memory::page_size();
    size.max(16 * 1024).div_ceil(page) * page
}

#[cfg(test)]
thread_local! {
    /// Stacks taken by this thread (for tests of when goroutines take their stacks).
    pub(crate) static TAKEN_HERE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Stacks of `size` in the global lists and this thread's cache (for tests).
#[cfg(all(test, not(loom)))]
pub(crate) fn pooled(size: usize) -> usize {
    let g = lock_global();
    let global = g
        .warm
        .iter()
        .chain(&g.cold)
        .filter(|s| s.size() == size)
        .count();
    drop(g);
    global
        + LOCAL.with(|l| {
            l.borrow()
                .stacks
                .iter()
                .filter(|s| s.size() == size)
                .count()
        })
}

/// Takes a stack of `size` usable bytes (already rounded by `round_size`).
pub(crate) fn get(size: usize) -> io::Result<GuardedStack> {
    #[cfg(test)]
    TAKEN_HERE.with(|t| t.set(t.get() + 1));
    let local = LOCAL.with(|l| {
        let mut l = l.borrow_mut();
        let pos = l.stacks.iter().rposition(|s| s.size() == size)?;
        Some(l.stacks.swap_remove(pos))
    });
    if let Some(s) = local {
        return Ok(s);
    }
    // Refill half the local cache in one visit to the global lists (Go's `stackcacherefill`):
    // when one worker spawns and another finishes the goroutines, taking one stack per lock
    // made every spawn and every exit cross the cores for the same mutex.
    let mut batch = Vec::new();
    {
        let mut g = lock_global();
        take_matching(&mut g.warm, size, LOCAL_CACHE / 2, &mut batch);
        if batch.is_empty() {
            take_matching(&mut g.cold, size, LOCAL_CACHE / 2, &mut batch);
        }
    }
    if let Some(first) = batch.pop() {
        LOCAL.with(|l| l.borrow_mut().stacks.extend(batch));
        return Ok(first);
    }
    let mut chunk = new_chunk(size)?;
    let first = chunk.pop().expect("chunk is not empty");
    LOCAL.with(|l| l.borrow_mut().stacks.extend(chunk));
    Ok(first)
}

/// Returns a stack to the pool.
pub(crate) fn put(stack: GuardedStack) {
    let overflow = LOCAL.try_with(|l| {
        let mut l = l.borrow_mut();
        l.stacks.push(stack);
        if l.stacks.len() <= LOCAL_CACHE {
            return Vec::new();
        }
        // Full: hand the older half to the global lists in one visit (Go's `stackcacherelease`).
        l.stacks.drain(..LOCAL_CACHE / 2).collect()
    });
    match overflow {
        Ok(surplus) if surplus.is_empty() => {}
        Ok(surplus) => {
            let mut g = lock_global();
            for s in surplus {
                put_global(&mut g, s);
            }
        }
        Err(_) => {} // thread exiting: the stack's address range is leaked, never reused unsafely
    }
}

/// Moves up to `n` stacks of `size` from the end of `from` (the most recently freed) to `out`.
fn take_matching(from: &mut Vec<GuardedStack>, size: usize, n: usize, out: &mut Vec<GuardedStack>) {
    let mut i = from.len();
    while i > 0 && out.len() < n {
        i -= 1;
        if from[i].size() == size {
            out.push(from.swap_remove(i));
        }
    }
}

fn new_chunk(size: usize) -> io::Result<Vec<GuardedStack>> {
    let Layout { slot, stacks } = Layout::new(memory::page_size(), size);
    let len = slot * stacks;
    let base = memory::reserve(len)?;
    let mut out = Vec::with_capacity(stacks);
    for i in 0..stacks {
        // SAFETY: `(i + 1) * slot <= len`: the stack lies inside the mapping just made.
        let low = unsafe { NonNull::new_unchecked(base.as_ptr().add(i * slot)) };
        // SAFETY: the guard range (whole pages, `Layout`) lies in our fresh mapping and holds
        // nothing.
        if let Err(e) = unsafe { memory::guard(low, guard_len()) } {
            drop(out);
            // SAFETY: `base..base + len` is the mapping just made; the stacks carved from it
            // were dropped unused, so nothing refers to it.
            unsafe { memory::unreserve(base, len) };
            return Err(e);
        }
        out.push(GuardedStack::new(low, size));
    }
    Ok(out)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn stacks_are_distinct_and_reused() {
        let size = round_size(64 * 1024);
        let a = get(size).unwrap();
        let b = get(size).unwrap();
        assert_ne!(a.guard_range(), b.guard_range());
        let ra = a.guard_range();
        put(a);
        let c = get(size).unwrap();
        assert_eq!(c.guard_range(), ra, "the last freed stack is reused first");
        put(b);
        put(c);
    }

    #[test]
    fn neighbouring_stacks_start_on_different_lines_of_odd_page_slots() {
        let size = round_size(64 * 1024);
        let slot = Layout::new(memory::page_size(), size).slot;
        assert_eq!((slot / memory::page_size()) % 2, 1);
        let stacks: Vec<_> = (0..LINE_COLOURS).map(|_| get(size).unwrap()).collect();
        let mut lines: Vec<usize> = stacks
            .iter()
            .map(|s| {
                use corosensei::stack::Stack;
                let top = s.base().get();
                assert_eq!(top % 16, 0, "stack tops stay 16-byte aligned");
                top % memory::page_size()
            })
            .collect();
        lines.sort_unstable();
        lines.dedup();
        assert!(lines.len() > 1, "tops all on the same line: {lines:?}");
        stacks.into_iter().for_each(put);
    }

    /// The size is derived from the coloured top, whatever the colour.
    #[test]
    fn each_stack_knows_its_size() {
        for size in [
            round_size(16 * 1024),
            round_size(64 * 1024),
            round_size(256 * 1024),
        ] {
            let stacks: Vec<_> = (0..2 * LINE_COLOURS).map(|_| get(size).unwrap()).collect();
            assert!(stacks.iter().all(|s| s.size() == size));
            let colours: std::collections::HashSet<_> =
                stacks.iter().map(|s| colour(s.low)).collect();
            assert!(colours.len() > 1, "all stacks had one colour");
            stacks.into_iter().for_each(put);
        }
    }

    /// Slots and guards are whole pages, and slots an odd number of them, whatever the page
    /// size: with 64 KiB pages a 16 KiB guard left every slot off a page boundary, and no
    /// stack could be made (`madvise` and `mprotect` failed with `EINVAL`).
    #[test]
    fn layout_is_whole_pages_for_4k_16k_and_64k_pages() {
        for page in [4 << 10, 16 << 10, 64 << 10] {
            let guard = Layout::guard(page);
            assert!(
                guard >= GUARD && guard.is_multiple_of(page),
                "page {page}: guard {guard}"
            );
            for size in [16 << 10, 64 << 10, 256 << 10, 8 << 20, 1 << 30] {
                let size = usize::max(size, page);
                let Layout { slot, .. } = Layout::new(page, size);
                assert_eq!(slot % page, 0, "page {page}, size {size}: slot {slot}");
                assert_eq!((slot / page) % 2, 1, "page {page}, size {size}: even slot");
                assert!(slot >= guard + size && slot <= guard + size + page);
            }
        }
        assert_eq!(Layout::guard(4 << 10), 16 << 10);
        assert_eq!(Layout::guard(64 << 10), 64 << 10);
        // 16 KiB guard + 256 KiB = 68 pages of 4 KiB: one more makes it odd.
        assert_eq!(Layout::new(4 << 10, 256 << 10).slot, 276 << 10);
        // 64 KiB guard + 256 KiB = 5 pages of 64 KiB.
        assert_eq!(Layout::new(64 << 10, 256 << 10).slot, 320 << 10);
    }

    /// A chunk holds 64 stacks, fewer when that would be more than 16 MiB of usable stack, and
    /// one at least: a 1 GiB stack size used to reserve 64 GiB at the first goroutine.
    #[test]
    fn a_chunk_holds_64_stacks_or_16_mib_of_them() {
        let page = 4 << 10;
        let stacks = |size: usize| Layout::new(page, size).stacks;
        assert_eq!(stacks(16 << 10), 64);
        assert_eq!(stacks(256 << 10), 64);
        assert_eq!(stacks(512 << 10), 32);
        assert_eq!(stacks(8 << 20), 2);
        assert_eq!(stacks(16 << 20), 1);
        assert_eq!(stacks(1 << 30), 1);
        for size in [(256 << 10) + page, 3 << 20, 100 << 20] {
            let n = stacks(size);
            assert!(
                (1..=64).contains(&n) && (n == 1 || n * size <= 16 << 20),
                "{size}: {n}"
            );
        }
    }

    #[test]
    fn rounding() {
        assert_eq!(round_size(1), 16 * 1024);
        assert_eq!(round_size(16 * 1024 + 1) % memory::page_size(), 0);
    }
}
