//! `serve`: the accept loop of a goroutine-per-connection server, with Go's back-off.
//!
//! When accept fails for lack of resources (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`), retrying
//! at once would spin a worker at 100% while nothing can change. Go's `http.Server` sleeps 5 ms,
//! doubling up to 1 s, and resets after a success; so does this loop. The pending connection
//! stays in the kernel's backlog and is accepted once descriptors are free again.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::{TcpListener, TcpStream};

/// First back-off after a resource error, and the cap (Go's values).
const BACKOFF_START: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Whether an accept error is a temporary lack of resources worth retrying after a pause.
pub fn is_resource_exhausted(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Accepts connections until the listener is closed, running `handler` on each in its own
/// goroutine. Resource errors are logged to stderr and retried after a back-off of 5 ms
/// doubling to 1 s; any other error (a closed listener: [`super::ErrClosed`]) is returned.
pub fn serve<F>(listener: &TcpListener, handler: F) -> io::Result<()>
where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    let handler = Arc::new(handler);
    let mut backoff = Duration::ZERO;
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                backoff = Duration::ZERO;
                let h = handler.clone();
                crate::go(move || h(conn));
            }
            Err(e) if is_resource_exhausted(&e) => {
                backoff = if backoff.is_zero() {
                    BACKOFF_START
                } else {
                    (backoff * 2).min(BACKOFF_MAX)
                };
                eprintln!("gorust::net::serve: accept: {e}; retrying in {backoff:?}");
                crate::time::sleep(backoff);
            }
            Err(e) => return Err(e),
        }
    }
}
