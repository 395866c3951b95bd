//! The task cell: a heap-allocated future with a header that the scheduler handles untyped.
//!
//! ```text
//!  Cell<F, S> (repr(C), one allocation per task)
//!  +---------------------------+
//!  | Header                    |  state word, vtable, owned-list links, home worker, id, kind
//!  +---------------------------+
//!  | scheduler: S              |  where wakers send the task
//!  | stage: Running(F)         |  exclusive to whoever holds RUNNING;
//!  |      | Finished(output)   |  to the JoinHandle once COMPLETE is observed
//!  |      | Consumed           |
//!  | join_waker: Option<Waker> |  ownership passes by the JOIN_WAKER bit (see `state`)
//!  +---------------------------+
//! ```
//!
//! Handles: [`Notified`] is one counted reference that means "this task must be polled" and is
//! what run queues hold; [`JoinHandle`] reads the output; a [`std::task::Waker`] is one counted
//! reference with a static vtable (cloning is an increment, waking allocates nothing).
//!
//! Who touches what: `state` is atomic; `stage` only under `RUNNING` (or after `COMPLETE`, by
//! the JoinHandle, or by the completer when nobody will join); `owned` links only under the
//! owned-list shard lock; `home` is written once, by the first runner of a goroutine, before its
//! first park, and read by wakers after the `AcqRel` transition that publishes the park.
//!
//! Memory: cells come from a per-thread cache of freed cells by size class (`cache.rs`, Go's
//! free list of dead goroutines), so bursts of spawns do not go through `malloc` each time.
//!
//! Rejected: `Arc<dyn Task>` (a fat pointer cannot be a `RawWaker` without a second allocation
//! per task, and separate atomics for flags and count need multi-word protocols);
//! a `Mutex<Stage>` (a lock per poll on the hottest path).

mod cache;
mod join;
mod raw;
pub(crate) mod state;

pub use join::{JoinError, JoinHandle, CANCELLED_MESSAGE};
pub(crate) use raw::{new_task, Header, Kind, Notified, Schedule, TaskRef, UNBOUND};
