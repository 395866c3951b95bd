//! Just enough HTTP/1.1 for `gorust serve --proto http` and `gorust load --proto http`.
//!
//! Server side: [`serve_conn`] answers every request on one connection with
//! `Request #N` (a process-wide counter, seed 001's Go program), over any `Read + Write`
//! stream, so the goroutine model (`gorust::net::TcpStream`) and the thread model
//! (`std::net::TcpStream`) share it. It keeps the connection alive as HTTP/1.1 says (and
//! HTTP/1.0 with `Connection: keep-alive`, as `ab -k` sends), answers pipelined requests in one
//! write, skips a `Content-Length` body of any length as it arrives ([`Requests`]), and
//! refuses a header block larger than its buffer with 431 and a malformed head (not UTF-8, a
//! `Content-Length` that is not a number) with 400, closing the connection after either.
//!
//! Client side: [`ResponseReader`] reads responses (head plus `Content-Length` body) for the
//! load generator as their bytes arrive, keeping a head's bytes but only counting a body's, and
//! refuses a head longer than [`MAX_RESPONSE_HEAD`], a malformed one, and a length that
//! overflows.
//!
//! Not handled, on purpose: chunked bodies (a request with a `Transfer-Encoding` is answered
//! 400 and its connection closed), header continuation lines, methods' semantics.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes buffered per connection; a request head larger than this is refused with 431.
pub const BUF_SIZE: usize = 8192;

/// The longest response head the client reads: without a bound, a server that streams a head
/// with no blank line would grow the connection's buffer for as long as it sends.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

pub const TOO_LARGE: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// The interim answer to `Expect: 100-continue` ([`Step::continue_now`]).
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

pub const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// How [`serve_conn`] ended.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub enum Ended {
    /// The client closed, or asked to close and its answer is written.
    Done,
    /// A request was refused (400, 431), with what the client sent after it left unread:
    /// closed now, the socket would reset, and a reset can reach the client before it has
    /// read the refusal, or fail its write of the rest, which then reports a reset instead
    /// of the answer. The caller closes lingering ([`crate::serve::Stream::linger`]).
    Refused,
}

/// Serves requests on one connection until the client closes it or asks to.
pub fn serve_conn<S: Read + Write>(conn: &mut S, counter: &AtomicU64) -> io::Result<Ended> {
    let mut buf = vec![0u8; BUF_SIZE];
    let mut len = 0;
    let mut reqs = Requests::default();
    let mut out = Vec::with_capacity(256);
    loop {
        // Answer every complete request in the buffer (pipelining), then write once.
        let mut keep_alive = true;
        let mut malformed = false;
        let mut at = 0;
        while keep_alive {
            let step = match reqs.step(&buf[at..len]) {
                Ok(step) => step,
                Err(_) => {
                    malformed = true;
                    break;
                }
            };
            at += step.drop;
            if step.continue_now {
                out.extend_from_slice(CONTINUE);
            }
            let Some(req) = step.answer else {
                if step.drop == 0 {
                    break;
                }
                continue;
            };
            let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
            keep_alive = req.keep_alive;
            write_response(&mut out, n, &req);
        }
        buf.copy_within(at..len, 0);
        len -= at;
        if malformed {
            out.extend_from_slice(BAD_REQUEST);
        }
        if !out.is_empty() {
            conn.write_all(&out)?;
            out.clear();
        }
        if malformed {
            return Ok(Ended::Refused);
        }
        if !keep_alive {
            return Ok(Ended::Done);
        }
        if len == buf.len() {
            conn.write_all(TOO_LARGE)?;
            return Ok(Ended::Refused);
        }
        let n = conn.read(&mut buf[len..])?;
        if n == 0 {
            return Ok(Ended::Done);
        }
        len += n;
    }
}

/// Appends the response to request number `n`, with a `Date` as hyper and Go send
/// (`http_date`): for a `HEAD` request, its head alone (the
/// same `Content-Length`, no body; with one, a kept-alive client read the body as the start
/// of the next response; review, session 28).
pub fn write_response(out: &mut Vec<u8>, n: u64, req: &Request) {
    let body = format!("Request #{n}\n");
    // HTTP/1.1 is persistent unless told otherwise; an HTTP/1.0 client keeps the connection
    // only if the response says so.
    let connection = match (req.keep_alive, req.http10) {
        (false, _) => "Connection: close\r\n",
        (true, true) => "Connection: keep-alive\r\n",
        (true, false) => "",
    };
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{connection}Date: ",
        body.len(),
    );
    out.extend_from_slice(&crate::http_date::now());
    out.extend_from_slice(b"\r\n\r\n");
    if !req.head {
        out.extend_from_slice(body.as_bytes());
    }
}

/// A request whose head has arrived.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    /// Bytes of the request, head and body (the body may not have arrived yet).
    pub consumed: usize,
    pub keep_alive: bool,
    pub http10: bool,
    /// A `HEAD` request: answered with the response's head alone.
    pub head: bool,
    /// An HTTP/1.1 request with a body that sent `Expect: 100-continue`.
    pub expect_continue: bool,
}

/// Parses one request head if it has arrived: `Ok(None)` until it has, `Err` for a malformed
/// head (answered with 400: before, it waited for more like an incomplete one, and a short
/// malformed request held its connection open for good; review, session 24).
pub fn parse_request(data: &[u8]) -> Result<Option<Request>, &'static str> {
    let Some(head) = Head::parse(data)? else {
        return Ok(None);
    };
    let mut parts = head.first_line.split(' ');
    let (method, http10) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some("HTTP/1.1"), None) if !m.is_empty() && !t.is_empty() => (m, false),
        (Some(m), Some(t), Some("HTTP/1.0"), None) if !m.is_empty() && !t.is_empty() => (m, true),
        _ => return Err("a request line that is not METHOD TARGET HTTP/1.x"),
    };
    if head.transfer_encoding {
        // Read on as if it had no body, its chunks would be taken for the next requests and
        // every answer after would be one off (review, session 26).
        return Err("a chunked request body (this server reads Content-Length bodies only)");
    }
    let keep_alive = match head.connection {
        Connection::Close => false,
        Connection::KeepAlive => true,
        Connection::Default => !http10,
    };
    let consumed = head
        .end
        .checked_add(head.content_length.unwrap_or(0))
        .ok_or("a Content-Length past the address space")?;
    Ok(Some(Request {
        consumed,
        keep_alive,
        http10,
        head: method == "HEAD",
        expect_continue: head.expect_continue && !http10 && head.content_length.unwrap_or(0) > 0,
    }))
}

/// One connection's requests, as their bytes arrive. A request's `Content-Length` body is
/// dropped as it comes and the request answered once all of it has, so a request of any
/// length needs room only for its head (before, a body that took a request past the buffer
/// was refused with 431; review, session 24).
///
/// States: between requests (`body` empty); in a body (`body` holds the request and its bytes
/// still to come).
#[derive(Default)]
pub struct Requests {
    body: Option<(Request, usize)>,
}

/// What [`Requests::step`] makes of the unconsumed bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Step {
    /// Bytes at the front to consume.
    pub drop: usize,
    /// The request to answer, if one has now arrived whole.
    pub answer: Option<Request>,
    /// Write [`CONTINUE`] now: a head with `Expect: 100-continue` has arrived, and its client
    /// waits for that before it sends the body (curl waits a second, then sends anyway).
    pub continue_now: bool,
}

impl Requests {
    /// Takes what it can from `data`, the connection's unconsumed bytes: call it again after
    /// consuming `drop` bytes until it drops nothing and answers nothing, then wait for more
    /// bytes. `Err` for a malformed head.
    pub fn step(&mut self, data: &[u8]) -> Result<Step, &'static str> {
        let (req, drop, left, fresh) = match self.body.take() {
            Some((req, left)) => {
                let drop = left.min(data.len());
                (req, drop, left - drop, false)
            }
            None => {
                let Some(req) = parse_request(data)? else {
                    return Ok(Step {
                        drop: 0,
                        answer: None,
                        continue_now: false,
                    });
                };
                let drop = req.consumed.min(data.len());
                let left = req.consumed - drop;
                (req, drop, left, true)
            }
        };
        if left > 0 {
            // Once per request, when its head arrives without all of its body.
            let continue_now = fresh && req.expect_continue;
            self.body = Some((req, left));
            return Ok(Step {
                drop,
                answer: None,
                continue_now,
            });
        }
        Ok(Step {
            drop,
            answer: Some(req),
            continue_now: false,
        })
    }
}

/// One complete response found at the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    /// Bytes of the response, head and body.
    pub consumed: usize,
    pub status: u16,
    /// The server will close the connection after this response.
    pub close: bool,
}

/// Parses a response's head once it has arrived, whether or not its body has: the response (its
/// `consumed` counts the whole body) and the length of the head. `Err` for a response this
/// client cannot read: a malformed head or status line, a head longer than
/// [`MAX_RESPONSE_HEAD`], a chunked body, a `Content-Length` past the address space.
fn parse_response_head(data: &[u8]) -> Result<Option<(Response, usize)>, String> {
    // The head is looked for in the first MAX_RESPONSE_HEAD bytes only.
    let window = &data[..data.len().min(MAX_RESPONSE_HEAD)];
    let head = match Head::parse(window) {
        Ok(Some(head)) => head,
        Ok(None) if window.len() < MAX_RESPONSE_HEAD => return Ok(None),
        Ok(None) => {
            return Err(format!(
                "no end of the response head in its first {} KiB",
                MAX_RESPONSE_HEAD / 1024
            ))
        }
        Err(e) => return Err(e.to_string()),
    };
    let mut parts = head.first_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    let Some(status) = status.filter(|_| version.starts_with("HTTP/1.")) else {
        return Err(format!("malformed status line {:?}", head.first_line));
    };
    if head.transfer_encoding {
        return Err("chunked responses are not supported".into());
    }
    let consumed = head
        .end
        .checked_add(head.content_length.unwrap_or(0))
        .ok_or("a Content-Length past the address space")?;
    let close = match head.connection {
        Connection::Close => true,
        Connection::KeepAlive => false,
        Connection::Default => version == "HTTP/1.0",
    };
    let response = Response {
        consumed,
        status,
        close,
    };
    Ok(Some((response, head.end)))
}

/// Reads responses from one connection's byte stream as it arrives, keeping the bytes of a
/// head until it is whole but only counting those of a body: a load generator must not hold a
/// large (valid) body in memory, as it did when it buffered whole responses.
///
/// States: looking for a head (`parsed` empty, `pending` holds the head's bytes so far); in a
/// body (`parsed` set, `body_left` > 0); done (`parsed` set, `body_left` 0) until [`Self::take_response`]
/// takes the response. Bytes that arrive after a response are kept as the next head's, bounded
/// like a head.
#[derive(Default)]
pub struct ResponseReader {
    pending: Vec<u8>,
    parsed: Option<Response>,
    body_left: usize,
}

impl ResponseReader {
    /// Takes bytes read from the connection. `Err` for a response this client cannot read (see
    /// `parse_response_head`), or more than [`MAX_RESPONSE_HEAD`] bytes sent past a response.
    pub fn push(&mut self, data: &[u8]) -> Result<(), String> {
        let skipped = self.body_left.min(data.len());
        self.body_left -= skipped;
        let rest = &data[skipped..];
        if rest.is_empty() {
            return Ok(());
        }
        self.pending.extend_from_slice(rest);
        if self.parsed.is_some() && self.pending.len() > MAX_RESPONSE_HEAD {
            return Err(format!(
                "more than {} KiB sent past the end of a response",
                MAX_RESPONSE_HEAD / 1024
            ));
        }
        self.find_head()
    }

    /// The next complete response, if one has arrived.
    pub fn take_response(&mut self) -> Result<Option<Response>, String> {
        if self.body_left > 0 || self.parsed.is_none() {
            return Ok(None);
        }
        let done = self.parsed.take();
        self.find_head()?;
        Ok(done)
    }

    /// Forgets everything (the connection was replaced).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.parsed = None;
        self.body_left = 0;
    }

    /// With no response parsed, parses one from the pending bytes if its head is whole, and
    /// drops the head and what part of the body is there.
    fn find_head(&mut self) -> Result<(), String> {
        if self.parsed.is_some() {
            return Ok(());
        }
        let Some((response, head_len)) = parse_response_head(&self.pending)? else {
            return Ok(());
        };
        let body = response.consumed - head_len;
        let here = (self.pending.len() - head_len).min(body);
        self.pending.drain(..head_len + here);
        self.body_left = body - here;
        self.parsed = Some(response);
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Connection {
    Default,
    Close,
    KeepAlive,
}

/// The fields of a message head that both sides need.
struct Head<'a> {
    first_line: &'a str,
    /// Offset just past the blank line ending the head.
    end: usize,
    content_length: Option<usize>,
    connection: Connection,
    /// A `Transfer-Encoding` header was sent (chunked, in practice): no body is read here.
    transfer_encoding: bool,
    /// `Expect: 100-continue`: the client waits for an interim answer before the body.
    expect_continue: bool,
}

impl<'a> Head<'a> {
    /// `Ok(None)` until the whole head has arrived; `Err` for a whole head that is not UTF-8,
    /// has a header line with no colon or white space before it, or a `Content-Length` that
    /// is not a number, or two that differ.
    fn parse(data: &'a [u8]) -> Result<Option<Head<'a>>, &'static str> {
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            return Ok(None);
        };
        let text = std::str::from_utf8(&data[..end]).map_err(|_| "a head that is not UTF-8")?;
        let mut lines = text.split("\r\n");
        let mut head = Head {
            // `split` yields at least one piece.
            first_line: lines.next().unwrap_or(""),
            end: end + 4,
            content_length: None,
            connection: Connection::Default,
            transfer_encoding: false,
            expect_continue: false,
        };
        for line in lines {
            // RFC 9112 §5.1: a `Content-Length : 5` taken as some other header would leave the
            // body to be read as the next request.
            let Some((name, value)) = line.split_once(':') else {
                return Err("a header line with no colon");
            };
            if name.is_empty() || name.contains([' ', '\t']) {
                return Err("a header name that is empty or has white space before its colon");
            }
            let value = value.trim();
            if name.eq_ignore_ascii_case("connection") {
                // A list of options (`TE, close`); `close` anywhere wins.
                for option in value.split(',').map(str::trim) {
                    if option.eq_ignore_ascii_case("close") {
                        head.connection = Connection::Close;
                    } else if option.eq_ignore_ascii_case("keep-alive")
                        && head.connection != Connection::Close
                    {
                        head.connection = Connection::KeepAlive;
                    }
                }
            } else if name.eq_ignore_ascii_case("content-length") {
                // Digits only (`parse` would take a `+`), and one value however often sent:
                // two that differ leave the message's end in doubt.
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("a Content-Length that is not a number");
                }
                let n = value
                    .parse()
                    .map_err(|_| "a Content-Length past the address space")?;
                if head.content_length.is_some_and(|m| m != n) {
                    return Err("two Content-Lengths that differ");
                }
                head.content_length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                // Any transfer coding ends with chunked in a valid message; none is read here.
                head.transfer_encoding = true;
            } else if name.eq_ignore_ascii_case("expect") {
                head.expect_continue = value.eq_ignore_ascii_case("100-continue");
            }
        }
        Ok(Some(head))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that hands out its input in the given pieces and records what is written.
    struct Script {
        input: Vec<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some(piece) = self.input.first_mut() else {
                return Ok(0);
            };
            let n = piece.len().min(buf.len());
            buf[..n].copy_from_slice(&piece[..n]);
            piece.drain(..n);
            if piece.is_empty() {
                self.input.remove(0);
            }
            Ok(n)
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// One response from the front of `data`, through a fresh reader.
    fn parse_response(data: &[u8]) -> Result<Option<Response>, String> {
        let mut reader = ResponseReader::default();
        reader.push(data)?;
        reader.take_response()
    }

    /// Serves the pieces and returns the responses, parsed.
    fn run(pieces: &[&[u8]]) -> (Vec<Response>, String) {
        let mut s = Script {
            input: pieces.iter().map(|p| p.to_vec()).collect(),
            output: Vec::new(),
        };
        let counter = AtomicU64::new(0);
        let ended = serve_conn(&mut s, &counter).unwrap();
        let mut rest = &s.output[..];
        let mut out = Vec::new();
        while let Some(r) = parse_response(rest).unwrap() {
            rest = &rest[r.consumed..];
            out.push(r);
        }
        assert!(rest.is_empty(), "trailing bytes: {rest:?}");
        // Refused exactly when the last answer is a refusal: the caller then closes lingering.
        let refused = out.last().is_some_and(|r| matches!(r.status, 400 | 431));
        assert_eq!(ended == Ended::Refused, refused, "{ended:?}");
        (out, String::from_utf8(s.output).unwrap())
    }

    #[test]
    fn pipelined_requests_are_answered_in_order() {
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let three = [&req[..], &req[..], &req[..]].concat();
        let (rs, text) = run(&[&three]);
        assert_eq!(rs.len(), 3);
        assert!(rs.iter().all(|r| r.status == 200 && !r.close));
        assert!(text.contains("Request #1\n") && text.contains("Request #3\n"));
    }

    #[test]
    fn a_request_split_across_reads_is_answered_once() {
        let (rs, _) = run(&[b"GET / HT", b"TP/1.1\r\nHost: x\r", b"\n\r\n"]);
        assert_eq!(rs.len(), 1);
    }

    #[test]
    fn http10_without_keep_alive_closes_after_one() {
        let req = b"GET / HTTP/1.0\r\n\r\n";
        let (rs, text) = run(&[&[&req[..], &req[..]].concat()]);
        assert_eq!(rs.len(), 1, "the second request must not be answered");
        assert!(rs[0].close);
        assert!(text.contains("Connection: close"));
    }

    #[test]
    fn http10_with_keep_alive_stays_open() {
        let req = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        let (rs, text) = run(&[&[&req[..], &req[..]].concat()]);
        assert_eq!(rs.len(), 2);
        assert!(rs.iter().all(|r| !r.close));
        assert!(text.contains("Connection: keep-alive"));
    }

    /// A HEAD request gets the response's head alone, so the next response on the
    /// connection starts where the client expects it (before, the body followed, and a
    /// kept-alive client read it as the start of the next response; review, session 28).
    #[test]
    fn a_head_request_is_answered_without_a_body() {
        let mut s = Script {
            input: vec![
                b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            ],
            output: Vec::new(),
        };
        assert_eq!(serve_conn(&mut s, &AtomicU64::new(0)).unwrap(), Ended::Done);
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n";
        // The Date lines aside (checked in `every_response_carries_a_date`).
        let text = String::from_utf8(s.output).unwrap();
        let without_dates: String = text
            .split_inclusive("\r\n")
            .filter(|l| !l.starts_with("Date: "))
            .collect();
        assert_eq!(
            without_dates,
            format!("{head}\r\n{head}Connection: close\r\n\r\nRequest #2\n")
        );
    }

    /// Every response carries a `Date` in IMF-fixdate form, as hyper's and Go's do.
    #[test]
    fn every_response_carries_a_date() {
        let mut out = Vec::new();
        let req = parse_request(b"GET / HTTP/1.1\r\n\r\n").unwrap().unwrap();
        write_response(&mut out, 1, &req);
        let text = String::from_utf8(out).unwrap();
        let date = text
            .lines()
            .find_map(|l| l.strip_prefix("Date: "))
            .unwrap_or_else(|| panic!("no Date in {text:?}"));
        assert_eq!(date.len(), crate::http_date::LEN, "{date:?}");
        assert!(date.ends_with(" GMT"), "{date:?}");
    }

    /// `Expect: 100-continue` with the body still to come gets the interim answer before the
    /// body is read (curl waited a second for it before); with the body already here, none.
    #[test]
    fn expect_100_continue_is_answered_before_the_body() {
        let head = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n";
        let mut s = Script {
            input: vec![head.to_vec(), b"hello".to_vec()],
            output: Vec::new(),
        };
        assert_eq!(serve_conn(&mut s, &AtomicU64::new(0)).unwrap(), Ended::Done);
        let text = String::from_utf8(s.output).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
            "{text}"
        );
        assert!(text.ends_with("Request #1\n"), "{text}");
        let mut s = Script {
            input: vec![[&head[..], b"hello"].concat()],
            output: Vec::new(),
        };
        assert_eq!(serve_conn(&mut s, &AtomicU64::new(0)).unwrap(), Ended::Done);
        let text = String::from_utf8(s.output).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    }

    #[test]
    fn connection_close_ends_the_connection() {
        let after = b"GET / HTTP/1.1\r\n\r\n";
        // Alone, and in a list of options (Perl's LWP sends `TE, close`; before, that kept
        // the connection open), where it wins over a `keep-alive` in the same head.
        for close in [
            &b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"[..],
            &b"GET / HTTP/1.1\r\nConnection: TE, close\r\n\r\n"[..],
            &b"GET / HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n"[..],
        ] {
            let (rs, _) = run(&[&[close, &after[..]].concat()]);
            assert_eq!(rs.len(), 1, "{:?}", String::from_utf8_lossy(close));
            assert!(rs[0].close);
        }
    }

    #[test]
    fn a_content_length_body_is_skipped() {
        let post = b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nGET /";
        let get = b"GET / HTTP/1.1\r\n\r\n";
        let (rs, text) = run(&[&post[..], &get[..]]);
        assert_eq!(rs.len(), 2, "the body must not be read as a request");
        assert!(text.contains("Request #2\n"));
        let mut reqs = Requests::default();
        let step = reqs
            .step(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab")
            .unwrap();
        assert_eq!(
            (step.drop, step.answer),
            (40, None),
            "not answered before its body"
        );
        let step = reqs.step(b"cdeGET").unwrap();
        assert_eq!(step.drop, 3);
        assert!(step.answer.is_some(), "answered once its body has come");
        assert_eq!(reqs.step(b"GET").unwrap().drop, 0);
    }

    /// A body larger than the buffer is dropped as it arrives, and the request answered once
    /// all of it has; the connection goes on. Before, it was refused with 431.
    #[test]
    fn a_body_larger_than_the_buffer_is_skipped() {
        let len = 3 * BUF_SIZE + 17;
        let head = format!("POST / HTTP/1.1\r\nContent-Length: {len}\r\n\r\n");
        let body = vec![b'a'; len];
        let get = b"GET / HTTP/1.1\r\n\r\n";
        // In one piece (reads fill the buffer), and split across reads.
        let whole = [head.as_bytes(), &body, get].concat();
        let (rs, text) = run(&[&whole]);
        assert_eq!(rs.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 200]);
        assert!(text.contains("Request #2\n"));
        let (rs, _) = run(&[head.as_bytes(), &body[..100], &body[100..], get]);
        assert_eq!(rs.len(), 2);
        // A body cut short by the close is not answered.
        let (rs, _) = run(&[head.as_bytes(), &body[..len - 1]]);
        assert!(rs.is_empty());
    }

    /// A malformed head is answered with 400 and the connection closed at once; before, it
    /// waited for more bytes like an incomplete head.
    #[test]
    fn a_malformed_head_gets_400_and_the_connection_closes() {
        for bad in [
            &b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"[..],
            &b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n"[..],
        ] {
            let (rs, _) = run(&[bad]);
            assert_eq!(rs.len(), 1, "{bad:?}");
            assert_eq!(rs[0].status, 400);
            assert!(rs[0].close);
        }
        // A good request before it in the same read is answered first.
        let good = b"GET / HTTP/1.1\r\n\r\n";
        let bad = b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n";
        let (rs, _) = run(&[&[&good[..], &bad[..]].concat()]);
        assert_eq!(rs.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 400]);
    }

    /// Heads that leave a request's end in doubt get 400 and a close, not an answer that puts
    /// every later one out of step. Before, a chunked request was answered, and then its
    /// chunks were answered as a second request.
    #[test]
    fn requests_whose_end_is_in_doubt_get_400() {
        for bad in [
            &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"[..],
            &b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            &b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"[..],
            &b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello"[..],
            &b"5\r\nhello\r\n0\r\n\r\n"[..],
            &b"GET / HTTP/2.0\r\n\r\n"[..],
            // White space before the colon, and a line with none (RFC 9112 §5.1): taken as
            // other headers, the body was answered as a second request (review, session 32).
            &b"POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello"[..],
            &b"POST / HTTP/1.1\r\nContent-Length 5\r\n\r\nhello"[..],
        ] {
            let (rs, _) = run(&[bad]);
            let statuses: Vec<u16> = rs.iter().map(|r| r.status).collect();
            assert_eq!(statuses, [400], "{:?}", String::from_utf8_lossy(bad));
            assert!(rs[0].close);
        }
        // The same length twice is one length.
        let twice = b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi";
        let (rs, _) = run(&[&twice[..]]);
        assert_eq!(rs.iter().map(|r| r.status).collect::<Vec<_>>(), [200]);
    }

    #[test]
    fn a_head_larger_than_the_buffer_gets_431() {
        let mut big = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        big.resize(BUF_SIZE + 100, b'a');
        let (rs, _) = run(&[&big]);
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].status, 431);
        assert!(rs[0].close);
    }

    #[test]
    fn responses_parse_incrementally() {
        let r = b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(parse_response(&r[..r.len() - 1]), Ok(None));
        let got = parse_response(r).unwrap().unwrap();
        assert_eq!((got.consumed, got.status, got.close), (r.len(), 404, false));
        assert!(parse_response(b"garbage\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
    }

    /// Feeds `data` to a reader in pieces of `piece` bytes, taking responses as they complete.
    fn read_in_pieces(data: &[u8], piece: usize) -> Result<Vec<Response>, String> {
        let mut reader = ResponseReader::default();
        let mut got = Vec::new();
        for chunk in data.chunks(piece) {
            reader.push(chunk)?;
            while let Some(r) = reader.take_response()? {
                got.push(r);
            }
        }
        Ok(got)
    }

    #[test]
    fn the_reader_finds_each_response_however_the_bytes_are_split() {
        let mut stream = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec();
        stream.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
        stream.extend_from_slice(b"HTTP/1.0 404 Not Found\r\nContent-Length: 3\r\n\r\nabc");
        let want = [(43, 200, false), (27, 204, false), (48, 404, true)];
        for piece in [1, 2, 3, 7, 40, stream.len()] {
            let got = read_in_pieces(&stream, piece).unwrap();
            let got: Vec<_> = got
                .iter()
                .map(|r| (r.consumed, r.status, r.close))
                .collect();
            assert_eq!(got, want, "in pieces of {piece} bytes");
        }
    }

    #[test]
    fn the_reader_counts_a_large_body_without_keeping_it() {
        let body = 64 * 1024 * 1024;
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {body}\r\n\r\n");
        let mut reader = ResponseReader::default();
        reader.push(head.as_bytes()).unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..body / chunk.len() {
            assert_eq!(reader.take_response(), Ok(None));
            reader.push(&chunk).unwrap();
            // Before, the whole body was buffered: 64 MiB here.
            assert!(
                reader.pending.capacity() <= 64 * 1024,
                "a body's bytes were kept"
            );
        }
        let r = reader.take_response().unwrap().unwrap();
        assert_eq!((r.consumed, r.status), (head.len() + body, 200));
        assert_eq!(reader.take_response(), Ok(None));
    }

    #[test]
    fn the_reader_refuses_what_it_cannot_read_and_bounds_trailing_bytes() {
        assert!(read_in_pieces(b"garbage\r\n\r\n", 3).is_err());
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(read_in_pieces(chunked, 5).is_err());
        let endless_head = vec![b'a'; MAX_RESPONSE_HEAD + 10];
        assert!(read_in_pieces(&endless_head, 4096).is_err());
        // A response not yet taken, followed by more than a head's worth of bytes.
        let mut reader = ResponseReader::default();
        reader
            .push(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        assert!(reader.push(&vec![b'a'; MAX_RESPONSE_HEAD + 1]).is_err());
        // Cleared, the reader starts afresh.
        reader.clear();
        reader.push(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        assert_eq!(reader.take_response().unwrap().map(|r| r.status), Some(200));
    }

    #[test]
    fn a_content_length_past_the_address_space_is_an_error() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n";
        assert!(parse_response(r).is_err());
        // One more does not parse as a number: an error too, not a wait for more bytes.
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n";
        assert!(parse_response(r).is_err());
    }

    #[test]
    fn a_response_head_longer_than_the_bound_is_an_error() {
        let mut r = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
        r.resize(MAX_RESPONSE_HEAD - 1, b'a');
        assert_eq!(parse_response(&r), Ok(None));
        r.push(b'a');
        assert!(parse_response(&r).is_err());
    }
}
