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

/// A waker that panics when its timer fires on the fallback thread does not stop that thread:
/// a later sleep on a plain thread still ends. It used to end the thread, and every later
/// fallback timer of the process waited for ever (review, session 23).
#[test]
fn a_panicking_waker_does_not_stop_the_fallback_timers() {
    let mut doomed = Box::pin(gorust::time::Sleep::new(Duration::from_millis(1)));
    let waker = Waker::from(Arc::new(Panicking));
    assert!(doomed
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    // Its timer fires on the fallback thread meanwhile, and the wake panics there.
    std::thread::sleep(Duration::from_millis(50));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        gorust::block_on(gorust::time::Sleep::new(Duration::from_millis(10)));
        tx.send(()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("a later sleep never ended: the fallback timer thread is gone");
    drop(doomed);
}
