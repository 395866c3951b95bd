//! `gorust::sync::WaitGroup`: Go's semantics from goroutines, tasks and threads.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gorust::sync::WaitGroup;

fn rt() -> gorust::Runtime {
    gorust::Runtime::builder().workers(2).build().unwrap()
}

#[test]
fn ten_thousand_goroutines() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let wg = WaitGroup::new();
            let hits = Arc::new(AtomicUsize::new(0));
            for i in 0..10_000 {
                wg.add(1);
                let (wg, hits) = (wg.clone(), hits.clone());
                gorust::go(move || {
                    if i % 7 == 0 {
                        gorust::yield_now();
                    }
                    hits.fetch_add(1, SeqCst);
                    wg.done();
                });
            }
            wg.wait();
            assert_eq!(hits.load(SeqCst), 10_000);
            assert_eq!(wg.count(), 0);
        });
    });
}

#[test]
fn wait_at_zero_returns_at_once() {
    common::within(Duration::from_secs(60), || {
        let wg = WaitGroup::new();
        wg.wait(); // plain thread
        rt().run(move || {
            wg.wait();
            gorust::block_on(wg.wait_async());
        });
    });
}

#[test]
fn wait_really_waits() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let wg = WaitGroup::new();
            wg.add(2);
            let w = wg.clone();
            // Before the spawn: on two workers the goroutine may start its sleeps at once.
            let t = Instant::now();
            gorust::go(move || {
                gorust::time::sleep(Duration::from_millis(30));
                w.done();
                gorust::time::sleep(Duration::from_millis(10));
                w.done();
            });
            wg.wait();
            assert!(t.elapsed() >= Duration::from_millis(40));
            assert_eq!(wg.count(), 0);
        });
    });
}

/// 50 goroutines, 50 tasks and a plain thread wait (each as `wait` does, `block_on` of
/// `wait_async`, counted once it is queued); once all 101 are queued, the last `done`, from a
/// plain thread, releases them all.
#[test]
fn many_waiters_of_every_kind_are_released() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let wg = WaitGroup::new();
            wg.add(1);
            let queued = Arc::new(AtomicUsize::new(0));
            let released = Arc::new(AtomicUsize::new(0));
            let mut goroutines = Vec::new();
            for _ in 0..50 {
                let (wg, q, r) = (wg.clone(), queued.clone(), released.clone());
                goroutines.push(gorust::go(move || {
                    gorust::block_on(common::counting_registration(wg.wait_async(), &q));
                    r.fetch_add(1, SeqCst);
                }));
            }
            let mut tasks = Vec::new();
            for _ in 0..50 {
                let (wg, q, r) = (wg.clone(), queued.clone(), released.clone());
                tasks.push(gorust::spawn(async move {
                    common::counting_registration(wg.wait_async(), &q).await;
                    r.fetch_add(1, SeqCst);
                }));
            }
            let (w, q, r) = (wg.clone(), queued.clone(), released.clone());
            let (done_tx, done_rx) = gorust::sync::mpsc::channel();
            let thread = std::thread::spawn(move || {
                // Blocks this plain thread.
                gorust::block_on(common::counting_registration(w.wait_async(), &q));
                r.fetch_add(1, SeqCst);
                done_tx.send(()).unwrap();
            });
            common::eventually("every waiter queued", || queued.load(SeqCst) == 101);
            assert_eq!(released.load(SeqCst), 0);
            // The last `done` comes from a plain thread: it wakes goroutines, tasks and a thread.
            let w = wg.clone();
            std::thread::spawn(move || w.done());
            for h in goroutines {
                h.join().unwrap();
            }
            for h in tasks {
                gorust::block_on(h).unwrap();
            }
            done_rx.recv().unwrap();
            thread.join().unwrap();
            assert_eq!(released.load(SeqCst), 101);
        })
    });
}

#[test]
fn done_below_zero_panics_like_go() {
    common::within(Duration::from_secs(60), || {
        let r = rt().run(|| {
            gorust::go(|| {
                let wg = WaitGroup::new();
                wg.add(1);
                wg.done();
                wg.done();
            })
            .join()
        });
        let p = r.unwrap_err(); // `join` gives the panic payload, like std's
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        assert!(msg.contains("sync: negative WaitGroup counter"), "{msg}");
    });
}

#[test]
#[should_panic(expected = "sync: negative WaitGroup counter")]
fn done_below_zero_panics_on_a_thread() {
    WaitGroup::new().done();
}

/// The counter holds up to `u32::MAX`, as Go's 32-bit one: one more panics, and the counter
/// is left as it was (the round kept in the same word is not touched).
#[test]
fn add_past_the_counters_width_panics_and_changes_nothing() {
    let wg = WaitGroup::new();
    wg.add(u32::MAX as usize - 1);
    wg.add(1);
    assert_eq!(wg.count(), u32::MAX as usize);
    for n in [1, usize::MAX] {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wg.add(n)));
        assert!(r.is_err(), "add({n}) past the limit");
        assert_eq!(wg.count(), u32::MAX as usize);
    }
    let fresh = WaitGroup::new();
    let r = std::panic::catch_unwind(|| fresh.add(u32::MAX as usize + 1));
    assert!(r.is_err());
    assert_eq!(fresh.count(), 0);
    fresh.add(1);
    fresh.done();
    fresh.wait();
}

/// A `wait_async` cancelled (by a timeout) while queued leaves the list; another waiter,
/// queued after it, is still released by the last `done`.
#[test]
fn cancelled_wait_async_does_not_disturb_others() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let wg = WaitGroup::new();
            wg.add(1);
            let r = gorust::block_on(gorust::time::timeout(
                Duration::from_millis(10),
                wg.wait_async(),
            ));
            assert!(r.is_err());
            let queued = Arc::new(AtomicUsize::new(0));
            let (w, q) = (wg.clone(), queued.clone());
            let h = gorust::go(move || {
                gorust::block_on(common::counting_registration(w.wait_async(), &q))
            });
            common::eventually("the other waiter queued", || queued.load(SeqCst) == 1);
            wg.done();
            h.join().unwrap();
        })
    });
}

/// A waiter whose waker panics (another executor's, say) does not keep the waiters after it
/// asleep: the last `done` wakes them all, going on past the panic, and returns. Before, it
/// panicked with the others still parked.
#[test]
fn a_panicking_waker_does_not_keep_the_other_waiters_asleep() {
    use std::future::Future;
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let wg = WaitGroup::new();
            wg.add(1);
            let mut foreign = Box::pin(wg.wait_async());
            let waker = common::panicking_waker();
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(foreign.as_mut().poll(&mut cx).is_pending());
            let queued = Arc::new(AtomicUsize::new(0));
            let (w, q) = (wg.clone(), queued.clone());
            let h = gorust::go(move || {
                gorust::block_on(common::counting_registration(w.wait_async(), &q))
            });
            common::eventually("the goroutine queued", || queued.load(SeqCst) == 1);
            wg.done();
            h.join().unwrap();
            assert!(foreign.as_mut().poll(&mut cx).is_ready());
        })
    });
}

#[test]
fn reuse_after_zero() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let wg = WaitGroup::new();
            let finished = std::sync::Arc::new(AtomicUsize::new(0));
            for round in 0..200 {
                for _ in 0..10 {
                    wg.add(1);
                    let (wg, finished) = (wg.clone(), finished.clone());
                    gorust::go(move || {
                        if round % 2 == 0 {
                            gorust::yield_now();
                        }
                        finished.fetch_add(1, SeqCst);
                        wg.done();
                    });
                }
                wg.wait();
                assert_eq!(wg.count(), 0);
                // Every goroutine of this round: not released by the last round's zero.
                assert_eq!(finished.load(SeqCst), 10 * (round + 1));
            }
        });
    });
}

#[test]
fn go_helper_calls_done_even_on_panic() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let wg = WaitGroup::new();
            let hits = Arc::new(AtomicUsize::new(0));
            for i in 0..100 {
                let hits = hits.clone();
                wg.go(move || {
                    if i == 50 {
                        panic!("one goroutine fails");
                    }
                    hits.fetch_add(1, SeqCst);
                });
            }
            wg.wait();
            assert_eq!(hits.load(SeqCst), 99);
        });
    });
}

/// A future polling more wait groups than its budget in one poll waits on every one and
/// sleeps; the last group's `done` reaches it.
#[test]
fn a_future_polling_more_waits_than_its_budget_reaches_the_last() {
    common::within(Duration::from_secs(60), || {
        common::run_on(1, || {
            let groups: Arc<Vec<WaitGroup>> = Arc::new(
                (0..common::OVER_BUDGET)
                    .map(|_| {
                        let wg = WaitGroup::new();
                        wg.add(1);
                        wg
                    })
                    .collect(),
            );
            let polls = Arc::new(AtomicUsize::new(0));
            let (g2, p2) = (groups.clone(), polls.clone());
            let task = gorust::spawn(async move {
                let mut futs: Vec<_> = g2.iter().map(|wg| Box::pin(wg.wait_async())).collect();
                common::first_ready(&mut futs, &p2).await
            });
            gorust::time::sleep(Duration::from_millis(50));
            groups[common::OVER_BUDGET - 1].done();
            assert_eq!(gorust::block_on(task).unwrap(), common::OVER_BUDGET - 1);
            common::assert_slept(&polls);
        })
    });
}
