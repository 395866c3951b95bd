//! A small HTTP/1.1 hello server with a request counter (seed 001's Go program), a goroutine
//! per connection, keep-alive and pipelining, answering `wrk`, `ab` and `hey` correctly.
//!
//! Run: `cargo run --release -p gorust --example http-hello -- 127.0.0.1:8080`
//! then `curl -v http://127.0.0.1:8080/` prints `Request #1`; `wrk -c 1000 -d 5
//! http://127.0.0.1:8080/` shows thousands of connections on a few threads. (`ab` counts
//! responses whose length differs from the first as "Length" failures: the counter's width
//! changes the body's length, as it does with the Go original.)

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gorust::net::{TcpListener, TcpStream};

#[path = "shared/http.rs"]
mod http;

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    gorust::run(move || {
        let listener = TcpListener::bind(addr.as_str())?;
        println!(
            "http-hello: listening on http://{}/",
            listener.local_addr()?
        );
        let counter = Arc::new(AtomicU64::new(0));
        gorust::net::serve(&listener, move |conn| {
            let _ = handle(conn, &counter);
        })
    })
}

/// How long a connection may stay silent (between requests, or inside one) before it is
/// closed, as eventloop-http's idle timeout: a client that sends half a request and waits
/// must not hold a goroutine and a descriptor for good.
const IDLE: Duration = Duration::from_secs(60);

/// Serves requests on one connection until the client closes or asks to, or is silent for
/// [`IDLE`].
fn handle(mut conn: TcpStream, counter: &AtomicU64) -> io::Result<()> {
    conn.set_read_timeout(Some(IDLE))?;
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    let mut requests = http::Requests::default();
    let mut out = Vec::with_capacity(256);
    loop {
        // Answer every complete request in the buffer (pipelining), then write once.
        let mut keep_alive = true;
        let mut at = 0;
        while keep_alive {
            let Ok((used, req)) = requests.next(&buf[at..len]) else {
                out.extend_from_slice(http::BAD_REQUEST);
                conn.write_all(&out)?;
                linger(&conn);
                return Ok(());
            };
            at += used;
            if requests.continue_due() {
                out.extend_from_slice(http::CONTINUE);
            }
            let Some(req) = req else {
                if used == 0 {
                    break;
                }
                continue;
            };
            let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
            keep_alive = req.keep_alive;
            http::respond(&mut out, n, &req)?;
        }
        buf.copy_within(at..len, 0);
        len -= at;
        if !out.is_empty() {
            conn.write_all(&out)?;
            out.clear();
        }
        if !keep_alive {
            return Ok(());
        }
        if len == buf.len() {
            // A header block larger than the buffer: refuse it.
            conn.write_all(http::TOO_LARGE)?;
            linger(&conn);
            return Ok(());
        }
        let n = conn.read(&mut buf[len..])?;
        if n == 0 {
            return Ok(());
        }
        len += n;
    }
}

/// How long a refused connection is read on before it is closed, as the event loop's
/// lingering close and Go's `net/http` wait.
const LINGER: Duration = Duration::from_millis(500);

/// Ends a connection whose last request was refused (400, 431) with input left unread: the
/// write side is shut down, so the client reads the refusal and then the end, and what it
/// still sends is read and dropped until it closes, for [`LINGER`] at most. Closed at once,
/// with those bytes unread, the socket reset, and a client could see the reset instead of the
/// answer (review, session 35).
fn linger(conn: &TcpStream) {
    if conn.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let _ = conn.set_read_deadline(Some(Instant::now() + LINGER));
    let mut sink = [0u8; 4096];
    while matches!((&*conn).read(&mut sink), Ok(n) if n > 0) {}
}
