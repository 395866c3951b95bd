//! Reading this process's own figures from `/proc/self`.

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

/// Voluntary plus involuntary context switches of the whole process so far.
pub fn context_switches() -> u64 {
    context_switches_of("self")
}

/// Context switches of every thread of process `pid` so far (`pid` may be `"self"`).
pub fn context_switches_of(pid: &str) -> u64 {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    dir.flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .map(|s| {
            s.lines()
                .filter(|l| l.contains("ctxt_switches"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// Memory mappings of this process (bounded by `vm.max_map_count`).
pub fn mappings() -> u64 {
    std::fs::read_to_string("/proc/self/maps")
        .map(|s| s.lines().count() as u64)
        .unwrap_or(0)
}
