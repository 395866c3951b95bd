//! A [`Select`](crate::sync::Select)'s cases on these channels: the `Case` trait of
//! `select.rs` over a channel's state, kept beside it because they read its private fields.
//!
//! A case holds the channel's lock between `lock` and `unlock` (the guard lives in the case,
//! so the engine can hold every case's lock at once), tries the operation with the same code
//! as `try_recv`/`try_send`, and parks as a `SelectWaiter` in `select_receivers` or
//! `select_senders`. Who wakes those is in `mpsc.rs` (`notify_receiver`, `notify_sender`,
//! `receive_waits`, the disconnections); the rules are in `select.rs`'s header.

use std::any::Any;
use std::task::Waker;

use super::{Chan, State};
use super::{RecvError, SendError, TryRecvError, TrySendError};
use crate::loom::sync::{Arc, MutexGuard};
use crate::sync::select::{Case, SelectWaiter, Token};

/// A case's channel and, between `lock` and `unlock`, its lock.
pub(super) struct ChanLock<'a, T> {
    chan: &'a Chan<T>,
    guard: Option<MutexGuard<'a, State<T>>>,
}

// SAFETY: a `MutexGuard` is `!Send` because a lock must be released by the thread that took
// it. `guard` is `Some` only between `lock` and `unlock`, which `select.rs`'s `Locks` calls
// when it is made and when it is dropped, within one synchronous call (`Engine::pass` or
// `Engine::drop`), on one thread, with no suspension point between them, and on an unwind
// too (its `Drop`); so a case that moves between threads (a select future sent with its
// task) always holds `None` there. `&Chan<T>` is `Send` when `T` is, since
// `Chan<T>` is then `Sync` (its state is behind a mutex).
unsafe impl<T: Send> Send for ChanLock<'_, T> {}

impl<'a, T> ChanLock<'a, T> {
    pub(super) fn new(chan: &'a Chan<T>) -> Self {
        ChanLock { chan, guard: None }
    }

    fn id(&self) -> usize {
        std::ptr::from_ref(self.chan).addr()
    }

    fn lock(&mut self) {
        self.guard = Some(self.chan.lock());
    }

    fn unlock(&mut self) {
        self.guard = None;
    }

    /// The channel and its state: only between `lock` and `unlock`.
    fn locked(&mut self) -> (&'a Chan<T>, &mut State<T>) {
        match &mut self.guard {
            Some(g) => (self.chan, g),
            None => super::corrupt("a select case used without its lock"),
        }
    }
}

/// A receive case.
pub(super) struct RecvOp<'a, T> {
    pub(super) at: ChanLock<'a, T>,
    pub(super) result: Option<Result<T, RecvError>>,
}

/// A send case: `value` until it is sent (or handed back in `result`).
pub(super) struct SendOp<'a, T> {
    pub(super) at: ChanLock<'a, T>,
    pub(super) value: Option<T>,
    pub(super) result: Option<Result<(), SendError<T>>>,
}

/// Moves the wakers a channel operation gathered under the lock (`a`, `b` and the channel's
/// `select_wakes`) into the select's list, woken once the select has released every lock.
fn gather<T>(st: &mut State<T>, a: Option<Waker>, b: Option<Waker>, out: &mut Vec<Waker>) {
    out.extend(a);
    out.extend(b);
    out.append(&mut st.select_wakes);
}

fn withdraw_from(list: &mut Vec<SelectWaiter>, token: &Arc<Token>) {
    list.retain(|w| !Arc::ptr_eq(&w.token, token));
}

impl<T: 'static> Case for RecvOp<'_, T> {
    fn chan_id(&self) -> usize {
        self.at.id()
    }

    fn lock(&mut self) {
        self.at.lock();
    }

    fn unlock(&mut self) {
        self.at.unlock();
    }

    fn try_complete(&mut self, out: &mut Vec<Waker>) -> bool {
        let (chan, st) = self.at.locked();
        let outcome = match chan.try_recv_locked(st) {
            Ok((v, a, b)) => {
                gather(st, a, b, out);
                Ok(v)
            }
            Err(TryRecvError::Disconnected) => Err(RecvError),
            Err(TryRecvError::Empty) => return false,
        };
        self.result = Some(outcome);
        true
    }

    fn register(&mut self, token: &Arc<Token>, case: usize, waker: &Waker, out: &mut Vec<Waker>) {
        let (chan, st) = self.at.locked();
        st.select_receivers.push(SelectWaiter {
            token: token.clone(),
            case,
            waker: waker.clone(),
        });
        st.receive_waits(chan);
        gather(st, None, None, out);
    }

    fn withdraw(&mut self, token: &Arc<Token>) {
        withdraw_from(&mut self.at.locked().1.select_receivers, token);
    }

    fn pass_on(&mut self, out: &mut Vec<Waker>) {
        let st = self.at.locked().1;
        if !st.queue.is_empty() {
            let w = st.notify_receiver();
            gather(st, w, None, out);
        }
    }

    fn result(&mut self) -> &mut dyn Any {
        &mut self.result
    }
}

impl<T: 'static> Case for SendOp<'_, T> {
    fn chan_id(&self) -> usize {
        self.at.id()
    }

    fn lock(&mut self) {
        self.at.lock();
    }

    fn unlock(&mut self) {
        self.at.unlock();
    }

    fn try_complete(&mut self, out: &mut Vec<Waker>) -> bool {
        let Some(t) = self.value.take() else {
            return false;
        };
        let (chan, st) = self.at.locked();
        let outcome = match chan.try_send_locked(st, t) {
            Ok(w) => {
                gather(st, w, None, out);
                Ok(())
            }
            Err(TrySendError::Disconnected(t)) => Err(SendError(t)),
            Err(TrySendError::Full(t)) => {
                self.value = Some(t);
                return false;
            }
        };
        self.result = Some(outcome);
        true
    }

    fn register(&mut self, token: &Arc<Token>, case: usize, waker: &Waker, _out: &mut Vec<Waker>) {
        self.at.locked().1.select_senders.push(SelectWaiter {
            token: token.clone(),
            case,
            waker: waker.clone(),
        });
    }

    fn withdraw(&mut self, token: &Arc<Token>) {
        withdraw_from(&mut self.at.locked().1.select_senders, token);
    }

    fn pass_on(&mut self, _out: &mut Vec<Waker>) {
        // Only receive cases are claimed.
    }

    fn result(&mut self) -> &mut dyn Any {
        &mut self.result
    }
}
