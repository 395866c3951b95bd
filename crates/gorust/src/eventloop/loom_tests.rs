//! Loom models of a connection's scheduling state (`state.rs`) and of the claim's hand-off to
//! a client's `call` (`dial.rs`).
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
