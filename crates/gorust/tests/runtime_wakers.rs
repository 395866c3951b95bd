//! Wakers that panic, called (or dropped) by a worker between tasks, by a task's completion,
//! or by a close.
//!
//! A future polled with another executor's waker (or a custom one) may register it with a
//! worker's timer heap or poller, or with a `JoinHandle`; the worker calls it when the timer
//! fires, the socket is ready or the task completes, outside the poll of the task that
//! registered it. A waker that panics there is reported by the panic hook and the worker goes
//! on; before, the panic ended the worker thread, and the goroutines bound to it never ran
//! again. A close wakes every waiter of its socket, the ones after a panicking waker too.

mod common;

use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use common::within;

/// Counts its wakes, then panics.
struct PanicOnWake(AtomicUsize);

impl Wake for PanicOnWake {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
        panic!("this waker panics on purpose");
    }
}

/// Waits (10 s at most) until `waker` was woken.
fn wait_for_wake(waker: &PanicOnWake) {
    let end = Instant::now() + Duration::from_secs(10);
    while waker.0.load(SeqCst) == 0 {
        assert!(Instant::now() < end, "the waker was never called");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The one worker of `rt` still runs a goroutine parked on it before the panic and a new one.
fn assert_worker_alive(rt: &gorust::Runtime, parked: gorust::JoinHandle<u32>) {
    assert_eq!(parked.join().unwrap(), 1, "the parked goroutine ran on");
    assert_eq!(rt.go(|| 2).join().unwrap(), 2, "a new goroutine ran");
}

/// A goroutine bound to the worker, parked for `d`.
fn parked_for(rt: &gorust::Runtime, d: Duration) -> gorust::JoinHandle<u32> {
    rt.go(move || {
        gorust::time::sleep(d);
        1
    })
}

/// A timer armed in the worker's heap with a panicking waker fires; the worker goes on.
#[test]
fn a_panicking_waker_of_a_timer_leaves_the_worker_running() {
    within(Duration::from_secs(60), || {
        let rt = gorust::Runtime::builder().workers(1).build().unwrap();
        let waker = Arc::new(PanicOnWake(AtomicUsize::new(0)));
        let parked = parked_for(&rt, Duration::from_millis(200));
        let w = waker.clone();
        // Kept alive here, so that its timer stays armed.
        let sleep = rt
            .go(move || {
                let mut sleep = Box::pin(gorust::time::Sleep::new(Duration::from_millis(20)));
                let waker = Waker::from(w);
                let polled = sleep.as_mut().poll(&mut Context::from_waker(&waker));
                assert!(polled.is_pending());
                sleep
            })
            .join()
            .unwrap();
        wait_for_wake(&waker);
        assert_worker_alive(&rt, parked);
        drop(sleep);
    });
}

/// A socket read polled with a panicking waker becomes ready; the worker's poller calls the
/// waker and the worker goes on.
#[test]
fn a_panicking_waker_of_a_socket_leaves_the_worker_running() {
    within(Duration::from_secs(60), || {
        let rt = gorust::Runtime::builder().workers(1).build().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let server = gorust::net::TcpStream::from(listener.accept().unwrap().0);
        let waker = Arc::new(PanicOnWake(AtomicUsize::new(0)));
        let parked = parked_for(&rt, Duration::from_millis(500));
        let w = waker.clone();
        // Registered with the worker's poller by a poll on the worker; kept alive here.
        let server = rt
            .go(move || {
                let waker = Waker::from(w);
                let polled = server.poll_read(&mut Context::from_waker(&waker), &mut [0u8; 8]);
                assert!(matches!(polled, Poll::Pending));
                server
            })
            .join()
            .unwrap();
        client.write_all(b"ready").unwrap();
        wait_for_wake(&waker);
        assert_worker_alive(&rt, parked);
        drop(server);
    });
}

/// Counts its wakes.
struct CountWakes(AtomicUsize);

impl Wake for CountWakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// A `JoinHandle` polled with a panicking waker: the worker that completes the task calls it,
/// and goes on. Before, the panic left the completion half done and ended the worker.
#[test]
fn a_panicking_join_waker_leaves_the_worker_running() {
    within(Duration::from_secs(60), || {
        let rt = gorust::Runtime::builder().workers(1).build().unwrap();
        let (tx, rx) = gorust::sync::mpsc::channel::<u32>();
        let parked = parked_for(&rt, Duration::from_millis(200));
        let mut task = rt.spawn(async move { rx.recv_async().await.unwrap() });
        let waker = Arc::new(PanicOnWake(AtomicUsize::new(0)));
        let w = Waker::from(waker.clone());
        assert!(std::pin::Pin::new(&mut task)
            .poll(&mut Context::from_waker(&w))
            .is_pending());
        tx.send(5).unwrap();
        wait_for_wake(&waker);
        assert_worker_alive(&rt, parked);
        assert_eq!(task.join().unwrap(), 5, "the output is still there");
    });
}

/// Says when it is woken, sleeps a while in `wake_by_ref`, and panics when its last clone is
/// dropped.
struct SlowWakePanicOnDrop(Arc<AtomicUsize>);

impl Wake for SlowWakePanicOnDrop {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Drop for SlowWakePanicOnDrop {
    fn drop(&mut self) {
        panic!("this waker panics on purpose when dropped");
    }
}

/// A `JoinHandle` dropped while the completing worker calls its waker leaves that waker for
/// the worker to drop; a waker whose drop panics must not end the worker. Before, the drop
/// ran outside any catch and the worker thread unwound, so the goroutines bound to it never
/// ran again. The slow `wake_by_ref` holds the window open, so the order is certain.
#[test]
fn a_join_waker_that_panics_when_dropped_leaves_the_worker_running() {
    within(Duration::from_secs(60), || {
        let rt = gorust::Runtime::builder().workers(1).build().unwrap();
        let (tx, rx) = gorust::sync::mpsc::channel::<u32>();
        let parked = parked_for(&rt, Duration::from_millis(500));
        let mut task = rt.spawn(async move { rx.recv_async().await.unwrap() });
        let woken = Arc::new(AtomicUsize::new(0));
        let w = Waker::from(Arc::new(SlowWakePanicOnDrop(woken.clone())));
        assert!(std::pin::Pin::new(&mut task)
            .poll(&mut Context::from_waker(&w))
            .is_pending());
        // The handle's clone is now the only one.
        drop(w);
        tx.send(5).unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        while woken.load(SeqCst) == 0 {
            assert!(Instant::now() < end, "the join waker was never called");
            std::thread::sleep(Duration::from_millis(1));
        }
        // The worker is inside `wake_by_ref`: the handle leaves the waker to it.
        drop(task);
        assert_worker_alive(&rt, parked);
    });
}

/// `close` wakes every waiter of a socket, also when one of their wakers panics: the close
/// goes on and the others are woken. Before, the panic left the close's caller and the other
/// waiters asleep.
#[test]
fn a_panicking_waker_does_not_keep_a_close_from_the_other_waiters() {
    within(Duration::from_secs(60), || {
        let rt = gorust::Runtime::builder().workers(1).build().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let server = gorust::net::TcpStream::from(listener.accept().unwrap().0);
        let panicking = Arc::new(PanicOnWake(AtomicUsize::new(0)));
        let counting = Arc::new(CountWakes(AtomicUsize::new(0)));
        let (p, c) = (panicking.clone(), counting.clone());
        // Both wait on the read slot, the panicking one first.
        let server = rt
            .go(move || {
                for w in [Waker::from(p), Waker::from(c)] {
                    let polled = server.poll_read(&mut Context::from_waker(&w), &mut [0u8; 8]);
                    assert!(matches!(polled, Poll::Pending));
                }
                server
            })
            .join()
            .unwrap();
        server.close().unwrap();
        assert_eq!(panicking.0.load(SeqCst), 1);
        assert_eq!(counting.0.load(SeqCst), 1, "the other waiter was woken");
    });
}
