//! `gorust serve --model eventloop`: the echo and HTTP/1.1 hello handlers on
//! `gorust::eventloop` (netpoll's model): no goroutine and no buffer per idle connection; a
//! handler goroutine runs only when bytes have arrived, reading from the connection's input
//! buffer and writing to its output buffer, which the loop flushes when the handler returns.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use gorust::eventloop::{Connection, EventLoop};

use crate::http;

/// Serves `addr` until the process ends; `ready` is told the bound address.
pub fn serve(
    addr: SocketAddr,
    workers: Option<usize>,
    proto_http: bool,
    stats: impl FnOnce() + Send + 'static,
    ready: impl FnOnce(io::Result<SocketAddr>) -> Result<(), String> + Send + 'static,
) -> Result<(), String> {
    crate::serve::runtime(workers)?.run(move || {
        let listener = gorust::net::TcpListener::bind(addr)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        ready(listener.local_addr())?;
        let counter = Arc::new(AtomicU64::new(0));
        let el = EventLoop::builder().on_prepare(|p| p.set_nodelay(true));
        stats();
        let served = if proto_http {
            // Each connection's state: where it is in its requests.
            el.on_connect(|_| http::Requests::default())
                .on_request(move |c, reqs| http_hello(c, reqs, &counter))
                .build()
                .map_err(|e| format!("event loop: {e}"))?
                .serve(listener)
        } else {
            el.on_request(|c, _| echo(c))
                .build()
                .map_err(|e| format!("event loop: {e}"))?
                .serve(listener)
        };
        served.map_err(|e| format!("accept: {e}"))
    })
}

/// Writes back everything that has arrived.
fn echo(c: &mut Connection<'_>) -> io::Result<()> {
    let n = c.reader().len();
    let data = c.reader().next(n)?;
    c.writer().write_bytes(&data);
    Ok(())
}

/// The first look for a request's head: most requests are shorter.
const FIRST_LOOK: usize = 512;

/// A step that takes nothing and answers nothing: read more.
const NOTHING_YET: http::Step = http::Step {
    drop: 0,
    answer: None,
    continue_now: false,
};

/// Answers every complete request that has arrived (pipelining); a partial request stays in the
/// input until the rest arrives, except a body, which is dropped as it comes (`reqs`). Heads
/// larger than `http::BUF_SIZE` are refused, as the goroutine model's buffer does.
fn http_hello(
    c: &mut Connection<'_>,
    reqs: &mut http::Requests,
    counter: &AtomicU64,
) -> io::Result<()> {
    let mut out = Vec::with_capacity(128);
    loop {
        // The head is looked for in the input's first `FIRST_LOOK` bytes, then in its first
        // `BUF_SIZE`, never further: `peek` copies where its window spans the buffer's nodes,
        // and with the whole input as the window each request of a long pipelined burst
        // copied all that was left of it; and a head that ended past `BUF_SIZE` was answered,
        // not refused, when it arrived whole (review, session 35).
        let mut step = Ok(NOTHING_YET);
        for look in [FIRST_LOOK, http::BUF_SIZE] {
            let data = c.reader().peek(c.reader().len().min(look))?;
            step = reqs.step(&data);
            if step != Ok(NOTHING_YET) || data.len() < look {
                break;
            }
        }
        let step = match step {
            Ok(step) => step,
            Err(_) => {
                c.writer().write_bytes(http::BAD_REQUEST);
                c.close();
                return Ok(());
            }
        };
        c.reader().skip(step.drop)?;
        // Not once some of the body is here (RFC 9110 §10.1.1 lets the server omit it then):
        // the window above may have cut a body that arrived with its head.
        if step.continue_now && c.reader().is_empty() {
            c.writer().write_bytes(http::CONTINUE);
        }
        let Some(req) = step.answer else {
            if step.drop > 0 {
                continue;
            }
            if c.reader().len() >= http::BUF_SIZE {
                c.writer().write_bytes(http::TOO_LARGE);
                c.close();
            }
            return Ok(());
        };
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        out.clear();
        http::write_response(&mut out, n, &req);
        c.writer().write_bytes(&out);
        if !req.keep_alive {
            c.close();
            return Ok(());
        }
    }
}
