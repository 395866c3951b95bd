//! The owned-task list: every live task is linked here so that runtime shutdown can cancel it.
//!
//! An intrusive doubly-linked list through `Header::owned`, split into shards (by task id) so
//! that spawns and completions on different workers rarely share a lock. The list holds one
//! counted reference per task; `remove` at completion hands it back to the completer.
//!
//! Shutdown (`close` then `drain_matching`): once closed, `insert` refuses new tasks; each
//! worker then removes the tasks it must cancel (its bound goroutines, and any unbound task) and
//! cancels them on its own thread, so a started goroutine is unwound only on its home thread.
//!
//! Rejected: a `HashMap<id, Task>` (an allocation and a hash per spawn); one global lock (every
//! spawn and completion on every worker would contend on it). Measured in session 27 with
//! `compare --child gorust spawn_all 2 1000000`, five interleaved pairs each, where the shard
//! locks' cache-line transfers are ~10% of the run: each shard padded to its own 128 bytes
//! (5% slower: 4 KiB of lock lines to keep instead of 1 KiB; two shards per line cost less
//! than they share) and a shard per block of 1,024 ids, so that one worker's spawns share a
//! shard, close to a list per worker (4% slower: the thief's removals then meet the spawner's
//! inserts on the same lock).

use std::ptr::NonNull;

use super::task::{Header, TaskRef};
use crate::loom::sync::atomic::{AtomicBool, Ordering};
use crate::loom::sync::Mutex;

const SHARDS: usize = 32;

pub(crate) struct OwnedTasks {
    shards: Box<[Mutex<List>]>,
    closed: AtomicBool,
}

struct List {
    head: Option<NonNull<Header>>,
    closed: bool,
    /// Tasks linked here. Counted under the shard's lock, not in a shared atomic: a locked
    /// increment and decrement per task were ~5% of a spawn+join, for a figure only
    /// `metrics()` reads.
    len: usize,
}

// SAFETY: the raw pointers are only followed under the shard's lock.
unsafe impl Send for List {}

impl OwnedTasks {
    pub(crate) fn new() -> Self {
        OwnedTasks {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(List {
                        head: None,
                        closed: false,
                        len: 0,
                    })
                })
                .collect(),
            closed: AtomicBool::new(false),
        }
    }

    fn shard(&self, task: TaskRef) -> &Mutex<List> {
        &self.shards[task.header().id as usize % SHARDS]
    }

    /// Number of live tasks (takes every shard's lock in turn: for metrics, not hot paths).
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| crate::loom::lock(s).len).sum()
    }

    /// Links a new task. Returns `false` if the list is closed (the caller must cancel it).
    pub(crate) fn insert(&self, task: TaskRef) -> bool {
        let mut list = crate::loom::lock(self.shard(task));
        if list.closed {
            return false;
        }
        let h = task.header();
        h.owned.prev.with_mut(|p| {
            // SAFETY: links are only touched under this shard's lock.
            unsafe { *p = None }
        });
        h.owned.next.with_mut(|n| {
            // SAFETY: as above.
            unsafe { *n = list.head }
        });
        if let Some(old) = list.head {
            // SAFETY: `old` is linked, hence alive (the list holds a reference).
            unsafe { old.as_ref() }.owned.prev.with_mut(|p| {
                // SAFETY: under the lock.
                unsafe { *p = Some(task.0) }
            });
        }
        list.head = Some(task.0);
        list.len += 1;
        true
    }

    /// Unlinks a completing task. Returns `true` if it was linked.
    pub(crate) fn remove(&self, task: TaskRef) -> bool {
        let mut list = crate::loom::lock(self.shard(task));
        // SAFETY: under the lock; the caller holds a reference to `task`.
        let linked = unsafe { unlink(&mut list, task.0) };
        if linked {
            list.len -= 1;
        }
        linked
    }

    /// Refuses further inserts.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        for s in self.shards.iter() {
            crate::loom::lock(s).closed = true;
        }
    }

    /// Unlinks every task for which `pred` holds and returns them, each carrying the list's
    /// reference.
    pub(crate) fn drain_matching(&self, mut pred: impl FnMut(&Header) -> bool) -> Vec<TaskRef> {
        let mut out = Vec::new();
        for s in self.shards.iter() {
            let mut list = crate::loom::lock(s);
            let mut cur = list.head;
            while let Some(p) = cur {
                // SAFETY: linked nodes are alive; links are read under the lock.
                let h = unsafe { p.as_ref() };
                // SAFETY: as above.
                cur = h.owned.next.with(|n| unsafe { *n });
                if pred(h) {
                    // SAFETY: under the lock.
                    unsafe { unlink(&mut list, p) };
                    list.len -= 1;
                    out.push(TaskRef(p));
                }
            }
        }
        out
    }
}

/// # Safety
///
/// Called under the list's lock with a task that is alive.
unsafe fn unlink(list: &mut List, p: NonNull<Header>) -> bool {
    // SAFETY: per the contract.
    let h = unsafe { p.as_ref() };
    // SAFETY: under the lock.
    let prev = h.owned.prev.with(|x| unsafe { *x });
    // SAFETY: under the lock.
    let next = h.owned.next.with(|x| unsafe { *x });
    match prev {
        // SAFETY: a linked neighbour is alive; under the lock.
        Some(pr) => unsafe { pr.as_ref() }
            .owned
            .next
            .with_mut(|x| unsafe { *x = next }),
        None => {
            if list.head != Some(p) {
                return false; // not linked
            }
            list.head = next;
        }
    }
    if let Some(nx) = next {
        // SAFETY: a linked neighbour is alive; under the lock.
        unsafe { nx.as_ref() }
            .owned
            .prev
            .with_mut(|x| unsafe { *x = prev });
    }
    // SAFETY: under the lock.
    h.owned.prev.with_mut(|x| unsafe { *x = None });
    // SAFETY: under the lock.
    h.owned.next.with_mut(|x| unsafe { *x = None });
    true
}
