//! How long a 100 µs sleep really takes: `gorust::time::sleep` in a goroutine vs
//! `tokio::time::sleep` in a task, on 1 and 2 workers.
//!
//! `cargo bench -p gorust --bench sleep` — group `sleep_100us`; the time criterion reports per
//! iteration is the sleep's actual duration (100 µs plus the wake-up latency). tokio's timer
//! wheel has millisecond granularity, so its figure is expected near 1 ms; gorust's timers
//! are sub-millisecond (DESIGN.md decision 6).

mod common;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

const SLEEP: Duration = Duration::from_micros(100);

fn sleep(c: &mut Criterion) {
    let mut g = c.benchmark_group("sleep_100us");
    for workers in common::WORKERS {
        let rt = common::gorust_rt(workers);
        g.bench_function(BenchmarkId::new("gorust", workers), |b| {
            b.iter_custom(|iters| {
                common::in_goroutine(&rt, move || {
                    let t = Instant::now();
                    for _ in 0..iters {
                        gorust::time::sleep(SLEEP);
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
                        tokio::time::sleep(SLEEP).await;
                    }
                    t.elapsed()
                })
            })
        });
    }
    g.finish();
}

fn config() -> criterion::Criterion {
    // An iteration is 0.1-1 ms: 20 samples keep the run to a few seconds per runtime.
    common::criterion().sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = sleep
}
criterion_main!(benches);
