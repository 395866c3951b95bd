//! Unit tests' helpers: a local server that counts its connections.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Connections accepted so far, and those still open.
#[derive(Default)]
pub struct Counts {
    accepted: AtomicUsize,
    open: AtomicUsize,
}

impl Counts {
    /// (accepted, open)
    pub fn get(&self) -> (usize, usize) {
        (
            self.accepted.load(Ordering::SeqCst),
            self.open.load(Ordering::SeqCst),
        )
    }
}

/// Listens on a loopback port and runs `serve` on a thread per connection, counting them;
/// the listener lives as long as the test process.
pub fn counting_server(serve: fn(TcpStream)) -> (SocketAddr, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            c.accepted.fetch_add(1, Ordering::SeqCst);
            c.open.fetch_add(1, Ordering::SeqCst);
            let c = c.clone();
            std::thread::spawn(move || {
                serve(conn);
                c.open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, counts)
}

/// Echoes until the peer closes.
pub fn echo(mut conn: TcpStream) {
    let _ = std::io::copy(&mut conn.try_clone().unwrap(), &mut conn);
}
