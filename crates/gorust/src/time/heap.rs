//! A worker's timers: a binary min-heap of deadlines, behind a lock in the worker's shared part
//! (`sched::Remote::timers`; who inserts and fires is listed there).
//!
//! Insertion and expiry are `O(log n)`. Cancelled entries stay in the heap until they reach the
//! top or until a compaction, which runs when the heap is large and has doubled since it was
//! last smallest (after a compaction, or after timers left it); so a server that sets and
//! cancels a deadline per request keeps the heap proportional to its live timers (amortised
//! `O(1)` extra per insertion). Measured from the last compaction alone, a burst of live
//! timers that then expired let twice the burst's size of cancelled ones pile up (review,
//! session 19). Left as it is: a burst of live timers that are then cancelled, not fired,
//! behind a live timer with an earlier deadline, stays in the heap until the heap doubles
//! again (up to twice the burst's size) or their deadlines pass. A cancel does not touch the
//! heap (it is a compare-exchange on the entry, from any thread), so the heap learns of it
//! only when it looks; counting cancels would put a shared counter per heap on every cancel
//! (review, session 29; the memory is bounded by the peak).
//!
//! Rejected: a hierarchical timing wheel (tokio). It gives `O(1)` insertion but rounds to its
//! slot width (1 ms); sub-millisecond sleeps are a goal here and Go's own timers are a heap.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use super::entry::TimerEntry;

struct Slot {
    deadline: Instant,
    seq: u64,
    entry: Arc<TimerEntry>,
}

impl PartialEq for Slot {
    fn eq(&self, o: &Self) -> bool {
        self.deadline == o.deadline && self.seq == o.seq
    }
}
impl Eq for Slot {}
impl PartialOrd for Slot {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Slot {
    fn cmp(&self, o: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap; the earliest deadline must be on top.
        o.deadline.cmp(&self.deadline).then(o.seq.cmp(&self.seq))
    }
}

#[derive(Default)]
pub(crate) struct TimerHeap {
    heap: BinaryHeap<Slot>,
    seq: u64,
    /// The smallest length since the last compaction (at least `COMPACT_MIN / 2`): the next
    /// one runs at twice this.
    low_len: usize,
}

const COMPACT_MIN: usize = 4096;

impl TimerHeap {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Entries, cancelled ones not yet dropped included.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(crate) fn insert(&mut self, deadline: Instant, entry: Arc<TimerEntry>) {
        self.seq += 1;
        self.heap.push(Slot {
            deadline,
            seq: self.seq,
            entry,
        });
        let len = self.heap.len();
        if len >= COMPACT_MIN && len >= 2 * self.low_len {
            self.heap.retain(|s| !s.entry.is_cancelled());
            self.low_len = self.heap.len().max(COMPACT_MIN / 2);
        }
    }

    /// Drops the cancelled entries now (the compaction `insert` makes when the heap has
    /// doubled): for a heap that was handed many timers whose tasks were then cancelled.
    pub(crate) fn drop_cancelled(&mut self) {
        self.heap.retain(|s| !s.entry.is_cancelled());
        self.shrunk();
    }

    /// After entries left the heap: a lower length lowers the next compaction's threshold.
    #[inline]
    fn shrunk(&mut self) {
        self.low_len = self.low_len.min(self.heap.len().max(COMPACT_MIN / 2));
    }

    /// The timers still pending, for a heap whose owner stops firing them (a worker's
    /// shutdown step): they go to the fallback thread, for any `Sleep` that outlives its task.
    pub(crate) fn into_pending(self) -> impl Iterator<Item = (Instant, Arc<TimerEntry>)> {
        self.heap
            .into_iter()
            .filter(|s| !s.entry.is_cancelled() && !s.entry.is_fired())
            .map(|s| (s.deadline, s.entry))
    }

    /// The earliest deadline of a live timer, dropping cancelled ones from the top.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(top) = self.heap.peek() {
            if !top.entry.is_cancelled() {
                return Some(top.deadline);
            }
            self.heap.pop();
            self.shrunk();
        }
        None
    }

    /// Fires every timer due at `now`, pushing their wakers to `out` (to be woken after the
    /// caller releases whatever borrow it holds). Returns how many fired.
    pub(crate) fn expire(&mut self, now: Instant, out: &mut Vec<Waker>) -> usize {
        let mut n = 0;
        while let Some(top) = self.heap.peek() {
            if top.deadline > now {
                break;
            }
            let slot = self.heap.pop().expect("peeked");
            if let Some(w) = slot.entry.fire() {
                out.push(w);
                n += 1;
            }
            self.shrunk();
        }
        n
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::Duration;

    fn noop() -> Waker {
        Waker::noop().clone()
    }

    #[test]
    fn fires_in_deadline_order_and_skips_cancelled() {
        let mut h = TimerHeap::new();
        let t0 = Instant::now();
        let a = Arc::new(TimerEntry::new(noop()));
        let b = Arc::new(TimerEntry::new(noop()));
        let c = Arc::new(TimerEntry::new(noop()));
        h.insert(t0 + Duration::from_millis(3), a.clone());
        h.insert(t0 + Duration::from_millis(1), b.clone());
        h.insert(t0 + Duration::from_millis(2), c.clone());
        c.cancel();
        assert_eq!(h.next_deadline(), Some(t0 + Duration::from_millis(1)));
        let mut out = Vec::new();
        assert_eq!(h.expire(t0 + Duration::from_millis(2), &mut out), 1);
        assert!(b.is_fired() && !a.is_fired());
        assert_eq!(h.next_deadline(), Some(t0 + Duration::from_millis(3)));
    }

    /// Sets and cancels 100,000 timers an hour away, as a server's per-request deadlines do,
    /// and checks that compaction kept few of them.
    fn set_and_cancel_many(h: &mut TimerHeap) {
        let far = Instant::now() + Duration::from_secs(3600);
        for _ in 0..100_000 {
            let e = Arc::new(TimerEntry::new(noop()));
            h.insert(far, e.clone());
            e.cancel();
        }
        assert!(
            h.len() < 2 * COMPACT_MIN + 1,
            "heap kept {} dead timers",
            h.len()
        );
    }

    /// A burst of live timers that expire does not raise the bar for the cancelled ones that
    /// come after: the next compaction is measured from the emptied heap.
    #[test]
    fn compaction_after_a_burst_of_live_timers_bounds_cancelled_entries() {
        let mut h = TimerHeap::new();
        let t0 = Instant::now();
        for _ in 0..100_000 {
            h.insert(t0, Arc::new(TimerEntry::new(noop())));
        }
        assert_eq!(h.expire(t0, &mut Vec::new()), 100_000);
        set_and_cancel_many(&mut h);
    }

    #[test]
    fn pending_entries_outlive_the_heap() {
        let mut h = TimerHeap::new();
        let t0 = Instant::now();
        let (live, cancelled, fired) = (
            Arc::new(TimerEntry::new(noop())),
            Arc::new(TimerEntry::new(noop())),
            Arc::new(TimerEntry::new(noop())),
        );
        h.insert(t0 + Duration::from_secs(60), live.clone());
        h.insert(t0 + Duration::from_secs(60), cancelled.clone());
        h.insert(t0, fired.clone());
        cancelled.cancel();
        h.expire(t0, &mut Vec::new());
        let pending: Vec<_> = h.into_pending().collect();
        assert_eq!(pending.len(), 1);
        assert!(Arc::ptr_eq(&pending[0].1, &live));
    }

    /// Cancelled entries below the compaction threshold go at once when asked.
    #[test]
    fn dropping_cancelled_entries_keeps_the_live_ones() {
        let mut h = TimerHeap::new();
        let far = Instant::now() + Duration::from_secs(3600);
        let live = Arc::new(TimerEntry::new(noop()));
        h.insert(far, live.clone());
        for _ in 0..1000 {
            let e = Arc::new(TimerEntry::new(noop()));
            h.insert(far, e.clone());
            e.cancel();
        }
        assert_eq!(h.len(), 1001, "below the threshold, nothing compacted yet");
        h.drop_cancelled();
        assert_eq!(h.len(), 1);
        assert_eq!(h.next_deadline(), Some(far));
    }

    #[test]
    fn compaction_bounds_cancelled_entries() {
        set_and_cancel_many(&mut TimerHeap::new());
    }
}
