//! An echo server in event-loop mode: no goroutine and no buffer per idle connection; a
//! handler runs only when bytes have arrived.
//!
//! Run: `cargo run --release -p gorust --example eventloop-echo -- 127.0.0.1:7879`
//! then `nc 127.0.0.1 7879` and type; each line comes back. Every second the server prints its
//! live connections and goroutines (goroutines stay near zero while connections are idle).

use std::time::Duration;

use gorust::eventloop::EventLoop;
use gorust::net::TcpListener;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7879".into());
    gorust::run(move || {
        let listener = TcpListener::bind(addr.as_str())?;
        println!("eventloop-echo: listening on {}", listener.local_addr()?);
        let el = EventLoop::builder()
            .on_prepare(|p| p.set_nodelay(true))
            .on_request(|c, _| {
                // Echo everything that has arrived: zero-copy slices of the input buffer.
                let n = c.reader().len();
                let data = c.reader().next(n)?;
                c.writer().write_bytes(&data);
                drop(data);
                c.flush()
            })
            .idle_timeout(Some(Duration::from_secs(300)))
            .build()?;
        let stats = el.clone();
        gorust::go(move || loop {
            gorust::time::sleep(Duration::from_secs(1));
            println!(
                "eventloop-echo: {} connections, {} goroutines",
                stats.connections(),
                gorust::num_goroutines()
            );
        });
        el.serve(listener)
    })
}
