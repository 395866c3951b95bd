//! Multi-producer, single-consumer channels that park goroutines: `std::sync::mpsc`'s API
//! (and its error types) on Go's `chan` model.
//!
//! ```
//! use gorust::sync::mpsc;
//!
//! let n = gorust::Runtime::builder().workers(2).build().unwrap().run(|| {
//!     let (tx, rx) = mpsc::channel();
//!     for i in 0..10u64 {
//!         let tx = tx.clone();
//!         gorust::go(move || tx.send(i).unwrap());
//!     }
//!     drop(tx);
//!     rx.iter().sum::<u64>() // parks until all ten senders are gone
//! });
//! assert_eq!(n, 45);
//! ```
//!
//! Design. One `Chan<T>` per channel, shared by its handles through an `Arc`; everything
//! mutable is in `State`, behind one internal lock (`crate::loom::sync::Mutex`), taken for a
//! few dozen instructions per operation and never held while waking, while dropping a
//! message, or across a park. `cap` is fixed at creation: `usize::MAX` for [`channel`],
//! `n` for [`sync_channel(n)`](sync_channel). Fields of `State` and who touches them:
//!
//! | field | written by | meaning |
//! |---|---|---|
//! | `queue` | senders push, the receiver pops | messages in flight (a `VecDeque`, reused: no allocation per message once it has grown; unbounded, it halves as it drains below a quarter, down to `SHRINK_FLOOR` slots) |
//! | `recv_waiters` | receive futures | parked receives (usually one; several if one thread polls several `recv_async`, or goroutines share a `&Receiver`) |
//! | `send_waiters` | bounded send futures | senders parked because the buffer is full, FIFO |
//! | `reserved` | `notify_sender` (+1), the notified sender (−1) | slots promised to notified senders that have not pushed yet, so a newcomer cannot take a slot from a sender that waited for it |
//! | `received` | the receiver | messages taken, ever; a rendezvous sender waits until it passes its ticket |
//! | `ack` | the rendezvous sender whose message is queued | its waker, woken when the message is taken |
//! | `senders`, `receiver_alive` | handle clones and drops | disconnection |
//! | `select_receivers`, `select_senders` | a parked [`Select`](super::Select) (push, withdraw), whoever wakes it (takes all), a rendezvous sender that claims one | selects parked on a case here (`select.rs`) |
//! | `select_wakes` | whoever took selects out of the two lists above | their wakers, woken by that same critical section once it unlocks (`unlock_and_wake`): empty whenever the lock is free |
//!
//! Rendezvous (`sync_channel(0)`, Go's unbuffered channel): the buffer holds at most the one
//! message being handed over. A sender pushes only into an empty buffer, takes the ticket
//! `received + 1`, and stays parked until `received` reaches it, so `send` returns only once
//! the receiver has the value. If the receiver is dropped first, the sender takes its message
//! back out of the buffer (`SendError(value)`, as in std); if the send future is dropped
//! first, the message is withdrawn. `try_send` succeeds only while a receive is waiting.
//!
//! Lifecycle of a message: (1) a sender finds room (unbounded: always; bounded: `len +
//! reserved < max(cap, 1)` and nobody queued ahead, or it holds a reservation) and pushes;
//! (2) it notifies the first parked receive, if any; (3) a receive pops it, and if a slot
//! became free notifies the first parked sender (reserving the slot for it) and, in a
//! rendezvous, wakes the `ack` sender. Disconnection (last sender or the receiver dropped)
//! wakes every waiter of the other side; a dropped receiver also drops the buffered messages,
//! outside the lock.
//!
//! Cancellation: each wait is a future holding a `WaitKey`; its `Drop` removes it, and a future
//! dropped while holding a notification passes it on (a receive: to the next receive, if a
//! message is left; a sender: its reserved slot, to the next sender). So dropping
//! `recv_async` or `send_async` at any point loses no message and strands no waiter.
//!
//! Rejected: a lock-free queue (crossbeam-style) with a separate waiter lock: the parked
//! ping-pong is dominated by the wake and the context switch, and one short lock keeps the
//! rendezvous, reservation and disconnect rules in one place (behind the `crate::loom`
//! facade, so a loom model can check them); allocating a node per message or per wait;
//! waking a sender on every receive (only when one waits and a slot is free).

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};
use std::time::{Duration, Instant};

pub use std::sync::mpsc::{RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};

use super::on_plain_thread;
use super::select::{Case, SelectWaiter};
use super::waitlist::{WaitKey, WaitList};
use crate::loom::sync::{Arc, Mutex, MutexGuard};

mod select_case;

/// `cap` of an unbounded channel.
const UNBOUNDED: usize = usize::MAX;
/// Slots an unbounded channel's queue keeps however far it drains (see `State::after_pop`).
const SHRINK_FLOOR: usize = 64;

/// Creates an unbounded channel: `send` never waits. Like `std::sync::mpsc::channel`.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(UNBOUNDED));
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// Creates a channel that buffers at most `bound` messages: `send` parks while it is full.
/// `bound == 0` makes a rendezvous channel: `send` returns only when a receiver has taken the
/// value. Like `std::sync::mpsc::sync_channel`.
pub fn sync_channel<T>(bound: usize) -> (SyncSender<T>, Receiver<T>) {
    // `UNBOUNDED` is reserved; nobody can buffer that many messages anyway.
    let chan = Arc::new(Chan::new(bound.min(UNBOUNDED - 1)));
    (SyncSender { chan: chan.clone() }, Receiver { chan })
}

struct Chan<T> {
    /// Buffer bound; `UNBOUNDED`, or 0 for a rendezvous. Immutable.
    cap: usize,
    state: Mutex<State<T>>,
}

struct State<T> {
    queue: VecDeque<T>,
    received: u64,
    reserved: usize,
    senders: usize,
    receiver_alive: bool,
    recv_waiters: WaitList,
    send_waiters: WaitList,
    ack: Option<Waker>,
    /// `Select`s parked on a receive case here (see `select.rs`).
    select_receivers: Vec<SelectWaiter>,
    /// `Select`s parked on a send case here.
    select_senders: Vec<SelectWaiter>,
    /// Wakers of parked `Select`s taken out of the two lists above by the critical section
    /// that holds the lock, to be woken once it unlocks: empty whenever the lock is free.
    select_wakes: Vec<Waker>,
}

impl<T> Chan<T> {
    fn new(cap: usize) -> Chan<T> {
        Chan {
            cap,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                received: 0,
                reserved: 0,
                senders: 1,
                receiver_alive: true,
                recv_waiters: WaitList::new(),
                send_waiters: WaitList::new(),
                ack: None,
                select_receivers: Vec::new(),
                select_senders: Vec::new(),
                select_wakes: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        crate::loom::lock(&self.state)
    }

    /// Messages the buffer may hold (a rendezvous holds the one being handed over).
    fn slots(&self) -> usize {
        self.cap.max(1)
    }

    /// The unbounded push of `Sender::send`.
    fn push_unbounded(&self, t: T) -> Result<(), SendError<T>> {
        let mut st = self.lock();
        if !st.receiver_alive {
            return Err(SendError(t));
        }
        st.queue.push_back(t);
        let w = st.notify_receiver();
        unlock_and_wake(st, w, None);
        Ok(())
    }

    fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut st = self.lock();
        let (v, a, b) = self.try_recv_locked(&mut st)?;
        unlock_and_wake(st, a, b);
        Ok(v)
    }

    /// `try_recv` under the lock (also a `Select`'s receive case), with the two wakers of
    /// [`State::after_pop`] to wake once the lock is released.
    #[allow(clippy::type_complexity)]
    fn try_recv_locked(
        &self,
        st: &mut State<T>,
    ) -> Result<(T, Option<Waker>, Option<Waker>), TryRecvError> {
        match st.queue.pop_front() {
            Some(v) => {
                let (a, b) = st.after_pop(self);
                Ok((v, a, b))
            }
            None if st.senders == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    fn try_send(&self, t: T) -> Result<(), TrySendError<T>> {
        let mut st = self.lock();
        let w = self.try_send_locked(&mut st, t)?;
        unlock_and_wake(st, w, None);
        Ok(())
    }

    /// `try_send` under the lock (also a `Select`'s send case), with the receive to wake once
    /// the lock is released. On a rendezvous channel it needs a receive that is committed to
    /// take the message: a parked `recv`, or a parked `Select` that it claims for this
    /// channel (`Token::claim`), so that the select cannot pick another case and leave the
    /// message behind.
    fn try_send_locked(&self, st: &mut State<T>, t: T) -> Result<Option<Waker>, TrySendError<T>> {
        if !st.receiver_alive {
            return Err(TrySendError::Disconnected(t));
        }
        if !st.send_waiters.is_empty() || !st.has_room(self.slots()) {
            return Err(TrySendError::Full(t));
        }
        if self.cap == 0 && st.recv_waiters.is_empty() {
            let claimed = st
                .select_receivers
                .iter()
                .position(|w| w.token.claim(w.case));
            let Some(i) = claimed else {
                return Err(TrySendError::Full(t));
            };
            let w = st.select_receivers.remove(i);
            st.queue.push_back(t);
            return Ok(Some(w.waker));
        }
        st.queue.push_back(t);
        Ok(st.notify_receiver())
    }

    fn add_sender(&self) {
        self.lock().senders += 1;
    }

    fn drop_sender(&self) {
        let mut st = self.lock();
        st.senders -= 1;
        if st.senders > 0 || (st.recv_waiters.is_empty() && st.select_receivers.is_empty()) {
            return;
        }
        let mut wakers = Vec::new();
        st.recv_waiters.notify_all(&mut wakers);
        st.queue_selects(Side::Receivers);
        wakers.append(&mut st.select_wakes);
        drop(st);
        crate::sched::wake::wake_all(wakers);
    }
}

/// Which of a channel's lists of parked `Select`s.
#[derive(Clone, Copy)]
enum Side {
    Receivers,
    Senders,
}

impl<T> State<T> {
    /// A slot is free beyond those promised to notified senders.
    fn has_room(&self, slots: usize) -> bool {
        self.queue.len() + self.reserved < slots
    }

    /// Notifies the first parked sender if a slot is free for it, reserving the slot; if no
    /// sender is parked, the parked `Select`s with a send case here are to be woken (they
    /// race for the slot under the lock, unreserved).
    fn notify_sender(&mut self, slots: usize) -> Option<Waker> {
        if !self.has_room(slots) {
            return None;
        }
        match self.send_waiters.notify_one() {
            Some(w) => {
                self.reserved += 1;
                Some(w)
            }
            None => {
                self.queue_selects(Side::Senders);
                None
            }
        }
    }

    /// Notifies the first parked receive of a new message; if none is parked, the parked
    /// `Select`s with a receive case here are to be woken (the message stays queued until
    /// one takes it, so a select that picks another case leaves it for the next).
    fn notify_receiver(&mut self) -> Option<Waker> {
        let w = self.recv_waiters.notify_one();
        if w.is_none() {
            self.queue_selects(Side::Receivers);
        }
        w
    }

    /// A receive starts waiting on a rendezvous channel: a `Select` parked to send here can
    /// now hand its message over.
    fn receive_waits(&mut self, chan: &Chan<T>) {
        if chan.cap == 0 {
            self.queue_selects(Side::Senders);
        }
    }

    /// Moves the wakers of the parked `Select`s of `side` to `select_wakes`, to be woken by
    /// this critical section once it unlocks ([`unlock_and_wake`]).
    #[inline]
    fn queue_selects(&mut self, side: Side) {
        let list = match side {
            Side::Receivers => &mut self.select_receivers,
            Side::Senders => &mut self.select_senders,
        };
        // Checked first: every plain send and receive comes here.
        if !list.is_empty() {
            self.select_wakes.extend(list.drain(..).map(|w| w.waker));
        }
    }

    /// Bookkeeping after the receiver took a message: the rendezvous sender to acknowledge
    /// and the parked sender that may now push.
    fn after_pop(&mut self, chan: &Chan<T>) -> (Option<Waker>, Option<Waker>) {
        self.received += 1;
        // An unbounded queue gives back what a burst made it grow by, halving as it drains
        // (each halving copies under a quarter of the slots, so a drain stays linear).
        // A bounded one keeps its at most `cap` slots.
        if chan.cap == UNBOUNDED {
            let kept = self.queue.capacity();
            if kept > SHRINK_FLOOR && self.queue.len() <= kept / 4 {
                self.queue.shrink_to(kept / 2);
            }
        }
        let ack = if chan.cap == 0 { self.ack.take() } else { None };
        (ack, self.notify_sender(chan.slots()))
    }
}

/// Releases the lock, then wakes `a`, `b` and the `Select`s queued in `select_wakes`, past a
/// waker that panics (a foreign executor's): as everywhere in the runtime
/// (`sched::wake::wake_all`), it must not unwind out of a channel operation, and the others
/// must still be woken. (Woken one by one, a panicking acknowledgement once dropped a
/// received value with the unwind and left a parked sender unwoken with a slot reserved for
/// it: a rendezvous channel stayed full for good; review, session 31.)
///
/// The plain path builds nothing: the wakers stay in registers. Gathering them in a struct
/// with a vector, stored just before the unlock's `xchg`, made the ping-pong ~30% slower.
#[inline]
fn unlock_and_wake<T>(mut st: MutexGuard<'_, State<T>>, a: Option<Waker>, b: Option<Waker>) {
    if st.select_wakes.is_empty() {
        drop(st);
        // A park (`RecvFuture` registering) wakes nobody: no call at all then.
        if a.is_some() || b.is_some() {
            crate::sched::wake::wake_all(a.into_iter().chain(b));
        }
    } else {
        let selects = std::mem::take(&mut st.select_wakes);
        drop(st);
        crate::sched::wake::wake_all(a.into_iter().chain(b).chain(selects));
    }
}

/// A future that spends one unit of the cooperative budget (for operations that never wait).
struct CoopPoint;

impl Future for CoopPoint {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        crate::coop::poll_proceed(cx)
    }
}

// ---------------------------------------------------------------------------------------------
// Sender

/// The sending half of an unbounded [`channel`]. Clone it for more producers.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `t`; never waits. Fails, handing `t` back, once the [`Receiver`] is dropped.
    ///
    /// In a goroutine it spends one unit of the cooperative budget, so a goroutine that only
    /// sends still lets the others on its worker (the receiver, perhaps) run.
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        if crate::goroutine::in_goroutine() {
            crate::block_on(CoopPoint);
        }
        self.chan.push_unbounded(t)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.add_sender();
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// SyncSender

/// The sending half of a bounded [`sync_channel`]. Clone it for more producers.
pub struct SyncSender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> SyncSender<T> {
    /// Sends `t`, parking while the buffer is full (for a rendezvous channel: until the
    /// receiver has taken `t`). Fails, handing `t` back, once the [`Receiver`] is dropped.
    ///
    /// # Panics
    ///
    /// If it must wait while called from a future on a worker thread (it would block the
    /// worker); use [`send_async`](Self::send_async) there. On a rendezvous channel (capacity
    /// 0) it always must, so it panics there before sending anything, unless the receiver is
    /// gone. The same before sending anything, on a rendezvous channel, in a goroutine that
    /// caught its cancellation by the runtime's shutdown (its waits are refused).
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        // Fast path: room now (one lock, no future). Spends a unit of the cooperative budget
        // as the future would; when none is left, the future's poll yields.
        let t = if self.chan.cap > 0 && crate::coop::try_spend() {
            match self.chan.try_send(t) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(t)) => return Err(SendError(t)),
                Err(TrySendError::Full(t)) => t,
            }
        } else {
            t
        };
        // A rendezvous send always waits for the receiver to take `t`, so from a future on a
        // worker `block_on` would panic: refused before `t` is pushed. (Before, it panicked
        // after, with `t` often received already; review, session 25.)
        // The same for a goroutine being cancelled by the shutdown, whose wait is refused
        // (`goroutine/cancel.rs`): refused after the push, a receiver could take `t` in
        // between, and a delivered send was reported as refused (review, session 31).
        let refused = self.chan.cap == 0 && crate::goroutine::waits_refused();
        if self.chan.cap == 0 && (refused || crate::blocking::in_a_future_on_a_worker()) {
            if !self.chan.lock().receiver_alive {
                return Err(SendError(t));
            }
            if refused {
                crate::goroutine::refuse_wait_if_cancelled();
            }
            panic!(
                "gorust::sync::SyncSender::send on a rendezvous channel from a future on a \
                 worker thread waits for the receiver, which would block the worker; use \
                 send_async(t).await there, or call send from a goroutine"
            );
        }
        crate::block_on(self.send_async(t))
    }

    /// Sends `t` if that needs no wait: `Full(t)` if the buffer is full (for a rendezvous
    /// channel: unless a receive is waiting), `Disconnected(t)` once the receiver is dropped.
    ///
    /// On a rendezvous channel the message goes to the waiting receive without a hand-off
    /// ticket: if that receive is cancelled before it runs (its `recv_async` future dropped,
    /// say by a timeout), the message stays in the channel for the next receive, and later
    /// sends wait behind it. Nothing is lost, but unlike [`send`](Self::send), `Ok` here does
    /// not prove that a receiver has taken `t`.
    pub fn try_send(&self, t: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(t)
    }

    /// The async face of [`send`](Self::send). Cancellation-safe: dropping the future before it
    /// completes drops `t` unsent (a rendezvous message not yet taken is withdrawn) and gives
    /// its turn to the next sender. On a rendezvous channel, though, the receiver may have
    /// taken `t` after the future's last poll: dropped then (a `select` or a timeout that
    /// picked another branch), the send happened without the future saying so. Go's `select`
    /// decides atomically; a select over these futures cannot, [`Select`](super::Select) does.
    pub fn send_async(&self, t: T) -> SendFuture<'_, T> {
        SendFuture {
            chan: &self.chan,
            value: Some(t),
            key: None,
            ticket: None,
        }
    }
}

impl<T> Clone for SyncSender<T> {
    fn clone(&self) -> Self {
        self.chan.add_sender();
        SyncSender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for SyncSender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> fmt::Debug for SyncSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncSender").finish_non_exhaustive()
    }
}

/// The future of [`SyncSender::send_async`].
#[must_use = "futures do nothing unless polled"]
pub struct SendFuture<'a, T> {
    chan: &'a Chan<T>,
    /// The message, until pushed.
    value: Option<T>,
    /// Our slot in `send_waiters` while parked for room, or holding a reservation.
    key: Option<WaitKey>,
    /// Rendezvous only: pushed, waiting until `received` reaches this.
    ticket: Option<u64>,
}

// The message is moved, never pinned: the future is `Unpin` whatever `T` is.
impl<T> Unpin for SendFuture<'_, T> {}

impl<T> fmt::Debug for SendFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendFuture")
            .field("pushed", &self.value.is_none())
            .finish_non_exhaustive()
    }
}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        ready!(crate::coop::poll_proceed(cx));
        let chan = this.chan;
        let mut st = chan.lock();

        if let Some(ticket) = this.ticket {
            // Rendezvous, message pushed: wait for the receiver to take it.
            if st.received >= ticket {
                this.ticket = None;
                return Poll::Ready(Ok(()));
            }
            if !st.receiver_alive {
                // Our message is the one in the buffer (a rendezvous holds at most one, and
                // nobody else pushes while it is there): take it back.
                this.ticket = None;
                let v = st.queue.pop_back();
                drop(st);
                let v = v.unwrap_or_else(|| corrupt("rendezvous message missing"));
                return Poll::Ready(Err(SendError(v)));
            }
            match &st.ack {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => st.ack = Some(cx.waker().clone()),
            }
            // Still waiting for the receiver: no progress, the unit goes back.
            crate::coop::refund();
            return Poll::Pending;
        }

        if !st.receiver_alive {
            st.send_waiters.remove(&mut this.key);
            drop(st);
            let v = this
                .value
                .take()
                .expect("SendFuture polled after completion");
            return Poll::Ready(Err(SendError(v)));
        }
        let may_push = if st.send_waiters.take_notified(&mut this.key) {
            // A receive freed a slot and reserved it for us.
            st.reserved -= 1;
            true
        } else {
            this.key.is_none() && st.send_waiters.is_empty() && st.has_room(chan.slots())
        };
        if !may_push {
            st.send_waiters.register(&mut this.key, cx.waker());
            crate::coop::refund();
            return Poll::Pending;
        }
        let v = this
            .value
            .take()
            .expect("SendFuture polled after completion");
        st.queue.push_back(v);
        let receiver = st.notify_receiver();
        if chan.cap == 0 {
            this.ticket = Some(st.received + st.queue.len() as u64);
            st.ack = Some(cx.waker().clone());
            unlock_and_wake(st, receiver, None);
            return Poll::Pending;
        }
        unlock_and_wake(st, receiver, None);
        Poll::Ready(Ok(()))
    }
}

impl<T> Drop for SendFuture<'_, T> {
    fn drop(&mut self) {
        if self.key.is_none() && self.ticket.is_none() {
            return;
        }
        let chan = self.chan;
        let mut st = chan.lock();
        let mut withdrawn = None;
        let mut next = None;
        if let Some(ticket) = self.ticket.take() {
            if st.received < ticket {
                // Not taken yet: withdraw it (it is the only message in a rendezvous buffer).
                withdrawn = st.queue.pop_back();
                st.ack = None;
                if st.receiver_alive {
                    next = st.notify_sender(chan.slots());
                }
            }
        }
        // (A rendezvous sender holds a ticket or a key, never both: it gave up its key
        // when it pushed.)
        if st.send_waiters.remove(&mut self.key) && st.receiver_alive {
            // We held a reserved slot: give it to the next sender.
            st.reserved -= 1;
            next = st.notify_sender(chan.slots());
        }
        unlock_and_wake(st, next, None);
        drop(withdrawn);
    }
}

// ---------------------------------------------------------------------------------------------
// Select

/// Either sending half ([`Sender`] or [`SyncSender`]), as [`Select::send`](super::Select::send)
/// takes it: `sel.send(&tx, value)`.
pub struct SenderRef<'a, T> {
    chan: &'a Chan<T>,
}

impl<T> fmt::Debug for SenderRef<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderRef").finish_non_exhaustive()
    }
}

impl<'a, T> From<&'a Sender<T>> for SenderRef<'a, T> {
    fn from(tx: &'a Sender<T>) -> Self {
        SenderRef { chan: &tx.chan }
    }
}

impl<'a, T> From<&'a SyncSender<T>> for SenderRef<'a, T> {
    fn from(tx: &'a SyncSender<T>) -> Self {
        SenderRef { chan: &tx.chan }
    }
}

/// A select's receive case on `rx`'s channel.
pub(super) fn select_recv<T: Send + 'static>(rx: &Receiver<T>) -> Box<dyn Case + Send + '_> {
    Box::new(select_case::RecvOp {
        at: select_case::ChanLock::new(&rx.chan),
        result: None,
    })
}

/// A select's send case of `value` on `tx`'s channel.
pub(super) fn select_send<T: Send + 'static>(
    tx: SenderRef<'_, T>,
    value: T,
) -> Box<dyn Case + Send + '_> {
    Box::new(select_case::SendOp {
        at: select_case::ChanLock::new(tx.chan),
        value: Some(value),
        result: None,
    })
}

// ---------------------------------------------------------------------------------------------
// Receiver

/// The receiving half of a channel. Only one exists per channel; it may be moved to another
/// goroutine or thread. Unlike std's it is `Sync`: receives through a shared `&Receiver`
/// from several goroutines are safe, each message going to one of them.
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// Takes the next message, parking while there is none. `Err(RecvError)` once the buffer
    /// is empty and every sender is dropped.
    ///
    /// # Panics
    ///
    /// If it must wait while called from a future on a worker thread; use
    /// [`recv_async`](Self::recv_async) there.
    pub fn recv(&self) -> Result<T, RecvError> {
        // Fast path: a message is there (one lock, no future); budget as in `SyncSender::send`.
        if crate::coop::try_spend() {
            match self.chan.try_recv() {
                Ok(v) => return Ok(v),
                Err(TryRecvError::Disconnected) => return Err(RecvError),
                Err(TryRecvError::Empty) => {}
            }
        }
        crate::block_on(self.recv_async())
    }

    /// Takes the next message if there is one: `Empty` if not, `Disconnected` if not and every
    /// sender is dropped.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv()
    }

    /// As [`recv`](Self::recv), giving up after `timeout` with `RecvTimeoutError::Timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.recv_deadline(deadline),
            None => self
                .recv()
                .map_err(|RecvError| RecvTimeoutError::Disconnected),
        }
    }

    /// As [`recv`](Self::recv), giving up at `deadline` with `RecvTimeoutError::Timeout`.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        if on_plain_thread() {
            match self.chan.try_recv() {
                Ok(v) => return Ok(v),
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
        }
        match crate::block_on(crate::time::timeout_at(deadline, self.recv_async())) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(RecvError)) => Err(RecvTimeoutError::Disconnected),
            // A message may have arrived as the timer fired: take it rather than report a
            // timeout with a message waiting.
            Err(_elapsed) => match self.chan.try_recv() {
                Ok(v) => Ok(v),
                Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => Err(RecvTimeoutError::Timeout),
            },
        }
    }

    /// The async face of [`recv`](Self::recv). Cancellation-safe: a future dropped before it
    /// completes has taken nothing, and a wake-up it had received goes to the next receive.
    pub fn recv_async(&self) -> RecvFuture<'_, T> {
        RecvFuture {
            chan: &self.chan,
            key: None,
        }
    }

    /// An iterator that parks for each message and ends when every sender is dropped.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the messages already buffered; it never waits.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let chan = &*self.chan;
        let mut st = chan.lock();
        st.receiver_alive = false;
        let mut wakers = Vec::new();
        st.send_waiters.notify_all(&mut wakers);
        st.queue_selects(Side::Senders);
        wakers.append(&mut st.select_wakes);
        // A rendezvous message with an `ack` belongs to its parked sender, which takes it
        // back. One without is a `try_send`'s, made while a receive waited that was then
        // cancelled: nobody takes it back, and kept, it lived as long as a sender (review,
        // session 23).
        let sender_owns = chan.cap == 0 && st.ack.is_some();
        wakers.extend(st.ack.take());
        let dropped = if sender_owns {
            VecDeque::new()
        } else {
            std::mem::take(&mut st.queue)
        };
        drop(st);
        crate::sched::wake::wake_all(wakers);
        drop(dropped);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

/// The future of [`Receiver::recv_async`].
#[must_use = "futures do nothing unless polled"]
pub struct RecvFuture<'a, T> {
    chan: &'a Chan<T>,
    /// Our slot in `recv_waiters` while parked or holding a notification.
    key: Option<WaitKey>,
}

impl<T> fmt::Debug for RecvFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvFuture")
            .field("waiting", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

impl<T> Future for RecvFuture<'_, T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        ready!(crate::coop::poll_proceed(cx));
        let chan = this.chan;
        let mut st = chan.lock();
        if let Some(v) = st.queue.pop_front() {
            // Whether or not we held a notification, we have used it.
            st.recv_waiters.remove(&mut this.key);
            let (a, b) = st.after_pop(chan);
            unlock_and_wake(st, a, b);
            return Poll::Ready(Ok(v));
        }
        if st.senders == 0 {
            st.recv_waiters.remove(&mut this.key);
            return Poll::Ready(Err(RecvError));
        }
        st.recv_waiters.register(&mut this.key, cx.waker());
        st.receive_waits(chan);
        unlock_and_wake(st, None, None);
        // No progress: the unit goes back (see `coop::refund`).
        crate::coop::refund();
        Poll::Pending
    }
}

impl<T> Drop for RecvFuture<'_, T> {
    fn drop(&mut self) {
        if self.key.is_none() {
            return;
        }
        let mut st = self.chan.lock();
        let next = if st.recv_waiters.remove(&mut self.key) && !st.queue.is_empty() {
            // We were woken for a message we will not take: pass the wake-up on.
            st.notify_receiver()
        } else {
            None
        };
        unlock_and_wake(st, next, None);
    }
}

/// Iterator of [`Receiver::iter`]: parks for each message, ends on disconnection.
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Iterator of [`Receiver::try_iter`]: the messages buffered now.
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Owning iterator of a [`Receiver`]: parks for each message, ends on disconnection.
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// Channel bookkeeping that contradicts itself: a bug in this file, not in the caller.
#[cold]
fn corrupt(what: &str) -> ! {
    panic!("runtime: channel state corrupt: {what}")
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    use crate::test_util::counting_waker as cx_waker;

    fn poll<F: Future + Unpin>(f: &mut F, w: &Waker) -> Poll<F::Output> {
        Pin::new(f).poll(&mut Context::from_waker(w))
    }

    #[test]
    fn dropped_notified_receive_passes_the_wakeup_on() {
        let (tx, rx) = channel::<u32>();
        let (ca, wa) = cx_waker();
        let (cb, wb) = cx_waker();
        let mut a = rx.recv_async();
        let mut b = rx.recv_async();
        assert!(poll(&mut a, &wa).is_pending());
        assert!(poll(&mut b, &wb).is_pending());
        tx.send(7).unwrap();
        assert_eq!(ca.0.load(Ordering::SeqCst), 1);
        drop(a);
        assert_eq!(cb.0.load(Ordering::SeqCst), 1, "b inherits a's wake-up");
        assert_eq!(poll(&mut b, &wb), Poll::Ready(Ok(7)));
    }

    /// A rendezvous sender's waker that panics when the receive acknowledges it (a foreign
    /// executor's) neither loses the received message nor strands the sender queued behind
    /// it, which holds the slot the receive reserved for it (review, session 31).
    #[test]
    fn a_panicking_acknowledgement_loses_no_message_and_strands_no_sender() {
        let (tx, rx) = sync_channel::<u32>(0);
        let bad = crate::test_util::panicking_waker();
        let (cb, wb) = cx_waker();
        let mut a = tx.send_async(1);
        assert!(
            poll(&mut a, &bad).is_pending(),
            "offered, waiting for its taker"
        );
        let mut b = tx.send_async(2);
        assert!(poll(&mut b, &wb).is_pending(), "queued behind it");
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rx.try_recv()));
        assert_eq!(
            r.ok(),
            Some(Ok(1)),
            "the message survives the waker's panic"
        );
        assert_eq!(cb.0.load(Ordering::SeqCst), 1, "the queued sender is woken");
        assert_eq!(poll(&mut a, &bad), Poll::Ready(Ok(())));
        assert!(poll(&mut b, &wb).is_pending(), "offered now");
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(poll(&mut b, &wb), Poll::Ready(Ok(())));
    }

    /// After a burst, an unbounded channel's queue shrinks as it drains, in order; a bounded
    /// one keeps its slots.
    #[test]
    fn an_unbounded_queue_gives_back_a_bursts_memory() {
        let (tx, rx) = channel::<u64>();
        for i in 0..100_000 {
            tx.send(i).unwrap();
        }
        let grown = rx.chan.lock().queue.capacity();
        assert!(grown >= 100_000);
        for i in 0..100_000 {
            assert_eq!(rx.try_recv(), Ok(i));
        }
        let left = rx.chan.lock().queue.capacity();
        assert!(left <= 4 * SHRINK_FLOOR, "{left} of {grown} slots kept");

        let (tx, rx) = sync_channel::<u64>(1_000);
        for i in 0..1_000 {
            tx.try_send(i).unwrap();
        }
        let full = rx.chan.lock().queue.capacity();
        while rx.try_recv().is_ok() {}
        assert_eq!(rx.chan.lock().queue.capacity(), full);
    }

    #[test]
    fn reserved_slot_is_not_stolen_and_passes_on_cancel() {
        let (tx, rx) = sync_channel::<u32>(1);
        tx.try_send(1).unwrap();
        let (ca, wa) = cx_waker();
        let (_cb, wb) = cx_waker();
        let mut a = tx.send_async(2);
        let mut b = tx.send_async(3);
        assert!(poll(&mut a, &wa).is_pending());
        assert!(poll(&mut b, &wb).is_pending());
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(ca.0.load(Ordering::SeqCst), 1);
        // The freed slot is a's: a newcomer cannot take it.
        assert!(matches!(tx.try_send(9), Err(TrySendError::Full(9))));
        drop(a);
        // a's reservation went to b.
        assert_eq!(poll(&mut b, &wb), Poll::Ready(Ok(())));
        assert_eq!(rx.try_recv(), Ok(3));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn rendezvous_send_waits_for_the_take_and_withdraws_on_cancel() {
        let (tx, rx) = sync_channel::<u32>(0);
        assert!(matches!(tx.try_send(1), Err(TrySendError::Full(1))));
        let (ca, wa) = cx_waker();
        let mut s = tx.send_async(5);
        assert!(poll(&mut s, &wa).is_pending());
        assert_eq!(rx.try_recv(), Ok(5));
        assert_eq!(ca.0.load(Ordering::SeqCst), 1);
        assert_eq!(poll(&mut s, &wa), Poll::Ready(Ok(())));
        let mut s = tx.send_async(6);
        assert!(poll(&mut s, &wa).is_pending());
        drop(s);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        // A waiting receive lets try_send through.
        let (_cr, wr) = cx_waker();
        let mut r = rx.recv_async();
        assert!(poll(&mut r, &wr).is_pending());
        tx.try_send(8).unwrap();
        assert_eq!(poll(&mut r, &wr), Poll::Ready(Ok(8)));
    }

    /// A `try_send` through a waiting receive that is then cancelled leaves its message in
    /// the rendezvous buffer with no sender to take it back; the receiver's drop drops it
    /// (it stayed until the last sender went).
    #[test]
    fn a_rendezvous_try_send_message_goes_with_the_receiver() {
        let (tx, rx) = sync_channel::<Arc<()>>(0);
        let (_c, w) = cx_waker();
        let mut r = rx.recv_async();
        assert!(poll(&mut r, &w).is_pending());
        let msg = Arc::new(());
        tx.try_send(msg.clone()).unwrap();
        drop(r);
        drop(rx);
        assert_eq!(
            Arc::strong_count(&msg),
            1,
            "the message outlived the receiver"
        );
        assert!(matches!(
            tx.try_send(msg.clone()),
            Err(TrySendError::Disconnected(_))
        ));
    }

    #[test]
    fn rendezvous_sender_gets_its_value_back_when_the_receiver_goes() {
        let (tx, rx) = sync_channel::<String>(0);
        let (_c, w) = cx_waker();
        let mut s = tx.send_async("x".to_string());
        assert!(poll(&mut s, &w).is_pending());
        drop(rx);
        match poll(&mut s, &w) {
            Poll::Ready(Err(SendError(v))) => assert_eq!(v, "x"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
