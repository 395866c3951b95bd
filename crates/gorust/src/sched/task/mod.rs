//! The task cell: a heap-allocated future with a header that the scheduler handles untyped.
//!
//! ```text
//!  Cell<F, S> (repr(C), one allocation per task)
//!  +---------------------------+
//!  | Header                    |  state word, vtable, owned-list links, home worker, kind,
//!  |                           |  started (goroutine's first poll begun), id
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
//! owned-list shard lock; `home` is set at creation for a goroutine spawned bound to its
//! worker (`go_here`), and otherwise bound once, by a compare-exchange from `UNBOUND`: by the
//! first runner of a goroutine before its first park (wakers read it after the `AcqRel`
//! transition that publishes the park), or by a shutdown step that cancels it unstarted;
//! `started` is a relaxed atomic that only a goroutine's own worker sets, at its first poll; the
//! shutdown steps read it to cancel the goroutines that never started before they unwind the
//! parked ones (exact on that worker's thread, or once that worker is gone).
//!
//! Memory: cells come from size-class slabs (`slab.rs`): a free list per thread and class, a
//! depot that moves freed cells between threads in batches, and chunks of up to 2 MiB for
//! fresh cells, so neither bursts of spawns nor spawn/join loops go through `malloc`.
//!
//! Rejected: `Arc<dyn Task>` (a fat pointer cannot be a `RawWaker` without a second allocation
//! per task, and separate atomics for flags and count need multi-word protocols);
//! a `Mutex<Stage>` (a lock per poll on the hottest path).

mod join;
mod raw;
mod slab;
pub(crate) mod state;

pub use join::{JoinError, JoinHandle};
pub(crate) use raw::{new_task, Header, Kind, Notified, Schedule, TaskRef, UNBOUND};
pub(crate) use slab::release_local as release_local_cells;
