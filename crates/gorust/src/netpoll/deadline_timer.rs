//! The timers that end the async face's waits at a descriptor's deadline.
//!
//! A goroutine that waits with a deadline sleeps on a timer of its own for the length of the
//! wait (`wait.rs`, `Wait`). A future waits on the slot from `poll_read` and friends, which
//! keep no state between polls, so nothing woke it when the deadline passed: an `accept`
//! future with a deadline 50 ms away stayed pending for ever, though `set_deadline` promises
//! `TimedOut` (review, session 21). Here each direction of a registration may hold one timer,
//! armed by a poll that ends `Pending` while a deadline is set; when it fires it wakes the
//! direction's waiters, which poll again and fail with `TimedOut` (`Registration::check`).
//!
//! States per direction: none; armed for a deadline word (the timer is in some worker's heap,
//! or the fallback thread's). A poll that finds the word changed (a new deadline) cancels the
//! old timer and arms one for the new word; one that finds it armed for the same word does
//! nothing, so the polls of one wait add one timer between them, however many there are. The
//! timer holds the descriptor weakly: a socket dropped before its deadline is not kept alive,
//! and its timer is cancelled with it.
//!
//! Allocated on the first arming, so that a socket whose futures never wait with a deadline
//! (every socket of a goroutine server) pays an empty cell, 16 bytes.
//!
//! Rejected: a timer per poll that wakes the polling task alone. A future polled often before
//! its deadline (spurious wakes, a busy `select`) would fill the heap with entries that all
//! stay until the deadline.

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Wake, Waker};
use std::time::Instant;

use super::desc::{Direction, PollDesc};
use crate::time::entry::TimerEntry;

/// The armed timers of a registration's two directions.
#[derive(Default)]
pub(crate) struct DeadlineTimers(OnceLock<Box<[Mutex<Option<Armed>>; 2]>>);

/// A timer armed for the deadline stored as `word`.
struct Armed {
    word: u64,
    entry: Arc<TimerEntry>,
}

/// The timer's waker: wakes the waiters of one direction of a descriptor, if it still exists.
struct WakeDirection {
    desc: Weak<PollDesc>,
    dir: Direction,
}

impl Wake for WakeDirection {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(desc) = self.desc.upgrade() {
            desc.slot(self.dir).wake_all();
        }
    }
}

impl DeadlineTimers {
    /// Makes sure a timer wakes `dir`'s waiters at `deadline`, whose stored form is `word`
    /// (read by the caller once, so that the two agree).
    pub(crate) fn arm(&self, desc: &Arc<PollDesc>, dir: Direction, word: u64, deadline: Instant) {
        let dirs = self.0.get_or_init(Box::default);
        let mut armed = dirs[dir as usize].lock().unwrap_or_else(|e| e.into_inner());
        if armed.as_ref().is_some_and(|a| a.word == word) {
            return;
        }
        if let Some(old) = armed.take() {
            old.entry.cancel();
        }
        let waker = Waker::from(Arc::new(WakeDirection {
            desc: Arc::downgrade(desc),
            dir,
        }));
        let entry = Arc::new(TimerEntry::new(waker));
        crate::time::register(deadline, entry.clone());
        *armed = Some(Armed { word, entry });
    }
}

impl Drop for DeadlineTimers {
    fn drop(&mut self) {
        if let Some(dirs) = self.0.get_mut() {
            for slot in dirs.iter_mut() {
                let armed = slot.get_mut().unwrap_or_else(|e| e.into_inner());
                if let Some(a) = armed.take() {
                    a.entry.cancel();
                }
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::Ordering;
    use std::task::Context;
    use std::time::Duration;

    use super::*;
    use crate::test_util::counting_waker;

    fn entry(t: &DeadlineTimers, dir: Direction) -> Option<Arc<TimerEntry>> {
        let dirs = t.0.get()?;
        let armed = dirs[dir as usize].lock().unwrap();
        armed.as_ref().map(|a| a.entry.clone())
    }

    #[test]
    fn polls_of_one_deadline_arm_one_timer_and_a_new_deadline_replaces_it() {
        let desc = Arc::new(PollDesc::new());
        let t = DeadlineTimers::default();
        assert!(
            t.0.get().is_none(),
            "nothing allocated before the first arming"
        );
        let far = Instant::now() + Duration::from_secs(60);
        t.arm(&desc, Direction::Read, 7, far);
        let first = entry(&t, Direction::Read).unwrap();
        t.arm(&desc, Direction::Read, 7, far);
        assert!(Arc::ptr_eq(&first, &entry(&t, Direction::Read).unwrap()));
        assert!(entry(&t, Direction::Write).is_none());
        t.arm(&desc, Direction::Read, 8, far + Duration::from_secs(1));
        let second = entry(&t, Direction::Read).unwrap();
        assert!(first.is_cancelled() && !second.is_cancelled());
        drop(t);
        assert!(second.is_cancelled(), "cancelled with its registration");
    }

    #[test]
    fn the_timer_wakes_the_directions_waiters_at_the_deadline() {
        let desc = Arc::new(PollDesc::new());
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(desc.read.poll_ready(&mut cx, None, || false).is_pending());
        let t = DeadlineTimers::default();
        t.arm(
            &desc,
            Direction::Read,
            1,
            Instant::now() + Duration::from_millis(10),
        );
        let start = Instant::now();
        while count.0.load(Ordering::SeqCst) == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the timer never woke the waiter"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(entry(&t, Direction::Read).unwrap().is_fired());
    }
}
