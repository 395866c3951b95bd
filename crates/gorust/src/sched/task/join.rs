//! `JoinHandle`: the owner's side of a task's output.

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::raw::TaskRef;

/// Why a task produced no value.
pub enum JoinError {
    /// The task panicked; this is the payload.
    Panic(Box<dyn Any + Send + 'static>),
    /// The runtime shut down before the task finished.
    Cancelled,
}

impl JoinError {
    /// As a `std::thread::Result` error: the panic payload, or a `&'static str` saying the task
    /// was cancelled.
    pub fn into_payload(self) -> Box<dyn Any + Send + 'static> {
        match self {
            JoinError::Panic(p) => p,
            JoinError::Cancelled => Box::new(CANCELLED_MESSAGE),
        }
    }
}

/// The payload `join` returns for a task cancelled by runtime shutdown.
pub(crate) const CANCELLED_MESSAGE: &str =
    "gorust: the task was cancelled because its runtime shut down";

impl std::fmt::Debug for JoinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JoinError::Panic(_) => f.write_str("JoinError::Panic(..)"),
            JoinError::Cancelled => f.write_str("JoinError::Cancelled"),
        }
    }
}

/// Owns the right to a goroutine's or task's result.
///
/// As a future, it resolves to `std::thread::Result<T>`: `Ok(value)`, or `Err(payload)` if the
/// task panicked (the payload `panic!` was given) or was cancelled at runtime shutdown. Dropping
/// the handle detaches the task; it keeps running.
pub struct JoinHandle<T> {
    raw: TaskRef,
    _p: PhantomData<T>,
}

// SAFETY: the handle only reads the output (T: Send) after the task completed.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: a shared handle gives no access to anything.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> Unpin for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    pub(crate) fn from_raw(raw: TaskRef) -> Self {
        JoinHandle {
            raw,
            _p: PhantomData,
        }
    }

    /// The task's id (goroutines: the id printed by stack-overflow reports and traces).
    pub fn id(&self) -> u64 {
        self.raw.header().id
    }

    /// `true` once the task has finished (its result is ready).
    pub fn is_finished(&self) -> bool {
        self.raw.header().state.load().is_complete()
    }

    /// Waits for the task and returns its result, or its panic's payload.
    ///
    /// Inside a goroutine this parks the goroutine; on any other thread it blocks the thread.
    pub fn join(self) -> std::thread::Result<T> {
        crate::block_on(self)
    }

    pub(crate) fn poll_result(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>> {
        let mut out = Poll::Pending;
        let h = self.raw.header();
        h.try_read_output(self.raw.0, &mut out, cx.waker());
        out
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = std::thread::Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.poll_result(cx)
            .map(|r| r.map_err(JoinError::into_payload))
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // SAFETY: the handle's own reference, given up once.
        unsafe { self.raw.header().drop_join_handle(self.raw.0) }
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .finish()
    }
}
