//! Echo servers compared: gorust (a goroutine per connection, 1 worker; the same parking in
//! `readable()` with a buffer only while reading, `readable`; a future per connection on the
//! same runtime through the streams' async face, `futures`; and its event loop) against a
//! plain C epoll loop, Go's net (GOMAXPROCS=1) and tokio's current-thread runtime.
//!
//! `c-et` is the same C program built the way issue 3 requires gorust's netpoller to be, with
//! no scheduler: edge-triggered registration once, a read after every read that fills the
//! buffer, a record and buffer per connection, a second thread (see `bench/c/echo_epoll.c`).
//! Its cost over `c-epoll` is what that shape costs before any scheduler is involved.
//!
//! ```text
//! cargo bench -p gorust --bench echo -- [--rounds R] [--secs S] [--quick] [--json]
//!     [--servers c-epoll,c-et,gorust,readable,futures,eventloop,go,tokio]
//!     [--configs 1000x4096,100x64]
//!     [--idle N]   (memory per idle connection instead: see `echo/idle.rs`)
//!     [--together] (each server at once with the first listed, for A/B work: `echo/together.rs`)
//! ```
//!
//! Servers run, and are reported, in the order `--servers` lists them.
//!
//! Method (issue 3's benchmark):
//! - Every server runs in its own process pinned to CPU 0 (`taskset -c 0`; the first CPU
//!   this process may run on); the load generator is a single thread of this process pinned
//!   to CPU 1 (the second): one epoll loop over all connections, each connection doing
//!   closed-loop round trips (write a message, read it all back, repeat), `TCP_NODELAY` on.
//!   Every server sets `TCP_NODELAY` on its connections too, as Go's net does by default
//!   (before session 26 only Go's did).
//! - Configurations: 100 and 1,000 connections × 64 B and 4 KiB messages.
//! - For each configuration, the servers run interleaved for R rounds (default 5), each round
//!   starting one server later — C, gorust, tokio; gorust, tokio, C; … — so that no server
//!   always runs first; each run starts a fresh server, connects, warms up for 0.5 s and
//!   measures S seconds (default 3).
//! - Figures: round trips per second, and the server's CPU time per round trip (the sum of
//!   its threads' on-CPU time from `/proc/PID/task/*/schedstat`, in nanoseconds, over the
//!   measured window, divided by the round trips). Each is reported as the median over the
//!   rounds and, per server, as the median of its per-round ratio to the C loop of the same
//!   round (throughput: server/C, higher is better; CPU: server/C, lower is better).
//! - Also the server's user-space CPU time per round trip (`utime` of `/proc/PID/stat`): the
//!   part of the CPU time that is the runtime's own. The kernel's share varies most from run
//!   to run on this machine, so this column shows a runtime's progress that the total hides.
//!   `utime` counts whole clock ticks of 10 ms, so a window's figure is good to one tick of
//!   the user time it measures, not of the window: over 3 s, ±10 ms is ±20% of the C loop's
//!   ~50 ms and ±5% of gorust's ~200 ms. The ticks counted are reported beside it (`ticks`,
//!   the median over the rounds), so a small figure can be read for what it is.
//! - This machine is noisy (its two vCPUs are sometimes placed far apart for 10–60 s); the
//!   paired ratios are what absorbs it. Nothing is asserted: this is a report.
//!
//! A server missing from the machine (no `cc`, no `go`) is skipped with a note; under
//! `GORUST_NO_SKIP=1` (set by `.ci/run`, which installs both) the run fails instead. A run
//! that fails (a server that does not start, a load error) is reported as it happens and ends
//! the whole run with status 1 after the report.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "echo/idle.rs"]
mod idle;
#[path = "common/peers.rs"]
mod peers;
#[path = "echo/together.rs"]
mod together;

const CONFIGS: [(usize, usize); 4] = [(100, 64), (100, 4096), (1000, 64), (1000, 4096)];

/// Every server this benchmark knows (`available_servers` offers those this machine runs).
const ALL_SERVERS: [&str; 8] = [
    "c-epoll",
    "c-et",
    "gorust",
    "readable",
    "futures",
    "eventloop",
    "go",
    "tokio",
];

/// The most connections a configuration may ask for: the load's and a server's descriptors
/// stay under this machine's 20,000 per process.
const MAX_CONNS: usize = 15_000;

/// The largest message a configuration may ask for (a larger one aborted the run on the
/// allocation of its buffers).
const MAX_BYTES: usize = 16 << 20;

/// The longest `--secs` taken: an hour per run (a larger value overflowed the load's clock
/// arithmetic, a panic instead of a usage error).
const MAX_SECS: u64 = 3600;

/// Notes a peer this machine cannot run; under `GORUST_NO_SKIP=1` ends the run with status 1.
fn skip(what: &str) {
    if peers::skipping_forbidden() {
        eprintln!("echo: {what} is missing, and GORUST_NO_SKIP=1 forbids skipping it");
        std::process::exit(1);
    }
    println!("echo: {what} is skipped");
}

/// Descriptors this process keeps besides its load's sockets (standard streams, pipes to the
/// servers, the epoll instances).
const FD_SLACK: usize = 64;

/// Raises this process's soft descriptor limit to its hard one (the servers inherit it), and
/// returns the soft limit now in force. A stock soft limit of 1,024 failed the README's
/// `--together` runs at 1,000 connections, two loads at once, with "Too many open files"
/// (review, session 30).
fn raise_fd_limit() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for the call to fill in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return usize::MAX;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; raising the soft limit up to the hard one needs
        // no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim = raised;
        }
    }
    usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX)
}

/// A usage error unless `loads` loads of `conns` connections at once, and a server's side of
/// them, fit under the descriptor limit `limit` (the load's and each server's process have it
/// alike).
fn fits_fd_limit(conns: usize, loads: usize, limit: usize) {
    let need = loads * conns + FD_SLACK;
    if need > limit {
        usage_error(&format!(
            "{} connections at once need {need} descriptors and this process may open {limit} \
             (ulimit -n); ask for fewer connections{}",
            loads * conns,
            if loads > 1 {
                " (--together runs two loads at once)"
            } else {
                ""
            }
        ));
    }
}

/// Runs that failed (a server that would not start, a load error): reported as they happen,
/// and the run then ends with status 1 after its report, so that a smoke run in CI fails
/// when a peer fails, not only when it is missing.
static FAILED_RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Reports one failed run (see [`FAILED_RUNS`]).
fn run_failed(msg: &str) {
    eprintln!("{msg}");
    FAILED_RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Ends the run on a malformed argument: one line saying what was expected, exit status 2.
fn usage_error(msg: &str) -> ! {
    eprintln!("echo: {msg}");
    std::process::exit(2)
}

fn main() {
    run();
    let failed = FAILED_RUNS.load(std::sync::atomic::Ordering::Relaxed);
    if failed > 0 {
        eprintln!("echo: {failed} run(s) failed (see above)");
        std::process::exit(1);
    }
}

fn run() {
    let args: Vec<String> = std::env::args().collect();
    // The value after flag `name`, parsed; `None` without the flag; a usage error if the value
    // is missing or does not parse (a typo must not run the default silently).
    let value = |name: &str| -> Option<u64> {
        let i = args.iter().position(|a| a == name)?;
        let v = args.get(i + 1);
        Some(v.and_then(|v| v.parse().ok()).unwrap_or_else(|| match v {
            Some(v) => usage_error(&format!("{name} takes a number, not {v:?}")),
            None => usage_error(&format!("{name} takes a number; none followed")),
        }))
    };
    if let Some(i) = args.iter().position(|a| a == "--server") {
        let which = args.get(i + 1).cloned().unwrap_or_default();
        let port = value("--port")
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| usage_error("--server needs --port PORT (1-65535)"));
        return match which.as_str() {
            "gorust" => gorust_server(port),
            "readable" => readable_server(port),
            "futures" => futures_server(port),
            "eventloop" => eventloop_server(port),
            "tokio" => tokio_server(port),
            other => usage_error(&format!(
                "--server {other:?}: one of gorust, readable, futures, eventloop, tokio"
            )),
        };
    }
    let bench = args.iter().any(|a| a == "--bench");
    let quick = args.iter().any(|a| a == "--quick") || !bench;
    let opt = |name: &str, default: u64| match value(name) {
        Some(0) => usage_error(&format!("{name} must be at least 1")),
        Some(v) => v,
        None => default,
    };
    let rounds = opt("--rounds", if quick { 1 } else { 5 }) as usize;
    let secs = opt("--secs", if quick { 1 } else { 3 });
    if secs > MAX_SECS {
        usage_error(&format!(
            "--secs {secs}: at most {MAX_SECS} (an hour per run)"
        ));
    }
    let json = args.iter().any(|a| a == "--json");
    let list = |name: &str| -> Option<Vec<String>> {
        let i = args.iter().position(|a| a == name)?;
        let v = args
            .get(i + 1)
            .filter(|v| !v.starts_with("--"))
            .unwrap_or_else(|| usage_error(&format!("{name} takes a comma-separated list")));
        Some(v.split(',').map(str::to_string).collect())
    };
    let configs: Vec<(usize, usize)> = match list("--configs") {
        // e.g. `--configs 1000x4096,100x64`
        Some(cs) => cs
            .iter()
            .map(|c| {
                let parsed = c
                    .split_once('x')
                    .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
                match parsed {
                    Some((conns, bytes))
                        if (1..=MAX_CONNS).contains(&conns) && (1..=MAX_BYTES).contains(&bytes) =>
                    {
                        (conns, bytes)
                    }
                    _ => usage_error(&format!(
                        "--configs {c:?}: each entry is CONNSxBYTES, 1 to {MAX_CONNS} \
                         connections of 1 to {MAX_BYTES} bytes (e.g. 1000x4096,100x64)"
                    )),
                }
            })
            .collect(),
        None if bench => CONFIGS.to_vec(),
        None => vec![(20, 64)], // smoke test under `cargo test --benches`
    };

    let together = args.iter().any(|a| a == "--together");
    // `--together` runs two loads in this process at once.
    let loads = if together { 2 } else { 1 };
    let limit = raise_fd_limit();
    for &(conns, _) in &configs {
        fits_fd_limit(conns, loads, limit);
    }
    let mut servers = available_servers();
    if let Some(only) = list("--servers") {
        for o in &only {
            if !ALL_SERVERS.contains(&o.as_str()) {
                usage_error(&format!(
                    "--servers: no server {o:?}; one of {ALL_SERVERS:?}"
                ));
            }
            if !servers.iter().any(|s| s.name == o) {
                println!("echo: no server {o:?} here: skipped");
            }
        }
        if together && !servers.iter().any(|s| s.name == only[0]) {
            println!(
                "echo --together: the reference {:?} is not here; nothing run",
                only[0]
            );
            return;
        }
        // A name may come twice: `--together --servers gorust,gorust` is an A/A run.
        servers = only
            .iter()
            .filter_map(|o| servers.iter().find(|s| s.name == o).cloned())
            .collect();
    }
    if let Some(n) = args.iter().position(|a| a == "--idle") {
        // `--idle` alone (or before another flag) takes the default.
        let conns = match args.get(n + 1).filter(|v| !v.starts_with("--")) {
            Some(v) => match v.parse() {
                Ok(c) if c > 0 => c,
                _ => usage_error(&format!("--idle takes a number of connections, not {v:?}")),
            },
            None if bench => 10_000,
            None => 200,
        };
        fits_fd_limit(conns, 1, limit);
        return idle::run(&servers, conns, rounds.min(3), json);
    }
    if together {
        return together::run(&servers, &configs, rounds, secs);
    }
    println!(
        "echo: servers {:?}, {rounds} round(s) of {secs} s per server and configuration",
        servers.iter().map(|s| s.name).collect::<Vec<_>>()
    );
    let mut rows = Vec::new();
    let mut port = first_port();
    for &(conns, size) in &configs {
        let mut results: Vec<Vec<Option<Measured>>> = vec![Vec::new(); servers.len()];
        for round in 0..rounds {
            // Each round starts one server later, so that no server always runs first
            // (paired runs on this machine showed the position in a pair moving CPU per round
            // trip by up to 20%). The cyclic order stays: a server still follows the same
            // neighbour except when it starts a round.
            for k in 0..servers.len() {
                let si = (round + k) % servers.len();
                let s = &servers[si];
                let port = next_port(&mut port, 1);
                let r = run_one(s, port, conns, size, Duration::from_secs(secs));
                if let Err(e) = &r {
                    run_failed(&format!(
                        "echo: {} at {conns} conns × {size} B: {e}",
                        s.name
                    ));
                }
                results[si].push(r.ok());
            }
        }
        rows.push((conns, size, results));
    }
    report(&servers, &rows, json);
    if !bench && servers.len() >= 2 {
        // The smoke run (`cargo test --benches`, as CI does) exercises `--together` too.
        together::run(&servers[..2], &configs, 1, secs);
    }
}

/// One run of one server.
#[derive(Clone, Copy)]
struct Measured {
    rt_per_sec: f64,
    /// Server CPU time per round trip, user and system (ns).
    cpu_ns: f64,
    /// Of which in user space (ns).
    user_ns: f64,
    /// The clock ticks of user time the window counted: `user_ns`'s resolution is one.
    user_ticks: u64,
    /// Round trips of the least-served connection over the median connection's, in the
    /// measured window: near 1 when the server takes connections in turn, near 0 when some
    /// starve (a server can buy CPU per round trip by serving a few hot connections).
    fairness: f64,
}

#[derive(Clone)]
struct Server {
    name: &'static str,
    cmd: std::rc::Rc<dyn Fn(u16) -> Command>,
}

fn target_dir() -> PathBuf {
    // benches run from target/<profile>/deps/echo-<hash>
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `program`, run by `taskset` on the servers' CPU ([`cpus`]), dying with this process
/// ([`peers::dies_with_parent`]).
fn pinned(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new("taskset");
    c.arg("-c").arg(cpus().0.to_string()).arg(program);
    peers::dies_with_parent(&mut c);
    c
}

/// The servers' CPU and the load's: the first two this process may run on (CPUs 0 and 1 on
/// this machine). In a cpuset such as `2-3`, fixed CPUs 0 and 1 failed every run with no
/// word on why. Fewer than two: a usage error, since the load would share the servers' CPU.
fn cpus() -> (usize, usize) {
    static CPUS: std::sync::OnceLock<(usize, usize)> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| {
        // SAFETY: a zeroed cpu_set_t filled in by sched_getaffinity for this process.
        let set = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                usage_error(&format!(
                    "cannot read the CPUs this process may run on: {}",
                    std::io::Error::last_os_error()
                ));
            }
            set
        };
        // SAFETY: CPU_ISSET reads a bit of an initialised set, below CPU_SETSIZE.
        let mut allowed =
            (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) });
        match (allowed.next(), allowed.next()) {
            (Some(a), Some(b)) => (a, b),
            _ => usage_error(
                "the benchmark needs two CPUs (servers on one, the load on the other); \
                 this process may run on fewer",
            ),
        }
    })
}

fn available_servers() -> Vec<Server> {
    let mut out = Vec::new();
    let c_bin = target_dir().join("echo_epoll_c");
    let c_src = repo_root().join("bench/c/echo_epoll.c");
    match Command::new("cc")
        .args(["-O2", "-pthread", "-o"])
        .arg(&c_bin)
        .arg(&c_src)
        .status()
    {
        Ok(s) if s.success() => {
            let et_bin = c_bin.clone();
            out.push(Server {
                name: "c-epoll",
                cmd: std::rc::Rc::new(move |port| {
                    let mut c = pinned(&c_bin);
                    c.arg(port.to_string());
                    c
                }),
            });
            out.push(Server {
                name: "c-et",
                cmd: std::rc::Rc::new(move |port| {
                    let mut c = pinned(&et_bin);
                    c.args([&port.to_string(), "et"]);
                    c
                }),
            });
        }
        _ => skip("cc not available or failed: the C loop"),
    }
    // This benchmark's own binary serves the Rust servers (`--server NAME`).
    let own = |name: &'static str| {
        let me = std::env::current_exe().unwrap();
        Server {
            name,
            cmd: std::rc::Rc::new(move |port| {
                let mut c = pinned(&me);
                c.args(["--server", name, "--port", &port.to_string()]);
                c
            }),
        }
    };
    for name in ["gorust", "readable", "futures", "eventloop"] {
        out.push(own(name));
    }
    let go_bin = target_dir().join("gorust-bench-go");
    let mut go_build = Command::new("go");
    go_build
        .args(["build", "-o"])
        .arg(&go_bin)
        .arg(".")
        .current_dir(repo_root().join("bench/go"));
    if std::env::var_os("GOCACHE").is_none() && std::env::var_os("HOME").is_none() {
        // Go keeps its build cache under $HOME; without one, `go build` refuses to run.
        go_build.env("GOCACHE", target_dir().join("go-build-cache"));
    }
    match go_build.status() {
        Ok(s) if s.success() => out.push(Server {
            name: "go",
            cmd: std::rc::Rc::new(move |port| {
                let mut c = pinned(&go_bin);
                c.env("GOMAXPROCS", "1").args(["echo", &port.to_string()]);
                c
            }),
        }),
        _ => skip("go not installed or its build failed: the Go server"),
    }
    out.push(own("tokio"));
    out
}

/// Kills the server (by its PID: we started it) when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A first server port for this run, below Linux's ephemeral range (32768-60999 by default):
/// a port there may be the local end of one of the load's own connections, and a server
/// that cannot bind it fails the run. Runs count up from here (`next_port`); `--idle` starts
/// 500 above it and `--together` 1,000 above.
fn first_port() -> u16 {
    20000 + (std::process::id() % 5000) as u16 * 2
}

/// The highest port a run takes; past it, runs start again from 20,000 (every server binds
/// with `SO_REUSEADDR`, so a port an earlier run closed is free again).
const LAST_PORT: u16 = 32_000;

/// The first of `n` consecutive ports for the next run, after `port` (the last one used):
/// many rounds must not count up into the ephemeral range, nor past `u16::MAX`.
fn next_port(port: &mut u16, n: u16) -> u16 {
    *port = if *port + n > LAST_PORT {
        20_000
    } else {
        *port + 1
    };
    let first = *port;
    *port += n - 1;
    first
}

/// How long one of the load's connects may take.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// How long a server may take to say `ready`.
const START_LIMIT: Duration = Duration::from_secs(15);

/// Starts `s` on `port` and waits for its `ready` line, at most `START_LIMIT`; the server
/// dies with the guard (also when it never says it: the reader then sees the pipe close).
fn start(s: &Server, port: u16) -> Result<(Running, u32), String> {
    let mut cmd = (s.cmd)(port);
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = Running(
        cmd.spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?,
    );
    let pid = child.0.id();
    let stdout = child.0.stdout.take().unwrap();
    let stderr = StderrTail::follow(child.0.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = tx.send(BufReader::new(stdout).read_line(&mut line).map(|_| line));
    });
    let line = match rx.recv_timeout(START_LIMIT) {
        Ok(read) => read.map_err(|e| e.to_string())?,
        Err(_) => {
            return Err(format!(
                "not ready after {} s{}",
                START_LIMIT.as_secs(),
                stderr.text(Duration::ZERO)
            ))
        }
    };
    if line.trim() != "ready" {
        // A server that failed (a port in use, a missing toolchain) said why on stderr: it
        // was thrown away, and the run failed as `server said ""` (review, session 30).
        return Err(format!(
            "server said {line:?}{}",
            stderr.text(Duration::from_secs(1))
        ));
    }
    Ok((child, pid))
}

/// The last lines a server wrote to stderr, kept by a thread that drains the pipe for the
/// server's whole life (so that a chatty server never blocks on a full pipe).
struct StderrTail {
    lines: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<String>>>,
    ended: std::sync::mpsc::Receiver<()>,
}

impl StderrTail {
    /// Lines kept.
    const KEEP: usize = 8;

    fn follow(stderr: std::process::ChildStderr) -> StderrTail {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
        let (tx, ended) = std::sync::mpsc::channel();
        let keep = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut k = keep.lock().unwrap_or_else(|e| e.into_inner());
                if k.len() == Self::KEEP {
                    k.pop_front();
                }
                k.push_back(line);
            }
            let _ = tx.send(());
        });
        StderrTail { lines, ended }
    }

    /// What was kept, as the end of an error message; waits up to `grace` for the server to
    /// finish writing it (the pipe's end).
    fn text(&self, grace: Duration) -> String {
        let _ = self.ended.recv_timeout(grace);
        let k = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if k.is_empty() {
            return String::new();
        }
        let lines: Vec<&str> = k.iter().map(String::as_str).collect();
        format!("; its stderr ended with:\n    {}", lines.join("\n    "))
    }
}

fn run_one(
    s: &Server,
    port: u16,
    conns: usize,
    size: usize,
    measure: Duration,
) -> Result<Measured, String> {
    let (child, pid) = start(s, port)?;
    let addr = format!("127.0.0.1:{port}");
    let out = std::thread::scope(|sc| {
        sc.spawn(|| {
            pin_to(cpus().1)?;
            load(
                &addr,
                conns,
                size,
                Duration::from_millis(500),
                measure,
                pid,
                None,
            )
        })
        .join()
        .unwrap()
    })?;
    drop(child);
    Ok(out)
}

/// Pins the calling thread to `cpu`; an error if it may not run there (the servers run on
/// one CPU, the load on another: an unpinned load would share the server's CPU unnoticed).
fn pin_to(cpu: usize) -> Result<(), String> {
    // SAFETY: a zeroed cpu_set_t with one bit set, applied to the calling thread.
    let r = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!(
            "cannot pin the load to CPU {cpu}: {e} (the benchmark needs two CPUs)"
        ));
    }
    Ok(())
}

/// Nanoseconds the process's threads have spent on a CPU; an error if `/proc` cannot say
/// (the server exited, or the kernel has no `schedstat`), never a 0 that reads as a figure.
fn cpu_ns(pid: u32) -> Result<Cpu, String> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map_err(|e| format!("reading /proc/{pid}/task: {e} (did the server exit?)"))?;
    // A thread that exits between the listing and its read is left out.
    let times: Vec<(u64, u64)> = dir
        .flatten()
        .filter_map(|t| {
            let tid = t.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
            Some((tid, stat.split_whitespace().next()?.parse::<u64>().ok()?))
        })
        .collect();
    if times.is_empty() {
        return Err(format!("no readable /proc/{pid}/task/*/schedstat"));
    }
    Ok(Cpu {
        ns: times.iter().map(|&(_, ns)| ns).sum(),
        threads: times.into_iter().map(|(tid, _)| tid).collect(),
    })
}

/// A server's CPU time summed over its live threads, and those threads.
struct Cpu {
    ns: u64,
    threads: std::collections::BTreeSet<u64>,
}

impl Cpu {
    /// The CPU time spent from `self` to `later`; an error if a thread counted in `self` has
    /// exited since, taking its time out of the sum. Before, only a sum that shrank was
    /// caught; a thread exiting while others ran made the window's figure silently small
    /// (review, session 30).
    fn since(&self, later: &Cpu) -> Result<u64, String> {
        if !self.threads.is_subset(&later.threads) {
            return Err("a server thread exited in the measured window".to_string());
        }
        later
            .ns
            .checked_sub(self.ns)
            .ok_or_else(|| "the server's CPU time went backwards".to_string())
    }
}

/// Clock ticks the process has spent in user space (`utime`); an error if unreadable.
fn user_ticks(pid: u32) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("reading /proc/{pid}/stat: {e} (did the server exit?)"))?;
    // Fields after the command name, which is in parentheses and may hold spaces: state is
    // field 3, utime field 14.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after
        .split_whitespace()
        .nth(11)
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| format!("no utime in /proc/{pid}/stat"))
}

/// Nanoseconds in a clock tick.
fn tick_ns() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    1e9 / hz as f64
}

/// The closed-loop load: round trips per second and the server's CPU per round trip. With
/// `connected`, waits there once its connections are open (or failed to), before the first
/// message.
///
/// A message the socket cannot take at once (one larger than the socket buffers: the server
/// echoes while it reads, and its replies wait for this loop to read them) is written in
/// turns with the reads: the rest waits for the socket to be writable, watched by the same
/// epoll. A write that spun until the socket took it never read, and with both sides' buffers
/// full it spun for ever, past the run's end.
fn load(
    addr: &str,
    conns: usize,
    size: usize,
    warmup: Duration,
    measure: Duration,
    pid: u32,
    connected: Option<&std::sync::Barrier>,
) -> Result<Measured, String> {
    let open = || -> Result<Vec<std::net::TcpStream>, String> {
        let mut socks = Vec::with_capacity(conns);
        for _ in 0..conns {
            // Bounded: a server that said `ready` and stopped accepting left a plain connect
            // in the SYN retries for about two minutes per connection (review, session 30).
            let s = addr
                .parse()
                .map_err(|e| format!("{addr}: {e}"))
                .and_then(|a| {
                    std::net::TcpStream::connect_timeout(&a, CONNECT_LIMIT)
                        .map_err(|e| format!("connect: {e}"))
                })?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            s.set_nonblocking(true).map_err(|e| e.to_string())?;
            socks.push(s);
        }
        Ok(socks)
    };
    let socks = open();
    // Also when opening failed: the other load must not wait for this one forever.
    if let Some(b) = connected {
        b.wait();
    }
    let mut socks = socks?;
    let ep = Epoll::new()?;
    for (i, s) in socks.iter().enumerate() {
        ep.watch(libc::EPOLL_CTL_ADD, s, i, false)?;
    }
    // Each message is a window of the pattern that moves per round trip and differs per
    // connection, and every reply is compared with it: a server echoing other bytes or the
    // previous message (or, mostly, another connection's) fails the run (before, any bytes
    // of the right length counted as a round trip; review, session 30).
    let pattern: Vec<u8> = (0..size + ECHO_PERIOD)
        .map(|k| (k % ECHO_PERIOD) as u8)
        .collect();
    let mut out: Vec<Outgoing> = (0..conns).map(|i| Outgoing::first(i, size)).collect();
    let mut got = vec![0usize; conns];
    let mut per_conn = vec![0u64; conns];
    let mut buf = vec![0u8; 64 * 1024];
    for (i, s) in socks.iter_mut().enumerate() {
        out[i].write_rest(&ep, s, i, &pattern)?;
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let start = Instant::now();
    let mut rt = 0u64;
    let mut marks = None;
    loop {
        let now = Instant::now();
        if marks.is_none() && now >= start + warmup {
            marks = Some((now, rt, cpu_ns(pid)?, user_ticks(pid)?));
            per_conn.fill(0);
        }
        if let Some((t0, rt0, cpu0, user0)) = &marks {
            let (t0, rt0, user0) = (*t0, *rt0, *user0);
            if now >= t0 + measure {
                let secs = now.duration_since(t0).as_secs_f64();
                let n = (rt - rt0) as f64;
                // A thread that exited in the window takes its time with it: the window is
                // then refused rather than read as a small figure.
                let cpu = cpu0.since(&cpu_ns(pid)?)? as f64;
                let ticks = user_ticks(pid)?.saturating_sub(user0);
                if n == 0.0 {
                    return Err("no round trips completed".to_string());
                }
                per_conn.sort_unstable();
                let least = per_conn[0] as f64;
                let mid = per_conn[conns / 2].max(1) as f64;
                return Ok(Measured {
                    rt_per_sec: n / secs,
                    cpu_ns: cpu / n,
                    user_ns: ticks as f64 * tick_ns() / n,
                    user_ticks: ticks,
                    fairness: least / mid,
                });
            }
        }
        for ev in ep.wait(&mut events)? {
            let i = ev.u64 as usize;
            let s = &mut socks[i];
            out[i].write_rest(&ep, s, i, &pattern)?;
            loop {
                match s.read(&mut buf) {
                    Ok(0) => return Err("server closed a connection".into()),
                    Ok(k) => {
                        let expected = &out[i].message(&pattern)[got[i]..];
                        if k > expected.len() || buf[..k] != expected[..k] {
                            return Err(format!(
                                "connection {i}: the server sent back bytes it was not sent"
                            ));
                        }
                        got[i] += k;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("read: {e}")),
                }
            }
            // A whole echo means the whole message was written: the next one may start.
            if got[i] == size {
                got[i] = 0;
                rt += 1;
                per_conn[i] += 1;
                out[i].next(i);
                out[i].write_rest(&ep, s, i, &pattern)?;
            }
        }
    }
}

/// The period of the echo messages' pattern, a prime: a window moved by 13 bytes (one message)
/// is a different message whatever its length, since 13 is not a multiple of the period.
const ECHO_PERIOD: usize = 251;

/// Where connection `i`'s `nth` message starts in the pattern: a step per message and a
/// different start per connection.
fn echo_window(i: usize, nth: u64) -> usize {
    (i.wrapping_mul(7) + (nth % ECHO_PERIOD as u64) as usize * 13) % ECHO_PERIOD
}

/// A connection's message under way.
struct Outgoing {
    /// Where it starts in the pattern.
    window: usize,
    size: usize,
    /// Messages begun on this connection, this one included.
    count: u64,
    /// Bytes not written yet.
    unsent: usize,
    /// Whether the epoll watches the socket for output (only while some bytes are unsent).
    watching_out: bool,
}

impl Outgoing {
    /// Connection `i`'s first message of `size` bytes.
    fn first(i: usize, size: usize) -> Outgoing {
        Outgoing {
            window: echo_window(i, 0),
            size,
            count: 1,
            unsent: size,
            watching_out: false,
        }
    }

    /// Connection `i`'s next message, once the last one came back whole.
    fn next(&mut self, i: usize) {
        self.window = echo_window(i, self.count);
        self.count += 1;
        self.unsent = self.size;
    }

    fn message<'p>(&self, pattern: &'p [u8]) -> &'p [u8] {
        &pattern[self.window..self.window + self.size]
    }

    /// Writes the unsent rest of the message until the socket would block, and has the epoll
    /// watch the socket for output exactly while some is left.
    fn write_rest(
        &mut self,
        ep: &Epoll,
        s: &mut std::net::TcpStream,
        i: usize,
        pattern: &[u8],
    ) -> Result<(), String> {
        let msg = self.message(pattern);
        while self.unsent > 0 {
            match s.write(&msg[msg.len() - self.unsent..]) {
                Ok(n) => self.unsent -= n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        let want_out = self.unsent > 0;
        if want_out != self.watching_out {
            ep.watch(libc::EPOLL_CTL_MOD, s, i, want_out)?;
            self.watching_out = want_out;
        }
        Ok(())
    }
}

/// The load's epoll instance, closed on every way out of the load.
struct Epoll(std::os::fd::OwnedFd);

impl Epoll {
    fn new() -> Result<Epoll, String> {
        use std::os::fd::FromRawFd;
        // SAFETY: epoll_create1 has no preconditions.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(format!("epoll: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a descriptor just created, owned by nothing else.
        Ok(Epoll(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }))
    }

    /// Adds or modifies (`op`) the watch on socket `i`: input, and output if `out`.
    fn watch(&self, op: i32, s: &std::net::TcpStream, i: usize, out: bool) -> Result<(), String> {
        use std::os::fd::AsRawFd;
        let out = if out { libc::EPOLLOUT } else { 0 };
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | out) as u32,
            u64: i as u64,
        };
        // SAFETY: both descriptors are open for the call, and `ev` is a valid epoll_event.
        let r = unsafe { libc::epoll_ctl(self.0.as_raw_fd(), op, s.as_raw_fd(), &mut ev) };
        if r < 0 {
            return Err(format!("epoll_ctl: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Waits up to 10 ms; the events that came.
    fn wait<'e>(
        &self,
        events: &'e mut [libc::epoll_event],
    ) -> Result<&'e [libc::epoll_event], String> {
        use std::os::fd::AsRawFd;
        let len = events.len() as i32;
        // SAFETY: `events` has room for its length of epoll_events.
        let n = unsafe { libc::epoll_wait(self.0.as_raw_fd(), events.as_mut_ptr(), len, 10) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(format!("epoll_wait: {e}"));
            }
        }
        Ok(&events[..n.max(0) as usize])
    }
}

/// A gorust server on one worker: its main goroutine accepts, and `serve` starts what serves
/// each connection.
fn serve_each(port: u16, serve: impl Fn(gorust::net::TcpStream) + Send + 'static) {
    let rt = gorust::Runtime::builder().workers(1).build().unwrap();
    rt.run(move || {
        let l = gorust::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        println!("ready");
        std::io::stdout().flush().unwrap();
        for conn in l.incoming() {
            let Ok(c) = conn else { continue };
            // As Go's net does for every TCP connection, and every server here does.
            if c.set_nodelay(true).is_ok() {
                serve(c);
            }
        }
    });
}

/// A gorust echo server on one worker: `echo` runs in a goroutine per connection.
fn serve_goroutines(port: u16, echo: fn(gorust::net::TcpStream)) {
    serve_each(port, move |c| drop(gorust::go(move || echo(c))));
}

/// gorust, a goroutine per connection reading into a 4 KiB buffer on its stack.
fn gorust_server(port: u16) {
    serve_goroutines(port, |mut c| {
        let mut buf = [0u8; 4096];
        loop {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if c.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

/// gorust, a goroutine per connection that parks in `readable()` and holds a 4 KiB buffer
/// (from the heap) only while it reads and writes: what an idle connection's goroutine costs
/// without a buffer on its stack (`--idle`).
fn readable_server(port: u16) {
    serve_goroutines(port, |mut c| loop {
        if c.readable().is_err() {
            return;
        }
        let mut buf = vec![0u8; 4096];
        match c.try_read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if c.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    });
}

/// gorust's runtime without goroutine stacks: a future per connection (`gorust::spawn`), with
/// the same 4 KiB buffer in the future, reading and writing through the stream's async face
/// (`poll_read`/`poll_write`), as tokio's server does. What the goroutine's stack costs is the
/// difference to `gorust`.
fn futures_server(port: u16) {
    serve_each(port, |c| {
        drop(gorust::spawn(async move {
            let mut buf = [0u8; 4096];
            loop {
                let n = match std::future::poll_fn(|cx| c.poll_read(cx, &mut buf)).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let mut sent = 0;
                while sent < n {
                    match std::future::poll_fn(|cx| c.poll_write(cx, &buf[sent..n])).await {
                        Ok(k) => sent += k,
                        Err(_) => return,
                    }
                }
            }
        }));
    });
}

/// The event loop (issue 4): a handler goroutine only while bytes wait, buffers from the pool.
fn eventloop_server(port: u16) {
    let rt = gorust::Runtime::builder().workers(1).build().unwrap();
    rt.run(move || {
        let l = gorust::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let el = gorust::eventloop::EventLoop::builder()
            .on_prepare(|c| c.set_nodelay(true))
            .on_request(|c, _| {
                let n = c.reader().len();
                let data = c.reader().next(n)?;
                c.writer().write_bytes(&data);
                Ok(())
            })
            .build()
            .unwrap();
        println!("ready");
        std::io::stdout().flush().unwrap();
        el.serve(l).unwrap();
    });
}

fn tokio_server(port: u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        println!("ready");
        std::io::stdout().flush().unwrap();
        loop {
            let Ok((mut c, _)) = l.accept().await else {
                continue;
            };
            if c.set_nodelay(true).is_err() {
                continue;
            }
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match c.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if c.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

type Rows = Vec<(usize, usize, Vec<Vec<Option<Measured>>>)>;

fn report(servers: &[Server], rows: &Rows, json: bool) {
    let base = servers.iter().position(|s| s.name == "c-epoll");
    println!(
        "\n{:>6} {:>6}  {:<8} {:>12} {:>14} {:>12} {:>12} {:>12} {:>6} {:>9}",
        "conns",
        "bytes",
        "server",
        "rt/s",
        "cpu µs/rt",
        "rt/s vs C",
        "cpu vs C",
        "user µs/rt",
        "ticks",
        "fairness"
    );
    let mut js = Vec::new();
    for (conns, size, results) in rows {
        for (si, s) in servers.iter().enumerate() {
            let ok: Vec<Measured> = results[si].iter().flatten().copied().collect();
            let rts = median(ok.iter().map(|r| r.rt_per_sec).collect());
            let cpu = median(ok.iter().map(|r| r.cpu_ns).collect());
            let user = median(ok.iter().map(|r| r.user_ns).collect());
            let ticks = median(ok.iter().map(|r| r.user_ticks as f64).collect());
            let fair = median(ok.iter().map(|r| r.fairness).collect());
            let (rt_ratio, cpu_ratio) = match base {
                Some(b) => {
                    let pairs: Vec<(Measured, Measured)> = results[si]
                        .iter()
                        .zip(&results[b])
                        .filter_map(|(a, c)| Some(((*a)?, (*c)?)))
                        .collect();
                    (
                        median(
                            pairs
                                .iter()
                                .map(|(a, c)| a.rt_per_sec / c.rt_per_sec)
                                .collect(),
                        ),
                        median(pairs.iter().map(|(a, c)| a.cpu_ns / c.cpu_ns).collect()),
                    )
                }
                None => (None, None),
            };
            let f = |v: Option<f64>, scale: f64, prec: usize| {
                v.map_or("-".to_string(), |x| format!("{:.*}", prec, x * scale))
            };
            println!(
                "{conns:>6} {size:>6}  {:<8} {:>12} {:>14} {:>12} {:>12} {:>12} {:>6} {:>9}",
                s.name,
                f(rts, 1.0, 0),
                f(cpu, 1e-3, 2),
                f(rt_ratio, 1.0, 2),
                f(cpu_ratio, 1.0, 2),
                f(user, 1e-3, 2),
                f(ticks, 1.0, 0),
                f(fair, 1.0, 2)
            );
            js.push(format!(
                "{{\"conns\":{conns},\"bytes\":{size},\"server\":\"{}\",\"rt_per_s\":{},\"cpu_us_per_rt\":{},\"user_us_per_rt\":{},\"user_ticks\":{},\"fairness\":{},\"rt_vs_c\":{},\"cpu_vs_c\":{}}}",
                s.name,
                rts.map_or("null".into(), |v| format!("{v:.0}")),
                cpu.map_or("null".into(), |v| format!("{:.3}", v / 1e3)),
                user.map_or("null".into(), |v| format!("{:.3}", v / 1e3)),
                ticks.map_or("null".into(), |v| format!("{v:.0}")),
                fair.map_or("null".into(), |v| format!("{v:.3}")),
                rt_ratio.map_or("null".into(), |v| format!("{v:.3}")),
                cpu_ratio.map_or("null".into(), |v| format!("{v:.3}")),
            ));
        }
    }
    if json {
        println!("[{}]", js.join(","));
    }
}
