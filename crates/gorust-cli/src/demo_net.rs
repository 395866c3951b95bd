//! `gorust demo`, step 4: the seeds' demonstration over the network.
//!
//! One HTTP/1.1 hello handler (`gorust serve --proto http`) served two ways — an OS thread
//! per connection (`--model threads`: std, no netpoller) and a goroutine per connection
//! (`--model goroutine`) — each in its own child process, loaded by this process's load
//! generator (closed loop, one thread) at each connection count. While the load runs, the
//! server's OS threads and resident memory are sampled from `/proc/PID/status`; its context
//! switches are summed over `/proc/PID/task/*/status`. RSS per connection is (peak − the
//! server's RSS before any connection) / connections. The event-loop model joins this table
//! when it lands (issue 4).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::{load, procfs};

pub struct Row {
    pub model: &'static str,
    pub conns: usize,
    pub threads: u64,
    pub rss_per_conn_kib: f64,
    pub req_per_s: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub switches_per_req: f64,
    pub errors: u64,
}

/// Kills the server child, by its PID (we started it), when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(model: &str, workers: Option<usize>) -> Result<(Server, SocketAddr), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args(["serve", "--proto", "http", "--model", model, "--port", "0"]);
    if let Some(w) = workers {
        cmd.args(["--workers", &w.to_string()]);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = Server(
        cmd.spawn()
            .map_err(|e| format!("cannot start the {model} server: {e}"))?,
    );
    let mut line = String::new();
    let out = child.0.stdout.take().expect("piped");
    BufReader::new(out)
        .read_line(&mut line)
        .map_err(|e| format!("the {model} server said nothing: {e}"))?;
    // "listening on http://127.0.0.1:PORT/ (model, proto)"
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("the {model} server printed {line:?}"))?;
    Ok((child, addr))
}

/// Serves and loads one model at one connection count.
pub fn measure(
    model: &'static str,
    conns: usize,
    secs: Duration,
    workers: Option<usize>,
) -> Result<Row, String> {
    let (server, addr) = start_server(model, workers)?;
    let pid = server.0.id().to_string();
    std::thread::sleep(Duration::from_millis(100));
    let rss_before = procfs::status_field_of(&pid, "VmRSS").unwrap_or(0);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, pid) = (stop.clone(), pid.clone());
        std::thread::spawn(move || {
            let (mut rss, mut threads) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                rss = rss.max(procfs::status_field_of(&pid, "VmRSS").unwrap_or(0));
                threads = threads.max(procfs::status_field_of(&pid, "Threads").unwrap_or(0));
                std::thread::sleep(Duration::from_millis(20));
            }
            (rss, threads)
        })
    };
    let switches_before = procfs::context_switches_of(&pid);
    let wire = load::http_get("127.0.0.1", "/");
    let res = load::drive(addr, &wire, conns, 1, secs, None, Duration::from_secs(5));
    let switches = procfs::context_switches_of(&pid).saturating_sub(switches_before);
    stop.store(true, Ordering::Relaxed);
    let (rss_peak, threads) = sampler.join().map_err(|_| "the sampler panicked")?;
    drop(server);
    let (stats, secs) = res?;
    let requests = stats.requests.max(1);
    Ok(Row {
        model,
        conns,
        threads,
        rss_per_conn_kib: rss_peak.saturating_sub(rss_before) as f64 / conns as f64,
        req_per_s: stats.requests as f64 / secs,
        p50_us: stats.hist.value_at_quantile(0.5),
        p99_us: stats.hist.value_at_quantile(0.99),
        p999_us: stats.hist.value_at_quantile(0.999),
        switches_per_req: switches as f64 / requests as f64,
        errors: stats.connect_errors
            + stats.read_errors
            + stats.write_errors
            + stats.timeouts
            + stats.non_2xx,
    })
}

pub fn print_header() {
    println!(
        "   {:<10} {:>6} {:>8} {:>10} {:>10} {:>8} {:>8} {:>8} {:>9} {:>6}",
        "model",
        "conns",
        "threads",
        "KiB/conn",
        "req/s",
        "p50",
        "p99",
        "p99.9",
        "ctxsw/req",
        "errors"
    );
}

fn ms(us: u64) -> String {
    if us >= 1000 {
        format!("{:.1}ms", us as f64 / 1000.0)
    } else {
        format!("{us}µs")
    }
}

pub fn print_row(r: &Row) {
    println!(
        "   {:<10} {:>6} {:>8} {:>10.1} {:>10.0} {:>8} {:>8} {:>8} {:>9.2} {:>6}",
        r.model,
        r.conns,
        r.threads,
        r.rss_per_conn_kib,
        r.req_per_s,
        ms(r.p50_us),
        ms(r.p99_us),
        ms(r.p999_us),
        r.switches_per_req,
        r.errors
    );
}
