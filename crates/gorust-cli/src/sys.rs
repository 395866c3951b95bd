//! The process-level system calls of `demo` and `compare` (the load generator's epoll is in
//! `load_loop.rs`).
//!
//! - CPU affinity: the server on one CPU, the load on another. `sched_getaffinity` and
//!   `sched_setaffinity` act on the calling thread (pid 0); a thread started after the call
//!   inherits the mask, so pinning the thread that then starts the load loop, or a child
//!   between fork and exec, pins all of it.
//! - Children die with us: a server or wrk child gets `PR_SET_PDEATHSIG` = `SIGKILL`, so that a
//!   `gorust` killed by a signal it cannot catch (a test's timeout sends SIGKILL) leaves no
//!   server behind. The signal follows the *thread* that spawned the child: children are
//!   spawned from threads that outlive them (the main thread in `demo` and `compare`).
//! - The descriptor limit: the soft `RLIMIT_NOFILE` is raised towards what a command needs, as
//!   far as the hard limit allows (always permitted). `serve` raises it to the hard limit, as
//!   Go's `os` package does at start-up: many systems ship a soft limit of 1,024 under a hard
//!   one hundreds of times larger.

use std::io;
use std::process::Command;

/// The CPUs this process may run on, in order.
pub fn allowed() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid, empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is valid for writes of its size.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE, the set's size in bits.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// A set holding one CPU.
pub fn cpu_set(cpu: usize) -> Result<libc::cpu_set_t, String> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(format!("there is no CPU {cpu}"));
    }
    // SAFETY: a zeroed cpu_set_t is a valid, empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE, checked above.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    Ok(set)
}

/// Applies `set` to the calling thread. Async-signal-safe: one system call, no allocation.
pub fn apply(set: &libc::cpu_set_t) -> io::Result<()> {
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Prepares the process `cmd` will start: killed when the spawning thread ends, and pinned to
/// `cpu` if given (from between fork and exec, so every thread it ever starts inherits the
/// mask).
pub fn child_setup(cmd: &mut Command, cpu: Option<usize>) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let set = cpu.map(cpu_set).transpose()?;
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it makes three system calls with values computed
    // before the fork, and allocates nothing (an error is built from errno alone).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before the prctl: then no signal will come.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            match &set {
                Some(set) => apply(set),
                None => Ok(()),
            }
        });
    }
    Ok(())
}

/// Pins the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> Result<(), String> {
    apply(&cpu_set(cpu)?).map_err(|e| format!("cannot pin a thread to CPU {cpu}: {e}"))
}

/// Raises the soft `RLIMIT_NOFILE` towards `want`, no further than the hard limit, and returns
/// the soft limit then in force (`None` if it cannot be read).
pub fn raise_fd_limit(want: u64) -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    let want = want as libc::rlim_t;
    if lim.rlim_cur < want && lim.rlim_max > lim.rlim_cur {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max.min(want),
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; raising the soft limit up to the hard one is
        // always permitted.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = raised.rlim_cur;
        }
    }
    Some(lim.rlim_cur)
}
