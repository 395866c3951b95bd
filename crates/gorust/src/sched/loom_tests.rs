//! Loom models of the scheduler's state machines.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p gorust --lib --release loom_`.
//! Each model is small (two or three threads, a handful of operations) so that loom can explore
//! every interleaving; under loom the ring holds 4 tasks, so overflow and wrap-around happen.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Wake, Waker};

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use loom::sync::Arc;
use loom::thread;

use super::inject::Inject;
use super::park::{Parker, Scratch};
use super::queue;
use super::task::state::{State, ToIdle, ToNotified, ToRunning};
use super::task::{new_task, Kind, Notified, Schedule, TaskRef, UNBOUND};

struct NoopSchedule;

impl Schedule for NoopSchedule {
    fn schedule(&self, task: Notified, _is_yield: bool) {
        drop(task);
    }
    fn release(&self, _task: TaskRef) -> bool {
        false
    }
}

struct Ready;
impl Future for Ready {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

/// A task for the queue models: returns its Notified; the rest is released when it runs or at
/// the end through `finish`.
fn task(id: u64, owned: &mut Vec<TaskRef>) -> Notified {
    let (n, r, join) = new_task(Ready, NoopSchedule, Kind::Future, id, UNBOUND);
    drop(join);
    owned.push(r);
    n
}

/// A waker that records that it was woken.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.store(true, SeqCst);
    }
}

fn finish(owned: Vec<TaskRef>) {
    for r in owned {
        // SAFETY: each TaskRef is the owned-list reference of a task that never started
        // (or completed), handed to shutdown exactly once.
        unsafe { r.shutdown() };
    }
}

#[test]
fn loom_queue_push_pop_steal() {
    loom::model(|| {
        let (mut local, steal) = queue::new();
        let inject = Arc::new(Inject::new());
        let mut owned = Vec::new();
        let (mut thief_local, _thief_steal) = queue::new();
        for i in 0..3 {
            local.push_back(task(i, &mut owned), &inject);
        }
        let th = thread::spawn(move || {
            let mut n = 0;
            if let Some(t) = steal.steal_into(&mut thief_local) {
                drop(t);
                n += 1;
            }
            while let Some(t) = thief_local.pop() {
                drop(t);
                n += 1;
            }
            n
        });
        let mut n = 0;
        while let Some(t) = local.pop() {
            drop(t);
            n += 1;
        }
        n += th.join().unwrap();
        assert_eq!(n, 3, "every task is taken exactly once");
        finish(owned);
    });
}

/// The stealable LIFO slot: the owner puts two tasks (the second displaces the first, which
/// it queues) and then takes, while a thief takes from the slot. Each task is taken once, and
/// the thief sees the task's contents as the owner wrote them (loom checks the cell accesses
/// that `Notified::run` and the drops make).
#[test]
fn loom_lifo_slot_put_take_steal() {
    loom::model(|| {
        let (mut local, steal) = queue::new();
        let inject = Arc::new(Inject::new());
        let mut owned = Vec::new();
        let first = task(0, &mut owned);
        let second = task(1, &mut owned);
        let th = thread::spawn(move || steal.steal_lifo().map(|t| t.header().id));
        let mut taken = Vec::new();
        assert!(
            local.put_lifo(first).is_none(),
            "an empty slot displaces nothing"
        );
        if let Some(prev) = local.put_lifo(second) {
            local.push_back(prev, &inject);
        }
        while let Some(t) = local.take_lifo().or_else(|| local.pop()) {
            taken.push(t.header().id);
        }
        taken.extend(th.join().unwrap());
        taken.sort_unstable();
        assert_eq!(taken, [0, 1], "every task is taken exactly once");
        finish(owned);
    });
}

#[test]
fn loom_queue_overflow_while_stealing() {
    loom::model(|| {
        let (mut local, steal) = queue::new();
        let inject = Arc::new(Inject::new());
        let mut owned = Vec::new();
        let (mut thief_local, _s) = queue::new();
        for i in 0..4 {
            local.push_back(task(i, &mut owned), &inject);
        }
        let th = thread::spawn(move || {
            let mut n = 0;
            if let Some(t) = steal.steal_into(&mut thief_local) {
                drop(t);
                n += 1;
            }
            while let Some(t) = thief_local.pop() {
                drop(t);
                n += 1;
            }
            n
        });
        // The ring is full: this push overflows half to the inject queue (or, with a thief
        // mid-copy, the task alone).
        local.push_back(task(4, &mut owned), &inject);
        let mut n = 0;
        while let Some(t) = local.pop() {
            drop(t);
            n += 1;
        }
        n += th.join().unwrap();
        while let Some(t) = inject.pop() {
            drop(t);
            n += 1;
        }
        assert_eq!(
            n, 5,
            "no task lost or duplicated across ring, thief and overflow"
        );
        finish(owned);
    });
}

#[test]
fn loom_state_wake_races_with_park() {
    // A runner parks the task while a waker on another thread wakes it: exactly one Submit
    // or one OkNotified, never both, never neither.
    loom::model(|| {
        let s = Arc::new(State::new());
        assert_eq!(s.transition_to_running(), ToRunning::Success);
        s.ref_inc(); // the waker's reference
        let s2 = s.clone();
        let waker = thread::spawn(move || s2.transition_to_notified_by_val());
        let idle = s.transition_to_idle();
        let woke = waker.join().unwrap();
        let submits = (idle == ToIdle::OkNotified) as u32 + (woke == ToNotified::Submit) as u32;
        assert_eq!(submits, 1, "idle={idle:?} wake={woke:?}");
        assert!(s.load().is_notified());
    });
}

#[test]
fn loom_join_waker_vs_complete() {
    // A real task: its JoinHandle registers a waker (the cell's `join_waker`, a loom
    // UnsafeCell) while another thread runs the task to completion. The handle either sees the
    // completion or the completer wakes the waker it registered; loom checks that the field is
    // never accessed by both threads at once (one of them writing), and the output cell too.
    loom::model(|| {
        let (n, owned, mut join) = new_task(Ready, NoopSchedule, Kind::Future, 1, UNBOUND);
        let runner = thread::spawn(move || n.run());
        let flag = std::sync::Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut out = Pin::new(&mut join).poll(&mut cx);
        runner.join().unwrap();
        if out.is_pending() {
            assert!(flag.0.load(SeqCst), "the registered waker was not woken");
            out = Pin::new(&mut join).poll(&mut cx);
        }
        assert!(matches!(out, Poll::Ready(Ok(()))));
        drop(join);
        finish(vec![owned]);
    });
}

/// A future that counts its polls in a plain (unmodelled) counter.
struct CountPolls(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Future for CountPolls {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        self.0.fetch_add(1, SeqCst);
        Poll::Ready(())
    }
}

#[test]
fn loom_start_races_with_the_shutdown_claim() {
    // A worker about to start an unstarted goroutine (it holds its Notified) races another
    // worker's shutdown step, which claims unstarted goroutines to cancel them. Exactly one
    // binds it: either it runs (once, and the join sees its output) or it is cancelled
    // unpolled (and the join sees the cancellation); never polled after the claim.
    loom::model(|| {
        let polls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (n, owned, mut join) = new_task(
            CountPolls(polls.clone()),
            NoopSchedule,
            Kind::Goroutine,
            1,
            UNBOUND,
        );
        let starter = thread::spawn(move || {
            // As `run_task` decides.
            if n.header().may_poll_on(1) {
                n.run();
                true
            } else {
                drop(n);
                false
            }
        });
        let claimed = owned.header().try_bind(0);
        if claimed {
            // SAFETY: the owned-list reference, given up once; the goroutine never started.
            unsafe { owned.shutdown() };
        }
        let started = starter.join().unwrap();
        assert_ne!(claimed, started, "exactly one binds it");
        if started {
            // SAFETY: as above; the goroutine ran to completion on the starter.
            unsafe { owned.shutdown() };
        }
        assert_eq!(polls.load(SeqCst), started as usize);
        let waker = Waker::from(std::sync::Arc::new(Flag(AtomicBool::new(false))));
        let out = join.poll_result(&mut Context::from_waker(&waker));
        match out {
            Poll::Ready(Ok(())) => assert!(started),
            Poll::Ready(Err(super::task::JoinError::Cancelled)) => assert!(claimed),
            _ => panic!("the join must be ready: it ran or was cancelled"),
        }
    });
}

#[test]
fn loom_parker_no_lost_wakeup() {
    loom::model(|| {
        let parker = Arc::new(Parker::new());
        let flag = Arc::new(AtomicBool::new(false));
        let (p2, f2) = (parker.clone(), flag.clone());
        let th = thread::spawn(move || {
            f2.store(true, Release);
            p2.unpark();
        });
        let mut scratch = Scratch::new();
        while !flag.load(Acquire) {
            parker.park(None, &mut scratch);
        }
        th.join().unwrap();
    });
}

#[test]
fn loom_idle_no_lost_wakeup() {
    // Worker 0 runs out of work and parks while another thread pushes a task to the inject
    // queue: either the worker sees the task, or the pusher wakes the worker.
    loom::model(|| {
        let idle = Arc::new(super::idle::Idle::new(1));
        let queued = Arc::new(AtomicUsize::new(0));
        let notified = Arc::new(AtomicBool::new(false));
        let (i2, q2, n2) = (idle.clone(), queued.clone(), notified.clone());
        let pusher = thread::spawn(move || {
            q2.store(1, SeqCst);
            if i2.worker_to_notify().is_some() {
                n2.store(true, SeqCst);
            }
        });
        idle.transition_worker_to_parked(0, false);
        let sees_work = queued.load(SeqCst) == 1;
        pusher.join().unwrap();
        assert!(
            sees_work || notified.load(SeqCst),
            "the task would sit in the queue with every worker asleep"
        );
    });
}

/// Rules 2 and 4 of `idle` together, with a worker searching (the model above has none):
/// worker 0 is parked; worker 1 searched, found nothing, and parks as the last searcher while
/// another thread queues a task. A pusher wakes nobody while a worker searches (rule 2), so
/// either the last searcher sees the task when it re-checks (rule 4) or the pusher, seeing
/// nobody searching any more, wakes a worker.
#[test]
fn loom_idle_last_searcher_parking_sees_work_or_is_woken() {
    loom::model(|| {
        let idle = Arc::new(super::idle::Idle::new(2));
        idle.transition_worker_to_parked(0, false);
        assert!(idle.transition_worker_to_searching());
        let queued = Arc::new(AtomicUsize::new(0));
        let (i2, q2) = (idle.clone(), queued.clone());
        let pusher = thread::spawn(move || {
            q2.store(1, SeqCst);
            i2.worker_to_notify()
        });
        // Worker 1 found every queue empty (the task was not there yet) and parks.
        let last = idle.transition_worker_to_parked(1, true);
        assert!(last, "it was the only searcher");
        let sees_work = queued.load(SeqCst) == 1;
        let notified = pusher.join().unwrap();
        assert!(
            sees_work || notified.is_some(),
            "the task would sit in the queue with both workers asleep"
        );
    });
}

/// Rules 2 and 4 of `idle` for the stealable LIFO slot: worker 0, busy, puts a new task in its
/// slot (having seen no free worker a moment before) while worker 1, the only searcher, found
/// nothing and parks. Either worker 1's re-check sees the slot taken, or worker 0's look at the
/// idle state after the put wakes a worker. Before session 24 neither side looked: the putter
/// notified nobody, and the re-check left the slots out (review, session 24).
#[test]
fn loom_idle_lifo_put_while_the_last_searcher_parks() {
    loom::model(|| {
        let idle = Arc::new(super::idle::Idle::new(2));
        assert!(idle.transition_worker_to_searching());
        let (mut local, steal) = queue::new();
        let mut owned = Vec::new();
        let t = task(0, &mut owned);
        let i2 = idle.clone();
        let putter = thread::spawn(move || {
            assert!(local.put_lifo(t).is_none());
            let notified = i2.worker_to_notify();
            (notified, local)
        });
        // Worker 1 found the slot empty (the task was not there yet) and parks.
        let last = idle.transition_worker_to_parked(1, true);
        assert!(last, "it was the only searcher");
        let sees_work = steal.has_lifo();
        let (notified, mut local) = putter.join().unwrap();
        assert!(
            sees_work || notified.is_some(),
            "the task would wait in the slot with a worker asleep"
        );
        drop(local.take_lifo());
        finish(owned);
    });
}

/// The netpoller's wait slot: readiness published by the poller while a waiter registers is
/// never lost — the waiter either sees READY or its waker is called.
#[test]
fn loom_wait_slot_no_lost_readiness() {
    use crate::netpoll::slot::WaitSlot;
    use std::task::Waker;

    loom::model(|| {
        let slot = Arc::new(WaitSlot::new());
        let s2 = slot.clone();
        let poller = thread::spawn(move || {
            let mut wake = Vec::new();
            s2.set_ready(&mut wake);
            wake.into_iter().for_each(Waker::wake);
        });
        let flag = std::sync::Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let ready = slot.poll_ready(&mut cx, None, || false).is_ready();
        poller.join().unwrap();
        assert!(
            ready || flag.0.load(SeqCst),
            "readiness arrived but the waiter was neither told nor woken"
        );
        if !ready {
            // The readiness that woke it is still there to consume.
            assert!(slot.take_ready());
        }
    });
}

/// Regression (found by the sync tests): a worker that gives up parking right after a notifier
/// took it off the sleeper list is counted as searching; if it does not carry that count, the
/// count leaks and `worker_to_notify` never wakes anyone again.
#[test]
fn loom_idle_abort_park_keeps_count() {
    loom::model(|| {
        let idle = Arc::new(super::idle::Idle::new(2));
        // Worker 1 stays busy; worker 0 was searching and gives up.
        assert!(idle.transition_worker_to_searching());
        let i2 = idle.clone();
        let notifier = thread::spawn(move || i2.worker_to_notify());
        idle.transition_worker_to_parked(0, true);
        // Work turned up: worker 0 abandons parking, exactly as `WorkerCtx::park` does.
        let searching = !idle.unpark_self(0);
        let notified = notifier.join().unwrap();
        if searching {
            assert_eq!(notified, Some(0));
            // It finds the task and stops searching.
            idle.transition_worker_from_searching();
        }
        assert_eq!(idle.num_searching(), 0, "searching count leaked");
        assert_eq!(idle.num_idle(), 0, "both workers are running");
    });
}
