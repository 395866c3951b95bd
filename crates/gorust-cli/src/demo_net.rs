//! `gorust demo`, step 4: the seeds' demonstration over the network.
//!
//! One HTTP/1.1 hello handler (`gorust serve --proto http`) served three ways — an OS thread
//! per connection (`--model threads`: std, no netpoller), a goroutine per connection
//! (`--model goroutine`) and the event loop (`--model eventloop`: a handler goroutine only
//! while bytes wait) — each in its own child process, loaded by this process's load
//! generator (closed loop, one thread) at each connection count. While the load runs, the
//! server's OS threads and resident memory are sampled from `/proc/PID/status`; its context
//! switches are summed over `/proc/PID/task/*/status` at the start and the end of the measured
//! window, after a warm-up and before the load closes its connections (a thread that exits
//! takes its counts out of `/proc`: the step then fails rather than show a count too low). RSS per connection is (peak − the
//! server's RSS before any connection) / connections. Live goroutines are the peak of the
//! server's own `stats live=N` lines (`serve --stats-ms`); a thread-per-connection server's
//! live count is its threads less the accepting one; the event loop's counts its handlers in
//! flight (plus the accept loop).

use std::time::Duration;

use serde::Serialize;

use crate::child::{self, Spec};
use crate::load::{self, micros};
use crate::procfs;

/// Load before the measured window: a thread-per-connection server is still accepting and
/// spawning when the last connect returns (the accept queue runs ahead of it), and a thread's
/// creation is not a request's cost.
const WARMUP: Duration = Duration::from_millis(200);

/// The models of the network step, in table order, each a `serve --model` value (with a line
/// in [`describe`]).
pub const MODELS: &[&str] = &["threads", "goroutine", "eventloop"];

/// How a model serves its connections, for the report.
pub fn describe(model: &str) -> &'static str {
    match model {
        "threads" => "a thread per connection (std)",
        "goroutine" => "a goroutine per connection (gorust)",
        "eventloop" => "an event loop: a handler only when data arrived (gorust)",
        _ => "another model",
    }
}

/// One model at one connection count: every figure of the table.
#[derive(Serialize)]
pub struct Row {
    pub model: &'static str,
    pub conns: usize,
    /// The server's OS threads (peak while loaded).
    pub os_threads: u64,
    /// Live goroutines or tasks (peak while loaded): for `threads`, its connection threads.
    pub live: u64,
    pub rss_per_conn_kib: f64,
    pub requests_per_sec: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub context_switches_per_request: f64,
    pub errors: u64,
}

fn start_server(model: &str, workers: Option<usize>) -> Result<child::Server, String> {
    let mut args = vec!["serve", "--proto", "http", "--model", model, "--port", "0"];
    args.extend(["--stats-ms", "20"]);
    let w = workers.map(|w| w.to_string());
    if let Some(w) = &w {
        args.extend(["--workers", w.as_str()]);
    }
    child::start(Spec::new(model, child::this_program()?).args(args))
}

/// Serves and loads one model at one connection count.
pub fn measure(
    model: &'static str,
    conns: usize,
    secs: Duration,
    workers: Option<usize>,
) -> Result<Row, String> {
    let mut server = start_server(model, workers)?;
    let (pid, addr) = (server.pid(), server.addr);
    std::thread::sleep(Duration::from_millis(100));
    server.reset_live();
    // Not a 0 if unreadable: the whole RSS would then be charged to the connections.
    let rss_before = procfs::status_field_of(&pid, "VmRSS")
        .ok_or_else(|| format!("cannot read the {model} server's VmRSS in /proc/{pid}/status"))?;
    let sampler = procfs::Sampler::start(&pid);
    let wire = load::http_get("127.0.0.1", "/");
    let drive = load::Drive {
        warmup: WARMUP,
        ..load::Drive::new(addr, &wire, conns, secs)
    };
    let res = drive.run_marked(|| procfs::context_switches_of(&pid));
    let (rss_peak, threads) = sampler.stop();
    let live = match model {
        // The connection threads: all but the accepting main thread.
        "threads" => threads.saturating_sub(1),
        _ => server.live_peak(),
    };
    let exited = server.check_running();
    drop(server);
    exited?;
    let load::Measured {
        stats,
        secs,
        marks: (switches_before, switches_after),
    } = res?;
    let errors = stats.errors();
    if stats.requests == 0 {
        // Printed as `0 req/s` and `p50 0µs`, this would read as a measurement.
        return Err(format!(
            "the {model} server answered no request ({errors} errors)"
        ));
    }
    // Not clamped at 0: a connection thread that exited in the window took its switches out
    // of `/proc`, and the figure would have read too low, or 0 (review, session 34).
    let switches = procfs::between(switches_before, switches_after)
        .map_err(|e| format!("the {model} server's context switches: {e}"))?;
    let requests = stats.requests;
    Ok(Row {
        model,
        conns,
        os_threads: threads,
        live,
        rss_per_conn_kib: rss_peak.saturating_sub(rss_before) as f64 / conns as f64,
        requests_per_sec: stats.requests as f64 / secs,
        p50_us: stats.hist.value_at_quantile(0.5),
        p99_us: stats.hist.value_at_quantile(0.99),
        p999_us: stats.hist.value_at_quantile(0.999),
        context_switches_per_request: switches as f64 / requests as f64,
        errors,
    })
}

pub fn header() -> String {
    format!(
        "   {:<10} {:>6} {:>8} {:>7} {:>9} {:>10} {:>8} {:>8} {:>8} {:>9} {:>6}",
        "model",
        "conns",
        "threads",
        "live",
        "KiB/conn",
        "req/s",
        "p50",
        "p99",
        "p99.9",
        "ctxsw/req",
        "errors"
    )
}

pub fn row(r: &Row) -> String {
    format!(
        "   {:<10} {:>6} {:>8} {:>7} {:>9.1} {:>10.0} {:>8} {:>8} {:>8} {:>9.2} {:>6}",
        r.model,
        r.conns,
        r.os_threads,
        r.live,
        r.rss_per_conn_kib,
        r.requests_per_sec,
        micros(r.p50_us),
        micros(r.p99_us),
        micros(r.p999_us),
        r.context_switches_per_request,
        r.errors
    )
}
