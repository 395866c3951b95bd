//! Loom models of `sync`'s wake-up protocols: the mutex's fast unlock against a queuing
//! locker, the hand-off a cancelled lock future must pass on, the wait group's re-check under
//! its lock (and its rounds), a channel's send against a parking receive (plus a cancelled
//! bounded send holding a reserved slot), and a `Select`'s claim: a rendezvous `try_send`
//! claiming a parked select against another of its cases, and a select parked to send
//! meeting one parked to receive.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p gorust --lib --release loom_sync`
//! (`loom_` runs them with every other model). Each model has two threads and drives the
//! futures by hand with a counting waker; a future left `Pending` is polled again once the
//! other thread is joined, after checking that its waker was called: a future that parked and
//! was never woken is the lost wake-up each model looks for.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use loom::sync::Arc;
use loom::thread;

use super::mpsc::{self, TryRecvError};
use super::{Mutex, MutexGuard, Select, WaitGroup};
use crate::test_util::{counting_waker, Count};

/// What the mutex models guard: a holder count, to see two holders at once, and a counter
/// incremented non-atomically (a `Relaxed` load and store), which loses an update if two
/// critical sections overlap or if a holder does not see its predecessor's writes.
#[derive(Default)]
struct Guarded {
    holders: AtomicUsize,
    count: AtomicUsize,
}

loom::lazy_static! {
    /// The mutex of the mutex models: `'static` so that a guard can be moved to the thread
    /// that releases it (loom makes a fresh one for each execution).
    static ref MUTEX: Mutex<Guarded> = Mutex::new(Guarded::default());
}

fn critical_section(g: &MutexGuard<'_, Guarded>) {
    assert_eq!(g.holders.fetch_add(1, Relaxed), 0, "two holders at once");
    let n = g.count.load(Relaxed);
    g.count.store(n + 1, Relaxed);
    g.holders.fetch_sub(1, Relaxed);
}

fn poll<F: Future + Unpin>(f: &mut F, w: &Waker) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(w))
}

fn woken(c: &Count) -> bool {
    c.0.load(SeqCst) > 0
}

/// The holder's fast unlock (a compare-exchange from plain `LOCKED`) races a second locker
/// that finds the lock held and queues (its compare-exchange to `LOCKED | QUEUED`): either
/// the locker takes the lock, or it parks and the unlock hands the lock to it and wakes it.
/// Never two holders, and the lock is free at the end.
#[test]
fn loom_sync_mutex_unlock_races_queuing_locker() {
    loom::model(|| {
        let m: &'static Mutex<Guarded> = &MUTEX;
        let g = m.try_lock().expect("free at the start");
        let holder = thread::spawn(move || {
            critical_section(&g);
            drop(g);
        });
        let (c, w) = counting_waker();
        let mut lock = m.lock_async();
        match poll(&mut lock, &w) {
            Poll::Ready(g) => {
                critical_section(&g);
                drop(g);
                holder.join().unwrap();
            }
            Poll::Pending => {
                holder.join().unwrap();
                assert!(
                    woken(&c),
                    "queued behind a holder that left without waking it"
                );
                let Poll::Ready(g) = poll(&mut lock, &w) else {
                    panic!("woken, but not handed the lock");
                };
                critical_section(&g);
            }
        }
        drop(lock);
        let g = m.try_lock().expect("the lock is free at the end");
        assert_eq!(
            g.count.load(Relaxed),
            2,
            "a critical section's update was lost"
        );
    });
}

/// A lock future that queued behind the holder is dropped while the holder unlocks, so it may
/// be dropped before or after being handed the lock, never to be polled again. With another
/// locker queued behind it (`next`), that locker must end up woken and owning the lock;
/// without one, the lock must end up free.
fn dropped_lock_future_passes_the_lock_on(next: bool) {
    loom::model(move || {
        let m: &'static Mutex<Guarded> = &MUTEX;
        let g = m.try_lock().expect("free at the start");
        let (_ca, wa) = counting_waker();
        let (cb, wb) = counting_waker();
        let mut a = m.lock_async();
        let mut b = m.lock_async();
        assert!(poll(&mut a, &wa).is_pending());
        if next {
            assert!(poll(&mut b, &wb).is_pending());
        }
        let holder = thread::spawn(move || {
            critical_section(&g);
            drop(g);
        });
        drop(a);
        holder.join().unwrap();
        if next {
            assert!(woken(&cb), "the next locker was never woken");
            let Poll::Ready(g) = poll(&mut b, &wb) else {
                panic!("woken, but not handed the lock");
            };
            critical_section(&g);
        }
        drop(b);
        let g = m
            .try_lock()
            .expect("locked with no holder: a dropped future kept the lock");
        assert_eq!(g.count.load(Relaxed), 1 + next as usize);
    });
}

#[test]
fn loom_sync_mutex_dropped_lock_future_passes_the_lock_on() {
    dropped_lock_future_passes_the_lock_on(true);
}

#[test]
fn loom_sync_mutex_dropped_lock_future_releases_the_lock() {
    dropped_lock_future_passes_the_lock_on(false);
}

/// The last `done` races a waiter's registration: the waiter either sees zero or is queued
/// before the zeroing `done` looks at the list, so it is ready or woken; and once ready it
/// sees what the worker wrote before `done` (Go's guarantee).
///
/// `started` is there for loom: its partial-order reduction never moves a compare-exchange
/// loop (`done`'s `fetch_update`) before another thread's earlier load of the same atomic, so
/// without a conflict of its own before the waiter's first look, the schedule in which the
/// whole `done` comes first (the waiter's fast path) would not be explored.
#[test]
fn loom_sync_waitgroup_done_races_wait_registration() {
    loom::model(|| {
        let wg = WaitGroup::new();
        wg.add(1);
        let started = Arc::new(AtomicBool::new(false));
        let work = Arc::new(AtomicUsize::new(0));
        let (wg2, started2, work2) = (wg.clone(), started.clone(), work.clone());
        let worker = thread::spawn(move || {
            started2.store(true, Relaxed);
            work2.store(1, Relaxed);
            wg2.done();
        });
        let _ = started.load(Relaxed);
        let (c, w) = counting_waker();
        let mut wait = wg.wait_async();
        let ready = poll(&mut wait, &w).is_ready();
        if ready {
            // Checked before the join, which would make it visible anyway.
            assert_eq!(
                work.load(Relaxed),
                1,
                "wait returned before the work was visible"
            );
        }
        worker.join().unwrap();
        if !ready {
            assert!(
                woken(&c),
                "the counter reached zero and the waiter was never woken"
            );
            assert!(poll(&mut wait, &w).is_ready(), "woken, but still waiting");
        }
        assert_eq!(wg.count(), 0);
    });
}

/// A group used for a second round (Go allows a new `add` once the last `wait` returned)
/// while the previous round's zeroing `done` has not yet woken anybody: the second round's
/// waiter, queued with the counter at one, must not be released by that old zero. It was,
/// before session 34 (the zero and the wake-up were two steps, and the wake-up woke whoever
/// was queued by then; review).
#[test]
fn loom_sync_waitgroup_an_old_zero_does_not_release_the_next_round() {
    loom::model(|| {
        let wg = WaitGroup::new();
        wg.add(1);
        let wg2 = wg.clone();
        let worker = thread::spawn(move || wg2.done());
        // Round one's wait, on its fast path.
        while wg.count() != 0 {
            thread::yield_now();
        }
        wg.add(1);
        let (_c, w) = counting_waker();
        let mut second = wg.wait_async();
        assert!(poll(&mut second, &w).is_pending(), "the counter is one");
        worker.join().unwrap();
        assert!(
            poll(&mut second, &w).is_pending(),
            "released by the previous round's zero with the counter at one"
        );
        wg.done();
        assert!(poll(&mut second, &w).is_ready(), "its own zero releases it");
    });
}

/// A waiter queued in one round and polled again after that round's zero, with the counter
/// raised again by the next round's `add` (a `select`-style spurious poll, perhaps before the
/// zero's wake-up reached it): it returns, its zero having come. A first version of the rounds
/// took the new round for its own at that poll and waited for the next zero (review, session
/// 34).
#[test]
fn loom_sync_waitgroup_a_waiter_polled_after_its_zero_returns() {
    loom::model(|| {
        let wg = WaitGroup::new();
        wg.add(1);
        let (_c, w) = counting_waker();
        let mut first = wg.wait_async();
        assert!(poll(&mut first, &w).is_pending(), "the counter is one");
        let wg2 = wg.clone();
        let worker = thread::spawn(move || wg2.done());
        while wg.count() != 0 {
            thread::yield_now();
        }
        wg.add(1);
        let early = poll(&mut first, &w).is_ready();
        worker.join().unwrap();
        assert!(
            early || poll(&mut first, &w).is_ready(),
            "its round's zero came, and it still waits"
        );
        wg.done();
    });
}

/// A send races a receive's registration on an empty unbounded channel: the receive gets the
/// message at once, or parks and is woken, and then gets it. (The sender is kept alive until
/// the end: its drop would wake the receive by disconnection and hide a lost wake-up.)
#[test]
fn loom_sync_mpsc_send_races_recv_registration() {
    loom::model(|| {
        let (tx, rx) = mpsc::channel::<u32>();
        let sender = thread::spawn(move || {
            tx.send(7).unwrap();
            tx
        });
        let (c, w) = counting_waker();
        let mut recv = rx.recv_async();
        let tx = match poll(&mut recv, &w) {
            Poll::Ready(v) => {
                assert_eq!(v, Ok(7));
                sender.join().unwrap()
            }
            Poll::Pending => {
                let tx = sender.join().unwrap();
                assert!(
                    woken(&c),
                    "a message arrived and the receive was never woken"
                );
                assert_eq!(poll(&mut recv, &w), Poll::Ready(Ok(7)));
                tx
            }
        };
        drop(recv);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        drop(tx);
    });
}

/// On a full channel of capacity 1, senders `a` and `b` are parked; the receiver takes the
/// message (freeing the slot and reserving it for `a`) while `a`'s future is dropped. Either
/// way `b` ends up woken and pushes, the reservation does not leak, and no slot is lost.
#[test]
fn loom_sync_mpsc_cancelled_send_passes_its_reservation_on() {
    loom::model(|| {
        let (tx, rx) = mpsc::sync_channel::<u32>(1);
        tx.try_send(1).unwrap();
        let (_ca, wa) = counting_waker();
        let (cb, wb) = counting_waker();
        let mut a = tx.send_async(2);
        let mut b = tx.send_async(3);
        assert!(poll(&mut a, &wa).is_pending());
        assert!(poll(&mut b, &wb).is_pending());
        let receiver = thread::spawn(move || {
            assert_eq!(rx.try_recv(), Ok(1));
            rx
        });
        drop(a);
        let rx = receiver.join().unwrap();
        assert!(
            woken(&cb),
            "a slot was freed and the next sender was never woken"
        );
        assert_eq!(poll(&mut b, &wb), Poll::Ready(Ok(())));
        drop(b);
        assert_eq!(rx.try_recv(), Ok(3));
        // Nothing reserved any more: the one slot is free for a newcomer.
        tx.try_send(4).expect("the slot leaked to a reservation");
        assert_eq!(rx.try_recv(), Ok(4));
    });
}

/// A select parked on two receives (a rendezvous channel and an unbounded one); a thread's
/// `try_send` on the rendezvous channel races a message on the other and the select's next
/// poll. The `try_send` succeeds exactly when the select ends up taking its value (it
/// claimed the select before its pass), and the other message then stays queued: never both
/// cases, never a value reported sent that nobody took.
#[test]
fn loom_sync_select_claim_races_another_case() {
    loom::model(|| {
        let (tx, rx) = mpsc::sync_channel::<u32>(0);
        let (other_tx, other) = mpsc::channel::<u32>();
        let (_c, w) = counting_waker();
        // The other case first: a pass (which, in loom builds, tries the cases in order) that
        // ignored the claim would pick it.
        let mut sel = Select::new();
        let o = sel.recv(&other);
        let r = sel.recv(&rx);
        let mut fut = sel.wait_async();
        assert!(poll(&mut fut, &w).is_pending());
        let claimer = thread::spawn(move || {
            let sent = tx.try_send(5).is_ok();
            (sent, tx)
        });
        other_tx.send(9).unwrap();
        let Poll::Ready(mut done) = poll(&mut fut, &w) else {
            panic!("a message is queued: the select goes ahead");
        };
        let (sent, tx) = claimer.join().unwrap();
        if sent {
            assert_eq!(
                done.recv(r),
                Some(Ok(5)),
                "claimed, yet another case picked"
            );
            drop(done);
            assert_eq!(other.try_recv(), Ok(9));
        } else {
            assert_eq!(done.recv(o), Some(Ok(9)));
            drop(done);
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        }
        drop(tx);
    });
}

/// Polls `fut` until it completes, waiting (spinning with loom's yield) for its waker between
/// polls: a poll left `Pending` that nobody wakes spins until loom gives up on the model.
fn poll_until_ready<F: Future + Unpin>(fut: &mut F) -> F::Output {
    let (c, w) = counting_waker();
    let mut seen = 0;
    loop {
        if let Poll::Ready(v) = poll(fut, &w) {
            return v;
        }
        while c.0.load(SeqCst) == seen {
            thread::yield_now();
        }
        seen = c.0.load(SeqCst);
    }
}

/// A select that sends on a rendezvous channel and one that receives from it (and from a
/// second channel) start at once on two threads: in every order, one's registration wakes
/// the other or one claims the other, and the value goes through once.
#[test]
fn loom_sync_select_send_meets_select_receive() {
    loom::model(|| {
        let (tx, rx) = mpsc::sync_channel::<u32>(0);
        let (other_tx, other) = mpsc::channel::<u32>();
        let sender = thread::spawn(move || {
            let mut sel = Select::new();
            let s = sel.send(&tx, 5);
            let mut fut = sel.wait_async();
            let sent = poll_until_ready(&mut fut).send(s);
            assert_eq!(sent, Some(Ok(())));
            drop(fut);
            tx
        });
        let mut sel = Select::new();
        let r = sel.recv(&rx);
        sel.recv(&other);
        let mut fut = sel.wait_async();
        assert_eq!(poll_until_ready(&mut fut).recv(r), Some(Ok(5)));
        drop(fut);
        let tx = sender.join().unwrap();
        drop((tx, other_tx));
    });
}
