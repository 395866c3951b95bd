//! The event loop's builder: callbacks, limits, timeouts and balancing.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::handler::{Connection, Prepare};
use super::serve::EventLoop;

/// Default [`Builder::input_limit`]: 4 MiB.
pub const DEFAULT_INPUT_LIMIT: usize = 4 << 20;
/// Default [`Builder::output_limit`]: 4 MiB.
pub const DEFAULT_OUTPUT_LIMIT: usize = 4 << 20;

/// How connections are spread over the workers' pollers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balance {
    /// Each new connection goes to the next worker (the default).
    #[default]
    RoundRobin,
    /// Each new connection goes to the worker serving the fewest of this loop's connections.
    LeastConnections,
}

pub(crate) type PrepareFn = dyn Fn(&Prepare<'_>) -> io::Result<()> + Send + Sync;
pub(crate) type ConnectFn<S> = dyn Fn(&mut Connection<'_>) -> S + Send + Sync;
pub(crate) type RequestFn<S> = dyn Fn(&mut Connection<'_>, &mut S) -> io::Result<()> + Send + Sync;
pub(crate) type DisconnectFn<S> = dyn Fn(&mut Connection<'_>, S) + Send + Sync;

/// Settings, fixed when the loop is built.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) input_limit: usize,
    pub(crate) output_limit: usize,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) balance: Balance,
}

/// The callbacks of a built loop.
pub(crate) struct Callbacks<S> {
    pub(crate) prepare: Option<Arc<PrepareFn>>,
    pub(crate) connect: Arc<ConnectFn<S>>,
    pub(crate) request: Arc<RequestFn<S>>,
    pub(crate) disconnect: Option<Arc<DisconnectFn<S>>>,
}

/// The callbacks while building (`on_request` may be missing yet).
pub(crate) struct Draft<S> {
    prepare: Option<Arc<PrepareFn>>,
    connect: Arc<ConnectFn<S>>,
    request: Option<Arc<RequestFn<S>>>,
    disconnect: Option<Arc<DisconnectFn<S>>>,
}

/// Builds an [`EventLoop`]. `S` is the per-connection state made by
/// [`on_connect`](Builder::on_connect) (`()` without one).
pub struct Builder<S = ()> {
    config: Config,
    callbacks: Draft<S>,
}

impl std::fmt::Debug for Builder<()> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .finish()
    }
}

impl Builder<()> {
    pub(crate) fn new() -> Builder<()> {
        Builder {
            config: Config {
                input_limit: DEFAULT_INPUT_LIMIT,
                output_limit: DEFAULT_OUTPUT_LIMIT,
                idle_timeout: None,
                read_timeout: None,
                write_timeout: None,
                balance: Balance::RoundRobin,
            },
            callbacks: Draft {
                prepare: None,
                connect: Arc::new(|_: &mut Connection<'_>| ()),
                request: None,
                disconnect: None,
            },
        }
    }

    /// Runs `f` on a goroutine when a connection is registered, before any `on_request`; what
    /// it returns is the connection's state, passed to `on_request` and `on_disconnect`. It may
    /// write (a greeting) and block. Handlers set before this call keep working (they ignore
    /// the state).
    pub fn on_connect<T, F>(self, f: F) -> Builder<T>
    where
        T: Send + 'static,
        F: Fn(&mut Connection<'_>) -> T + Send + Sync + 'static,
    {
        let Draft {
            prepare,
            request,
            disconnect,
            ..
        } = self.callbacks;
        Builder {
            config: self.config,
            callbacks: Draft {
                prepare,
                connect: Arc::new(f),
                request: request.map(|r| {
                    Arc::new(move |c: &mut Connection<'_>, _: &mut T| r(c, &mut ()))
                        as Arc<RequestFn<T>>
                }),
                disconnect: disconnect.map(|d| {
                    Arc::new(move |c: &mut Connection<'_>, _: T| d(c, ())) as Arc<DisconnectFn<T>>
                }),
            },
        }
    }
}

impl<S: Send + 'static> Builder<S> {
    /// Runs `f` in the accept loop before a connection is registered: set socket options, or
    /// return an error to refuse the connection (it is closed; no other callback runs). A
    /// panic refuses it too; the loop goes on accepting.
    pub fn on_prepare<F>(mut self, f: F) -> Self
    where
        F: Fn(&Prepare<'_>) -> io::Result<()> + Send + Sync + 'static,
    {
        self.callbacks.prepare = Some(Arc::new(f));
        self
    }

    /// The request handler (required). Runs on a goroutine when data has arrived, at most one
    /// at a time per connection. It reads from [`Connection::reader`] (what it does not
    /// consume is kept for the next run, which happens when more data arrives) and writes to
    /// [`Connection::writer`]; what it wrote is flushed when it returns if it did not flush.
    /// An error or a panic closes the connection (and only it); what the run wrote before it
    /// is still flushed first, as Go's `net/http` flushes a panicking handler's buffered
    /// response when it closes the connection.
    pub fn on_request<F>(mut self, f: F) -> Self
    where
        F: Fn(&mut Connection<'_>, &mut S) -> io::Result<()> + Send + Sync + 'static,
    {
        self.callbacks.request = Some(Arc::new(f));
        self
    }

    /// Runs exactly once per connection that ran `on_connect`, on a goroutine, after its last
    /// `on_request`, once it is closed (by the peer, an error, a timeout or shutdown).
    /// Unconsumed input is still readable; writes fail.
    pub fn on_disconnect<F>(mut self, f: F) -> Self
    where
        F: Fn(&mut Connection<'_>, S) + Send + Sync + 'static,
    {
        self.callbacks.disconnect = Some(Arc::new(f));
        self
    }

    /// Bytes a connection may buffer on the input side before reading stops (default
    /// [`DEFAULT_INPUT_LIMIT`], 4 MiB; at least 1).
    pub fn input_limit(mut self, bytes: usize) -> Self {
        self.config.input_limit = bytes.max(1);
        self
    }

    /// Output bytes the poller may hold for a connection before `flush` parks the handler
    /// (default [`DEFAULT_OUTPUT_LIMIT`], 4 MiB).
    pub fn output_limit(mut self, bytes: usize) -> Self {
        self.config.output_limit = bytes.max(1);
        self
    }

    /// Closes a connection with no read or write for `d` (default: never). A real timer, not
    /// TCP keepalive; a connection whose handler is running is not idle.
    pub fn idle_timeout(mut self, d: Option<Duration>) -> Self {
        self.config.idle_timeout = d;
        self
    }

    /// Bounds [`Connection::wait_input`] (default: none); it then fails with `TimedOut`.
    pub fn read_timeout(mut self, d: Option<Duration>) -> Self {
        self.config.read_timeout = d;
        self
    }

    /// Closes a connection whose pending output has made no progress for this long (no byte
    /// taken by the socket, as nginx's `send_timeout`), and bounds a `flush` waiting for room
    /// (default: none). A long answer to a peer that keeps reading is not cut off.
    pub fn write_timeout(mut self, d: Option<Duration>) -> Self {
        self.config.write_timeout = d;
        self
    }

    /// How connections are spread over the workers (default [`Balance::RoundRobin`]).
    pub fn balance(mut self, b: Balance) -> Self {
        self.config.balance = b;
        self
    }

    /// Builds the loop.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if no [`on_request`](Builder::on_request) was set.
    pub fn build(self) -> io::Result<EventLoop<S>> {
        let Draft {
            prepare,
            connect,
            request,
            disconnect,
        } = self.callbacks;
        let Some(request) = request else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "gorust::eventloop: on_request is required",
            ));
        };
        let callbacks = Callbacks {
            prepare,
            connect,
            request,
            disconnect,
        };
        Ok(EventLoop::new(self.config, callbacks))
    }
}
