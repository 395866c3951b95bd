//! Figures of this process and its children from `/proc`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Fails with a message that says what is missing if this process cannot read its own
/// figures in `/proc` (a sandbox without it, another system): `demo` and `compare` would
/// otherwise print each figure they could not read as a measured 0 (review, session 24).
pub fn check(command: &str) -> Result<(), String> {
    let missing =
        |what: String| format!("gorust {command} reads its figures from /proc, and {what}");
    let readable = |path: &str| {
        std::fs::read_to_string(path)
            .map(drop)
            .map_err(|e| missing(format!("{path} is not readable ({e})")))
    };
    readable("/proc/self/status")?;
    readable("/proc/self/maps")?;
    let task = std::fs::read_dir("/proc/self/task")
        .map_err(|e| missing(format!("/proc/self/task is not readable ({e})")))?;
    match task.flatten().next() {
        Some(t) => readable(&t.path().join("schedstat").display().to_string()),
        None => Err(missing("/proc/self/task lists no thread".into())),
    }
}

/// A field of `/proc/self/status` in its unit (kB for memory, a count for `Threads`).
pub fn status_field(name: &str) -> Option<u64> {
    status_field_of("self", name)
}

/// A field of `/proc/PID/status` (`pid` may be `"self"`).
pub fn status_field_of(pid: &str, name: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Resident memory in KiB.
pub fn rss_kib() -> u64 {
    status_field("VmRSS").unwrap_or(0)
}

/// OS threads of this process.
pub fn threads() -> u64 {
    status_field("Threads").unwrap_or(0)
}

/// Voluntary plus involuntary context switches of this process's live threads so far (0 if
/// unreadable; for the demo's wake step, whose threads all live through it).
pub fn context_switches() -> u64 {
    context_switches_of("self").map_or(0, |r| r.total)
}

/// Context switches of every live thread of process `pid` so far (`pid` may be `"self"`),
/// summed over `/proc/PID/task/*/status`; compare two with [`between`].
pub fn context_switches_of(pid: &str) -> Result<TaskSum, String> {
    sum_over_tasks(pid, "status", |status| {
        let switches = status
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok());
        Some(switches.sum())
    })
}

/// The most memory mappings a process may have (`vm.max_map_count`; the kernel's default if
/// unreadable).
pub fn max_map_count() -> u64 {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65_530)
}

/// Memory mappings of this process (bounded by `vm.max_map_count`).
pub fn mappings() -> u64 {
    std::fs::read_to_string("/proc/self/maps")
        .map(|s| s.lines().count() as u64)
        .unwrap_or(0)
}

/// A figure summed over a process's threads at one moment ([`cpu_ns_of`],
/// [`context_switches_of`]), with the threads it summed: a thread that exits takes its share
/// out of `/proc`, so two readings are compared only if no thread left between them
/// ([`between`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskSum {
    total: u64,
    threads: std::collections::BTreeSet<u64>,
}

/// Sums `value` of each thread's `/proc/PID/task/TID/file`; an error when `/proc` cannot say
/// (the process exited), never a 0 that would read as a measured figure. A thread that exits
/// between the listing and its read is left out.
fn sum_over_tasks(
    pid: &str,
    file: &str,
    value: impl Fn(&str) -> Option<u64>,
) -> Result<TaskSum, String> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map_err(|e| format!("cannot read /proc/{pid}/task ({e}): did the server exit?"))?;
    let mut sum = TaskSum {
        total: 0,
        threads: Default::default(),
    };
    for t in dir.flatten() {
        let Some(tid) = t.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        let Some(v) = std::fs::read_to_string(t.path().join(file))
            .ok()
            .and_then(|text| value(&text))
        else {
            continue;
        };
        sum.total += v;
        sum.threads.insert(tid);
    }
    if sum.threads.is_empty() {
        return Err(format!("no readable /proc/{pid}/task/*/{file}"));
    }
    Ok(sum)
}

/// Nanoseconds the threads of process `pid` have spent on a CPU (`/proc/PID/task/*/schedstat`,
/// summed over the threads alive now).
pub fn cpu_ns_of(pid: &str) -> Result<TaskSum, String> {
    sum_over_tasks(pid, "schedstat", |stat| {
        stat.split_whitespace().next()?.parse::<u64>().ok()
    })
}

/// How much a per-thread sum grew from `before` to `after`: an error if either is, if a
/// thread summed before is gone after (its share left the sum: a CPU time or a switch count
/// too small), or if the sum went backwards.
pub fn between(
    before: Result<TaskSum, String>,
    after: Result<TaskSum, String>,
) -> Result<u64, String> {
    let (before, after) = (before?, after?);
    if !before.threads.is_subset(&after.threads) {
        return Err("a server thread exited in the measured window".to_string());
    }
    after
        .total
        .checked_sub(before.total)
        .ok_or_else(|| "the server's figure went backwards".to_string())
}

/// The machine, for reports: the CPU model, the CPUs online, the kernel release.
pub fn machine() -> (String, usize, String) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    (cpu, cpus, kernel)
}

/// Samples a process's resident memory and threads every 20 ms, keeping the peaks.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(u64, u64)>,
}

impl Sampler {
    pub fn start(pid: &str) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, pid) = (stop.clone(), pid.to_string());
        let thread = std::thread::spawn(move || {
            let (mut rss, mut threads) = (0, 0);
            while !flag.load(Ordering::Relaxed) {
                rss = rss.max(status_field_of(&pid, "VmRSS").unwrap_or(0));
                threads = threads.max(status_field_of(&pid, "Threads").unwrap_or(0));
                std::thread::sleep(Duration::from_millis(20));
            }
            (rss, threads)
        });
        Sampler { stop, thread }
    }

    /// The peaks: (resident KiB, threads).
    pub fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or((0, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where `/proc` is readable the check passes, and the figures it guards are real.
    #[test]
    fn the_check_passes_where_the_figures_are_readable() {
        assert_eq!(check("demo"), Ok(()));
        assert!(rss_kib() > 0 && threads() > 0 && mappings() > 0);
        assert!(cpu_ns_of("self").unwrap().total > 0);
        assert!(context_switches_of("self").unwrap().total > 0);
    }

    /// A process that is gone, or a window a thread left, is an error, not a figure of 0.
    #[test]
    fn cpu_time_that_cannot_be_read_is_an_error() {
        let gone = cpu_ns_of(&u32::MAX.to_string()).unwrap_err();
        assert!(gone.contains("did the server exit?"), "{gone}");
        let at = |ns, threads: &[u64]| {
            Ok(TaskSum {
                total: ns,
                threads: threads.iter().copied().collect(),
            })
        };
        assert_eq!(between(at(5, &[1, 2]), at(8, &[1, 2, 3])), Ok(3));
        assert!(between(at(8, &[1]), at(5, &[1])).is_err());
        assert!(between(Err("gone".into()), at(5, &[1])).is_err());
        // Thread 2 exited, and its time left the sum, though the sum still grew.
        let left = between(at(5, &[1, 2]), at(9, &[1])).unwrap_err();
        assert!(left.contains("exited"), "{left}");
    }

    /// A real thread that exits between two readings of this process is caught.
    #[test]
    fn a_thread_that_exits_in_the_window_is_caught() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || rx.recv());
        let before = (cpu_ns_of("self"), context_switches_of("self"));
        drop(tx);
        t.join().unwrap().unwrap_err();
        let after = (cpu_ns_of("self"), context_switches_of("self"));
        assert!(between(before.0, after.0).is_err());
        assert!(between(before.1, after.1).is_err(), "the switch count too");
    }
}
