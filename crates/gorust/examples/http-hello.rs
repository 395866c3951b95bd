//! A small HTTP/1.1 hello server with a request counter (seed 001's Go program), a goroutine
//! per connection, keep-alive and pipelining, answering `wrk`, `ab` and `hey` correctly.
//!
//! Run: `cargo run --release -p gorust --example http-hello -- 127.0.0.1:8080`
//! then `curl -v http://127.0.0.1:8080/` prints `Request #1`; `wrk -c 1000 -d 5
//! http://127.0.0.1:8080/` shows thousands of connections on a few threads. (`ab` counts
//! responses whose length differs from the first as "Length" failures: the counter's width
//! changes the body's length, as it does with the Go original.)

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use gorust::net::{TcpListener, TcpStream};

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

/// Serves requests on one connection until the client closes or asks to.
fn handle(mut conn: TcpStream, counter: &AtomicU64) -> io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    let mut out = Vec::with_capacity(256);
    loop {
        // Answer every complete request in the buffer (pipelining), then write once.
        let mut keep_alive = true;
        while let Some(req) = parse(&buf[..len]) {
            let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
            let body = format!("Request #{n}\n");
            keep_alive = req.keep_alive;
            // HTTP/1.1 is persistent unless told otherwise; an HTTP/1.0 client (ab -k) keeps
            // the connection only if the response says so.
            let connection = match (keep_alive, req.http10) {
                (false, _) => "Connection: close\r\n",
                (true, true) => "Connection: keep-alive\r\n",
                (true, false) => "",
            };
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{connection}\r\n{body}",
                body.len(),
            )?;
            buf.copy_within(req.consumed..len, 0);
            len -= req.consumed;
            if !keep_alive {
                break;
            }
        }
        if !out.is_empty() {
            conn.write_all(&out)?;
            out.clear();
        }
        if !keep_alive {
            return Ok(());
        }
        if len == buf.len() {
            // A header block larger than the buffer: refuse it.
            conn.write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
            return Ok(());
        }
        let n = conn.read(&mut buf[len..])?;
        if n == 0 {
            return Ok(());
        }
        len += n;
    }
}

struct Request {
    /// Bytes of the request, headers and body.
    consumed: usize,
    keep_alive: bool,
    http10: bool,
}

/// Parses one request head (and skips its `Content-Length` body) if complete.
fn parse(data: &[u8]) -> Option<Request> {
    let end = data.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&data[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?;
    let http10 = request_line.ends_with("HTTP/1.0");
    let mut keep_alive = !http10;
    let mut body = 0usize;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                keep_alive = false;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                keep_alive = true;
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            body = value.parse().ok()?;
        }
    }
    if data.len() < end + body {
        return None;
    }
    Some(Request {
        consumed: end + body,
        keep_alive,
        http10,
    })
}
