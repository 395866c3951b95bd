//! An echo server with a goroutine per connection, written as a std server would be.
//!
//! Run: `cargo run --release -p gorust --example echo -- 127.0.0.1:7878`
//! then `nc 127.0.0.1 7878` and type; each line comes back. The server prints the number of
//! live goroutines and OS threads every second, to show thousands of connections on a few threads.

use std::io::{Read, Write};
use std::time::Duration;

use gorust::net::TcpListener;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".into());
    gorust::run(move || {
        let listener = TcpListener::bind(addr.as_str())?;
        println!("echo: listening on {}", listener.local_addr()?);
        gorust::go(|| loop {
            gorust::time::sleep(Duration::from_secs(1));
            let threads = std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("Threads:"))
                        .map(|l| l[8..].trim().to_string())
                })
                .unwrap_or_default();
            println!(
                "echo: {} goroutines on {threads} OS threads",
                gorust::num_goroutines()
            );
        });
        loop {
            let (mut conn, _) = match listener.accept() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("echo: accept: {e}");
                    gorust::time::sleep(Duration::from_millis(5));
                    continue;
                }
            };
            gorust::go(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    })
}
