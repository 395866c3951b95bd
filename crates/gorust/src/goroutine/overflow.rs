//! Reporting goroutine stack overflows.
//!
//! While a goroutine runs (and while a parked one is unwound by its drop), its worker thread
//! records the goroutine's id and guard region in a `const`-initialised thread-local (readable
//! from a signal handler). The fault handler (`sys::signal`) asks [`classify`] whether a
//! faulting address lies in that guard region; if so it prints
//!
//! ```text
//! gorust: goroutine 42 overflowed its 256 KiB stack; raise it with Builder::stack_size
//! ```
//!
//! and aborts. Any other fault goes to the previous handler (Rust's own reports overflows of
//! thread stacks). Continuing after an overflow is not possible: the goroutine's frames are in
//! an unknown state.

use std::cell::Cell;

/// What the handler needs to know about a goroutine; lives in the goroutine's task cell,
/// which does not move while the goroutine runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GuardInfo {
    pub(crate) id: u64,
    /// Lowest address of the guard, which is `stack::guard_len()` bytes long; 0 before the
    /// goroutine has a stack.
    pub(crate) guard_lo: usize,
    /// Usable stack bytes.
    pub(crate) size: usize,
}

thread_local! {
    /// The running goroutine's `GuardInfo`, or null. A pointer, so that entering and leaving a
    /// goroutine costs one thread-local store each.
    static RUNNING: Cell<*const GuardInfo> = const { Cell::new(std::ptr::null()) };
}

pub(crate) fn install() {
    crate::sys::signal::install(classify);
}

/// Records the goroutine about to be resumed. `info` must stay in place until `leave`.
#[inline]
pub(crate) fn enter(info: &GuardInfo) {
    RUNNING.with(|r| r.set(info));
}

/// The goroutine was suspended or finished.
#[inline]
pub(crate) fn leave() {
    RUNNING.with(|r| r.set(std::ptr::null()));
}

/// Runs `f` with `info` recorded as the running goroutine's, then records again what was
/// there before (null on a worker, or the goroutine that is dropping this one), also if `f`
/// panics. For the unwind of a parked goroutine (`Goroutine::drop`): its destructors run on
/// its stack while no resume has called `enter`.
pub(crate) fn entered<R>(info: &GuardInfo, f: impl FnOnce() -> R) -> R {
    struct Restore(*const GuardInfo);
    impl Drop for Restore {
        fn drop(&mut self) {
            RUNNING.with(|r| r.set(self.0));
        }
    }
    let _restore = Restore(RUNNING.with(|r| r.replace(info)));
    f()
}

/// Called from the signal handler: async-signal-safe (no allocation, no locks).
fn classify(addr: usize, out: &mut [u8]) -> Option<usize> {
    let p = RUNNING.try_with(|r| r.get()).ok()?;
    // SAFETY: a non-null RUNNING points at the running (or unwinding) goroutine's GuardInfo,
    // which lives in its task cell until after `leave` or the end of `entered` (the handler
    // interrupts this very thread).
    let running = unsafe { p.as_ref() }?;
    // `guard_len` reads the page size, a plain load here: a stack was made, so it is known.
    if addr < running.guard_lo || addr - running.guard_lo >= super::stack::guard_len() {
        return None;
    }
    let mut w = Writer { buf: out, len: 0 };
    w.put(b"gorust: goroutine ");
    w.num(running.id);
    w.put(b" overflowed its ");
    w.num((running.size / 1024) as u64);
    w.put(b" KiB stack; raise it with Builder::stack_size\n");
    Some(w.len)
}

struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, s: &[u8]) {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }

    fn num(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.put(&digits[i..]);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn classifies_only_the_running_guard() {
        let info = GuardInfo {
            id: 7,
            guard_lo: 0x1000,
            size: 256 * 1024,
        };
        let guard_hi = 0x1000 + super::super::stack::guard_len();
        enter(&info);
        let mut buf = [0u8; 256];
        let n = classify(0x2000, &mut buf).expect("in guard");
        let msg = std::str::from_utf8(&buf[..n]).unwrap();
        assert_eq!(
            msg,
            "gorust: goroutine 7 overflowed its 256 KiB stack; raise it with Builder::stack_size\n"
        );
        assert!(classify(guard_hi - 1, &mut buf).is_some());
        assert!(classify(guard_hi, &mut buf).is_none());
        assert!(classify(0x0fff, &mut buf).is_none());
        leave();
        assert!(classify(0x2000, &mut buf).is_none());
    }
}
