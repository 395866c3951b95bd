//! Reporting goroutine stack overflows.
//!
//! While a goroutine runs, its worker thread records the goroutine's id and guard region in a
//! `const`-initialised thread-local (readable from a signal handler). The fault handler
//! (`sys::signal`) asks [`classify`] whether a faulting address lies in that guard region; if so
//! it prints
//!
//! ```text
//! gorust: goroutine 42 overflowed its 256 KiB stack; raise it with Builder::stack_size
//! ```
//!
//! and aborts. Any other fault goes to the previous handler (Rust's own reports overflows of
//! thread stacks). Continuing after an overflow is not possible: the goroutine's frames are in
//! an unknown state.

use std::cell::Cell;

#[derive(Clone, Copy)]
pub(crate) struct Running {
    id: u64,
    guard_lo: usize,
    guard_hi: usize,
    size: usize,
}

thread_local! {
    static RUNNING: Cell<Option<Running>> = const { Cell::new(None) };
}

pub(crate) fn install() {
    crate::sys::signal::install(classify);
}

/// Records the goroutine about to be resumed; returns what to restore afterwards.
pub(crate) fn enter(id: u64, guard: (usize, usize, usize)) -> Option<Running> {
    RUNNING.with(|r| {
        r.replace(Some(Running {
            id,
            guard_lo: guard.0,
            guard_hi: guard.1,
            size: guard.2,
        }))
    })
}

pub(crate) fn leave(prev: Option<Running>) {
    RUNNING.with(|r| r.set(prev));
}

/// Called from the signal handler: async-signal-safe (no allocation, no locks).
fn classify(addr: usize, out: &mut [u8]) -> Option<usize> {
    let running = RUNNING.try_with(|r| r.get()).ok()??;
    if addr < running.guard_lo || addr >= running.guard_hi {
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
        let prev = enter(7, (0x1000, 0x5000, 256 * 1024));
        let mut buf = [0u8; 256];
        let n = classify(0x2000, &mut buf).expect("in guard");
        let msg = std::str::from_utf8(&buf[..n]).unwrap();
        assert_eq!(
            msg,
            "gorust: goroutine 7 overflowed its 256 KiB stack; raise it with Builder::stack_size\n"
        );
        assert!(classify(0x5000, &mut buf).is_none());
        assert!(classify(0x0fff, &mut buf).is_none());
        leave(prev);
        assert!(classify(0x2000, &mut buf).is_none());
    }
}
