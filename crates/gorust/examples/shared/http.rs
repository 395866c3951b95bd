//! The HTTP/1.1 parsing and response of the hello servers (`http-hello`, `eventloop-http`):
//! just enough HTTP for `wrk`, `ab`, `hey` and `curl`.

use std::io::{self, Write};

pub struct Request {
    /// Bytes of the request, headers and body.
    pub consumed: usize,
    pub keep_alive: bool,
    pub http10: bool,
    /// A `HEAD` request: answered with the response's head alone.
    pub head: bool,
    /// An HTTP/1.1 request with a body that sent `Expect: 100-continue`.
    pub expect_continue: bool,
}

/// Appends the hello response for request number `n` to `out`: for a `HEAD` request, its head
/// alone (the same `Content-Length`, no body; with one, a kept-alive client such as `ab -i -k`
/// read the body as the start of the next response).
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
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{connection}\r\n{}",
        body.len(),
        if req.head { "" } else { &body },
    )
}

/// The answer to a header block larger than the server accepts.
pub const TOO_LARGE: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// The interim answer to `Expect: 100-continue`, written when [`Requests::continue_due`] says.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The answer to a head these servers cannot frame: not UTF-8, no `METHOD TARGET HTTP/1.x`
/// line, a header line with no colon or with white space before it (RFC 9112 §5.1: a
/// `Content-Length : 5` taken as some other header would leave the body to be read as the
/// next request), a `Content-Length` that is not a number or given twice with different
/// values, or a chunked body (they read `Content-Length` bodies only; reading on after one would take its
/// chunks for the next requests).
pub const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// A head that cannot be answered but with [`BAD_REQUEST`].
pub struct Malformed;

/// Parses one request head once it has arrived: `Ok(None)` until then. The request's
/// `consumed` counts its `Content-Length` body, which may not have arrived yet.
fn parse_head(data: &[u8]) -> Result<Option<Request>, Malformed> {
    let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&data[..end]).map_err(|_| Malformed)?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (method, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(target), Some(version), None)
            if !method.is_empty() && !target.is_empty() =>
        {
            (method, version)
        }
        _ => return Err(Malformed),
    };
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(Malformed),
    };
    let (mut close, mut keep) = (false, false);
    let mut body: Option<usize> = None;
    let mut expect_continue = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(Malformed);
        };
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(Malformed);
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            // A list of options (`TE, close`); `close` anywhere wins.
            for option in value.split(',').map(str::trim) {
                close |= option.eq_ignore_ascii_case("close");
                keep |= option.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            // Digits only (`parse` would take a `+`), and one value however often it is sent.
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Malformed);
            }
            let n = value.parse().map_err(|_| Malformed)?;
            if body.is_some_and(|m| m != n) {
                return Err(Malformed);
            }
            body = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Malformed);
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue = value.eq_ignore_ascii_case("100-continue");
        }
    }
    let consumed = (end + 4).checked_add(body.unwrap_or(0)).ok_or(Malformed)?;
    Ok(Some(Request {
        consumed,
        keep_alive: !close && (keep || !http10),
        http10,
        head: method == "HEAD",
        expect_continue: expect_continue && !http10 && body.unwrap_or(0) > 0,
    }))
}

/// A connection's requests as their bytes arrive. A body is dropped as it comes, so a request
/// of any length needs buffer room only for its head; the request is answered once its last
/// byte has come.
#[derive(Default)]
pub struct Requests {
    /// The request whose body is arriving, and how many of its bytes are still to come.
    in_body: Option<(Request, usize)>,
    /// A head with `Expect: 100-continue` arrived without all of its body: its client waits
    /// for [`CONTINUE`] before sending the body (curl waits a second, then sends anyway).
    continue_due: bool,
}

impl Requests {
    /// Given the connection's unconsumed bytes, returns how many of them to consume and the
    /// request to answer if one is now whole. Call again after consuming; nothing consumed and
    /// nothing to answer means: read more (after writing [`CONTINUE`] if
    /// [`continue_due`](Self::continue_due)).
    pub fn next(&mut self, data: &[u8]) -> Result<(usize, Option<Request>), Malformed> {
        let (req, still_to_come, fresh) = match self.in_body.take() {
            Some((req, n)) => (req, n, false),
            None => match parse_head(data)? {
                Some(req) => {
                    let n = req.consumed;
                    (req, n, true)
                }
                None => return Ok((0, None)),
            },
        };
        let here = still_to_come.min(data.len());
        if here < still_to_come {
            self.continue_due |= fresh && req.expect_continue;
            self.in_body = Some((req, still_to_come - here));
            return Ok((here, None));
        }
        Ok((here, Some(req)))
    }

    /// Whether to write [`CONTINUE`] now (once per such request).
    pub fn continue_due(&mut self) -> bool {
        std::mem::take(&mut self.continue_due)
    }
}
