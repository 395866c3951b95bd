//! A poll descriptor: the runtime's view of one file descriptor (Go's `pollDesc`).

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::*};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::slot::WaitSlot;

/// `PollDesc::flags`: closed by `close` (or `shutdown` of both halves).
pub(crate) const CLOSING: u8 = 1;
/// `PollDesc::flags`: registered with a poller whose runtime has shut down.
pub(crate) const ORPHANED: u8 = 2;

/// Which way an operation waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

/// Laid out by cache line, one per direction: a read touches the first line only (its slot,
/// its deadline and `flags`, which every attempt checks), a write the second and `flags`.
/// A round trip of an echo server touches two lines of the descriptor where the unaligned
/// layout spread the same fields over four; at 1,000 connections each is a cache miss. The
/// cost: the `Arc` allocation is 192 bytes (its counts get a line of their own) instead of
/// ~168.
#[repr(C, align(64))]
pub(crate) struct PollDesc {
    pub(crate) read: WaitSlot,
    /// Deadlines in nanoseconds since [`base`]; 0 means none.
    read_deadline: AtomicU64,
    /// `CLOSING`, set once by `close` from any thread (waiters then fail), and `ORPHANED`, set
    /// when the runtime whose poller this descriptor is registered with shuts down (nobody will
    /// report its edges again). One byte, so that the check every attempt makes is one load.
    flags: AtomicU8,
    pub(crate) write: WaitSlot,
    write_deadline: AtomicU64,
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
        }
    }

    #[inline]
    pub(crate) fn slot(&self, dir: Direction) -> &WaitSlot {
        match dir {
            Direction::Read => &self.read,
            Direction::Write => &self.write,
        }
    }

    /// `CLOSING` and `ORPHANED`; 0 for an open descriptor whose poller runs.
    #[inline]
    pub(crate) fn flags(&self) -> u8 {
        self.flags.load(Acquire)
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

    #[inline]
    pub(crate) fn deadline(&self, dir: Direction) -> Option<Instant> {
        decode(self.deadline_word(dir))
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
            Direction::Write => self.write_deadline.store(v, Release),
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
