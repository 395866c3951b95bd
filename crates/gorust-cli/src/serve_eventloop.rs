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
    stats: impl FnOnce(&EventLoop<()>) + Send + 'static,
    ready: impl FnOnce(io::Result<SocketAddr>) -> Result<(), String> + Send + 'static,
) -> Result<(), String> {
    crate::serve::runtime(workers)?.run(move || {
        let listener = gorust::net::TcpListener::bind(addr)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        ready(listener.local_addr())?;
        let counter = Arc::new(AtomicU64::new(0));
        let el = EventLoop::builder().on_prepare(|p| p.set_nodelay(true));
        let el = if proto_http {
            el.on_request(move |c, _| http_hello(c, &counter))
        } else {
            el.on_request(|c, _| echo(c))
        };
        let el = el.build().map_err(|e| format!("event loop: {e}"))?;
        stats(&el);
        el.serve(listener).map_err(|e| format!("accept: {e}"))
    })
}

/// Writes back everything that has arrived.
fn echo(c: &mut Connection<'_>) -> io::Result<()> {
    let n = c.reader().len();
    let data = c.reader().next(n)?;
    c.writer().write_bytes(&data);
    Ok(())
}

/// Answers every complete request that has arrived (pipelining); a partial request stays in the
/// input until the rest arrives. Requests larger than `http::BUF_SIZE` are refused, as the
/// goroutine model's buffer does.
fn http_hello(c: &mut Connection<'_>, counter: &AtomicU64) -> io::Result<()> {
    let mut out = Vec::with_capacity(128);
    loop {
        let req = {
            let data = c.reader().peek(c.reader().len())?;
            http::parse_request(&data)
        };
        let req = match req {
            Ok(Some(req)) => req,
            Ok(None) => {
                if c.reader().len() >= http::BUF_SIZE {
                    c.writer().write_bytes(http::TOO_LARGE);
                    c.close();
                }
                return Ok(());
            }
            Err(_) => {
                c.writer().write_bytes(http::BAD_REQUEST);
                c.close();
                return Ok(());
            }
        };
        c.reader().skip(req.consumed)?;
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        out.clear();
        http::write_response(&mut out, n, req.keep_alive, req.http10);
        c.writer().write_bytes(&out);
        if !req.keep_alive {
            c.close();
            return Ok(());
        }
    }
}
