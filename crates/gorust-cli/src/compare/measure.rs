//! One run: a fresh server under the built-in load or `wrk -t1`, and its figures.

use std::process::Command;
use std::time::Duration;

use super::Run;
use crate::{child, load, procfs, sys};

/// Warms `server` up, then loads it for `secs` and reads its figures.
///
/// The built-in load warms up and measures on one set of connections and reads the server's
/// CPU time at the measured window's start and end, with every connection open: accepting,
/// spawning for and tearing down `conns` connections is not charged to the requests of the
/// window. wrk opens its own connections, so with `--wrk` the server's CPU time is read
/// around the whole wrk run, its connects included.
pub(super) fn measure(
    server: &child::Server,
    conns: usize,
    secs: f64,
    warm: f64,
    load_cpu: Option<usize>,
    wrk: bool,
    round: usize,
) -> Result<Run, String> {
    let pid = server.pid();
    let addr = server.addr;
    let sampler = procfs::Sampler::start(&pid);
    let measured = if wrk {
        builtin_load(addr, conns, 0.0, warm, load_cpu, || ()).and_then(|_| {
            let cpu_before = procfs::cpu_ns_of(&pid);
            let f = wrk_load(addr, conns, secs, load_cpu)?;
            Ok((f, procfs::between(cpu_before, procfs::cpu_ns_of(&pid))?))
        })
    } else {
        let cpu = || procfs::cpu_ns_of(&pid);
        builtin_load(addr, conns, warm, secs, load_cpu, cpu)
            .and_then(|(f, (before, after))| Ok((f, procfs::between(before, after)?)))
    };
    let (rss, threads) = sampler.stop();
    let (f, cpu_ns) = measured?;
    usable(&f)?;
    Ok(Run {
        round: round + 1,
        requests_per_sec: f.requests_per_sec,
        p50_us: f.p50_us,
        p99_us: f.p99_us,
        p999_us: f.p999_us,
        errors: f.errors,
        server_cpu_us_per_request: cpu_ns as f64 / 1e3 / f.requests as f64,
        server_rss_kib: rss,
        server_threads: threads,
    })
}

/// Whether a run's figures may be used: some request answered, and at most 1% errors. Replies
/// that are not 2xx count as requests, so before, a server answering errors fast, or
/// resetting connections, read as a fast server with a summed error column beside it
/// (review, session 28).
fn usable(f: &Figures) -> Result<(), String> {
    if f.requests == 0 {
        return Err(format!("no request answered ({} errors)", f.errors));
    }
    if f.errors.saturating_mul(100) > f.requests {
        return Err(format!(
            "{} errors in {} requests (more than 1%): not measured",
            f.errors, f.requests
        ));
    }
    Ok(())
}

/// What one load run measured.
struct Figures {
    requests: u64,
    requests_per_sec: f64,
    p50_us: u64,
    p99_us: u64,
    p999_us: Option<u64>,
    errors: u64,
}

/// The built-in generator on one thread, pinned to `cpu`: `warm` seconds of warm-up, then
/// `secs` measured, on the same connections; `mark` is read at the measured window's start
/// and end (`load::Drive::run_marked`).
fn builtin_load<T: Send>(
    addr: std::net::SocketAddr,
    conns: usize,
    warm: f64,
    secs: f64,
    cpu: Option<usize>,
    mark: impl FnMut() -> T + Send,
) -> Result<(Figures, (T, T)), String> {
    let wire = load::http_get("127.0.0.1", "/");
    let run = move || {
        if let Some(cpu) = cpu {
            // The load thread `Drive` starts inherits this thread's mask.
            sys::pin_current_thread(cpu)?;
        }
        load::Drive {
            warmup: Duration::from_secs_f64(warm),
            ..load::Drive::new(addr, &wire, conns, Duration::from_secs_f64(secs))
        }
        .run_marked(mark)
    };
    let load::Measured { stats, secs, marks } = std::thread::scope(|s| s.spawn(run).join())
        .map_err(|_| "the load thread panicked".to_string())??;
    let q = |q| {
        if stats.hist.is_empty() {
            0
        } else {
            stats.hist.value_at_quantile(q)
        }
    };
    let figures = Figures {
        requests: stats.requests,
        requests_per_sec: stats.requests as f64 / secs,
        p50_us: q(0.5),
        p99_us: q(0.99),
        p999_us: Some(q(0.999)),
        errors: stats.errors(),
    };
    Ok((figures, marks))
}

/// `wrk -t1` pinned to `cpu`, its summary parsed.
fn wrk_load(
    addr: std::net::SocketAddr,
    conns: usize,
    secs: f64,
    cpu: Option<usize>,
) -> Result<Figures, String> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "-c", &conns.to_string()])
        .args(["-d", &format!("{}s", secs.max(1.0) as u64)])
        .args(["--latency", "--timeout", "5s"])
        .arg(format!("http://{addr}/"));
    sys::child_setup(&mut cmd, cpu)?;
    let o = cmd.output().map_err(|e| format!("cannot run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&o.stdout);
    if !o.status.success() {
        return Err(format!(
            "wrk failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    parse_wrk(&text).ok_or_else(|| format!("cannot read wrk's output: {text:?}"))
}

/// Reads wrk's `--latency` summary.
fn parse_wrk(text: &str) -> Option<Figures> {
    let after = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key).map(|r| r.trim().to_string()))
    };
    let requests_per_sec: f64 = after("Requests/sec:")?.parse().ok()?;
    let requests: u64 = text
        .lines()
        .find(|l| l.contains("requests in"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let pct = |p: &str| after(p).and_then(|v| wrk_micros(&v));
    let mut errors = 0;
    if let Some(s) = after("Socket errors:") {
        // "connect 0, read 0, write 0, timeout 0"
        errors += s
            .split(',')
            .filter_map(|kv| kv.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    if let Some(n) = after("Non-2xx or 3xx responses:") {
        errors += n.parse::<u64>().unwrap_or(0);
    }
    Some(Figures {
        requests,
        requests_per_sec,
        p50_us: pct("50%")?,
        p99_us: pct("99%")?,
        p999_us: None,
        errors,
    })
}

/// wrk's "1.23ms", "456.00us", "1.50s" in microseconds.
fn wrk_micros(v: &str) -> Option<u64> {
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    let us = match unit {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        "m" => n * 60e6,
        _ => return None,
    };
    Some(us.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_cpu_is_read_around_one_set_of_open_connections() {
        let serve = |mut c: std::net::TcpStream| {
            let _ = crate::http::serve_conn(&mut c, &std::sync::atomic::AtomicU64::new(0));
        };
        let (addr, counts) = crate::testing::counting_server(serve);
        let (f, marks) = builtin_load(addr, 3, 0.05, 0.1, None, || counts.get()).unwrap();
        assert!(f.requests > 0 && f.errors == 0);
        // No connection accepted or closed between warm-up and measurement, nor before the
        // last read.
        assert_eq!(marks, ((3, 3), (3, 3)), "(accepted, open)");
    }

    /// A server that answers every request with 500 is not measured.
    #[test]
    fn a_run_of_error_replies_is_not_measured() {
        let serve = |mut c: std::net::TcpStream| {
            use std::io::{Read, Write};
            let mut buf = [0u8; 4096];
            while matches!(c.read(&mut buf), Ok(1..)) {
                let reply = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
                if c.write_all(reply).is_err() {
                    return;
                }
            }
        };
        let (addr, counts) = crate::testing::counting_server(serve);
        let (f, _) = builtin_load(addr, 2, 0.05, 0.1, None, || counts.get()).unwrap();
        assert!(
            f.requests > 0 && f.errors == f.requests,
            "{} {}",
            f.requests,
            f.errors
        );
        let refused = usable(&f).unwrap_err();
        assert!(refused.contains("more than 1%"), "{refused}");
    }

    #[test]
    fn wrk_summary() {
        let text = "Running 1s test @ http://127.0.0.1:8080/
  1 threads and 100 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.89ms  120.00us   3.00ms   90.00%
    Req/Sec   112.00k     2.00k  115.00k    80.00%
  Latency Distribution
     50%  850.00us
     75%    0.92ms
     90%    1.01ms
     99%    1.50ms
  113000 requests in 1.00s, 12.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec: 112999.50
Transfer/sec:     12.00MB
";
        let f = parse_wrk(text).unwrap();
        assert_eq!(f.requests, 113_000);
        assert_eq!((f.p50_us, f.p99_us, f.p999_us), (850, 1500, None));
        assert_eq!(f.errors, 3);
        assert!((f.requests_per_sec - 112_999.5).abs() < 1e-6);
        assert!(parse_wrk("garbage").is_none());
    }
}
