//! A wait slot: one direction (read or write) of a poll descriptor.
//!
//! Go's `pollDesc.rg`/`wg` protocol, with wakers instead of goroutine pointers:
//!
//! ```text
//!            waiter registers (under the lock)                 poller: swap(READY)
//!   EMPTY ───────────────────────────────────▶ WAITING ─────────────────────────────▶ READY
//!     ▲                                                   (and, if the swap saw WAITING,
//!     │                                                    take and wake every waker)
//!     └───────────── waiter consumes: CAS READY -> EMPTY ◀────────────────────────────┘
//! ```
//!
//! - Readiness that arrives before anyone waits leaves the slot READY; the next waiter consumes
//!   it and does not park. It is never lost.
//! - A waiter registers its waker *before* it moves the slot to WAITING, under the lock; the
//!   poller takes the lock only after its swap saw WAITING, so it always finds the waker.
//! - Readiness means "try the system call again", nothing more: a waiter that consumes READY
//!   and then gets `EAGAIN` waits again. Spurious wake-ups are therefore harmless.
//! - Several waiters may wait on one direction (two goroutines reading one socket); all are
//!   woken and retry, one wins and the rest wait again.
//! - READY is one token, and a waiter that consumes it may not leave any readiness for the
//!   others: two writers get `EAGAIN`, an edge comes, the second consumes READY and writes a
//!   little; the first, not yet registered, finds EMPTY and would wait for an edge that will
//!   not come (the buffer has room, and epoll reports only changes). So a waiter passes the
//!   snapshot of the edge count it took before its failed call ([`EdgeMark`]), and after
//!   registering it parks only if the count has not moved since. The registration and the
//!   poller's count are a store-then-load pair on each side (the waiter: WAITING, then the
//!   count; the poller: the count, then the state), so all four are `SeqCst`: either the
//!   waiter sees the new count, or the poller's swap sees WAITING and wakes it. (Go keeps one
//!   waiter per direction, serialising readers and writers with a lock; tokio's readiness is
//!   not consumed by a waiter.) Model: `loom_watch_write_no_lost_edge`, two writers.
//! - `wake_all` (close, a deadline change) wakes every waiter without touching the state; the
//!   waiters re-check the descriptor's flags (closing, orphaned) and deadlines, which the
//!   caller publishes *before* calling `wake_all`, and which waiters read under the same lock.
//!
//! Drained state (saves a system call per wait). The poller also counts edges. When a read
//! returns fewer bytes than asked (or a write accepts fewer than offered), the kernel buffer
//! was empty (full) at that moment; the caller records the edge count it read *before* the
//! call (`mark_drained`). While the count has not moved, trying the call again can only say
//! `EAGAIN`, so the caller waits first (`is_drained`). Any data that arrives after the call
//! produces an edge, which moves the count, so nothing is missed; a stale mark (two readers
//! racing) can only cost one extra system call, never a missed wake-up, because the mark
//! names the edge count the call started from. A call that does not come up short forgets the
//! mark (`note_result`), so a mark lives only from a short call to the next call, never long
//! enough for the 31-bit count it holds to come round again. tokio skips the same `EAGAIN`
//! read.
//!
//! A final edge ends the drained state for good: once the poller has seen the peer's FIN
//! (`EPOLLRDHUP`), a hang-up or an error in this direction (`set_final_ready`), the call can
//! no longer block (a read returns the rest of the data, then `Ok(0)`; a write fails), and no
//! further edge will come. Without this, data and a FIN that both arrived before a short read
//! left the next read waiting for an edge that had already happened (test
//! `data_then_fin_before_the_read_gives_the_data_then_eof`). tokio keeps `READ_CLOSED` sticky
//! for the same reason. The poller gives urgent TCP data (`EPOLLPRI`) a final edge as well:
//! the kernel stops a read at the urgent mark, short, with more data queued behind it, so a
//! short read there proves nothing (test `a_read_after_urgent_data_gets_the_data_behind_it`);
//! the next `EAGAIN` clears the flag, as below.
//!
//! The final flag shares one word with the edge count (`edges`: the count in the high half,
//! `FINAL` in bit 0), and callers take an [`EdgeMark`], a snapshot of that word, before their
//! call. A call that then says `EAGAIN` proves that a final flag *in its snapshot* was not
//! final after all (an `EPOLLERR` for the error queue, say), and clears it with a
//! compare-exchange against the snapshot: if any edge arrived since, the exchange fails and
//! the flag stays, because that edge may be the peer's FIN. (With a separate flag, a clear
//! racing with a FIN's edge on another thread erased the FIN, and the reader waited for an
//! edge that would never come.)
//!
//! Orderings: the poller's count and swap and the waiter's CAS to WAITING and read of the
//! count are `SeqCst` (the snapshot check above); a waiter that consumes READY (`AcqRel`) sees
//! what the kernel-facing side published before it (nothing in practice: the data is in the
//! kernel), and the lock orders waker registration against waking.

use std::task::{Context, Poll, Waker};

use crate::loom::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering::*};
use crate::loom::sync::Mutex;

const EMPTY: u8 = 0;
const READY: u8 = 1;
const WAITING: u8 = 2;

/// Flag bit of `drained_at`; the other 31 bits hold the edge count's low 31 bits.
const DRAINED: u32 = 1 << 31;
/// Flag bit of `edges`: a final edge was seen (FIN, hang-up, error, or urgent data: see the
/// header).
const FINAL: u64 = 1;
/// One edge in `edges` (the count is the high half, so it wraps off the top).
const EDGE: u64 = 1 << 32;

/// A snapshot of a slot's edge count and final flag, taken before a system call
/// (`WaitSlot::edges`), for `mark_drained` and `clear_final` after it.
#[derive(Clone, Copy)]
pub(crate) struct EdgeMark(u64);

impl EdgeMark {
    #[inline(always)]
    fn count31(self) -> u32 {
        (self.0 >> 32) as u32 & !DRAINED
    }
}

/// `repr(C)`, small fields first: the 48 bytes leave room in the descriptor's cache line for
/// the direction's deadline and the `flags` byte (see `PollDesc`).
#[repr(C)]
pub(crate) struct WaitSlot {
    state: AtomicU8,
    /// `DRAINED | count31` at the last short call, or 0.
    drained_at: AtomicU32,
    /// Edges seen by the poller (the high half, wrapping) and `FINAL` (bit 0).
    edges: AtomicU64,
    /// Wakers of the parked waiters; usually zero or one.
    waiters: Mutex<Waiters>,
}

/// The parked waiters' wakers: the first one inline, any others in a boxed vector. One waiter
/// per direction is the usual case, and a `Vec` alone kept even that one in a separate heap
/// block: one more cache line per park and per wake-up, which at 1,000 connections is a miss
/// each time. The rest are boxed so that the slot stays within its share of a cache line.
#[derive(Default)]
struct Waiters {
    first: Option<Waker>,
    // One pointer instead of a `Vec`'s three words: the rare extra waiters pay the extra
    // allocation, the slot stays 48 bytes.
    #[allow(clippy::box_collection)]
    more: Option<Box<Vec<Waker>>>,
}

impl Waiters {
    #[inline(always)]
    fn contains(&self, w: &Waker) -> bool {
        self.first.as_ref().is_some_and(|f| f.will_wake(w))
            || self
                .more
                .as_ref()
                .is_some_and(|m| m.iter().any(|m| m.will_wake(w)))
    }

    /// Registers `w` unless a waker that wakes the same task is there already; whether it did.
    #[inline(always)]
    fn add(&mut self, w: &Waker) -> bool {
        if self.contains(w) {
            return false;
        }
        if self.first.is_none() {
            self.first = Some(w.clone());
        } else {
            self.more
                .get_or_insert_with(Default::default)
                .push(w.clone());
        }
        true
    }

    /// Forgets the wakers that wake the same task as `w`.
    fn remove(&mut self, w: &Waker) {
        if let Some(more) = &mut self.more {
            more.retain(|m| !m.will_wake(w));
        }
        if self.first.as_ref().is_some_and(|f| f.will_wake(w)) {
            self.first = self.more.as_mut().and_then(|m| m.pop());
        }
        if self.more.as_ref().is_some_and(|m| m.is_empty()) {
            self.more = None;
        }
    }

    /// Moves every waker to `out`.
    fn drain_into(&mut self, out: &mut Vec<Waker>) {
        out.extend(self.first.take());
        if let Some(more) = self.more.take() {
            out.extend(*more);
        }
    }
}

impl Default for WaitSlot {
    fn default() -> Self {
        WaitSlot::new()
    }
}

impl WaitSlot {
    pub(crate) fn new() -> WaitSlot {
        WaitSlot {
            state: AtomicU8::new(EMPTY),
            drained_at: AtomicU32::new(0),
            edges: AtomicU64::new(0),
            waiters: Mutex::new(Waiters::default()),
        }
    }

    /// The poller saw readiness in this direction.
    pub(crate) fn set_ready(&self, wake: &mut Vec<Waker>) {
        // `SeqCst` with `ready`'s swap: see the header (on x86 the same locked instructions).
        self.edges.fetch_add(EDGE, SeqCst);
        self.ready(wake);
    }

    /// The poller saw a final edge in this direction (the peer's FIN, a hang-up, an error):
    /// the system call cannot block any more. The count moves first, so a caller whose
    /// snapshot shows the flag also shows this edge's count.
    pub(crate) fn set_final_ready(&self, wake: &mut Vec<Waker>) {
        self.edges.fetch_add(EDGE, SeqCst);
        self.edges.fetch_or(FINAL, SeqCst);
        self.ready(wake);
    }

    #[inline(always)]
    fn ready(&self, wake: &mut Vec<Waker>) {
        if self.state.swap(READY, SeqCst) == WAITING {
            crate::loom::lock(&self.waiters).drain_into(wake);
        }
    }

    /// A call that started at `mark` just failed with `EAGAIN`, which a final state cannot give
    /// (a read at FIN returns `Ok(0)`, a write after a hang-up fails), so a final flag the
    /// snapshot showed was not final: an `EPOLLERR` for the socket's error queue, say. Without
    /// this, `readable` would return at once forever after it, and a `readable`/`try_read`
    /// loop would spin. The clear is an exchange against the snapshot: it fails, and the flag
    /// stays, if any edge arrived since (see the header).
    pub(crate) fn clear_final(&self, mark: EdgeMark) {
        if mark.0 & FINAL != 0 {
            let _ = self
                .edges
                .compare_exchange(mark.0, mark.0 & !FINAL, AcqRel, Relaxed);
        }
    }

    /// Wakes every waiter without changing the state (close or deadline change: the caller
    /// published the change first).
    pub(crate) fn wake_all(&self) {
        let mut ws = Vec::new();
        crate::loom::lock(&self.waiters).drain_into(&mut ws);
        crate::sched::wake::wake_all(ws);
    }

    /// The edge count and final flag, read before a system call that may come up short.
    #[inline]
    pub(crate) fn edges(&self) -> EdgeMark {
        EdgeMark(self.edges.load(Acquire))
    }

    /// A call that started at `mark` came up short: the buffer was drained.
    #[inline]
    pub(crate) fn mark_drained(&self, mark: EdgeMark) {
        self.drained_at.store(DRAINED | mark.count31(), Release);
    }

    /// A call that started at `mark` succeeded: if it came up `short`, the buffer was drained
    /// (`mark_drained`); if not, an older mark says nothing any more and is forgotten. Kept, it
    /// stayed until the next short call, however many full ones came first, and after 2^31
    /// edges the count's low 31 bits would match it again: a reader of a stream that always
    /// filled its buffer would then wait for an edge with data queued (review, session 21).
    /// One load of a line the call's snapshot just read, and a store only when a mark is
    /// there.
    #[inline(always)]
    pub(crate) fn note_result(&self, mark: EdgeMark, short: bool) {
        if short {
            self.mark_drained(mark);
        } else if self.drained_at.load(Relaxed) != 0 {
            self.drained_at.store(0, Release);
        }
    }

    /// Whether the last final edge is still flagged (not yet disproved by an `EAGAIN`).
    #[inline]
    pub(crate) fn final_seen(&self) -> bool {
        self.edges.load(Acquire) & FINAL != 0
    }

    /// Whether no edge arrived since the last short call (so a retry would only see EAGAIN),
    /// and no final edge ever did.
    #[inline]
    pub(crate) fn is_drained(&self) -> bool {
        self.drained().is_some()
    }

    /// [`is_drained`](Self::is_drained), with the snapshot it judged by: a caller that then
    /// waits passes it to [`poll_ready`](Self::poll_ready) as the state its wait starts from.
    #[inline]
    pub(crate) fn drained(&self) -> Option<EdgeMark> {
        let d = self.drained_at.load(Acquire);
        let now = self.edges();
        (d & DRAINED != 0 && d & !DRAINED == now.count31() && now.0 & FINAL == 0).then_some(now)
    }

    /// Forgets `w`'s waiter: its wait ended without readiness (its deadline passed). Kept, the
    /// waker stayed until the next edge, and with it its task: a goroutine per timed-out read
    /// of a silent peer left one more each time (review, session 24). The state may stay
    /// WAITING with nobody left; the next edge then just sets READY.
    #[cold]
    pub(crate) fn forget(&self, w: &Waker) {
        crate::loom::lock(&self.waiters).remove(w);
    }

    /// Parked waiters' wakers, for tests.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn waiter_count(&self) -> usize {
        let w = crate::loom::lock(&self.waiters);
        usize::from(w.first.is_some()) + w.more.as_ref().map_or(0, |m| m.len())
    }

    /// Consumes readiness if there is some.
    #[inline]
    pub(crate) fn take_ready(&self) -> bool {
        self.state
            .compare_exchange(READY, EMPTY, AcqRel, Acquire)
            .is_ok()
    }

    /// Waits for readiness. `stop` is evaluated under the lock (see the module header): if it
    /// returns `true` the wait ends at once. `since`: the snapshot taken before the caller's
    /// failed call (or drained check); if an edge came after it, the wait ends too, even if
    /// another waiter consumed that edge's READY. `None` only where no edges were counted
    /// before (the first wait of an unregistered descriptor; its registration reports the
    /// current state as an edge).
    ///
    /// For a goroutine's own waits, one at a time: a wait that ends after it registered takes
    /// the task's waker out again, whoever put it there. Futures, of which one task may have
    /// several waiting at once, use [`poll_ready_adding`](Self::poll_ready_adding).
    #[inline(always)]
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        since: Option<EdgeMark>,
        stop: impl Fn() -> bool,
    ) -> Poll<()> {
        self.poll_ready_inner::<false>(cx, since, stop).0
    }

    /// [`poll_ready`](Self::poll_ready) for futures, and whether this poll put the task's
    /// waker in the slot (it was not there already), so that a pending wait the caller
    /// abandons after all may take it out again with [`forget`](Self::forget).
    ///
    /// A wait that ends after it registered takes out only a waker it put there itself. Two
    /// futures of one task (a `join!` of two reads of one socket) share the task's waker, and
    /// the one that finished first took out the one the other still waited with: the edges
    /// after that woke nobody (review, session 27; test
    /// `a_sibling_future_that_finishes_leaves_the_other_registered`). One left there by this
    /// task's earlier poll of the same wait stays until the next edge, a spurious wake-up.
    /// Not for goroutines' own waits: the bookkeeping cost ~1% of the echo bench's CPU at
    /// 1,000 connections and 4 KiB (five interleaved pairs), and a goroutine has one at a time.
    #[inline(always)]
    pub(crate) fn poll_ready_adding(
        &self,
        cx: &mut Context<'_>,
        since: Option<EdgeMark>,
        stop: impl Fn() -> bool,
    ) -> (Poll<()>, bool) {
        self.poll_ready_inner::<true>(cx, since, stop)
    }

    /// Both of the above: with `OWN_ONLY`, a wait that ends takes out only a waker it added.
    #[inline(always)]
    fn poll_ready_inner<const OWN_ONLY: bool>(
        &self,
        cx: &mut Context<'_>,
        since: Option<EdgeMark>,
        stop: impl Fn() -> bool,
    ) -> (Poll<()>, bool) {
        if self.take_ready() {
            return (Poll::Ready(()), false);
        }
        let mut waiters = crate::loom::lock(&self.waiters);
        if stop() {
            return (Poll::Ready(()), false);
        }
        let mut added = false;
        loop {
            match self.state.load(Acquire) {
                READY => {
                    if self.take_ready() {
                        if added || !OWN_ONLY {
                            waiters.remove(cx.waker());
                        }
                        return (Poll::Ready(()), false);
                    }
                }
                EMPTY => {
                    added |= waiters.add(cx.waker());
                    if self
                        .state
                        .compare_exchange(EMPTY, WAITING, SeqCst, Acquire)
                        .is_ok()
                    {
                        break;
                    }
                }
                _ => {
                    // WAITING: others wait too; add ourselves.
                    added |= waiters.add(cx.waker());
                    break;
                }
            }
        }
        // Registered, and the state is WAITING: an edge from now on wakes us. One that came
        // since the caller's call may have been consumed by another waiter (the header).
        if let Some(mark) = since {
            if self.edges.load(SeqCst) >> 32 != mark.0 >> 32 {
                if added || !OWN_ONLY {
                    waiters.remove(cx.waker());
                }
                return (Poll::Ready(()), false);
            }
        }
        (Poll::Pending, added)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    use crate::test_util::counting_waker;

    #[test]
    fn readiness_before_wait_is_not_lost() {
        let s = WaitSlot::new();
        let mut wake = Vec::new();
        s.set_ready(&mut wake);
        assert!(wake.is_empty());
        let (c, w) = counting_waker();
        let mut cx = Context::from_waker(&w);
        assert!(s.poll_ready(&mut cx, None, || false).is_ready());
        assert!(s.poll_ready(&mut cx, None, || false).is_pending());
        s.set_ready(&mut wake);
        assert_eq!(wake.len(), 1);
        wake.drain(..).for_each(Waker::wake);
        assert_eq!(c.0.load(Ordering::SeqCst), 1);
        assert!(s.poll_ready(&mut cx, None, || false).is_ready());
    }

    #[test]
    fn a_full_call_forgets_the_mark_so_a_wrapped_count_cannot_match_it() {
        let s = WaitSlot::new();
        let before = s.edges();
        s.note_result(before, true);
        assert!(s.is_drained());
        // An edge, then calls that fill their buffers for a long while...
        s.set_ready(&mut Vec::new());
        assert!(!s.is_drained());
        s.note_result(s.edges(), false);
        // ...until the count has moved 2^31 edges from the mark: its low 31 bits match again.
        s.edges.store(before.0 + (EDGE << 31), Ordering::SeqCst);
        assert_eq!(s.edges().count31(), before.count31());
        assert!(!s.is_drained(), "a stale mark matched a wrapped count");
    }

    #[test]
    fn drained_until_the_next_edge() {
        let s = WaitSlot::new();
        assert!(!s.is_drained());
        let before = s.edges();
        s.mark_drained(before);
        assert!(
            s.is_drained(),
            "a short call with no edge since: retrying is pointless"
        );
        s.set_ready(&mut Vec::new());
        assert!(
            !s.is_drained(),
            "an edge since the short call: data may be there"
        );
        // A stale mark (taken before an edge another caller consumed) never hides that edge.
        let stale = before;
        s.mark_drained(stale);
        assert!(!s.is_drained());
    }

    #[test]
    fn a_final_edge_before_a_short_call_is_never_hidden() {
        let s = WaitSlot::new();
        // Data and the peer's FIN arrive; then a read takes the data and comes up short.
        s.set_ready(&mut Vec::new());
        s.set_final_ready(&mut Vec::new());
        let before = s.edges();
        s.mark_drained(before);
        assert!(
            !s.is_drained(),
            "after a FIN the next read returns Ok(0) at once; no edge will announce it"
        );
    }

    /// `EAGAIN` clears only a final flag the call's snapshot showed, and only if no edge came
    /// since: a FIN that arrives while the call runs survives the clear (review, session 8).
    #[test]
    fn a_clear_after_eagain_never_erases_a_fin_that_came_during_the_call() {
        let mut v = Vec::new();
        // No final flag before the call; the peer's data and FIN arrive during it.
        let s = WaitSlot::new();
        let before = s.edges();
        s.set_final_ready(&mut v);
        s.clear_final(before);
        let after = s.edges();
        s.mark_drained(after);
        assert!(
            !s.is_drained(),
            "the FIN was erased: the reader would wait forever"
        );

        // A flag from an error-queue edge before the call, and a FIN during it.
        let s = WaitSlot::new();
        s.set_final_ready(&mut v);
        let before = s.edges();
        s.set_final_ready(&mut v);
        s.clear_final(before);
        s.mark_drained(s.edges());
        assert!(!s.is_drained());

        // The flag from before the call, and nothing since: the EAGAIN disproves it.
        let s = WaitSlot::new();
        s.set_final_ready(&mut v);
        let before = s.edges();
        s.clear_final(before);
        s.mark_drained(before);
        assert!(s.is_drained(), "a flag the EAGAIN disproved is cleared");
    }

    #[test]
    fn stop_condition_ends_the_wait_and_wake_all_wakes() {
        let s = WaitSlot::new();
        let (c, w) = counting_waker();
        let mut cx = Context::from_waker(&w);
        assert!(s.poll_ready(&mut cx, None, || false).is_pending());
        s.wake_all();
        assert_eq!(c.0.load(Ordering::SeqCst), 1);
        assert!(s.poll_ready(&mut cx, None, || true).is_ready());
    }

    /// Two futures of one task wait on one direction with the task's one waker (a `join!` of
    /// two reads, through `poll_ready_adding`). The second's call fails, an edge comes, and
    /// its wait sees the edge and ends: the first must stay registered, and the next edge
    /// must wake the task. Before, the second took the shared waker out and no edge woke the
    /// task again.
    #[test]
    fn a_sibling_future_that_finishes_leaves_the_other_registered() {
        let s = WaitSlot::new();
        let (c, w) = counting_waker();
        let mut cx = Context::from_waker(&w);
        let first = s.edges();
        let (p, added) = s.poll_ready_adding(&mut cx, Some(first), || false);
        assert!(p.is_pending() && added);
        let second = s.edges();
        s.edges.fetch_add(EDGE, Ordering::SeqCst); // the poller's count, before its swap
        let (p, added) = s.poll_ready_adding(&mut cx, Some(second), || false);
        assert!(p.is_ready() && !added);
        let mut woken = Vec::new();
        s.ready(&mut woken); // the poller's swap
        assert_eq!(
            woken.len(),
            1,
            "the first future's wait is still registered"
        );
        woken.drain(..).for_each(Waker::wake);
        assert_eq!(c.0.load(Ordering::SeqCst), 1);

        // A wait that registered in this poll and then ends takes its waker out again.
        let s = WaitSlot::new();
        let since = s.edges();
        s.edges.fetch_add(EDGE, Ordering::SeqCst);
        assert!(s
            .poll_ready_adding(&mut cx, Some(since), || false)
            .0
            .is_ready());
        assert_eq!(s.waiter_count(), 0);
    }

    /// Three tasks wait on one direction (one of them twice): each is registered once and all
    /// are woken by one edge.
    #[test]
    fn several_waiters_are_each_woken_once() {
        let s = WaitSlot::new();
        let ws: Vec<_> = (0..3).map(|_| counting_waker()).collect();
        for (_, w) in &ws {
            assert!(s
                .poll_ready(&mut Context::from_waker(w), None, || false)
                .is_pending());
        }
        assert!(s
            .poll_ready(&mut Context::from_waker(&ws[0].1), None, || false)
            .is_pending());
        let mut wake = Vec::new();
        s.set_ready(&mut wake);
        assert_eq!(wake.len(), 3, "one waker per task");
        wake.drain(..).for_each(Waker::wake);
        assert!(ws.iter().all(|(c, _)| c.0.load(Ordering::SeqCst) == 1));
        // The first back consumes the readiness; the others wait for the next edge.
        assert!(s
            .poll_ready(&mut Context::from_waker(&ws[0].1), None, || false)
            .is_ready());
        assert!(s
            .poll_ready(&mut Context::from_waker(&ws[1].1), None, || false)
            .is_pending());
        assert!(s
            .poll_ready(&mut Context::from_waker(&ws[2].1), None, || false)
            .is_pending());
        s.set_ready(&mut wake);
        assert_eq!(wake.len(), 2);
    }

    /// The inline first waker and the overflow vector: dedup, removal (which promotes a waker
    /// from the vector), draining.
    #[test]
    fn waiters_keep_one_waker_per_task() {
        let ws: Vec<_> = (0..3).map(|_| counting_waker().1).collect();
        let mut w = Waiters::default();
        for x in ws.iter().chain(ws.iter()) {
            w.add(x);
        }
        assert!(ws.iter().all(|x| w.contains(x)));
        w.remove(&ws[0]);
        assert!(!w.contains(&ws[0]) && w.contains(&ws[1]) && w.contains(&ws[2]));
        assert!(
            w.first.is_some(),
            "a waker from the vector took the inline place"
        );
        let mut out = Vec::new();
        w.drain_into(&mut out);
        assert_eq!(out.len(), 2);
        assert!(w.first.is_none() && w.more.is_none());
    }
}

/// Loom model of the final flag against `clear_final` (run with the other models:
/// `RUSTFLAGS="--cfg loom" cargo test -p gorust --lib --release loom_`).
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// An error-queue edge set the final flag before a read; the peer's FIN arrives while the
    /// read runs. The read says `EAGAIN` unless its snapshot already shows the FIN's edge (a
    /// read after the FIN returns 0), and clears the flag on `EAGAIN`; its next read comes up
    /// short and marks the direction drained. Whatever the interleaving, the FIN stays known:
    /// the direction is never left drained, waiting for an edge that will not come.
    #[test]
    fn loom_slot_clear_final_keeps_a_fin_from_during_the_call() {
        loom::model(|| {
            let slot = Arc::new(WaitSlot::new());
            slot.set_final_ready(&mut Vec::new());
            let s2 = slot.clone();
            let poller = thread::spawn(move || s2.set_final_ready(&mut Vec::new()));
            let before = slot.edges();
            if before.0 >> 32 == 1 {
                slot.clear_final(before); // EAGAIN: the FIN had not come
            }
            slot.mark_drained(slot.edges());
            poller.join().unwrap();
            assert!(!slot.is_drained(), "the FIN was erased");
        });
    }
}
