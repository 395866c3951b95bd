//! The global inject queue: tasks scheduled from outside a worker, and local overflow.
//!
//! A `Mutex<VecDeque>` with an atomic length so that workers can skip the lock when it is
//! empty. Only unbound tasks enter it (a started goroutine goes to its home worker's inbox).
//! Once closed at shutdown, pushes are refused and the task reference is dropped.
//!
//! Rejected: a lock-free intrusive MPSC list (Vyukov). The lock is taken once per batch on the
//! overflow path and once per remote spawn; measured contention does not justify the subtlety.

use std::collections::VecDeque;

use super::task::Notified;
use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::Mutex;

pub(crate) struct Inject {
    queue: Mutex<Queue>,
    len: AtomicUsize,
}

struct Queue {
    tasks: VecDeque<Notified>,
    closed: bool,
}

impl Inject {
    pub(crate) fn new() -> Self {
        Inject {
            queue: Mutex::new(Queue {
                tasks: VecDeque::new(),
                closed: false,
            }),
            len: AtomicUsize::new(0),
        }
    }

    /// Tasks queued; a hint (may be stale by the time it is read).
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues a task; returns `false` (and drops it) if closed.
    pub(crate) fn push(&self, task: Notified) -> bool {
        self.push_batch(std::iter::once(task))
    }

    pub(crate) fn push_batch(&self, tasks: impl IntoIterator<Item = Notified>) -> bool {
        let mut q = crate::loom::lock(&self.queue);
        if q.closed {
            drop(q);
            // Dropping the references outside the lock: a last reference deallocates.
            tasks.into_iter().for_each(drop);
            return false;
        }
        q.tasks.extend(tasks);
        // Release pairs with the Acquire in `len`: a worker that sees the length sees the tasks.
        self.len.store(q.tasks.len(), Ordering::Release);
        true
    }

    pub(crate) fn pop(&self) -> Option<Notified> {
        if self.is_empty() {
            return None;
        }
        let mut q = crate::loom::lock(&self.queue);
        let t = q.tasks.pop_front();
        self.len.store(q.tasks.len(), Ordering::Release);
        t
    }

    /// Takes up to `max` tasks.
    pub(crate) fn pop_n(&self, max: usize) -> Vec<Notified> {
        if self.is_empty() || max == 0 {
            return Vec::new();
        }
        let mut q = crate::loom::lock(&self.queue);
        let n = max.min(q.tasks.len());
        let out: Vec<Notified> = q.tasks.drain(..n).collect();
        self.len.store(q.tasks.len(), Ordering::Release);
        out
    }

    /// Refuses further pushes and returns what was queued.
    pub(crate) fn close(&self) -> Vec<Notified> {
        let mut q = crate::loom::lock(&self.queue);
        q.closed = true;
        self.len.store(0, Ordering::Release);
        q.tasks.drain(..).collect()
    }
}
