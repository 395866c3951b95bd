//! The fallback timer thread (the timers of `Sleep`s polled off the workers) outlives a waker
//! that panics. In a binary of its own: the thread is the process's, and before the fix the
//! panic ended it for every test in the binary.

use std::future::Future;
use std::sync::{mpsc, Arc};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

struct Panicking;

impl Wake for Panicking {
    fn wake(self: Arc<Self>) {
        panic!("a waker that panics (expected by this test)");
    }
}

struct Counting(std::sync::atomic::AtomicUsize);

impl Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A waker that panics when its timer fires on the fallback thread does not stop that thread:
/// the other timers of the same batch are woken, and a later sleep on a plain thread still
/// ends. It used to end the thread, and every later fallback timer of the process waited for
/// ever (review, session 23). Since the thread restarts after an unwind, only the batch shows
/// the catch: without it, the wakers in hand after the panicking one were dropped unwoken
/// (review, session 31: the later sleep alone passed either way).
#[test]
fn a_panicking_waker_does_not_stop_the_fallback_timers() {
    let due = std::time::Instant::now() + Duration::from_millis(20);
    let panicking = Waker::from(Arc::new(Panicking));
    let counting = Arc::new(Counting(Default::default()));
    let counter = Waker::from(counting.clone());
    // Interleaved, one deadline: they fire in one batch, in the heap's order.
    let mut sleeps: Vec<_> = (0..8)
        .map(|i| {
            let mut s = Box::pin(gorust::time::Sleep::until(due));
            let waker = if i % 2 == 0 { &panicking } else { &counter };
            assert!(s
                .as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_pending());
            s
        })
        .collect();
    let t = std::time::Instant::now();
    while counting.0.load(std::sync::atomic::Ordering::SeqCst) < 4 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "woke {} of 4 timers fired with panicking ones",
            counting.0.load(std::sync::atomic::Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        gorust::block_on(gorust::time::Sleep::new(Duration::from_millis(10)));
        tx.send(()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("a later sleep never ended: the fallback timer thread is gone");
    sleeps.clear();
}
