//! The engine of `gorust load`: one epoll loop per thread over its share of the connections.
//!
//! Each connection has at most one request outstanding (no pipelining), as wrk's connections do.
//! A connection's lifecycle:
//! 1. connected (by the caller, before the clock starts) and registered edge-triggered for
//!    input and output;
//! 2. idle → sending: closed loop, at once; with a rate (`-R`), at its next *intended* time,
//!    one per `interval`, staggered across connections;
//! 3. outstanding: until the whole reply has arrived (echo: as many bytes as were sent; http: a
//!    head plus its `Content-Length` body), when the latency is recorded — from the actual send
//!    in a closed loop, from the intended send time with a rate, so that a stalled server is
//!    charged for the requests it delayed (coordinated omission, corrected as wrk2 does);
//! 4. on a read or write error, an unreadable reply, a reply longer than `timeout`, or a server
//!    that closes: counted, then reconnected (a failed reconnect is counted and retried
//!    every 100 ms). A reconnect does not block the loop: its socket is non-blocking and
//!    registered at once, and the connection stays *connecting* until the socket is writable
//!    (then `SO_ERROR` says whether it connected) or `timeout` has passed. A blocking
//!    `connect_timeout` stalled every other connection of the thread, for up to `timeout`,
//!    while a server that had stopped answering SYNs (a full accept queue drops them) was
//!    tried (review, session 24).
//!
//! Sending starts at `first_send`; only replies that arrive in the measured window, `start` to
//! `end`, are counted (the time before is the warm-up). At `end` the loop returns its open
//! connections to the caller, which closes them once it has read the server's figures.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::http;

/// Set once `epoll_pwait2` was refused (`ENOSYS`, `EPERM`): every wait is `epoll_wait` then.
static NO_PWAIT2: AtomicBool = AtomicBool::new(false);

/// What a connection sends, and how it knows the reply is complete. Cloned per thread: the
/// bytes are shared (a 64 MiB message times 1,000 threads was 64 GiB; review, session 30).
#[derive(Clone)]
pub enum Wire {
    /// Send a message of `size` bytes; the reply must be those bytes back. The message is a
    /// window of `pattern` that moves with each request (`echo_window`), so a reply of other
    /// bytes or of the previous request is caught ([`Stats::bad_echoes`]), and one of another
    /// connection mostly (connections whose numbers are 251 apart send the same messages).
    Echo { pattern: Arc<[u8]>, size: usize },
    /// Send the request; the reply is one HTTP response.
    Http(Arc<[u8]>),
}

/// The period of an echo message's pattern, a prime: a window moved by 13 bytes (one request)
/// is a different message whatever its length, since 13 is not a multiple of the period.
const ECHO_PERIOD: usize = 251;

impl Wire {
    /// Echo messages of `size` bytes.
    pub fn echo(size: usize) -> Wire {
        let pattern = (0..size + ECHO_PERIOD)
            .map(|k| (k % ECHO_PERIOD) as u8)
            .collect();
        Wire::Echo { pattern, size }
    }
}

/// Where connection `global`'s `nth` request starts in the echo pattern: a step per request
/// and a different start per connection.
fn echo_window(global: usize, nth: u64) -> usize {
    (global.wrapping_mul(7) + (nth % ECHO_PERIOD as u64) as usize * 13) % ECHO_PERIOD
}

/// One thread's share of the run.
pub struct Plan {
    pub addr: SocketAddr,
    pub wire: Wire,
    /// Connected sockets, with their index among all connections.
    pub socks: Vec<(usize, TcpStream)>,
    pub total_conns: usize,
    /// With `-R`: the time between two requests of one connection.
    pub interval: Option<Duration>,
    /// When the first requests go (the warm-up's start).
    pub first_send: Instant,
    /// The measured window.
    pub start: Instant,
    pub end: Instant,
    pub timeout: Duration,
    /// Ends the run before `end` (the caller could not start every thread).
    pub stop: Arc<AtomicBool>,
}

/// What one thread measured.
pub struct Stats {
    /// Latency in microseconds.
    pub hist: Histogram<u64>,
    /// Replies completed in the measured window, and their bytes.
    pub requests: u64,
    pub bytes: u64,
    /// Errors over the whole run, warm-up included.
    pub connect_errors: u64,
    pub read_errors: u64,
    pub write_errors: u64,
    pub timeouts: u64,
    /// Replies in the window whose status was not 2xx.
    pub non_2xx: u64,
    /// Echo replies that were not the request's bytes (other bytes, or more than were sent),
    /// over the whole run; the connection is then replaced.
    pub bad_echoes: u64,
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            // 1 µs to one hour, three significant digits (wrk's choice).
            hist: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            requests: 0,
            bytes: 0,
            connect_errors: 0,
            read_errors: 0,
            write_errors: 0,
            timeouts: 0,
            non_2xx: 0,
            bad_echoes: 0,
        }
    }

    pub fn merge(&mut self, o: &Stats) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.hist.add(&o.hist);
        self.requests += o.requests;
        self.bytes += o.bytes;
        self.connect_errors += o.connect_errors;
        self.read_errors += o.read_errors;
        self.write_errors += o.write_errors;
        self.timeouts += o.timeouts;
        self.non_2xx += o.non_2xx;
        self.bad_echoes += o.bad_echoes;
    }

    /// Every error counted: connects, reads, writes, timeouts, non-2xx replies and bad echoes.
    pub fn errors(&self) -> u64 {
        self.connect_errors
            + self.read_errors
            + self.write_errors
            + self.timeouts
            + self.non_2xx
            + self.bad_echoes
    }
}

struct Conn {
    sock: Option<TcpStream>,
    /// This connection's index among all connections (the echo pattern's start).
    global: usize,
    /// Requests sent on this connection (the echo pattern's step).
    sent: u64,
    /// Where the outstanding echo request starts in the pattern.
    window: usize,
    /// Bytes of the request not yet written.
    out_off: usize,
    /// Reply bytes so far: counted for echo, kept for http.
    got: usize,
    /// The reply being read (http only).
    reply: http::ResponseReader,
    /// The latency origin of the outstanding request, if one is.
    origin: Option<Instant>,
    /// When the outstanding request was actually sent (for the timeout).
    sent_at: Instant,
    /// With a rate: the intended time of this connection's next request.
    next: Instant,
    /// For a connection that failed to reconnect: when to try again.
    retry_at: Option<Instant>,
    /// For a reconnect under way: when it started (for the timeout).
    connecting: Option<Instant>,
}

/// Runs the plan until its end; returns what was measured and the connections still open.
pub fn run(plan: Plan) -> Result<(Stats, Vec<TcpStream>), String> {
    let ep = Epoll::new().map_err(|e| format!("epoll: {e}"))?;
    let mut st = State {
        stats: Stats::new(),
        conns: Vec::with_capacity(plan.socks.len()),
        heap: BinaryHeap::new(),
        buf: vec![0u8; 64 * 1024],
        ep,
        plan,
    };
    let socks = std::mem::take(&mut st.plan.socks);
    for (global, sock) in socks {
        let i = st.conns.len();
        st.ep
            .add(sock.as_raw_fd(), i as u64)
            .map_err(|e| format!("epoll_ctl: {e}"))?;
        let next = match st.plan.interval {
            Some(iv) => st.plan.first_send + iv.mul_f64(global as f64 / st.plan.total_conns as f64),
            None => st.plan.first_send,
        };
        st.conns.push(Conn {
            sock: Some(sock),
            global,
            sent: 0,
            window: 0,
            out_off: 0,
            got: 0,
            reply: http::ResponseReader::default(),
            origin: None,
            sent_at: next,
            next,
            retry_at: None,
            connecting: None,
        });
        st.heap.push(Reverse((next, i)));
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut last_scan = Instant::now();
    loop {
        let now = Instant::now();
        if now >= st.plan.end || st.plan.stop.load(Ordering::Relaxed) {
            break;
        }
        st.send_due(now);
        if now.duration_since(last_scan) >= Duration::from_millis(10) {
            st.scan(now);
            last_scan = now;
        }
        let mut wait = Duration::from_millis(10).min(st.plan.end - now);
        if let Some(Reverse((t, _))) = st.heap.peek() {
            wait = wait.min(t.saturating_duration_since(now));
        }
        let n = st
            .ep
            .wait(&mut events, wait)
            .map_err(|e| format!("epoll_wait: {e}"))?;
        for ev in &events[..n] {
            st.on_ready(ev.u64 as usize);
        }
    }
    let open = st
        .conns
        .into_iter()
        .filter(|c| c.connecting.is_none())
        .filter_map(|c| c.sock)
        .collect();
    Ok((st.stats, open))
}

struct State {
    plan: Plan,
    stats: Stats,
    conns: Vec<Conn>,
    /// Idle connections by the time they may send next (min-heap). Stale entries (for a
    /// connection that is busy, or rescheduled) are skipped when popped.
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    buf: Vec<u8>,
    ep: Epoll,
}

impl State {
    /// Conn `i`'s outstanding request.
    fn request(&self, i: usize) -> &[u8] {
        match &self.plan.wire {
            Wire::Echo { pattern, size } => {
                let w = self.conns[i].window;
                &pattern[w..w + size]
            }
            Wire::Http(m) => m,
        }
    }

    /// Starts every idle connection whose time has come.
    fn send_due(&mut self, now: Instant) {
        while let Some(&Reverse((t, i))) = self.heap.peek() {
            if t > now {
                break;
            }
            self.heap.pop();
            let c = &self.conns[i];
            if c.sock.is_some() && c.connecting.is_none() && c.origin.is_none() && c.next == t {
                self.send(i, t, now);
            }
        }
    }

    /// Sends conn `i`'s request; its latency counts from `origin`.
    fn send(&mut self, i: usize, origin: Instant, now: Instant) {
        let c = &mut self.conns[i];
        c.origin = Some(origin);
        c.sent_at = now;
        c.out_off = 0;
        c.got = 0;
        c.window = echo_window(c.global, c.sent);
        c.sent += 1;
        self.flush(i);
    }

    /// Writes what is left of conn `i`'s request.
    fn flush(&mut self, i: usize) {
        let len = self.request(i).len();
        loop {
            let c = &self.conns[i];
            let (Some(sock), true) = (&c.sock, c.origin.is_some() && c.out_off < len) else {
                return;
            };
            let res = (&*sock).write(&self.request(i)[c.out_off..]);
            match res {
                Ok(n) => self.conns[i].out_off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.stats.write_errors += 1;
                    return self.reconnect(i);
                }
            }
        }
    }

    fn on_ready(&mut self, i: usize) {
        if self.conns[i].sock.is_none() {
            return;
        }
        if self.conns[i].connecting.is_some() {
            return self.connected(i);
        }
        self.flush(i);
        if self.conns[i].connecting.is_some() || self.conns[i].sock.is_none() {
            // The write failed and the connection was replaced: the new one is not connected
            // yet. Read, it counted a refused connect as a read error and reconnected at once,
            // past the back-off (review, session 30).
            return;
        }
        // The server closed. What came before the close is read first: a server that closes
        // after each reply (HTTP/1.0, `Connection: close`, nginx's `keepalive_requests`) sends
        // its last reply and the close in one go, and that reply counts (review, session 24:
        // it was dropped and counted as a read error).
        let mut closed = false;
        loop {
            let Some(sock) = &self.conns[i].sock else {
                return;
            };
            match (&*sock).read(&mut self.buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => {
                    let c = &self.conns[i];
                    match &self.plan.wire {
                        Wire::Http(_) => {
                            if self.conns[i].reply.push(&self.buf[..n]).is_err() {
                                self.stats.read_errors += 1;
                                return self.reconnect(i);
                            }
                        }
                        Wire::Echo { pattern, size } => {
                            // Only the outstanding request's bytes may come back, in order.
                            let from = c.window + c.got;
                            let sent = if c.origin.is_some() { *size } else { 0 };
                            if c.got + n > sent || self.buf[..n] != pattern[from..from + n] {
                                self.stats.bad_echoes += 1;
                                return self.reconnect(i);
                            }
                        }
                    }
                    self.conns[i].got += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.stats.read_errors += 1;
                    return self.reconnect(i);
                }
            }
        }
        self.complete(i, closed);
    }

    /// Finishes conn `i`'s request if its whole reply has arrived. `closed`: the server closed
    /// the connection after what was read, so it reconnects; an error only if a reply was due
    /// and did not come whole.
    fn complete(&mut self, i: usize, closed: bool) {
        let c = &mut self.conns[i];
        let Some(origin) = c.origin else {
            if closed {
                self.reconnect(i);
            }
            return;
        };
        // The reply's length, whether it was a success, whether the server closes after it.
        let (len, ok, close) = match &self.plan.wire {
            Wire::Echo { size, .. } => {
                if c.got < *size {
                    return self.incomplete(i, closed);
                }
                c.got = 0;
                (*size, true, false)
            }
            Wire::Http(_) => match c.reply.take_response() {
                Ok(None) => return self.incomplete(i, closed),
                Ok(Some(r)) => (r.consumed, (200..300).contains(&r.status), r.close),
                Err(_) => {
                    self.stats.read_errors += 1;
                    return self.reconnect(i);
                }
            },
        };
        let now = Instant::now();
        // Replies of the warm-up, and the last ones after the end, are not the window's.
        if (self.plan.start..self.plan.end).contains(&now) {
            self.stats.requests += 1;
            self.stats.bytes += len as u64;
            self.stats.non_2xx += u64::from(!ok);
            let us = now.duration_since(origin).as_micros() as u64;
            self.stats.hist.saturating_record(us.max(1));
        }
        if close || closed {
            // With the request still in flight, so that the next one keeps its turn in the
            // schedule (`reconnect`).
            return self.reconnect(i);
        }
        self.conns[i].origin = None;
        self.schedule(i, now);
    }

    /// Conn `i`'s reply is not whole yet: it waits for more, unless the server closed.
    fn incomplete(&mut self, i: usize, closed: bool) {
        if closed {
            self.stats.read_errors += 1;
            self.reconnect(i);
        }
    }

    /// Schedules idle conn `i`'s next request: at once in a closed loop, else at its next
    /// intended time (at once, charged from that time, if it is already past).
    fn schedule(&mut self, i: usize, now: Instant) {
        match self.plan.interval {
            None => {
                self.conns[i].next = now;
                self.send(i, now, now);
            }
            Some(iv) => {
                let c = &mut self.conns[i];
                c.next += iv;
                if c.next <= now {
                    let t = c.next;
                    self.send(i, t, now);
                } else {
                    self.heap.push(Reverse((c.next, i)));
                }
            }
        }
    }

    /// Every 10 ms: times out replies that are too late and reconnects that take too long,
    /// retries failed reconnects.
    fn scan(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            let c = &self.conns[i];
            if c.origin.is_some() && now.duration_since(c.sent_at) > self.plan.timeout {
                self.stats.timeouts += 1;
                self.reconnect(i);
            } else if c
                .connecting
                .is_some_and(|t| now.duration_since(t) > self.plan.timeout)
            {
                self.connect_failed(i, now);
            } else if c.retry_at.is_some_and(|t| t <= now) {
                self.reconnect(i);
            }
        }
    }

    /// Replaces conn `i`'s socket with a new connection, started without waiting: it is
    /// *connecting* until `connected` or `connect_failed`.
    fn reconnect(&mut self, i: usize) {
        let c = &mut self.conns[i];
        // A request in flight (answered and then closed, or lost: a close before its whole
        // reply, an error, a timeout) used its turn: with `-R` the next one keeps the
        // schedule (`connected` sends it then, or at once if the reconnect took longer). Left
        // at this request's time, it went out as soon as the new connection was up, and a
        // server closing every connection was driven as fast as it accepted, whatever `-R`
        // said (review, session 34).
        if let (Some(iv), Some(_)) = (self.plan.interval, c.origin) {
            c.next += iv;
        }
        c.sock = None;
        c.origin = None;
        c.reply.clear();
        c.got = 0;
        let now = Instant::now();
        if now >= self.plan.end {
            return;
        }
        match start_connect(&self.plan.addr).and_then(|s| {
            self.ep.add(s.as_raw_fd(), i as u64)?;
            Ok(s)
        }) {
            Ok(s) => {
                let c = &mut self.conns[i];
                c.sock = Some(s);
                c.retry_at = None;
                c.connecting = Some(now);
                // Writable at once if the connect completed in the call: the edge that
                // registration reports says so, and `connected` reads `SO_ERROR` then.
            }
            Err(_) => self.connect_failed(i, now),
        }
    }

    /// Conn `i`'s reconnect reported readiness: connected, failed, or not yet.
    fn connected(&mut self, i: usize) {
        let now = Instant::now();
        let Some(sock) = &self.conns[i].sock else {
            return;
        };
        match sock.take_error() {
            Ok(None) => {}
            Ok(Some(_)) | Err(_) => return self.connect_failed(i, now),
        }
        // No error yet, and no peer: still under way (a spurious wake-up).
        if sock.peer_addr().is_err() {
            return;
        }
        let c = &mut self.conns[i];
        c.connecting = None;
        // With `-R`, the schedule resumes from now: time lost reconnecting is not charged.
        // Either way the request goes from the loop (`send_due`), not from here: a write that
        // failed at once reconnected again from inside this call, a recursion that a server
        // resetting every new connection did not bound (review, session 24).
        c.next = if self.plan.interval.is_some() {
            c.next.max(now)
        } else {
            now
        };
        self.heap.push(Reverse((c.next, i)));
    }

    /// Conn `i`'s reconnect failed or took longer than `timeout`: counted, retried in 100 ms.
    fn connect_failed(&mut self, i: usize, now: Instant) {
        self.stats.connect_errors += 1;
        let c = &mut self.conns[i];
        c.sock = None; // Closing it also takes it out of the epoll set.
        c.connecting = None;
        c.retry_at = Some(now + Duration::from_millis(100));
    }
}

/// A non-blocking socket whose connect to `addr` has started (or, rarely, completed).
fn start_connect(addr: &SocketAddr) -> io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(
        Domain::for_address(*addr),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    s.set_nonblocking(true)?;
    s.set_tcp_nodelay(true)?;
    match s.connect(&(*addr).into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(s.into())
}

/// An epoll instance: the only `unsafe` of the load generator.
struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 has no preconditions; it returns a new descriptor or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a descriptor we just created and nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll { fd })
    }

    /// Registers `fd` edge-triggered for input and output, with `token` as its event data.
    fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: token,
        };
        // SAFETY: both descriptors are open for the call, and `ev` is a valid epoll_event.
        let r = unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout`; returns the number of events. `epoll_pwait2` keeps the rate
    /// schedule's sub-millisecond precision; on kernels before 5.11 the wait is rounded up to
    /// a millisecond.
    fn wait(&self, events: &mut [libc::epoll_event], timeout: Duration) -> io::Result<usize> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        let (ep, len) = (self.fd.as_raw_fd(), events.len() as i32);
        let mut n = -1;
        if !NO_PWAIT2.load(Ordering::Relaxed) {
            // SAFETY: `events` is valid for writes of its length of epoll_events, `ts` is a
            // valid timespec, and a null signal mask means the mask is left alone.
            n = unsafe { libc::epoll_pwait2(ep, events.as_mut_ptr(), len, &ts, std::ptr::null()) };
            // `ENOSYS` before Linux 5.11; `EPERM` from a seccomp filter older than the call
            // (container runtimes' default profiles were), as the runtime's `sys/epoll.rs`
            // reads it. Remembered: before, `EPERM` failed the whole run, and `ENOSYS` cost a
            // refused call per wait (review, session 34).
            let errno = io::Error::last_os_error().raw_os_error();
            if n < 0 && matches!(errno, Some(libc::ENOSYS | libc::EPERM)) {
                NO_PWAIT2.store(true, Ordering::Relaxed);
            }
        }
        if n < 0 && NO_PWAIT2.load(Ordering::Relaxed) {
            let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
            // SAFETY: as above.
            n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), len, ms) };
        }
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(e)
            };
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A closed-loop echo plan over `socks` (connected, non-blocking) from now for `run`.
    fn echo_plan(addr: SocketAddr, socks: Vec<TcpStream>, run: Duration) -> Plan {
        let now = Instant::now();
        Plan {
            addr,
            wire: Wire::echo(16),
            total_conns: socks.len(),
            socks: socks.into_iter().enumerate().collect(),
            interval: None,
            first_send: now,
            start: now,
            end: now + run,
            timeout: Duration::from_secs(10),
            stop: Arc::default(),
        }
    }

    /// A seccomp filter that refuses `epoll_pwait2` with `EPERM` (as container runtimes'
    /// profiles older than the call did) leaves the load on `epoll_wait`; before, the run
    /// failed with "Operation not permitted" where the runtime itself works. The filter binds
    /// this test's thread and the threads it starts, not the rest of the test process (which
    /// may then also wait with `epoll_wait`: the flag is process-wide).
    #[test]
    fn a_refused_epoll_pwait2_falls_back_to_epoll_wait() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let conn = TcpStream::connect(addr).unwrap();
        let (served, _) = l.accept().unwrap();
        std::thread::spawn(move || crate::testing::echo(served));
        conn.set_nonblocking(true).unwrap();
        // Load the syscall number (the first word of `seccomp_data`); if it is epoll_pwait2,
        // fail it with EPERM, else allow it.
        let insn = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
        let mut prog = [
            insn(0x20, 0, 0, 0),
            insn(0x15, 0, 1, libc::SYS_epoll_pwait2 as u32),
            insn(0x06, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
            insn(0x06, 0, 0, libc::SECCOMP_RET_ALLOW),
        ];
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_mut_ptr(),
        };
        // SAFETY: prctl on this thread only (no TSYNC); `fprog` points at a live program,
        // which the kernel copies.
        unsafe {
            assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
            assert_eq!(
                libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &fprog),
                0,
                "seccomp: {}",
                io::Error::last_os_error()
            );
        }
        let (stats, _) = run(echo_plan(addr, vec![conn], Duration::from_millis(200))).unwrap();
        assert!(stats.requests > 0, "no request answered");
    }

    /// A reconnect to a server that has stopped answering SYNs does not stall the thread's
    /// other connections. The server serves one connection, closes the other after its first
    /// request, and never accepts again; its accept queue is full, so the reconnect's SYNs are
    /// dropped. Before, the loop sat in a blocking `connect_timeout` for the whole `timeout`:
    /// the run overran its end by seconds and the served connection stopped counting.
    #[test]
    fn a_reconnect_that_hangs_does_not_stall_the_other_connections() {
        let listener =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        listener
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        listener.listen(1).unwrap();
        let listener: TcpListener = listener.into();
        let addr = listener.local_addr().unwrap();
        let served = TcpStream::connect(addr).unwrap();
        let closed = TcpStream::connect(addr).unwrap();
        let (a, _) = listener.accept().unwrap();
        let (mut b, _) = listener.accept().unwrap();
        std::thread::spawn(move || crate::testing::echo(a));
        // Fill the accept queue (backlog 1 holds two) so that later SYNs are dropped.
        let fillers: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let closer = std::thread::spawn(move || {
            let _ = b.read(&mut [0u8; 64]);
            drop(b);
        });
        for s in [&served, &closed] {
            s.set_nonblocking(true).unwrap();
            s.set_nodelay(true).unwrap();
        }
        let now = Instant::now();
        let plan = echo_plan(addr, vec![served, closed], Duration::from_millis(600));
        let (stats, open) = run(plan).unwrap();
        let took = now.elapsed();
        closer.join().unwrap();
        assert!(took < Duration::from_secs(3), "the run took {took:?}");
        assert!(stats.requests > 100, "{} requests", stats.requests);
        assert_eq!(stats.read_errors, 1, "the request the server closed on");
        assert_eq!(
            stats.connect_errors, 0,
            "the hung reconnect has not timed out"
        );
        assert_eq!(
            open.len(),
            1,
            "the hung reconnect is not an open connection"
        );
        drop((listener, fillers));
    }

    /// A reconnect that is refused is counted as a connect error and tried again every 100 ms
    /// without holding up the loop.
    #[test]
    fn a_refused_reconnect_is_counted_and_retried() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let conn = TcpStream::connect(addr).unwrap();
        conn.set_nonblocking(true).unwrap();
        let (b, _) = listener.accept().unwrap();
        drop((b, listener)); // The connection closes, and nothing listens any more.
        let now = Instant::now();
        let plan = echo_plan(addr, vec![conn], Duration::from_millis(450));
        let (stats, open) = run(plan).unwrap();
        assert!(now.elapsed() < Duration::from_secs(3));
        assert!(
            (2..=6).contains(&stats.connect_errors),
            "{} connect errors in 450 ms",
            stats.connect_errors
        );
        assert!(open.is_empty());
    }

    /// The stop flag ends a run before its end: what the caller raises when it cannot start
    /// every thread, so that the started ones do not go on sending into what it measures next.
    #[test]
    fn a_raised_stop_ends_the_run_early() {
        let (addr, _) = crate::testing::counting_server(crate::testing::echo);
        let conn = TcpStream::connect(addr).unwrap();
        conn.set_nonblocking(true).unwrap();
        let now = Instant::now();
        let plan = echo_plan(addr, vec![conn], Duration::from_secs(60));
        let stop = plan.stop.clone();
        let running = std::thread::spawn(move || run(plan));
        std::thread::sleep(Duration::from_millis(100));
        stop.store(true, Ordering::Relaxed);
        let (stats, _) = running.join().unwrap().unwrap();
        assert!(
            now.elapsed() < Duration::from_secs(30),
            "{:?}",
            now.elapsed()
        );
        assert!(stats.requests > 0);
    }

    /// Echo replies are checked, not only counted: a server that answers with other bytes of
    /// the right length, or with its first message again, is counted as bad echoes, and at
    /// most its first reply on each connection completes a request (before, every reply of
    /// the right length counted as a round trip; review, session 30).
    #[test]
    fn echo_replies_of_other_bytes_are_bad_echoes() {
        fn zeros(mut conn: TcpStream) {
            let mut buf = [0u8; 64];
            while let Ok(n @ 1..) = conn.read(&mut buf) {
                if conn.write_all(&vec![0; n]).is_err() {
                    break;
                }
            }
        }
        /// Echoes the first 16-byte message, then answers every later one with it again.
        fn replays(mut conn: TcpStream) {
            let (mut first, mut seen) = ([0u8; 16], 0usize);
            let mut buf = [0u8; 64];
            while let Ok(n @ 1..) = conn.read(&mut buf) {
                let answer: Vec<u8> = (seen..seen + n)
                    .zip(&buf[..n])
                    .map(|(at, &b)| {
                        if at < 16 {
                            first[at] = b;
                        }
                        first[at % 16]
                    })
                    .collect();
                seen += n;
                if conn.write_all(&answer).is_err() {
                    break;
                }
            }
        }
        for (what, serve) in [("zeros", zeros as fn(TcpStream)), ("replays", replays)] {
            let (addr, _) = crate::testing::counting_server(serve);
            let conn = TcpStream::connect(addr).unwrap();
            conn.set_nonblocking(true).unwrap();
            let plan = echo_plan(addr, vec![conn], Duration::from_millis(300));
            let (stats, _) = run(plan).unwrap();
            assert!(stats.bad_echoes > 0, "{what}: no bad echo counted");
            assert!(
                stats.requests <= stats.bad_echoes + 1,
                "{what}: {} requests counted with {} bad echoes",
                stats.requests,
                stats.bad_echoes
            );
        }
    }
}
