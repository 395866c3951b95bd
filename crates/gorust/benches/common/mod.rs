//! What the criterion benches share: the runtimes under test, built the same way in each
//! bench, and how a measured body runs on them — always inside a goroutine or a task, never on
//! criterion's own thread, so that `go`/`spawn` take the worker-local path a program uses.
//!
//! Runtimes, by worker count (each bench runs both):
//!
//! | workers | gorust                              | tokio                               |
//! |---------|-------------------------------------|-------------------------------------|
//! | 1       | `Runtime::builder().workers(1)`     | `Builder::new_current_thread()`     |
//! | 2       | `Runtime::builder().workers(2)`     | `Builder::new_multi_thread()`, 2    |

use std::future::Future;
use std::time::Duration;

use criterion::Criterion;

/// The worker counts every bench runs (the machine this was written for has two cores).
pub const WORKERS: [usize; 2] = [1, 2];

/// Criterion settings for these benches: short warm-up and measurement, to keep a full
/// `cargo bench` within a few minutes on two cores. Command-line options still override them.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

/// A gorust runtime with `workers` workers.
pub fn gorust_rt(workers: usize) -> gorust::Runtime {
    gorust::Runtime::builder()
        .workers(workers)
        .build()
        .expect("bench: cannot start a gorust runtime")
}

/// A tokio runtime: current_thread for one worker, multi_thread otherwise.
pub fn tokio_rt(workers: usize) -> tokio::runtime::Runtime {
    let mut b = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    b.enable_all()
        .build()
        .expect("bench: cannot start a tokio runtime")
}

/// Runs `body` as a goroutine on `rt` and returns what it measured.
pub fn in_goroutine<F>(rt: &gorust::Runtime, body: F) -> Duration
where
    F: FnOnce() -> Duration + Send + 'static,
{
    let h = rt.go(body);
    rt.block_on(h)
        .expect("bench: the measuring goroutine panicked")
}

/// Runs `body` as a task on `rt` and returns what it measured.
pub fn in_task<F>(rt: &tokio::runtime::Runtime, body: F) -> Duration
where
    F: Future<Output = Duration> + Send + 'static,
{
    rt.block_on(rt.spawn(body))
        .expect("bench: the measuring task panicked")
}
