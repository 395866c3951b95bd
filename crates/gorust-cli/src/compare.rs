//! `gorust compare`: gorust's HTTP/1.1 hello against its peers, measured in the same run.
//!
//! ```text
//! gorust compare [--levels 100,1000] [--rounds 5] [--secs 5] [--servers gorust,hyper-tokio,may,go]
//!                [--pin | --no-pin] [--wrk] [--json] [--chart PATH]
//! ```
//!
//! Servers, each a child process serving the same hello (`Request #N`, keep-alive):
//! - `gorust`: `gorust serve --proto http --model goroutine --workers 1`;
//! - `hyper-tokio`: hyper 1 on tokio's current-thread runtime (`serve --model hyper-tokio`);
//! - `may`: may_minihttp on one may worker (`serve --model may`);
//! - `go`: Go's net/http with `GOMAXPROCS=1`, built from `bench/go/` with `go build` when `go`
//!   is installed (skipped with a note otherwise).
//!
//! Method:
//! 1. With `--pin` (the default when the process may use two CPUs or more), every server runs
//!    pinned to the first allowed CPU and the load to the second: one core each, as issue 5's
//!    reference figures were measured.
//! 2. For each connection count, the servers run interleaved — A B C, A B C, … — for
//!    `--rounds` rounds, so that a slow minute of this shared machine falls on every server
//!    alike. Each run starts a fresh server, loads it for a warm-up (half of `--secs`, at most
//!    0.5 s), then measures `--secs`.
//! 3. The load is the built-in generator (`gorust load`'s engine: one thread, one epoll loop,
//!    closed loop, one request outstanding per connection), or `wrk -t1` with `--wrk`.
//! 4. Figures per run: requests/s, p50/p99/p99.9 latency (wrk reports no p99.9), errors, the
//!    server's CPU time per request (`/proc/PID/task/*/schedstat`), its peak RSS and threads.
//! 5. Reported per server: the median of each figure over the rounds, and for each peer the
//!    median of the per-round ratios gorust/peer — of requests/s (above 1: gorust serves
//!    more) and of p99 (below 1: gorust's tail is shorter). Pairing by round is what absorbs
//!    this machine's noise; single runs vary by ±30%.
//!
//! A server that cannot start (a failed bind, a missing program) ends the command with its
//! own error message; a run whose load fails is reported and left out of the medians. Every
//! child is killed by its PID when its run ends, on every path (`child::Server`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use crate::chart::{self, Panel, Series};
use crate::child::{self, Spec};
use crate::{load, procfs, progress, sys};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Peer {
    /// gorust's goroutine per connection, one worker.
    Gorust,
    /// gorust's event loop (netpoll's model), one worker.
    #[value(name = "gorust-eventloop")]
    GorustEventloop,
    /// hyper 1 on tokio's current-thread runtime.
    #[value(name = "hyper-tokio")]
    HyperTokio,
    /// may_minihttp, one may worker.
    May,
    /// Go's net/http, GOMAXPROCS=1.
    Go,
}

impl Peer {
    const ALL: [Peer; 5] = [
        Peer::Gorust,
        Peer::GorustEventloop,
        Peer::HyperTokio,
        Peer::May,
        Peer::Go,
    ];

    fn name(self) -> &'static str {
        match self {
            Peer::Gorust => "gorust",
            Peer::GorustEventloop => "gorust-eventloop",
            Peer::HyperTokio => "hyper-tokio",
            Peer::May => "may",
            Peer::Go => "go",
        }
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Connection counts (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    pub levels: Vec<usize>,
    /// Rounds; each runs every server once at each level, interleaved.
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
    if args.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    if !(args.secs.is_finite() && args.secs > 0.0) {
        return Err("--secs must be a positive number of seconds".into());
    }
    let secs = if args.wrk {
        if !program_exists("wrk") {
            return Err("--wrk: wrk is not installed (apt-get install wrk)".into());
        }
        args.secs.ceil() // wrk's -d takes whole seconds.
    } else {
        args.secs
    };
    let cpus = choose_cpus(&args)?;
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
        "gorust compare: HTTP/1.1 hello, servers {}; {} round(s) of {secs} s per server and level,\ninterleaved; {where_}\nmachine: {cpu}, {ncpus} CPUs, Linux {kernel}\n",
        names.join(", "),
        args.rounds
    ));
    out(header());

    let mut levels = Vec::new();
    for &conns in &args.levels {
        // runs[server][round]
        let mut runs: Vec<Vec<Result<Run, String>>> = vec![Vec::new(); servers.len()];
        for round in 0..args.rounds {
            for (i, s) in servers.iter().enumerate() {
                pb.set_message(format!(
                    "{conns} connections, round {}/{}: {}",
                    round + 1,
                    args.rounds,
                    s.peer.name()
                ));
                let server = child::start(s.spec(cpus.server))?;
                let r = measure(&server, conns, secs, warm, cpus.load, args.wrk, round);
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

/// A server to run: which, and for Go the binary built.
struct ServerDef {
    peer: Peer,
    go_bin: Option<PathBuf>,
}

impl ServerDef {
    fn spec(&self, cpu: Option<usize>) -> Spec {
        let this = child::this_program().unwrap_or_else(|_| "gorust".into());
        let mut spec = match self.peer {
            Peer::Gorust => Spec::new("gorust", this).args([
                "serve",
                "--proto",
                "http",
                "--model",
                "goroutine",
                "--workers",
                "1",
                "--port",
                "0",
            ]),
            Peer::GorustEventloop => Spec::new("gorust-eventloop", this).args([
                "serve",
                "--proto",
                "http",
                "--model",
                "eventloop",
                "--workers",
                "1",
                "--port",
                "0",
            ]),
            Peer::HyperTokio => Spec::new("hyper-tokio", this).args([
                "serve",
                "--proto",
                "http",
                "--model",
                "hyper-tokio",
                "--port",
                "0",
            ]),
            Peer::May => Spec::new("may", this).args([
                "serve",
                "--proto",
                "http",
                "--model",
                "may",
                "--workers",
                "1",
                "--port",
                "0",
            ]),
            Peer::Go => {
                let bin = self.go_bin.clone().unwrap_or_default();
                let mut s = Spec::new("go", bin).args(["http", "0"]);
                s.env.push(("GOMAXPROCS".into(), "1".into()));
                s
            }
        };
        spec.cpu = cpu;
        spec
    }
}

/// gorust first, then the peers asked for (or all), Go only if it builds.
fn choose_servers(args: &Args) -> Result<Vec<ServerDef>, String> {
    let asked = !args.servers.is_empty();
    let mut peers = vec![Peer::Gorust];
    let wanted: &[Peer] = if asked { &args.servers } else { &Peer::ALL };
    for &p in wanted {
        if !peers.contains(&p) {
            peers.push(p);
        }
    }
    let mut out = Vec::new();
    for peer in peers {
        let go_bin = if peer == Peer::Go {
            match build_go(args.go_src.as_deref()) {
                Ok(bin) => Some(bin),
                Err(e) if asked => return Err(e),
                Err(e) => {
                    eprintln!("gorust compare: {e}; Go's net/http is skipped");
                    continue;
                }
            }
        } else {
            None
        };
        out.push(ServerDef { peer, go_bin });
    }
    Ok(out)
}

fn program_exists(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| {
            let p = d.join(name);
            p.is_file()
        })
    })
}

/// Builds `bench/go` into the directory of this executable; the binary's path.
fn build_go(src: Option<&Path>) -> Result<PathBuf, String> {
    let src = src
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/go"));
    if !program_exists("go") {
        return Err("go is not installed".into());
    }
    if !src.join("http.go").is_file() {
        return Err(format!(
            "the Go server's source is not in {} (--go-src)",
            src.display()
        ));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let dir = exe
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let bin = dir.join("gorust-bench-go");
    let mut cmd = Command::new("go");
    cmd.args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(&src)
        // No dependencies: never reach for a module proxy or another toolchain.
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod");
    if std::env::var_os("GOCACHE").is_none() && std::env::var_os("HOME").is_none() {
        cmd.env("GOCACHE", dir.join("go-build-cache"));
    }
    let o = cmd
        .output()
        .map_err(|e| format!("cannot run go build: {e}"))?;
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        return Err(format!(
            "go build in {} failed: {}",
            src.display(),
            err.trim()
        ));
    }
    Ok(bin)
}

/// Warms `server` up, then loads it for `secs` and reads its figures.
fn measure(
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
    builtin_load(addr, conns, warm, load_cpu)?;
    let sampler = procfs::Sampler::start(&pid);
    let cpu_before = procfs::cpu_ns_of(&pid);
    let figures = if wrk {
        wrk_load(addr, conns, secs, load_cpu)
    } else {
        builtin_load(addr, conns, secs, load_cpu)
    };
    let cpu_ns = procfs::cpu_ns_of(&pid).saturating_sub(cpu_before);
    let (rss, threads) = sampler.stop();
    let f = figures?;
    if f.requests == 0 {
        return Err(format!("no request answered ({} errors)", f.errors));
    }
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

/// What one load run measured.
struct Figures {
    requests: u64,
    requests_per_sec: f64,
    p50_us: u64,
    p99_us: u64,
    p999_us: Option<u64>,
    errors: u64,
}

/// The built-in generator on one thread, pinned to `cpu`.
fn builtin_load(
    addr: std::net::SocketAddr,
    conns: usize,
    secs: f64,
    cpu: Option<usize>,
) -> Result<Figures, String> {
    let wire = load::http_get("127.0.0.1", "/");
    let run = move || {
        if let Some(cpu) = cpu {
            // The load thread `drive` starts inherits this thread's mask.
            sys::pin_current_thread(cpu)?;
        }
        let dur = Duration::from_secs_f64(secs);
        load::drive(addr, &wire, conns, 1, dur, None, Duration::from_secs(5))
    };
    let (stats, secs) = std::thread::spawn(run)
        .join()
        .map_err(|_| "the load thread panicked".to_string())??;
    let q = |q| {
        if stats.hist.is_empty() {
            0
        } else {
            stats.hist.value_at_quantile(q)
        }
    };
    Ok(Figures {
        requests: stats.requests,
        requests_per_sec: stats.requests as f64 / secs,
        p50_us: q(0.5),
        p99_us: q(0.99),
        p999_us: Some(q(0.999)),
        errors: stats.connect_errors
            + stats.read_errors
            + stats.write_errors
            + stats.timeouts
            + stats.non_2xx,
    })
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

fn header() -> String {
    format!(
        "   {:>6} {:<16} {:>10} {:>8} {:>8} {:>8} {:>10} {:>9} {:>7}   {:>17} {:>7}",
        "conns",
        "server",
        "req/s",
        "p50",
        "p99",
        "p99.9",
        "CPU µs/req",
        "RSS KiB",
        "errors",
        "gorust/peer req/s",
        "p99"
    )
}

/// A median latency for people.
fn ms(us: f64) -> String {
    load::micros(us.round() as u64)
}

fn row(conns: usize, s: &Summary) -> String {
    let name = s.server.name();
    let Some(m) = &s.median else {
        return format!("   {conns:>6} {name:<16} every run failed");
    };
    let errors: u64 = s.runs.iter().map(|r| r.errors).sum();
    let (rps, p99) = match &s.gorust_ratio {
        Some(r) => (
            format!("{:.2}", r.requests_per_sec),
            format!("{:.2}", r.p99),
        ),
        None if s.server == Peer::Gorust => ("1.00".into(), "1.00".into()),
        None => ("-".into(), "-".into()),
    };
    format!(
        "   {conns:>6} {name:<16} {:>10.0} {:>8} {:>8} {:>8} {:>10.2} {:>9.0} {:>7}   {rps:>17} {p99:>7}",
        m.requests_per_sec,
        ms(m.p50_us),
        ms(m.p99_us),
        m.p999_us.map_or("-".into(), ms),
        m.server_cpu_us_per_request,
        m.server_rss_kib,
        errors,
    )
}

/// Median requests/s and p99 against connections, a line per server.
fn write_chart(
    path: &Path,
    title: &str,
    servers: &[ServerDef],
    levels: &[Level],
) -> Result<(), String> {
    let series = |f: fn(&Medians) -> f64| -> Vec<Series> {
        servers
            .iter()
            .map(|def| Series {
                name: def.peer.name().to_string(),
                points: levels
                    .iter()
                    .filter_map(|l| {
                        let s = l.servers.iter().find(|s| s.server == def.peer)?;
                        Some((l.connections as f64, f(s.median.as_ref()?)))
                    })
                    .collect(),
            })
            .collect()
    };
    let panels = [
        Panel {
            title: "HTTP hello: requests per second (median)".into(),
            y_label: "requests/s".into(),
            series: series(|m| m.requests_per_sec),
        },
        Panel {
            title: "p99 latency (median)".into(),
            y_label: "p99 latency, ms".into(),
            series: series(|m| m.p99_us / 1000.0),
        },
    ];
    chart::write_svg(path, title, &panels)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
