//! Loom models of a connection's scheduling state (`state.rs`), of the claim's hand-off to a
//! client's `call` (`dial.rs`), and of senders waiting for room under the output limit
//! (`handler.rs`).
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p gorust --lib --release loom_`.

use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::{Arc, Mutex};
use loom::thread;

use super::state::{Next, Pending, State};
use crate::sys::epoll::Readiness;

const LIMIT: usize = 1 << 20;

/// A report that lands while the waker is taking the word is never lost: either the waker's
/// take saw it, or the report queued a new waker.
#[test]
fn loom_eventloop_pending_no_lost_report() {
    loom::model(|| {
        let p = Arc::new(Pending::new());
        let read = Readiness::from_bits(libc::EPOLLIN as u32);
        let write = Readiness::from_bits(libc::EPOLLOUT as u32);
        assert!(p.add(read), "first report queues the waker");
        let p2 = p.clone();
        let waker = thread::spawn(move || p2.take().bits());
        let queued = p.add(write);
        let took = waker.join().unwrap();
        let left = p.take().bits();
        assert_ne!(took & libc::EPOLLIN as u32, 0);
        if left != 0 {
            assert!(queued, "readiness left behind with no waker queued");
        } else {
            assert_ne!(took & libc::EPOLLOUT as u32, 0);
        }
    });
}

/// One handler run as `handler.rs` does it: take the inbox, consume it all, ask `finish`.
/// `flight` counts handlers in flight; it drops back under the same lock that releases the
/// claim, so a second handler seeing it non-zero would be a real overlap.
fn handler(st: Arc<Mutex<State>>, consumed: Arc<Mutex<usize>>, flight: Arc<AtomicUsize>) {
    assert_eq!(flight.fetch_add(1, SeqCst), 0, "two handlers in flight");
    loop {
        let n = st.lock().unwrap().take_inbox().len();
        *consumed.lock().unwrap() += n;
        let mut s = st.lock().unwrap();
        match s.finish(0, n, false, LIMIT) {
            Next::Rerun => continue,
            Next::Idle => {
                flight.fetch_sub(1, SeqCst);
                return;
            }
            Next::Close { .. } => unreachable!("no close in this model"),
        }
    }
}

/// Two arrivals race a handler's exit: every byte is consumed by some run, at most one
/// handler is in flight, and the claim is released at the end.
#[test]
fn loom_eventloop_no_lost_request_and_one_handler() {
    // Takes pool blocks: keep out of the buffer model's count.
    let _serial = crate::buffer::loom_tests::POOL_MODELS
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    loom::model(|| {
        let st = Arc::new(Mutex::new(State::default()));
        let consumed = Arc::new(Mutex::new(0usize));
        let flight = Arc::new(AtomicUsize::new(0));
        let mut handlers = Vec::new();
        for _ in 0..2 {
            let start = {
                let mut s = st.lock().unwrap();
                s.inbox.write_bytes(b"x");
                s.inbox.flush();
                s.arrived()
            };
            if start {
                let (s, c, f) = (st.clone(), consumed.clone(), flight.clone());
                handlers.push(thread::spawn(move || handler(s, c, f)));
            }
        }
        assert!(!handlers.is_empty());
        for h in handlers {
            h.join().unwrap();
        }
        assert_eq!(*consumed.lock().unwrap(), 2, "a request was lost");
        let s = st.lock().unwrap();
        assert!(!s.running, "claim leaked");
        assert!(s.inbox.is_empty());
    });
}

/// A client's `call` waiting for the claim (`dial.rs`) while a handler run ends: the handler
/// releases the claim under the lock, then readies the `unclaimed` slot; the caller tries the
/// claim under the lock, then polls the slot. Readiness means the claim is free, and a caller
/// that polled too early is woken: it never waits for a release that already happened.
/// Checked to fail when the handler readies the slot before it releases the claim.
#[test]
fn loom_eventloop_call_takes_the_released_claim_without_a_lost_wakeup() {
    use crate::netpoll::slot::WaitSlot;
    use std::sync::atomic::AtomicBool;
    use std::task::{Context, Wake, Waker};

    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.store(true, SeqCst);
        }
    }

    loom::model(|| {
        let st = Arc::new(Mutex::new(State {
            running: true,
            ..State::default()
        }));
        let unclaimed = Arc::new(WaitSlot::new());
        let (s2, u2) = (st.clone(), unclaimed.clone());
        let handler = thread::spawn(move || {
            let next = s2.lock().unwrap().finish(0, 0, false, LIMIT);
            assert_eq!(next, Next::Idle);
            let mut w = Vec::new();
            u2.set_ready(&mut w);
            w.into_iter().for_each(Waker::wake);
        });
        let flag = std::sync::Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        if st.lock().unwrap().start() {
            handler.join().unwrap();
            return;
        }
        if unclaimed.poll_ready(&mut cx, None, || false).is_ready() {
            assert!(st.lock().unwrap().start(), "ready, but the claim is held");
            handler.join().unwrap();
            return;
        }
        handler.join().unwrap();
        assert!(
            flag.0.load(SeqCst),
            "the claim was released and the caller not woken"
        );
        assert!(st.lock().unwrap().start());
    });
}

/// Two senders past the output limit wait on the `drain` slot while the poller writes the
/// output out: it lowers `out_len`, then readies the slot once. Only one waiter can take that
/// readiness; the other must still end its wait, because its own condition (room below the
/// limit) holds. Every sender that polled too early is woken, and its next poll is ready.
/// Checked to fail when `done` is left out (`|| false`, the wait before session 19's fix), and
/// when it is read only under the lock before registering (session 19's fix, which this model
/// found incomplete in session 20).
#[test]
fn loom_eventloop_every_sender_past_the_output_limit_returns() {
    use super::handler::SlotWait;
    use crate::netpoll::slot::WaitSlot;
    use loom::sync::atomic::Ordering::{Acquire, Release};
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::AtomicBool;
    use std::task::{Context, Wake, Waker};

    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.store(true, SeqCst);
        }
    }

    const OUT_LIMIT: usize = 1;

    /// One sender: polls the wait once; `None` if it returned, else its wake flag.
    fn send(slot: &WaitSlot, out: &AtomicUsize) -> Option<std::sync::Arc<Flag>> {
        let below = || out.load(Acquire) <= OUT_LIMIT;
        if below() {
            return None;
        }
        let flag = std::sync::Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        if poll_wait(slot, out, &waker) {
            return None;
        }
        Some(flag)
    }

    fn poll_wait(slot: &WaitSlot, out: &AtomicUsize, waker: &Waker) -> bool {
        let stop = AtomicBool::new(false);
        let mut wait = SlotWait {
            slot,
            stop: &stop,
            done: || out.load(Acquire) <= OUT_LIMIT,
            sleep: None,
        };
        let mut cx = Context::from_waker(waker);
        Pin::new(&mut wait).poll(&mut cx).is_ready()
    }

    loom::model(|| {
        let slot = Arc::new(WaitSlot::new());
        let out = Arc::new(AtomicUsize::new(OUT_LIMIT + 1));
        let (s2, o2) = (slot.clone(), out.clone());
        let poller = thread::spawn(move || {
            o2.store(0, Release); // as `write_out` stores `out_len`
            let mut w = Vec::new();
            s2.set_ready(&mut w);
            w.into_iter().for_each(Waker::wake);
        });
        let (s3, o3) = (slot.clone(), out.clone());
        let other = thread::spawn(move || send(&s3, &o3));
        let mine = send(&slot, &out);
        poller.join().unwrap();
        let other = other.join().unwrap();
        for flag in [mine, other].into_iter().flatten() {
            assert!(flag.0.load(SeqCst), "a waiting sender was not woken");
            let waker = Waker::from(flag);
            assert!(
                poll_wait(&slot, &out, &waker),
                "woken, below the limit, and still waiting"
            );
        }
    });
}
