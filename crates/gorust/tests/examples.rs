//! The examples, run as a user runs them: each server is started on a free loopback port and
//! answered the way `nc`, `curl`, `wrk`, `ab` and `hey` talk to it. `cargo test` builds the
//! examples next to this test's executable (`target/<profile>/examples/`); a run filtered to
//! this file (`--test examples`) does not, and needs `cargo build --examples` first.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running example, killed (by its PID, through `Child`) when dropped.
struct Example {
    child: Child,
    addr: String,
}

/// The first line `out` gives, within 30 s; the rest is read and dropped on a thread until
/// the pipe closes.
fn first_line(out: impl Read + Send + 'static, name: &str) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(out);
        let mut line = String::new();
        let _ = tx.send(r.read_line(&mut line).map(|_| line));
        let _ = std::io::copy(&mut r, &mut std::io::sink());
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(line)) => line,
        Ok(Err(e)) => panic!("{name}: reading its first line: {e}"),
        Err(_) => panic!("{name} printed no line within 30 s"),
    }
}

impl Example {
    /// Starts example `name` on a free port and waits (30 s at most) for its "listening on"
    /// line. The example is killed on every path from here, and its stdout is drained until
    /// it exits: the echo examples print a count every second, and a closed pipe made those
    /// prints panic.
    fn start(name: &str) -> Example {
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
        let path = dir.join("examples").join(name);
        let child = Command::new(&path)
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (build the examples: cargo build --examples)",
                    path.display()
                )
            });
        let mut ex = Example {
            child,
            addr: String::new(),
        };
        let line = first_line(ex.child.stdout.take().unwrap(), name);
        ex.addr = line
            .split("listening on ")
            .nth(1)
            .unwrap_or_else(|| panic!("{name} printed {line:?}"))
            .trim()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        ex
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    }

    /// Sends `request` in pieces of `piece` bytes and reads until the server closes. A server
    /// that refuses a request closes with some of it unread, which resets the connection:
    /// what came before the reset is the answer. A server that holds the connection open
    /// instead fails the test at the read timeout (before session 29 that ended the read as
    /// a close did, and the checks of "the close" could not fail).
    fn exchange(&self, request: &[u8], piece: usize) -> String {
        let mut s = self.connect();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        for p in request.chunks(piece) {
            if s.write_all(p).is_err() {
                break;
            }
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!(
                    "the server held the connection open ({e}) after: {}",
                    String::from_utf8_lossy(&got)
                ),
            }
        }
        String::from_utf8(got).unwrap()
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_echo_servers_echo_every_byte() {
    for name in ["echo", "eventloop-echo"] {
        let ex = Example::start(name);
        let mut s = ex.connect();
        let msg: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let writer = {
            let mut s = s.try_clone().unwrap();
            let msg = msg.clone();
            std::thread::spawn(move || {
                s.write_all(&msg).unwrap();
                s.shutdown(std::net::Shutdown::Write).unwrap();
            })
        };
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert!(
            got == msg,
            "{name}: {} of {} bytes came back",
            got.len(),
            msg.len()
        );
    }
}

#[test]
fn the_http_servers_answer_as_wrk_ab_and_hey_expect() {
    let get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let close = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    for name in ["http-hello", "eventloop-http"] {
        let ex = Example::start(name);
        // wrk: keep-alive, here pipelined, then a close.
        let got = ex.exchange(format!("{get}{get}{close}").as_bytes(), 1 << 20);
        assert_eq!(
            got.matches("HTTP/1.1 200 OK\r\n").count(),
            3,
            "{name}: {got}"
        );
        assert!(got.ends_with("Request #3\n"), "{name}: {got}");
        assert!(got.contains("Connection: close\r\n"), "{name}: {got}");
        // ab: HTTP/1.0 closes after one answer; ab -k keeps it open when asked.
        let got = ex.exchange(b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n", 1 << 20);
        assert_eq!(
            got.matches("HTTP/1.1 200 OK\r\n").count(),
            1,
            "{name}: {got}"
        );
        // A list of options with `close` in it (Perl's LWP sends `TE, close`) closes too;
        // before, the connection stayed open until the idle timeout.
        let listed = "GET / HTTP/1.1\r\nConnection: TE, close\r\n\r\n";
        let got = ex.exchange(format!("{listed}{get}").as_bytes(), 1 << 20);
        assert_eq!(
            got.matches("HTTP/1.1 200 OK\r\n").count(),
            1,
            "{name}: {got}"
        );
        let keep = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        let got = ex.exchange(format!("{keep}{close}").as_bytes(), 1 << 20);
        assert!(got.contains("Connection: keep-alive\r\n"), "{name}: {got}");
        assert_eq!(
            got.matches("HTTP/1.1 200 OK\r\n").count(),
            2,
            "{name}: {got}"
        );
        // ab -i: HEAD gets the head alone (the same Content-Length, no body), so the next
        // response on the connection starts where the client expects it.
        let head = "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n";
        let got = ex.exchange(format!("{head}{close}").as_bytes(), 1 << 20);
        let (first, second) = got.split_once("\r\n\r\n").unwrap_or_default();
        assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{name}: {got}");
        assert!(
            second.starts_with("HTTP/1.1 200 OK\r\n"),
            "{name}: no body first: {got}"
        );
        assert_eq!(
            got.matches("Request #").count(),
            1,
            "{name}: one body: {got}"
        );
        // curl's large POST: `Expect: 100-continue`, then the body once the interim answer
        // has come (curl sends it anyway after a second; the read timeout is longer).
        let mut s = ex.connect();
        s.write_all(
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut interim = [0u8; 25];
        s.read_exact(&mut interim).unwrap();
        assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n", "{name}");
        s.write_all(b"hello").unwrap();
        let mut rest = String::new();
        s.read_to_string(&mut rest).unwrap();
        assert!(rest.starts_with("HTTP/1.1 200 OK\r\n"), "{name}: {rest}");
        // hey -D: a body larger than the server's buffer, in pieces, then more requests.
        let body = "b".repeat(40 * 1024);
        let post = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let got = ex.exchange(format!("{post}{get}{close}").as_bytes(), 3000);
        assert_eq!(
            got.matches("HTTP/1.1 200 OK\r\n").count(),
            3,
            "{name}: {got}"
        );
        // A request split byte by byte is answered once.
        let got = ex.exchange(close.as_bytes(), 1);
        assert_eq!(
            got.matches("HTTP/1.1 200 OK\r\n").count(),
            1,
            "{name}: {got}"
        );
        // Malformed heads get 400 and the close, not a connection held open for good; so do
        // heads whose end is in doubt (a chunked body, two lengths, no request line), which
        // used to be answered and then their bodies answered as more requests.
        for bad in [
            &b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"[..],
            &b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n"[..],
            &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"[..],
            &b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"[..],
            &b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello"[..],
            &b"hello\r\n\r\n"[..],
            // White space before the colon, and a line with none (RFC 9112 §5.1): taken as
            // other headers, the body was answered as a second request.
            &b"POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello"[..],
            &b"POST / HTTP/1.1\r\nContent-Length 5\r\n\r\nhello"[..],
        ] {
            let got = ex.exchange(bad, 1 << 20);
            assert!(got.starts_with("HTTP/1.1 400 "), "{name}: {got}");
            assert_eq!(got.matches("HTTP/1.1 ").count(), 1, "{name}: {got}");
        }
        // A head that goes on past the server's buffer gets 431 and the close.
        let big = format!("GET / HTTP/1.1\r\nX-Big: {}", "a".repeat(9000));
        let got = ex.exchange(big.as_bytes(), 1 << 20);
        assert!(got.starts_with("HTTP/1.1 431 "), "{name}: {got}");
    }
}

/// A complete head larger than the servers accept gets 431, and then the end of the stream,
/// however it arrives: at once, or its start first (a handler run that finds no end yet) and
/// the rest later. The event loop's server used to check the size only of a head whose end
/// had not come, and answered both 200, where the goroutine server, with its 8 KiB buffer,
/// refuses them (review, session 35).
#[test]
fn a_complete_head_past_the_limit_gets_431_however_it_arrives() {
    let start = "GET / HTTP/1.1\r\nX-Big: ";
    let rest = format!("{}\r\n\r\n", "a".repeat(9000));
    for name in ["http-hello", "eventloop-http"] {
        let ex = Example::start(name);
        for split in [false, true] {
            let mut s = ex.connect();
            if split {
                s.write_all(start.as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(200));
                let _ = s.write_all(rest.as_bytes());
            } else {
                let _ = s.write_all(format!("{start}{rest}").as_bytes());
            }
            let mut got = Vec::new();
            let end = s.read_to_end(&mut got);
            let got = String::from_utf8_lossy(&got);
            assert!(
                got.starts_with("HTTP/1.1 431 "),
                "{name}, split {split}: {got}"
            );
            // Then the end of the stream, not a reset: `http-hello` closed with the rest of
            // the head unread, and the socket reset (review, session 35).
            assert!(end.is_ok(), "{name}, split {split}: {end:?}");
        }
    }
}

/// Many small requests pipelined in one write, behind a reader that waits before it reads,
/// are all answered. (The event loop's server copied all its unread input for each request
/// it parsed once that input spanned more than one buffer node: this burst took it 2.4 s,
/// against 0.15 s since it looks for a head in at most 8 KiB; review, session 35. The time is
/// printed, not checked.)
#[test]
fn a_burst_of_pipelined_requests_is_answered_whole() {
    const N: usize = 200_000;
    let get = "GET / HTTP/1.1\r\n\r\n";
    for name in ["http-hello", "eventloop-http"] {
        let ex = Example::start(name);
        let mut s = ex.connect();
        let writer = {
            let mut s = s.try_clone().unwrap();
            let burst = get.repeat(N);
            std::thread::spawn(move || s.write_all(burst.as_bytes()))
        };
        // Nothing read for a while: the answers back up, and the requests pile up in the
        // server's input, as behind a slow reader.
        std::thread::sleep(Duration::from_secs(1));
        let t = std::time::Instant::now();
        let mut answered = 0;
        let mut tail = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        while answered < N {
            let n = s.read(&mut buf).unwrap_or_else(|e| {
                panic!(
                    "{name}: {answered} of {N} answered in {:?}: {e}",
                    t.elapsed()
                )
            });
            assert!(n > 0, "{name}: closed after {answered} of {N}");
            tail.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&tail);
            answered += text.matches("HTTP/1.1 200 OK\r\n").count();
            // Keep a possible partial status line for the next read.
            let keep = text.rfind("HTTP/1.1 200 OK\r\n").map_or(0, |i| i + 1);
            tail.drain(..keep.min(tail.len()));
        }
        writer.join().unwrap().unwrap();
        eprintln!(
            "{name}: {N} pipelined requests answered in {:?}",
            t.elapsed()
        );
    }
}

/// A request with `Expect: 100-continue` whose body arrives with its head (past the event-loop
/// server's first 512-byte look for a head) gets its answer alone: the interim answer is for a
/// client still waiting to send the body. A first version of session 35's bounded look sent it.
#[test]
fn a_body_that_came_with_its_head_gets_no_100_continue() {
    let body = "b".repeat(1000);
    let post = format!(
        "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    for name in ["http-hello", "eventloop-http"] {
        let ex = Example::start(name);
        let got = ex.exchange(post.as_bytes(), 1 << 20);
        assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{name}: {got}");
        assert_eq!(got.matches("HTTP/1.1 ").count(), 1, "{name}: {got}");
    }
}
