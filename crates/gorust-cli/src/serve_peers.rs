//! The peers of `gorust compare`, as hidden `serve --model` values: the same HTTP/1.1
//! keep-alive hello (`Request #N`, `Content-Type: text/plain`, a `Content-Length`), written the
//! way each library's own examples write it.
//!
//! - `hyper-tokio`: hyper 1's HTTP/1 server connection on tokio's current-thread runtime, a
//!   task per connection — the usual shape of a single-core tokio server.
//! - `may`: may_minihttp on one may worker (`--workers`): stackful coroutines with an epoll
//!   loop, the closest existing design to gorust's.
//!
//! Both add a `Date` header (hyper's default, may_minihttp's fixed format), as Go's net/http
//! and gorust's handler (since session 28, `http_date`) do. The bodies and the status are
//! the same.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn body(n: u64) -> String {
    format!("Request #{n}\n")
}

/// hyper on a current-thread tokio runtime, serving `listener` until killed.
pub fn hyper_tokio(listener: std::net::TcpListener) -> Result<(), String> {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::header::{HeaderValue, CONTENT_TYPE};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("listener: {e}"))?;
    let counter = Arc::new(AtomicU64::new(0));
    rt.block_on(async move {
        let listener =
            tokio::net::TcpListener::from_std(listener).map_err(|e| format!("listener: {e}"))?;
        let mut backoff = Duration::ZERO;
        loop {
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) if gorust::net::is_resource_exhausted(&e) => {
                    backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                    eprintln!("gorust serve: accept: {e}; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => continue,
                Err(e) => return Err(format!("accept: {e}")),
            };
            backoff = Duration::ZERO;
            let _ = stream.set_nodelay(true);
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| {
                    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
                    let mut rsp = hyper::Response::new(Full::new(Bytes::from(body(n))));
                    rsp.headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                    async move { Ok::<_, Infallible>(rsp) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    })
}

/// may_minihttp on `workers` may workers, serving until killed. may_minihttp binds the
/// address itself; for port 0 a free port is found first (and could, rarely, be taken in
/// between: the bind error then says so).
pub fn may(
    addr: SocketAddr,
    workers: usize,
    announce: impl FnOnce(SocketAddr) -> Result<(), String>,
) -> Result<(), String> {
    use may_minihttp::{HttpServer, HttpService, Request, Response};

    #[derive(Clone)]
    struct Hello(Arc<AtomicU64>);

    impl HttpService for Hello {
        fn call(&mut self, _req: Request, rsp: &mut Response) -> std::io::Result<()> {
            let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
            rsp.header("Content-Type: text/plain");
            rsp.body_vec(body(n).into_bytes());
            Ok(())
        }
    }

    let addr = if addr.port() == 0 {
        std::net::TcpListener::bind(addr)
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?
    } else {
        addr
    };
    may::config().set_workers(workers);
    let server = HttpServer(Hello(Arc::new(AtomicU64::new(0))))
        .start(addr)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    announce(addr)?;
    server
        .join()
        .map_err(|_| "the may server stopped".to_string())
}
