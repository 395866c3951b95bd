//! Server child processes for `demo` and `compare`: started, pinned, read and killed.
//!
//! 1. [`start`] spawns the program with stdin closed and stdout and stderr piped, pinned to one
//!    CPU if asked (`sched_setaffinity` between fork and exec, so every thread the server ever
//!    starts inherits the mask; no `taskset` needed), and set to be killed if the thread that
//!    spawned it ends (`sys::child_setup`).
//! 2. Every server, whatever its language, prints `listening on http://ADDR/ …` as its first
//!    line of stdout once bound. A reader thread parses it and then keeps reading: lines
//!    `stats live=N` (from `serve --stats-ms`) update the peak of live goroutines or tasks.
//!    Another thread keeps the last lines of stderr, so that a server that exits before
//!    listening (a port in use, a bad flag) is reported with its own words.
//! 3. The first line must come within [`START_TIMEOUT`]: a child that neither binds nor exits
//!    is an error, never a hang.
//! 4. [`Server`] kills the child by its PID and reaps it when dropped, on success and on every
//!    error path alike.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// How long a server may take to print its address.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Lines of a server's stderr kept for error messages.
const STDERR_LINES: usize = 4;

/// What to run.
pub struct Spec {
    /// The server's name in messages and tables.
    pub name: String,
    pub program: OsString,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    /// The CPU to pin the whole process to.
    pub cpu: Option<usize>,
    /// How long it may take to print its address ([`START_TIMEOUT`]).
    pub start_timeout: Duration,
}

impl Spec {
    pub fn new(name: &str, program: impl Into<OsString>) -> Spec {
        Spec {
            name: name.to_string(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cpu: None,
            start_timeout: START_TIMEOUT,
        }
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Spec {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
}

/// A running server, killed by its PID when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// The peak of the `stats live=N` lines since the last [`Server::reset_live`].
    live_peak: Arc<AtomicU64>,
}

impl Server {
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// The peak number of live goroutines or tasks the server reported since the last reset
    /// (0 if it reports none).
    pub fn live_peak(&self) -> u64 {
        self.live_peak.load(Ordering::Relaxed)
    }

    pub fn reset_live(&self) {
        self.live_peak.store(0, Ordering::Relaxed);
    }

    /// An error if the server has exited: a run it left early (a crash) must not be read as
    /// figures, though the load may have seen only some errors.
    pub fn check_running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("the server exited during the run ({status})")),
            Err(e) => Err(format!("cannot tell whether the server still runs: {e}")),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Our own child, by its PID; `wait` reaps it so no zombie is left.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether this program was built with optimizations (`--release`): the servers `demo` and
/// `compare` measure are this program, so a debug build's figures say little about gorust
/// (Go's peer is always built optimized).
pub const OPTIMIZED: bool = !cfg!(debug_assertions);

/// A line for the reports of a debug build, which says so; empty for a release build.
pub fn build_note() -> &'static str {
    if OPTIMIZED {
        ""
    } else {
        "build: debug, unoptimized: these figures say little about speed; run with --release\n"
    }
}

/// The current executable, to run one of its own `serve` models.
pub fn this_program() -> Result<OsString, String> {
    std::env::current_exe()
        .map(Into::into)
        .map_err(|e| format!("cannot find this program: {e}"))
}

/// Starts the server and waits for its address.
pub fn start(spec: Spec) -> Result<Server, String> {
    let name = spec.name.clone();
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    crate::sys::child_setup(&mut cmd, spec.cpu)?;
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "cannot start the {name} server ({}): {e}",
            spec.program.to_string_lossy()
        )
    })?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let (tx, rx) = mpsc::channel();
    let live_peak = Arc::new(AtomicU64::new(0));
    if let Some(out) = stdout {
        let peak = live_peak.clone();
        std::thread::spawn(move || read_stdout(out, tx, &peak));
    }
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    if let Some(err) = stderr {
        let tail = tail.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                if t.len() == STDERR_LINES {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
    }
    let first = rx.recv_timeout(spec.start_timeout);
    // From here on the guard owns the child: every return below kills it.
    let mut guard = ChildGuard(Some(child));
    let why = match first {
        Ok(Ok(addr)) => {
            let child = guard.0.take().expect("set above");
            return Ok(Server {
                child,
                addr,
                live_peak,
            });
        }
        Ok(Err(line)) => format!("printed {line:?} instead of its address"),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            format!("did not listen within {:?}", spec.start_timeout)
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // It closed stdout: it has exited or is about to; give stderr a moment to drain.
            let status = guard.wait_briefly();
            format!("exited before listening ({status})")
        }
    };
    drop(guard);
    let said: Vec<String> = tail
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let said = if said.is_empty() {
        String::new()
    } else {
        format!(": {}", said.join(" / "))
    };
    Err(format!("the {name} server {why}{said}"))
}

/// Kills and reaps a child that never became a [`Server`].
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn wait_briefly(&mut self) -> String {
        let Some(child) = self.0.as_mut() else {
            return "gone".into();
        };
        for _ in 0..50 {
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(20));
                return status.to_string();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        "still running".into()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends the address from the first line, then tracks `stats live=N` lines until EOF.
fn read_stdout(
    out: std::process::ChildStdout,
    tx: mpsc::Sender<Result<SocketAddr, String>>,
    peak: &AtomicU64,
) {
    let mut lines = BufReader::new(out).lines();
    let Some(Ok(first)) = lines.next() else {
        return; // EOF: the receiver sees the channel close.
    };
    let _ = tx.send(parse_address(&first).ok_or(first));
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(n) = line
            .strip_prefix("stats live=")
            .and_then(|n| n.trim().parse().ok())
        {
            peak.fetch_max(n, Ordering::Relaxed);
        }
    }
}

/// The address in `listening on http://127.0.0.1:PORT/ (…)`.
pub fn parse_address(line: &str) -> Option<SocketAddr> {
    line.split("http://")
        .nth(1)?
        .split('/')
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("listening on http://127.0.0.1:8080/ (goroutine, http)"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(parse_address("listening on http://nowhere/"), None);
        assert_eq!(parse_address("panicked"), None);
    }

    fn sh(script: &str) -> Spec {
        let mut spec = Spec::new("test", "sh").args(["-c", script]);
        spec.start_timeout = Duration::from_millis(500);
        spec
    }

    #[test]
    fn a_server_that_starts_is_read_and_killed_on_drop() {
        let script = "echo 'listening on http://127.0.0.1:9/ (test)'; echo 'stats live=7'; \
                      echo 'stats live=3'; exec sleep 30";
        let server = start(sh(script)).unwrap();
        assert_eq!(server.addr, "127.0.0.1:9".parse().unwrap());
        let pid = server.pid();
        for _ in 0..100 {
            if server.live_peak() == 7 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(server.live_peak(), 7);
        drop(server);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn a_server_that_exits_is_reported_with_its_stderr() {
        let e = start(sh(
            "echo 'cannot listen: Address already in use' >&2; exit 3",
        ))
        .err()
        .unwrap();
        assert!(e.contains("exited before listening"), "{e}");
        assert!(e.contains("Address already in use"), "{e}");
    }

    #[test]
    fn a_silent_server_times_out_and_is_killed() {
        let e = start(sh("exec sleep 30")).err().unwrap();
        assert!(e.contains("did not listen within"), "{e}");
        let e = start(sh("echo hello; exec sleep 30")).err().unwrap();
        assert!(e.contains("printed \"hello\""), "{e}");
    }

    #[test]
    fn a_missing_program_is_an_error() {
        let e = start(Spec::new("nothing", "/nonexistent/server"))
            .err()
            .unwrap();
        assert!(e.contains("cannot start the nothing server"), "{e}");
    }
}
