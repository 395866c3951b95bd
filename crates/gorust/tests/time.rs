//! `gorust::time`: sleep, Sleep, timeout.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{run_on, within};

on_each_config!(sleep_is_never_early, || {
    for us in [1u64, 50, 100, 1_000, 5_000] {
        let d = Duration::from_micros(us);
        let t = Instant::now();
        gorust::time::sleep(d);
        assert!(t.elapsed() >= d, "slept {:?} < {d:?}", t.elapsed());
    }
});

// 10,000 goroutines sleeping at once all wake.
on_each_config!(ten_thousand_sleepers_all_wake, || {
    let woke = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..10_000u64)
        .map(|i| {
            let w = woke.clone();
            gorust::go(move || {
                gorust::time::sleep(Duration::from_millis(10 + i % 40));
                w.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(woke.load(Ordering::Relaxed), 10_000);
});

on_each_config!(timeout_elapses_and_completes, || {
    let slow = gorust::time::timeout(
        Duration::from_millis(5),
        gorust::time::Sleep::new(Duration::from_secs(30)),
    );
    let t = Instant::now();
    assert!(gorust::block_on(slow).is_err());
    assert!(t.elapsed() >= Duration::from_millis(5));
    assert!(t.elapsed() < Duration::from_secs(10));
    let fast = gorust::time::timeout(Duration::from_secs(30), async { 9 });
    assert_eq!(gorust::block_on(fast), Ok(9));
    let elapsed = gorust::block_on(gorust::time::timeout(
        Duration::ZERO,
        std::future::pending::<()>(),
    ))
    .unwrap_err();
    let e: std::io::Error = elapsed.into();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
});

// `Duration::MAX` means "wait forever", not a panic in `Instant + Duration` (std's sleep and
// tokio's take it too): a timeout that long lets a ready future through, and a sleep or
// timeout that long is simply pending.
on_each_config!(the_longest_durations_wait_forever_without_panicking, || {
    let r = gorust::block_on(gorust::time::timeout(Duration::MAX, async { 7 }));
    assert_eq!(r, Ok(7));
    let r = gorust::block_on(gorust::time::timeout(
        Duration::from_millis(5),
        gorust::time::Sleep::new(Duration::MAX),
    ));
    assert!(
        r.is_err(),
        "the long sleep is still pending when the short limit passes"
    );
    let never = gorust::time::timeout(Duration::MAX, std::future::pending::<()>());
    let r = gorust::block_on(gorust::time::timeout(Duration::from_millis(5), never));
    assert!(r.is_err());
});

on_each_config!(cancelled_timers_do_not_pile_up_in_the_heap, || {
    // Many timeouts that finish early, each after its timer was armed (the inner future is
    // pending once, so the timeout polls its sleep): the timers are cancelled, and the heap
    // drops cancelled ones as they pile up instead of keeping 20,000 of them for a minute.
    // (An inner future ready at once, as this test had before, armed no timer at all; review,
    // session 21.)
    for _ in 0..20_000 {
        let mut polled = false;
        let pending_once = std::future::poll_fn(move |cx| {
            if std::mem::replace(&mut polled, true) {
                std::task::Poll::Ready(1)
            } else {
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        });
        let r = gorust::block_on(gorust::time::timeout(Duration::from_secs(60), pending_once));
        assert_eq!(r, Ok(1));
    }
    let metrics = gorust::metrics().expect("in a runtime");
    let held = metrics.workers.iter().map(|w| w.timers).max();
    let held = held.unwrap_or(0);
    assert!(
        held > 0,
        "the timeouts armed timers (some still wait to be dropped)"
    );
    assert!(
        held < 10_000,
        "{held} of 20,000 cancelled timers still held"
    );
});

/// A future's timer armed on a worker that then gets stuck in one goroutine (computing without
/// a park) fires anyway, from the monitor, and the future runs on the other worker. Before, a
/// worker's timers fired only on that worker, so the future waited for the goroutine to end
/// (here it would never end: it spins until the future is done, or 5 s).
#[test]
fn a_timer_on_a_stuck_worker_fires_and_its_future_runs_elsewhere() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let stuck = gorust::go(|| {
                // Armed here, in this worker's heap: the first poll registers the timer...
                let mut sleep = Box::pin(gorust::time::Sleep::new(Duration::from_millis(20)));
                assert!(
                    common::poll_once(&mut sleep).is_pending(),
                    "a 20 ms sleep is pending at first"
                );
                // ...and a future takes it over (its later polls only change the waker).
                let done = Arc::new(AtomicUsize::new(0));
                let d2 = done.clone();
                let _task = gorust::spawn(async move {
                    sleep.await;
                    d2.store(1, Ordering::SeqCst);
                });
                let start = Instant::now();
                while done.load(Ordering::SeqCst) == 0 && start.elapsed() < Duration::from_secs(5) {
                    std::hint::spin_loop();
                }
                (done.load(Ordering::SeqCst), start.elapsed())
            });
            let (done, waited) = stuck.join().unwrap();
            assert_eq!(
                done, 1,
                "the future slept past its timer while its timer's worker was stuck ({waited:?})"
            );
        })
    });
}

#[test]
fn sleep_future_on_a_plain_thread_uses_the_fallback_timer() {
    within(Duration::from_secs(30), || {
        let t = Instant::now();
        gorust::block_on(gorust::time::Sleep::new(Duration::from_millis(3)));
        assert!(t.elapsed() >= Duration::from_millis(3));
        // sleep() outside a goroutine sleeps the thread.
        let t = Instant::now();
        gorust::time::sleep(Duration::from_millis(2));
        assert!(t.elapsed() >= Duration::from_millis(2));
    });
}

/// A sleep already waiting on a 60 s timer, reset to 2 ms from now, ends then: `reset` cancels
/// the armed timer and arms one at the new deadline.
#[test]
fn sleep_reset_moves_the_deadline() {
    within(Duration::from_secs(30), || {
        run_on(1, || {
            let mut s = gorust::time::Sleep::new(Duration::from_secs(60));
            assert!(common::poll_once(&mut s).is_pending());
            let t = Instant::now();
            s.reset(Instant::now() + Duration::from_millis(2));
            gorust::block_on(&mut s);
            assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
            assert!(s.is_elapsed());
        })
    });
}

/// A future that polls its sleep, resets it and returns `Pending` without polling it again is
/// woken at the new deadline, or at once when that has passed, as with tokio: `reset` keeps the
/// armed timer's waker. Before, `reset` dropped it and such a future slept for ever.
#[test]
fn a_reset_sleep_wakes_its_task_without_another_poll() {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Polls the sleep; on the first poll only, resets it `to` from now without polling again.
    struct ResetOnce {
        sleep: gorust::time::Sleep,
        to: Option<Duration>,
    }
    impl Future for ResetOnce {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if Pin::new(&mut self.sleep).poll(cx).is_ready() {
                return Poll::Ready(());
            }
            if let Some(to) = self.to.take() {
                self.sleep.reset(Instant::now() + to);
            }
            Poll::Pending
        }
    }
    within(Duration::from_secs(30), || {
        run_on(1, || {
            for to in [Duration::from_millis(5), Duration::ZERO] {
                let t = Instant::now();
                gorust::block_on(ResetOnce {
                    sleep: gorust::time::Sleep::new(Duration::from_secs(3600)),
                    to: Some(to),
                });
                assert!(t.elapsed() >= to);
            }
        })
    });
}

/// The reverse: a sleep waiting on a 20 ms timer, reset to 300 ms from now, does not end when
/// the first timer would have fired.
#[test]
fn sleep_reset_to_later_is_not_early() {
    within(Duration::from_secs(30), || {
        run_on(1, || {
            let mut s = gorust::time::Sleep::new(Duration::from_millis(20));
            assert!(common::poll_once(&mut s).is_pending());
            let later = Instant::now() + Duration::from_millis(300);
            s.reset(later);
            gorust::block_on(&mut s);
            assert!(
                Instant::now() >= later,
                "ended {:?} early",
                later - Instant::now()
            );
        })
    });
}

/// `sleep` from a future on a worker panics, with advice, instead of sleeping the worker (and
/// every goroutine queued on it): the other waits already refused. A sleep with no time left
/// returns, and a plain thread's `sleep` still sleeps the thread.
#[test]
fn sleep_from_a_future_on_a_worker_panics_instead_of_blocking_it() {
    within(Duration::from_secs(60), sleep_from_a_future_panics);
}

fn sleep_from_a_future_panics() {
    let rt = gorust::Runtime::builder().workers(1).build().unwrap();
    let task = rt.spawn(async {
        let past = std::panic::catch_unwind(|| gorust::time::sleep(Duration::ZERO));
        let started = Instant::now();
        let r = std::panic::catch_unwind(|| gorust::time::sleep(Duration::from_secs(3600)));
        let text = |p: Box<dyn std::any::Any + Send>| match p.downcast::<&str>() {
            Ok(s) => Some(s.to_string()),
            Err(p) => p.downcast::<String>().ok().map(|s| *s),
        };
        (past.is_ok(), r.map_err(text), started.elapsed())
    });
    let (past_ok, r, took) = rt.block_on(task).unwrap();
    assert!(past_ok, "no time left: returns");
    let msg = r.expect_err("it panicked").expect("a text payload");
    assert!(msg.contains("Sleep::new(d).await"), "{msg}");
    assert!(took < Duration::from_secs(60), "it did not sleep: {took:?}");
    let t = Instant::now();
    gorust::time::sleep(Duration::from_millis(20));
    assert!(
        t.elapsed() >= Duration::from_millis(20),
        "a plain thread sleeps"
    );
}

/// A guard whose destructor waits for the `Sleep` it holds (a "flush when due").
struct WaitsOnDrop(Option<gorust::time::Sleep>);

impl Drop for WaitsOnDrop {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            gorust::block_on(s);
        }
    }
}

/// A goroutine that polled a `Sleep` (its timer now in its worker's heap) and parks, holding
/// a guard that waits for it on drop.
fn park_with_an_armed_sleep(rx: gorust::sync::mpsc::Receiver<()>) {
    let mut s = gorust::time::Sleep::new(Duration::from_millis(200));
    assert!(common::poll_once(&mut s).is_pending());
    let _guard = WaitsOnDrop(Some(s));
    let _ = rx.recv();
}

/// The shutdown unwinds the parked goroutine, and its destructor waits for a timer armed in
/// the worker's heap before the shutdown: the fallback thread fires it. The heap was handed
/// over only after the unwinds, and the wait hung the drop for good (review, session 31).
#[test]
fn a_destructor_at_shutdown_may_wait_for_a_sleep_armed_before_it() {
    within(Duration::from_secs(30), || {
        let rt = gorust::Runtime::builder().workers(1).build().unwrap();
        let (tx, rx) = gorust::sync::mpsc::channel::<()>();
        let (armed_tx, armed_rx) = std::sync::mpsc::channel();
        rt.go(move || {
            armed_tx.send(()).unwrap();
            park_with_an_armed_sleep(rx);
        });
        armed_rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let t = Instant::now();
        drop(rt);
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        drop(tx);
    });
}

/// The same, with the runtime dropped inside one of its own goroutines: the dropping worker's
/// heap is handed over before the rest is unwound there.
#[test]
fn a_destructor_at_shutdown_from_inside_may_wait_for_a_sleep_armed_before_it() {
    within(Duration::from_secs(30), || {
        let rt = gorust::Runtime::builder().workers(1).build().unwrap();
        let (tx, rx) = gorust::sync::mpsc::channel::<()>();
        rt.go(move || park_with_an_armed_sleep(rx));
        let slot = Arc::new(std::sync::Mutex::new(Some(rt)));
        let owner = slot.clone();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let dropper = slot.lock().unwrap().as_ref().unwrap().go(move || {
            gorust::time::sleep(Duration::from_millis(20));
            let t = Instant::now();
            drop(owner.lock().unwrap().take());
            done_tx.send(t.elapsed()).unwrap();
        });
        let spent = done_rx.recv_timeout(Duration::from_secs(20)).unwrap();
        assert!(spent < Duration::from_secs(5), "{spent:?}");
        drop(dropper);
        drop(tx);
    });
}
