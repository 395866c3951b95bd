//! `gorust::sync::Select`: Go's `select` between goroutines, tasks and plain threads.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use gorust::sync::mpsc::{self, RecvError, SendError};
use gorust::sync::Select;

fn rt() -> gorust::Runtime {
    gorust::Runtime::builder().workers(2).build().unwrap()
}

/// A producer selects between two rendezvous channels for each value and a consumer selects
/// between them for each receive: every value arrives once, and the producer's outcome names
/// the channel it went through (a select does one case, never two).
#[test]
fn each_value_goes_through_exactly_one_case() {
    const N: u32 = 20_000;
    common::within(Duration::from_secs(120), || {
        rt().run(|| {
            let (ta, ra) = mpsc::sync_channel::<u32>(0);
            let (tb, rb) = mpsc::sync_channel::<u32>(0);
            let producer = gorust::go(move || {
                let mut through_a = HashSet::new();
                for i in 0..N {
                    let mut sel = Select::new();
                    let a = sel.send(&ta, i);
                    let b = sel.send(&tb, i);
                    let mut done = sel.wait();
                    if let Some(r) = done.send(a) {
                        r.unwrap();
                        through_a.insert(i);
                    } else {
                        done.send(b).unwrap().unwrap();
                    }
                }
                through_a
            });
            let mut from_a = HashSet::new();
            let mut from_b = HashSet::new();
            for _ in 0..N {
                let mut sel = Select::new();
                let a = sel.recv(&ra);
                let b = sel.recv(&rb);
                let mut done = sel.wait();
                if let Some(v) = done.recv(a) {
                    assert!(from_a.insert(v.unwrap()), "a value came twice");
                } else {
                    assert!(from_b.insert(done.recv(b).unwrap().unwrap()));
                }
            }
            let through_a = producer.join().unwrap();
            assert_eq!(from_a.len() + from_b.len(), N as usize);
            assert!(from_a.is_disjoint(&from_b));
            assert_eq!(
                through_a, from_a,
                "the sender saw the case the receiver saw"
            );
            assert!(
                !from_a.is_empty() && !from_b.is_empty(),
                "both cases are used"
            );
        });
    });
}

/// Go's worker pattern: jobs on one channel, a quit channel, a result channel; the worker
/// selects between its input and the quit signal.
#[test]
fn a_worker_selects_between_jobs_and_quit() {
    common::within(Duration::from_secs(60), || {
        let sum = rt().run(|| {
            let (jobs_tx, jobs) = mpsc::sync_channel::<u64>(4);
            let (quit_tx, quit) = mpsc::sync_channel::<()>(0);
            let (out_tx, out) = mpsc::channel::<u64>();
            let worker = gorust::go(move || loop {
                let mut sel = Select::new();
                let job = sel.recv(&jobs);
                let stop = sel.recv(&quit);
                let mut done = sel.wait();
                if let Some(j) = done.recv(job) {
                    out_tx.send(j.unwrap() * 2).unwrap();
                } else if done.recv(stop).is_some() {
                    return;
                }
            });
            for j in 1..=1_000u64 {
                jobs_tx.send(j).unwrap();
            }
            let sum: u64 = out.iter().take(1_000).sum();
            quit_tx.send(()).unwrap();
            worker.join().unwrap();
            sum
        });
        assert_eq!(sum, 2 * (1..=1_000u64).sum::<u64>());
    });
}

/// Two goroutines each select between sending to the other and receiving from it, on
/// rendezvous channels: neither waits for ever, and the value exchanged each round goes one
/// way only.
#[test]
fn crossing_selects_on_rendezvous_channels_always_meet() {
    const ROUNDS: u32 = 5_000;
    common::within(Duration::from_secs(120), || {
        rt().run(|| {
            let (to_b, from_a) = mpsc::sync_channel::<u32>(0);
            let (to_a, from_b) = mpsc::sync_channel::<u32>(0);
            let b = gorust::go(move || {
                let mut sent = 0;
                for i in 0..ROUNDS {
                    let mut sel = Select::new();
                    let s = sel.send(&to_a, i);
                    let r = sel.recv(&from_a);
                    let mut done = sel.wait();
                    if done.send(s).is_some() {
                        sent += 1;
                    } else {
                        assert_eq!(done.recv(r).unwrap(), Ok(i));
                    }
                }
                sent
            });
            let mut received = 0;
            for i in 0..ROUNDS {
                let mut sel = Select::new();
                let s = sel.send(&to_b, i);
                let r = sel.recv(&from_b);
                let mut done = sel.wait();
                if let Some(v) = done.recv(r) {
                    assert_eq!(v, Ok(i));
                    received += 1;
                } else {
                    assert_eq!(done.send(s), Some(Ok(())));
                }
            }
            assert_eq!(b.join().unwrap(), received);
        });
    });
}

#[test]
fn wait_timeout_gives_up_and_hands_the_select_back() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let (tx, rx) = mpsc::sync_channel::<u32>(0);
            let mut sel = Select::new();
            let r = sel.recv(&rx);
            let start = Instant::now();
            let sel = sel
                .wait_timeout(Duration::from_millis(50))
                .expect_err("nothing is sent");
            assert!(start.elapsed() >= Duration::from_millis(50));
            // No waiter is left behind: a try_send finds nobody receiving.
            assert!(tx.try_send(1).is_err());
            let sender = gorust::go(move || tx.send(2));
            let mut done = sel
                .wait_timeout(Duration::from_secs(30))
                .expect("the same select, waiting again, gets the value");
            assert_eq!(done.recv(r), Some(Ok(2)));
            assert_eq!(sender.join().unwrap(), Ok(()));
        });
    });
}

/// A select whose send case the receiver's drop disconnects gets its value back, and one
/// whose receive case the last sender's drop disconnects gets `RecvError`. (Whether the
/// select parked first depends on the 10 ms sleep; the unit test
/// `a_parked_select_is_woken_by_a_disconnection` covers the parked case for sure.)
#[test]
fn disconnection_completes_a_select() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let (tx, rx) = mpsc::sync_channel::<String>(0);
            let dropper = gorust::go(move || {
                gorust::time::sleep(Duration::from_millis(10));
                drop(rx);
            });
            let mut sel = Select::new();
            let s = sel.send(&tx, "kept".to_string());
            let got = sel.wait().send(s);
            assert!(matches!(got, Some(Err(SendError(v))) if v == "kept"));
            dropper.join().unwrap();

            let (tx, rx) = mpsc::channel::<u32>();
            let dropper = gorust::go(move || {
                gorust::time::sleep(Duration::from_millis(10));
                drop(tx);
            });
            let mut sel = Select::new();
            let r = sel.recv(&rx);
            assert_eq!(sel.wait().recv(r), Some(Err(RecvError)));
            dropper.join().unwrap();
        });
    });
}

/// Outside any runtime a select blocks the plain thread; from a task it is awaited.
#[test]
fn works_on_plain_threads_and_in_tasks() {
    common::within(Duration::from_secs(60), || {
        let (tx, rx) = mpsc::sync_channel::<u32>(0);
        let t = std::thread::spawn(move || {
            let mut sel = Select::new();
            let s = sel.send(&tx, 11);
            sel.wait().send(s)
        });
        let mut sel = Select::new();
        let r = sel.recv(&rx);
        assert_eq!(sel.wait().recv(r), Some(Ok(11)));
        assert_eq!(t.join().unwrap(), Some(Ok(())));

        let got = rt().run(|| {
            let (tx, rx) = mpsc::sync_channel::<u32>(0);
            let task = gorust::spawn(async move {
                let mut sel = Select::new();
                let r = sel.recv(&rx);
                sel.wait_async().await.recv(r)
            });
            tx.send(12).unwrap();
            task.join().unwrap()
        });
        assert_eq!(got, Some(Ok(12)));
    });
}

/// Go's `select` with a `default`: `try_wait` never parks.
#[test]
fn try_wait_is_a_select_with_a_default() {
    let (tx, rx) = mpsc::sync_channel::<u32>(1);
    let mut sel = Select::new();
    let r = sel.recv(&rx);
    let sel = sel.try_wait().expect_err("empty");
    tx.send(3).unwrap();
    assert_eq!(sel.try_wait().unwrap().recv(r), Some(Ok(3)));
}
