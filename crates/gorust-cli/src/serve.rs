//! `gorust serve`: an echo or HTTP/1.1 hello server, in one of three models.
//!
//! - `goroutine` (default): `gorust::net` and a goroutine per connection, accepted by
//!   `gorust::net::serve` (which backs off when descriptors run out).
//! - `eventloop`: `gorust::eventloop`, netpoll's model: a handler goroutine only while bytes
//!   are waiting (`serve_eventloop.rs`, the same parser and responses).
//! - `threads`: `std::net` and an OS thread per connection, the model without a netpoller.
//!
//! The first and last run the same handlers ([`echo`] here, [`crate::http::serve_conn`]) over any
//! `Read + Write` stream. Once bound, the server prints `listening on http://ADDR/ (model,
//! proto)` on stdout and serves until it is killed.
//!
//! Hidden models, the peers of `gorust compare` (HTTP only, `serve_peers.rs`): `hyper-tokio`
//! (hyper 1 on tokio's current-thread runtime) and `may` (may_minihttp).
//!
//! A new model is one variant of [`Model`] with its [`Model::name`], one arm in [`run`], and
//! one entry in `demo_net::MODELS` to join the demo.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use crate::http;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// Write back every byte read.
    Echo,
    /// HTTP/1.1 keep-alive hello with a request counter.
    Http,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// gorust::net, a goroutine per connection.
    Goroutine,
    /// gorust::eventloop (netpoll's model): a handler runs only when bytes have arrived.
    Eventloop,
    /// std::net, an OS thread per connection.
    Threads,
    /// hyper 1 on tokio's current-thread runtime (a peer for `compare`; http only).
    #[value(name = "hyper-tokio", hide = true)]
    HyperTokio,
    /// may_minihttp on one may worker (a peer for `compare`; http only).
    #[value(hide = true)]
    May,
}

impl Model {
    /// The name on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Model::Goroutine => "goroutine",
            Model::Eventloop => "eventloop",
            Model::Threads => "threads",
            Model::HyperTokio => "hyper-tokio",
            Model::May => "may",
        }
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// What to serve.
    #[arg(long, value_enum, default_value_t = Proto::Echo)]
    pub proto: Proto,
    /// How connections are served.
    #[arg(long, value_enum, default_value_t = Model::Goroutine)]
    pub model: Model,
    /// Worker threads of the goroutine model (default: available cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub addr: String,
    /// Print `stats live=N` (live goroutines) on stdout every N ms; for `demo`.
    #[arg(long, hide = true)]
    pub stats_ms: Option<u64>,
}

pub fn run(args: Args) -> Result<(), String> {
    let addr = resolve(&args.addr, args.port)?;
    // Every model: a server's connections are bounded by the soft limit (see `sys`). Before the
    // runtime is built, which sizes its descriptor table by that limit.
    crate::sys::raise_fd_limit(u64::MAX);
    if args.workers == Some(0) {
        return Err("--workers must be at least 1".into());
    }
    if matches!(args.model, Model::HyperTokio | Model::May) && args.proto != Proto::Http {
        return Err(format!(
            "--model {} serves --proto http only",
            args.model.name()
        ));
    }
    let handler = match args.proto {
        Proto::Echo => Handler::Echo,
        Proto::Http => Handler::Http(Arc::new(AtomicU64::new(0))),
    };
    match args.model {
        Model::Goroutine => {
            let rt = runtime(args.workers)?;
            rt.run(move || {
                let listener = gorust::net::TcpListener::bind(addr)
                    .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
                announce(listener.local_addr(), &args)?;
                if let Some(ms) = args.stats_ms {
                    report_live(Duration::from_millis(ms.max(1)));
                }
                gorust::net::serve(&listener, move |mut conn| {
                    let _ = conn.set_nodelay(true);
                    let _ = handler.call(&mut conn);
                })
                .map_err(|e| format!("accept: {e}"))
            })
        }
        Model::Eventloop => {
            let stats_ms = args.stats_ms;
            let args2 = args.clone();
            crate::serve_eventloop::serve(
                addr,
                args.workers,
                args.proto == Proto::Http,
                move || {
                    if let Some(ms) = stats_ms {
                        report_live(Duration::from_millis(ms.max(1)));
                    }
                },
                move |local| announce(local, &args2),
            )
        }
        Model::Threads => {
            let listener =
                std_listener(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            announce(listener.local_addr(), &args)?;
            serve_threads(&listener, handler)
        }
        Model::HyperTokio => {
            let listener =
                std_listener(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            announce(listener.local_addr(), &args)?;
            crate::serve_peers::hyper_tokio(listener)
        }
        Model::May => crate::serve_peers::may(addr, args.workers.unwrap_or(1), |local| {
            announce(Ok(local), &args)
        }),
    }
}

/// A gorust runtime with `workers` workers (default: available cores).
pub fn runtime(workers: Option<usize>) -> Result<gorust::Runtime, String> {
    let mut builder = gorust::Runtime::builder();
    if let Some(w) = workers {
        builder = builder.workers(w);
    }
    builder
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// A goroutine that prints `stats live=N`, the live goroutines (itself and the accept loop
/// included), every `every`.
fn report_live(every: Duration) {
    gorust::go(move || loop {
        let line = format!("stats live={}\n", gorust::num_goroutines());
        if io::stdout().write_all(line.as_bytes()).is_err() {
            return; // Nobody reads any more.
        }
        gorust::time::sleep(every);
    });
}

/// A std listener with the same backlog (4,096) and `SO_REUSEADDR` as gorust's and Go's, so that
/// the two models differ only in threads against goroutines. (std's `bind` listens with a
/// backlog of 128: at 10,000 connects the dropped SYNs' retransmissions took ~57 s.)
pub fn std_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    sock.listen(4096)?;
    Ok(sock.into())
}

/// One address from `--addr` and `--port`.
fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("invalid address '{host}': expected an IP address or host name"))
}

fn announce(local: io::Result<SocketAddr>, args: &Args) -> Result<(), String> {
    let local = local.map_err(|e| format!("local address: {e}"))?;
    let model = args.model.name();
    let proto = format!("{:?}", args.proto).to_lowercase();
    // Not `println!`, which panics when stdout is a closed pipe (`serve | true`).
    let mut out = io::stdout().lock();
    writeln!(out, "listening on http://{local}/ ({model}, {proto})")
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))
}

/// A connection handler usable by both models: `S` is `gorust::net::TcpStream` or
/// `std::net::TcpStream`.
#[derive(Clone)]
pub enum Handler {
    Echo,
    Http(Arc<AtomicU64>),
}

impl Handler {
    fn call<S: Stream>(&self, conn: &mut S) -> io::Result<()> {
        match self {
            Handler::Echo => echo(conn),
            Handler::Http(counter) => {
                if http::serve_conn(conn, counter)? == http::Ended::Refused {
                    conn.linger();
                }
                Ok(())
            }
        }
    }
}

/// How long a refused connection is read on before it is closed ([`Stream::linger`]), as
/// the event loop's lingering close and Go's `net/http` wait.
const LINGER: Duration = Duration::from_millis(500);

/// The streams of both models (`gorust::net::TcpStream`, `std::net::TcpStream`).
pub trait Stream: Read + Write {
    fn shutdown_write(&self) -> io::Result<()>;
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;

    /// Ends a connection whose last request was refused with input left unread: shuts the
    /// write side down, so the client reads the refusal and then the end, and reads and
    /// drops what it still sends until it closes, for [`LINGER`] at most, before the drop
    /// closes the socket. Closed at once, with those bytes unread, the socket reset, and the
    /// client could see the reset instead of the answer (review, session 35).
    fn linger(&mut self) {
        if self.shutdown_write().is_err() {
            return;
        }
        let end = std::time::Instant::now() + LINGER;
        let mut sink = [0u8; 4096];
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() || self.set_read_timeout(Some(left)).is_err() {
                return;
            }
            if !matches!(self.read(&mut sink), Ok(n) if n > 0) {
                return;
            }
        }
    }
}

impl Stream for gorust::net::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        gorust::net::TcpStream::set_read_timeout(self, timeout)
    }
}

impl Stream for std::net::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, timeout)
    }
}

/// Writes back every byte read until the peer closes.
pub fn echo<S: Read + Write>(conn: &mut S) -> io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        conn.write_all(&buf[..n])?;
    }
}

/// The thread-per-connection accept loop, with the same back-off as `gorust::net::serve` when
/// descriptors run out.
fn serve_threads(listener: &std::net::TcpListener, handler: Handler) -> Result<(), String> {
    let mut backoff = Duration::ZERO;
    loop {
        match listener.accept() {
            Ok((mut conn, _)) => {
                backoff = Duration::ZERO;
                let _ = conn.set_nodelay(true);
                let h = handler.clone();
                let spawned = std::thread::Builder::new().spawn(move || {
                    let _ = h.call(&mut conn);
                });
                if let Err(e) = spawned {
                    eprintln!("gorust serve: cannot spawn a thread: {e}; connection dropped");
                }
            }
            Err(e) if gorust::net::is_resource_exhausted(&e) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                eprintln!("gorust serve: accept: {e}; retrying in {backoff:?}");
                std::thread::sleep(backoff);
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(e) => return Err(format!("accept: {e}")),
        }
    }
}
