//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::Duration;

/// Runs `body` as the main goroutine of a fresh runtime with `workers` workers.
pub fn run_on<R: Send + 'static>(workers: usize, body: impl FnOnce() -> R + Send + 'static) -> R {
    gorust::Runtime::builder()
        .workers(workers)
        .build()
        .expect("runtime starts")
        .run(body)
}

/// Runs `f` on a thread and fails the test if it takes longer than `limit` (a hang detector,
/// not a speed check: limits are generous).
pub fn within<R: Send + 'static>(limit: Duration, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("test body did not finish within {limit:?}"))
}

/// Runs a test body on each scheduler configuration (1 worker, 2 workers, 4 workers).
#[macro_export]
macro_rules! on_each_config {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn one_worker() {
                $crate::common::within(std::time::Duration::from_secs(120), || {
                    $crate::common::run_on(1, $body)
                });
            }
            #[test]
            fn two_workers() {
                $crate::common::within(std::time::Duration::from_secs(120), || {
                    $crate::common::run_on(2, $body)
                });
            }
            #[test]
            fn four_workers() {
                $crate::common::within(std::time::Duration::from_secs(120), || {
                    $crate::common::run_on(4, $body)
                });
            }
        }
    };
}

/// A client goroutine's work: `rounds` messages (tagged with `tag`, padded with `pad` bytes)
/// written to an echo server at `addr`, each read back and compared.
pub fn echo_rounds(addr: std::net::SocketAddr, tag: usize, rounds: usize, pad: usize) {
    use std::io::{Read, Write};
    let mut s = gorust::net::TcpStream::connect(addr).unwrap();
    for round in 0..rounds {
        let msg = format!("client {tag} round {round} {}", "x".repeat(pad));
        s.write_all(msg.as_bytes()).unwrap();
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, msg.as_bytes());
    }
}
