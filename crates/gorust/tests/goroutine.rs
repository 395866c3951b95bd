//! `gorust::go`, `JoinHandle::join`, `yield_now`, `block_on`: goroutine behaviour.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{run_on, within};

on_each_config!(spawn_and_join_many, || {
    let hs: Vec<_> = (0..10_000u64).map(|i| gorust::go(move || i * 2)).collect();
    let sum: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, 2 * (10_000 * 9_999 / 2));
});

on_each_config!(nested_goroutines, || {
    fn tree(depth: u32) -> u64 {
        if depth == 0 {
            return 1;
        }
        let a = gorust::go(move || tree(depth - 1));
        let b = gorust::go(move || tree(depth - 1));
        a.join().unwrap() + b.join().unwrap()
    }
    assert_eq!(tree(10), 1024);
});

on_each_config!(yield_interleaves, || {
    let counter = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..100)
        .map(|_| {
            let c = counter.clone();
            gorust::go(move || {
                for _ in 0..100 {
                    c.fetch_add(1, Ordering::Relaxed);
                    gorust::yield_now();
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(counter.load(Ordering::Relaxed), 10_000);
});

#[test]
fn panic_is_returned_by_join_and_runtime_survives() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let h = gorust::go(|| -> u32 { panic!("goroutine failed on purpose") });
            let err = h.join().expect_err("the panic is returned");
            assert_eq!(
                err.downcast_ref::<&str>(),
                Some(&"goroutine failed on purpose")
            );
            // The runtime keeps working.
            let hs: Vec<_> = (0..100).map(|i| gorust::go(move || i)).collect();
            assert_eq!(hs.into_iter().map(|h| h.join().unwrap()).sum::<i32>(), 4950);
        })
    });
}

#[test]
fn main_goroutine_panic_is_reraised_by_run() {
    let res = std::panic::catch_unwind(|| run_on(2, || panic!("main failed")));
    let err = res.expect_err("run re-raises");
    assert_eq!(err.downcast_ref::<&str>(), Some(&"main failed"));
}

/// DESIGN.md decision 2: a started goroutine never changes OS thread. Thousands of goroutines
/// park thousands of times on 2 workers while new goroutines keep arriving (so idle workers
/// steal); every resume must be on the thread of the first run.
#[test]
fn started_goroutine_never_changes_thread() {
    within(Duration::from_secs(120), || {
        run_on(2, || {
            let moved = Arc::new(AtomicUsize::new(0));
            let threads = Arc::new(Mutex::new(HashSet::new()));
            let mut hs = Vec::new();
            for g in 0..2_000 {
                let moved = moved.clone();
                let threads = threads.clone();
                hs.push(gorust::go(move || {
                    let home = std::thread::current().id();
                    threads.lock().unwrap().insert(home);
                    for i in 0..50 {
                        if (g + i) % 3 == 0 {
                            gorust::time::sleep(Duration::from_micros(50));
                        } else {
                            gorust::yield_now();
                        }
                        if std::thread::current().id() != home {
                            moved.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }));
                if g % 100 == 0 {
                    gorust::yield_now();
                }
            }
            for h in hs {
                h.join().unwrap();
            }
            assert_eq!(
                moved.load(Ordering::Relaxed),
                0,
                "a goroutine changed thread"
            );
            assert_eq!(
                threads.lock().unwrap().len(),
                2,
                "both workers ran goroutines (stealing happened)"
            );
        })
    });
}

#[test]
fn goroutines_may_hold_non_send_values_across_parks() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let h = gorust::go(|| {
                let local = std::rc::Rc::new(5);
                gorust::yield_now();
                gorust::time::sleep(Duration::from_millis(1));
                *local + 1
            });
            assert_eq!(h.join().unwrap(), 6);
        })
    });
}

#[test]
fn thread_locals_stay_consistent_across_parks() {
    thread_local!(static SLOT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) });
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let hs: Vec<_> = (0..200)
                .map(|_| {
                    gorust::go(|| {
                        let addr = SLOT.with(|s| s as *const _ as usize);
                        for _ in 0..20 {
                            gorust::yield_now();
                            assert_eq!(SLOT.with(|s| s as *const _ as usize), addr);
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        })
    });
}

#[test]
fn block_on_in_goroutine_parks_not_blocks() {
    within(Duration::from_secs(60), || {
        // One worker: if block_on blocked the thread, the goroutine that completes the future
        // could never run.
        run_on(1, || {
            let flag = Arc::new(AtomicUsize::new(0));
            let f2 = flag.clone();
            let waiter = gorust::go(move || {
                gorust::block_on(gorust::spawn(async move {
                    f2.fetch_add(1, Ordering::SeqCst);
                    7
                }))
                .unwrap()
            });
            assert_eq!(waiter.join().unwrap(), 7);
            assert_eq!(flag.load(Ordering::SeqCst), 1);
        })
    });
}

#[test]
fn join_from_a_plain_thread() {
    within(Duration::from_secs(60), || {
        let rt = gorust::Runtime::builder().workers(2).build().unwrap();
        let h = rt.go(|| {
            gorust::time::sleep(Duration::from_millis(2));
            "done"
        });
        assert_eq!(h.join().unwrap(), "done");
    });
}

#[test]
fn num_goroutines_counts_live_ones() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let base = gorust::num_goroutines();
            assert!(base >= 1, "the main goroutine counts");
            // Held by a gate, not a sleep, so that none ends before the count however slow
            // the machine.
            let gate = gorust::sync::WaitGroup::new();
            gate.add(1);
            let hs: Vec<_> = (0..100)
                .map(|_| {
                    let gate = gate.clone();
                    gorust::go(move || gate.wait())
                })
                .collect();
            assert_eq!(gorust::num_goroutines(), base + 100);
            gate.done();
            for h in hs {
                h.join().unwrap();
            }
            assert_eq!(gorust::num_goroutines(), base);
        })
    });
}

/// A finished goroutine no longer counts, even when it ended on another worker a moment ago.
/// Before, a goroutine published its end before it counted it, and whoever saw it finished
/// could see one goroutine too many (review, session 20).
#[test]
fn a_finished_goroutine_no_longer_counts() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let base = gorust::num_goroutines();
            for i in 0..2_000 {
                let h = gorust::go(|| ());
                // Spin, so that the other worker runs it, and look the moment it is finished.
                // (It may land in this worker's LIFO slot, out of the other's reach, when that
                // one is busy as it is spawned: then yield to run it here.)
                let spin_until = std::time::Instant::now() + Duration::from_millis(1);
                while !h.is_finished() {
                    if std::time::Instant::now() < spin_until {
                        std::hint::spin_loop();
                    } else {
                        gorust::yield_now();
                    }
                }
                assert_eq!(gorust::num_goroutines(), base, "finished {i}");
                h.join().unwrap();
            }
        })
    });
}

#[test]
fn go_outside_a_runtime_panics_with_advice() {
    let err = std::panic::catch_unwind(|| gorust::go(|| ())).expect_err("panics");
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("outside a gorust runtime"), "{msg}");
    assert!(msg.contains("gorust::run"), "{msg}");
}

/// A closure that captures a large value (boxed at `go`, so that it does not enlarge the
/// task cell for the goroutine's whole life) runs and returns as any other.
#[test]
fn a_goroutine_with_a_large_closure_runs() {
    let sum = gorust::Runtime::builder()
        .workers(1)
        .build()
        .unwrap()
        .run(|| {
            let big = [3u8; 4096];
            let hs: Vec<_> = (0..100u32)
                .map(|i| gorust::go(move || big.iter().map(|&b| u32::from(b)).sum::<u32>() + i))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u32>()
        });
    assert_eq!(sum, 100 * 3 * 4096 + (0..100).sum::<u32>());
}

/// A new goroutine runs on an idle worker while its spawner computes without parking (the
/// fork-join shape). Before, it waited in the spawner's LIFO slot, where no other worker looks,
/// until the spawner parked (review, session 20).
#[test]
fn a_new_goroutine_runs_on_an_idle_worker_while_its_spawner_computes() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            gorust::time::sleep(Duration::from_millis(20)); // the other worker parks
            let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let s = started.clone();
            let h = gorust::go(move || s.store(true, Ordering::SeqCst));
            // Compute (no runtime call, so no yield) for up to 5 s.
            let end = std::time::Instant::now() + Duration::from_secs(5);
            while !started.load(Ordering::SeqCst) && std::time::Instant::now() < end {
                std::hint::spin_loop();
            }
            assert!(
                started.load(Ordering::SeqCst),
                "the new goroutine waited for its spawner"
            );
            h.join().unwrap();
        })
    });
}

/// Spins without any runtime call (so without yielding) until `flag` is set, for up to 5 s;
/// returns whether it was.
fn compute_until(flag: &std::sync::atomic::AtomicBool) -> bool {
    let end = std::time::Instant::now() + Duration::from_secs(5);
    while !flag.load(Ordering::SeqCst) && std::time::Instant::now() < end {
        std::hint::spin_loop();
    }
    flag.load(Ordering::SeqCst)
}

/// A goroutine spawned while every worker is busy goes to its spawner's LIFO slot; a worker
/// that runs dry later takes it from there, as Go's thieves take `runnext`. Before, no thief
/// looked at the slot: the goroutine waited until its spawner stopped computing.
#[test]
fn a_goroutine_spawned_while_every_worker_is_busy_runs_on_the_first_to_run_dry() {
    use std::sync::atomic::AtomicBool;
    within(Duration::from_secs(60), || {
        run_on(2, || {
            gorust::time::sleep(Duration::from_millis(20)); // the other worker parks
            let (other_busy, spawned, started) = (
                Arc::new(AtomicBool::new(false)),
                Arc::new(AtomicBool::new(false)),
                Arc::new(AtomicBool::new(false)),
            );
            // Woken for it, the other worker computes until the goroutine below is spawned.
            let (b, s) = (other_busy.clone(), spawned.clone());
            let busy = gorust::go(move || {
                b.store(true, Ordering::SeqCst);
                compute_until(&s)
            });
            assert!(
                compute_until(&other_busy),
                "the other worker never took its goroutine"
            );
            // Every worker busy: to this worker's LIFO slot.
            let st = started.clone();
            let h = gorust::go(move || st.store(true, Ordering::SeqCst));
            spawned.store(true, Ordering::SeqCst);
            // The other worker runs dry now, while this one computes.
            assert!(
                compute_until(&started),
                "the goroutine waited in the LIFO slot for its spawner"
            );
            assert!(busy.join().unwrap());
            h.join().unwrap();
        })
    });
}

/// A burst of new goroutines (an accept loop's, say) while started ones keep the worker busy:
/// the two take turns, so the last new goroutine starts after about as many of the busy ones'
/// turns as the burst has goroutines, neither far more nor far fewer.
/// - Far more: the burst overflows the 256-slot ring into the global queue, and when the worker
///   took from that queue only once every 61 ticks (started goroutines are pinned and kept it
///   from running dry), the last new goroutines waited ~22,600 turns here, and an echo server's
///   first requests at 1,000 connections waited up to 366 ms.
/// - Far fewer: each new goroutine, when it ends, wakes the joining main goroutine into the
///   LIFO slot. When the ring and the pinned queue took turns by the tick's parity, the LIFO
///   slot's runs took every other tick, always the pinned queue's, and the busy goroutines had
///   222 turns while the 600 started.
#[test]
fn a_burst_of_new_goroutines_starts_while_started_ones_stay_busy() {
    const BUSY: usize = 100;
    const BURST: usize = 600;
    // Far beyond what a fair order needs: the busy goroutines stop here even if the burst starves.
    const TURN_CAP: usize = 200_000;
    let worst_lag = within(Duration::from_secs(60), || {
        run_on(1, || {
            let turns = Arc::new(AtomicUsize::new(0));
            let started = Arc::new(AtomicUsize::new(0));
            let busy: Vec<_> = (0..BUSY)
                .map(|_| {
                    let (turns, started) = (turns.clone(), started.clone());
                    gorust::go(move || {
                        while started.load(Ordering::Relaxed) < BURST
                            && turns.fetch_add(1, Ordering::Relaxed) < TURN_CAP
                        {
                            gorust::yield_now();
                        }
                    })
                })
                .collect();
            // Let every busy goroutine start (and so be pinned to the worker).
            while turns.load(Ordering::Relaxed) < 10 * BUSY {
                gorust::yield_now();
            }
            let lags = Arc::new(Mutex::new(Vec::with_capacity(BURST)));
            let burst: Vec<_> = (0..BURST)
                .map(|_| {
                    let (turns, started, lags) = (turns.clone(), started.clone(), lags.clone());
                    let at_spawn = turns.load(Ordering::Relaxed);
                    gorust::go(move || {
                        let lag = turns.load(Ordering::Relaxed) - at_spawn;
                        lags.lock().unwrap().push(lag);
                        started.fetch_add(1, Ordering::Relaxed);
                    })
                })
                .collect();
            for h in burst.into_iter().chain(busy) {
                h.join().unwrap();
            }
            let lags = lags.lock().unwrap();
            assert_eq!(lags.len(), BURST);
            *lags.iter().max().unwrap()
        })
    });
    assert!(
        (BURST / 2..=2 * BURST).contains(&worst_lag),
        "the busy goroutines had {worst_lag} turns before the last of {BURST} new ones started; \
         taking turns gives about {BURST}"
    );
}

/// Goroutines still starting when the runtime shuts down are unwound on their own thread, so
/// their destructors run. Before, a worker shutting down cancelled every unbound goroutine,
/// including one another worker had just taken and started; parked by then, it was dropped on
/// the wrong thread and so leaked, destructors unrun (review, session 20). Racy by nature:
/// many runtimes, each ending while its goroutines start on the other worker. The race did not
/// show here in 5,000 rounds before the fix; the test holds the behaviour around it. Each
/// goroutine records the thread it started on, and its destructor checks it runs there.
#[test]
fn goroutines_started_during_shutdown_run_their_destructors() {
    /// Counts its drop; `home` is the thread its goroutine started on (none if it never
    /// started: then only the closure is dropped, anywhere).
    struct Count {
        dropped: Arc<AtomicUsize>,
        unwound: Arc<AtomicUsize>,
        off_home: Arc<AtomicUsize>,
        home: Option<std::thread::ThreadId>,
    }
    impl Drop for Count {
        fn drop(&mut self) {
            self.dropped.fetch_add(1, Ordering::SeqCst);
            if let Some(home) = self.home {
                self.unwound.fetch_add(1, Ordering::SeqCst);
                if std::thread::current().id() != home {
                    self.off_home.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }
    const GOROUTINES: usize = 64;
    within(Duration::from_secs(120), || {
        let unwound = Arc::new(AtomicUsize::new(0));
        for round in 0..200 {
            let dropped = Arc::new(AtomicUsize::new(0));
            let off_home = Arc::new(AtomicUsize::new(0));
            let (d, u, o) = (dropped.clone(), unwound.clone(), off_home.clone());
            run_on(2, move || {
                for _ in 0..GOROUTINES {
                    let mut c = Count {
                        dropped: d.clone(),
                        unwound: u.clone(),
                        off_home: o.clone(),
                        home: None,
                    };
                    gorust::go(move || {
                        c.home = Some(std::thread::current().id());
                        // Parks for longer than the test; shutdown unwinds it.
                        gorust::time::sleep(Duration::from_secs(3600));
                        drop(c);
                    });
                }
                // Return while the other worker is starting them: after a different short
                // spin each round.
                let end = std::time::Instant::now() + Duration::from_micros((round % 50) * 4);
                while std::time::Instant::now() < end {
                    std::hint::spin_loop();
                }
            });
            assert_eq!(
                dropped.load(Ordering::SeqCst),
                GOROUTINES,
                "round {round}: goroutines leaked at shutdown"
            );
            assert_eq!(
                off_home.load(Ordering::SeqCst),
                0,
                "round {round}: goroutines unwound off the thread they started on"
            );
        }
        // Some started before their runtime ended, so the home check saw unwinds.
        assert!(
            unwound.load(Ordering::SeqCst) > 0,
            "no goroutine ever started"
        );
    });
}
