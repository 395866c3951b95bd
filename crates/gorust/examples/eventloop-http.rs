//! The HTTP/1.1 hello server of `http-hello` in event-loop mode: keep-alive and pipelining,
//! no goroutine and no buffer per idle connection, answering `wrk`, `ab`, `ab -k` and `curl`.
//!
//! Run: `cargo run --release -p gorust --example eventloop-http -- 127.0.0.1:8081`
//! then `curl -v http://127.0.0.1:8081/` prints `Request #1`; `wrk -c 1000 -d 5
//! http://127.0.0.1:8081/` serves a thousand connections on a few threads.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gorust::eventloop::{Connection, EventLoop};
use gorust::net::TcpListener;

#[path = "shared/http.rs"]
mod http;

/// Header blocks larger than this are refused (431), as `http-hello` does with its buffer.
const MAX_HEAD: usize = 8192;
/// The first look for a head: most requests are shorter.
const FIRST_LOOK: usize = 512;

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".into());
    gorust::run(move || {
        let listener = TcpListener::bind(addr.as_str())?;
        println!(
            "eventloop-http: listening on http://{}/",
            listener.local_addr()?
        );
        let counter = Arc::new(AtomicU64::new(0));
        let el = EventLoop::builder()
            .on_prepare(|p| p.set_nodelay(true))
            // Each connection's state: where it is in its requests.
            .on_connect(|_| http::Requests::default())
            .on_request(move |c, requests| serve(c, requests, &counter))
            .idle_timeout(Some(Duration::from_secs(60)))
            .build()?;
        el.serve(listener)
    })
}

/// Answers every complete request that has arrived (pipelining); a partial head stays in the
/// input until the rest arrives, and a body is consumed as it comes.
fn serve(
    c: &mut Connection<'_>,
    requests: &mut http::Requests,
    counter: &AtomicU64,
) -> io::Result<()> {
    loop {
        // The head is looked for in the input's first `FIRST_LOOK` bytes, then in its first
        // `MAX_HEAD`, never further: `peek` copies where its window spans the buffer's nodes,
        // and with the whole input as the window each request of a long pipelined burst
        // copied all that was left of it; and a head that ended past `MAX_HEAD` was answered,
        // not refused, when it arrived whole (review, session 35).
        let mut next = Ok((0, None));
        for look in [FIRST_LOOK, MAX_HEAD] {
            let data = c.reader().peek(c.reader().len().min(look))?;
            next = requests.next(&data);
            if !matches!(next, Ok((0, None))) || data.len() < look {
                break;
            }
        }
        let Ok((used, req)) = next else {
            c.writer().write_bytes(http::BAD_REQUEST);
            c.close();
            return Ok(());
        };
        c.reader().skip(used)?;
        // Not once some of the body is here (RFC 9110 §10.1.1 lets the server omit it then):
        // the window above may have cut a body that arrived with its head.
        if requests.continue_due() && c.reader().is_empty() {
            c.writer().write_bytes(http::CONTINUE);
        }
        let Some(req) = req else {
            if used > 0 {
                continue;
            }
            if c.reader().len() >= MAX_HEAD {
                c.writer().write_bytes(http::TOO_LARGE);
                c.close();
            }
            return Ok(());
        };
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        http::respond(&mut *c.writer(), n, &req)?;
        if !req.keep_alive {
            c.close();
            return Ok(());
        }
    }
}
