//! A poll descriptor: the runtime's view of one file descriptor (Go's `pollDesc`).
//!
//! Two wait slots (read, write), two deadlines and a `flags` byte, laid out by cache line (see
//! [`PollDesc`]).
//!
//! **Watched writes.** The poller keeps the read slot up to date with every edge, but the
//! write slot only once some write on the descriptor has had to wait (`WRITE_WATCHED`, set
//! then and kept). Epoll reports a socket's whole readiness in every event, so a connection
//! that only ever writes into a send buffer with room, an echo server's, would otherwise have
//! its write line touched by every incoming message, for nothing (~1% of a round trip at 5,000
//! connections, `bench/RESULTS.md`, session 17). Until then the write slot's state is stale,
//! and the write paths neither read nor mark its drained state; only the final edges (hang-up,
//! error) still reach it.
//!
//! A writer that must wait first calls [`PollDesc::watch`] (`Registration::wait`, `poll_slot`,
//! `ready`). The first one to set the flag gives the slot a synthetic edge (`set_ready`): the
//! slot is READY, so the writer tries its call once more before it parks, and a writer that
//! raced it and parked is woken; the edge count moves, so a drained mark from before cannot
//! stand either. That call is made after the flag was set, so an edge for any space that frees
//! after its `EAGAIN` finds the flag set when the poller handles it: the same ordering through
//! the kernel (a call's result, then the event it causes, then `epoll_wait`'s return) that the
//! drained mark's snapshot relies on. The cost is one more `EAGAIN` call, once in a
//! descriptor's life (`Registration::watch_writes` consumes the synthetic edge where the caller
//! retries anyway). Models: `loom_watch_write_no_lost_edge`, of writers that retry with a
//! snapshot after watching (`slot.rs`), which holds without the synthetic edge; and
//! `loom_unregistered_first_wait_no_lost_edge`, of the first wait of a descriptor not yet
//! registered, which has no snapshot to pass and fails without it.
//!
//! `WRITE_DEADLINE` (also kept) says a write deadline was set at least once, so that a write
//! without one checks `flags` alone and leaves the write line untouched. It is set *before*
//! the deadline word is stored: a waiter that sees the new word sees the bit, and one that
//! read the old word is woken by the change (model: `loom_write_deadline_reaches_a_waiter`).
//!
//! Fields: the slots follow `slot.rs`'s protocol; `flags` is set by `close`, `orphan`,
//! `watch` and `set_deadline`, from any thread, and loses one of those bits only in
//! `unwatch_writes`, which a connect calls before anyone else holds the socket; its two write
//! lock bits (`WRITING`, `WRITERS_WAIT`) are set and cleared by every locked write
//! (`write_lock.rs`); the deadlines are written by their setters and read by every attempt.
//!
//! Rejected: a count of writers that may wait, entered and left around every wait. It would let
//! the slot go unwatched again, but every exit path (errors, timeouts, a dropped future) must
//! leave it, and a writer that blocked once usually blocks again.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::slot::WaitSlot;
use super::write_lock::WriteWaiters;
use crate::loom::sync::atomic::{AtomicU64, AtomicU8, Ordering::*};

/// `PollDesc::flags`: closed by `close` (a `shutdown` gives the slots a final edge instead).
pub(crate) const CLOSING: u8 = 1;
/// `PollDesc::flags`: registered with a poller whose runtime has shut down.
pub(crate) const ORPHANED: u8 = 2;
/// `PollDesc::flags`: a wait ends when either of these is set.
pub(crate) const STOPS: u8 = CLOSING | ORPHANED;
/// `PollDesc::flags`: the poller keeps the write slot up to date (see the header).
const WRITE_WATCHED: u8 = 4;
/// `PollDesc::flags`: a write deadline was set at some point; read `write_deadline`.
const WRITE_DEADLINE: u8 = 8;
/// `PollDesc::flags`: a blocking-looking write holds the write lock (`write_lock.rs`).
const WRITING: u8 = 16;
/// `PollDesc::flags`: writers may be queued for the write lock (`write_lock.rs`).
const WRITERS_WAIT: u8 = 32;

/// Which way an operation waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

/// Laid out by cache line, one per direction: a read touches the first line only (its slot,
/// its deadline and `flags`, which every attempt checks); a write touches `flags`, and the
/// second line only once watched or given a deadline (see the module header).
/// A round trip of an echo server touches two lines of the descriptor where the unaligned
/// layout spread the same fields over four; at 1,000 connections each is a cache miss. The
/// cost: the `Arc` allocation is 192 bytes (its counts get a line of their own) instead of
/// ~168.
#[repr(C, align(64))]
pub(crate) struct PollDesc {
    pub(crate) read: WaitSlot,
    /// Deadlines in nanoseconds since [`base`]; 0 means none.
    read_deadline: AtomicU64,
    /// `CLOSING`, set once by `close` from any thread (waiters then fail); `ORPHANED`, set
    /// when the runtime whose poller this descriptor is registered with shuts down (nobody will
    /// report its edges again); `WRITE_WATCHED` and `WRITE_DEADLINE` (see the module header);
    /// `WRITING` and `WRITERS_WAIT`, the write lock (`write_lock.rs`).
    /// One byte, so that the check every attempt makes is one load.
    flags: AtomicU8,
    pub(crate) write: WaitSlot,
    write_deadline: AtomicU64,
    /// Writers waiting for the write lock (`write_lock.rs`); touched only when one must wait.
    writers: WriteWaiters,
}

/// The instant deadlines are measured from.
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn encode(deadline: Option<Instant>) -> u64 {
    match deadline {
        None => 0,
        // A deadline at or before the base is "already passed": 1 ns after it. One more than
        // ~584 years after it saturates (it used to wrap to a near or past time).
        Some(d) => u64::try_from(d.saturating_duration_since(base()).as_nanos())
            .unwrap_or(u64::MAX)
            .max(1),
    }
}

/// Inlined for its test of zero, "no deadline", which every I/O call makes; the conversion
/// stays out of line.
#[inline(always)]
fn decode(v: u64) -> Option<Instant> {
    if v == 0 {
        None
    } else {
        Some(decode_set(v))
    }
}

#[inline(never)]
fn decode_set(v: u64) -> Instant {
    base() + Duration::from_nanos(v)
}

impl Default for PollDesc {
    fn default() -> Self {
        PollDesc::new()
    }
}

impl PollDesc {
    pub(crate) fn new() -> PollDesc {
        let _ = base();
        PollDesc {
            read: WaitSlot::new(),
            read_deadline: AtomicU64::new(0),
            flags: AtomicU8::new(0),
            write: WaitSlot::new(),
            write_deadline: AtomicU64::new(0),
            writers: WriteWaiters::new(),
        }
    }

    #[inline]
    pub(crate) fn slot(&self, dir: Direction) -> &WaitSlot {
        match dir {
            Direction::Read => &self.read,
            Direction::Write => &self.write,
        }
    }

    /// `CLOSING`, `ORPHANED` and the write bits; `flags() & STOPS` is 0 for an open
    /// descriptor whose poller runs.
    #[inline]
    pub(crate) fn flags(&self) -> u8 {
        self.flags.load(Acquire)
    }

    /// Whether the poller keeps `dir`'s slot up to date: always for reads, for writes once
    /// [`watch`](Self::watch)ed. Where this is false, callers neither read nor mark the slot's
    /// drained state (it is stale).
    #[inline(always)]
    pub(crate) fn counts_edges(&self, dir: Direction) -> bool {
        match dir {
            Direction::Read => true,
            Direction::Write => self.flags() & WRITE_WATCHED != 0,
        }
    }

    /// Called by a waiter before it relies on `dir`'s slot (waits on it, or reads its drained
    /// state to decide whether to try): makes the poller report write edges from now on. The
    /// call that starts watching gives the slot a synthetic edge, so the caller tries its call
    /// once more before it parks (see the module header), and returns `true`; the other calls
    /// (and every call for reads) return `false`, which waiters ignore.
    #[inline(always)]
    pub(crate) fn watch(&self, dir: Direction) -> bool {
        !self.counts_edges(dir) && self.start_watching_writes()
    }

    #[cold]
    #[inline(never)]
    fn start_watching_writes(&self) -> bool {
        if self.flags.fetch_or(WRITE_WATCHED, AcqRel) & WRITE_WATCHED != 0 {
            return false;
        }
        // Nobody waits on an unwatched slot, but a racing waiter may have watched and parked
        // since: wake whatever is there.
        let mut wake = Vec::new();
        self.write.set_ready(&mut wake);
        crate::sched::wake::wake_all(wake);
        true
    }

    /// Stops the poller reporting write edges, until the next `watch`. Only for a descriptor
    /// nobody else can use yet (a connecting socket, once connected): a writer that relied on
    /// the slot would wait for edges no longer reported. A connect waits on the write slot,
    /// and without this every client socket would pay for watched writes from birth.
    pub(crate) fn unwatch_writes(&self) {
        self.flags.fetch_and(!WRITE_WATCHED, AcqRel);
    }

    /// This side shut `dir` down (`shutdown(2)`): a call in that direction can no longer
    /// block (a read returns 0, a write fails), so the slot gets a final edge, as the poller
    /// gives one for the peer's FIN, and its waiters wake and make their call. The kernel does
    /// not always report one: a Unix stream whose writer is parked on a full buffer gets no
    /// `EPOLLOUT` when its own side stops writing.
    pub(crate) fn shut(&self, dir: Direction) {
        let mut wake = Vec::new();
        self.slot(dir).set_final_ready(&mut wake);
        crate::sched::wake::wake_all(wake);
    }

    /// Marks the descriptor closing and wakes every waiter (they return an error).
    pub(crate) fn close(&self) {
        self.set_flag(CLOSING);
    }

    /// Its poller's runtime shut down: wakes every waiter, and a goroutine's or future's later
    /// wait fails instead of waiting for edges nobody will report.
    pub(crate) fn orphan(&self) {
        self.set_flag(ORPHANED);
    }

    fn set_flag(&self, flag: u8) {
        self.flags.fetch_or(flag, Release);
        self.read.wake_all();
        self.write.wake_all();
    }

    /// Takes the write lock if it is free (`write_lock.rs`): one `fetch_or` on `flags`.
    #[inline(always)]
    pub(crate) fn try_lock_writes(&self) -> bool {
        self.flags.fetch_or(WRITING, Acquire) & WRITING == 0
    }

    /// Releases the write lock, and wakes the writers queued for it, if any. A subtraction,
    /// as the holder's `WRITING` bit is set: one `lock xadd` where a `fetch_and` whose result
    /// is read compiles to a compare-exchange loop. `AcqRel`: a release that sees
    /// `WRITERS_WAIT` must also see the list its setter allocated (with `Release` alone, loom
    /// found it reading no list and waking nobody).
    #[inline(always)]
    pub(crate) fn unlock_writes(&self) {
        if self.flags.fetch_sub(WRITING, AcqRel) & WRITERS_WAIT != 0 {
            self.wake_writers();
        }
    }

    /// Clears `WRITERS_WAIT` and wakes every queued writer. A waiter whose bit this clears has
    /// queued already (it sets the bit and queues under the list's lock, taken here after the
    /// clear), so it is woken here; one that sets it after the clear leaves it for the next
    /// release.
    #[cold]
    #[inline(never)]
    fn wake_writers(&self) {
        self.flags.fetch_and(!WRITERS_WAIT, AcqRel);
        let mut wake = Vec::new();
        if let Some(list) = self.writers.get() {
            crate::loom::lock(list).notify_all(&mut wake);
        }
        crate::sched::wake::wake_all(wake);
    }

    /// A writer's wait for the write lock: `Ready` once it holds it (its slot freed),
    /// `Pending` with its waker queued under `key` (see `write_lock.rs` for why no release
    /// can be missed). Call [`leave_lock_wait`](Self::leave_lock_wait) if the wait is
    /// abandoned.
    pub(crate) fn poll_lock_writes(
        &self,
        cx: &mut std::task::Context<'_>,
        key: &mut Option<crate::sync::waitlist::WaitKey>,
    ) -> std::task::Poll<()> {
        let list = self.writers.get_or_alloc();
        let mut queue = crate::loom::lock(list);
        let mut held = self.flags.fetch_or(WRITING, Acquire) & WRITING != 0;
        if held {
            // Announce the wait, then try again: a release from before the bit woke nobody,
            // and one after it wakes the queue, which it can only do once this has queued
            // (it takes the list's lock, held here).
            self.flags.fetch_or(WRITERS_WAIT, AcqRel);
            held = self.flags.fetch_or(WRITING, Acquire) & WRITING != 0;
        }
        if !held {
            // Woken (or never queued): the notification asked only for this try.
            queue.remove(key);
            return std::task::Poll::Ready(());
        }
        queue.register(key, cx.waker());
        std::task::Poll::Pending
    }

    /// Takes an abandoned wait's slot off the queue. A notification it held is not passed on:
    /// a release wakes every queued writer, so nobody waits on this one.
    pub(crate) fn leave_lock_wait(&self, key: &mut Option<crate::sync::waitlist::WaitKey>) {
        if key.is_some() {
            if let Some(list) = self.writers.get() {
                crate::loom::lock(list).remove(key);
            }
        }
    }

    /// A write without a deadline ever set reads `flags` only, not the write line.
    #[inline]
    pub(crate) fn deadline(&self, dir: Direction) -> Option<Instant> {
        if dir == Direction::Write && self.flags() & WRITE_DEADLINE == 0 {
            return None;
        }
        decode(self.deadline_word(dir))
    }

    /// The deadline a [`deadline_word`](Self::deadline_word) stands for. A waiter decides
    /// from the word it compares later, so that what it waits for and what ends its wait
    /// cannot disagree.
    #[inline(always)]
    pub(crate) fn deadline_of(word: u64) -> Option<Instant> {
        decode(word)
    }

    /// The deadline as stored: equal words are equal deadlines. A waiter compares these to
    /// notice a change without decoding an `Instant`.
    #[inline]
    pub(crate) fn deadline_word(&self, dir: Direction) -> u64 {
        match dir {
            Direction::Read => self.read_deadline.load(Acquire),
            Direction::Write => self.write_deadline.load(Acquire),
        }
    }

    /// Sets a deadline and wakes the waiters of that direction, so that a parked operation
    /// re-evaluates it (a deadline in the past fails it at once).
    pub(crate) fn set_deadline(&self, dir: Direction, deadline: Option<Instant>) {
        let v = encode(deadline);
        match dir {
            Direction::Read => self.read_deadline.store(v, Release),
            Direction::Write => {
                // Before the word (see the module header). Never cleared, so that racing
                // setters cannot hide a stored deadline.
                if v != 0 {
                    self.flags.fetch_or(WRITE_DEADLINE, AcqRel);
                }
                self.write_deadline.store(v, Release);
            }
        }
        self.slot(dir).wake_all();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::PollDesc;
    use std::mem::{align_of, offset_of, size_of};

    /// Each direction's slot, deadline (and for reads `flags`) share one cache line.
    #[test]
    fn each_direction_fits_one_cache_line() {
        assert_eq!(align_of::<PollDesc>(), 64);
        assert_eq!(size_of::<PollDesc>(), 128);
        assert!(offset_of!(PollDesc, flags) < 64);
        assert!(offset_of!(PollDesc, read_deadline) + 8 <= 64);
        assert_eq!(offset_of!(PollDesc, write), 64);
        assert!(offset_of!(PollDesc, write_deadline) + 8 <= 128);
    }

    /// A deadline too far away for the nanosecond word saturates to the farthest one it holds,
    /// instead of wrapping to a time that has passed (review, session 8).
    #[test]
    fn a_deadline_centuries_away_stays_in_the_future() {
        use super::{decode, encode};
        use std::time::{Duration, Instant};
        let year = Duration::from_secs(365 * 86_400);
        let far = Instant::now() + year * 600;
        let back = decode(encode(Some(far))).expect("a deadline");
        assert!(back > Instant::now() + year * 500, "wrapped to {back:?}");
    }
}

/// Loom models of watched writes and of the write deadline's bit (run with the other models:
/// `RUSTFLAGS="--cfg loom" cargo test -p gorust --lib --release loom_`).
#[cfg(all(test, loom))]
mod loom_tests {
    use super::{Direction, PollDesc, STOPS};
    use crate::test_util::{counting_waker, Count};
    use loom::sync::atomic::{fence, AtomicBool, Ordering::*};
    use loom::sync::Arc;
    use loom::thread;
    use std::task::{Context, Waker};
    use std::time::Instant;

    /// One writer as `TcpStream::write` (and `poll_run`) writes: a first attempt while the
    /// slot may be unwatched (its `EAGAIN` leaves no mark), then `watch_writes` (watch, and
    /// consume the synthetic edge if it was ours), then attempts with a snapshot of the edges
    /// taken before each, waiting on the slot from that snapshot in between. `space` is the
    /// kernel's send buffer (see `try_write`). Returns `None` if it wrote, or its waker's
    /// wake-up count if it parked.
    fn writer(desc: &PollDesc, space: &AtomicBool) -> Option<std::sync::Arc<Count>> {
        let write = || try_write(space);
        let (flag, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        if write() {
            return None;
        }
        if desc.watch(Direction::Write) {
            desc.write.take_ready();
        }
        // A racing writer's synthetic edge or the poller's may cost extra attempts; four
        // rounds are plenty.
        for _ in 0..4 {
            let since = desc.write.edges();
            if write() {
                return None;
            }
            if desc
                .write
                .poll_ready(&mut cx, Some(since), || false)
                .is_pending()
            {
                return Some(flag);
            }
        }
        panic!("neither wrote nor parked");
    }

    /// A write call: succeeds if the send buffer has room. The fence stands for the kernel's
    /// ordering between a call's result, the event it leads to and `epoll_wait`'s return.
    fn try_write(space: &AtomicBool) -> bool {
        fence(SeqCst);
        space.load(Relaxed)
    }

    /// What every model asserts of a writer that parked: someone woke it.
    fn assert_woken(flag: &Count) {
        assert!(
            flag.0.load(SeqCst) > 0,
            "parked with room in the buffer and no wake-up coming"
        );
    }

    /// The kernel frees space in the send buffer, and the poller handles the event it causes
    /// (`dispatch`): the write slot gets the edge only if watched.
    fn free_space(desc: &Arc<PollDesc>, space: &Arc<AtomicBool>) -> thread::JoinHandle<()> {
        let (desc, space) = (desc.clone(), space.clone());
        thread::spawn(move || {
            space.store(true, Relaxed);
            fence(SeqCst);
            let mut wake = Vec::new();
            if desc.counts_edges(Direction::Write) {
                desc.write.set_ready(&mut wake);
            }
            wake.into_iter().for_each(Waker::wake);
        })
    }

    /// Two writers find the send buffer full while the write slot is unwatched, and wait;
    /// meanwhile the kernel frees space and the poller handles the edge, reporting it to the
    /// slot only if watched. Whatever the interleaving, each writer either writes or is parked
    /// with its waker called: never parked with room in the buffer and nobody to wake it.
    ///
    /// Three threads with the slot's lock: explored with at most two preemptions, which keeps
    /// the run to seconds and still finds the consumed-READY case.
    #[test]
    fn loom_watch_write_no_lost_edge() {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(2);
        model.check(|| {
            let desc = Arc::new(PollDesc::new());
            let space = Arc::new(AtomicBool::new(false));
            let poller = free_space(&desc, &space);
            let (d3, s3) = (desc.clone(), space.clone());
            let other = thread::spawn(move || writer(&d3, &s3));
            let parked = [writer(&desc, &space), other.join().unwrap()];
            poller.join().unwrap();
            parked.iter().flatten().for_each(|flag| assert_woken(flag));
        });
    }

    /// The synthetic edge's own job: the first wait of a descriptor not yet registered
    /// (`Registration::run` before `ensure_registered`), which has no snapshot to pass. The
    /// writer's call fails; it registers, and from then on the poller reports the socket's
    /// state once (registration reports the current state, or the edge of space freed later:
    /// the poller thread, spawned at registration, stands for both); then the writer watches
    /// and waits with `None`, and retries as `writer` does. Whatever the interleaving, it
    /// writes or is parked with its waker called. Without the synthetic edge, the poller can
    /// pass over the only edge before the watch, and the writer parks for good.
    #[test]
    fn loom_unregistered_first_wait_no_lost_edge() {
        loom::model(|| {
            let desc = Arc::new(PollDesc::new());
            let space = Arc::new(AtomicBool::new(false));
            let write = || try_write(&space);
            assert!(!write(), "the buffer starts full");
            // Registration.
            let poller = free_space(&desc, &space);
            desc.watch(Direction::Write);
            let (flag, waker) = counting_waker();
            let mut cx = Context::from_waker(&waker);
            let mut since = None;
            let parked = (0..4)
                .find_map(|_| {
                    if desc.write.poll_ready(&mut cx, since, || false).is_pending() {
                        return Some(true);
                    }
                    since = Some(desc.write.edges());
                    write().then_some(false)
                })
                .expect("neither wrote nor parked");
            poller.join().unwrap();
            if parked {
                assert_woken(&flag);
            }
        });
    }

    /// A write deadline set while a writer is about to park (`Registration::wait`): the
    /// writer waits for the deadline of the word it read, and a change of the word ends the
    /// wait. Whatever the interleaving, the writer either waits with the deadline, or is woken
    /// and stops waiting, and the attempt after that sees the deadline (the bit that lets a
    /// write skip the deadline word is set before the word). Found by review: with the bit set
    /// after the word, a writer could read the new word, see no bit, and park for good.
    #[test]
    fn loom_write_deadline_reaches_a_waiter() {
        loom::model(|| {
            let desc = Arc::new(PollDesc::new());
            let d2 = desc.clone();
            let setter =
                thread::spawn(move || d2.set_deadline(Direction::Write, Some(Instant::now())));
            let seen = desc.deadline_word(Direction::Write);
            if PollDesc::deadline_of(seen).is_some() {
                // It waits with the deadline (`wait_until`).
                setter.join().unwrap();
                return;
            }
            let (flag, waker) = counting_waker();
            let mut cx = Context::from_waker(&waker);
            let stop = || desc.flags() & STOPS != 0 || desc.deadline_word(Direction::Write) != seen;
            let ended = desc.write.poll_ready(&mut cx, None, stop).is_ready();
            if ended {
                assert!(
                    desc.deadline(Direction::Write).is_some(),
                    "the wait ended for a deadline the next attempt does not see"
                );
            }
            setter.join().unwrap();
            if !ended {
                assert!(flag.0.load(SeqCst) > 0, "the deadline's change woke nobody");
                assert!(
                    desc.write.poll_ready(&mut cx, None, stop).is_ready(),
                    "woken, the writer would wait again"
                );
            }
        });
    }
}
