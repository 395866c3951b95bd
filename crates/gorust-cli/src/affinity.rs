//! CPU affinity for `compare`: the server on one CPU, the load on another.
//!
//! The only system calls here are `sched_getaffinity` and `sched_setaffinity` on the calling
//! thread (pid 0). A thread started after the call inherits the mask, so pinning the thread
//! that then starts the load loop, or a child between fork and exec, pins all of it.

use std::io;

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

/// Pins the process `cmd` will start to `cpu`, from between fork and exec, so that every
/// thread it ever starts inherits the mask.
pub fn pin_command(cmd: &mut std::process::Command, cpu: usize) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let set = cpu_set(cpu)?;
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it makes one system call with a set built before
    // the fork, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || apply(&set));
    }
    Ok(())
}

/// Pins the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> Result<(), String> {
    apply(&cpu_set(cpu)?).map_err(|e| format!("cannot pin a thread to CPU {cpu}: {e}"))
}
