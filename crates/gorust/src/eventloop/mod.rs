//! `gorust::eventloop`: CloudWeGo netpoll's model on gorust's scheduler and pollers.
//!
//! ```no_run
//! use gorust::eventloop::EventLoop;
//! use gorust::net::TcpListener;
//!
//! gorust::run(|| -> std::io::Result<()> {
//!     let el = EventLoop::builder()
//!         .on_request(|c, _state| {
//!             let n = c.reader().len();
//!             let data = c.reader().next(n)?;     // zero-copy within a node
//!             c.writer().write_bytes(&data);
//!             drop(data);
//!             c.flush()                           // writev now; the rest is the poller's
//!         })
//!         .build()?;
//!     el.serve(TcpListener::bind("127.0.0.1:8080")?)
//! });
//! ```
//!
//! A connection costs no task and no stack while it is idle, and no buffer node either (a
//! [`LinkBuffer`](crate::buffer::LinkBuffer) holds none while empty), unless a handler left
//! part of a request unconsumed for the next run. Its descriptor is
//! registered *level-triggered* on one worker's poller (the same epoll the worker parks in,
//! chosen round-robin or by least connections, [`Balance`]). When it is readable, the poller
//! reads it into the connection's buffer and starts a handler; the handler parses the bytes in
//! place and writes its reply into an output buffer.
//!
//! # Lifecycle of a connection
//!
//! 1. `serve` accepts it; [`on_prepare`](Builder::on_prepare) may set options or refuse it. It
//!    is registered on a worker's poller with read interest (`conn.rs`) and an idle timer is
//!    armed (`timer.rs`); a goroutine runs [`on_connect`](Builder::on_connect), which makes the
//!    connection's state `S`.
//! 2. Readable: the poller's dispatch records the readiness and queues the connection's waker
//!    (under the slab lock, nothing else). The waker runs on the worker, or on the monitor
//!    thread when it polled a stuck worker's epoll, after the lock is released: it reads with
//!    one `readv` into the connection's inbox and, if no handler is in flight, starts one.
//! 3. The handler (`handler.rs`) takes the inbox into its input and calls
//!    [`on_request`](Builder::on_request). It runs again while new data arrived during the run
//!    or input is left after a run that consumed some (state machine in `state.rs`); then the
//!    goroutine ends and the connection is idle again.
//! 4. Output: [`Connection::flush`] writes at once with `writev`; what the socket does not take
//!    is handed to the poller, with write interest armed only while output is pending.
//! 5. End: the peer's FIN or hang-up (after the handler has seen the data sent before it and
//!    its last reply is written: input a run left unconsumed gets one more run at the FIN,
//!    where `wait_input` reports the end of the stream), a reset, an error, a handler error
//!    or panic, the idle or write timer, or shutdown. The descriptor is deregistered,
//!    [`on_disconnect`](Builder::on_disconnect) runs exactly once, the buffers go back to the
//!    pool, and the descriptor is closed when the last reference goes.
//!
//! # Client side
//!
//! [`EventLoop::dial`] connects and hands the descriptor to the same registration as an
//! accepted one, so a client shares the callbacks, limits and timeouts of a server. A
//! [`ClientConn`] sends from any goroutine ([`ClientConn::send`]; replies reach `on_request`),
//! or runs a request/response exchange on the calling goroutine ([`ClientConn::call`]: it takes
//! the connection's claim as a handler run would, and parks in `wait_input` for the reply).
//! [`Pool`] keeps idle dialed connections per address, with a cap and a reaper goroutine for
//! the idle timeout. Designs in `dial.rs` and `pool.rs`.
//!
//! # Why a handler is a goroutine
//!
//! netpoll runs `OnRequest` on a pool of goroutines: users call code that blocks (a database
//! client, a channel, a sleep). A handler here is a goroutine, so it may park on channels,
//! timers, `block_on` and [`Connection::wait_input`] without holding a worker. A goroutine
//! costs a pooled stack only while the handler runs (the stack returns to the pool when the
//! run ends), so an idle connection still holds none. *Rejected*: running the handler inline
//! on the poller (a handler that blocks would stall every connection of that worker, and the
//! monitor thread may be the one polling); a plain future task (a non-blocking handler API,
//! unlike netpoll's, and a `.await`-only world for users porting Go code).
//!
//! # Back-pressure and limits
//!
//! | setting | default | why |
//! |---|---|---|
//! | [`input_limit`](Builder::input_limit) | 4 MiB | bytes buffered per connection (inbox + unconsumed input); past it read interest is removed until the handler consumes. Large enough for any ordinary request and a pipelined burst, small enough that 1,000 slow consumers hold at most 4 GiB of bytes worst-case (node memory within about twice that: `LinkBuffer::append`), not unbounded (netpoll's most reported failure) |
//! | [`output_limit`](Builder::output_limit) | 4 MiB | output handed to the poller; a `flush` past it parks the handler (never a poller) until the socket drains below it |
//! | [`idle_timeout`](Builder::idle_timeout) | none | a real timer: no read or write for this long closes the connection |
//! | [`read_timeout`](Builder::read_timeout) | none | bounds [`Connection::wait_input`] |
//! | [`write_timeout`](Builder::write_timeout) | none | pending output that makes no progress for this long closes the connection (nginx's `send_timeout`); bounds a `flush` waiting for room |
//!
//! One read takes at most 64 KiB (`READ_MAX` in `conn.rs`), and never more than the room left
//! under the input limit, so the input never exceeds it.
//!
//! # Who touches what
//!
//! | field (`conn.rs`) | who | how |
//! |---|---|---|
//! | `pending` (readiness) | dispatch (set), the waker (take) | atomic word (`state.rs`) |
//! | `st` (inbox, claim, interest, eof/closed) | the waker, the handler at the start and end of a run, closers, a `ClientConn::send` (reads `closed` under `out`) | mutex |
//! | `work` (input, user state) | only the holder of the claim | mutex, uncontended by construction |
//! | `out` (output pending for the poller) | `flush`, `ClientConn::send`, the waker on writable | mutex; taken before `st`, never after |
//! | `unclaimed` (wait slot) | a handler or `call` releasing the claim (set), teardown (wake), a `call` waiting for the claim (wait) | the slot's protocol (`netpoll/slot.rs`) |
//! | `last_active`, `write_since` | reads, writes, the end of a handler run or a call (`last_active`) / the timer | relaxed atomics (a timer a few µs late is fine) |
//!
//! # Rejected alternatives
//!
//! - *Edge-triggered registration as for `gorust::net`*: with back-pressure the poller stops
//!   reading while data is still in the kernel; edge-triggered, no new edge would come when
//!   the handler catches up. Level-triggered interest on and off (`epoll_ctl(MOD)`) expresses
//!   "read me when there is room" directly.
//! - *`EPOLLRDHUP` interest*: level-triggered, it fires at every poll after the peer's FIN. A
//!   `read` returning 0 reports the FIN once; read interest is then removed.
//! - *One goroutine per poller running every connection's handler in turn* (netpoll's poller
//!   goroutine): a blocking handler would stall its neighbours.

mod builder;
mod conn;
mod dial;
mod handler;
mod listener;
mod pool;
mod serve;
mod state;
mod timer;

#[cfg(all(test, loom))]
mod loom_tests;

pub use builder::{Balance, Builder, DEFAULT_INPUT_LIMIT, DEFAULT_OUTPUT_LIMIT};
pub use dial::ClientConn;
pub use handler::{Connection, Prepare};
pub use listener::Listener;
pub use pool::{
    Pool, PoolBuilder, DEFAULT_DIAL_TIMEOUT, DEFAULT_MAX_IDLE, DEFAULT_POOL_IDLE_TIMEOUT,
};
pub use serve::{EventLoop, ShutdownReport};
