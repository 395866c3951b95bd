//! The fault handler used to report goroutine stack overflows.
//!
//! `install` puts a `SIGSEGV`/`SIGBUS` handler in front of whatever was there (normally Rust's
//! own, which reports overflows of thread stacks). The handler runs on the thread's alternate
//! signal stack, asks a classifier whether the fault address is a goroutine's guard page, and
//! either prints the classifier's message and aborts or hands the signal to the previous handler.

use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Once;

/// Returns a message to print and abort with, or `None` if the fault is not ours. Called inside a
/// signal handler: it may only read atomics and `const`-initialised thread-locals.
pub(crate) type Classifier = fn(fault_addr: usize, out: &mut [u8]) -> Option<usize>;

static CLASSIFIER: AtomicPtr<()> = AtomicPtr::new(std::ptr::null_mut());
static mut PREV_SEGV: std::mem::MaybeUninit<libc::sigaction> = std::mem::MaybeUninit::zeroed();
static mut PREV_BUS: std::mem::MaybeUninit<libc::sigaction> = std::mem::MaybeUninit::zeroed();

pub(crate) fn install(classifier: Classifier) {
    static ONCE: Once = Once::new();
    CLASSIFIER.store(classifier as *mut (), Ordering::Release);
    ONCE.call_once(|| {
        // SAFETY: runs once. Each PREV_* is written here only, by a sigaction call that only
        // reads the disposition, before the call that installs `handler` for its signal: the
        // handler cannot run before its PREV_* is complete. (Read and install in one call, as
        // before, and glibc copies the old action out only after the kernel has switched to
        // the new one, so a fault on another thread in between read a zeroed PREV_*; review,
        // session 21.) A disposition another thread changes between the two calls is lost,
        // as it would be to any later install.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            for (sig, prev) in [
                (libc::SIGSEGV, &raw mut PREV_SEGV),
                (libc::SIGBUS, &raw mut PREV_BUS),
            ] {
                libc::sigaction(sig, std::ptr::null(), prev.cast::<libc::sigaction>());
                libc::sigaction(sig, &action, std::ptr::null_mut());
            }
        }
    });
}

/// Blocks every signal but those a fault raises (`SIGSEGV`, `SIGBUS`, `SIGFPE`, `SIGILL`,
/// `SIGTRAP`, `SIGSYS`) on the calling thread, so that the kernel delivers the process's
/// signals to another thread: for a thread whose descriptor table is its own, where a handler
/// that writes to a self-pipe (`signal-hook`, `ctrlc`, tokio's) would write to nothing.
pub(crate) fn block_async_signals() {
    // SAFETY: `set` is a live sigset_t that sigfillset initialises before use; sigdelset and
    // pthread_sigmask only read it and change this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        for sig in [
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
            libc::SIGTRAP,
            libc::SIGSYS,
        ] {
            libc::sigdelset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Gives every thread the runtime starts an alternate signal stack, so that the handler can run
/// when the thread's own stack (or a goroutine's) is exhausted. Rust's `std` does the same for
/// threads it spawns, but only when its own handler was installed first; this makes it certain.
/// The returned guard frees the stack when the thread ends.
pub(crate) fn ensure_altstack() -> Option<AltStack> {
    // SAFETY: querying the current alternate stack with a null new-stack pointer changes nothing.
    unsafe {
        let mut old: libc::stack_t = std::mem::zeroed();
        libc::sigaltstack(std::ptr::null(), &mut old);
        if old.ss_flags & libc::SS_DISABLE == 0 {
            return None; // one is already installed
        }
    }
    let size = libc::SIGSTKSZ.max(64 * 1024);
    let mem = super::memory::reserve(size).ok()?;
    let st = libc::stack_t {
        ss_sp: mem.as_ptr().cast(),
        ss_flags: 0,
        ss_size: size,
    };
    // SAFETY: `mem` is a fresh mapping of `size` bytes that lives until AltStack is dropped.
    unsafe { libc::sigaltstack(&st, std::ptr::null_mut()) };
    Some(AltStack { mem, size })
}

pub(crate) struct AltStack {
    mem: std::ptr::NonNull<u8>,
    size: usize,
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let disable = libc::stack_t {
            ss_sp: std::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: disables this thread's alternate stack, then unmaps the memory we mapped.
        unsafe {
            libc::sigaltstack(&disable, std::ptr::null_mut());
            libc::munmap(self.mem.as_ptr().cast(), self.size);
        }
    }
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let f = CLASSIFIER.load(Ordering::Acquire);
    if !f.is_null() {
        // SAFETY: CLASSIFIER only ever holds a `Classifier` function pointer.
        let classify: Classifier = unsafe { std::mem::transmute::<*mut (), Classifier>(f) };
        let mut buf = [0u8; 256];
        if let Some(n) = classify(addr, &mut buf) {
            // SAFETY: write(2) and abort(3) are async-signal-safe.
            unsafe {
                libc::write(2, buf.as_ptr().cast(), n);
                libc::abort();
            }
        }
    }
    // Not a goroutine guard page: hand over to the previous disposition.
    let prev = if sig == libc::SIGBUS {
        &raw const PREV_BUS
    } else {
        &raw const PREV_SEGV
    };
    // SAFETY: PREV_* were filled by `install` before the handler could run.
    let prev = unsafe { (*prev).assume_init_ref() };
    let h = prev.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // Restore the default action and return: the faulting instruction runs again and the
        // kernel delivers the signal with its default disposition (a core dump).
        // SAFETY: resetting a signal's disposition is async-signal-safe.
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
        }
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so it has this signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(h) };
        f(sig, info, ctx);
    } else {
        // SAFETY: a handler without SA_SIGINFO takes only the signal number.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
        f(sig);
    }
}
