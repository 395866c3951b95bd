//! `Select`: Go's `select` over [`mpsc`](super::mpsc) channels (user docs on [`Select`]).
//!
//! Design. Go's `selectgo` locks every channel of the select, looks at each, and if none is
//! ready queues a waiter on each before unlocking; whoever later completes one of those
//! waiters first marks the whole select done (`selectDone`), so the others are skipped. The
//! same here:
//!
//! - A *pass* (`Engine::pass`, each poll of the select) takes every case's channel lock, in
//!   the order of the channels' addresses (every select takes them in that order and plain
//!   operations take one, so no two can deadlock). Under them it withdraws the waiters it left
//!   last time, then completes the case a sender claimed for it if any, then tries each case
//!   in a random order (`try_recv`/`try_send` under the lock), and if none goes ahead, leaves
//!   a waiter (`SelectWaiter`: the task's waker, the case's index and the select's `Token`)
//!   in each channel's `select_receivers` or `select_senders`. The locks are released, then
//!   the wakers gathered are woken.
//! - Who wakes a parked select, under that channel's lock (`mpsc.rs`): a message that no
//!   parked `recv` was notified of wakes every select waiting to receive on that channel; a
//!   freed slot that no parked `send` gets wakes every select waiting to send; a receive
//!   starting to wait on a rendezvous channel wakes the selects waiting to send there; a
//!   disconnection wakes the other side. A woken select simply makes a new pass, which
//!   decides atomically: the message or slot it was woken for is still there or someone else
//!   took it, and either way nothing is lost.
//! - The one hand-off that cannot wait for the select's next pass is a rendezvous send
//!   (`sync_channel(0)`) that must not wait itself: `try_send`, or a select's send case. It
//!   may complete only into a receive committed to take it. A parked plain `recv` is (it
//!   holds a notification it passes on if dropped); a parked select is not, since its next
//!   pass could pick another case and leave the message in the channel, the send reported
//!   done with nobody having it. So the sender *claims* the select for this case: `Token`'s
//!   word goes from `WAITING` to the case's index by compare-and-swap, pushes, and wakes it.
//!   The next pass sees the claim and completes that case first. Two senders on two channels
//!   may race to claim one select (each under its own channel's lock): the CAS lets one win,
//!   and the other looks for another receive or reports `Full`. Between passes only claims
//!   touch the token; during a pass the select holds every lock a claimer would need, so the
//!   token is read and reset to `WAITING` without a race.
//! - A claimed select dropped before its pass (a timeout, a cancelled future) leaves the
//!   message in the channel and passes the wake-up on to another receive, as a cancelled
//!   `recv` does: nothing is lost, but as for `try_send`, that send was reported done before
//!   a receiver had the value.
//!
//! Fields: `Engine::cases` is the select's own (its task polls it); a `SelectWaiter` lives in
//! a channel's state and is touched under its lock; `Token::won` is set by claimers (CAS,
//! under one of the select's channel locks) and reset by the select's pass (under all).
//!
//! Rejected: a select over the channels' futures (`futures::select!` over `recv_async` and
//! `send_async`): a rendezvous send future that loses the race may already have been
//! received, and two receives may both have completed; Go's select does one. Locking nothing
//! and re-trying every case after each wake (lock-free selects): without the locks, a
//! select's claim could land between its own check of that case and its park, and two
//! selects on opposite ends of a rendezvous channel would each decline the other. A waiter
//! node per case allocated in a shared arena (Go's `sudog` cache): each select allocates its
//! cases and its token once; the waiters are plain entries in each channel's vector.
//! Allowing one channel twice in a select: the pass would take its lock twice; it panics
//! with a message instead (Go allows it; two cases on one mpsc channel have no use).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::mpsc::{self, Receiver, RecvError, SendError, SenderRef};
use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::Arc;
use crate::time::Sleep;

/// `Token::won` of a select that nobody has claimed.
const WAITING: usize = usize::MAX;

/// What a rendezvous sender claims to hand its message to a parked select (module header).
#[derive(Debug)]
pub(crate) struct Token {
    /// `WAITING`, or the index of the case a sender claimed.
    won: AtomicUsize,
}

impl Token {
    fn new() -> Token {
        Token {
            won: AtomicUsize::new(WAITING),
        }
    }

    /// Claims the select for `case`; `false` if another case got it first. Called under that
    /// case's channel lock, which the select's next pass also takes, so the pass sees it.
    pub(crate) fn claim(&self, case: usize) -> bool {
        self.won
            .compare_exchange(WAITING, case, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The case claimed since the last pass, if any, leaving the token `WAITING` again.
    fn take_claim(&self) -> Option<usize> {
        let won = self.won.swap(WAITING, Ordering::AcqRel);
        (won != WAITING).then_some(won)
    }
}

/// A parked select's entry in one channel (its `select_receivers` or `select_senders`).
pub(crate) struct SelectWaiter {
    pub(crate) token: Arc<Token>,
    /// The index of the case, in its select, on this channel.
    pub(crate) case: usize,
    pub(crate) waker: Waker,
}

/// One case of a select, as the engine drives it; implemented in `mpsc/select_case.rs`.
/// Every method but `chan_id`, `lock` and `result` is called with the case's lock held.
pub(crate) trait Case {
    /// The channel's address: the lock order, and what tells two cases on one channel.
    fn chan_id(&self) -> usize;
    /// Takes the channel's lock, kept inside the case until `unlock`.
    fn lock(&mut self);
    fn unlock(&mut self);
    /// Goes ahead if it can without waiting; `true` if done (the outcome kept for `result`).
    fn try_complete(&mut self, wakes: &mut Vec<Waker>) -> bool;
    /// Leaves a waiter for the select in the channel.
    fn register(&mut self, token: &Arc<Token>, case: usize, waker: &Waker, wakes: &mut Vec<Waker>);
    /// Takes back the waiter `register` left, if nobody has woken it.
    fn withdraw(&mut self, token: &Arc<Token>);
    /// The select was claimed for this case and will not take the message: wake another
    /// receive for it.
    fn pass_on(&mut self, wakes: &mut Vec<Waker>);
    /// `&mut Option<outcome>`, downcast by [`Selected`]'s typed getters.
    fn result(&mut self) -> &mut dyn Any;
}

/// Go's `select` over [`mpsc`](super::mpsc) channels: waits until one of several sends or
/// receives can go ahead, and does that one alone. Add cases with [`recv`](Self::recv) and
/// [`send`](Self::send), then [`wait`](Self::wait) (or [`try_wait`](Self::try_wait),
/// [`wait_timeout`](Self::wait_timeout), [`wait_async`](Self::wait_async)).
///
/// ```
/// use gorust::sync::{mpsc, Select};
/// use std::time::Duration;
///
/// gorust::Runtime::builder().workers(2).build().unwrap().run(|| {
///     let (work_tx, work) = mpsc::sync_channel::<u32>(0);
///     let (quit_tx, quit) = mpsc::sync_channel::<()>(0);
///     gorust::go(move || {
///         work_tx.send(7).unwrap();
///         quit_tx.send(()).unwrap();
///     });
///     let mut got = Vec::new();
///     loop {
///         let mut sel = Select::new();
///         let job = sel.recv(&work);
///         let stop = sel.recv(&quit);
///         let Ok(mut done) = sel.wait_timeout(Duration::from_secs(10)) else {
///             panic!("nothing in 10 s");
///         };
///         if let Some(v) = done.recv(job) {
///             got.push(v.unwrap());
///         } else if done.recv(stop).is_some() {
///             break;
///         }
///     }
///     assert_eq!(got, [7]);
/// });
/// ```
///
/// Semantics, as Go's: the cases that can go ahead now are found, one is picked at random
/// (each with the same chance, so no case starves another), and only it takes effect: a receive takes its message, a
/// send hands its value over, and no other case's channel is touched. If none can, the select
/// parks until one can ([`wait`](Select::wait)), or until a deadline
/// ([`wait_timeout`](Select::wait_timeout)), or gives up at once ([`try_wait`](Select::try_wait),
/// Go's `default`). A receive case on a channel whose senders are all gone can always go
/// ahead and yields `Err(RecvError)` (Go's closed channel), and a send case whose receiver is
/// gone yields `Err(SendError(value))`. A select with no cases waits for ever, as Go's
/// `select {}`. The values of the send cases not picked are dropped with the [`Selected`].
///
/// Unlike Go's, a channel may appear in one case of a select only, and a select allocates
/// (its cases, and a token once it parks). Works from a goroutine (parks it), a plain thread
/// (blocks it) or a task (`wait_async().await`), as the channels do.
pub struct Select<'a> {
    cases: Vec<Box<dyn Case + Send + 'a>>,
}

impl Default for Select<'_> {
    fn default() -> Self {
        Select::new()
    }
}

impl fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("cases", &self.cases.len())
            .finish()
    }
}

impl<'a> Select<'a> {
    /// A select with no cases.
    pub fn new() -> Select<'a> {
        Select { cases: Vec::new() }
    }

    /// Adds a case that receives from `rx`. Its outcome, if picked, is
    /// [`Selected::recv`]'s: the message, or `Err(RecvError)` if every sender is gone.
    ///
    /// # Panics
    ///
    /// If the select already has a case on `rx`'s channel.
    pub fn recv<T: Send + 'static>(&mut self, rx: &'a Receiver<T>) -> RecvCase<T> {
        let index = self.add(mpsc::select_recv(rx));
        RecvCase {
            index,
            _t: PhantomData,
        }
    }

    /// Adds a case that sends `value` on `tx` (a [`mpsc::Sender`] or [`mpsc::SyncSender`]).
    /// It can go ahead when the channel has room; on a rendezvous channel
    /// (`sync_channel(0)`), when a receive is waiting, as in Go. Its outcome, if picked, is
    /// [`Selected::send`]'s; if not picked, `value` is dropped with the [`Selected`].
    ///
    /// On a rendezvous channel, `Ok` means what it means for
    /// [`try_send`](mpsc::SyncSender::try_send): the value went to a waiting receive, which
    /// takes it unless it is cancelled first (a `recv_async` dropped by a timeout, or a
    /// parked select dropped); the value then stays in the channel for the next receive,
    /// and is dropped with the receiver if none comes.
    ///
    /// # Panics
    ///
    /// If the select already has a case on `tx`'s channel.
    pub fn send<T: Send + 'static>(
        &mut self,
        tx: impl Into<SenderRef<'a, T>>,
        value: T,
    ) -> SendCase<T> {
        let index = self.add(mpsc::select_send(tx.into(), value));
        SendCase {
            index,
            _t: PhantomData,
        }
    }

    fn add(&mut self, case: Box<dyn Case + Send + 'a>) -> usize {
        let id = case.chan_id();
        assert!(
            self.cases.iter().all(|c| c.chan_id() != id),
            "gorust::sync::Select: a channel may appear in one case of a select only"
        );
        self.cases.push(case);
        self.cases.len() - 1
    }

    /// The number of cases.
    pub fn len(&self) -> usize {
        self.cases.len()
    }

    /// `true` if there are no cases.
    pub fn is_empty(&self) -> bool {
        self.cases.is_empty()
    }

    /// Waits until a case can go ahead and does it, parking the goroutine (blocking a plain
    /// thread) meanwhile.
    ///
    /// # Panics
    ///
    /// As [`crate::block_on`]: if it must wait while called from a future on a worker thread;
    /// use [`wait_async`](Self::wait_async) there.
    pub fn wait(self) -> Selected<'a> {
        crate::block_on(self.wait_async())
    }

    /// Does a case that can go ahead now, if any (Go's `select` with a `default`). `Err`
    /// hands the select back, untouched, when none can.
    pub fn try_wait(self) -> Result<Selected<'a>, Select<'a>> {
        let mut engine = Engine::new(self.cases);
        match engine.pass(None) {
            Some(index) => Ok(engine.into_selected(index)),
            None => Err(Select {
                cases: engine.into_cases(),
            }),
        }
    }

    /// As [`wait`](Self::wait), giving up after `timeout`: `Err` hands the select back.
    pub fn wait_timeout(self, timeout: Duration) -> Result<Selected<'a>, Select<'a>> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_deadline(deadline),
            None => Ok(self.wait()),
        }
    }

    /// As [`wait`](Self::wait), giving up at `deadline`: `Err` hands the select back. A
    /// case that can go ahead at the deadline is still taken.
    pub fn wait_deadline(self, deadline: Instant) -> Result<Selected<'a>, Select<'a>> {
        let mut waiting = Waiting {
            engine: Engine::new(self.cases),
            deadline: Some(Sleep::until(deadline)),
        };
        let picked = crate::block_on(std::future::poll_fn(|cx| waiting.poll(cx)));
        let engine = waiting.engine;
        match picked {
            Some(index) => Ok(engine.into_selected(index)),
            None => Err(Select {
                cases: engine.into_cases(),
            }),
        }
    }

    /// The async face of [`wait`](Self::wait). Cancellation-safe: dropped before it
    /// completes, no case has taken effect. One exception, as with `recv_async`: a rendezvous
    /// `try_send` (or another select's send) may have handed its value to this select just
    /// before the drop; the value then stays in the channel for the next receive.
    pub fn wait_async(self) -> SelectFuture<'a> {
        SelectFuture {
            waiting: Waiting {
                engine: Engine::new(self.cases),
                deadline: None,
            },
            done: false,
        }
    }
}

/// The handle of a receive case, returned by [`Select::recv`]; give it to
/// [`Selected::recv`] for the outcome.
pub struct RecvCase<T> {
    index: usize,
    _t: PhantomData<fn() -> T>,
}

/// The handle of a send case, returned by [`Select::send`]; give it to [`Selected::send`]
/// for the outcome.
pub struct SendCase<T> {
    index: usize,
    _t: PhantomData<fn() -> T>,
}

macro_rules! case_handle {
    ($name:ident) => {
        impl<T> $name<T> {
            /// The case's index in its select: 0 for the first case added, and so on.
            pub fn index(&self) -> usize {
                self.index
            }
        }
        impl<T> Clone for $name<T> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<T> Copy for $name<T> {}
        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("index", &self.index)
                    .finish()
            }
        }
    };
}
case_handle!(RecvCase);
case_handle!(SendCase);

/// The outcome of a select: which case went ahead, and what it gave.
pub struct Selected<'a> {
    cases: Vec<Box<dyn Case + Send + 'a>>,
    index: usize,
}

impl fmt::Debug for Selected<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Selected")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl Selected<'_> {
    /// The index of the case that went ahead.
    pub fn index(&self) -> usize {
        self.index
    }

    /// `Some(outcome)` if `case` is the one that went ahead (the first call only), `None`
    /// otherwise.
    ///
    /// # Panics
    ///
    /// If `case` comes from another select whose case at that index has another type.
    pub fn recv<T: 'static>(&mut self, case: RecvCase<T>) -> Option<Result<T, RecvError>> {
        self.outcome::<Result<T, RecvError>>(case.index)
    }

    /// `Some(outcome)` if `case` is the one that went ahead (the first call only), `None`
    /// otherwise.
    ///
    /// # Panics
    ///
    /// If `case` comes from another select whose case at that index has another type.
    pub fn send<T: 'static>(&mut self, case: SendCase<T>) -> Option<Result<(), SendError<T>>> {
        self.outcome::<Result<(), SendError<T>>>(case.index)
    }

    fn outcome<R: 'static>(&mut self, index: usize) -> Option<R> {
        if index != self.index {
            return None;
        }
        self.cases[index]
            .result()
            .downcast_mut::<Option<R>>()
            .expect("gorust::sync::Selected: a case handle from another select")
            .take()
    }
}

/// The future of [`Select::wait_async`].
#[must_use = "futures do nothing unless polled"]
pub struct SelectFuture<'a> {
    waiting: Waiting<'a>,
    /// Completed: polled again, it panics (its cases are gone).
    done: bool,
}

impl fmt::Debug for SelectFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectFuture")
            .field("cases", &self.waiting.engine.cases.len())
            .field("parked", &self.waiting.engine.registered)
            .finish()
    }
}

impl<'a> Future for SelectFuture<'a> {
    type Output = Selected<'a>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Selected<'a>> {
        let this = self.get_mut();
        assert!(!this.done, "SelectFuture polled after completion");
        match ready!(this.waiting.poll(cx)) {
            Some(index) => {
                this.done = true;
                let cases = std::mem::take(&mut this.waiting.engine.cases);
                Poll::Ready(Selected { cases, index })
            }
            None => corrupt("a select without a deadline gave up"),
        }
    }
}

/// A parked select, with or without a deadline.
struct Waiting<'a> {
    engine: Engine<'a>,
    deadline: Option<Sleep>,
}

impl Waiting<'_> {
    /// `Ready(Some(i))`: case `i` went ahead; `Ready(None)`: the deadline passed first.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<usize>> {
        ready!(crate::coop::poll_proceed(cx));
        let expired = match &mut self.deadline {
            Some(sleep) => Pin::new(sleep).poll(cx).is_ready(),
            None => false,
        };
        match self.engine.pass((!expired).then_some(cx.waker())) {
            Some(index) => Poll::Ready(Some(index)),
            None if expired => Poll::Ready(None),
            None => {
                // No progress: the unit goes back (see `coop::refund`).
                crate::coop::refund();
                Poll::Pending
            }
        }
    }
}

/// The cases and the state between passes (module header).
struct Engine<'a> {
    cases: Vec<Box<dyn Case + Send + 'a>>,
    /// Case indices in lock order (by channel address); built at the first pass.
    lock_order: Vec<usize>,
    /// Case indices in the order the pass tries them, shuffled at each pass.
    poll_order: Vec<usize>,
    /// Made at the first registration.
    token: Option<Arc<Token>>,
    /// Waiters of this select may be in the channels.
    registered: bool,
}

/// Every case's lock, held: taken in address order, released in reverse by `Drop`, which
/// then wakes what the pass gathered. Released by `Drop` on an unwind too (a foreign waker's
/// `clone` or `drop` that panics under the locks), so a case never keeps its guard past the
/// call that took it (which the `Send` impl of `mpsc/select_case.rs`'s `ChanLock` relies on).
struct Locks<'g, 'a> {
    cases: &'g mut [Box<dyn Case + Send + 'a>],
    order: &'g [usize],
    wakes: Vec<Waker>,
}

impl<'g, 'a> Locks<'g, 'a> {
    fn take(cases: &'g mut [Box<dyn Case + Send + 'a>], order: &'g [usize]) -> Self {
        let locks = Locks {
            cases,
            order,
            wakes: Vec::new(),
        };
        for k in 0..locks.order.len() {
            let i = locks.order[k];
            locks.cases[i].lock();
        }
        locks
    }
}

impl Drop for Locks<'_, '_> {
    fn drop(&mut self) {
        for &i in self.order.iter().rev() {
            self.cases[i].unlock();
        }
        crate::sched::wake::wake_all(std::mem::take(&mut self.wakes));
    }
}

impl<'a> Engine<'a> {
    fn new(cases: Vec<Box<dyn Case + Send + 'a>>) -> Engine<'a> {
        Engine {
            cases,
            lock_order: Vec::new(),
            poll_order: Vec::new(),
            token: None,
            registered: false,
        }
    }

    /// One pass (module header): the index of the case that went ahead, or `None`, having
    /// left a waiter in every channel if `waker` is given.
    fn pass(&mut self, waker: Option<&Waker>) -> Option<usize> {
        let n = self.cases.len();
        if self.lock_order.len() != n {
            self.lock_order = (0..n).collect();
            let cases = &self.cases;
            self.lock_order
                .sort_unstable_by_key(|&i| cases[i].chan_id());
            self.poll_order = (0..n).collect();
        }
        shuffle(&mut self.poll_order);
        let Engine {
            cases,
            lock_order,
            poll_order,
            token,
            registered,
        } = self;
        let mut locks = Locks::take(cases, lock_order);
        let locks = &mut locks;
        if let Some(claimed) = withdraw(locks, token, registered) {
            // A rendezvous sender handed us its message: that case first. Another receive
            // through a shared `&Receiver` may have taken it since; then it is a wake-up
            // like any other.
            if locks.cases[claimed].try_complete(&mut locks.wakes) {
                return Some(claimed);
            }
        }
        for &i in poll_order.iter() {
            if locks.cases[i].try_complete(&mut locks.wakes) {
                return Some(i);
            }
        }
        // Without a waker (`try_wait`, a deadline passed): no registration.
        let waker = waker?;
        let token = token.get_or_insert_with(|| Arc::new(Token::new()));
        // Set first: a registration clones the waker, and a foreign executor's `clone` may
        // panic; the locks are then released by `Locks`' drop, and the select's drop
        // withdraws the waiters already left.
        *registered = true;
        for (i, case) in locks.cases.iter_mut().enumerate() {
            case.register(token, i, waker, &mut locks.wakes);
        }
        None
    }

    fn into_selected(mut self, index: usize) -> Selected<'a> {
        Selected {
            cases: std::mem::take(&mut self.cases),
            index,
        }
    }

    fn into_cases(mut self) -> Vec<Box<dyn Case + Send + 'a>> {
        debug_assert!(!self.registered, "handed back while parked");
        std::mem::take(&mut self.cases)
    }
}

/// Under every lock: takes the select's waiters back out of the channels, and returns the
/// case a sender claimed meanwhile, if any.
fn withdraw(
    locks: &mut Locks<'_, '_>,
    token: &Option<Arc<Token>>,
    registered: &mut bool,
) -> Option<usize> {
    if !*registered {
        return None;
    }
    *registered = false;
    let token = token.as_ref()?;
    for case in locks.cases.iter_mut() {
        case.withdraw(token);
    }
    token.take_claim()
}

impl Drop for Engine<'_> {
    fn drop(&mut self) {
        if !self.registered {
            return;
        }
        let mut locks = Locks::take(&mut self.cases, &self.lock_order);
        if let Some(claimed) = withdraw(&mut locks, &self.token, &mut self.registered) {
            let locks = &mut locks;
            locks.cases[claimed].pass_on(&mut locks.wakes);
        }
    }
}

/// Shuffles the order in which a pass tries the cases (Fisher–Yates), so that each of the
/// cases ready at once is picked with the same chance, as Go's shuffled poll order does; a
/// case that is always ready starves none. Loom builds keep the order: a model must run
/// the same way at each replay.
fn shuffle(order: &mut [usize]) {
    if order.len() < 2 || cfg!(loom) {
        return;
    }
    std::thread_local! {
        static RNG: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }
    RNG.with(|rng| {
        let mut x = rng.get();
        if x == 0 {
            // Seeded per thread from the address of its own slot: distinct, never zero.
            x = (std::ptr::from_ref(rng).addr() as u32) | 1;
        }
        for i in (1..order.len()).rev() {
            // xorshift32
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let j = ((u64::from(x) * (i as u64 + 1)) >> 32) as usize;
            order.swap(i, j);
        }
        rng.set(x);
    })
}

#[cold]
fn corrupt(what: &str) -> ! {
    panic!("runtime: select state corrupt: {what}")
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::mpsc::{channel, sync_channel, TryRecvError, TrySendError};
    use crate::test_util::counting_waker;
    use std::sync::atomic::Ordering::SeqCst;

    fn poll<F: Future + Unpin>(f: &mut F, w: &Waker) -> Poll<F::Output> {
        Pin::new(f).poll(&mut Context::from_waker(w))
    }

    /// The output of a poll that must be ready (`why`, if not).
    fn ready<T>(p: Poll<T>, why: &str) -> T {
        match p {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("pending: {why}"),
        }
    }

    #[test]
    fn only_the_picked_receive_takes_its_message() {
        let (ta, ra) = channel::<u32>();
        let (tb, rb) = channel::<u32>();
        let mut sel = Select::new();
        let a = sel.recv(&ra);
        let b = sel.recv(&rb);
        let sel = sel.try_wait().expect_err("nothing sent yet");
        assert_eq!(sel.len(), 2);
        ta.send(1).unwrap();
        tb.send(2).unwrap();
        let mut done = sel.try_wait().expect("both ready");
        let (mine, other) = match (done.recv(a), done.recv(b)) {
            (Some(v), None) => (v, rb.try_recv()),
            (None, Some(v)) => (v, ra.try_recv()),
            _ => panic!("exactly one case is picked"),
        };
        assert!(
            matches!((mine, other), (Ok(1), Ok(2)) | (Ok(2), Ok(1))),
            "the other message stays in its channel"
        );
        assert_eq!(
            done.recv(a).or(done.recv(b)),
            None,
            "an outcome is given once"
        );
    }

    /// Two cases always ready, then one never ready: the two are picked alike (Go shuffles
    /// its poll order). A random starting case would pick the first 2/3 of the time.
    #[test]
    fn the_ready_cases_are_picked_alike() {
        let (ta, ra) = channel::<()>();
        let (tb, rb) = channel::<()>();
        let (_tc, rc) = channel::<()>();
        let mut picks = [0u32; 3];
        for _ in 0..2_000 {
            ta.send(()).unwrap();
            tb.send(()).unwrap();
            let mut sel = Select::new();
            sel.recv(&ra);
            sel.recv(&rb);
            sel.recv(&rc);
            picks[sel.try_wait().unwrap().index()] += 1;
            while ra.try_recv().is_ok() || rb.try_recv().is_ok() {}
        }
        assert_eq!(picks[2], 0);
        assert!(
            (850..=1150).contains(&picks[0]),
            "picks {picks:?}: not one half each"
        );
    }

    /// A waker whose `clone` panics (a foreign executor's) does not leave a channel locked
    /// or a waiter behind: the locks are released on the unwind, and the dropped select
    /// withdraws what it had left.
    #[test]
    fn a_waker_clone_that_panics_leaves_no_lock_held() {
        use std::task::{RawWaker, RawWakerVTable};
        fn clone(_: *const ()) -> RawWaker {
            panic!("a foreign waker's clone");
        }
        fn noop(_: *const ()) {}
        static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
        // SAFETY: the vtable's functions ignore the data pointer (null), as a no-op waker's.
        let bad = unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) };
        let (tx, rx) = sync_channel::<u32>(0);
        let (_other_tx, other) = channel::<u32>();
        let mut sel = Select::new();
        sel.recv(&rx);
        sel.recv(&other);
        let mut fut = sel.wait_async();
        // Cloned first: a clone takes the channel's lock.
        let tx2 = tx.clone();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| poll(&mut fut, &bad)));
        assert!(r.is_err(), "the clone panicked");
        // On another thread, which a lock left held would block for good (not joined).
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || done_tx.send(tx2.try_send(1).is_err()).unwrap());
        let refused = done_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the channel's lock was left held");
        assert!(refused, "no select waits any more");
        drop(fut);
    }

    #[test]
    #[should_panic(expected = "polled after completion")]
    fn a_select_future_polled_after_completion_panics() {
        let (tx, rx) = channel::<u32>();
        tx.send(1).unwrap();
        let (_c, w) = counting_waker();
        let mut sel = Select::new();
        sel.recv(&rx);
        let mut fut = sel.wait_async();
        assert!(poll(&mut fut, &w).is_ready());
        let _ = poll(&mut fut, &w);
    }

    #[test]
    fn a_rendezvous_send_case_goes_ahead_only_into_a_waiting_receive() {
        let (tx, rx) = sync_channel::<u32>(0);
        let mut sel = Select::new();
        let s = sel.send(&tx, 5);
        let sel = sel.try_wait().expect_err("nobody receives");
        let (_c, w) = counting_waker();
        let mut r = rx.recv_async();
        assert!(poll(&mut r, &w).is_pending());
        let mut done = sel.try_wait().expect("a receive waits");
        assert_eq!(done.send(s), Some(Ok(())));
        assert_eq!(poll(&mut r, &w), Poll::Ready(Ok(5)));
    }

    /// A select parked to send on a rendezvous channel and one parked to receive on it meet:
    /// the receive's registration wakes the sender, whose pass claims the receiver.
    #[test]
    fn a_select_send_meets_a_select_receive_on_a_rendezvous_channel() {
        let (tx, rx) = sync_channel::<u32>(0);
        let (_other_tx, other) = channel::<u32>();
        let (cs, ws) = counting_waker();
        let (cr, wr) = counting_waker();
        let mut sender = Select::new();
        let s = sender.send(&tx, 5);
        let mut sender = sender.wait_async();
        assert!(poll(&mut sender, &ws).is_pending());
        let mut receiver = Select::new();
        let r = receiver.recv(&rx);
        receiver.recv(&other);
        let mut receiver = receiver.wait_async();
        assert!(poll(&mut receiver, &wr).is_pending());
        assert_eq!(cs.0.load(SeqCst), 1, "the waiting receive woke the sender");
        let mut done = ready(
            poll(&mut sender, &ws),
            "a receive waits: the send goes ahead",
        );
        assert_eq!(done.send(s), Some(Ok(())));
        assert_eq!(cr.0.load(SeqCst), 1, "the claimed receiver is woken");
        let mut done = ready(poll(&mut receiver, &wr), "claimed: the receive goes ahead");
        assert_eq!(done.recv(r), Some(Ok(5)));
    }

    /// A `try_send` that claimed a parked select decides its next pass, even if another case
    /// became ready meanwhile; that one's message stays. (Repeated: the pass tries the cases
    /// in a random order, and a pass that ignored the claim would pick the other half the
    /// time.)
    #[test]
    fn a_claim_beats_a_case_that_became_ready_after_it() {
        let (tx, rx) = sync_channel::<u32>(0);
        let (other_tx, other) = channel::<u32>();
        let (_c, w) = counting_waker();
        for _ in 0..50 {
            let mut sel = Select::new();
            sel.recv(&other);
            let r = sel.recv(&rx);
            let mut fut = sel.wait_async();
            assert!(poll(&mut fut, &w).is_pending());
            tx.try_send(3).expect("a select waits to receive: claimed");
            other_tx.send(9).unwrap();
            let mut done = ready(poll(&mut fut, &w), "claimed");
            assert_eq!(done.recv(r), Some(Ok(3)));
            assert_eq!(other.try_recv(), Ok(9));
            assert!(matches!(tx.try_send(4), Err(TrySendError::Full(4))));
        }
    }

    /// A select dropped after a `try_send` claimed it leaves the message for the next receive
    /// and wakes it.
    #[test]
    fn a_claimed_select_dropped_loses_no_message() {
        let (tx, rx) = sync_channel::<u32>(0);
        let (_other_tx, other) = channel::<u32>();
        let (_c, w) = counting_waker();
        let mut sel = Select::new();
        sel.recv(&rx);
        sel.recv(&other);
        let mut fut = sel.wait_async();
        assert!(poll(&mut fut, &w).is_pending());
        // A second select parks on the same receiver (through the shared `&Receiver`).
        let (c2, w2) = counting_waker();
        let mut sel2 = Select::new();
        let r2 = sel2.recv(&rx);
        let mut fut2 = sel2.wait_async();
        assert!(poll(&mut fut2, &w2).is_pending());
        tx.try_send(3).expect("claims the first select");
        drop(fut);
        assert_eq!(c2.0.load(SeqCst), 1, "the wake-up passed on");
        let mut done = ready(poll(&mut fut2, &w2), "the message is there");
        assert_eq!(done.recv(r2), Some(Ok(3)));
    }

    /// A message no parked `recv` is told of wakes the parked selects; one a cancelled `recv`
    /// was told of is passed on to them.
    #[test]
    fn a_message_wakes_a_parked_select() {
        let (tx, rx) = channel::<u32>();
        let (c, w) = counting_waker();
        let mut sel = Select::new();
        let r = sel.recv(&rx);
        let mut fut = sel.wait_async();
        assert!(poll(&mut fut, &w).is_pending());
        tx.send(1).unwrap();
        assert_eq!(c.0.load(SeqCst), 1);
        let mut done = ready(poll(&mut fut, &w), "a message is there");
        assert_eq!(done.recv(r), Some(Ok(1)));
        drop(done);

        let (c, w) = counting_waker();
        let (_cp, wp) = counting_waker();
        let mut plain = rx.recv_async();
        assert!(poll(&mut plain, &wp).is_pending());
        let mut sel = Select::new();
        let r = sel.recv(&rx);
        let mut fut = sel.wait_async();
        assert!(poll(&mut fut, &w).is_pending());
        tx.send(2).unwrap();
        assert_eq!(c.0.load(SeqCst), 0, "the parked recv is told first");
        drop(plain);
        assert_eq!(c.0.load(SeqCst), 1, "the cancelled recv passed it on");
        let mut done = ready(poll(&mut fut, &w), "a message is there");
        assert_eq!(done.recv(r), Some(Ok(2)));
    }

    #[test]
    fn disconnected_cases_are_ready_with_their_errors() {
        let (tx, rx) = channel::<u32>();
        drop(tx);
        let mut sel = Select::new();
        let r = sel.recv(&rx);
        assert_eq!(sel.try_wait().unwrap().recv(r), Some(Err(RecvError)));

        let (tx, rx) = sync_channel::<String>(0);
        drop(rx);
        let mut sel = Select::new();
        let s = sel.send(&tx, "back".to_string());
        let got = sel.try_wait().unwrap().send(s);
        assert!(matches!(got, Some(Err(SendError(v))) if v == "back"));
    }

    #[test]
    fn a_parked_select_is_woken_by_a_disconnection() {
        let (tx, rx) = channel::<u32>();
        let (c, w) = counting_waker();
        let mut sel = Select::new();
        let r = sel.recv(&rx);
        let mut fut = sel.wait_async();
        assert!(poll(&mut fut, &w).is_pending());
        drop(tx);
        assert_eq!(c.0.load(SeqCst), 1);
        let mut done = ready(poll(&mut fut, &w), "disconnected");
        assert_eq!(done.recv(r), Some(Err(RecvError)));

        let (tx, rx) = sync_channel::<u32>(0);
        let (c, w) = counting_waker();
        let mut sel = Select::new();
        let s = sel.send(&tx, 1);
        let mut fut = sel.wait_async();
        assert!(poll(&mut fut, &w).is_pending());
        drop(rx);
        assert_eq!(c.0.load(SeqCst), 1);
        let mut done = ready(poll(&mut fut, &w), "disconnected");
        assert_eq!(done.send(s), Some(Err(SendError(1))));
    }

    /// A bounded send case parked on a full channel is woken when a slot frees, but only
    /// after the plain senders parked before it have theirs.
    #[test]
    fn a_bounded_send_case_waits_for_room_behind_parked_senders() {
        let (tx, rx) = sync_channel::<u32>(1);
        tx.try_send(1).unwrap();
        let (_ca, wa) = counting_waker();
        let mut plain = tx.send_async(2);
        assert!(poll(&mut plain, &wa).is_pending());
        let (c, w) = counting_waker();
        let mut sel = Select::new();
        let s = sel.send(&tx, 3);
        let mut fut = sel.wait_async();
        assert!(poll(&mut fut, &w).is_pending());
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(c.0.load(SeqCst), 0, "the slot is the parked sender's");
        assert_eq!(poll(&mut plain, &wa), Poll::Ready(Ok(())));
        assert!(poll(&mut fut, &w).is_pending());
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(
            c.0.load(SeqCst),
            1,
            "a free slot nobody holds wakes the select"
        );
        let mut done = ready(poll(&mut fut, &w), "room now");
        assert_eq!(done.send(s), Some(Ok(())));
        assert_eq!(rx.try_recv(), Ok(3));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn unsent_values_are_dropped_with_the_outcome() {
        let (tx, _rx) = sync_channel::<Arc<()>>(0);
        let (ta, ra) = channel::<u32>();
        ta.send(1).unwrap();
        let v = Arc::new(());
        let mut sel = Select::new();
        sel.send(&tx, v.clone());
        let r = sel.recv(&ra);
        let mut done = sel.try_wait().expect("the receive is ready");
        assert_eq!(done.recv(r), Some(Ok(1)));
        assert_eq!(Arc::strong_count(&v), 2);
        drop(done);
        assert_eq!(Arc::strong_count(&v), 1);
    }

    /// A parked select's waiters leave the channels when it is dropped.
    #[test]
    fn a_dropped_select_leaves_no_waiter() {
        let (tx, rx) = sync_channel::<u32>(0);
        let (_c, w) = counting_waker();
        let mut sel = Select::new();
        sel.recv(&rx);
        let mut fut = sel.wait_async();
        assert!(poll(&mut fut, &w).is_pending());
        drop(fut);
        assert!(
            matches!(tx.try_send(1), Err(TrySendError::Full(1))),
            "no receive waits any more"
        );
    }

    #[test]
    #[should_panic(expected = "one case of a select only")]
    fn a_channel_twice_in_one_select_panics() {
        let (tx, rx) = sync_channel::<u32>(1);
        let mut sel = Select::new();
        sel.recv(&rx);
        sel.send(&tx, 1);
    }
}
