//! The local run queue: a bounded ring owned by one worker, from which others steal half.
//!
//! ```text
//!   head = (steal: u32, real: u32)      tail: u32 (written only by the owner)
//!
//!   buffer[CAP]:  ... | steal .. real | real ............ tail | ...
//!                       being copied    owned by the queue
//!                       by one thief
//! ```
//!
//! - The owner pushes at `tail` and pops at `real` (FIFO).
//! - A thief claims `[real, real + n)` by moving `real` forward while leaving `steal` behind,
//!   copies those slots out, then moves `steal` up to `real`. While `steal != real` no other
//!   thief may start, and the owner must not overwrite slots from `steal` on, so it counts
//!   capacity from `steal`.
//! - When the ring is full the owner moves half of it, plus the new task, to the inject queue
//!   in one batch (`push_overflow`), so a burst of spawns costs one lock per 128 tasks.
//!
//! Indices are free-running `u32`s compared with wrapping arithmetic; `CAP` divides 2^32.
//!
//! Beside the ring, one stealable LIFO slot (`lifo`) holds the unbound task that runs next
//! (Go's `runnext`): a `Notified` as a raw pointer, or null. The owner puts with a swap, which
//! hands it the task displaced; the owner and thieves take with a swap to null, so whoever gets
//! the pointer owns that reference, and a put and a take cannot both keep one. A thief looks at
//! it only after the ring gave it nothing (`Steal::steal_lifo`): a task put there while every
//! worker was busy used to wait until its worker's current task parked or ended, even when
//! another worker ran dry meanwhile. Bound goroutines keep a slot of their own in the worker's
//! `Core`: no thief may take them, so that slot needs no atomic.
//!
//! Orderings: the owner publishes a written slot with a `Release` store of `tail`; a thief
//! reads `tail` with `Acquire` before reading slots. Claims on `head` are `AcqRel` CASes, so a
//! thief's reads of the slots it claimed happen before the owner can see `steal` move past them
//! and reuse the slots.
//!
//! The algorithm is the bounded work-stealing ring used by Go (`runqput`/`runqsteal`, which
//! steals with one CAS per batch) and refined with the two-part head by tokio's scheduler.
//! Rejected: Chase–Lev with a growable array (unbounded memory per worker; the global queue
//! already absorbs overflow) and stealing single tasks (one CAS per task under contention).

use std::mem::MaybeUninit;
use std::ptr::NonNull;

use super::inject::Inject;
use super::task::{Header, Notified};
use crate::loom::cell::UnsafeCell;
use crate::loom::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering::*};
use crate::loom::sync::Arc;

/// Capacity of each worker's ring (Go and tokio both use 256).
#[cfg(not(loom))]
pub(crate) const CAP: usize = 256;
/// Small under loom so that models explore overflow and wrap-around in few steps.
#[cfg(loom)]
pub(crate) const CAP: usize = 4;
const MASK: u32 = CAP as u32 - 1;

struct Inner {
    head: AtomicU64,
    tail: AtomicU32,
    /// The stealable LIFO slot: a task given up by `Notified::into_raw`, or null.
    lifo: AtomicPtr<Header>,
    buffer: Box<[UnsafeCell<MaybeUninit<Notified>>]>,
}

// SAFETY: slots are accessed only under the claim protocol above; Notified is Send.
unsafe impl Send for Inner {}
// SAFETY: as above.
unsafe impl Sync for Inner {}

/// The owner's handle. Not `Clone`: exactly one worker pushes and pops.
pub(crate) struct Local {
    inner: Arc<Inner>,
}

/// A thief's handle.
#[derive(Clone)]
pub(crate) struct Steal(Arc<Inner>);

fn pack(steal: u32, real: u32) -> u64 {
    ((steal as u64) << 32) | real as u64
}

fn unpack(h: u64) -> (u32, u32) {
    ((h >> 32) as u32, h as u32)
}

pub(crate) fn new() -> (Local, Steal) {
    let buffer = (0..CAP)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect();
    let inner = Arc::new(Inner {
        head: AtomicU64::new(0),
        tail: AtomicU32::new(0),
        lifo: AtomicPtr::new(std::ptr::null_mut()),
        buffer,
    });
    (
        Local {
            inner: inner.clone(),
        },
        Steal(inner),
    )
}

impl Inner {
    fn len(&self) -> u32 {
        let (_, real) = unpack(self.head.load(Acquire));
        self.tail.load(Acquire).wrapping_sub(real)
    }

    fn has_lifo(&self) -> bool {
        !self.lifo.load(Relaxed).is_null()
    }

    /// Takes the task in the LIFO slot, if any (owner or thief).
    fn take_lifo(&self) -> Option<Notified> {
        if !self.has_lifo() {
            return None;
        }
        // Acquire: the task's writes made before its put (Release).
        let ptr = NonNull::new(self.lifo.swap(std::ptr::null_mut(), AcqRel))?;
        // SAFETY: a non-null slot holds a pointer from `Notified::into_raw` (`put_lifo`), and
        // the swap made us the only holder of it.
        Some(unsafe { Notified::from_raw(ptr) })
    }
}

impl Local {
    /// The owner's view of `tail`; only the owner writes it.
    fn tail(&self) -> u32 {
        self.inner.tail.load(Relaxed)
    }

    /// Room left before the ring is full (counting slots a thief is still copying).
    fn remaining(&self) -> u32 {
        let (steal, _) = unpack(self.inner.head.load(Acquire));
        CAP as u32 - self.tail().wrapping_sub(steal)
    }

    /// Puts `task` in the LIFO slot, to run next here unless a thief takes it first. Returns
    /// the task it displaced, for the caller to queue.
    pub(crate) fn put_lifo(&mut self, task: Notified) -> Option<Notified> {
        // Release: the task's writes, for whoever takes it; Acquire is not needed for the
        // displaced task (only the owner puts), but the swap is one instruction either way.
        let prev = self.inner.lifo.swap(task.into_raw().as_ptr(), AcqRel);
        // SAFETY: as in `take_lifo`: the swap made us the only holder of the displaced task.
        NonNull::new(prev).map(|p| unsafe { Notified::from_raw(p) })
    }

    /// Takes the task in the LIFO slot, if a thief has not.
    pub(crate) fn take_lifo(&mut self) -> Option<Notified> {
        self.inner.take_lifo()
    }

    /// Pushes at the back; when full, moves half the ring and the task to `overflow`.
    pub(crate) fn push_back(&mut self, mut task: Notified, overflow: &Inject) {
        loop {
            let (steal, real) = unpack(self.inner.head.load(Acquire));
            let tail = self.tail();
            if tail.wrapping_sub(steal) < CAP as u32 {
                self.write(tail, task);
                // Release: the slot's contents before the new tail.
                self.inner.tail.store(tail.wrapping_add(1), Release);
                return;
            }
            if steal != real {
                // A thief is copying out: it will make room; don't wait for it.
                overflow.push(task);
                return;
            }
            match self.push_overflow(task, real, tail, overflow) {
                Ok(()) => return,
                Err(t) => task = t, // a thief moved head; retry
            }
        }
    }

    fn write(&mut self, idx: u32, task: Notified) {
        self.inner.buffer[(idx & MASK) as usize].with_mut(|slot| {
            // SAFETY: the slot is outside [steal, tail), so nobody reads it.
            unsafe { (*slot).write(task) };
        });
    }

    fn push_overflow(
        &mut self,
        task: Notified,
        head: u32,
        tail: u32,
        overflow: &Inject,
    ) -> Result<(), Notified> {
        let n = (CAP / 2) as u32;
        debug_assert_eq!(tail.wrapping_sub(head), CAP as u32);
        let prev = pack(head, head);
        let next = pack(head.wrapping_add(n), head.wrapping_add(n));
        if self
            .inner
            .head
            .compare_exchange(prev, next, AcqRel, Acquire)
            .is_err()
        {
            return Err(task);
        }
        // The claimed slots [head, head+n) are ours: no thief can start on them now.
        let batch = (0..n).map(|i| self.take(head.wrapping_add(i)));
        let batch: Vec<Notified> = batch.chain(std::iter::once(task)).collect();
        overflow.push_batch(batch);
        Ok(())
    }

    fn take(&self, idx: u32) -> Notified {
        self.inner.buffer[(idx & MASK) as usize].with(|slot| {
            // SAFETY: the caller claimed this initialised slot; it will not be read again.
            unsafe { (*slot).assume_init_read() }
        })
    }

    /// Pops from the front.
    pub(crate) fn pop(&mut self) -> Option<Notified> {
        let mut head = self.inner.head.load(Acquire);
        let idx = loop {
            let (steal, real) = unpack(head);
            if real == self.tail() {
                return None;
            }
            let next_real = real.wrapping_add(1);
            let next = if steal == real {
                pack(next_real, next_real)
            } else {
                pack(steal, next_real)
            };
            match self
                .inner
                .head
                .compare_exchange(head, next, AcqRel, Acquire)
            {
                Ok(_) => break real,
                Err(actual) => head = actual,
            }
        };
        Some(self.take(idx))
    }
}

impl Steal {
    /// Whether the ring is empty (the LIFO slot aside).
    pub(crate) fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// Whether the LIFO slot holds a task.
    pub(crate) fn has_lifo(&self) -> bool {
        self.0.has_lifo()
    }

    /// Whether a thief would find anything: a task in the ring or in the LIFO slot.
    pub(crate) fn has_work(&self) -> bool {
        !self.is_empty() || self.has_lifo()
    }

    /// Takes the task in the owner's LIFO slot, for a thief that found the ring empty.
    pub(crate) fn steal_lifo(&self) -> Option<Notified> {
        self.0.take_lifo()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len() as usize
    }

    /// Moves half of this queue into `dst` and returns one task of it to run.
    pub(crate) fn steal_into(&self, dst: &mut Local) -> Option<Notified> {
        // Only steal into a ring with room for the whole half.
        if dst.remaining() < (CAP / 2) as u32 {
            return None;
        }
        let dst_tail = dst.tail();
        let n = self.claim_and_copy(dst, dst_tail);
        if n == 0 {
            return None;
        }
        // Keep the last copied task to run now; publish the rest.
        let last = dst_tail.wrapping_add(n - 1);
        let ret = dst.take(last);
        if n > 1 {
            dst.inner.tail.store(last, Release);
        }
        Some(ret)
    }

    fn claim_and_copy(&self, dst: &mut Local, dst_tail: u32) -> u32 {
        let src = &self.0;
        let mut prev = src.head.load(Acquire);
        let (first, n) = loop {
            let (steal, real) = unpack(prev);
            if steal != real {
                return 0; // another thief is active
            }
            let tail = src.tail.load(Acquire);
            let avail = tail.wrapping_sub(real);
            let n = avail - avail / 2;
            if n == 0 {
                return 0;
            }
            let next = pack(steal, real.wrapping_add(n));
            match src.head.compare_exchange(prev, next, AcqRel, Acquire) {
                Ok(_) => break (real, n),
                Err(actual) => prev = actual,
            }
        };
        for i in 0..n {
            let t = src.buffer[(first.wrapping_add(i) & MASK) as usize].with(|slot| {
                // SAFETY: [first, first+n) was claimed by our CAS; the owner does not
                // overwrite it until `steal` moves past it below.
                unsafe { (*slot).assume_init_read() }
            });
            dst.write(dst_tail.wrapping_add(i), t);
        }
        // Release the claim: steal := real (the owner may have popped meanwhile).
        let mut prev = src.head.load(Acquire);
        loop {
            let (_, real) = unpack(prev);
            match src
                .head
                .compare_exchange(prev, pack(real, real), AcqRel, Acquire)
            {
                Ok(_) => return n,
                Err(actual) => prev = actual,
            }
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // Release any remaining references (workers drain before exit; this is the backstop).
        drop(self.take_lifo());
        while self.pop().is_some() {}
    }
}
