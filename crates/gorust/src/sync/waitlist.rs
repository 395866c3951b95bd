//! A FIFO list of parked waiters, each a `Waker`, shared by every primitive in `sync`.
//!
//! It plays the part of Go's `waitq` of `sudog`s: a channel keeps one for receivers and one for
//! senders, a mutex one for lockers, a wait group one for waiters. It is plain data: the owner
//! keeps it inside its own lock and calls it only while holding that lock, and it never wakes
//! anybody itself: `notify_one`/`notify_all` hand the wakers back, so that the caller wakes
//! them after releasing its lock.
//!
//! ```text
//!   slots (a Vec, reused):   [0]        [1]        [2]        [3]
//!                            Queued     Free       Notified   Queued
//!   queue order:  head=3 <-> 0=tail     free list: 1           (2 is owned by its waiter)
//! ```
//!
//! Each waiter (a future) holds a [`WaitKey`], the index of its slot. States of a slot:
//!
//! | state | entered by | left by |
//! |---|---|---|
//! | `Free` | `remove`, `take_notified` | `register` (a new waiter) |
//! | `Queued` | `register` | `notify_one`/`notify_all` (→ `Notified`), `remove` (→ `Free`) |
//! | `Notified` | `notify_*` | `take_notified`/`remove` (→ `Free`), `register` (→ `Queued` again) |
//!
//! A notified slot stays allocated until its waiter looks at it: the notification is a token
//! the waiter owns (a message to take, a lock handed to it, a counter that reached zero). A
//! waiter that is dropped while notified learns it from `remove` and must pass the token on,
//! so a cancelled future never swallows a wake-up meant for someone (the "lost wake-up" of
//! cancellation). Because a slot is freed only by its own waiter, a key can never name a slot
//! reused by someone else, so no generation tag is needed.
//!
//! Costs: every operation is O(1) (the queue is doubly linked through slot indices); waiting
//! allocates nothing once the slot vector has grown to the peak number of waiters, and a
//! waiter that is polled again with the same task's waker does not even clone it
//! (`Waker::will_wake`). When the last slot is freed the vector is cleared, and shrunk if it
//! had grown large, so a burst of waiters does not pin memory for ever.
//!
//! Rejected: a `VecDeque<Waker>` with removal by scan (O(n) removal of a cancelled or notified
//! waiter, which a mutex with a thousand lockers pays on every hand-off); an `Arc` per waiter
//! with its own flag (an allocation per wait, and the ping-pong benchmark waits on every
//! message); an intrusive list through the futures themselves (needs pinning and `unsafe`,
//! for no gain over indices).

use std::task::Waker;

const NIL: u32 = u32::MAX;
/// Above this many slots, an empty list gives its memory back.
const SHRINK_ABOVE: usize = 1024;

/// The slot a waiter owns in a [`WaitList`] while it waits or holds a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaitKey(u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Free,
    Queued,
    Notified,
}

#[derive(Debug)]
struct Slot {
    /// `Some` while queued; taken when notified.
    waker: Option<Waker>,
    /// Queue links while `Queued`; `next` links the free list while `Free`.
    prev: u32,
    next: u32,
    state: SlotState,
}

/// A FIFO of waiters; see the module header.
#[derive(Debug)]
pub(crate) struct WaitList {
    slots: Vec<Slot>,
    head: u32,
    tail: u32,
    free: u32,
    /// Slots in state `Queued`.
    queued: usize,
    /// Slots not `Free` (queued or holding a notification).
    live: usize,
}

impl Default for WaitList {
    fn default() -> Self {
        WaitList::new()
    }
}

impl WaitList {
    pub(crate) const fn new() -> WaitList {
        WaitList {
            slots: Vec::new(),
            head: NIL,
            tail: NIL,
            free: NIL,
            queued: 0,
            live: 0,
        }
    }

    /// `true` if nobody is queued (notified waiters that have not looked yet do not count).
    pub(crate) fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Waiters queued (for the unit tests, which loom builds leave out).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn len(&self) -> usize {
        self.queued
    }

    /// Queues the waiter at the back, or, if `key` is already queued, refreshes its waker in
    /// place (keeping its turn). A waiter whose notification turned out to be useless (the
    /// message was taken by someone else) calls this to queue again, at the back.
    pub(crate) fn register(&mut self, key: &mut Option<WaitKey>, waker: &Waker) {
        if let Some(k) = *key {
            let slot = &mut self.slots[k.0 as usize];
            match slot.state {
                SlotState::Queued => {
                    match &mut slot.waker {
                        Some(w) if w.will_wake(waker) => {}
                        w => *w = Some(waker.clone()),
                    }
                    return;
                }
                SlotState::Notified => {
                    slot.waker = Some(waker.clone());
                    self.link_back(k.0);
                    return;
                }
                SlotState::Free => corrupt("register with a freed key"),
            }
        }
        let i = if self.free != NIL {
            let i = self.free;
            self.free = self.slots[i as usize].next;
            self.slots[i as usize].waker = Some(waker.clone());
            i
        } else {
            let i = u32::try_from(self.slots.len())
                .ok()
                .filter(|&i| i != NIL)
                .unwrap_or_else(|| corrupt("more than 4 billion waiters"));
            self.slots.push(Slot {
                waker: Some(waker.clone()),
                prev: NIL,
                next: NIL,
                state: SlotState::Free,
            });
            i
        };
        self.live += 1;
        self.link_back(i);
        *key = Some(WaitKey(i));
    }

    /// If `key` has been notified, frees its slot, clears `key` and returns `true`; if it is
    /// still queued, returns `false` and leaves it queued.
    pub(crate) fn take_notified(&mut self, key: &mut Option<WaitKey>) -> bool {
        let Some(k) = *key else { return false };
        match self.slots[k.0 as usize].state {
            SlotState::Notified => {
                self.release(k.0);
                *key = None;
                true
            }
            SlotState::Queued => false,
            SlotState::Free => corrupt("take_notified with a freed key"),
        }
    }

    /// Frees `key`'s slot, whatever its state, and clears `key`. Returns `true` if it held a
    /// notification, which the caller must use or pass on (see the module header).
    pub(crate) fn remove(&mut self, key: &mut Option<WaitKey>) -> bool {
        let Some(k) = key.take() else { return false };
        match self.slots[k.0 as usize].state {
            SlotState::Queued => {
                self.unlink(k.0);
                self.slots[k.0 as usize].waker = None;
                self.release(k.0);
                false
            }
            SlotState::Notified => {
                self.release(k.0);
                true
            }
            SlotState::Free => corrupt("remove with a freed key"),
        }
    }

    /// Notifies the waiter at the front: it leaves the queue and owns a notification until it
    /// looks. Returns its waker, to be woken after the caller's lock is released.
    pub(crate) fn notify_one(&mut self) -> Option<Waker> {
        if self.head == NIL {
            return None;
        }
        let i = self.head;
        self.unlink(i);
        let slot = &mut self.slots[i as usize];
        slot.state = SlotState::Notified;
        slot.waker.take()
    }

    /// Notifies every queued waiter, appending their wakers to `out`.
    pub(crate) fn notify_all(&mut self, out: &mut Vec<Waker>) {
        out.reserve(self.queued);
        while let Some(w) = self.notify_one() {
            out.push(w);
        }
    }

    fn link_back(&mut self, i: u32) {
        let tail = self.tail;
        {
            let slot = &mut self.slots[i as usize];
            slot.state = SlotState::Queued;
            slot.prev = tail;
            slot.next = NIL;
        }
        if tail == NIL {
            self.head = i;
        } else {
            self.slots[tail as usize].next = i;
        }
        self.tail = i;
        self.queued += 1;
    }

    /// Takes a queued slot out of the queue; its state is the caller's to set.
    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let s = &self.slots[i as usize];
            (s.prev, s.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
        self.queued -= 1;
    }

    /// Returns an unqueued slot to the free list.
    fn release(&mut self, i: u32) {
        let slot = &mut self.slots[i as usize];
        slot.state = SlotState::Free;
        slot.waker = None;
        slot.next = self.free;
        self.free = i;
        self.live -= 1;
        if self.live == 0 {
            self.slots.clear();
            if self.slots.capacity() > SHRINK_ABOVE {
                self.slots.shrink_to(SHRINK_ABOVE / 4);
            }
            self.free = NIL;
        }
    }
}

/// A key that does not match its slot means a waiter outlived its list or was used twice:
/// the bookkeeping of some primitive is broken, and going on would misroute wake-ups.
#[cold]
fn corrupt(what: &str) -> ! {
    panic!("runtime: sync wait list corrupt: {what}")
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    use crate::test_util::counting_waker as waker;

    #[test]
    fn fifo_order_and_notification_tokens() {
        let mut l = WaitList::new();
        let (ca, wa) = waker();
        let (cb, wb) = waker();
        let (mut a, mut b) = (None, None);
        l.register(&mut a, &wa);
        l.register(&mut b, &wb);
        assert_eq!(l.len(), 2);
        l.notify_one().unwrap().wake();
        assert_eq!(ca.0.load(Ordering::SeqCst), 1);
        assert_eq!(cb.0.load(Ordering::SeqCst), 0);
        assert!(!l.take_notified(&mut b));
        assert!(l.take_notified(&mut a));
        assert!(a.is_none());
        // b cancelled while queued: no token.
        assert!(!l.remove(&mut b));
        assert!(l.is_empty());
        assert!(l.notify_one().is_none());
    }

    #[test]
    fn cancelled_notified_waiter_reports_its_token() {
        let mut l = WaitList::new();
        let (_c, w) = waker();
        let mut a = None;
        l.register(&mut a, &w);
        drop(l.notify_one());
        assert!(l.remove(&mut a));
    }

    #[test]
    fn requeue_after_useless_notification_goes_to_the_back() {
        let mut l = WaitList::new();
        let (ca, wa) = waker();
        let (cb, wb) = waker();
        let (mut a, mut b) = (None, None);
        l.register(&mut a, &wa);
        l.register(&mut b, &wb);
        drop(l.notify_one()); // a
        l.register(&mut a, &wa); // a queues again, behind b
        l.notify_one().unwrap().wake();
        assert_eq!(cb.0.load(Ordering::SeqCst), 1);
        assert_eq!(ca.0.load(Ordering::SeqCst), 0);
        let mut out = Vec::new();
        l.notify_all(&mut out);
        assert_eq!(out.len(), 1);
        assert!(l.remove(&mut a));
        assert!(l.remove(&mut b));
        assert_eq!(l.live, 0);
        assert!(l.slots.is_empty());
    }

    #[test]
    fn slots_are_reused_and_removal_is_from_the_middle() {
        let mut l = WaitList::new();
        let (_c, w) = waker();
        let mut keys: Vec<Option<WaitKey>> = (0..10).map(|_| None).collect();
        for k in keys.iter_mut() {
            l.register(k, &w);
        }
        for k in keys.iter_mut().skip(1).step_by(2) {
            assert!(!l.remove(k));
        }
        assert_eq!(l.len(), 5);
        let mut k = None;
        l.register(&mut k, &w);
        assert!(l.slots.len() == 10, "a freed slot is reused");
        let mut out = Vec::new();
        l.notify_all(&mut out);
        assert_eq!(out.len(), 6);
    }
}
