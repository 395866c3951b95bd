//! `gorust compare`: gorust's HTTP/1.1 hello against its peers, measured in the same run.
//!
//! ```text
//! gorust compare [--levels 100,1000] [--rounds 5] [--secs 5]
//!                [--servers gorust,gorust-eventloop,hyper-tokio,may,go]
//!                [--pin | --no-pin] [--wrk] [--json] [--chart PATH]
//! ```
//!
//! Servers, each a child process serving the same hello (`Request #N`, keep-alive); all of
//! them by default, `gorust` always:
//! - `gorust`: `gorust serve --proto http --model goroutine --workers 1`;
//! - `gorust-eventloop`: `gorust serve --proto http --model eventloop --workers 1`;
//! - `hyper-tokio`: hyper 1 on tokio's current-thread runtime (`serve --model hyper-tokio`);
//! - `may`: may_minihttp on one may worker (`serve --model may`);
//! - `go`: Go's net/http with `GOMAXPROCS=1`, built from `bench/go/` with `go build` when `go`
//!   is installed (skipped with a note otherwise).
//!
//! Method:
//! 1. With `--pin` (the default when the process may use two CPUs or more), every server runs
//!    pinned to the first allowed CPU and the load to the second: one core each, as issue 5's
//!    reference figures were measured.
//! 2. For each connection count, the servers run interleaved — A B C, B C A, C A B, … — for
//!    `--rounds` rounds, so that a slow minute of this shared machine falls on every server
//!    alike, and each round starts one server later, so that none always runs first (before
//!    session 26 gorust did). Each run starts a fresh server, loads it for a warm-up (half of
//!    `--secs`, at most 0.5 s), then measures `--secs` on the same connections.
//! 3. The load is the built-in generator (`gorust load`'s engine: one thread, one epoll loop,
//!    closed loop, one request outstanding per connection), or `wrk -t1` with `--wrk`.
//! 4. Figures per run: requests/s, p50/p99/p99.9 latency (wrk reports no p99.9), errors, the
//!    server's CPU time per request (`/proc/PID/task/*/schedstat`, read at the measured
//!    window's start and end with every connection open; around the whole wrk run with
//!    `--wrk`), its peak RSS and threads.
//! 5. Reported per server: the median of each figure over the rounds, and for each peer the
//!    median of the per-round ratios gorust/peer — of requests/s (above 1: gorust serves
//!    more) and of p99 (below 1: gorust's tail is shorter). Pairing by round is what absorbs
//!    this machine's noise; single runs vary by ±30%.
//!
//! A server that cannot start (a failed bind, a missing program) ends the command with its
//! own error message; a run whose load fails, whose server exits before the run ends, whose
//! server CPU time cannot be read, or with more than 1% errors (non-2xx replies included) is
//! reported and left out of the medians. Every child is killed by its PID when its run ends,
//! on every path (`child::Server`).
//!
//! Files: `servers.rs` (which servers, how each starts), `measure.rs` (one run under load),
//! `table.rs` (the table and the chart); here the command, its figures and their medians.

mod measure;
mod servers;
mod table;

use std::path::PathBuf;

use serde::Serialize;

use crate::{chart, child, load, procfs, progress, sys};
use measure::measure;
pub use servers::Peer;
use servers::{choose_servers, program_exists, ServerDef};
use table::{header, row, write_chart};

/// The most `--rounds`: more is weeks of running, and the runs' count must not overflow.
const MAX_ROUNDS: usize = 1000;

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Connection counts (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    pub levels: Vec<usize>,
    /// Rounds, at most 1,000; each runs every server once at each level, interleaved.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Seconds of measured load per run (after a warm-up of half that, at most 0.5 s).
    #[arg(long, default_value_t = 5.0)]
    pub secs: f64,
    /// Servers to run (comma-separated; default: gorust and every peer available here).
    #[arg(long, value_delimiter = ',')]
    pub servers: Vec<Peer>,
    /// Pin the server to one CPU and the load to another (default when 2+ CPUs are usable).
    #[arg(long, conflicts_with = "no_pin")]
    pub pin: bool,
    /// Do not pin.
    #[arg(long)]
    pub no_pin: bool,
    /// Load with `wrk -t1` instead of the built-in generator (whole seconds; no p99.9).
    #[arg(long)]
    pub wrk: bool,
    /// Print one JSON document with every run and summary on stdout, instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Where to write the SVG chart.
    #[arg(long, default_value = "target/gorust-compare.svg")]
    pub chart: PathBuf,
    /// The Go server's source directory (default: the repository's bench/go).
    #[arg(long)]
    pub go_src: Option<PathBuf>,
}

/// One measured run.

#[derive(Serialize, Clone)]
struct Run {
    round: usize,
    requests_per_sec: f64,
    p50_us: u64,
    p99_us: u64,
    p999_us: Option<u64>,
    errors: u64,
    server_cpu_us_per_request: f64,
    server_rss_kib: u64,
    server_threads: u64,
}

#[derive(Serialize)]
struct Medians {
    requests_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
    p999_us: Option<f64>,
    server_cpu_us_per_request: f64,
    server_rss_kib: f64,
}

/// Medians of the per-round ratios gorust/peer.
#[derive(Serialize)]
struct Ratios {
    /// Above 1: gorust served more.
    requests_per_sec: f64,
    /// Below 1: gorust's p99 was shorter.
    p99: f64,
    /// Rounds in which both ran.
    rounds: usize,
}

#[derive(Serialize)]
struct Summary {
    server: Peer,
    runs: Vec<Run>,
    failed_runs: Vec<String>,
    median: Option<Medians>,
    gorust_ratio: Option<Ratios>,
}

#[derive(Serialize)]
struct Level {
    connections: usize,
    servers: Vec<Summary>,
}

#[derive(Serialize)]
struct Machine {
    cpu: String,
    cpus: usize,
    kernel: String,
}

#[derive(Serialize)]
struct Settings {
    levels: Vec<usize>,
    rounds: usize,
    secs: f64,
    warmup_secs: f64,
    load: &'static str,
    server_cpu: Option<usize>,
    load_cpu: Option<usize>,
    /// Whether gorust and the Rust peers were built with optimizations (`child::OPTIMIZED`).
    optimized: bool,
}

#[derive(Serialize)]
struct Report {
    machine: Machine,
    settings: Settings,
    levels: Vec<Level>,
    chart: String,
}

/// Where the server runs and where the load runs.
#[derive(Clone, Copy)]
struct Cpus {
    server: Option<usize>,
    load: Option<usize>,
}

pub fn run(args: Args) -> Result<(), String> {
    if args.levels.is_empty() || args.levels.contains(&0) {
        return Err("--levels: every connection count must be at least 1".into());
    }
    if !(1..=MAX_ROUNDS).contains(&args.rounds) {
        return Err(format!(
            "--rounds must be at least 1 and at most {MAX_ROUNDS}"
        ));
    }
    load::check_secs("--secs", args.secs)?;
    let secs = if args.wrk {
        if !program_exists("wrk") {
            return Err("--wrk: wrk is not installed (apt-get install wrk)".into());
        }
        args.secs.ceil() // wrk's -d takes whole seconds.
    } else {
        args.secs
    };
    let cpus = choose_cpus(&args)?;
    procfs::check("compare")?;
    chart::check_writable(&args.chart)?;
    let max_conns = args.levels.iter().copied().max().unwrap_or(1);
    load::check_fd_limit(max_conns, 64)?;
    let servers = choose_servers(&args)?;
    let warm = (secs / 2.0).min(0.5);
    let load_name = if args.wrk {
        "wrk -t1"
    } else {
        "built-in, 1 thread"
    };
    let (cpu, ncpus, kernel) = procfs::machine();
    let where_ = match (cpus.server, cpus.load) {
        (Some(s), Some(l)) => format!("servers on CPU {s}, load ({load_name}) on CPU {l}"),
        _ => format!("not pinned, load: {load_name}"),
    };
    let names: Vec<&str> = servers.iter().map(|s| s.peer.name()).collect();
    let pb = progress::bar((args.levels.len() * args.rounds * servers.len()) as u64);
    let out = |line: String| {
        if !args.json {
            progress::println(&pb, line);
        }
    };
    out(format!(
        "gorust compare: HTTP/1.1 hello, servers {}; {} round(s) of {secs} s per server and level,\ninterleaved; {where_}\nmachine: {cpu}, {ncpus} CPUs, Linux {kernel}\n{}",
        names.join(", "),
        args.rounds,
        child::build_note()
    ));
    out(header());

    let mut levels = Vec::new();
    for &conns in &args.levels {
        // runs[server][round]
        let mut runs: Vec<Vec<Result<Run, String>>> = vec![Vec::new(); servers.len()];
        for round in 0..args.rounds {
            // Each round starts one server later, so that no server always runs first (the
            // echo benchmark saw a position in the round move CPU per round trip by up to
            // 20%); runs stay paired by round.
            for k in 0..servers.len() {
                let i = (round + k) % servers.len();
                let s = &servers[i];
                pb.set_message(format!(
                    "{conns} connections, round {}/{}: {}",
                    round + 1,
                    args.rounds,
                    s.peer.name()
                ));
                let mut server = child::start(s.spec(cpus.server))?;
                let r = measure(&server, conns, secs, warm, cpus.load, args.wrk, round)
                    .and_then(|run| server.check_running().map(|()| run));
                drop(server);
                if let Err(e) = &r {
                    pb.suspend(|| {
                        eprintln!(
                            "gorust compare: {} at {conns} connections, round {}: {e}",
                            s.peer.name(),
                            round + 1
                        )
                    });
                }
                runs[i].push(r);
                pb.inc(1);
            }
        }
        let level = summarize(conns, &servers, runs);
        for s in &level.servers {
            out(row(conns, s));
        }
        levels.push(level);
    }
    pb.finish_and_clear();
    let chart = args.chart.display().to_string();
    let title = match cpus.server {
        Some(_) => "gorust compare: HTTP hello, one core per server",
        None => "gorust compare: HTTP hello, not pinned",
    };
    write_chart(&args.chart, title, &servers, &levels)?;
    out(format!(
        "\nratios are gorust/peer, the median of the per-round ratios: requests/s above 1 and p99 below 1 favour gorust\nchart: {chart}"
    ));
    if args.json {
        let report = Report {
            machine: Machine {
                cpu,
                cpus: ncpus,
                kernel,
            },
            settings: Settings {
                levels: args.levels.clone(),
                rounds: args.rounds,
                secs,
                warmup_secs: warm,
                load: load_name,
                server_cpu: cpus.server,
                load_cpu: cpus.load,
                optimized: child::OPTIMIZED,
            },
            levels,
            chart,
        };
        let text = serde_json::to_string_pretty(&report).map_err(|e| format!("json: {e}"))?;
        progress::print_document(&text)?;
    }
    Ok(())
}

fn choose_cpus(args: &Args) -> Result<Cpus, String> {
    let allowed = sys::allowed();
    let pin = if args.pin {
        if allowed.len() < 2 {
            return Err(format!(
                "--pin needs two CPUs; this process may use {}",
                allowed.len()
            ));
        }
        true
    } else {
        !args.no_pin && allowed.len() >= 2
    };
    Ok(if pin {
        Cpus {
            server: Some(allowed[0]),
            load: Some(allowed[1]),
        }
    } else {
        Cpus {
            server: None,
            load: None,
        }
    })
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn summarize(conns: usize, servers: &[ServerDef], runs: Vec<Vec<Result<Run, String>>>) -> Level {
    // gorust is first: its runs by round, for the ratios.
    let base: Vec<Option<Run>> = runs
        .first()
        .map(|r| r.iter().map(|x| x.as_ref().ok().cloned()).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (def, rs) in servers.iter().zip(runs) {
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        let mut ratios = (Vec::new(), Vec::new());
        for (round, r) in rs.into_iter().enumerate() {
            match r {
                Ok(run) => {
                    if let Some(Some(g)) = base.get(round) {
                        ratios.0.push(g.requests_per_sec / run.requests_per_sec);
                        ratios.1.push(g.p99_us as f64 / run.p99_us.max(1) as f64);
                    }
                    ok.push(run);
                }
                Err(e) => failed.push(format!("round {}: {e}", round + 1)),
            }
        }
        let med = |f: fn(&Run) -> f64| median(ok.iter().map(f).collect());
        let median_figures = med(|r| r.requests_per_sec).map(|rps| Medians {
            requests_per_sec: rps,
            p50_us: med(|r| r.p50_us as f64).unwrap_or(0.0),
            p99_us: med(|r| r.p99_us as f64).unwrap_or(0.0),
            p999_us: median(
                ok.iter()
                    .filter_map(|r| r.p999_us)
                    .map(|v| v as f64)
                    .collect(),
            ),
            server_cpu_us_per_request: med(|r| r.server_cpu_us_per_request).unwrap_or(0.0),
            server_rss_kib: med(|r| r.server_rss_kib as f64).unwrap_or(0.0),
        });
        let rounds = ratios.0.len();
        let gorust_ratio = match (def.peer, median(ratios.0), median(ratios.1)) {
            (Peer::Gorust, _, _) => None,
            (_, Some(rps), Some(p99)) => Some(Ratios {
                requests_per_sec: rps,
                p99,
                rounds,
            }),
            _ => None,
        };
        out.push(Summary {
            server: def.peer,
            runs: ok,
            failed_runs: failed,
            median: median_figures,
            gorust_ratio,
        });
    }
    Level {
        connections: conns,
        servers: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
