//! The netpoller: goroutines and futures waiting on file descriptors.
//!
//! Every worker has one [`Poller`]: an epoll instance (the same one it parks in), an eventfd to
//! wake it, and a slab of the poll descriptors registered with it. A descriptor is registered
//! once, edge-triggered for `EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLPRI` (urgent data gets the read
//! slot a final edge, `slot.rs`), with the poller of the worker that
//! first has to wait on it (for a goroutine, its home), so readiness wakes tasks on their own
//! worker without cross-thread traffic. There is no `epoll_ctl` per wait.
//!
//! Lifecycle of a wait (Go's `netpollblock`/`netpollready`):
//! 1. An I/O call (read, accept, …) is tried; on `EAGAIN` the caller waits on the descriptor's
//!    read or write [`WaitSlot`](slot::WaitSlot).
//! 2. The worker's poller finds the event: when it parks (`epoll_pwait2` bounded by its next
//!    timer), every 61 scheduler ticks when busy, or when it runs out of local work. A worker
//!    whose poller has not been polled for 10 ms is polled by the monitor thread.
//! 3. The event's token (slab index and generation, never a pointer) is looked up; a stale
//!    generation (the descriptor was closed and the slot reused) is dropped. The slot is set
//!    READY and its waiters are woken; they retry the call. (The write slot only once a write
//!    on the descriptor has had to wait: `desc.rs`, "Watched writes".)
//!
//! Who touches what: the slab is behind a mutex taken once per batch of events and once per
//! (de)registration; wait slots are atomic with a lock for their waker lists; deadlines and
//! `flags` (closing, orphaned; and two write bits, see `desc.rs`) are atomics published before
//! `wake_all`.

pub(crate) mod deadline_timer;
pub(crate) mod desc;
pub(crate) mod poller;
pub(crate) mod slot;
pub(crate) mod wait;
pub(crate) mod write_lock;

pub(crate) use poller::Poller;
