//! The HTTP/1.1 parsing and response of the hello servers (`http-hello`, `eventloop-http`):
//! just enough HTTP for `wrk`, `ab`, `hey` and `curl`.

use std::io::{self, Write};

pub struct Request {
    /// Bytes of the request, headers and body.
    pub consumed: usize,
    pub keep_alive: bool,
    pub http10: bool,
}

/// Appends the hello response for request number `n` to `out`.
pub fn respond(out: &mut impl Write, n: u64, req: &Request) -> io::Result<()> {
    let body = format!("Request #{n}\n");
    // HTTP/1.1 is persistent unless told otherwise; an HTTP/1.0 client (ab -k) keeps the
    // connection only if the response says so.
    let connection = match (req.keep_alive, req.http10) {
        (false, _) => "Connection: close\r\n",
        (true, true) => "Connection: keep-alive\r\n",
        (true, false) => "",
    };
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{connection}\r\n{body}",
        body.len(),
    )
}

/// The answer to a header block larger than the server accepts.
pub const TOO_LARGE: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Parses one request head (and skips its `Content-Length` body) if complete.
pub fn parse(data: &[u8]) -> Option<Request> {
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
