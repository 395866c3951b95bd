//! `gorust::sync::Mutex`: mutual exclusion across parks, from goroutines, tasks and threads.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use gorust::sync::Mutex;

fn rt() -> gorust::Runtime {
    gorust::Runtime::builder().workers(2).build().unwrap()
}

/// Yields once from a future (goes to the back of the run queue).
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn counter_1000_goroutines_x_100_with_yields_inside() {
    common::within(Duration::from_secs(60), || {
        let n = rt().run(|| {
            let m = Arc::new(Mutex::new(0u64));
            let hs: Vec<_> = (0..1000)
                .map(|_| {
                    let m = m.clone();
                    gorust::go(move || {
                        for _ in 0..100 {
                            let mut g = m.lock();
                            let v = *g;
                            gorust::yield_now(); // others run while we hold it
                            *g = v + 1;
                        }
                    })
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
            let v = *m.lock();
            v
        });
        assert_eq!(n, 100_000);
    });
}

#[test]
fn held_across_sleep_does_not_stall_workers() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let m = Arc::new(Mutex::new(Vec::new()));
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let m = m.clone();
                    gorust::go(move || {
                        let mut g = m.lock();
                        gorust::time::sleep(Duration::from_millis(2));
                        g.push(i);
                    })
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
            let mut v = m.lock().clone();
            v.sort_unstable();
            assert_eq!(v, (0..8).collect::<Vec<_>>());
        });
    });
}

#[test]
fn try_lock_get_mut_into_inner() {
    common::within(Duration::from_secs(60), || {
        let mut m = Mutex::new(5);
        {
            let g = m.try_lock().unwrap();
            assert!(m.try_lock().is_none());
            assert_eq!(*g, 5);
        }
        *m.get_mut() += 1;
        *m.lock() += 1; // plain thread, uncontended
        assert_eq!(m.into_inner(), 7);
        assert_eq!(format!("{:?}", Mutex::new(3)), "Mutex { data: 3, .. }");
    });
}

#[test]
fn lock_async_from_tasks() {
    common::within(Duration::from_secs(60), || {
        let n = rt().run(|| {
            let m = Arc::new(Mutex::new(0u64));
            let hs: Vec<_> = (0..200)
                .map(|_| {
                    let m = m.clone();
                    gorust::spawn(async move {
                        for _ in 0..20 {
                            let mut g = m.lock_async().await;
                            let v = *g;
                            YieldNow(false).await; // the guard is Send: held across an await
                            *g = v + 1;
                        }
                    })
                })
                .collect();
            for h in hs {
                gorust::block_on(h).unwrap();
            }
            let v = *m.lock();
            v
        });
        assert_eq!(n, 4000);
    });
}

#[test]
fn goroutines_tasks_and_a_thread_share_one_mutex() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let m = Arc::new(Mutex::new(0u64));
            let mut gs = Vec::new();
            let mut ts = Vec::new();
            for _ in 0..20 {
                let m1 = m.clone();
                gs.push(gorust::go(move || {
                    for _ in 0..50 {
                        let mut g = m1.lock();
                        let v = *g;
                        gorust::yield_now();
                        *g = v + 1;
                    }
                }));
                let m2 = m.clone();
                ts.push(gorust::spawn(async move {
                    for _ in 0..50 {
                        let mut g = m2.lock_async().await;
                        let v = *g;
                        YieldNow(false).await;
                        *g = v + 1;
                    }
                }));
            }
            let m3 = m.clone();
            let (done_tx, done_rx) = gorust::sync::mpsc::channel();
            let th = std::thread::spawn(move || {
                for _ in 0..50 {
                    let mut g = m3.lock(); // blocks this plain thread when contended
                    let v = *g;
                    std::thread::yield_now();
                    *g = v + 1;
                }
                done_tx.send(()).unwrap();
            });
            for h in gs {
                h.join().unwrap();
            }
            for h in ts {
                gorust::block_on(h).unwrap();
            }
            // Not `th.join()`: that would block this worker while the thread may be waiting for
            // a goroutine queued on it.
            done_rx.recv().unwrap();
            th.join().unwrap();
            assert_eq!(*m.lock(), 20 * 50 * 2 + 50);
        });
    });
}

#[test]
fn a_waiter_is_not_starved_by_a_relocking_hog() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let m = Arc::new(Mutex::new(()));
            let stop = Arc::new(AtomicBool::new(false));
            let spins = Arc::new(AtomicUsize::new(0));
            let (m1, s1, n1) = (m.clone(), stop.clone(), spins.clone());
            let hog = gorust::go(move || {
                while !s1.load(SeqCst) {
                    let _g = m1.lock();
                    n1.fetch_add(1, SeqCst);
                    gorust::yield_now();
                }
            });
            while spins.load(SeqCst) < 10 {
                gorust::yield_now();
            }
            let waiter = {
                let (m, stop) = (m.clone(), stop.clone());
                gorust::go(move || {
                    let _g = m.lock();
                    stop.store(true, SeqCst);
                })
            };
            waiter.join().unwrap();
            hog.join().unwrap();
        });
    });
}

/// A lock future queued behind the holder, handed the lock when the holder releases it, and
/// then dropped without being polled again passes the lock to the next queued locker.
#[test]
fn cancelled_lock_async_passes_the_lock_on() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let m = Mutex::new(0);
            let g = m.lock();
            // Both queued behind the holder, `a` first.
            let mut a = m.lock_async();
            let mut b = m.lock_async();
            assert!(common::poll_once(&mut a).is_pending());
            assert!(common::poll_once(&mut b).is_pending());
            // The lock goes to `a`, which drops it unused.
            drop(g);
            drop(a);
            let mut g = gorust::block_on(gorust::time::timeout(Duration::from_secs(10), b))
                .expect("the lock handed to the dropped future reached the next locker");
            *g += 1;
            drop(g);
            assert_eq!(*m.lock(), 1);

            // Cancelled while still queued (by a timeout), it leaves the queue.
            let g = m.lock();
            let r = gorust::block_on(gorust::time::timeout(
                Duration::from_millis(10),
                m.lock_async(),
            ));
            assert!(r.is_err());
            drop(g);
            assert_eq!(*m.lock(), 1);
        });
    });
}

#[test]
fn no_poisoning_after_a_panic_while_held() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let m = Arc::new(Mutex::new(1));
            let m2 = m.clone();
            let r = gorust::go(move || {
                let mut g = m2.lock();
                *g = 2;
                panic!("boom while holding the lock");
            })
            .join();
            assert!(r.is_err());
            assert_eq!(*m.lock(), 2);
        });
    });
}

/// Not under `--cfg loom`: loom's atomics have no `const` constructor, so neither has the lock.
#[cfg(not(loom))]
#[test]
fn static_mutex() {
    common::within(Duration::from_secs(60), || {
        static M: Mutex<Vec<u32>> = Mutex::new(Vec::new());
        rt().run(|| {
            let hs: Vec<_> = (0..10)
                .map(|i| gorust::go(move || M.lock().push(i)))
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
        });
        assert_eq!(M.lock().len(), 10);
    });
}

/// A task takes a free lock through the blocking face more times in one poll than its budget
/// allows: `block_on`'s one poll on a worker spends no budget (it cannot wait). It panicked
/// with "would have to wait" at the 129th before (review, session 19).
#[test]
fn a_task_takes_a_free_lock_more_often_than_its_budget_in_one_poll() {
    common::within(Duration::from_secs(60), || {
        let n = rt().run(|| {
            let m = Arc::new(Mutex::new(0u32));
            let m2 = m.clone();
            let task = gorust::spawn(async move {
                for _ in 0..1_000 {
                    *m2.lock() += 1;
                }
            });
            gorust::block_on(task).expect("the task completes");
            let n = *m.lock();
            n
        });
        assert_eq!(n, 1_000);
    });
}

/// A future polling more held locks than its budget in one poll queues for every one and
/// sleeps; the last lock's release reaches it.
#[test]
fn a_future_polling_more_held_locks_than_its_budget_reaches_the_last() {
    common::within(Duration::from_secs(60), || {
        common::run_on(1, || {
            let locks: Arc<Vec<Mutex<()>>> =
                Arc::new((0..common::OVER_BUDGET).map(|_| Mutex::new(())).collect());
            let mut held: Vec<_> = locks.iter().map(|m| m.lock()).collect();
            let polls = Arc::new(AtomicUsize::new(0));
            let (l2, p2) = (locks.clone(), polls.clone());
            let task = gorust::spawn(async move {
                let mut futs: Vec<_> = l2.iter().map(|m| Box::pin(m.lock_async())).collect();
                common::first_ready(&mut futs, &p2).await
            });
            gorust::time::sleep(Duration::from_millis(50));
            drop(held.pop());
            assert_eq!(gorust::block_on(task).unwrap(), common::OVER_BUDGET - 1);
            common::assert_slept(&polls);
            drop(held);
        })
    });
}

/// A destructor that locks an uncontended mutex many times during a panic's unwind does not
/// yield when the lock spends the last of the budget (review, session 22: the guard covered
/// socket calls only, and `lock` yielded through `coop::poll_proceed`).
#[test]
fn a_goroutine_unwinding_a_panic_does_not_yield_in_lock() {
    struct LocksOnDrop(Arc<Mutex<u64>>);
    impl Drop for LocksOnDrop {
        fn drop(&mut self) {
            for _ in 0..1_000 {
                *self.0.lock() += 1;
            }
        }
    }
    common::within(Duration::from_secs(60), || {
        common::run_on(1, || {
            let m = Arc::new(Mutex::new(0));
            common::assert_unwind_does_not_yield(LocksOnDrop(m.clone()));
            assert_eq!(*m.lock(), 1_000);
        })
    });
}
