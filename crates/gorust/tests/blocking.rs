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

/// A destructor unwound at shutdown that waits for a pool call queued behind a busy one does
/// not wait for the busy one, and the queued call never runs: the pool stops (its queue
/// dropped) before anything is unwound. Before, it stopped after the workers' joins: the drop
/// waited the busy call out (for good, had it never ended), and then the queued call ran,
/// with its caller unwound (review, session 35).
#[test]
fn shutdown_drops_a_queued_call_before_unwinding_its_waiter() {
    use std::sync::atomic::AtomicBool;
    struct WaitOnDrop(Option<gorust::BlockingHandle<()>>);
    impl Drop for WaitOnDrop {
        fn drop(&mut self) {
            if let Some(h) = self.0.take() {
                let _ = gorust::block_on(h);
            }
        }
    }
    within(Duration::from_secs(60), || {
        let busy_done = Arc::new(AtomicBool::new(false));
        let queued_ran = Arc::new(AtomicBool::new(false));
        let rt = gorust::Runtime::builder()
            .workers(1)
            .max_blocking_threads(1)
            .build()
            .unwrap();
        let (done, ran) = (busy_done.clone(), queued_ran.clone());
        rt.run(move || {
            let (started_tx, started_rx) = gorust::sync::mpsc::channel();
            // The pool's one thread, busy for 2 s.
            gorust::go(move || {
                gorust::blocking(move || {
                    started_tx.send(()).unwrap();
                    std::thread::sleep(Duration::from_secs(2));
                    done.store(true, Ordering::SeqCst);
                })
            });
            started_rx.recv().unwrap();
            // A call queued behind it, waited for by a destructor of a goroutine that parks.
            let (queued_tx, queued_rx) = gorust::sync::mpsc::channel();
            gorust::go(move || {
                let _wait = WaitOnDrop(Some(gorust::spawn_blocking(move || {
                    ran.store(true, Ordering::SeqCst)
                })));
                queued_tx.send(()).unwrap();
                gorust::time::sleep(Duration::from_secs(3600));
            });
            queued_rx.recv().unwrap();
        });
        // `run` has shut the runtime down.
        assert!(
            !busy_done.load(Ordering::SeqCst),
            "the shutdown waited for the busy call"
        );
        common::eventually("the busy call ended", || busy_done.load(Ordering::SeqCst));
        std::thread::sleep(Duration::from_millis(200));
        assert!(!queued_ran.load(Ordering::SeqCst), "the queued call ran");
    });
}

/// A cleanup guard that calls the pool while its goroutine panics runs the call on its own
/// thread instead of parking mid-unwind. Parked there, the thread's panic count stayed
/// raised while another goroutine ran on it, and that one's lock guard, dropped meanwhile,
/// poisoned its mutex as if it had panicked (review, session 35).
#[test]
fn a_pool_call_during_a_panics_unwind_does_not_let_others_run_as_panicking() {
    struct CleanUp;
    impl Drop for CleanUp {
        fn drop(&mut self) {
            gorust::blocking(|| std::thread::sleep(Duration::from_millis(300)));
        }
    }
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let m = Arc::new(std::sync::Mutex::new(()));
            let holder = {
                let m = m.clone();
                gorust::go(move || {
                    let g = m.lock().unwrap();
                    gorust::time::sleep(Duration::from_millis(50));
                    drop(g);
                })
            };
            // After `holder` has taken the lock and parked (one worker, FIFO).
            gorust::time::sleep(Duration::from_millis(10));
            let panicker = gorust::go(|| {
                let _c = CleanUp;
                panic!("a goroutine panics with a cleanup guard (expected by this test)");
            });
            assert!(panicker.join().is_err());
            holder.join().unwrap();
            assert!(
                !m.is_poisoned(),
                "a guard dropped during another's unwind poisoned"
            );
        })
    });
}

/// A goroutine still running when its runtime begins to shut down, and calling the pool then
/// (here `gorust::fs::write`), parks as at any other wait and is unwound: its call never runs,
/// and it does not go on with an error. Before, the call was queued and ran once the
/// goroutine had been unwound, its effect seen by nobody; refused with an error instead, a
/// goroutine that retries would spin and keep the shutdown waiting (review, session 35).
#[test]
fn a_pool_call_after_shutdown_began_parks_and_never_runs() {
    use std::sync::atomic::AtomicBool;
    struct Unwound(Arc<AtomicBool>);
    impl Drop for Unwound {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    within(Duration::from_secs(60), || {
        let path = std::env::temp_dir().join(format!("gorust-late-write-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let returned = Arc::new(AtomicBool::new(false));
        let unwound = Arc::new(AtomicBool::new(false));
        let (r, u, p) = (returned.clone(), unwound.clone(), path.clone());
        gorust::Runtime::builder()
            .workers(2)
            .build()
            .unwrap()
            .run(move || {
                let started = Arc::new(AtomicBool::new(false));
                let s = started.clone();
                gorust::go(move || {
                    let _u = Unwound(u);
                    s.store(true, Ordering::SeqCst);
                    // Still running (not parked) while `main` returns and the shutdown begins.
                    std::thread::sleep(Duration::from_millis(500));
                    let _ = gorust::fs::write(&p, b"late");
                    r.store(true, Ordering::SeqCst);
                });
                // Spun, not parked: `main` keeps its worker, so the other one takes the
                // goroutine. Parked in a receive, `main` could be woken on its own worker by
                // the goroutine, which then held that worker in its sleep, and the shutdown
                // began only after the write (review, session 35).
                while !started.load(Ordering::SeqCst) {
                    std::hint::spin_loop();
                }
            });
        assert!(
            unwound.load(Ordering::SeqCst),
            "the goroutine was not unwound"
        );
        assert!(!returned.load(Ordering::SeqCst), "the call returned");
        std::thread::sleep(Duration::from_millis(200));
        let written = path.exists();
        let _ = std::fs::remove_file(&path);
        assert!(!written, "the call ran after the shutdown");
    });
}
