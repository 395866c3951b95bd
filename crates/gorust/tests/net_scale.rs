//! 10,000 concurrent connections to one goroutine-per-connection echo server.
//!
//! The client runs in a child process (this test binary re-run with `GORUST_SCALE_CLIENT`) so
//! that each process stays under the 20,000-descriptor limit. Every byte must come back, and the
//! server's OS threads must stay at most workers + blocking threads + 2.

use std::io::{Read, Write};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const CONNS: usize = 10_000;
const CLIENT_THREADS: usize = 8;
const MSG: usize = 64;

fn threads_now() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Threads:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap()
}

#[test]
fn ten_thousand_connections_on_a_few_threads() {
    if std::env::var("GORUST_SCALE_CLIENT").is_ok() {
        return;
    }
    let workers = 2;
    let rt = gorust::Runtime::builder().workers(workers).build().unwrap();
    let peak = Arc::new(AtomicU64::new(0));
    let p = peak.clone();
    let (status, stdout, stderr, blocking) = rt.run(move || {
        let l = gorust::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        gorust::go(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { continue };
                gorust::go(move || {
                    let mut buf = [0u8; MSG];
                    loop {
                        match c.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if c.write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        let sampler = {
            let p = p.clone();
            gorust::go(move || loop {
                p.fetch_max(threads_now(), Ordering::Relaxed);
                gorust::time::sleep(Duration::from_millis(20));
            })
        };
        let out = gorust::blocking(move || {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "scale_client", "--nocapture", "--test-threads=1"])
                .env("GORUST_SCALE_CLIENT", addr.to_string())
                .output()
                .unwrap()
        });
        drop(sampler);
        let blocking = gorust::metrics().unwrap().blocking_threads as u64;
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            blocking,
        )
    });
    assert!(status.success(), "client failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "echoed {} bytes on {CONNS} connections",
            CONNS * MSG
        )),
        "{stdout}"
    );
    // The runtime's threads (workers, monitor, blocking threads), plus the caller of `run`,
    // which plays the server's main thread.
    let server_threads = peak.load(Ordering::Relaxed) + 1;
    let allowed = workers as u64 + blocking.max(1) + 2;
    assert!(
        server_threads <= allowed,
        "server used {server_threads} OS threads for {CONNS} connections (allowed {allowed})"
    );
}

/// The client: CONNS connections from CLIENT_THREADS plain threads, all open at once.
#[test]
fn scale_client() {
    let Ok(addr) = std::env::var("GORUST_SCALE_CLIENT") else {
        return;
    };
    let barrier = Arc::new(std::sync::Barrier::new(CLIENT_THREADS));
    let hs: Vec<_> = (0..CLIENT_THREADS)
        .map(|t| {
            let addr = addr.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut conns: Vec<std::net::TcpStream> = (0..CONNS / CLIENT_THREADS)
                    .map(|_| {
                        let s = std::net::TcpStream::connect(&addr).expect("connect");
                        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                        s
                    })
                    .collect();
                // Every connection is open before any is used.
                barrier.wait();
                let mut echoed = 0usize;
                for (i, s) in conns.iter_mut().enumerate() {
                    let msg = [(t * 31 + i) as u8; MSG];
                    s.write_all(&msg).unwrap();
                }
                for (i, s) in conns.iter_mut().enumerate() {
                    let mut back = [0u8; MSG];
                    s.read_exact(&mut back).unwrap();
                    assert_eq!(back, [(t * 31 + i) as u8; MSG]);
                    echoed += MSG;
                }
                barrier.wait();
                echoed
            })
        })
        .collect();
    let total: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
    println!("echoed {total} bytes on {CONNS} connections");
}
