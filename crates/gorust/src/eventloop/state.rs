//! A connection's scheduling state: when its handler runs, when it closes.
//!
//! Two pieces, both model-checked (`eventloop/loom_tests.rs`):
//!
//! 1. [`Pending`], an atomic word of epoll readiness not yet handled. The poller's `dispatch`
//!    `fetch_or`s the event's flags under the slab lock and queues the connection's waker only
//!    if the word was zero; the waker (run off the lock) `swap`s it to zero and handles what it
//!    took. A level-triggered descriptor is reported at every poll until it is read, and both
//!    its worker and the monitor thread poll; the word makes those reports cost one waker, and
//!    a report that lands after the swap queues a new one, so none is lost.
//! 2. [`State`], plain fields behind the connection's mutex: the poller's inbox (bytes read,
//!    not yet given to the handler), whether a handler is in flight, and the close protocol.
//!
//! ```text
//!                 data arrived, no handler            handler returns: no new data,
//!       IDLE ───────────────────────────────▶ RUNNING ─────────────────────────────▶ IDLE
//!        │        (running = true; spawn)       │  ▲   or input left untouched
//!        │                                      │  └── new data arrived meanwhile, or input
//!        │                                      │      is left and the run consumed some
//!        │                                      │      (progress): rerun
//!        │ close (timer, error, shutdown):      │ close while running: `closed` set; the
//!        │ closed = true, running = true,       │ handler disconnects when it returns
//!        ▼ spawn the disconnect                 ▼
//!      CLOSED (on_disconnect runs exactly once, in the goroutine holding `running`)
//! ```
//!
//! `running` is the claim: whoever holds it owns the handler-side half of the connection (its
//! input buffer and user state). It is taken only under the mutex and only when not `closed`
//! or by the closer; so at most one handler is in flight, and `on_disconnect` never overlaps
//! `on_request`.
//!
//! Never spinning: a handler is rerun only if new bytes arrived since it last took the inbox,
//! or if input is left and the run consumed some of it (a handler that answers one request per
//! call, with pipelined requests behind it: each rerun consumes at least a byte, so the reruns
//! are bounded by the input). Input a run left untouched (a partial request) waits for more
//! data, or for the peer's FIN, which earns it one more run if the handler has not been told
//! of the end yet (`grant_end_run`: once, so no spin either); an input at the limit that
//! a run did not consume at all cannot change any more (reading is off), so the connection is
//! closed instead of stalling.
//!
//! Rejected: an atomic word for the whole state (running / new-data / closed bits). The inbox
//! must be appended to under a lock anyway (a `LinkBuffer` is one-writer), and the handler's
//! exit check needs "new data?" and "release the claim" to be one step with the append, which
//! a lock gives directly; the lock is uncontended except when a read and a handler's exit meet.

use super::conn::READ_MAX;
use crate::buffer::{LinkBuffer, NODE_SIZES};
use crate::loom::sync::atomic::{AtomicU32, Ordering::*};
use crate::sys::epoll::Readiness;

/// Readiness reported by the poller and not yet handled.
pub(crate) struct Pending(AtomicU32);

impl Pending {
    pub(crate) fn new() -> Pending {
        Pending(AtomicU32::new(0))
    }

    /// Records `r`; `true` if the caller must queue the waker (nothing was pending).
    /// `Release` publishes nothing but the flags; `Acquire` pairs with `take`'s swap so that
    /// a report after a take sees zero and queues a new waker.
    pub(crate) fn add(&self, r: Readiness) -> bool {
        self.0.fetch_or(r.bits(), AcqRel) == 0
    }

    /// Takes everything recorded so far (the waker's side).
    pub(crate) fn take(&self) -> Readiness {
        Readiness::from_bits(self.0.swap(0, AcqRel))
    }
}

/// What a handler does when its run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Run `on_request` again (new data, or input left after a run that made progress).
    Rerun,
    /// The claim is released; the connection waits for data.
    Idle,
    /// Close: the caller (holding the claim) disconnects. `deregister` says whether the
    /// caller must also take the descriptor out of the poller (it set `closed` itself).
    Close { deregister: bool },
}

/// What [`State::close`] asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseBy {
    /// Already closed: nothing to do.
    Nobody,
    /// A handler is in flight; it disconnects when it returns. Deregister now.
    Handler,
    /// The caller took the claim: deregister and run the disconnect.
    Caller,
}

/// The mutex-guarded part of a connection.
#[derive(Default)]
pub(crate) struct State {
    /// Read by the poller, not yet taken by the handler.
    pub(crate) inbox: LinkBuffer,
    /// Readable bytes in the handler's input, as of its last report.
    pub(crate) input_len: usize,
    /// The claim: a handler (or the disconnect) is scheduled or running.
    pub(crate) running: bool,
    /// Bytes arrived since the handler last took the inbox.
    pub(crate) new_data: bool,
    /// The peer sent FIN (read returned 0).
    pub(crate) eof: bool,
    /// The handler has been told of the end of the stream: a `wait_input` of its returned
    /// `UnexpectedEof`, or a run was granted for it (`grant_end_run`). Until then, input a
    /// run left unconsumed earns one more run; after, none, so a handler that never looks
    /// gets one and no spin.
    pub(crate) end_offered: bool,
    /// Close once no handler runs and the output is written (user `close`, shutdown).
    pub(crate) draining: bool,
    /// Closed: no more handler runs, events or reads.
    pub(crate) closed: bool,
    /// Read interest is registered.
    pub(crate) read_on: bool,
    /// Write interest is registered.
    pub(crate) write_on: bool,
    /// The peer hung up (`EPOLLHUP`, which epoll reports whatever the interest).
    pub(crate) hup: bool,
    /// Hushed while hung up with no interest (`Conn::set_interest`, `Interest::HUSHED`).
    pub(crate) muted: bool,
    /// What the next read asks for at most, learned from the last ones (`read_size`,
    /// `learn_read`); 0 until the first read.
    pub(crate) read_plan: usize,
}

impl State {
    /// Bytes buffered on the input side (the inbox and the handler's input).
    pub(crate) fn buffered(&self) -> usize {
        self.inbox.len() + self.input_len
    }

    /// Whether reading should be on: not closed or finished, below `limit`, and not draining
    /// unless a handler is in flight. That handler may be waiting for the rest of its request
    /// (`wait_input`), or a client's `call` for its reply: with reads off while draining,
    /// both waited for bytes never read, until a graceful shutdown's grace ran out (review,
    /// session 25). Draining still starts no new run (`start`).
    pub(crate) fn wants_read(&self, limit: usize) -> bool {
        !self.closed && !self.eof && (!self.draining || self.running) && self.buffered() < limit
    }

    /// How many bytes the poller's next read asks for: the room under `limit` (at most
    /// `READ_MAX`), and no more than the read plan. The plan starts at one node of the smallest
    /// size, grows fourfold while reads fill what they asked for, and halves once a read
    /// brings at most a quarter of it. Asking for more than arrives is not free: each node
    /// planned is taken from the pool and given back empty, and each one more iovec makes the
    /// read a `readv` (64-byte echo at 1,000 connections: three nodes, two of them unused, per
    /// read). A read that stops at the plan with more queued loses nothing: the descriptor is
    /// level-triggered, so the next poll reports it again.
    pub(crate) fn read_size(&self, limit: usize) -> usize {
        let room = (limit - self.buffered()).min(READ_MAX);
        room.min(self.read_plan.max(NODE_SIZES[0]))
    }

    /// Adjusts the read plan after a read that asked for `asked` bytes and got `got`.
    pub(crate) fn learn_read(&mut self, asked: usize, got: usize) {
        let plan = self.read_plan.max(NODE_SIZES[0]);
        self.read_plan = if got >= asked {
            (plan * 4).min(READ_MAX)
        } else if got <= plan / 4 {
            (plan / 2).max(NODE_SIZES[0])
        } else {
            plan
        };
    }

    /// The poller appended data to the inbox. `true`: the caller must start a handler (the
    /// claim is taken for it).
    pub(crate) fn arrived(&mut self) -> bool {
        self.new_data = true;
        self.start()
    }

    /// Takes the claim if the connection is idle and open.
    pub(crate) fn start(&mut self) -> bool {
        if self.running || self.closed || self.draining {
            return false;
        }
        self.running = true;
        true
    }

    /// The handler takes the inbox (at the start of a run, or while it waits for input).
    pub(crate) fn take_inbox(&mut self) -> LinkBuffer {
        self.new_data = false;
        std::mem::take(&mut self.inbox)
    }

    /// Grants one run for the end of the stream, and says whether it did: the peer has
    /// finished, input a run left is still there, and the handler has not been told of the
    /// end, so a message that ends at the FIN may still be answered (once: the grant counts as
    /// telling). Whether the FIN was read while a run was going (not parked in
    /// `wait_input`), before one started, or between runs, before session 34 the connection
    /// closed with that input unanswered (review). Counted as told when a run merely took the
    /// inbox after the FIN, a handler that does not look for the end on every run missed it
    /// when the FIN came before its run started.
    pub(crate) fn grant_end_run(&mut self) -> bool {
        let needs = self.eof && !self.end_offered && self.input_len > 0;
        self.end_offered |= needs;
        needs
    }

    /// The handler's run ended with `input_len` bytes left unconsumed, having consumed
    /// `consumed`; `out_pending` says whether output waits for the poller. Releases the claim
    /// unless it returns `Rerun` or `Close`.
    pub(crate) fn finish(
        &mut self,
        input_len: usize,
        consumed: usize,
        out_pending: bool,
        limit: usize,
    ) -> Next {
        self.input_len = input_len;
        if self.closed {
            return Next::Close { deregister: false };
        }
        if !self.draining {
            // New bytes to look at, input left after a run that made progress (one request
            // per call, pipelined requests behind it), or the end of the stream not yet
            // offered to a run.
            if self.new_data || (input_len > 0 && consumed > 0) || self.grant_end_run() {
                return Next::Rerun;
            }
            if self.buffered() >= limit {
                // Reading is off and the handler consumed nothing: nothing can change.
                self.closed = true;
                return Next::Close { deregister: true };
            }
        }
        if (self.eof || self.draining) && !out_pending {
            self.closed = true;
            return Next::Close { deregister: true };
        }
        self.running = false;
        Next::Idle
    }

    /// Output was written out completely. `true`: the connection was only waiting for that to
    /// close; the caller took the claim and must deregister and disconnect.
    pub(crate) fn drained(&mut self) -> bool {
        if (self.eof || self.draining) && !self.running && !self.closed {
            self.closed = true;
            self.running = true;
            return true;
        }
        false
    }

    /// Closes now (an error, a timer, a forced shutdown).
    pub(crate) fn close(&mut self) -> CloseBy {
        if self.closed {
            return CloseBy::Nobody;
        }
        self.closed = true;
        if self.running {
            CloseBy::Handler
        } else {
            self.running = true;
            CloseBy::Caller
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const LIMIT: usize = 100;

    #[test]
    fn the_read_plan_grows_while_reads_fill_it_and_shrinks_after_small_ones() {
        const BIG: usize = 1 << 30;
        let min = NODE_SIZES[0];
        let mut s = State::default();
        assert_eq!(s.read_size(BIG), min, "one smallest node first");
        // Small messages keep it at one node.
        s.learn_read(min, 64);
        assert_eq!(s.read_size(BIG), min);
        // Full reads: fourfold each time, up to READ_MAX.
        let mut sizes = Vec::new();
        for _ in 0..5 {
            let asked = s.read_size(BIG);
            s.learn_read(asked, asked);
            sizes.push(s.read_size(BIG));
        }
        assert_eq!(sizes, [4 * min, 16 * min, READ_MAX, READ_MAX, READ_MAX]);
        // A read of more than a quarter keeps the plan; at most a quarter halves it.
        s.learn_read(READ_MAX, READ_MAX / 2);
        assert_eq!(s.read_size(BIG), READ_MAX);
        s.learn_read(READ_MAX, READ_MAX / 4);
        assert_eq!(s.read_size(BIG), READ_MAX / 2);
        for _ in 0..10 {
            s.learn_read(s.read_size(BIG), 1);
        }
        assert_eq!(s.read_size(BIG), min, "never below one node");
        // The room under the input limit caps it, and a full read of that room grows the plan.
        s.input_len = LIMIT - 10;
        assert_eq!(s.read_size(LIMIT), 10);
        s.learn_read(10, 10);
        s.input_len = 0;
        assert_eq!(s.read_size(BIG), 4 * min);
    }

    /// Input left unconsumed when the peer's FIN arrives earns one run, whether the FIN came
    /// during a run, before it or between runs, unless the handler was told of the end by
    /// `wait_input`; and only one.
    #[test]
    fn the_end_of_the_stream_is_offered_to_one_run() {
        // During a run (or before it took the inbox): its finish reruns once, and that
        // rerun's finish closes.
        let mut s = State::default();
        s.inbox.write_bytes(b"abc");
        s.inbox.flush();
        assert!(s.arrived());
        s.eof = true; // the FIN, read before or during the run
        let _ = s.take_inbox();
        assert_eq!(
            s.finish(3, 0, false, LIMIT),
            Next::Rerun,
            "the end is offered"
        );
        let _ = s.take_inbox(); // the rerun, which does not look either
        assert_eq!(
            s.finish(3, 0, false, LIMIT),
            Next::Close { deregister: true },
            "offered once"
        );
        // Between runs: the reader starts one (`Conn::read_in`), once.
        let mut s = State {
            input_len: 3,
            eof: true,
            ..State::default()
        };
        assert!(s.grant_end_run() && s.start());
        assert!(!s.grant_end_run());
        // A handler told by `wait_input` (`ConnIo::pull` sets it): no extra run.
        let mut s = State {
            eof: true,
            running: true,
            end_offered: true,
            ..State::default()
        };
        assert_eq!(
            s.finish(3, 0, false, LIMIT),
            Next::Close { deregister: true }
        );
    }

    #[test]
    fn one_handler_in_flight_and_rerun_only_on_new_data() {
        let mut s = State::default();
        s.inbox.write_bytes(b"abc");
        s.inbox.flush();
        assert!(s.arrived(), "idle: start a handler");
        assert!(!s.arrived(), "running: no second handler");
        let input = s.take_inbox();
        assert_eq!(input.len(), 3);
        // The handler left 3 bytes (a partial request) and nothing new came: idle, no spin.
        assert_eq!(s.finish(3, 0, false, LIMIT), Next::Idle);
        assert!(!s.running);
        // New data while running (the poller appends it and reports it): no second handler,
        // and the one in flight reruns and takes the new bytes.
        s.inbox.write_bytes(b"de");
        s.inbox.flush();
        assert!(s.arrived());
        let _ = s.take_inbox();
        s.inbox.write_bytes(b"fg");
        s.inbox.flush();
        assert!(!s.arrived(), "running: no second handler");
        assert_eq!(s.finish(3, 0, false, LIMIT), Next::Rerun);
        assert!(s.running, "a rerun keeps the claim");
        assert_eq!(s.take_inbox().len(), 2);
        // Nothing new since: idle.
        assert_eq!(s.finish(5, 0, false, LIMIT), Next::Idle);
    }

    #[test]
    fn input_at_the_limit_reruns_on_progress_and_closes_when_stuck() {
        let mut s = State {
            running: true,
            ..State::default()
        };
        assert_eq!(s.finish(LIMIT, 10, false, LIMIT), Next::Rerun);
        assert!(!s.wants_read(LIMIT));
        assert_eq!(
            s.finish(LIMIT, 0, false, LIMIT),
            Next::Close { deregister: true }
        );
    }

    #[test]
    fn draining_reads_for_a_handler_in_flight_and_starts_no_new_one() {
        let mut s = State {
            running: true,
            draining: true,
            ..State::default()
        };
        assert!(s.wants_read(LIMIT), "the handler may be waiting for input");
        assert!(!s.arrived(), "no second handler");
        // Output still pending: the claim is released, the close waits for the poller.
        assert_eq!(s.finish(0, 0, true, LIMIT), Next::Idle);
        assert!(!s.wants_read(LIMIT), "no handler: reading stops");
        assert!(!s.start(), "draining starts no run");
    }

    #[test]
    fn close_while_running_is_left_to_the_handler_and_happens_once() {
        let mut s = State {
            running: true,
            ..State::default()
        };
        assert_eq!(s.close(), CloseBy::Handler);
        assert_eq!(s.close(), CloseBy::Nobody);
        assert!(!s.arrived(), "closed: no handler starts");
        assert_eq!(
            s.finish(0, 0, false, LIMIT),
            Next::Close { deregister: false }
        );
        let mut idle = State::default();
        assert_eq!(idle.close(), CloseBy::Caller);
        assert!(idle.running);
    }

    #[test]
    fn eof_closes_after_the_output_is_written() {
        let mut s = State {
            running: true,
            eof: true,
            ..State::default()
        };
        assert_eq!(s.finish(0, 5, true, LIMIT), Next::Idle);
        assert!(s.drained(), "output written: close now");
        assert!(!s.drained());
    }
}
