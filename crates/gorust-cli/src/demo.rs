//! `gorust demo`: what a goroutine costs, measured.
//!
//! 1. Park: N goroutines are spawned; each parks on a timer until a common instant. While they
//!    are all parked the demo reads the process's OS threads, resident memory and memory
//!    mappings from /proc, so the per-goroutine cost is measured, not estimated.
//! 2. Wake: the instant passes; every goroutine wakes, finishes and is joined.
//! 3. Threads: spawn-and-join one at a time, OS threads against goroutines (stacks pooled).
//!
//! 4. Network: the same HTTP hello served by each of `demo_net::MODELS` (a thread per
//!    connection, a goroutine per connection, the event loop) at 100, 1,000 and 10,000
//!    connections (`demo_net.rs`), with an SVG chart of requests/s and memory per connection
//!    against connections (`--chart`).
//!
//! The report goes to stdout (or, with `--json`, one JSON document with every figure of every
//! step); a progress bar goes to stderr when it is a terminal.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use serde::Serialize;

use crate::chart::{self, Panel, Series};
use crate::demo_net::{self, Row};
use crate::{child, load, procfs, progress};

/// The most goroutines `--goroutines` takes: their handles are one allocation, and each
/// parked goroutine holds about 4 KiB.
const MAX_GOROUTINES: usize = 10_000_000;

/// The most `--threads` takes: the comparison spawns them one at a time, about 40 µs each
/// as OS threads, so this many take about 40 s.
const MAX_THREADS: usize = 1_000_000;

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Goroutines to spawn and park at once (at most 10,000,000).
    #[arg(long, default_value_t = 100_000)]
    pub goroutines: usize,
    /// Worker threads (default: available cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// OS threads (and goroutines) to spawn one at a time for the comparison; at least 1, at
    /// most 1,000,000.
    #[arg(long, default_value_t = 2_000)]
    pub threads: usize,
    /// Connection counts for the network step (comma-separated; empty, or 0, skips it).
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000", value_parser = parse_level)]
    pub levels: Vec<usize>,
    /// Seconds of load per model and connection count.
    #[arg(long, default_value_t = 2.0)]
    pub secs: f64,
    /// Print one JSON document with every figure on stdout, instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Where to write the SVG chart of the network step.
    #[arg(long, default_value = "target/gorust-demo.svg")]
    pub chart: PathBuf,
}

/// A `--levels` entry: an empty one is read as 0, which `run` leaves out, so that
/// `--levels ""` skips the network step (clap's integer parser refuses an empty string).
fn parse_level(s: &str) -> Result<usize, String> {
    if s.is_empty() {
        return Ok(0);
    }
    s.parse().map_err(|e| format!("{e}"))
}

/// Everything the demo measured: the `--json` document.
#[derive(Serialize)]
struct Demo {
    workers: usize,
    park: Park,
    wake: Wake,
    spawn_join: SpawnJoin,
    network: Option<Network>,
}

#[derive(Serialize)]
struct Park {
    goroutines: usize,
    spawn_ns_each: f64,
    parked_goroutines: usize,
    os_threads: u64,
    rss_before_kib: u64,
    rss_parked_kib: u64,
    kib_per_parked_goroutine: f64,
    memory_mappings: u64,
}

#[derive(Serialize)]
struct Wake {
    woken_and_joined: usize,
    wake_all_ms: f64,
    os_context_switches: u64,
    task_polls: u64,
    steals: u64,
}

#[derive(Serialize)]
struct SpawnJoin {
    count: usize,
    os_thread_us: f64,
    goroutine_us: f64,
}

#[derive(Serialize)]
struct Network {
    secs_per_run: f64,
    models: Vec<&'static str>,
    levels: Vec<usize>,
    rows: Vec<Row>,
    chart: String,
}

pub fn run(args: Args) -> Result<(), String> {
    if !(1..=MAX_GOROUTINES).contains(&args.goroutines) {
        return Err(format!(
            "--goroutines must be at least 1 and at most {MAX_GOROUTINES}"
        ));
    }
    if !(1..=MAX_THREADS).contains(&args.threads) {
        return Err(format!(
            "--threads must be at least 1 and at most {MAX_THREADS}"
        ));
    }
    if args.workers == Some(0) {
        // Before the runtime's own check, whose message names its API.
        return Err("--workers must be at least 1".into());
    }
    procfs::check("demo")?;
    let secs = load::check_secs("--secs", args.secs)?;
    let levels: Vec<usize> = args.levels.iter().copied().filter(|&c| c > 0).collect();
    // Before step 1, so that a limit the hard one cannot lift fails at once; the servers of
    // step 4 inherit the raised soft limit.
    if let Some(&max) = levels.iter().max() {
        load::check_fd_limit(max, 64)?;
        chart::check_writable(&args.chart)?;
    }
    let mut builder = gorust::Runtime::builder();
    if let Some(w) = args.workers {
        builder = builder.workers(w);
    }
    let rt = builder
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let workers = rt.metrics().workers.len();
    let (n, fewer) = goroutines_that_fit(
        args.goroutines,
        &procfs::machine().2,
        procfs::max_map_count(),
        procfs::mappings(),
    );
    if let Some(note) = fewer {
        eprintln!("gorust demo: {note}");
    }
    let runs = (levels.len() * demo_net::MODELS.len()) as u64;
    let pb = progress::bar(3 + runs);
    let out = |line: String| {
        if !args.json {
            progress::println(&pb, line);
        }
    };
    out(format!(
        "gorust demo: {n} goroutines on {workers} worker threads\n{}",
        child::build_note()
    ));

    let k = args.threads;
    pb.set_message(format!("1-2. parking and waking {n} goroutines"));
    let report = rt.run(move || park_and_wake(n, k))?;
    pb.inc(2);
    let park = park_figures(&report, n);
    let wake = Wake {
        woken_and_joined: report.joined,
        wake_all_ms: report.wake_all.as_secs_f64() * 1e3,
        os_context_switches: report.switches,
        task_polls: report.polls,
        steals: report.steals,
    };
    print_park_wake(&park, &wake).into_iter().for_each(&out);

    pb.set_message(format!("3. spawning {k} OS threads one at a time"));
    let per_thread = spawn_threads(k)?;
    pb.inc(1);
    let spawn_join = SpawnJoin {
        count: k,
        os_thread_us: per_thread.as_secs_f64() * 1e6,
        goroutine_us: report.spawn_join_warm.as_secs_f64() * 1e6,
    };
    out(format!(
        "3. one at a time, {k} of each spawned and joined:\n   OS thread   {:>9.1} µs\n   goroutine   {:>9.1} µs  ({:.0}x cheaper)",
        spawn_join.os_thread_us,
        spawn_join.goroutine_us,
        spawn_join.os_thread_us / spawn_join.goroutine_us.max(1e-6)
    ));
    let network = net_step(&args, secs, &levels, &pb, &out)?;
    pb.finish_and_clear();
    if args.json {
        let doc = Demo {
            workers,
            park,
            wake,
            spawn_join,
            network,
        };
        let text = serde_json::to_string_pretty(&doc).map_err(|e| format!("json: {e}"))?;
        progress::print_document(&text)?;
    }
    Ok(())
}

/// Step 4: each model of [`demo_net::MODELS`] at each connection count, over HTTP; then the
/// chart.
fn net_step(
    args: &Args,
    secs: Duration,
    levels: &[usize],
    pb: &ProgressBar,
    out: &dyn Fn(String),
) -> Result<Option<Network>, String> {
    if levels.is_empty() {
        return Ok(None);
    }
    let models: Vec<&str> = demo_net::MODELS
        .iter()
        .map(|m| demo_net::describe(m))
        .collect();
    out(format!(
        "\n4. HTTP hello, served by {},\n   loaded from this process for {:.1} s at each level:",
        models.join(", by "),
        args.secs
    ));
    out(demo_net::header());
    let mut rows = Vec::new();
    for &conns in levels {
        for &model in demo_net::MODELS {
            pb.set_message(format!("4. {model} at {conns} connections"));
            let row = demo_net::measure(model, conns, secs, args.workers)?;
            pb.inc(1);
            out(demo_net::row(&row));
            rows.push(row);
        }
    }
    let chart = args.chart.display().to_string();
    write_chart(&args.chart, &rows)?;
    out(format!("\n   chart: {chart}"));
    Ok(Some(Network {
        secs_per_run: args.secs,
        models: demo_net::MODELS.to_vec(),
        levels: levels.to_vec(),
        rows,
        chart,
    }))
}

/// Requests per second and RSS per connection against connections, a line per model.
fn write_chart(path: &std::path::Path, rows: &[Row]) -> Result<(), String> {
    let series = |f: fn(&Row) -> f64| {
        demo_net::MODELS
            .iter()
            .map(|&m| Series {
                name: m.to_string(),
                points: rows
                    .iter()
                    .filter(|r| r.model == m)
                    .map(|r| (r.conns as f64, f(r)))
                    .collect(),
            })
            .collect()
    };
    let panels = [
        Panel {
            title: "HTTP hello: requests per second".into(),
            y_label: "requests/s".into(),
            series: series(|r| r.requests_per_sec),
        },
        Panel {
            title: "server memory per connection".into(),
            y_label: "KiB RSS per connection".into(),
            series: series(|r| r.rss_per_conn_kib),
        },
    ];
    chart::write_svg(path, "gorust demo: one handler, served per model", &panels)
}

struct Report {
    spawn_each: Duration,
    spawn_join_warm: Duration,
    parked: usize,
    os_threads: u64,
    rss_before_kib: u64,
    rss_parked_kib: u64,
    maps_parked: u64,
    wake_all: Duration,
    joined: usize,
    switches: u64,
    polls: u64,
    steals: u64,
}

/// How many of the `asked` goroutines can be alive at once here, and, when fewer, why. On a
/// kernel without guard markers (`MADV_GUARD_INSTALL`, Linux 6.13) each goroutine stack's
/// guard is an `mprotect`, two memory mappings per stack, and `vm.max_map_count` (65,530 by
/// default) bounds them: about 32,000 goroutines. Past it, each further goroutine failed to
/// start, and the demo ended with a misleading message after tens of thousands of panics
/// (review, session 32).
fn goroutines_that_fit(
    asked: usize,
    kernel: &str,
    max_maps: u64,
    maps_now: u64,
) -> (usize, Option<String>) {
    if has_guard_markers(kernel) {
        return (asked, None);
    }
    // Room for the mappings the rest of the demo makes (threads, heap, the network step).
    let room = max_maps.saturating_sub(maps_now + 4096) / 2;
    if asked as u64 <= room {
        return (asked, None);
    }
    let fit = room.max(1) as usize;
    let note = format!(
        "parking {fit} goroutines, not {asked}: this kernel ({kernel}) predates Linux 6.13's \
         guard markers, so each goroutine stack's guard page costs two memory mappings, and \
         vm.max_map_count is {max_maps} (sudo sysctl -w vm.max_map_count=262144 makes room \
         for about 130,000)"
    );
    (fit, Some(note))
}

/// Whether kernel release `kernel` ("6.12.48-amd64") is Linux 6.13 or later.
fn has_guard_markers(kernel: &str) -> bool {
    let mut numbers = kernel
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let major = numbers.next().unwrap_or(0);
    let minor = numbers.next().unwrap_or(0);
    (major, minor) >= (6, 13)
}

fn park_and_wake(n: usize, k: usize) -> Result<Report, String> {
    let rss_before_kib = procfs::rss_kib();
    let parked = Arc::new(AtomicUsize::new(0));
    let woken = Arc::new(AtomicUsize::new(0));
    // Far enough ahead that every goroutine is parked before it passes.
    let wake_at = Instant::now() + Duration::from_secs(2) + Duration::from_micros(20 * n as u64);
    let t0 = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (p, w) = (parked.clone(), woken.clone());
            gorust::go(move || {
                p.fetch_add(1, Ordering::Relaxed);
                gorust::time::sleep_until(wake_at);
                w.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    let spawn_each = t0.elapsed().div_f64(n as f64);
    while parked.load(Ordering::Relaxed) < n {
        if Instant::now() >= wake_at {
            return Err("the goroutines did not all start before the wake-up instant".into());
        }
        gorust::time::sleep(Duration::from_millis(1));
    }
    let os_threads = procfs::threads();
    let rss_parked_kib = procfs::rss_kib();
    let maps_parked = procfs::mappings();
    let live = gorust::num_goroutines();
    let woken_early = woken.load(Ordering::Relaxed);
    if woken_early != 0 {
        return Err(format!(
            "{woken_early} goroutines woke before their deadline"
        ));
    }
    let switches_before = procfs::context_switches();
    // The wake step's polls and steals, as its context switches: the counters run since the
    // runtime started, so the parking step's (a poll per spawn) are taken off (review, session
    // 24: they were reported as the wake step's).
    let before = gorust::metrics().expect("inside the runtime");
    gorust::time::sleep_until(wake_at);
    let mut joined = 0;
    for h in handles {
        h.join().map_err(|_| "a goroutine panicked".to_string())?;
        joined += 1;
    }
    // From the planned instant, not from this goroutine's resumption: its timer is one of the
    // n + 1 due then, and it may resume after many of the others have run and finished.
    let wake_all = wake_at.elapsed();
    let switches = procfs::context_switches().saturating_sub(switches_before);
    let m = gorust::metrics().expect("inside the runtime");
    let t2 = Instant::now();
    for i in 0..k {
        let v = gorust::go(move || i).join();
        if v.ok() != Some(i) {
            return Err("a goroutine returned the wrong value".into());
        }
    }
    let spawn_join_warm = t2.elapsed().div_f64(k as f64);
    Ok(Report {
        spawn_each,
        spawn_join_warm,
        parked: live - 1,
        os_threads,
        rss_before_kib,
        rss_parked_kib,
        maps_parked,
        wake_all,
        joined,
        switches,
        polls: sum_of(&m, |w| w.polls).saturating_sub(sum_of(&before, |w| w.polls)),
        steals: sum_of(&m, |w| w.steals).saturating_sub(sum_of(&before, |w| w.steals)),
    })
}

/// A per-worker counter summed over the workers.
fn sum_of(m: &gorust::RuntimeMetrics, counter: impl Fn(&gorust::WorkerStats) -> u64) -> u64 {
    m.workers.iter().map(counter).sum()
}

fn park_figures(r: &Report, n: usize) -> Park {
    let per_g = (r.rss_parked_kib.saturating_sub(r.rss_before_kib)) as f64 / n as f64;
    Park {
        goroutines: n,
        spawn_ns_each: r.spawn_each.as_nanos() as f64,
        parked_goroutines: r.parked,
        os_threads: r.os_threads,
        rss_before_kib: r.rss_before_kib,
        rss_parked_kib: r.rss_parked_kib,
        kib_per_parked_goroutine: per_g,
        memory_mappings: r.maps_parked,
    }
}

fn print_park_wake(p: &Park, w: &Wake) -> Vec<String> {
    vec![
        format!(
            "1. park: {} goroutines spawned ({:.0} ns each) and parked on timers",
            p.goroutines, p.spawn_ns_each
        ),
        format!("   parked goroutines      {:>12}", p.parked_goroutines),
        format!("   OS threads (process)   {:>12}", p.os_threads),
        format!(
            "   resident memory        {:>9} MiB  ({:.2} KiB per parked goroutine, stacks included)",
            p.rss_parked_kib / 1024,
            p.kib_per_parked_goroutine
        ),
        format!(
            "   memory mappings        {:>12}  (vm.max_map_count is usually 65,530)",
            p.memory_mappings
        ),
        format!(
            "2. wake: all {} woke at the same instant and were joined in {:.1} ms",
            w.woken_and_joined, w.wake_all_ms
        ),
        format!(
            "   OS context switches    {:>12}  (for {} goroutine wake-ups)",
            w.os_context_switches, w.woken_and_joined
        ),
        format!(
            "   scheduler: {} task polls, {} steals between workers\n",
            w.task_polls, w.steals
        ),
    ]
}

fn spawn_threads(n: usize) -> Result<Duration, String> {
    let t = Instant::now();
    for _ in 0..n {
        std::thread::Builder::new()
            .spawn(|| std::hint::black_box(1))
            .map_err(|e| format!("cannot spawn an OS thread: {e}"))?
            .join()
            .map_err(|_| "a thread panicked".to_string())?;
    }
    Ok(t.elapsed().div_f64(n as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guard markers (6.13 and later) bound nothing; before them, two mappings per stack
    /// bound the goroutines alive at once, and the demo parks what fits and says why.
    #[test]
    fn goroutines_fit_the_mapping_limit_of_kernels_without_guard_markers() {
        assert!(has_guard_markers("6.18.5"));
        assert!(has_guard_markers("6.13.0-rc1"));
        assert!(has_guard_markers("7.0.0"));
        assert!(!has_guard_markers("6.12.48-amd64"));
        assert!(!has_guard_markers("5.15.0-105-generic"));
        assert!(!has_guard_markers("unknown"));
        assert_eq!(
            goroutines_that_fit(100_000, "6.18.5", 65_530, 100),
            (100_000, None)
        );
        let (fit, note) = goroutines_that_fit(100_000, "6.12.48-amd64", 65_530, 100);
        assert_eq!(fit, (65_530 - 100 - 4096) / 2);
        let note = note.unwrap();
        assert!(note.contains("vm.max_map_count is 65530"), "{note}");
        assert!(note.contains("sysctl"), "{note}");
        // Fewer asked than fit, or the limit raised: all of them.
        assert_eq!(
            goroutines_that_fit(1_000, "6.1.0", 65_530, 100),
            (1_000, None)
        );
        assert_eq!(
            goroutines_that_fit(100_000, "6.1.0", 262_144, 100),
            (100_000, None)
        );
    }
}
