//! `gorust load`: a load generator for echo and HTTP/1.1 servers, with wrk's flags.
//!
//! 1. Parse the target (`host:port`, or `http://host:port/path`), check that the process may
//!    open `-c` descriptors, and open every connection before the clock starts (a refused
//!    connection or the descriptor limit ends the run with one line saying why).
//! 2. Split the connections over `-t` threads; each runs one epoll loop (`load_loop.rs`) for
//!    `-d`, closed-loop, or at a fixed total rate with `-R` (latency measured from the intended
//!    send time, as wrk2 does).
//! 3. Merge the threads' histograms and counters; print a wrk-like summary, or one JSON object
//!    with `--json`.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::load_loop::{self, Plan, Stats, Wire};
use crate::serve::Proto;

/// Descriptors the process needs besides its connections (stdio, epoll instances, slack).
const SPARE_FDS: u64 = 16;

/// The longest time any flag takes (`-d`, `--timeout`, `--secs`, and at `-R` the time between
/// two requests of one connection): a day. Longer is a slip of the keyboard, and an instant
/// that far ahead can overflow.
pub const MAX_SECS: f64 = 86_400.0;

/// The largest `--size`: a message is one buffer, allocated at once.
const MAX_SIZE: usize = 64 << 20;

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Target: host:port, or http://host:port/path for http.
    pub addr: String,
    /// Protocol (default: http for an http:// target, else echo).
    #[arg(long, value_enum)]
    pub proto: Option<Proto>,
    /// Connections kept open and busy.
    #[arg(short = 'c', long, default_value_t = 100)]
    pub connections: usize,
    /// Duration of the run: 10s, 500ms, 1m.
    #[arg(short = 'd', long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Threads, each running one event loop over its share of the connections.
    #[arg(short = 't', long, default_value_t = 1)]
    pub threads: usize,
    /// Message size in bytes (echo), at most 64 MiB.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Fixed total request rate per second (default: closed loop, as fast as replies come).
    #[arg(short = 'R', long)]
    pub rate: Option<f64>,
    /// A reply slower than this is a timeout.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// Parses `10s`, `500ms`, `1m`, `250us`, `1h`; a bare number is seconds. At most a day.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad =
        || format!("invalid duration '{s}': expected a number with a unit, e.g. 10s, 500ms, 1m");
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "" | "s" => v,
        "ms" => v / 1e3,
        "us" | "µs" => v / 1e6,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(bad()),
    };
    let d = Duration::try_from_secs_f64(secs).map_err(|_| bad())?;
    if d.is_zero() {
        return Err(format!("invalid duration '{s}': must be more than zero"));
    }
    if secs > MAX_SECS {
        return Err(format!("invalid duration '{s}': at most a day (24h)"));
    }
    Ok(d)
}

/// Checks `--secs` of `demo` and `compare`: from a millisecond to a day (a value that rounds
/// to almost nothing measured nothing, and reports divided by it: `NaN` requests/s).
pub fn check_secs(flag: &str, secs: f64) -> Result<Duration, String> {
    if (1e-3..=MAX_SECS).contains(&secs) {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(format!(
            "{flag} must be a number of seconds from 0.001 to {MAX_SECS} (a day)"
        ))
    }
}

/// The target, resolved.
struct Target {
    addr: SocketAddr,
    /// The name's other addresses, in the resolver's order (`localhost`: `::1` and
    /// `127.0.0.1`), tried when `addr` refuses (`reachable`).
    others: Vec<SocketAddr>,
    host: String,
    path: String,
    is_url: bool,
}

fn parse_target(s: &str) -> Result<Target, String> {
    let bad = |why: &str| format!("invalid address '{s}': {why}");
    let (hostport, path, is_url) = if let Some(rest) = s.strip_prefix("http://") {
        match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string(), true),
            None => (rest, "/".to_string(), true),
        }
    } else if s.contains("://") {
        return Err(bad("only http:// URLs are supported"));
    } else {
        (s, "/".to_string(), false)
    };
    // A port follows the last ':' outside an IPv6 literal's brackets (`[::1]` has none).
    let after_host = hostport.rfind(']').map_or(hostport, |i| &hostport[i..]);
    let with_port = if is_url && !after_host.contains(':') {
        format!("{hostport}:80")
    } else {
        hostport.to_string()
    };
    let Some((host, port)) = with_port.rsplit_once(':') else {
        return Err(bad("expected host:port or http://host:port/path"));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad("expected host:port or http://host:port/path"));
    }
    let mut addrs = with_port
        .to_socket_addrs()
        .map_err(|e| bad(&format!("cannot resolve: {e}")))?;
    let addr = addrs.next().ok_or_else(|| bad("the host has no address"))?;
    Ok(Target {
        addr,
        others: addrs.collect(),
        host: hostport.to_string(),
        path,
        is_url,
    })
}

pub fn run(args: Args) -> Result<(), String> {
    let target = parse_target(&args.addr)?;
    let proto = args.proto.unwrap_or(if target.is_url {
        Proto::Http
    } else {
        Proto::Echo
    });
    if args.connections == 0 || args.threads == 0 {
        return Err("-c and -t must be at least 1".into());
    }
    if !(1..=MAX_SIZE).contains(&args.size) {
        return Err(format!(
            "--size must be from 1 to {MAX_SIZE} bytes (64 MiB)"
        ));
    }
    if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        return Err("-R must be a positive number of requests per second".into());
    }
    let conns = args.connections;
    let threads = args.threads.min(conns);
    check_fd_limit(conns, threads as u64)?;

    let wire = match proto {
        Proto::Echo => Wire::echo(args.size),
        Proto::Http => http_get(&target.host, &target.path),
    };
    let addr = reachable(target.addr, &target.others, args.timeout);
    let run = Drive {
        threads,
        rate: args.rate,
        timeout: args.timeout,
        ..Drive::new(addr, &wire, conns, args.duration)
    }
    .run()?;
    let report = Report {
        proto,
        conns,
        threads,
        secs: run.secs,
        rate: args.rate,
        stats: run.stats,
    };
    // Not println!, which panics on a closed stdout (`gorust load ... | true`).
    let text = if args.json {
        report.json()
    } else {
        report.text(&addr, &args.addr)
    };
    crate::progress::print_document(text.trim_end())
}

/// The first of a name's addresses that accepts a connection (a probe, closed at once), in the
/// resolver's order, or `first` if none does (the run then reports `first`'s error). Where
/// `localhost` resolves to `::1` first, a server bound to 127.0.0.1 was refused: only the
/// first address was tried (review, session 24).
fn reachable(first: SocketAddr, others: &[SocketAddr], timeout: Duration) -> SocketAddr {
    if others.is_empty() {
        return first;
    }
    std::iter::once(first)
        .chain(others.iter().copied())
        .find(|a| TcpStream::connect_timeout(a, timeout).is_ok())
        .unwrap_or(first)
}

/// An HTTP/1.1 `GET` of `path` on `host`, as the load generator sends it.
pub fn http_get(host: &str, path: &str) -> Wire {
    Wire::Http(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n")
            .into_bytes()
            .into(),
    )
}

/// One run of the load generator, as `load`, `demo` and `compare` drive it.
pub struct Drive<'a> {
    pub addr: SocketAddr,
    pub wire: &'a Wire,
    pub conns: usize,
    /// Threads, each an event loop over its share of the connections (at most `conns`).
    pub threads: usize,
    /// Load on the same connections before the measured window; its replies are neither
    /// counted nor timed.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Requests per second in total (`-R`); `None` is a closed loop.
    pub rate: Option<f64>,
    /// A reply slower than this is a timeout.
    pub timeout: Duration,
}

/// What a [`Drive`] measured.
pub struct Measured<T> {
    pub stats: Stats,
    /// The measured window's length in seconds.
    pub secs: f64,
    /// What the mark returned at the window's start and at its end.
    pub marks: (T, T),
}

impl<'a> Drive<'a> {
    /// `conns` connections measured for `duration`: one thread, closed loop, no warm-up, a
    /// reply timeout of 5 s.
    pub fn new(addr: SocketAddr, wire: &'a Wire, conns: usize, duration: Duration) -> Drive<'a> {
        Drive {
            addr,
            wire,
            conns,
            threads: 1,
            warmup: Duration::ZERO,
            duration,
            rate: None,
            timeout: Duration::from_secs(5),
        }
    }

    /// Opens the connections, loads them, and returns the merged statistics of the measured
    /// window.
    pub fn run(&self) -> Result<Measured<()>, String> {
        self.run_marked(|| ())
    }

    /// As [`Drive::run`], and calls `mark` at the measured window's start and at its end, both
    /// times with every connection open: a server's figures read there (its CPU time, its
    /// threads' context switches) cover the requests counted, and neither the connects nor the
    /// teardown. The connections close after the second mark: a thread-per-connection server's
    /// threads exit then, and with them their counts in `/proc`.
    pub fn run_marked<T>(&self, mut mark: impl FnMut() -> T) -> Result<Measured<T>, String> {
        let (addr, conns) = (self.addr, self.conns);
        let threads = self.threads.clamp(1, conns.max(1));
        let interval = match self.rate {
            Some(r) => Some(send_interval(conns, r)?),
            None => None,
        };
        let mut socks = Vec::with_capacity(conns);
        for i in 0..conns {
            let s = connect(&addr, self.timeout).map_err(|e| connect_error(&e, conns, i, &addr))?;
            socks.push((i, s));
        }
        let too_long = || "the run is too long to time".to_string();
        let first_send = Instant::now() + Duration::from_millis(5);
        let start = first_send.checked_add(self.warmup).ok_or_else(too_long)?;
        let end = start.checked_add(self.duration).ok_or_else(too_long)?;
        let mut handles = Vec::with_capacity(threads);
        // Raised if a thread cannot be started: the others stop at once and are joined.
        let stop = Arc::new(AtomicBool::new(false));
        for k in (0..threads).rev() {
            let share = socks.split_off(k * conns / threads);
            let plan = Plan {
                addr,
                wire: self.wire.clone(),
                socks: share,
                total_conns: conns,
                interval,
                first_send,
                start,
                end,
                timeout: self.timeout,
                stop: stop.clone(),
            };
            let spawned = std::thread::Builder::new()
                .name(format!("load-{k}"))
                .spawn(move || load_loop::run(plan));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // Before, the threads already started went on sending until `end`, into
                    // whatever the caller measured next (review, session 24).
                    stop.store(true, Ordering::Relaxed);
                    handles.into_iter().for_each(|h| drop(h.join()));
                    return Err(format!("cannot spawn a load thread: {e}"));
                }
            }
        }
        // This thread only waits meanwhile; the load threads run to `end` on their own.
        std::thread::sleep(start.saturating_duration_since(Instant::now()));
        let first = mark();
        let mut total = Stats::new();
        let mut open = Vec::with_capacity(conns);
        // Every thread is joined before an error is returned: one returned at the first failed
        // join left the others connecting and sending until `end` (review, session 24).
        let mut failed = None;
        for h in handles {
            match h.join() {
                Ok(Ok((s, socks))) => {
                    total.merge(&s);
                    open.extend(socks);
                }
                Ok(Err(e)) => failed = failed.or(Some(e)),
                Err(_) => failed = failed.or_else(|| Some("a load thread panicked".to_string())),
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        let last = mark();
        drop(open);
        let secs = Instant::now().min(end).duration_since(start).as_secs_f64();
        Ok(Measured {
            stats: total,
            secs,
            marks: (first, last),
        })
    }
}

/// With `-R`: the time between two requests of one connection when `conns` connections send
/// `rate` requests per second in total; from 1 µs to a day. Under a microsecond the schedule
/// cannot be kept (and a rate past ~10^9 per connection rounded the interval to zero: a closed
/// loop reported as that rate; review, session 24).
fn send_interval(conns: usize, rate: f64) -> Result<Duration, String> {
    let secs = conns as f64 / rate;
    if secs > MAX_SECS {
        Err(format!(
            "-R {rate}: fewer than one request a day on each of {conns} connections"
        ))
    } else if secs < 1e-6 {
        Err(format!(
            "-R {rate}: more than a million requests a second on each of {conns} connections; \
             use a lower rate or more connections (-c)"
        ))
    } else {
        Ok(Duration::from_secs_f64(secs))
    }
}

fn connect(addr: &SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(addr, timeout)?;
    s.set_nodelay(true)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

fn connect_error(e: &std::io::Error, conns: usize, opened: usize, addr: &SocketAddr) -> String {
    if gorust::net::is_resource_exhausted(e) {
        format!(
            "cannot open {conns} connections: ran out of descriptors after {opened} ({e}); use fewer connections"
        )
    } else if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) {
        format!(
            "cannot open {conns} connections to {addr}: ran out of local ports after {opened} ({e}; \
             the range is net.ipv4.ip_local_port_range); use fewer connections"
        )
    } else {
        format!("cannot connect to {addr}: {e}")
    }
}

/// Fails with a clear message if the process may not open `conns` connections and `extra`
/// other descriptors, after raising its soft limit as far as the hard limit allows.
pub fn check_fd_limit(conns: usize, extra: u64) -> Result<(), String> {
    // Saturating: a count beyond any limit is refused below, not wrapped into a small one.
    let want = (conns as u64)
        .saturating_add(extra)
        .saturating_add(SPARE_FDS);
    let Some(limit) = crate::sys::raise_fd_limit(want) else {
        return Ok(()); // Unknown: let connect report EMFILE if it comes to that.
    };
    if limit < want {
        return Err(format!(
            "cannot open {conns} connections: the process may open at most {limit} files (ulimit -n); use fewer connections"
        ));
    }
    Ok(())
}

struct Report {
    proto: Proto,
    conns: usize,
    threads: usize,
    secs: f64,
    rate: Option<f64>,
    stats: Stats,
}

impl Report {
    fn latency_us(&self, q: f64) -> u64 {
        if self.stats.hist.is_empty() {
            0
        } else {
            self.stats.hist.value_at_quantile(q)
        }
    }

    fn errors(&self) -> u64 {
        self.stats.errors()
    }

    /// The summary, for people.
    fn text(&self, addr: &SocketAddr, target: &str) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let s = &self.stats;
        let proto = format!("{:?}", self.proto).to_lowercase();
        let mode = match self.rate {
            Some(r) => format!("{r} requests/s in total, latency from intended send times"),
            None => "closed loop".to_string(),
        };
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "{:.1}s {proto} load on {target} ({addr}): {} connections, {} threads, {mode}",
            self.secs, self.conns, self.threads
        );
        let _ = writeln!(
            out,
            "  requests     {:>12}   {:>12.1} requests/s",
            s.requests,
            s.requests as f64 / self.secs
        );
        let _ = writeln!(
            out,
            "  transfer     {:>12}   {:>12}/s",
            bytes(s.bytes as f64),
            bytes(s.bytes as f64 / self.secs)
        );
        let _ = writeln!(
            out,
            "  latency      p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            micros(self.latency_us(0.5)),
            micros(self.latency_us(0.9)),
            micros(self.latency_us(0.99)),
            micros(self.latency_us(0.999)),
            micros(s.hist.max())
        );
        let _ = writeln!(
            out,
            "  errors       {:>12}   (connect {}, read {}, write {}, timeout {}, non-2xx {}, bad echo {})",
            self.errors(),
            s.connect_errors,
            s.read_errors,
            s.write_errors,
            s.timeouts,
            s.non_2xx,
            s.bad_echoes
        );
        out
    }

    fn json(&self) -> String {
        let s = &self.stats;
        let rate = self.rate.map_or("null".to_string(), |r| r.to_string());
        format!(
            concat!(
                "{{\"proto\":\"{}\",\"connections\":{},\"threads\":{},\"duration_s\":{:.3},",
                "\"rate\":{},\"requests\":{},\"requests_per_sec\":{:.1},\"bytes\":{},",
                "\"bytes_per_sec\":{:.1},\"latency_us\":{{\"p50\":{},\"p90\":{},\"p99\":{},",
                "\"p99_9\":{},\"max\":{},\"mean\":{:.1}}},\"errors\":{{\"total\":{},",
                "\"connect\":{},\"read\":{},\"write\":{},\"timeout\":{},\"non_2xx\":{},",
                "\"bad_echo\":{}}}}}"
            ),
            format!("{:?}", self.proto).to_lowercase(),
            self.conns,
            self.threads,
            self.secs,
            rate,
            s.requests,
            s.requests as f64 / self.secs,
            s.bytes,
            s.bytes as f64 / self.secs,
            self.latency_us(0.5),
            self.latency_us(0.9),
            self.latency_us(0.99),
            self.latency_us(0.999),
            s.hist.max(),
            if s.hist.is_empty() {
                0.0
            } else {
                s.hist.mean()
            },
            self.errors(),
            s.connect_errors,
            s.read_errors,
            s.write_errors,
            s.timeouts,
            s.non_2xx,
            s.bad_echoes
        )
    }
}

/// A latency for people: 850µs, 1.50ms, 2.00s.
pub fn micros(us: u64) -> String {
    if us >= 1_000_000 {
        format!("{:.2}s", us as f64 / 1e6)
    } else if us >= 1000 {
        format!("{:.2}ms", us as f64 / 1e3)
    } else {
        format!("{us}µs")
    }
}

fn bytes(b: f64) -> String {
    if b >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.2} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        for bad in [
            "",
            "s",
            "10x",
            "-1s",
            "0s",
            "1.2.3s",
            "25h",
            "10000000000000000000",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_marks_see_every_connection_open() {
        let (addr, counts) = crate::testing::counting_server(crate::testing::echo);
        let wire = Wire::echo(16);
        let drive = Drive {
            warmup: Duration::from_millis(50),
            ..Drive::new(addr, &wire, 4, Duration::from_millis(100))
        };
        let m = drive.run_marked(|| counts.get()).unwrap();
        assert_eq!(m.marks, ((4, 4), (4, 4)), "(accepted, open)");
        assert!(m.stats.requests > 0);
        assert!((0.09..0.2).contains(&m.secs), "{}", m.secs);
    }

    /// A server that answers one request per connection and closes it (`Connection: close`,
    /// HTTP/1.0): the reply and the close come in one read pass, and the reply counts. Before,
    /// the close was seen first and every request was a read error (review, session 24).
    #[test]
    fn replies_followed_by_the_close_count_and_are_not_errors() {
        fn answer_once(mut conn: std::net::TcpStream) {
            use std::io::{Read, Write};
            let mut head = Vec::new();
            let mut buf = [0u8; 512];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
            let _ = conn.write_all(reply);
        }
        let (addr, _) = crate::testing::counting_server(answer_once);
        let wire = Wire::Http(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".as_slice().into());
        let m = Drive::new(addr, &wire, 2, Duration::from_millis(300))
            .run()
            .unwrap();
        assert!(m.stats.requests > 0, "no reply counted");
        assert_eq!(m.stats.read_errors, 0, "{} replies", m.stats.requests);

        // With a rate, a close after each reply keeps the schedule: 20 a second for half a
        // second is about 10 requests. The next request's time was not moved on before the
        // reconnect, so it went out as soon as the connection was up: a closed loop, paced by
        // connects alone (hundreds here; review, session 34).
        let paced = Drive {
            rate: Some(20.0),
            ..Drive::new(addr, &wire, 1, Duration::from_millis(500))
        };
        let m = paced.run().unwrap();
        assert!(
            (1..=14).contains(&m.stats.requests),
            "{} requests at 20/s in 0.5 s",
            m.stats.requests
        );

        // Nor does one that closes before replying: each lost request uses its turn.
        fn close_unanswered(mut conn: std::net::TcpStream) {
            use std::io::Read;
            let _ = conn.read(&mut [0u8; 512]);
        }
        let (addr, _) = crate::testing::counting_server(close_unanswered);
        let paced = Drive {
            rate: Some(20.0),
            ..Drive::new(addr, &wire, 1, Duration::from_millis(500))
        };
        let m = paced.run().unwrap();
        assert_eq!(m.stats.requests, 0);
        assert!(
            (1..=14).contains(&m.stats.read_errors),
            "{} requests lost at 20/s in 0.5 s",
            m.stats.read_errors
        );
    }

    /// A name's addresses are tried in order until one accepts: a refused first address (as
    /// `::1` for a server bound to 127.0.0.1) no longer fails the run.
    #[test]
    fn the_first_address_that_accepts_is_used() {
        let refused = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let (open, _) = crate::testing::counting_server(crate::testing::echo);
        let t = Duration::from_secs(2);
        assert_eq!(reachable(refused, &[open], t), open);
        assert_eq!(reachable(open, &[refused], t), open);
        assert_eq!(reachable(refused, &[], t), refused, "one address: no probe");
        assert_eq!(reachable(refused, &[refused], t), refused, "none accepts");
    }

    #[test]
    fn out_of_local_ports_says_so() {
        let e = std::io::Error::from_raw_os_error(libc::EADDRNOTAVAIL);
        let addr = "127.0.0.1:9".parse().unwrap();
        let msg = connect_error(&e, 30_000, 28_000, &addr);
        assert!(msg.contains("ran out of local ports after 28000"), "{msg}");
        assert!(msg.contains("use fewer connections"), "{msg}");
    }

    #[test]
    fn targets() {
        let t = parse_target("http://127.0.0.1:8080/hello").unwrap();
        assert!(t.is_url);
        assert_eq!((t.path.as_str(), t.addr.port()), ("/hello", 8080));
        let t = parse_target("127.0.0.1:9").unwrap();
        assert!(!t.is_url);
        assert_eq!(parse_target("http://127.0.0.1").unwrap().addr.port(), 80);
        let t = parse_target("http://[::1]/").unwrap();
        assert_eq!(
            (t.addr, t.host.as_str()),
            ("[::1]:80".parse().unwrap(), "[::1]")
        );
        let t = parse_target("http://[::1]:8080/x").unwrap();
        assert_eq!((t.addr.port(), t.path.as_str()), (8080, "/x"));
        assert_eq!(parse_target("[::1]:9").unwrap().addr.port(), 9);
        for bad in [
            "127.0.0.1",
            "nonsense",
            ":80",
            "127.0.0.1:99999",
            "https://x:1/",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }
}
