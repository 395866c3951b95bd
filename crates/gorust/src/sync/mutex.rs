//! `Mutex<T>`: a lock that parks the goroutine, not the thread, while contended (Go's
//! `sync.Mutex`, with the data inside as in Rust).
//!
//! ```
//! use gorust::sync::Mutex;
//! use std::sync::Arc;
//!
//! let n = gorust::Runtime::builder().workers(2).build().unwrap().run(|| {
//!     let m = Arc::new(Mutex::new(0u64));
//!     let hs: Vec<_> = (0..10)
//!         .map(|_| {
//!             let m = m.clone();
//!             gorust::go(move || {
//!                 let mut g = m.lock();
//!                 gorust::time::sleep(std::time::Duration::from_millis(1)); // parks holding it
//!                 *g += 1;
//!             })
//!         })
//!         .collect();
//!     hs.into_iter().for_each(|h| h.join().unwrap());
//!     let n = *m.lock();
//!     n
//! });
//! assert_eq!(n, 10);
//! ```
//!
//! Design. Two parts: a one-byte `state` word for the uncontended path (one compare-exchange to
//! lock, one to unlock, no internal lock), and a FIFO `WaitList` of parked lockers under a
//! short internal mutex (`crate::loom`), touched only when the lock is contended.
//!
//! | `state` | meaning |
//! |---|---|
//! | `UNLOCKED` | free; `try_lock` may take it with a CAS to `LOCKED` |
//! | `LOCKED` | held, nobody queued: `unlock` is a CAS back to `UNLOCKED` |
//! | `LOCKED \| QUEUED` | held, lockers queued: `unlock` must take the list lock and hand off |
//!
//! `QUEUED` is set and cleared only under the list lock, and is set exactly while the list has
//! queued lockers; `UNLOCKED | QUEUED` never exists. A locker that finds the lock held takes
//! the list lock, sets `QUEUED` with a CAS (which fails, and it retries, if the holder
//! released meanwhile), queues its waker and parks; since the holder's fast unlock is a CAS
//! from plain `LOCKED`, it cannot miss the queued locker.
//!
//! Hand-off: `unlock` with lockers queued does not release the lock: it notifies the first
//! locker, which now *owns* it (the state stays `LOCKED`, `QUEUED` cleared if the list
//! emptied). So the lock is FIFO-fair: a newcomer cannot barge past parked lockers, and no
//! locker starves. The notified locker learns it owns the lock from the list under its lock,
//! which orders the previous holder's writes before its reads. A lock future dropped while
//! owning a handed-off lock passes it to the next locker (or releases it).
//!
//! Orderings: acquiring CASes are `Acquire`, the releasing CAS/store `Release`: the usual
//! lock protocol. `QUEUED` flips are `Relaxed`: what they announce (the queue) is read under
//! the list lock.
//!
//! No poisoning: a goroutine that panics while holding the guard releases the lock as the
//! guard drops during unwinding, and the next locker gets the data as the panic left it.
//! (std poisons; tokio and Go do not. A goroutine's panic is already reported through its
//! `JoinHandle`.)
//!
//! Rejected: Go's barging with a starvation mode (faster under some contention, but its 1 ms
//! switch-over is a heuristic to tune, and goroutines here cannot spin on another core's
//! holder the way Go's can); spinning before parking (a worker must never spin: the holder may
//! be queued behind it on the same thread); a `std::sync::Mutex<T>` for the data (its guard is
//! `!Send`, so a future holding it could not be spawned).

use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};

use super::on_plain_thread;
use super::waitlist::{WaitKey, WaitList};
use crate::loom::sync::atomic::{AtomicU8, Ordering::*};

const UNLOCKED: u8 = 0;
const LOCKED: u8 = 1;
const QUEUED: u8 = 2;

/// A mutual-exclusion lock whose `lock` parks the goroutine while another holds it.
///
/// Use it instead of `std::sync::Mutex` whenever the lock is held across anything that parks
/// (see the pitfall in [`crate::sync`]). Lockers get the lock in the order they asked (FIFO
/// hand-off). It is not poisoned by a panic.
pub struct Mutex<T: ?Sized> {
    /// `UNLOCKED`, `LOCKED` or `LOCKED | QUEUED`; see the module header.
    state: AtomicU8,
    /// Parked lockers; only touched under this (internal, short) lock.
    waiters: crate::loom::sync::Mutex<WaitList>,
    /// The user's data: accessed only through a guard, i.e. by the holder of `state`'s lock
    /// (a plain `UnsafeCell`: it is not part of the state machine loom models).
    data: UnsafeCell<T>,
}

// SAFETY: the mutex hands `&mut T` to one holder at a time, possibly on another thread, so
// sending or sharing it needs `T: Send` (as std's `Mutex`); the rest is atomics and a lock.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above: shared access only ever yields exclusive access, one holder at a time.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// A new, unlocked mutex holding `t`.
    #[cfg(not(loom))]
    pub const fn new(t: T) -> Mutex<T> {
        Mutex {
            state: AtomicU8::new(UNLOCKED),
            waiters: crate::loom::sync::Mutex::new(WaitList::new()),
            data: UnsafeCell::new(t),
        }
    }

    /// A new, unlocked mutex holding `t`.
    #[cfg(loom)]
    pub fn new(t: T) -> Mutex<T> {
        Mutex {
            state: AtomicU8::new(UNLOCKED),
            waiters: crate::loom::sync::Mutex::new(WaitList::new()),
            data: UnsafeCell::new(t),
        }
    }

    /// Consumes the mutex and returns its data.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Acquires the lock, parking the goroutine (or blocking a plain thread) while another
    /// holder has it. Released when the guard drops.
    ///
    /// # Panics
    ///
    /// If called from a future on a worker thread while another holder has the lock; use
    /// [`lock_async`](Self::lock_async) there.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        if on_plain_thread() {
            if let Some(g) = self.try_lock() {
                return g;
            }
        }
        crate::block_on(self.lock_async())
    }

    /// Acquires the lock if it is free and nobody is queued for it.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        if self.try_acquire() {
            Some(self.guard())
        } else {
            None
        }
    }

    /// The async face of [`lock`](Self::lock). Cancellation-safe: a future dropped while
    /// queued leaves the queue, and one dropped just after being handed the lock passes it on.
    pub fn lock_async(&self) -> Lock<'_, T> {
        Lock {
            mutex: self,
            key: None,
        }
    }

    /// The data, through exclusive access to the mutex itself (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    fn try_acquire(&self) -> bool {
        self.state
            .compare_exchange(UNLOCKED, LOCKED, Acquire, Relaxed)
            .is_ok()
    }

    fn guard(&self) -> MutexGuard<'_, T> {
        MutexGuard {
            mutex: self,
            _data: PhantomData,
        }
    }

    fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, UNLOCKED, Release, Relaxed)
            .is_ok()
        {
            return;
        }
        let mut list = crate::loom::lock(&self.waiters);
        let next = self.hand_off(&mut list);
        drop(list);
        // Past a waker that panics: out of a guard's drop during another unwind, its panic
        // aborted the process (review, session 31).
        crate::sched::wake::wake_all(next);
    }

    /// Called by the holder with the list locked: gives the lock to the first queued locker,
    /// or releases it. Returns the waker to wake once the list lock is released.
    fn hand_off(&self, list: &mut WaitList) -> Option<Waker> {
        match list.notify_one() {
            Some(w) => {
                if list.is_empty() {
                    // Still held (by the notified locker); nobody queued any more.
                    self.state.store(LOCKED, Relaxed);
                }
                Some(w)
            }
            None => {
                self.state.store(UNLOCKED, Release);
                None
            }
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(t: T) -> Self {
        Mutex::new(t)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

/// The future of [`Mutex::lock_async`].
#[must_use = "futures do nothing unless polled"]
pub struct Lock<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    /// Our slot in `waiters` while queued, or once handed the lock until we look.
    key: Option<WaitKey>,
}

impl<T: ?Sized> fmt::Debug for Lock<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("queued", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a, T: ?Sized> Future for Lock<'a, T> {
    type Output = MutexGuard<'a, T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<MutexGuard<'a, T>> {
        let this = self.get_mut();
        ready!(crate::coop::poll_proceed(cx));
        let m = this.mutex;
        if this.key.is_none() && m.try_acquire() {
            return Poll::Ready(m.guard());
        }
        let mut list = crate::loom::lock(&m.waiters);
        if list.take_notified(&mut this.key) {
            // Handed off to us by the previous holder.
            return Poll::Ready(m.guard());
        }
        if this.key.is_none() {
            let mut s = m.state.load(Relaxed);
            loop {
                if s == UNLOCKED {
                    match m.state.compare_exchange(UNLOCKED, LOCKED, Acquire, Relaxed) {
                        Ok(_) => return Poll::Ready(m.guard()),
                        Err(now) => s = now,
                    }
                } else {
                    // Held: make sure its holder's unlock takes the hand-off path.
                    match m
                        .state
                        .compare_exchange(s, LOCKED | QUEUED, Relaxed, Relaxed)
                    {
                        Ok(_) => break,
                        Err(now) => s = now,
                    }
                }
            }
        }
        list.register(&mut this.key, cx.waker());
        // No progress: the unit goes back (see `coop::refund`).
        crate::coop::refund();
        Poll::Pending
    }
}

impl<T: ?Sized> Drop for Lock<'_, T> {
    fn drop(&mut self) {
        if self.key.is_none() {
            return;
        }
        let m = self.mutex;
        let mut list = crate::loom::lock(&m.waiters);
        let next = if list.remove(&mut self.key) {
            // We own a lock handed to us that we will never use.
            m.hand_off(&mut list)
        } else {
            if list.is_empty() {
                // We were the last queued locker; the lock is still held by someone.
                m.state.store(LOCKED, Relaxed);
            }
            None
        };
        drop(list);
        // Past a waker that panics: out of a guard's drop during another unwind, its panic
        // aborted the process (review, session 31).
        crate::sched::wake::wake_all(next);
    }
}

/// Exclusive access to a [`Mutex`]'s data; the lock is released when it drops.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    /// Makes the guard `Send` iff `T: Send` and `Sync` iff `T: Sync`, like `&mut T`
    /// (a bare `&Mutex<T>` would make it `Sync` for any `T: Send`, which is unsound).
    _data: PhantomData<&'a mut T>,
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while its mutex is locked by it, so no other guard
        // (and no `get_mut`, which needs `&mut Mutex`) can reach the data meanwhile.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only borrow through the guard.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    use crate::test_util::counting_waker as waker;

    fn poll<F: Future + Unpin>(f: &mut F, w: &Waker) -> Poll<F::Output> {
        Pin::new(f).poll(&mut Context::from_waker(w))
    }

    #[test]
    fn fifo_hand_off_and_no_barging() {
        let m = Mutex::new(0);
        let g = m.try_lock().unwrap();
        let (ca, wa) = waker();
        let (_cb, wb) = waker();
        let mut a = m.lock_async();
        let mut b = m.lock_async();
        assert!(poll(&mut a, &wa).is_pending());
        assert!(poll(&mut b, &wb).is_pending());
        assert_eq!(m.state.load(Relaxed), LOCKED | QUEUED);
        drop(g);
        assert_eq!(ca.0.load(Ordering::SeqCst), 1);
        // Handed to a: still locked, a newcomer cannot barge.
        assert!(m.try_lock().is_none());
        let ga = match poll(&mut a, &wa) {
            Poll::Ready(g) => g,
            Poll::Pending => panic!("a was handed the lock"),
        };
        drop(ga);
        assert!(m.try_lock().is_none(), "handed to b");
        drop(b); // b dropped while owning: releases
        assert_eq!(m.state.load(Relaxed), UNLOCKED);
        assert!(m.try_lock().is_some());
    }

    #[test]
    fn cancelled_queued_locker_clears_queued() {
        let m = Mutex::new(());
        let g = m.lock();
        let (_c, w) = waker();
        let mut a = m.lock_async();
        assert!(poll(&mut a, &w).is_pending());
        drop(a);
        assert_eq!(m.state.load(Relaxed), LOCKED);
        drop(g);
        assert_eq!(m.state.load(Relaxed), UNLOCKED);
    }

    #[test]
    fn send_sync_bounds() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Mutex<std::cell::Cell<u8>>>();
        send::<MutexGuard<'static, u8>>();
        send::<Lock<'static, u8>>();
    }
}
