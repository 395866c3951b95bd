//! The synchronisation facade.
//!
//! Every atomic, lock and shared cell used by the scheduler's state machines (run queues, task
//! state word, idle protocol, parker) is imported from here rather than from `std`. Under
//! `RUSTFLAGS="--cfg loom"` the same code is compiled against [loom]'s model-checked types and the
//! models (`loom_*` tests: `sched/loom_tests.rs`, `buffer/loom_tests.rs`, and beside the code in
//! `netpoll`, `time`, `sync` and `eventloop`) explore every interleaving.
//!
//! The cell type follows loom's API (`with` / `with_mut` taking a closure over a raw pointer) so
//! that loom can check every access; in normal builds it is a zero-cost wrapper over
//! `std::cell::UnsafeCell`.
//!
//! [loom]: https://docs.rs/loom

#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) use loom::{cell, sync, thread};

#[cfg(not(loom))]
pub(crate) mod sync {
    pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::{
            fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
        };
    }
}

#[cfg(not(loom))]
#[allow(unused_imports)]
pub(crate) mod thread {
    pub(crate) use std::thread::{current, spawn, yield_now};
}

#[cfg(not(loom))]
pub(crate) mod cell {
    /// `std::cell::UnsafeCell` with loom's closure-based access API.
    #[derive(Debug)]
    #[repr(transparent)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }

        #[inline(always)]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

/// Locks a mutex, ignoring poisoning: every critical section in the runtime leaves its data
/// consistent before anything that can panic, so a poisoned lock still guards valid data.
pub(crate) fn lock<T>(m: &sync::Mutex<T>) -> sync::MutexGuard<'_, T> {
    #[cfg(loom)]
    {
        m.lock().unwrap()
    }
    #[cfg(not(loom))]
    {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }
}
