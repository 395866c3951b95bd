//! The child side of `compare`: one scenario on gorust or tokio in a fresh process, timed from
//! inside (process and runtime start-up excluded), printing one `key=value` line like the Go
//! peer (`bench/go/main.go`) does. The shapes mirror the Go peer's one for one.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Goroutines per batch in `spawn_batch`.
const BATCH: u64 = 1_000;

/// Runs `scenario` with `n` operations on `program` ("gorust" or "tokio") with `workers`
/// workers; returns the line to print.
pub fn run(program: &str, scenario: &str, workers: usize, n: u64) -> Result<String, String> {
    match program {
        "gorust" => gorust_side::run(scenario, workers, n),
        "tokio" => tokio_side::run(scenario, workers, n),
        _ => Err(format!("unknown program {program:?}")),
    }
}

fn ns_per_op(d: Duration, n: u64) -> String {
    format!("ns_per_op={:.3}", d.as_nanos() as f64 / n as f64)
}

/// The memory scenario's line; `live` is how many goroutines/tasks the runtime counted.
fn mem_line(n: u64, before: u64, after: u64, live: u64, maps: usize) -> String {
    format!(
        "rss_kib_per_goroutine={:.3} goroutines={live} rss_before_kib={before} \
         rss_after_kib={after} maps={maps}",
        after.saturating_sub(before) as f64 / n as f64
    )
}

/// `VmRSS` of this process, in KiB.
fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fail("no VmRSS in /proc/self/status"))
}

/// Ends this child run with `why` on stderr, which the parent reports: a figure it cannot
/// read must not be printed as a 0.
fn fail(why: &str) -> ! {
    eprintln!("{why}");
    std::process::exit(1)
}

/// Memory mappings of this process (what `vm.max_map_count` limits).
fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.lines().count())
        .unwrap_or_else(|e| fail(&format!("cannot read /proc/self/maps: {e}")))
}

mod gorust_side {
    use super::*;

    pub fn run(scenario: &str, workers: usize, n: u64) -> Result<String, String> {
        let rt = gorust::Runtime::builder()
            .workers(workers)
            .build()
            .map_err(|e| format!("gorust: cannot start the runtime: {e}"))?;
        match scenario {
            "spawn_all" => Ok(ns_per_op(rt.run(move || spawn_all(n)), n)),
            "spawn_batch" => Ok(ns_per_op(rt.run(move || spawn_batch(n)), n)),
            "yield" => Ok(ns_per_op(rt.run(move || yield_now(n)), n)),
            "pingpong" => Ok(ns_per_op(rt.run(move || pingpong(n)), n)),
            "select" => Ok(ns_per_op(rt.run(move || select_pingpong(n)), n)),
            "mem" => Ok(rt.run(move || mem(n))),
            _ => Err(format!("gorust: unknown scenario {scenario:?}")),
        }
    }

    fn spawn_join(k: u64) {
        let handles: Vec<_> = (0..k).map(|i| gorust::go(move || black_box(i))).collect();
        for h in handles {
            black_box(h.join().expect("goroutine panicked"));
        }
    }

    fn spawn_all(n: u64) -> Duration {
        let t = Instant::now();
        spawn_join(n);
        t.elapsed()
    }

    fn spawn_batch(n: u64) -> Duration {
        let t = Instant::now();
        let mut left = n;
        while left > 0 {
            let k = left.min(BATCH);
            spawn_join(k);
            left -= k;
        }
        t.elapsed()
    }

    fn yield_now(n: u64) -> Duration {
        let t = Instant::now();
        for _ in 0..n {
            gorust::yield_now();
        }
        t.elapsed()
    }

    /// The main goroutine sends on `ping` and receives on `pong`; an echo goroutine sends
    /// back what it receives. Both channels hold one message (Go: `make(chan int, 1)`).
    fn pingpong(n: u64) -> Duration {
        use gorust::sync::mpsc::sync_channel;
        let (ping_tx, ping_rx) = sync_channel::<u64>(1);
        let (pong_tx, pong_rx) = sync_channel::<u64>(1);
        let echo = gorust::go(move || {
            while let Ok(v) = ping_rx.recv() {
                if pong_tx.send(v).is_err() {
                    break;
                }
            }
        });
        let t = Instant::now();
        for i in 0..n {
            ping_tx.send(i).expect("echo gone");
            black_box(pong_rx.recv().expect("echo gone"));
        }
        let d = t.elapsed();
        drop(ping_tx);
        echo.join().expect("echo panicked");
        d
    }

    /// Ping-pong through selects on rendezvous channels (Go: unbuffered): the main goroutine
    /// sends on `ping` in a select with a channel that never fires, then receives from
    /// `pong` in another; the echo goroutine selects between `ping` and `quit`, and sends
    /// back with a plain send. Three selects and four hand-offs per round trip.
    fn select_pingpong(n: u64) -> Duration {
        use gorust::sync::mpsc::sync_channel;
        use gorust::sync::Select;
        let (ping_tx, ping_rx) = sync_channel::<u64>(0);
        let (pong_tx, pong_rx) = sync_channel::<u64>(0);
        let (quit_tx, quit_rx) = sync_channel::<()>(0);
        let (_never_tx, never) = sync_channel::<()>(0);
        let echo = gorust::go(move || loop {
            let mut sel = Select::new();
            let ping = sel.recv(&ping_rx);
            sel.recv(&quit_rx);
            match sel.wait().recv(ping) {
                Some(Ok(v)) if pong_tx.send(v).is_ok() => {}
                _ => return,
            }
        });
        let t = Instant::now();
        for i in 0..n {
            let mut sel = Select::new();
            let ping = sel.send(&ping_tx, i);
            sel.recv(&never);
            let sent = sel.wait().send(ping);
            sent.expect("`never` fired").expect("echo gone");
            let mut sel = Select::new();
            let pong = sel.recv(&pong_rx);
            sel.recv(&never);
            let got = sel.wait().recv(pong);
            black_box(got.expect("`never` fired").expect("echo gone"));
        }
        let d = t.elapsed();
        drop(quit_tx);
        echo.join().expect("echo panicked");
        d
    }

    /// `n` goroutines, each parked in a receive on one shared gate (a `tokio::sync::watch`
    /// channel: runtime-agnostic, and a value sent before a goroutine parks is not lost), like
    /// the Go peer's goroutines parked on `<-gate`. Handles are dropped (detached), as Go has
    /// none; a counter tells when all finished.
    fn mem(n: u64) -> String {
        let before = vm_rss_kib();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let parked = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicU64::new(0));
        for _ in 0..n {
            let mut rx = rx.clone();
            let (parked, done) = (parked.clone(), done.clone());
            drop(gorust::go(move || {
                parked.fetch_add(1, Relaxed);
                let _ = gorust::block_on(rx.changed());
                done.fetch_add(1, Relaxed);
            }));
        }
        while parked.load(Relaxed) < n {
            gorust::time::sleep(Duration::from_millis(1));
        }
        // The counter is bumped just before the park; let the last ones reach it.
        gorust::time::sleep(Duration::from_millis(50));
        let after = vm_rss_kib();
        let live = gorust::num_goroutines() as u64 - 1; // less the main goroutine
        let maps = map_count();
        let _ = tx.send(true);
        while done.load(Relaxed) < n {
            gorust::time::sleep(Duration::from_millis(1));
        }
        mem_line(n, before, after, live, maps)
    }
}

mod tokio_side {
    use super::*;

    pub fn run(scenario: &str, workers: usize, n: u64) -> Result<String, String> {
        let mut b = if workers == 1 {
            tokio::runtime::Builder::new_current_thread()
        } else {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(workers);
            b
        };
        let rt = b
            .enable_all()
            .build()
            .map_err(|e| format!("tokio: cannot start the runtime: {e}"))?;
        // The measuring code runs as a task, like gorust's main goroutine.
        let on_rt = |f: std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>>| {
            rt.block_on(rt.spawn(f))
                .expect("the measuring task panicked")
        };
        match scenario {
            "spawn_all" => Ok(on_rt(Box::pin(
                async move { ns_per_op(spawn_all(n).await, n) },
            ))),
            "spawn_batch" => Ok(on_rt(Box::pin(async move {
                ns_per_op(spawn_batch(n).await, n)
            }))),
            "yield" => Ok(on_rt(Box::pin(
                async move { ns_per_op(yield_now(n).await, n) },
            ))),
            "pingpong" => Ok(on_rt(Box::pin(
                async move { ns_per_op(pingpong(n).await, n) },
            ))),
            "select" => Ok(on_rt(Box::pin(async move {
                ns_per_op(select_pingpong(n).await, n)
            }))),
            "mem" => Ok(on_rt(Box::pin(mem(n)))),
            _ => Err(format!("tokio: unknown scenario {scenario:?}")),
        }
    }

    async fn spawn_join(k: u64) {
        let handles: Vec<_> = (0..k)
            .map(|i| tokio::spawn(async move { black_box(i) }))
            .collect();
        for h in handles {
            black_box(h.await.expect("task panicked"));
        }
    }

    async fn spawn_all(n: u64) -> Duration {
        let t = Instant::now();
        spawn_join(n).await;
        t.elapsed()
    }

    async fn spawn_batch(n: u64) -> Duration {
        let t = Instant::now();
        let mut left = n;
        while left > 0 {
            let k = left.min(BATCH);
            spawn_join(k).await;
            left -= k;
        }
        t.elapsed()
    }

    async fn yield_now(n: u64) -> Duration {
        let t = Instant::now();
        for _ in 0..n {
            tokio::task::yield_now().await;
        }
        t.elapsed()
    }

    /// As gorust's `select_pingpong`, with `tokio::select!` over `mpsc::channel(1)`s (tokio
    /// has no rendezvous channel, and its `select!` polls futures: not atomic, but its idiom).
    async fn select_pingpong(n: u64) -> Duration {
        use tokio::sync::mpsc::channel;
        let (ping_tx, mut ping_rx) = channel::<u64>(1);
        let (pong_tx, mut pong_rx) = channel::<u64>(1);
        let (quit_tx, mut quit_rx) = channel::<()>(1);
        let (_never_tx, mut never) = channel::<()>(1);
        let echo = tokio::spawn(async move {
            loop {
                tokio::select! {
                    v = ping_rx.recv() => match v {
                        Some(v) if pong_tx.send(v).await.is_ok() => {}
                        _ => return,
                    },
                    _ = quit_rx.recv() => return,
                }
            }
        });
        let t = Instant::now();
        for i in 0..n {
            tokio::select! {
                r = ping_tx.send(i) => r.expect("echo gone"),
                _ = never.recv() => panic!("`never` fired"),
            }
            tokio::select! {
                v = pong_rx.recv() => { black_box(v.expect("echo gone")); }
                _ = never.recv() => panic!("`never` fired"),
            }
        }
        let d = t.elapsed();
        drop(quit_tx);
        echo.await.expect("echo panicked");
        d
    }

    /// As gorust's `pingpong`, with `mpsc::channel(1)` both ways and an echo task.
    async fn pingpong(n: u64) -> Duration {
        let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<u64>(1);
        let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u64>(1);
        let echo = tokio::spawn(async move {
            while let Some(v) = ping_rx.recv().await {
                if pong_tx.send(v).await.is_err() {
                    break;
                }
            }
        });
        let t = Instant::now();
        for i in 0..n {
            ping_tx.send(i).await.expect("echo gone");
            black_box(pong_rx.recv().await.expect("echo gone"));
        }
        let d = t.elapsed();
        drop(ping_tx);
        echo.await.expect("echo panicked");
        d
    }

    /// As gorust's `mem`, with tasks (stackless: a task's state is its future) for reference.
    async fn mem(n: u64) -> String {
        let before = vm_rss_kib();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let parked = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicU64::new(0));
        for _ in 0..n {
            let mut rx = rx.clone();
            let (parked, done) = (parked.clone(), done.clone());
            drop(tokio::spawn(async move {
                parked.fetch_add(1, Relaxed);
                let _ = rx.changed().await;
                done.fetch_add(1, Relaxed);
            }));
        }
        while parked.load(Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let after = vm_rss_kib();
        let live = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks() as u64
            - 1;
        let maps = map_count();
        let _ = tx.send(true);
        while done.load(Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        mem_line(n, before, after, live, maps)
    }
}
