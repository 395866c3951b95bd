//! `gorust demo`: what a goroutine costs, measured.
//!
//! 1. Park: N goroutines are spawned; each parks on a timer until a common instant. While they
//!    are all parked the demo reads the process's OS threads, resident memory and memory
//!    mappings from /proc, so the per-goroutine cost is measured, not estimated.
//! 2. Wake: the instant passes; every goroutine wakes, finishes and is joined.
//! 3. Threads: spawn-and-join one at a time, OS threads against goroutines (stacks pooled).
//!
//! 4. Network: the same HTTP hello handler served by a thread per connection and by a goroutine
//!    per connection at 100, 1,000 and 10,000 connections (`demo_net.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::procfs;

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Goroutines to spawn and park at once.
    #[arg(long, default_value_t = 100_000)]
    pub goroutines: usize,
    /// Worker threads (default: available cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// OS threads to spawn for the comparison.
    #[arg(long, default_value_t = 2_000)]
    pub threads: usize,
    /// Connection counts for the network step (comma-separated; empty skips it).
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    pub levels: Vec<usize>,
    /// Seconds of load per model and connection count.
    #[arg(long, default_value_t = 2.0)]
    pub secs: f64,
}

pub fn run(args: Args) -> Result<(), String> {
    if args.goroutines == 0 {
        return Err("--goroutines must be at least 1".into());
    }
    if !(args.secs.is_finite() && args.secs > 0.0) {
        return Err("--secs must be a positive number of seconds".into());
    }
    let mut builder = gorust::Runtime::builder();
    if let Some(w) = args.workers {
        builder = builder.workers(w);
    }
    let rt = builder
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let workers = rt.metrics().workers.len();
    println!(
        "gorust demo: {} goroutines on {workers} worker threads\n",
        args.goroutines
    );

    let n = args.goroutines;
    let k = args.threads.max(1);
    let report = rt.run(move || park_and_wake(n, k));
    let report = report?;
    print_report(&report, n);

    let per_thread = spawn_threads(k)?;
    println!(
        "3. one at a time, {k} of each spawned and joined:\n   OS thread   {:>9.1} µs\n   goroutine   {:>9.1} µs  ({:.0}x cheaper)",
        per_thread.as_secs_f64() * 1e6,
        report.spawn_join_warm.as_secs_f64() * 1e6,
        per_thread.as_secs_f64() / report.spawn_join_warm.as_secs_f64().max(1e-12)
    );
    net_step(&args)
}

/// Step 4: a thread per connection against a goroutine per connection, over HTTP.
fn net_step(args: &Args) -> Result<(), String> {
    let levels: Vec<usize> = args.levels.iter().copied().filter(|&c| c > 0).collect();
    if levels.is_empty() {
        return Ok(());
    }
    let secs = Duration::from_secs_f64(args.secs);
    println!(
        "\n4. HTTP hello, served by a thread per connection (std) and a goroutine per connection\n   (gorust), loaded from this process for {:.1} s at each level:",
        args.secs
    );
    crate::demo_net::print_header();
    for &conns in &levels {
        for model in ["threads", "goroutine"] {
            let row = crate::demo_net::measure(model, conns, secs, args.workers)?;
            crate::demo_net::print_row(&row);
        }
    }
    Ok(())
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
    let spawn_each = t0.elapsed() / n as u32;
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
    gorust::time::sleep_until(wake_at);
    let t1 = Instant::now();
    let mut joined = 0;
    for h in handles {
        h.join().map_err(|_| "a goroutine panicked".to_string())?;
        joined += 1;
    }
    let wake_all = t1.elapsed();
    let switches = procfs::context_switches().saturating_sub(switches_before);
    let m = gorust::metrics().expect("inside the runtime");
    let t2 = Instant::now();
    for i in 0..k {
        let v = gorust::go(move || i).join();
        if v.ok() != Some(i) {
            return Err("a goroutine returned the wrong value".into());
        }
    }
    let spawn_join_warm = t2.elapsed() / k as u32;
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
        polls: m.workers.iter().map(|w| w.polls).sum(),
        steals: m.workers.iter().map(|w| w.steals).sum(),
    })
}

fn print_report(r: &Report, n: usize) {
    let per_g = (r.rss_parked_kib.saturating_sub(r.rss_before_kib)) as f64 * 1024.0 / n as f64;
    println!(
        "1. park: {n} goroutines spawned ({:.0} ns each) and parked on timers",
        r.spawn_each.as_nanos()
    );
    println!("   parked goroutines      {:>12}", r.parked);
    println!("   OS threads (process)   {:>12}", r.os_threads);
    println!(
        "   resident memory        {:>9} MiB  ({:.2} KiB per parked goroutine, stacks included)",
        r.rss_parked_kib / 1024,
        per_g / 1024.0
    );
    println!(
        "   memory mappings        {:>12}  (vm.max_map_count is usually 65,530)",
        r.maps_parked
    );
    println!(
        "2. wake: all {} woke at the same instant and were joined in {:.1} ms",
        r.joined,
        r.wake_all.as_secs_f64() * 1e3
    );
    println!(
        "   OS context switches    {:>12}  (for {} goroutine wake-ups)",
        r.switches, r.joined
    );
    println!(
        "   scheduler: {} task polls, {} steals between workers",
        r.polls, r.steals
    );
    println!();
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
    Ok(t.elapsed() / n as u32)
}
