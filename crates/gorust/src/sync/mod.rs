//! Goroutine-aware synchronisation: channels ([`mpsc`]), Go's `select` over them
//! ([`Select`]), [`WaitGroup`] and [`Mutex`].
//!
//! Waiting parks the *goroutine*, not the worker thread, so the worker runs other goroutines
//! meanwhile (Go's `chan`, `sync.WaitGroup` and `sync.Mutex`). The channels have
//! `std::sync::mpsc`'s names, signatures and error types: porting code that uses them means
//! changing the import. [`Mutex`] has `std::sync::Mutex`'s methods without poisoning (as Go's
//! and tokio's mutexes): `lock` returns the guard and `try_lock` an `Option`, so ported code
//! also drops the `.unwrap()` after them. [`WaitGroup`] is Go's. Every type works from three
//! places:
//!
//! | caller | waiting method (`recv`, `SyncSender::send`, `lock`, `wait`, `Select::wait`) | async method (`recv_async`, …) |
//! |---|---|---|
//! | a goroutine ([`crate::go`]) | parks the goroutine | `.await` it, or pass it to [`crate::block_on`] |
//! | a task ([`crate::spawn`]) | panics if it would have to wait (it would block the worker; a free lock or a queued message is taken at once); use the async face | `.await` |
//! | a plain thread | blocks the thread | pass it to [`crate::block_on`] |
//!
//! Methods that never wait (`Sender::send` on an unbounded channel, `try_recv`, `try_send`,
//! `try_lock`, `add`, `done`) work from anywhere, futures included.
//!
//! Cooperative budget ([`crate::coop`]): every poll of a waiting operation spends one unit
//! before it looks (as tokio's primitives do), and so does `Sender::send` in a goroutine; when
//! the budget is spent the operation yields instead of completing. So a goroutine that receives
//! from a channel that always has a message, or locks an uncontended mutex in a loop, still
//! lets the others on its worker run. A poll that ends `Pending` without progress gives its
//! unit back, so a future polling many waiting operations at once reaches every one. The
//! `try_*` methods spend nothing. A blocking method called from a future on a worker never
//! yields: the channel methods with a fast path (`recv`, a buffered `send`) spend a unit there,
//! as the future would, and when none is left poll the operation once without a budget (that
//! poll cannot wait); the others (`Mutex::lock`, `WaitGroup::wait`) make that one
//! unconstrained poll at once and spend nothing.
//!
//! # The `std::sync::Mutex` pitfall
//!
//! Do not hold a `std::sync::Mutex` (or `RwLock`, or any lock that blocks the thread) across
//! anything that parks a goroutine: a channel `recv`, a `sleep`, a join, network I/O, or a
//! `gorust::sync::Mutex::lock`. While the goroutine is parked its worker runs other
//! goroutines; if one of them tries the same `std` lock it blocks the *worker thread*, and the
//! goroutine that would release the lock can be queued behind it on that very worker (a started
//! goroutine never changes thread), so neither ever runs again: a deadlock that Go programs
//! cannot have. With two workers, two such goroutines can freeze the whole runtime. Use
//! [`Mutex`] from this module for any lock held across a park; a `std` lock is fine for short
//! critical sections that never park.
//!
//! Design, shared by the channel, mutex and wait group: each keeps its waiters in a `WaitList`
//! (`waitlist.rs`) behind one short internal lock (`crate::loom::sync::Mutex`, so that loom can
//! model it); a wait is a future that registers its task's waker in the list and removes it
//! when dropped, so every async face is cancellation-safe. Wakers are always woken after the
//! internal lock is released, and nobody is woken when nobody waits. A [`Select`] parks
//! differently, as an entry in each of its channels' lists of selects, taken under all their
//! locks at once (`select.rs`).

pub mod mpsc;
mod mutex;
mod select;
mod waitgroup;
pub(crate) mod waitlist;

/// Loom models of the wake-up protocols above (`loom_sync_*`).
#[cfg(all(test, loom))]
mod loom_tests;

pub use mutex::{Lock, Mutex, MutexGuard};
pub use select::{RecvCase, Select, SelectFuture, Selected, SendCase};
pub use waitgroup::{Wait, WaitGroup};

/// `true` when the current thread is neither running a goroutine nor a worker that still runs
/// tasks: a blocking call here blocks the thread, so it first tries the operation without
/// building a future (which, on such a thread, costs an allocation in `block_on`).
pub(crate) fn on_plain_thread() -> bool {
    !crate::goroutine::in_goroutine() && !crate::sched::worker::is_serving()
}
