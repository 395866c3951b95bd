//! The cost of one yield: `gorust::yield_now` in a goroutine vs `tokio::task::yield_now` in a
//! task, on 1 and 2 workers.
//!
//! `cargo bench -p gorust --bench yield_now` — group `yield_now`, one iteration is one yield of
//! the only runnable goroutine/task (so it measures the round trip through the run queue, not
//! fairness between many).

mod common;

use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn yield_now(c: &mut Criterion) {
    let mut g = c.benchmark_group("yield_now");
    for workers in common::WORKERS {
        let rt = common::gorust_rt(workers);
        g.bench_function(BenchmarkId::new("gorust", workers), |b| {
            b.iter_custom(|iters| {
                common::in_goroutine(&rt, move || {
                    let t = Instant::now();
                    for _ in 0..iters {
                        gorust::yield_now();
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
                        tokio::task::yield_now().await;
                    }
                    t.elapsed()
                })
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = yield_now
}
criterion_main!(benches);
