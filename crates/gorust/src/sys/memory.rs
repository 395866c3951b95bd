//! Virtual memory for goroutine stacks (reserve, guard, release, unreserve) and for task cells
//! (chunks).

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, Ordering};

use super::syscall;

/// `madvise` advice that installs guard markers without splitting the mapping (Linux 6.13).
const MADV_GUARD_INSTALL: libc::c_int = 102;

pub(crate) fn page_size() -> usize {
    // Read once: every goroutine's stack top is computed from it (`GuardedStack::base`).
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if n <= 0 || !(n as usize).is_power_of_two() {
            4096
        } else {
            n as usize
        }
    })
}

/// log2 of [`page_size`].
pub(crate) fn page_shift() -> u32 {
    page_size().trailing_zeros()
}

/// Reserves `len` bytes of zeroed, readable and writable memory. Pages are backed lazily, and
/// no swap is reserved, so a large reservation costs address space, not memory.
pub(crate) fn reserve(len: usize) -> io::Result<NonNull<u8>> {
    map_anonymous(len, libc::MAP_NORESERVE | libc::MAP_STACK)
}

/// Maps `len` bytes (a multiple of the page size) of zeroed, readable and writable memory for
/// task cells. Pages are backed at first touch.
pub(crate) fn map_chunk(len: usize) -> io::Result<NonNull<u8>> {
    map_anonymous(len, 0)
}

fn map_anonymous(len: usize, flags: libc::c_int) -> io::Result<NonNull<u8>> {
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches no
    // existing memory.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flags,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}

/// Unmaps `[addr, addr+len)`, a whole reservation: for one whose stacks could not be set up.
///
/// # Safety
///
/// The range must be a whole mapping made by [`reserve`], and nothing may refer to it any more.
pub(crate) unsafe fn unreserve(addr: NonNull<u8>, len: usize) {
    // SAFETY: the caller guarantees the range is a mapping of ours that nobody uses. Its only
    // error, `EINVAL`, cannot occur for a range `reserve` returned: nothing to report.
    let _ = syscall!(munmap(addr.as_ptr().cast(), len));
}

/// How guard pages are made on this kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GuardKind {
    /// `MADV_GUARD_INSTALL`: no extra memory mapping per guard.
    Marker,
    /// `mprotect(PROT_NONE)`: each guard splits the mapping and costs a `vm.max_map_count` entry.
    Protect,
}

static GUARD_KIND: AtomicU8 = AtomicU8::new(0); // 0 unknown, 1 marker, 2 protect

/// Makes `[addr, addr+len)` fault on any access.
///
/// # Safety
///
/// The range must lie inside a mapping made by [`reserve`] and hold nothing anyone reads.
pub(crate) unsafe fn guard(addr: NonNull<u8>, len: usize) -> io::Result<GuardKind> {
    if GUARD_KIND.load(Ordering::Relaxed) != 2 {
        // SAFETY: the caller guarantees the range is ours and unused.
        let r = unsafe { libc::madvise(addr.as_ptr().cast(), len, MADV_GUARD_INSTALL) };
        if r == 0 {
            GUARD_KIND.store(1, Ordering::Relaxed);
            return Ok(GuardKind::Marker);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINVAL) {
            return Err(err);
        }
        GUARD_KIND.store(2, Ordering::Relaxed);
    }
    syscall!(mprotect(addr.as_ptr().cast(), len, libc::PROT_NONE)).map_err(map_count_reached)?;
    Ok(GuardKind::Protect)
}

/// The error of an `mprotect` guard that failed with `ENOMEM`, which here means the process's
/// memory mappings reached `vm.max_map_count`: said in words, with what to do. Each guard
/// splits the stack mapping, two entries per stack, so the default limit (65,530) holds about
/// 32,000 goroutines at once on a kernel without guard markers (before Linux 6.13).
fn map_count_reached(e: io::Error) -> io::Error {
    if e.raw_os_error() != Some(libc::ENOMEM) {
        return e;
    }
    let limit = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .map_or_else(|_| "its limit".to_string(), |s| s.trim().to_string());
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "{e}: this kernel (before Linux 6.13: no MADV_GUARD_INSTALL) guards each goroutine \
             stack with mprotect, two memory mappings per stack, and the process has most likely \
             reached vm.max_map_count ({limit}); raise it (sysctl -w vm.max_map_count=262144 holds \
             about 130,000 goroutines) or keep fewer goroutines alive at once"
        ),
    )
}

/// Gives the physical pages of `[addr, addr+len)` back to the kernel; the range stays mapped and
/// reads as zeroes afterwards. Guard markers survive.
///
/// # Safety
///
/// The range must lie inside a mapping made by [`reserve`] and hold nothing still in use.
pub(crate) unsafe fn release(addr: NonNull<u8>, len: usize) {
    // SAFETY: the caller guarantees the range is ours and dead.
    let _ = unsafe { libc::madvise(addr.as_ptr().cast(), len, libc::MADV_DONTNEED) };
}
