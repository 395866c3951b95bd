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
///
/// # Errors
///
/// Besides accept's errors, `Other` at once, before accepting anything, when called outside a
/// gorust runtime (no goroutine could serve a connection: before, the first one was accepted,
/// then dropped by a panic; review, session 24).
pub fn serve<F>(listener: &TcpListener, handler: F) -> io::Result<()>
where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    let Some(runtime) = crate::context::handle() else {
        return Err(io::Error::other(
            "gorust::net::serve must run inside a gorust runtime (gorust::run, Runtime::block_on)",
        ));
    };
    let handler = Arc::new(handler);
    let mut backoff = Backoff::default();
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                backoff.reset();
                let h = handler.clone();
                crate::goroutine::go_on(&runtime, move || h(conn));
            }
            Err(e) => backoff.pause("gorust::net::serve", e)?,
        }
    }
}

/// The accept back-off shared by [`serve`] and the event loop's accept loop.
#[derive(Default)]
pub(crate) struct Backoff(Duration);

impl Backoff {
    /// An accept succeeded.
    pub(crate) fn reset(&mut self) {
        self.0 = Duration::ZERO;
    }

    /// An accept failed with `e`: a resource error is logged (prefixed by `who`) and waited
    /// out (5 ms doubling to 1 s); any other error is returned.
    pub(crate) fn pause(&mut self, who: &str, e: io::Error) -> io::Result<()> {
        if !is_resource_exhausted(&e) {
            return Err(e);
        }
        let pause = self.next_pause();
        diag!("{who}: accept: {e}; retrying in {pause:?}");
        crate::time::sleep(pause);
        Ok(())
    }

    /// The next pause: 5 ms after a success, then twice the last, at most 1 s.
    fn next_pause(&mut self) -> Duration {
        self.0 = if self.0.is_zero() {
            BACKOFF_START
        } else {
            (self.0 * 2).min(BACKOFF_MAX)
        };
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_back_off_doubles_from_5ms_to_1s_and_restarts_after_a_success() {
        let mut b = Backoff::default();
        let ms: Vec<u128> = (0..10).map(|_| b.next_pause().as_millis()).collect();
        assert_eq!(ms, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_pause(), Duration::from_millis(5));
    }

    #[test]
    fn only_a_lack_of_resources_is_waited_out() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert!(is_resource_exhausted(&io::Error::from_raw_os_error(errno)));
        }
        let mut b = Backoff::default();
        let e = b.pause("test", io::Error::from_raw_os_error(libc::EINVAL));
        assert_eq!(e.unwrap_err().raw_os_error(), Some(libc::EINVAL));
        assert_eq!(b.0, Duration::ZERO, "no pause taken");
    }
}
