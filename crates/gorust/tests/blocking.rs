//! `gorust::blocking` and `spawn_blocking`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{run_on, within};

#[test]
fn blocking_parks_the_goroutine_not_the_worker() {
    within(Duration::from_secs(60), || {
        // One worker: while a goroutine waits in `blocking`, another goroutine must run. The
        // closure waits (up to 10 s) for `other` to run: it can run meanwhile only if the
        // caller parked and left the one worker free.
        run_on(1, || {
            let ran = Arc::new(AtomicUsize::new(0));
            let r2 = ran.clone();
            let other = gorust::go(move || {
                r2.fetch_add(1, Ordering::SeqCst);
            });
            let r3 = ran.clone();
            let (ran_meanwhile, seen) = gorust::blocking(move || {
                let end = std::time::Instant::now() + Duration::from_secs(10);
                while r3.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(1));
                }
                (
                    r3.load(Ordering::SeqCst) == 1,
                    std::thread::current().name().map(str::to_owned),
                )
            });
            assert!(
                ran_meanwhile,
                "no other goroutine ran while `blocking` waited"
            );
            assert_eq!(seen.as_deref(), Some("gorust-blocking"));
            other.join().unwrap();
            assert_eq!(ran.load(Ordering::SeqCst), 1);
        })
    });
}

#[test]
fn blocking_reraises_panics() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let h = gorust::go(|| gorust::blocking(|| panic!("pool job failed")));
            let err = h.join().expect_err("panic crosses back");
            assert_eq!(err.downcast_ref::<&str>(), Some(&"pool job failed"));
        })
    });
}

#[test]
fn many_blocking_calls_are_bounded_by_the_pool() {
    within(Duration::from_secs(60), || {
        let rt = gorust::Runtime::builder()
            .workers(2)
            .max_blocking_threads(4)
            .build()
            .unwrap();
        let peak = Arc::new(AtomicUsize::new(0));
        let now = Arc::new(AtomicUsize::new(0));
        let (p, n) = (peak.clone(), now.clone());
        let max_threads = rt.run(move || {
            let hs: Vec<_> = (0..64)
                .map(|_| {
                    let (p, n) = (p.clone(), n.clone());
                    gorust::go(move || {
                        gorust::blocking(move || {
                            let cur = n.fetch_add(1, Ordering::SeqCst) + 1;
                            p.fetch_max(cur, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(2));
                            n.fetch_sub(1, Ordering::SeqCst);
                        })
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            gorust::metrics().unwrap().blocking_threads
        });
        assert!(peak.load(Ordering::SeqCst) <= 4);
        assert!(max_threads <= 4);
    });
}

#[test]
fn spawn_blocking_from_a_future_and_go_from_the_pool() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let v = gorust::block_on(gorust::spawn(async {
                gorust::spawn_blocking(|| {
                    // The pool thread belongs to the runtime: goroutines can be started here.
                    gorust::go(|| 40).join().unwrap() + 2
                })
                .await
                .unwrap()
            }))
            .unwrap();
            assert_eq!(v, 42);
        })
    });
}

#[test]
fn blocking_outside_a_runtime_runs_inline() {
    assert_eq!(gorust::blocking(|| 5), 5);
}

/// From a future on a worker, `blocking` panics before it runs anything (waiting there would
/// block the worker). It used to queue the closure first, so the task panicked while the pool
/// still ran its side effect (review, session 19).
#[test]
fn blocking_from_a_future_panics_before_running_anything() {
    within(Duration::from_secs(60), || {
        common::run_with_one_pool_thread(|| {
            let ran = Arc::new(AtomicUsize::new(0));
            let r2 = ran.clone();
            let task = gorust::spawn(async move {
                gorust::blocking(move || r2.fetch_add(1, Ordering::SeqCst));
            });
            let err = gorust::block_on(task).unwrap_err();
            let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(msg.contains("goroutine"), "{msg:?}");
            // Behind the closure on the one pool thread, had it been queued.
            gorust::blocking(|| ());
            assert_eq!(ran.load(Ordering::SeqCst), 0, "the closure ran anyway");
        })
    });
}

/// A panic on a pool thread outside the job's own catch (here the destructor of a result
/// nobody waits for any more) leaves the pool whole: with one thread allowed, a later call
/// still runs. The thread used to die still counted, and every later job waited for good
/// (review, session 19).
#[test]
fn a_panicking_result_destructor_does_not_use_up_the_pool() {
    struct PanicOnDrop(Arc<AtomicUsize>);
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
            panic!("a result's destructor panics (expected by this test)");
        }
    }
    within(Duration::from_secs(60), || {
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        gorust::Runtime::builder()
            .workers(1)
            .max_blocking_threads(1)
            .build()
            .unwrap()
            .run(move || {
                let unwanted = gorust::spawn_blocking(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    PanicOnDrop(d)
                });
                drop(unwanted);
                common::eventually("the result's destructor ran", || {
                    dropped.load(Ordering::SeqCst) == 1
                });
                assert_eq!(gorust::blocking(|| 5), 5);
            })
    });
}

/// A blocking-pool thread, started from a worker, runs with the kernel's usual timer slack
/// (50 µs), not the worker's 1 ns, which it inherited for life before (review, session 28).
#[test]
fn blocking_pool_threads_keep_the_usual_timer_slack() {
    within(Duration::from_secs(60), || {
        let slack = run_on(1, || {
            gorust::blocking(|| {
                // SAFETY: PR_GET_TIMERSLACK takes no argument and reads this thread's slack.
                unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) }
            })
        });
        assert_eq!(slack, 50_000);
    });
}
