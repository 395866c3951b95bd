//! Spawn + join of trivial goroutines (gorust) and tasks (tokio), on 1 and 2 workers.
//!
//! `cargo bench -p gorust --bench spawn` — two groups, each with gorust and tokio side by side
//! (`gorust/1` is one worker, `tokio/1` is tokio's current_thread runtime):
//!
//! - `spawn_join_batch_1000`: one iteration spawns 1,000 goroutines, then joins them all.
//! - `spawn_join_all_10000`: one iteration spawns 10,000 at once, then joins them all (the
//!   all-at-once shape of `compare`'s 1,000,000, small enough for criterion's many samples).
//!
//! Throughput is in goroutines (elements) per second. The spawning goroutine or task runs on
//! the runtime, as in a program.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn gorust_spawn_join(k: u64) {
    let handles: Vec<_> = (0..k).map(|i| gorust::go(move || black_box(i))).collect();
    for h in handles {
        black_box(h.join().expect("goroutine panicked"));
    }
}

async fn tokio_spawn_join(k: u64) {
    let handles: Vec<_> = (0..k)
        .map(|i| tokio::spawn(async move { black_box(i) }))
        .collect();
    for h in handles {
        black_box(h.await.expect("task panicked"));
    }
}

fn group(c: &mut Criterion, name: &str, k: u64) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(k));
    for workers in common::WORKERS {
        let rt = common::gorust_rt(workers);
        g.bench_function(BenchmarkId::new("gorust", workers), |b| {
            b.iter_custom(|iters| {
                common::in_goroutine(&rt, move || {
                    let t = Instant::now();
                    for _ in 0..iters {
                        gorust_spawn_join(k);
                    }
                    t.elapsed()
                })
            })
        });
        drop(rt);
        let rt = common::tokio_rt(workers);
        g.bench_function(BenchmarkId::new("tokio", workers), |b| {
            b.iter_custom(|iters| {
                common::in_task(&rt, async move {
                    let t = Instant::now();
                    for _ in 0..iters {
                        tokio_spawn_join(k).await;
                    }
                    t.elapsed()
                })
            })
        });
    }
    g.finish();
}

fn spawn_join(c: &mut Criterion) {
    group(c, "spawn_join_batch_1000", 1_000);
    group(c, "spawn_join_all_10000", 10_000);
}

fn config() -> Criterion {
    // Each iteration of the all-at-once group is milliseconds long: fewer samples suffice.
    common::criterion()
        .sample_size(30)
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = spawn_join
}
criterion_main!(benches);
