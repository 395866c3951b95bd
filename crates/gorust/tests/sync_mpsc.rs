//! `gorust::sync::mpsc`: channels between goroutines, tasks and plain threads.

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gorust::sync::mpsc::{
    self, RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError,
};

fn rt() -> gorust::Runtime {
    gorust::Runtime::builder().workers(2).build().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn send_recv_across_goroutines_in_order() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let (tx, rx) = mpsc::channel();
            let h = gorust::go(move || {
                for i in 0..10_000u32 {
                    tx.send(i).unwrap();
                }
            });
            let got: Vec<u32> = rx.iter().collect(); // ends when the sender is dropped
            assert_eq!(got, (0..10_000).collect::<Vec<_>>());
            h.join().unwrap();
        });
    });
}

#[test]
fn many_producers_one_consumer() {
    common::within(Duration::from_secs(60), || {
        let sum = rt().run(|| {
            let (tx, rx) = mpsc::channel::<u64>();
            for p in 0..100u64 {
                let tx = tx.clone();
                gorust::go(move || {
                    for i in 0..100 {
                        tx.send(p * 100 + i).unwrap();
                        if i % 10 == 0 {
                            gorust::yield_now();
                        }
                    }
                });
            }
            drop(tx);
            rx.into_iter().sum::<u64>()
        });
        assert_eq!(sum, (0..10_000u64).sum());
    });
}

#[test]
fn plain_thread_and_goroutine_ping_pong() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let (to_thread, from_go) = mpsc::channel::<u32>();
            let (to_go, from_thread) = mpsc::sync_channel::<u32>(0);
            let t = std::thread::spawn(move || {
                // A plain thread: these block the thread.
                for v in from_go.iter() {
                    to_go.send(v * 2).unwrap();
                }
            });
            for i in 0..200 {
                to_thread.send(i).unwrap();
                assert_eq!(from_thread.recv().unwrap(), i * 2);
            }
            drop(to_thread);
            assert_eq!(from_thread.recv(), Err(RecvError));
            t.join().unwrap();
        });
    });
}

#[test]
fn goroutine_to_plain_thread_outside_the_runtime() {
    common::within(Duration::from_secs(60), || {
        let rt = rt();
        let (tx, rx) = mpsc::sync_channel::<u32>(1);
        let (back_tx, back_rx) = mpsc::channel::<u32>();
        let sender = rt.go(move || {
            for i in 0..100 {
                tx.send(i).unwrap();
                assert_eq!(back_rx.recv().unwrap(), i + 1);
            }
        });
        // This thread is not part of the runtime at all.
        for i in 0..100 {
            assert_eq!(rx.recv().unwrap(), i);
            back_tx.send(i + 1).unwrap();
        }
        assert_eq!(rx.recv(), Err(RecvError));
        assert_eq!(rx.recv_timeout(ms(10)), Err(RecvTimeoutError::Disconnected));
        // The goroutine's own checks: a failed one would also have ended the channel.
        sender.join().unwrap();
    });
}

#[test]
fn disconnect_wakes_a_parked_receiver() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let (tx, rx) = mpsc::channel::<u8>();
            let h = gorust::go(move || rx.recv());
            gorust::time::sleep(ms(20));
            tx.send(1).unwrap();
            assert_eq!(h.join().unwrap(), Ok(1));

            let (tx, rx) = mpsc::sync_channel::<u8>(3);
            let h = gorust::go(move || {
                let first = rx.recv();
                let second = rx.recv();
                (first, second, rx.try_recv())
            });
            tx.send(9).unwrap();
            gorust::time::sleep(ms(20));
            drop(tx);
            assert_eq!(
                h.join().unwrap(),
                (Ok(9), Err(RecvError), Err(TryRecvError::Disconnected))
            );
        });
    });
}

#[test]
fn buffered_messages_outlive_the_senders() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let (tx, rx) = mpsc::sync_channel(4);
            for i in 0..4 {
                tx.send(i).unwrap();
            }
            drop(tx);
            assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
            assert_eq!(rx.recv(), Err(RecvError));
            assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        });
    });
}

#[test]
fn send_after_receiver_dropped_returns_the_value() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let (tx, rx) = mpsc::channel::<String>();
            drop(rx);
            assert_eq!(tx.send("a".into()), Err(SendError("a".to_string())));

            let (tx, rx) = mpsc::sync_channel::<String>(1);
            drop(rx);
            assert_eq!(tx.send("b".into()), Err(SendError("b".to_string())));
            assert_eq!(
                tx.try_send("c".into()),
                Err(TrySendError::Disconnected("c".to_string()))
            );
        });
    });
}

#[test]
fn receiver_drop_wakes_parked_senders_with_their_values() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            // Bounded and full.
            let (tx, rx) = mpsc::sync_channel::<u32>(1);
            tx.send(1).unwrap();
            let h = gorust::go(move || tx.send(2));
            gorust::time::sleep(ms(20));
            drop(rx);
            assert_eq!(h.join().unwrap(), Err(SendError(2)));

            // Rendezvous: the value is handed back although it was offered.
            let (tx, rx) = mpsc::sync_channel::<u32>(0);
            let h = gorust::go(move || tx.send(3));
            gorust::time::sleep(ms(20));
            drop(rx);
            assert_eq!(h.join().unwrap(), Err(SendError(3)));
        });
    });
}

#[test]
fn receiver_drop_drops_buffered_messages() {
    common::within(Duration::from_secs(60), || {
        struct Counted(Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, SeqCst);
            }
        }
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        for _ in 0..5 {
            tx.send(Counted(drops.clone())).unwrap();
        }
        drop(rx);
        assert_eq!(drops.load(SeqCst), 5);
        drop(tx);
    });
}

#[test]
fn rendezvous_send_completes_only_when_received() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let (tx, rx) = mpsc::sync_channel::<u32>(0);
            assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
            let sent = Arc::new(AtomicBool::new(false));
            let s = sent.clone();
            let h = gorust::go(move || {
                tx.send(7).unwrap();
                s.store(true, SeqCst);
                tx.send(8).unwrap();
            });
            gorust::time::sleep(ms(30));
            assert!(
                !sent.load(SeqCst),
                "rendezvous send returned before any receive"
            );
            assert_eq!(rx.recv(), Ok(7));
            assert_eq!(rx.recv(), Ok(8));
            h.join().unwrap();
            assert!(sent.load(SeqCst));
            assert_eq!(rx.recv(), Err(RecvError));
        });
    });
}

#[test]
fn rendezvous_many_senders_each_value_once() {
    common::within(Duration::from_secs(60), || {
        let got = rt().run(|| {
            let (tx, rx) = mpsc::sync_channel::<u32>(0);
            for i in 0..50 {
                let tx = tx.clone();
                gorust::go(move || {
                    for j in 0..20 {
                        tx.send(i * 20 + j).unwrap();
                    }
                });
            }
            drop(tx);
            let mut v: Vec<u32> = rx.iter().collect();
            v.sort_unstable();
            v
        });
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
    });
}

#[test]
fn bounded_capacity_blocks_then_releases() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let (tx, rx) = mpsc::sync_channel::<u32>(2);
            tx.send(1).unwrap();
            tx.try_send(2).unwrap();
            assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
            let done = Arc::new(AtomicBool::new(false));
            let d = done.clone();
            let tx2 = tx.clone();
            let h = gorust::go(move || {
                tx2.send(3).unwrap();
                d.store(true, SeqCst);
            });
            gorust::time::sleep(ms(30));
            assert!(!done.load(SeqCst), "send into a full channel returned");
            assert_eq!(rx.recv(), Ok(1));
            h.join().unwrap();
            assert!(done.load(SeqCst));
            assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![2, 3]);
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        });
    });
}

#[test]
fn bounded_parked_senders_are_served_in_order() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let (tx, rx) = mpsc::sync_channel::<u32>(1);
            tx.send(0).unwrap();
            let mut hs = Vec::new();
            let parked = Arc::new(AtomicUsize::new(0));
            for i in 1..=5 {
                let (tx, counted) = (tx.clone(), parked.clone());
                hs.push(gorust::go(move || {
                    let send = tx.send_async(i);
                    gorust::block_on(common::counting_registration(send, &counted)).unwrap()
                }));
                // Parked before the next one starts (a fixed 5 ms before session 29).
                common::eventually("the sender parked", || parked.load(SeqCst) == i as usize);
            }
            drop(tx);
            let got: Vec<u32> = rx.iter().collect();
            assert_eq!(got, vec![0, 1, 2, 3, 4, 5]);
            hs.into_iter().for_each(|h| h.join().unwrap());
        });
    });
}

#[test]
fn try_variants() {
    common::within(Duration::from_secs(60), || {
        let (tx, rx) = mpsc::channel::<u8>();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![2]);
        drop(tx);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));

        let (tx, rx) = mpsc::sync_channel::<u8>(1);
        assert_eq!(tx.try_send(1), Ok(()));
        assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(tx.try_send(3), Ok(()));
        drop(rx);
        assert_eq!(tx.try_send(4), Err(TrySendError::Disconnected(4)));
    });
}

#[test]
fn recv_timeout_times_out() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let (_tx, rx) = mpsc::channel::<u8>();
            let t = Instant::now();
            assert_eq!(rx.recv_timeout(ms(50)), Err(RecvTimeoutError::Timeout));
            let e = t.elapsed();
            assert!(e >= ms(50), "returned early: {e:?}");
            assert!(e < Duration::from_secs(5), "returned late: {e:?}");

            let t = Instant::now();
            let deadline = t + ms(30);
            assert_eq!(rx.recv_deadline(deadline), Err(RecvTimeoutError::Timeout));
            assert!(Instant::now() >= deadline);
        });
        // And on a plain thread.
        let (_tx, rx) = mpsc::channel::<u8>();
        let t = Instant::now();
        assert_eq!(rx.recv_timeout(ms(30)), Err(RecvTimeoutError::Timeout));
        assert!(t.elapsed() >= ms(30));
    });
}

#[test]
fn recv_timeout_gets_a_value_that_arrives_in_time() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let (tx, rx) = mpsc::channel::<u8>();
            gorust::go(move || {
                gorust::time::sleep(ms(20));
                tx.send(5).unwrap();
            });
            let t = Instant::now();
            assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(5));
            assert!(t.elapsed() < Duration::from_secs(5));
            // The sender is gone now.
            assert_eq!(
                rx.recv_timeout(Duration::from_secs(5)),
                Err(RecvTimeoutError::Disconnected)
            );
        });
    });
}

#[test]
fn dropping_recv_async_loses_nothing() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let (tx, rx) = mpsc::channel::<u32>();
            // A receive future that times out and is dropped.
            let r = gorust::block_on(gorust::time::timeout(ms(10), rx.recv_async()));
            assert!(r.is_err());
            tx.send(1).unwrap();
            assert_eq!(rx.recv(), Ok(1));

            // A future that was woken for a message but dropped before it looked: the message
            // stays for the next receive.
            let w = std::task::Waker::noop();
            let mut f = Box::pin(rx.recv_async());
            assert!(f
                .as_mut()
                .poll(&mut std::task::Context::from_waker(w))
                .is_pending());
            tx.send(2).unwrap();
            drop(f);
            assert_eq!(rx.recv(), Ok(2));
        });
    });
}

#[test]
fn racing_timeouts_lose_no_message() {
    common::within(Duration::from_secs(60), || {
        let n = 2_000u32;
        let got = rt().run(move || {
            let (tx, rx) = mpsc::channel::<u32>();
            let h = gorust::go(move || {
                for i in 0..n {
                    tx.send(i).unwrap();
                    if i % 3 == 0 {
                        gorust::time::sleep(Duration::from_micros(50));
                    }
                }
            });
            let mut got = Vec::new();
            loop {
                // Timeouts short enough to race with the sends.
                match gorust::block_on(gorust::time::timeout(
                    Duration::from_micros(20),
                    rx.recv_async(),
                )) {
                    Ok(Ok(v)) => got.push(v),
                    Ok(Err(RecvError)) => break,
                    Err(_) => {}
                }
            }
            h.join().unwrap();
            got
        });
        assert_eq!(got, (0..n).collect::<Vec<_>>());
    });
}

#[test]
fn async_face_from_tasks() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let (tx, rx) = mpsc::sync_channel::<u32>(0);
            let (done_tx, done_rx) = mpsc::channel::<u32>();
            let consumer = gorust::spawn(async move {
                let mut sum = 0;
                while let Ok(v) = rx.recv_async().await {
                    sum += v;
                }
                done_tx.send(sum).unwrap();
            });
            let producer = gorust::spawn(async move {
                for i in 1..=100 {
                    tx.send_async(i).await.unwrap();
                }
            });
            gorust::block_on(producer).unwrap();
            gorust::block_on(consumer).unwrap();
            assert_eq!(done_rx.recv(), Ok(5050));
        });
    });
}

/// A send parked for room, given the freed slot by a receive, and then dropped without being
/// polled again gives the slot to the next parked sender.
#[test]
fn cancelled_send_async_gives_its_turn_away() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let (tx, rx) = mpsc::sync_channel::<u32>(1);
            tx.send(0).unwrap();
            // Both parked for room, `a` first.
            let mut a = tx.send_async(1);
            let mut b = tx.send_async(2);
            assert!(common::poll_once(&mut a).is_pending());
            assert!(common::poll_once(&mut b).is_pending());
            // The freed slot is reserved for `a`, which drops it unused.
            assert_eq!(rx.recv(), Ok(0));
            drop(a);
            gorust::block_on(gorust::time::timeout(ms(10_000), b))
                .expect("the slot reserved for the dropped send reached the next sender")
                .unwrap();
            assert_eq!(rx.recv(), Ok(2));
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

            // A rendezvous send cancelled after offering its value withdraws it.
            let (tx, rx) = mpsc::sync_channel::<u32>(0);
            let r = gorust::block_on(gorust::time::timeout(ms(10), tx.send_async(5)));
            assert!(r.is_err());
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        });
    });
}

/// 100,000 goroutines: 50,000 pairs each doing a few ping-pong round trips, on 2 workers.
#[test]
fn stress_100k_goroutines_ping_pong() {
    common::within(Duration::from_secs(60), || {
        const PAIRS: usize = 50_000;
        const ROUNDS: u32 = 3;
        let total = rt().run(|| {
            let mut handles = Vec::with_capacity(PAIRS);
            for p in 0..PAIRS {
                let (ping_tx, ping_rx) = mpsc::channel::<u32>();
                let (pong_tx, pong_rx) = if p % 2 == 0 {
                    let (t, r) = mpsc::sync_channel::<u32>(0);
                    (Pong::Sync(t), r)
                } else {
                    let (t, r) = mpsc::channel::<u32>();
                    (Pong::Unbounded(t), r)
                };
                gorust::go(move || {
                    for v in ping_rx.iter() {
                        pong_tx.send(v + 1);
                    }
                });
                handles.push(gorust::go(move || {
                    let mut v = 0;
                    for _ in 0..ROUNDS {
                        ping_tx.send(v).unwrap();
                        v = pong_rx.recv().unwrap();
                    }
                    v
                }));
            }
            handles
                .into_iter()
                .map(|h| h.join().unwrap() as u64)
                .sum::<u64>()
        });
        assert_eq!(total, PAIRS as u64 * ROUNDS as u64);
    });
}

enum Pong {
    Sync(mpsc::SyncSender<u32>),
    Unbounded(mpsc::Sender<u32>),
}

impl Pong {
    fn send(&self, v: u32) {
        match self {
            Pong::Sync(t) => t.send(v).unwrap(),
            Pong::Unbounded(t) => t.send(v).unwrap(),
        }
    }
}

#[test]
fn handles_are_send_and_sync() {
    common::within(Duration::from_secs(60), || {
        fn send<T: Send>() {}
        fn sync<T: Sync>() {}
        send::<mpsc::Sender<u8>>();
        sync::<mpsc::Sender<u8>>();
        send::<mpsc::SyncSender<u8>>();
        sync::<mpsc::SyncSender<u8>>();
        send::<mpsc::Receiver<u8>>();
        // Unlike std's: receives through a shared `&Receiver` are documented.
        sync::<mpsc::Receiver<u8>>();
        send::<mpsc::RecvFuture<'static, u8>>();
        send::<mpsc::SendFuture<'static, u8>>();
    });
}

/// A task takes messages already queued through the blocking face, more of them in one poll
/// than its budget allows: `block_on`'s one poll on a worker spends no budget (it cannot
/// wait). The 129th `recv` panicked with "would have to wait" before (review, session 19).
#[test]
fn a_task_receives_queued_messages_past_its_budget_in_one_poll() {
    common::within(Duration::from_secs(60), || {
        let sum = rt().run(|| {
            let (tx, rx) = mpsc::channel::<u64>();
            for i in 0..1_000 {
                tx.send(i).unwrap();
            }
            let task =
                gorust::spawn(async move { (0..1_000).map(|_| rx.recv().unwrap()).sum::<u64>() });
            gorust::block_on(task).expect("the task completes")
        });
        assert_eq!(sum, 999 * 1_000 / 2);
    });
}

/// A future polling more empty channels than its budget in one poll waits on every one and
/// sleeps; a message on the last channel reaches it.
#[test]
fn a_future_polling_more_receives_than_its_budget_reaches_the_last() {
    common::within(Duration::from_secs(60), || {
        common::run_on(1, || {
            let (txs, rxs): (Vec<_>, Vec<_>) = (0..common::OVER_BUDGET)
                .map(|_| mpsc::channel::<u8>())
                .unzip();
            let polls = Arc::new(AtomicUsize::new(0));
            let p2 = polls.clone();
            let task = gorust::spawn(async move {
                let mut futs: Vec<_> = rxs.iter().map(|rx| Box::pin(rx.recv_async())).collect();
                common::first_ready(&mut futs, &p2).await
            });
            gorust::time::sleep(Duration::from_millis(50));
            txs[common::OVER_BUDGET - 1].send(7).unwrap();
            assert_eq!(gorust::block_on(task).unwrap(), common::OVER_BUDGET - 1);
            common::assert_slept(&polls);
        })
    });
}

/// The same for sends into full channels: a receive on the last channel makes room, and the
/// waiting send reaches it.
#[test]
fn a_future_polling_more_full_sends_than_its_budget_reaches_the_last() {
    common::within(Duration::from_secs(60), || {
        common::run_on(1, || {
            let (txs, rxs): (Vec<_>, Vec<_>) = (0..common::OVER_BUDGET)
                .map(|_| mpsc::sync_channel::<u8>(1))
                .unzip();
            for tx in &txs {
                tx.send(0).unwrap();
            }
            let polls = Arc::new(AtomicUsize::new(0));
            let p2 = polls.clone();
            let task = gorust::spawn(async move {
                let mut futs: Vec<_> = txs.iter().map(|tx| Box::pin(tx.send_async(1))).collect();
                common::first_ready(&mut futs, &p2).await
            });
            gorust::time::sleep(Duration::from_millis(50));
            let last = &rxs[common::OVER_BUDGET - 1];
            assert_eq!(last.recv(), Ok(0));
            assert_eq!(gorust::block_on(task).unwrap(), common::OVER_BUDGET - 1);
            assert_eq!(last.try_recv(), Ok(1));
            common::assert_slept(&polls);
        })
    });
}

/// A destructor that sends on an unbounded channel many times during a panic's unwind does not
/// yield when a send spends the last of the budget (review, session 22).
#[test]
fn a_goroutine_unwinding_a_panic_does_not_yield_in_send() {
    common::within(Duration::from_secs(60), || {
        struct SendsOnDrop(gorust::sync::mpsc::Sender<u32>);
        impl Drop for SendsOnDrop {
            fn drop(&mut self) {
                for i in 0..1_000 {
                    self.0.send(i).unwrap();
                }
            }
        }
        common::within(Duration::from_secs(60), || {
            common::run_on(1, || {
                let (tx, rx) = gorust::sync::mpsc::channel();
                common::assert_unwind_does_not_yield(SendsOnDrop(tx));
                assert_eq!(rx.iter().count(), 1_000);
            })
        });
    });
}

/// A rendezvous `send` from a future on a worker always has to wait for the receiver, so it
/// panics, and sends nothing: a receive already parked on another thread gets no message.
/// Before, the panic came after the push, and the receiver usually had the message by then.
/// With the receiver gone it returns the message instead.
#[test]
fn a_rendezvous_send_from_a_future_panics_before_sending() {
    common::within(Duration::from_secs(60), || {
        let rt = rt();
        let (tx, rx) = mpsc::sync_channel::<u32>(0);
        let receiving = std::thread::spawn(move || {
            let got = rx.recv_timeout(Duration::from_millis(500));
            (got, rx)
        });
        std::thread::sleep(Duration::from_millis(50)); // the receive is parked
        let task = rt.spawn(async move {
            let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tx.send(1)));
            (sent.is_err(), tx)
        });
        let (panicked, tx) = rt.block_on(task).unwrap();
        assert!(panicked, "the send panicked");
        let (got, rx) = receiving.join().unwrap();
        assert_eq!(got, Err(RecvTimeoutError::Timeout), "nothing was sent");
        drop(rx);
        let task = rt.spawn(async move { tx.send(2) });
        assert_eq!(rt.block_on(task).unwrap(), Err(SendError(2)));
    });
}

/// A sender whose waker panics (another executor's, say) does not keep the senders after it
/// parked: dropping the receiver wakes them all, going on past the panic, and each gets its
/// message back. Before, the drop panicked with the goroutine's send still parked.
#[test]
fn a_panicking_waker_does_not_keep_the_other_senders_parked() {
    common::within(Duration::from_secs(60), || {
        rt().run(|| {
            let (tx, rx) = mpsc::sync_channel::<u32>(1);
            tx.send(0).unwrap(); // full
            let mut foreign = Box::pin(tx.send_async(1));
            let waker = common::panicking_waker();
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(foreign.as_mut().poll(&mut cx).is_pending());
            let queued = Arc::new(AtomicUsize::new(0));
            let (tx2, q) = (tx.clone(), queued.clone());
            let h = gorust::go(move || {
                gorust::block_on(common::counting_registration(
                    Box::pin(tx2.send_async(2)),
                    &q,
                ))
            });
            common::eventually("the goroutine's send queued", || queued.load(SeqCst) == 1);
            drop(rx);
            assert_eq!(h.join().unwrap(), Err(SendError(2)));
            assert!(foreign.as_mut().poll(&mut cx).is_ready());
        })
    });
}
