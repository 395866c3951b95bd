//! 10,000 concurrent connections to one event-loop echo server, the client in a child process
//! (this test binary re-run with `GORUST_EL_SCALE_CLIENT`) so that each process stays under the
//! 20,000-descriptor limit. Every byte comes back, every connection disconnects exactly once,
//! and the loop ends with no connection and no buffer node left.

mod common;

use std::process::Command;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

const CONNS: usize = 10_000;
const CLIENT_THREADS: usize = 8;
const MSG: usize = 64;

#[test]
fn ten_thousand_event_loop_connections() {
    if std::env::var("GORUST_EL_SCALE_CLIENT").is_ok() {
        return;
    }
    common::within(Duration::from_secs(300), || {
        common::run_on(2, || {
            let (el, addr, gone) = common::echo_loop(|b| b);
            let out = gorust::blocking(move || {
                common::output_within(
                    Command::new(std::env::current_exe().unwrap())
                        .args(["--exact", "el_scale_client", "--nocapture"])
                        .env("GORUST_EL_SCALE_CLIENT", addr.to_string()),
                    Duration::from_secs(240),
                )
            });
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "client failed:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                stdout.contains(&format!("echoed {} bytes", CONNS * MSG)),
                "{stdout}"
            );
            let end = Instant::now() + Duration::from_secs(60);
            while gone.load(SeqCst) < CONNS || el.connections() > 0 {
                assert!(Instant::now() < end, "{} disconnected", gone.load(SeqCst));
                gorust::time::sleep(Duration::from_millis(5));
            }
            assert_eq!(gone.load(SeqCst), CONNS, "on_disconnect exactly once each");
            assert_eq!(gorust::buffer::pool_stats().in_use, 0);
        })
    });
}

#[test]
fn el_scale_client() {
    let Ok(addr) = std::env::var("GORUST_EL_SCALE_CLIENT") else {
        return;
    };
    let total = common::scale_client(&addr, CONNS, CLIENT_THREADS, MSG);
    println!("echoed {total} bytes");
}
