//! Channel ping-pong: the round trip of one message to an echo goroutine and back, gorust's
//! `sync::mpsc` between goroutines vs tokio's `sync::mpsc` between tasks, on 1 and 2 workers.
//!
//! `cargo bench -p gorust --bench pingpong` — group `pingpong_round_trip`, one iteration is one
//! round trip (two sends, two receives, two parks and wake-ups):
//!
//! - `gorust_sync1` / `tokio_bounded1`: `sync_channel(1)` / `mpsc::channel(1)` both ways;
//! - `gorust_unbounded` / `tokio_unbounded`: `channel()` / `mpsc::unbounded_channel()`.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use gorust::sync::mpsc as gmpsc;
use tokio::sync::mpsc as tmpsc;

fn gorust_sync1(n: u64) -> Duration {
    let (ping_tx, ping_rx) = gmpsc::sync_channel::<u64>(1);
    let (pong_tx, pong_rx) = gmpsc::sync_channel::<u64>(1);
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

fn gorust_unbounded(n: u64) -> Duration {
    let (ping_tx, ping_rx) = gmpsc::channel::<u64>();
    let (pong_tx, pong_rx) = gmpsc::channel::<u64>();
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

async fn tokio_bounded1(n: u64) -> Duration {
    let (ping_tx, mut ping_rx) = tmpsc::channel::<u64>(1);
    let (pong_tx, mut pong_rx) = tmpsc::channel::<u64>(1);
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

async fn tokio_unbounded(n: u64) -> Duration {
    let (ping_tx, mut ping_rx) = tmpsc::unbounded_channel::<u64>();
    let (pong_tx, mut pong_rx) = tmpsc::unbounded_channel::<u64>();
    let echo = tokio::spawn(async move {
        while let Some(v) = ping_rx.recv().await {
            if pong_tx.send(v).is_err() {
                break;
            }
        }
    });
    let t = Instant::now();
    for i in 0..n {
        ping_tx.send(i).expect("echo gone");
        black_box(pong_rx.recv().await.expect("echo gone"));
    }
    let d = t.elapsed();
    drop(ping_tx);
    echo.await.expect("echo panicked");
    d
}

fn pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("pingpong_round_trip");
    for workers in common::WORKERS {
        let rt = common::gorust_rt(workers);
        g.bench_function(BenchmarkId::new("gorust_sync1", workers), |b| {
            b.iter_custom(|iters| common::in_goroutine(&rt, move || gorust_sync1(iters)))
        });
        g.bench_function(BenchmarkId::new("gorust_unbounded", workers), |b| {
            b.iter_custom(|iters| common::in_goroutine(&rt, move || gorust_unbounded(iters)))
        });
        drop(rt);
        let rt = common::tokio_rt(workers);
        g.bench_function(BenchmarkId::new("tokio_bounded1", workers), |b| {
            b.iter_custom(|iters| common::in_task(&rt, tokio_bounded1(iters)))
        });
        g.bench_function(BenchmarkId::new("tokio_unbounded", workers), |b| {
            b.iter_custom(|iters| common::in_task(&rt, tokio_unbounded(iters)))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = pingpong
}
criterion_main!(benches);
