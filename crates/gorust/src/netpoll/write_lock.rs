//! A descriptor's write lock: one blocking-looking write at a time (the write half of Go's
//! `fdMutex`).
//!
//! `TcpStream::write` and `UnixStream::write` loop until the whole buffer is out, parking when
//! the send buffer fills. Two goroutines writing to one stream (through `&TcpStream`) would
//! otherwise interleave: the second's bytes go out while the first is parked part way. Go's
//! `Write` holds the descriptor's write lock for its whole loop, and so does a write here:
//! each call's bytes reach the peer in one piece (review, session 33).
//!
//! States, in two bits of [`PollDesc`]'s `flags` byte, which every write already reads (so
//! the uncontended lock touches no other cache line):
//!
//! | `WRITING` | `WRITERS_WAIT` | meaning |
//! |---|---|---|
//! | 0 | 0 | free: `try_lock_writes` takes it with one `fetch_or` (a `lock bts`) |
//! | 1 | 0 | held, nobody waits: the release is one `fetch_sub` (a `lock xadd`) |
//! | 1 | 1 | held, writers queued (or were, and woke): the release wakes every queued one |
//! | 0 | 1 | transient: a waiter set the bit and is about to try again, or a release is on its way to the queue |
//!
//! A writer that finds the lock held takes the list's lock, sets `WRITERS_WAIT`, tries once
//! more, and queues its waker only if the lock is still held. The holder's release clears
//! `WRITING` and, if it saw `WRITERS_WAIT`, clears that bit and takes the list's lock to wake
//! the whole queue: a waiter that queued saw `WRITING` after it set `WRITERS_WAIT`, so that
//! release comes after the bit, and waits for the list's lock until the waiter has queued.
//! Woken writers race for the lock again (a newcomer may take it first, as in Go); losers
//! set the bit and queue again. Model: `loom_write_lock_excludes_and_wakes`.
//!
//! Who touches what: the two bits, any writer of the descriptor; the list (allocated by the
//! first writer that has to wait, freed with the descriptor), only under its lock.
//!
//! What it does not cover: the `poll_write`/`try_write` faces make one system call each and
//! do not take the lock (a future's write is never atomic beyond one call, as in tokio); a
//! `try_clone` has a descriptor and a lock of its own. A writer waiting for the lock waits
//! for the holder's call to end, however long that takes: as in Go, its own deadline starts
//! to count once it holds the lock (the holder's call is bounded by the same descriptor's
//! deadline, and by its own timeout).
//!
//! Rejected: a `sync::Mutex` in each stream (about 70 bytes, on the goroutine's stack where
//! the echo server keeps its stream, and a state byte on a line the write did not touch);
//! the write slot's own waiter list (its waiters wait for room in the send buffer, and a
//! release would have to fake an edge that the drained-state protocol then misreads); FIFO
//! hand-off (contention here is rare, and the waiters' bytes are all that order matters for).

use std::ptr;

use crate::loom::sync::atomic::{AtomicPtr, Ordering::*};
use crate::loom::sync::Mutex;
use crate::sync::waitlist::WaitList;

/// The queue of writers waiting for a descriptor's write lock, allocated when the first one
/// has to wait.
pub(crate) struct WriteWaiters(AtomicPtr<Mutex<WaitList>>);

impl WriteWaiters {
    pub(crate) fn new() -> WriteWaiters {
        WriteWaiters(AtomicPtr::new(ptr::null_mut()))
    }

    /// The list, if a writer ever waited.
    pub(crate) fn get(&self) -> Option<&Mutex<WaitList>> {
        let p = self.0.load(Acquire);
        // SAFETY: a non-null pointer was installed by `get_or_alloc` from a `Box` and is freed
        // only by `drop`, which `&self` rules out meanwhile; the `Acquire` load pairs with the
        // installing `Release`, so the list's construction is visible.
        unsafe { p.as_ref() }
    }

    /// The list, allocated by the first caller.
    pub(crate) fn get_or_alloc(&self) -> &Mutex<WaitList> {
        if let Some(list) = self.get() {
            return list;
        }
        let fresh = Box::into_raw(Box::new(Mutex::new(WaitList::default())));
        match self
            .0
            .compare_exchange(ptr::null_mut(), fresh, AcqRel, Acquire)
        {
            // SAFETY: just installed, from a `Box`; freed only by `drop`.
            Ok(_) => unsafe { &*fresh },
            Err(theirs) => {
                // SAFETY: `fresh` came from `Box::into_raw` above and was never shared.
                drop(unsafe { Box::from_raw(fresh) });
                // SAFETY: installed by the winner from a `Box`; freed only by `drop`.
                unsafe { &*theirs }
            }
        }
    }
}

impl Drop for WriteWaiters {
    fn drop(&mut self) {
        let p = self.0.load(Acquire);
        if !p.is_null() {
            // SAFETY: installed from a `Box` by `get_or_alloc`; `&mut self` means no borrow of
            // it remains, and it is freed only here.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

/// Models of the write lock (run with the other models:
/// `RUSTFLAGS="--cfg loom" cargo test -p gorust --lib --release loom_`).
#[cfg(all(test, loom))]
mod loom_tests {
    use crate::netpoll::desc::PollDesc;
    use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use loom::sync::Arc;
    use loom::thread;
    use std::task::{Context, Wake, Waker};

    /// Wakes a loom thread parked in `write`.
    struct Unpark(thread::Thread);

    impl Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }

    /// Takes the lock as `Registration::lock_writes` does, marks the critical section, and
    /// releases it. A waiter parks its loom thread until its waker is called, so a lost
    /// wake-up is a deadlock, which loom reports.
    fn write(desc: &PollDesc, inside: &AtomicBool) {
        if !desc.try_lock_writes() {
            let waker = Waker::from(std::sync::Arc::new(Unpark(thread::current())));
            let mut cx = Context::from_waker(&waker);
            let mut key = None;
            while desc.poll_lock_writes(&mut cx, &mut key).is_pending() {
                thread::park();
            }
            assert!(key.is_none(), "the holder left a slot queued");
        }
        assert!(!inside.swap(true, SeqCst), "two writers hold the lock");
        inside.store(false, SeqCst);
        desc.unlock_writes();
    }

    /// Three writers on one descriptor: whatever the interleaving, one holds the lock at a
    /// time, and a writer that queued is woken when the lock is released (loom reports a
    /// deadlock otherwise). Three preemptions: enough for a release that clears
    /// `WRITERS_WAIT` while a third writer queues, in a few seconds.
    #[test]
    fn loom_write_lock_excludes_and_wakes() {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            let desc = Arc::new(PollDesc::new());
            let inside = Arc::new(AtomicBool::new(false));
            let others: Vec<_> = (0..2)
                .map(|_| {
                    let (d, i) = (desc.clone(), inside.clone());
                    thread::spawn(move || write(&d, &i))
                })
                .collect();
            write(&desc, &inside);
            others.into_iter().for_each(|t| t.join().unwrap());
            assert!(desc.try_lock_writes(), "the lock is free at the end");
        });
    }
}
