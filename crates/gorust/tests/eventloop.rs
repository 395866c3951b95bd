//! `gorust::eventloop`: echo over many connections, back-pressure under a slow consumer,
//! panics, the idle timer, graceful shutdown, half-close and reset. Loopback only; the time
//! limits are hang detectors, not speed checks.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{echo_loop, eventually, run_on, start, within};
use gorust::eventloop::{Balance, EventLoop};
use gorust::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(120);

/// Held by the tests that buffer tens of MiB, and by the one that measures the process's RSS,
/// which the others would otherwise inflate when libtest runs them at the same time.
static BIG_MEMORY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn big_memory() -> std::sync::MutexGuard<'static, ()> {
    BIG_MEMORY.lock().unwrap_or_else(|e| e.into_inner())
}

fn rss_kib() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn echo_many(conns: usize, rounds: usize, balance: Balance) {
    // A thousand goroutine clients and their stacks would inflate the RSS test's figure.
    let _big = big_memory();
    within(LIMIT, move || {
        run_on(2, move || {
            let (el, addr, gone) = echo_loop(|b| b.balance(balance));
            let clients: Vec<_> = (0..conns)
                .map(|i| gorust::go(move || common::echo_rounds(addr, i, rounds, i % 300)))
                .collect();
            for c in clients {
                c.join().unwrap();
            }
            eventually("every connection disconnected", || {
                gone.load(SeqCst) == conns && el.connections() == 0
            });
        })
    });
}

#[test]
fn echo_over_a_thousand_connections_round_robin() {
    echo_many(1000, 5, Balance::RoundRobin);
}

#[test]
fn echo_over_a_thousand_connections_least_connections() {
    echo_many(1000, 3, Balance::LeastConnections);
}

/// 4,000 connections at once, all open together (8,000 descriptors in this process, under the
/// 20,000 limit), each echoing one message; then all idle, then all closed.
#[test]
fn four_thousand_concurrent_connections() {
    const N: usize = 4000;
    let _big = big_memory();
    within(LIMIT, || {
        run_on(2, || {
            let (el, addr, gone) = echo_loop(|b| b);
            let streams: Vec<TcpStream> =
                (0..N).map(|_| TcpStream::connect(addr).unwrap()).collect();
            for (i, s) in streams.iter().enumerate() {
                (&*s).write_all(format!("{i:06}").as_bytes()).unwrap();
            }
            for (i, s) in streams.iter().enumerate() {
                let mut b = [0u8; 6];
                (&*s).read_exact(&mut b).unwrap();
                assert_eq!(&b, format!("{i:06}").as_bytes());
            }
            eventually("all registered", || el.connections() == N);
            // Idle: no handler goroutine is held (only main and the serve loop run).
            eventually("handlers ended", || gorust::num_goroutines() <= 3);
            drop(streams);
            eventually("all disconnected", || gone.load(SeqCst) == N);
        })
    });
}

/// The peer sends 100 MiB; the handler consumes 256 KiB per call and sleeps 1 ms. The input
/// never exceeds its limit by more than one read (64 KiB), and RSS stays bounded.
#[test]
fn slow_consumer_keeps_input_and_rss_bounded() {
    const TOTAL: usize = 100 << 20;
    const IN_LIMIT: usize = 1 << 20;
    let _alone = big_memory();
    within(LIMIT, || {
        run_on(2, || {
            let max_seen = Arc::new(AtomicUsize::new(0));
            let consumed = Arc::new(AtomicUsize::new(0));
            let (m, k) = (max_seen.clone(), consumed.clone());
            let el = EventLoop::builder()
                .input_limit(IN_LIMIT)
                .on_request(move |c, _| {
                    m.fetch_max(c.reader().len(), SeqCst);
                    let n = c.reader().len().min(256 << 10);
                    c.reader().skip(n)?;
                    k.fetch_add(n, SeqCst);
                    gorust::time::sleep(Duration::from_millis(1));
                    Ok(())
                })
                .build()
                .unwrap();
            let (addr, _) = start(&el);
            let rss_before = rss_kib();
            // A plain thread: it blocks in write(2) whenever the server stops reading.
            let sender = std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                let chunk = vec![7u8; 1 << 20];
                for _ in 0..TOTAL / chunk.len() {
                    s.write_all(&chunk).unwrap();
                }
                s
            });
            let mut peak = 0;
            let end = Instant::now() + Duration::from_secs(100);
            while consumed.load(SeqCst) < TOTAL {
                assert!(Instant::now() < end, "slow consumer stalled");
                peak = peak.max(rss_kib());
                gorust::time::sleep(Duration::from_millis(5));
            }
            let s = gorust::blocking(move || sender.join().unwrap());
            drop(s);
            let max = max_seen.load(SeqCst);
            assert!(
                max <= IN_LIMIT + (64 << 10),
                "input held {max} bytes, limit {IN_LIMIT}"
            );
            let growth = peak.saturating_sub(rss_before);
            assert!(
                growth < 48 << 10,
                "RSS grew by {growth} KiB for 100 MiB sent"
            );
        })
    });
}

/// A loop whose handler answers one 8-byte request per call, echoing it, and counts the
/// requests answered in `answered`: a pipelined backlog reruns it once per request.
fn eight_byte_echo(answered: Arc<AtomicUsize>) -> gorust::eventloop::Builder<()> {
    EventLoop::builder().on_request(move |c, _| {
        if c.reader().len() < 8 {
            return Ok(());
        }
        let req = c.reader().next(8)?;
        c.writer().write_bytes(&req);
        answered.fetch_add(1, SeqCst);
        Ok(())
    })
}

/// A connection with a long pipelined backlog, its handler answering one request per call,
/// takes turns with the other tasks of its worker: before, the handler reran over everything
/// one read had brought in before it let any other task run (review, session 30). Measured
/// by a goroutine that yields in a loop on the same worker and notes how many requests were
/// answered between two of its turns.
#[test]
fn a_pipelined_backlog_takes_turns_with_other_tasks() {
    /// 8-byte requests sent at once: 64 KiB, several reads' worth.
    const BURST: usize = 8192;
    within(LIMIT, || {
        run_on(1, || {
            let answered = Arc::new(AtomicUsize::new(0));
            let a = answered.clone();
            let el = eight_byte_echo(a).build().unwrap();
            let (addr, _) = start(&el);
            let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (d, a) = (done.clone(), answered.clone());
            let turns = gorust::go(move || {
                let (mut last, mut widest) = (0, 0);
                while !d.load(SeqCst) {
                    let now = a.load(SeqCst);
                    widest = widest.max(now - last);
                    last = now;
                    gorust::yield_now();
                }
                widest
            });
            // A plain thread: it blocks.
            let client = std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                let reader = s.try_clone().unwrap();
                let drain = std::thread::spawn(move || {
                    let mut all = vec![0u8; BURST * 8];
                    (&reader).read_exact(&mut all).unwrap();
                });
                s.write_all(&b"rrrrrrrr".repeat(BURST)).unwrap();
                drain.join().unwrap();
            });
            gorust::blocking(move || client.join().unwrap());
            done.store(true, SeqCst);
            let widest = turns.join().unwrap();
            assert_eq!(answered.load(SeqCst), BURST);
            assert!(
                widest <= 2 * 128,
                "{widest} requests were answered in one turn of the handler"
            );
        })
    });
}

/// A runtime shut down while a handler has yielded in the middle of a pipelined backlog still
/// ends that connection with `on_disconnect`: the shutdown unwinds the yielded goroutine, and
/// an unguarded yield let that unwind leave the handler with the claim taken, so the
/// connection was never disconnected (review of session 30's yield).
#[test]
fn a_handler_yielded_mid_backlog_is_disconnected_at_shutdown() {
    const BURST: usize = 8192;
    let disconnected = Arc::new(AtomicUsize::new(0));
    let d = disconnected.clone();
    within(LIMIT, move || {
        run_on(1, move || {
            let answered = Arc::new(AtomicUsize::new(0));
            let a = answered.clone();
            let el = eight_byte_echo(a)
                .on_disconnect(move |_, _| {
                    d.fetch_add(1, SeqCst);
                })
                .build()
                .unwrap();
            let (addr, _) = start(&el);
            // A plain thread: it blocks. It sends the backlog at once and reads what comes.
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                let reader = s.try_clone().unwrap();
                std::thread::spawn(move || std::io::copy(&mut &reader, &mut std::io::sink()));
                let _ = s.write_all(&b"rrrrrrrr".repeat(BURST));
                std::thread::sleep(Duration::from_secs(30));
            });
            // On the one worker this runs only while the handler has yielded (or gone idle):
            // once some requests were answered and the first read's worth was not, the handler
            // is yielded mid-backlog, and returning shuts the runtime down there.
            loop {
                let n = answered.load(SeqCst);
                if (2 * 128..1024).contains(&n) {
                    return;
                }
                assert!(
                    n < 1024,
                    "the handler was never seen mid-backlog ({n} answered)"
                );
                gorust::yield_now();
            }
        })
    });
    assert_eq!(disconnected.load(SeqCst), 1, "on_disconnect did not run");
}

/// `close` in `on_connect` closes the connection without any `on_request`, also for a request
/// that had already arrived: the first run still answered it, after the goodbye (review,
/// session 30).
#[test]
fn close_in_on_connect_answers_no_request() {
    within(LIMIT, || {
        run_on(1, || {
            let requests = Arc::new(AtomicUsize::new(0));
            let r = requests.clone();
            let el = EventLoop::builder()
                .on_connect(|c| {
                    // The client's request arrives meanwhile.
                    gorust::time::sleep(Duration::from_millis(50));
                    c.writer().write_bytes(b"busy, bye\n");
                    c.close();
                })
                .on_request(move |c, _| {
                    let n = c.reader().len();
                    c.reader().skip(n)?;
                    c.writer().write_bytes(b"answered\n");
                    r.fetch_add(1, SeqCst);
                    Ok(())
                })
                .build()
                .unwrap();
            let (addr, _) = start(&el);
            let s = TcpStream::connect(addr).unwrap();
            (&s).write_all(b"hello\n").unwrap();
            let mut got = Vec::new();
            (&s).read_to_end(&mut got).unwrap();
            assert_eq!(String::from_utf8_lossy(&got), "busy, bye\n");
            assert_eq!(requests.load(SeqCst), 0);
        })
    });
}

#[test]
fn a_panicking_handler_closes_only_its_connection() {
    within(LIMIT, || {
        run_on(2, || {
            let gone = Arc::new(AtomicUsize::new(0));
            let g = gone.clone();
            let el = EventLoop::builder()
                .on_connect(|_| 0usize)
                .on_request(|c, count| {
                    let line = c.reader().until(b'\n')?;
                    if &line[..] == b"panic\n" {
                        panic!("handler panics on purpose");
                    }
                    *count += 1;
                    c.writer().write_bytes(&line);
                    Ok(())
                })
                .on_disconnect(move |_, count| {
                    g.fetch_add(1 + 100 * count, SeqCst);
                })
                .build()
                .unwrap();
            let (addr, _) = start(&el);
            let mut good = TcpStream::connect(addr).unwrap();
            let mut bad = TcpStream::connect(addr).unwrap();
            good.write_all(b"one\n").unwrap();
            let mut b = [0u8; 4];
            good.read_exact(&mut b).unwrap();
            bad.write_all(b"panic\n").unwrap();
            let mut rest = Vec::new();
            bad.read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty(), "the panicking connection is closed");
            eventually("on_disconnect of the panicking one", || {
                gone.load(SeqCst) == 1
            });
            good.write_all(b"two\n").unwrap();
            good.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"two\n");
            drop(good);
            // The good one served two requests: 1 + 100 * 2 more.
            eventually("on_disconnect of the good one", || gone.load(SeqCst) == 202);
        })
    });
}

#[test]
fn idle_timeout_closes_and_disconnects_once() {
    within(LIMIT, || {
        run_on(2, || {
            // 20 times the gap between pings: a stalled vCPU must not pass for idleness.
            let (el, addr, gone) = echo_loop(|b| b.idle_timeout(Some(Duration::from_secs(1))));
            let mut s = TcpStream::connect(addr).unwrap();
            // Activity keeps it open past the timeout.
            let mut idle_from = Instant::now();
            for _ in 0..25 {
                gorust::time::sleep(Duration::from_millis(50));
                // Before the write: the server's last activity (its read and its answer) comes
                // after this, however late this goroutine wakes after the answer.
                idle_from = Instant::now();
                s.write_all(b"ping").unwrap();
                let mut b = [0u8; 4];
                s.read_exact(&mut b).unwrap();
            }
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).unwrap();
            let took = idle_from.elapsed();
            assert!(took >= Duration::from_millis(900), "closed early: {took:?}");
            assert!(rest.is_empty());
            eventually("disconnected", || gone.load(SeqCst) == 1);
            gorust::time::sleep(Duration::from_millis(200));
            assert_eq!(gone.load(SeqCst), 1, "on_disconnect exactly once");
            assert_eq!(el.connections(), 0);
        })
    });
}

/// A connection is not idle while its handler runs, and its idle time starts when the run
/// ends, even if the run wrote nothing. The timer used to compare against the last read or
/// write, so after a 5 s run that wrote nothing (idle timeout 2 s), the connection closed 1 s
/// after the run ended, when the timer next fired (review, session 34).
#[test]
fn idle_time_starts_when_a_long_handler_run_ends() {
    within(LIMIT, || {
        run_on(2, || {
            let ended = Arc::new(AtomicUsize::new(0));
            let gone = Arc::new(AtomicUsize::new(0));
            let (e, g) = (ended.clone(), gone.clone());
            let el = EventLoop::builder()
                .idle_timeout(Some(Duration::from_secs(2)))
                .on_request(move |c, _| {
                    let n = c.reader().len();
                    let data = c.reader().next(n)?;
                    if &data[..] == b"slow" {
                        gorust::time::sleep(Duration::from_secs(5));
                        e.store(1, SeqCst);
                    } else {
                        c.writer().write_bytes(&data);
                    }
                    Ok(())
                })
                .on_disconnect(move |_, _| {
                    g.fetch_add(1, SeqCst);
                })
                .build()
                .unwrap();
            let addr = common::serve_loopback(&el);
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"slow").unwrap();
            eventually("the long run ends", || ended.load(SeqCst) == 1);
            let end = Instant::now();
            gorust::time::sleep(Duration::from_millis(1300));
            s.write_all(b"ping").unwrap();
            let mut b = [0u8; 4];
            let r = s.read_exact(&mut b);
            assert!(
                r.is_ok() && gone.load(SeqCst) == 0,
                "closed {:?} after the run ended, with a 2 s idle timeout: {r:?}",
                end.elapsed()
            );
            assert_eq!(&b, b"ping");
        })
    });
}

/// `shutdown` waits for a connection that was already closing when it started (its peer
/// finished, its `on_disconnect` still running) as for the ones it closes itself. It skipped
/// those, and returned with their `on_disconnect` still running (review, session 34).
#[test]
fn shutdown_waits_for_a_disconnect_already_under_way() {
    within(LIMIT, || {
        run_on(2, || {
            let done = Arc::new(AtomicUsize::new(0));
            let d = done.clone();
            // An echo loop whose `on_disconnect` (in place of the counting one) takes 300 ms.
            let (el, addr, _) = echo_loop(|b| {
                b.on_disconnect(move |_, _| {
                    gorust::time::sleep(Duration::from_millis(300));
                    d.store(1, SeqCst);
                })
            });
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"hi").unwrap();
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            // The server closes at the FIN; its `on_disconnect` then sleeps 300 ms.
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).unwrap();
            el.shutdown(Duration::from_secs(10));
            assert_eq!(
                done.load(SeqCst),
                1,
                "shutdown returned before the disconnect ended"
            );
            assert_eq!(el.connections(), 0);
        })
    });
}

#[test]
fn graceful_shutdown_lets_in_flight_handlers_finish() {
    within(LIMIT, || {
        run_on(2, || {
            let started = Arc::new(AtomicUsize::new(0));
            let s2 = started.clone();
            let el = EventLoop::builder()
                .on_request(move |c, _| {
                    let line = c.reader().until(b'\n')?;
                    let slow = &line[..] == b"slow\n";
                    let reply = line.to_vec();
                    drop(line);
                    s2.fetch_add(1, SeqCst);
                    gorust::time::sleep(Duration::from_millis(if slow { 500 } else { 10_000 }));
                    c.writer().write_bytes(&reply);
                    Ok(())
                })
                .build()
                .unwrap();
            let (addr, serving) = start(&el);
            let idle: Vec<_> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
            let busy: Vec<_> = (0..5)
                .map(|_| {
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.write_all(b"slow\n").unwrap();
                    s
                })
                .collect();
            let mut stuck = TcpStream::connect(addr).unwrap();
            stuck.write_all(b"stuck\n").unwrap();
            eventually("all accepted", || el.connections() == 9);
            // In flight (a fixed 50 ms sleep before session 29).
            eventually("the six handlers started", || started.load(SeqCst) == 6);
            let report = el.shutdown(Duration::from_secs(3));
            assert_eq!(report.closed_idle, 3, "{report:?}");
            assert_eq!(report.finished, 5, "{report:?}");
            assert_eq!(report.forced, 1, "{report:?}");
            serving.join().unwrap().unwrap();
            for mut s in busy {
                let mut all = Vec::new();
                s.read_to_end(&mut all).unwrap();
                assert_eq!(all, b"slow\n", "in-flight request answered, then closed");
            }
            for mut s in idle {
                let mut all = Vec::new();
                s.read_to_end(&mut all).unwrap();
                assert!(all.is_empty());
            }
            let mut all = Vec::new();
            let _ = stuck.read_to_end(&mut all);
            assert!(all.is_empty());
            assert!(TcpStream::connect(addr).is_err(), "no longer accepting");
        })
    });
}

/// A handler waiting for the rest of its request when a graceful shutdown starts gets it and
/// finishes: draining starts no new run but keeps reading for the one in flight. Before,
/// reads stopped at once, and the handler waited out the grace period and was forced.
#[test]
fn graceful_shutdown_lets_a_handler_wait_for_the_rest_of_its_request() {
    within(LIMIT, || {
        run_on(2, || {
            let waiting = Arc::new(AtomicUsize::new(0));
            let w2 = waiting.clone();
            let el = EventLoop::builder()
                .on_request(move |c, _| {
                    drop(c.reader().until(b'\n')?);
                    w2.fetch_add(1, SeqCst);
                    c.wait_input(4)?;
                    let body = c.reader().next(4)?.to_vec();
                    c.writer().write_bytes(&body);
                    Ok(())
                })
                .build()
                .unwrap();
            let (addr, _serving) = start(&el);
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"head\n").unwrap();
            eventually("accepted", || el.connections() == 1);
            eventually("the handler waits for its body", || {
                waiting.load(SeqCst) == 1
            });
            let el2 = el.clone();
            let shutting = gorust::go(move || el2.shutdown(Duration::from_secs(30)));
            // The shutdown has begun once the listener refuses (a probe accepted before is
            // an idle connection, which the report counts apart).
            eventually("the shutdown began", || TcpStream::connect(addr).is_err());
            s.write_all(b"body").unwrap();
            let started = Instant::now();
            let report = shutting.join().unwrap();
            assert_eq!(report.finished, 1, "{report:?}");
            assert_eq!(report.forced, 0, "{report:?}");
            assert!(started.elapsed() < Duration::from_secs(10));
            let mut all = Vec::new();
            s.read_to_end(&mut all).unwrap();
            assert_eq!(all, b"body");
        })
    });
}

/// A runtime dropped with a handler parked in a wait unwinds it; the event loop's guard
/// catches that unwind and runs `on_disconnect`, where a wait is refused (it panics, caught by
/// the guard) instead of holding the shutdown. Before, the hour-long sleep in `on_disconnect`
/// blocked the worker's shutdown step, and the runtime's drop, for that hour.
#[test]
fn a_runtime_dropped_with_a_handler_in_flight_ends_and_disconnects_once() {
    within(LIMIT, || {
        let gone = Arc::new(AtomicUsize::new(0));
        let g = gone.clone();
        let (client, dropping) = run_on(1, move || {
            let el = EventLoop::builder()
                .on_request(|c, _| {
                    drop(c.reader().until(b'\n')?);
                    gorust::time::sleep(Duration::from_secs(3600));
                    Ok(())
                })
                .on_disconnect(move |_, _| {
                    g.fetch_add(1, SeqCst);
                    gorust::time::sleep(Duration::from_secs(3600));
                })
                .build()
                .unwrap();
            let (addr, _serving) = start(&el);
            let mut client = std::net::TcpStream::connect(addr).unwrap();
            client.write_all(b"hang\n").unwrap();
            eventually("the connection accepted", || el.connections() == 1);
            // The handler reads its line and parks in its sleep.
            gorust::time::sleep(Duration::from_millis(50));
            (client, Instant::now())
        });
        let took = dropping.elapsed();
        assert!(took < Duration::from_secs(20), "the drop took {took:?}");
        assert_eq!(gone.load(SeqCst), 1, "on_disconnect ran once");
        drop(client);
    });
}

/// `shutdown` returns once every connection it closed has disconnected, idle ones too: their
/// `on_disconnect` has run and they have left the registry. Before, it only started the idle
/// ones' disconnects, so a `main` that returned right after it dropped them unrun.
#[test]
fn shutdown_returns_after_the_idle_connections_have_disconnected() {
    within(LIMIT, || {
        run_on(1, || {
            let (el, addr, gone) = echo_loop(|b| {
                b.on_connect(|_| ()).on_disconnect(|_, ()| {
                    // A disconnect that takes a while, as one that flushes a log does.
                    gorust::time::sleep(Duration::from_millis(20));
                })
            });
            let _ = gone;
            let clients: Vec<_> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
            eventually("all accepted", || el.connections() == 3);
            let report = el.shutdown(Duration::from_secs(10));
            assert_eq!(report.closed_idle, 3, "{report:?}");
            assert_eq!(el.connections(), 0, "every idle connection disconnected");
            drop(clients);
        })
    });
}

/// A runtime that ends without `EventLoop::shutdown` closes the loop's idle connections: the
/// peer sees the close, `on_disconnect` runs once (a wait there is refused, as in a cancelled
/// goroutine, instead of holding the drop), and nothing of the loop is left, with or without
/// an armed idle timer. Before, an idle connection was on nothing the runtime's shutdown
/// walked: its socket stayed open, `on_disconnect` never ran, and the loop's memory and
/// descriptors leaked.
#[test]
fn a_runtime_that_ends_without_shutdown_closes_idle_connections() {
    for idle_timeout in [None, Some(Duration::from_secs(3600))] {
        within(LIMIT, move || {
            let marker = Arc::new(());
            let weak = Arc::downgrade(&marker);
            let gone = Arc::new(AtomicUsize::new(0));
            let g = gone.clone();
            let (clients, dropping) = run_on(1, move || {
                let (el, addr, _) = echo_loop(move |b| {
                    b.idle_timeout(idle_timeout)
                        .on_prepare(move |_| {
                            let _keep = &marker;
                            Ok(())
                        })
                        .on_disconnect(move |_, _| {
                            g.fetch_add(1, SeqCst);
                            gorust::time::sleep(Duration::from_secs(3600));
                        })
                });
                let clients: Vec<std::net::TcpStream> = (0..3)
                    .map(|_| {
                        let mut c = TcpStream::connect(addr).unwrap();
                        c.write_all(b"ping").unwrap();
                        let mut got = [0u8; 4];
                        c.read_exact(&mut got).unwrap();
                        // Taken out of this runtime, to be read after it has gone.
                        let c = std::net::TcpStream::from(std::os::fd::OwnedFd::from(c));
                        c.set_nonblocking(false).unwrap();
                        c
                    })
                    .collect();
                eventually("all served", || el.connections() == 3);
                (clients, Instant::now())
            });
            let took = dropping.elapsed();
            assert!(took < Duration::from_secs(20), "the drop took {took:?}");
            assert_eq!(gone.load(SeqCst), 3, "on_disconnect ran once for each");
            for mut c in clients {
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut rest = Vec::new();
                let r = c.read_to_end(&mut rest);
                assert!(matches!(r, Ok(0)), "the peer sees the close: {r:?}");
            }
            assert!(weak.upgrade().is_none(), "the loop was freed");
        });
    }
}

/// A runtime that ends while a handler's final flush waits for room (its peer reads nothing)
/// still disconnects the connection: `on_disconnect` runs, the peer sees the connection end,
/// and nothing of the loop is left. Before, the shutdown's unwind left the handler goroutine
/// through that flush, outside the guard around the handler, with its claim taken: nothing
/// disconnected the connection, and it, its descriptor and the loop leaked.
#[test]
fn a_runtime_that_ends_during_a_handlers_final_flush_still_disconnects() {
    let _big = big_memory();
    within(LIMIT, || {
        let marker = Arc::new(());
        let weak = Arc::downgrade(&marker);
        let gone = Arc::new(AtomicUsize::new(0));
        let g = gone.clone();
        let peer = run_on(1, move || {
            let el = EventLoop::builder()
                .output_limit(64 * 1024)
                .on_prepare(move |_| {
                    let _keep = &marker;
                    Ok(())
                })
                .on_request(|c, _| {
                    let n = c.reader().len();
                    c.reader().skip(n)?;
                    // Far more than the socket and the output limit hold: the flush after
                    // the handler returns parks for room the peer never makes.
                    c.writer().write_bytes(&vec![7u8; 16 << 20]);
                    Ok(())
                })
                .on_disconnect(move |_, _| {
                    g.fetch_add(1, SeqCst);
                })
                .build()
                .unwrap();
            let (addr, _serving) = start(&el);
            let peer = std::net::TcpStream::connect(addr).unwrap();
            (&peer).write_all(b"go").unwrap();
            gorust::time::sleep(Duration::from_millis(300)); // the flush fills the socket
            peer
        });
        assert_eq!(gone.load(SeqCst), 1, "on_disconnect ran");
        peer.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let r = (&peer).read_to_end(&mut Vec::new());
        assert!(
            !matches!(&r, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
            "the peer sees the connection end: {r:?}"
        );
        assert!(weak.upgrade().is_none(), "the loop was freed");
    });
}

/// An `on_prepare` that panics refuses that connection only: the next one is served. Before,
/// the panic ended `serve`, and later clients waited in the backlog for ever (review,
/// session 28).
#[test]
fn a_panicking_on_prepare_refuses_one_connection_and_serving_goes_on() {
    within(LIMIT, || {
        run_on(1, || {
            let calls = Arc::new(AtomicUsize::new(0));
            let (_el, addr, _) = echo_loop(move |b| {
                b.on_prepare(move |_| {
                    if calls.fetch_add(1, SeqCst) == 0 {
                        panic!("this on_prepare panics on purpose");
                    }
                    Ok(())
                })
            });
            let mut refused = TcpStream::connect(addr).unwrap();
            refused
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let r = refused.read(&mut [0u8; 1]);
            // Closed (a FIN, or a reset), not left open until the read timeout.
            assert!(
                matches!(&r, Ok(0))
                    || matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
                "closed: {r:?}"
            );
            let mut c = TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            c.write_all(b"ping").unwrap();
            let mut got = [0u8; 4];
            c.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"ping");
        })
    });
}

/// Bytes that arrive while a handler runs, followed by a reset, are still readable in
/// `on_disconnect`. Before, the run saw the close and left them in the poller's inbox, and
/// the disconnect dropped them unseen.
#[test]
fn on_disconnect_sees_what_arrived_before_a_reset() {
    within(LIMIT, || {
        run_on(1, || {
            let seen = Arc::new(AtomicUsize::new(usize::MAX));
            let s2 = seen.clone();
            let started = Arc::new(AtomicUsize::new(0));
            let st = started.clone();
            let el = EventLoop::builder()
                .on_request(move |c, _| {
                    let n = c.reader().len();
                    c.reader().skip(n)?;
                    st.fetch_add(1, SeqCst);
                    gorust::time::sleep(Duration::from_millis(1000));
                    Ok(())
                })
                .on_disconnect(move |c, _| s2.store(c.reader().len(), SeqCst))
                .build()
                .unwrap();
            let (addr, _serving) = start(&el);
            let r = std::net::TcpStream::connect(addr).unwrap();
            socket2::SockRef::from(&r)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            (&r).write_all(b"x").unwrap();
            eventually("the handler sleeps", || started.load(SeqCst) == 1);
            (&r).write_all(b"abc").unwrap();
            // Read into the inbox meanwhile (the handler sleeps for 1 s).
            gorust::time::sleep(Duration::from_millis(200));
            drop(r); // reset
            eventually("disconnected", || seen.load(SeqCst) != usize::MAX);
            assert_eq!(seen.load(SeqCst), 3);
        })
    });
}

/// `on_disconnect` sees a closed connection: a write fails with `ErrClosed` and reaches
/// nobody, and `is_active` says false, whoever closed it and however soon after the close it
/// runs.
#[test]
fn on_disconnect_cannot_write() {
    within(LIMIT, || {
        run_on(2, || {
            let outcome = Arc::new(std::sync::Mutex::new(None));
            let o = outcome.clone();
            let el = EventLoop::builder()
                .on_request(|c, _| {
                    let n = c.reader().len();
                    c.reader().skip(n)?;
                    c.close();
                    Ok(())
                })
                .on_disconnect(move |c, _| {
                    c.writer().write_bytes(b"late");
                    *o.lock().unwrap() = Some((
                        c.flush().map_err(|e| gorust::net::is_closed(&e)),
                        c.is_active(),
                    ));
                })
                .build()
                .unwrap();
            let addr = common::serve_loopback(&el);
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"bye").unwrap();
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
            assert!(rest.is_empty(), "read {rest:?}");
            eventually("disconnected", || outcome.lock().unwrap().is_some());
            assert_eq!(*outcome.lock().unwrap(), Some((Err(true), false)));
        })
    });
}

/// As above, with the bytes and the reset arriving together while output is pending: the
/// event is writable, readable and in error at once. The write used to go first, meet the
/// reset, and close, and the bytes the peer sent before it never reached `on_disconnect`
/// (review, session 34): a reset or hang-up is now read, all of it, before it is written to,
/// and every byte reaches `on_request` or `on_disconnect`.
#[test]
fn on_disconnect_sees_what_arrived_with_a_reset_while_output_is_pending() {
    within(LIMIT, || {
        run_on(1, || {
            // Bytes the handler and then `on_disconnect` were given.
            let seen = Arc::new(AtomicUsize::new(0));
            let gone = Arc::new(AtomicUsize::new(0));
            let (s1, s2, g) = (seen.clone(), seen.clone(), gone.clone());
            let answered = Arc::new(AtomicUsize::new(0));
            let a = answered.clone();
            let el = EventLoop::builder()
                .output_limit(64 << 20)
                .on_request(move |c, _| {
                    let n = c.reader().len();
                    c.reader().skip(n)?;
                    s1.fetch_add(n, SeqCst);
                    if a.fetch_add(1, SeqCst) == 0 {
                        // Far more than the client, which reads nothing, lets the socket take.
                        c.writer().write_bytes(&vec![0u8; 16 << 20]);
                    }
                    Ok(())
                })
                .on_disconnect(move |c, _| {
                    s2.fetch_add(c.reader().len(), SeqCst);
                    g.store(1, SeqCst);
                })
                .build()
                .unwrap();
            let (addr, _serving) = start(&el);
            let r =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            r.set_recv_buffer_size(64 << 10).unwrap();
            r.set_linger(Some(Duration::ZERO)).unwrap();
            r.connect(&addr.into()).unwrap();
            let r: std::net::TcpStream = r.into();
            (&r).write_all(b"x").unwrap();
            eventually("the answer is pending", || answered.load(SeqCst) == 1);
            gorust::time::sleep(Duration::from_millis(100));
            // No yield between the two: on one worker, the poller sees both in one event.
            // More than one read takes (4 KiB at first): a write after the first read met
            // the reset and closed with the rest unread.
            (&r).write_all(&[b'y'; 20_000]).unwrap();
            drop(r); // reset
            eventually("disconnected", || gone.load(SeqCst) == 1);
            assert_eq!(
                seen.load(SeqCst),
                1 + 20_000,
                "the bytes sent before the reset"
            );
        })
    });
}

/// A handler that answers with more than the socket buffers hold and closes, while the peer
/// has sent bytes nobody will read: the peer still gets the whole answer and then the end of
/// the stream, over TCP and Unix sockets. Before, the close with unread input sent a reset,
/// which threw away the part of the answer not sent yet: the peer read a short answer and
/// `ECONNRESET` (TCP; session 25); a Unix peer read the whole answer and then `ECONNRESET`
/// instead of the end (session 26).
#[test]
fn a_close_with_unread_input_still_delivers_the_whole_answer() {
    let _big = big_memory();
    for unix in [false, true] {
        within(LIMIT, move || {
            run_on(2, move || close_with_unread_input(unix))
        });
    }
}

fn close_with_unread_input(unix: bool) {
    const ANSWER: usize = 16 << 20;
    let el = EventLoop::builder()
        .on_request(|c, _| {
            let n = c.reader().len();
            c.reader().skip(n)?;
            c.writer().write_bytes(&vec![7u8; ANSWER]);
            c.close();
            Ok(())
        })
        .build()
        .unwrap();
    // Most of the answer, so that the handler has returned (its output is below the output
    // limit) and nobody reads any more; then bytes nobody reads, sent while the rest of the
    // answer is on its way; then the rest.
    fn talk(mut s: impl Read + Write) -> (Result<(), std::io::ErrorKind>, usize) {
        s.write_all(b"x").unwrap();
        let mut got = vec![0u8; ANSWER - (3 << 20)];
        s.read_exact(&mut got).unwrap();
        s.write_all(&[1u8; 64 << 10]).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let r = s.read_to_end(&mut got);
        (r.map(drop).map_err(|e| e.kind()), got.len())
    }
    let limit = Some(Duration::from_secs(30));
    let client = if unix {
        let path =
            std::env::temp_dir().join(format!("gorust-el-linger-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let l = gorust::net::UnixListener::bind(&path).unwrap();
        let server = el.clone();
        drop(gorust::go(move || server.serve(l)));
        std::thread::spawn(move || {
            let s = std::os::unix::net::UnixStream::connect(&path).unwrap();
            let _ = std::fs::remove_file(&path);
            s.set_read_timeout(limit).unwrap();
            talk(s)
        })
    } else {
        let (addr, _serving) = start(&el);
        std::thread::spawn(move || {
            let s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(limit).unwrap();
            talk(s)
        })
    };
    let (r, len) = gorust::blocking(move || client.join().unwrap());
    assert_eq!((r, len), (Ok(()), ANSWER), "unix: {unix}");
}

/// A graceful shutdown returns only after the sockets it drained have stopped lingering:
/// a runtime dropped right after would close them at once, with a reset if input arrives
/// late, cutting short the answers the drain was for. Here the peer stays open, so the
/// socket lingers its whole 500 ms. Before, `shutdown` returned as soon as the connection had
/// disconnected.
#[test]
fn graceful_shutdown_waits_for_drained_sockets_to_stop_lingering() {
    within(LIMIT, || {
        run_on(1, || {
            let started = Arc::new(AtomicUsize::new(0));
            let st = started.clone();
            let el = EventLoop::builder()
                .on_request(move |c, _| {
                    let n = c.reader().len();
                    c.reader().skip(n)?;
                    st.fetch_add(1, SeqCst);
                    gorust::time::sleep(Duration::from_millis(300)); // in flight at shutdown
                    c.writer().write_bytes(b"answer");
                    Ok(())
                })
                .build()
                .unwrap();
            let (addr, _serving) = start(&el);
            let peer = std::net::TcpStream::connect(addr).unwrap();
            (&peer).write_all(b"x").unwrap();
            eventually("the handler started", || started.load(SeqCst) == 1);
            let t = Instant::now();
            let report = el.shutdown(Duration::from_secs(20));
            let took = t.elapsed();
            assert_eq!(report.finished, 1, "{report:?}");
            assert!(
                took >= Duration::from_millis(450),
                "returned after {took:?}, before the linger's 500 ms"
            );
            let mut got = Vec::new();
            (&peer).read_to_end(&mut got).unwrap();
            assert_eq!(got, b"answer");
        })
    });
}

/// A connection closed at its input limit with output still unwritten (a handler that
/// consumes nothing while its peer reads nothing) ends in a reset: the answer was cut short,
/// and a FIN after it would pass it as whole. Before (session 25), it was shut down gracefully
/// and the peer read a clean end after a truncated answer.
#[test]
fn a_close_at_the_input_limit_with_output_unwritten_resets() {
    let _big = big_memory();
    within(LIMIT, || {
        run_on(1, || {
            let el = EventLoop::builder()
                .input_limit(1024)
                .output_limit(64 << 20) // the flush never waits for room
                .on_connect(|_| false)
                .on_request(|c, answered| {
                    // Consumes nothing; answers once, more than the socket buffers hold.
                    if !*answered {
                        *answered = true;
                        c.writer().write_bytes(&vec![7u8; 8 << 20]);
                    }
                    Ok(())
                })
                .build()
                .unwrap();
            let (addr, _serving) = start(&el);
            let peer = std::net::TcpStream::connect(addr).unwrap();
            peer.set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            (&peer).write_all(&[1u8; 4096]).unwrap();
            gorust::time::sleep(Duration::from_millis(300)); // the limit is reached, closed
            let r = (&peer).read_to_end(&mut Vec::new());
            assert_eq!(
                r.map(drop).map_err(|e| e.kind()),
                Err(std::io::ErrorKind::ConnectionReset)
            );
        })
    });
}

/// A handler that writes an answer longer than the socket buffers hold and then fails (an
/// error, or a panic) still has the whole answer written before the close, as the builder
/// promises. Before, the connection was closed at once: the rest was dropped, and the FIN
/// after what the kernel held passed the cut answer to the peer as whole (review, session 28).
#[test]
fn a_failing_handler_s_answer_is_written_whole_before_the_close() {
    let _big = big_memory();
    within(LIMIT, || {
        run_on(2, || {
            let el = EventLoop::builder()
                .output_limit(64 << 20) // the flush never waits for room
                .on_request(|c, _| {
                    let first = c.reader().next(1)?[0];
                    c.writer().write_bytes(&vec![first; 8 << 20]);
                    if first == b'p' {
                        panic!("this handler panics on purpose");
                    }
                    Err(std::io::Error::other("this handler fails on purpose"))
                })
                .build()
                .unwrap();
            let (addr, _serving) = start(&el);
            for first in [b'e', b'p'] {
                let peer = std::net::TcpStream::connect(addr).unwrap();
                peer.set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                (&peer).write_all(&[first]).unwrap();
                gorust::time::sleep(Duration::from_millis(300)); // the handler has failed
                let mut got = Vec::new();
                (&peer).read_to_end(&mut got).unwrap();
                assert_eq!(got.len(), 8 << 20, "the whole answer, then the end");
                assert!(got.iter().all(|&b| b == first));
            }
        })
    });
}

#[test]
fn half_close_gets_its_answer_and_reset_disconnects() {
    within(LIMIT, || {
        run_on(2, || {
            let (el, addr, gone) = echo_loop(|b| b);
            // Half-close: the request, then FIN; the reply still arrives, then EOF.
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"request").unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).unwrap();
            assert_eq!(all, b"request");
            eventually("half-closed one disconnected", || gone.load(SeqCst) == 1);
            // Reset: linger 0 makes close send RST.
            let r = std::net::TcpStream::connect(addr).unwrap();
            socket2::SockRef::from(&r)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            (&r).write_all(b"x").unwrap();
            gorust::time::sleep(Duration::from_millis(20));
            drop(r);
            eventually("reset one disconnected", || gone.load(SeqCst) == 2);
            assert_eq!(el.connections(), 0);
        })
    });
}

/// A message that ends at the peer's FIN can be answered: input a run left unconsumed gets
/// one run that can see the end of the stream (`wait_input` then says `UnexpectedEof` at
/// once), and its answer is written before the close, whether the FIN came while the handler
/// was idle or while a run was going (not parked in `wait_input`). Before, the connection
/// closed at the FIN unanswered; only a handler parked in `wait_input` could answer (review,
/// session 34).
#[test]
fn input_left_by_a_run_gets_a_run_at_the_peers_fin() {
    for fin_during_the_run in [false, true] {
        within(LIMIT, move || {
            run_on(2, move || {
                let runs = Arc::new(AtomicUsize::new(0));
                let r = runs.clone();
                let el = EventLoop::builder()
                    .on_request(move |c, _| {
                        if r.fetch_add(1, SeqCst) == 0 {
                            if fin_during_the_run {
                                gorust::time::sleep(Duration::from_millis(300));
                            }
                            return Ok(()); // not the whole message, as far as it knows
                        }
                        let n = c.reader().len();
                        let e = c.wait_input(n + 1).unwrap_err();
                        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
                        let answer = format!("{n} bytes");
                        c.writer().write_bytes(answer.as_bytes());
                        Ok(())
                    })
                    .build()
                    .unwrap();
                let addr = common::serve_loopback(&el);
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(b"abc").unwrap();
                if !fin_during_the_run {
                    eventually("the first run started", || runs.load(SeqCst) == 1);
                    gorust::time::sleep(Duration::from_millis(20)); // and ended
                }
                s.shutdown(Shutdown::Write).unwrap();
                let mut all = Vec::new();
                s.read_to_end(&mut all).unwrap();
                assert_eq!(all, b"3 bytes", "FIN during the run: {fin_during_the_run}");
                assert_eq!(runs.load(SeqCst), 2, "one run more, not two");
                eventually("closed", || el.connections() == 0);
            })
        });
    }
}

#[test]
fn wait_input_parks_for_the_rest_of_a_message_and_times_out() {
    within(LIMIT, || {
        run_on(2, || {
            let el = EventLoop::builder()
                // 20 times the pause inside the first message below.
                .read_timeout(Some(Duration::from_secs(1)))
                .on_request(|c, _| {
                    // A length-prefixed message: 4 bytes of length, then the body.
                    c.wait_input(4)?;
                    let len = u32::from_be_bytes(c.reader().peek(4)?[..].try_into().unwrap());
                    match c.wait_input(4 + len as usize) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                            c.writer().write_bytes(b"timeout");
                            c.close();
                            return Ok(());
                        }
                        Err(e) => return Err(e),
                    }
                    c.reader().skip(4)?;
                    let body = c.reader().next(len as usize)?;
                    c.writer().write_bytes(&body);
                    Ok(())
                })
                .build()
                .unwrap();
            let (addr, _) = start(&el);
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(&5u32.to_be_bytes()).unwrap();
            s.write_all(b"he").unwrap();
            gorust::time::sleep(Duration::from_millis(50));
            s.write_all(b"llo").unwrap();
            let mut b = [0u8; 5];
            s.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"hello");
            // Half a message, then silence: the read timeout answers and closes.
            s.write_all(&9u32.to_be_bytes()).unwrap();
            s.write_all(b"part").unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).unwrap();
            assert_eq!(all, b"timeout");
        })
    });
}

/// A reply far larger than the socket buffer, to a reader that is slow at first: the handler's
/// `flush` leaves the rest to the poller (write interest armed) and every byte arrives in order.
#[test]
fn large_replies_are_finished_by_the_poller() {
    let _big = big_memory();
    within(LIMIT, || {
        run_on(2, || {
            let el = EventLoop::builder()
                .output_limit(1 << 20)
                .on_request(|c, _| {
                    let n = c.reader().len();
                    c.reader().skip(n)?;
                    for i in 0..(16u32 << 20) / 4 {
                        c.writer().write_bytes(&i.to_le_bytes());
                        if i % 65536 == 0 {
                            c.flush()?;
                        }
                    }
                    Ok(())
                })
                .build()
                .unwrap();
            let (addr, _) = start(&el);
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"go").unwrap();
            gorust::time::sleep(Duration::from_millis(100));
            let mut buf = vec![0u8; 16 << 20];
            s.read_exact(&mut buf).unwrap();
            for (i, w) in buf.chunks_exact(4).enumerate() {
                assert_eq!(u32::from_le_bytes(w.try_into().unwrap()), i as u32);
            }
        })
    });
}

/// The worker is stuck in a goroutine that never parks: the monitor thread polls its epoll and
/// does the event loop's reads (the `owner = false` dispatch); every byte still comes back.
///
/// Worker 0 has a thread of its own (the runtime is not `run` from this thread), so the monitor
/// stays in the shared descriptor table and runs the connection's reads itself (after a
/// one-worker `run` it has a table of its own and leaves them to the worker, `sched/sysmon.rs`).
/// The connection exists before the hog starts (one echo round trip). Its socket buffers are
/// small, so while the worker is stuck the client can write more than both hold only if the
/// monitor reads; the hog spins until it did (for at most 10 s).
#[test]
fn reads_done_by_the_monitor_thread_are_correct() {
    const TOTAL: u32 = 4 << 20;
    const BUF: usize = 16 << 10;
    within(LIMIT, || {
        let rt = gorust::Runtime::builder().workers(1).build().unwrap();
        let main = rt.go(|| {
            let l = gorust::net::TcpListener::bind("127.0.0.1:0").unwrap();
            // Inherited by the accepted socket.
            socket2::SockRef::from(&l)
                .set_recv_buffer_size(BUF)
                .unwrap();
            let rcvbuf = socket2::SockRef::from(&l).recv_buffer_size().unwrap();
            let (el, addr, _gone) = common::echo_loop_on(l, |b| b.input_limit(1 << 20));
            let hogging = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let written = Arc::new(AtomicUsize::new(0));
            let (h, w) = (hogging.clone(), written.clone());
            let (connected_tx, connected) = std::sync::mpsc::channel();
            let client = std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                socket2::SockRef::from(&s)
                    .set_send_buffer_size(BUF)
                    .unwrap();
                let sndbuf = socket2::SockRef::from(&s).send_buffer_size().unwrap();
                s.write_all(b"hi").unwrap();
                let mut back = [0u8; 2];
                s.read_exact(&mut back).unwrap();
                assert_eq!(&back, b"hi");
                connected_tx.send(sndbuf).unwrap();
                while !h.load(SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let r = s.try_clone().unwrap();
                let reader = std::thread::spawn(move || {
                    let mut all = Vec::new();
                    (&r).take(TOTAL as u64).read_to_end(&mut all).unwrap();
                    all
                });
                let data: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
                for chunk in data.chunks(4096) {
                    s.write_all(chunk).unwrap();
                    w.fetch_add(chunk.len(), SeqCst);
                }
                assert_eq!(reader.join().unwrap(), data);
            });
            let sndbuf = gorust::blocking(move || connected.recv().unwrap());
            assert_eq!(el.connections(), 1);
            // Twice what the client's send and the server's receive buffers hold (as the
            // kernel reports them, with its overhead): past it, someone read.
            let beyond_buffers = 2 * (sndbuf + rcvbuf);
            // Hog the only worker while the client sends.
            let seen = gorust::go(move || {
                hogging.store(true, SeqCst);
                let end = Instant::now() + Duration::from_secs(10);
                while written.load(SeqCst) <= beyond_buffers && Instant::now() < end {
                    std::hint::spin_loop();
                }
                written.load(SeqCst)
            })
            .join()
            .unwrap();
            assert!(
                seen > beyond_buffers,
                "the client wrote {seen} bytes while the worker was stuck, no more than the \
                 buffers hold ({beyond_buffers}): the monitor read nothing"
            );
            gorust::blocking(move || client.join().unwrap());
        });
        rt.block_on(main).unwrap();
    });
}

/// A connection's idle timer that falls due while its worker is stuck in one goroutine is
/// fired by the monitor thread, and the re-arm that follows (the connection was active, or
/// its handler is pending) goes back into that worker's heap. It used to go to the process's
/// fallback timer thread, and every later re-arm ran there, for the connection's life, while
/// the worker's heap counted none (review, session 22). One worker, started by `build` (so
/// the monitor shares the descriptor table and fires timers).
#[test]
fn a_connection_timer_fired_by_the_monitor_goes_back_to_its_worker() {
    within(LIMIT, || {
        let rt = gorust::Runtime::builder().workers(1).build().unwrap();
        // Over 15 times the client's gaps below (30 ms, 20 ms): a stalled vCPU must not pass
        // for idleness.
        let idle = Duration::from_millis(500);
        let (el, addr, gone) =
            rt.block_on(async move { echo_loop(|b| b.idle_timeout(Some(idle))) });
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let echo = |s: &mut std::net::TcpStream| {
            s.write_all(b"x").unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
        };
        echo(&mut s);
        let worker_timers = || rt.metrics().workers[0].timers;
        assert_eq!(worker_timers(), 1, "the idle timer is armed on the worker");
        // Hold the only worker for four idle periods; meanwhile the client writes, so the
        // monitor reads (the handlers wait for the worker) and re-arms the timer each time it
        // fires.
        let (started_tx, started) = std::sync::mpsc::channel();
        let hog = rt.go(move || {
            started_tx.send(()).unwrap();
            std::thread::sleep(4 * idle);
        });
        started.recv().unwrap();
        let stuck = Instant::now();
        let mut sent = 0;
        while stuck.elapsed() < 4 * idle {
            s.write_all(b"y").unwrap();
            sent += 1;
            std::thread::sleep(Duration::from_millis(30));
        }
        rt.block_on(hog).unwrap();
        // The handlers ran once the worker was free: every byte comes back.
        let mut back = vec![0u8; sent];
        s.read_exact(&mut back).unwrap();
        assert!(back.iter().all(|&b| b == b'y'));
        // While the connection lives and is active, its timer is in the worker's heap (it is
        // out of it only between a firing and its re-arm, a few microseconds).
        let mut seen = false;
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(20));
            echo(&mut s);
            seen |= worker_timers() >= 1;
        }
        assert!(
            seen,
            "the re-armed idle timer never came back to the worker's heap"
        );
        // And it still closes the connection once idle, no sooner than `idle` after the last
        // round trip began (measured from after a sleep, as first written, the lateness of
        // that sleep under load counted as early closing).
        let idle_from = Instant::now();
        echo(&mut s);
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        assert!(idle_from.elapsed() >= idle - Duration::from_millis(20));
        let gone_by = Instant::now() + Duration::from_secs(10);
        while gone.load(SeqCst) != 1 {
            assert!(Instant::now() < gone_by, "on_disconnect never ran");
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(el.connections(), 0);
    });
}

/// Output still queued for a slow reader when a graceful shutdown starts is written out before
/// the connection closes, and counted as finished: closed at once as idle, the response was
/// cut short (review, session 8).
#[test]
fn graceful_shutdown_writes_out_queued_output() {
    // More than the socket buffers hold, less than the output limit: the handler returns at
    // once and the rest waits in the connection's output.
    const BIG: usize = 32 << 20;
    within(LIMIT, || {
        run_on(2, || {
            let el = EventLoop::builder()
                .output_limit(64 << 20)
                .on_request(|c, _| {
                    let n = c.reader().len();
                    c.reader().skip(n)?;
                    c.writer().write_bytes(&vec![7u8; BIG]);
                    Ok(())
                })
                .build()
                .unwrap();
            let (addr, serving) = start(&el);
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"go").unwrap();
            // The handler has returned; most of the reply waits for this reader.
            gorust::time::sleep(Duration::from_millis(100));
            let reader = gorust::go(move || {
                let mut all = Vec::new();
                s.read_to_end(&mut all).unwrap();
                all.len()
            });
            let report = el.shutdown(Duration::from_secs(10));
            assert_eq!(report.closed_idle, 0, "{report:?}");
            assert_eq!(report.finished, 1, "{report:?}");
            assert_eq!(reader.join().unwrap(), BIG, "the whole reply, then EOF");
            serving.join().unwrap().unwrap();
        })
    });
}

/// A loop on a fresh Unix-domain listener whose handler consumes at most `per_call` bytes a
/// call (sleeping `pause` after each) and records them; it answers nothing. Returns the loop,
/// the socket's path, the bytes received and the disconnect count.
fn unix_recorder(
    tag: &str,
    input_limit: usize,
    per_call: usize,
    pause: Duration,
) -> (
    EventLoop,
    std::path::PathBuf,
    Arc<std::sync::Mutex<Vec<u8>>>,
    Arc<AtomicUsize>,
) {
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let gone = Arc::new(AtomicUsize::new(0));
    let (r, g) = (got.clone(), gone.clone());
    let el = EventLoop::builder()
        .input_limit(input_limit)
        .on_request(move |c, _| {
            let n = c.reader().len().min(per_call);
            let data = c.reader().next(n)?;
            r.lock().unwrap().extend_from_slice(&data);
            if !pause.is_zero() {
                gorust::time::sleep(pause);
            }
            Ok(())
        })
        .on_disconnect(move |_, _| {
            g.fetch_add(1, SeqCst);
        })
        .build()
        .unwrap();
    let path = std::env::temp_dir().join(format!("gorust-el-{tag}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let l = gorust::net::UnixListener::bind(&path).unwrap();
    let server = el.clone();
    gorust::go(move || server.serve(l));
    (el, path, got, gone)
}

/// Data and a hang-up reported in one event while the connection is idle (a Unix-socket peer
/// that writes and closes): the data reaches `on_request`, then the connection disconnects.
/// Session 8 made sure such a connection disconnects at all; until session 20 it did so with
/// the data read but never handed to a handler.
#[test]
fn data_and_a_hangup_in_one_event_reach_the_handler_then_disconnect() {
    within(LIMIT, || {
        run_on(1, || {
            let (el, path, got, gone) = unix_recorder("hup", 1 << 20, usize::MAX, Duration::ZERO);
            let p2 = path.clone();
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            let peer = std::thread::spawn(move || {
                let mut c = std::os::unix::net::UnixStream::connect(&p2).unwrap();
                go_rx.recv().unwrap();
                c.write_all(b"the last records").unwrap();
            });
            eventually("accepted", || el.connections() == 1);
            gorust::time::sleep(Duration::from_millis(50)); // idle: no handler in flight
                                                            // Hold the only worker while the peer writes and hangs up, so that one poll (the
                                                            // worker's or the monitor's) sees both.
            go_tx.send(()).unwrap();
            peer.join().unwrap();
            std::thread::sleep(Duration::from_millis(50));
            eventually("disconnected", || gone.load(SeqCst) == 1);
            eventually("deregistered", || el.connections() == 0);
            assert_eq!(got.lock().unwrap().as_slice(), b"the last records");
            let _ = std::fs::remove_file(&path);
        })
    });
}

/// A Unix-socket peer that writes more than the input limit and closes, to a handler that
/// consumes slowly: the hang-up arrives while reading is off, and every byte still reaches
/// the handler, in order, before the disconnect.
#[test]
fn a_hangup_past_the_input_limit_loses_nothing() {
    const TOTAL: usize = 96 << 10;
    within(LIMIT, || {
        run_on(1, || {
            let (el, path, got, gone) =
                unix_recorder("hup-limit", 8 << 10, 2 << 10, Duration::from_millis(2));
            let p2 = path.clone();
            let sent: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
            let expect = sent.clone();
            let peer = std::thread::spawn(move || {
                let mut c = std::os::unix::net::UnixStream::connect(&p2).unwrap();
                c.write_all(&sent).unwrap();
            });
            peer.join().unwrap();
            eventually("disconnected", || gone.load(SeqCst) == 1);
            eventually("deregistered", || el.connections() == 0);
            let got = got.lock().unwrap();
            assert_eq!(got.len(), TOTAL);
            assert!(*got == expect, "the bytes arrived out of order");
            let _ = std::fs::remove_file(&path);
        })
    });
}

/// What a TCP peer sent before its reset, as a loop with an 8 KiB input limit received it:
/// `on_request` takes 2 KiB a call (after `held` is cleared, then `pause`), and
/// `on_disconnect` takes the rest. The peer connects with `SO_LINGER` 0, writes `TOTAL`
/// bytes, waits `before_reset` (none: no yield between, so on one worker the poller sees the
/// data and the reset in one event), resets, and after `then` clears `held`.
fn bytes_before_a_reset(before_reset: Duration, then: Duration, pause: Duration) -> usize {
    const TOTAL: usize = 32 << 10;
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let gone = Arc::new(AtomicUsize::new(0));
    let held = Arc::new(std::sync::atomic::AtomicBool::new(!then.is_zero()));
    let (r, r2, g, h) = (got.clone(), got.clone(), gone.clone(), held.clone());
    let el = EventLoop::builder()
        .input_limit(8 << 10)
        .on_request(move |c, _| {
            // Behind: nothing consumed until the test lets it go on.
            while h.load(SeqCst) {
                gorust::time::sleep(Duration::from_millis(5));
            }
            let n = c.reader().len().min(2 << 10);
            let data = c.reader().next(n)?;
            r.lock().unwrap().extend_from_slice(&data);
            gorust::time::sleep(pause);
            Ok(())
        })
        .on_disconnect(move |c, _| {
            let n = c.reader().len();
            if let Ok(data) = c.reader().next(n) {
                r2.lock().unwrap().extend_from_slice(&data);
            }
            g.fetch_add(1, SeqCst);
        })
        .build()
        .unwrap();
    let (addr, _serving) = start(&el);
    let sent: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
    let c = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    c.set_linger(Some(Duration::ZERO)).unwrap();
    c.connect(&addr.into()).unwrap();
    let c: std::net::TcpStream = c.into();
    (&c).write_all(&sent).unwrap();
    if !before_reset.is_zero() {
        gorust::time::sleep(before_reset);
    }
    drop(c);
    if !then.is_zero() {
        gorust::time::sleep(then);
    }
    held.store(false, SeqCst);
    eventually("disconnected", || gone.load(SeqCst) == 1);
    let got = got.lock().unwrap();
    assert!(
        got[..] == sent[..got.len()],
        "the bytes arrived out of order"
    );
    got.len()
}

/// A TCP peer that sends more than the input limit and resets at once, to a handler that
/// consumes slowly: the read that brings the reset fills the limit, reading stops with the
/// connection hushed, and every byte the peer sent before the reset still reaches the handler.
/// (Hushed with `EPOLL_CTL_MOD`, the registration reports the pending reset once more; taken
/// for a new error at the limit, it closed the connection with the rest unread: a first
/// version of session 35's change.)
#[test]
fn a_reset_that_fills_the_input_limit_loses_nothing() {
    within(LIMIT, || {
        run_on(1, || {
            let got =
                bytes_before_a_reset(Duration::ZERO, Duration::ZERO, Duration::from_millis(2));
            assert_eq!(got, 32 << 10, "the bytes sent before the reset");
        })
    });
}

/// The same peer, resetting while the handler is behind (the limit reached, reading off):
/// every byte it sent before the reset still reaches the handler once it goes on. Until
/// session 35 the reset, reported where no read was wanted, closed the connection at once,
/// and the bytes past the limit were lost.
#[test]
fn a_reset_while_the_handler_is_behind_loses_nothing() {
    within(LIMIT, || {
        run_on(1, || {
            let got = bytes_before_a_reset(
                Duration::from_millis(200),
                Duration::from_millis(200),
                Duration::ZERO,
            );
            assert_eq!(got, 32 << 10, "the bytes sent before the reset");
        })
    });
}

/// Any listener: the same loop serves a Unix-domain socket.
#[test]
fn serves_a_unix_listener() {
    within(LIMIT, || {
        run_on(2, || {
            let (el, _addr, gone) = echo_loop(|b| b);
            let path = std::env::temp_dir().join(format!("gorust-el-{}.sock", std::process::id()));
            let _ = std::fs::remove_file(&path);
            let l = gorust::net::UnixListener::bind(&path).unwrap();
            let server = el.clone();
            gorust::go(move || server.serve(l));
            let mut s = gorust::net::UnixStream::connect(&path).unwrap();
            s.write_all(b"over unix").unwrap();
            let mut b = [0u8; 9];
            s.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"over unix");
            drop(s);
            eventually("disconnected", || gone.load(SeqCst) == 1);
            let _ = std::fs::remove_file(&path);
        })
    });
}

/// Serves `b` (its `on_request` writes more than the peer takes) to a peer that sends one
/// request and never reads, until the connection is closed by the write timeout, then
/// checks that the peer reads a reset while `on_disconnect` still holds the connection.
fn close_a_peer_that_never_reads(b: gorust::eventloop::Builder) {
    let gone = Arc::new(AtomicUsize::new(0));
    let g = gone.clone();
    let el = b
        .on_disconnect(move |_, _| {
            g.fetch_add(1, SeqCst);
            // Holds the connection, and so its descriptor, open meanwhile.
            gorust::time::sleep(Duration::from_secs(30));
        })
        .build()
        .unwrap();
    let (addr, _) = start(&el);
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"go").unwrap();
    eventually("closed by the write timeout", || gone.load(SeqCst) == 1);
    // The answer was cut short: the peer reads a reset after what arrived, not a clean end,
    // and at once, not when the descriptor closes (before, a FIN followed the cut answer;
    // review, session 28).
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let end = s.read_to_end(&mut Vec::new());
    assert_eq!(
        end.map(drop).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );
}

/// A peer that never reads: `flush` parks past the output limit, the write timeout fails it,
/// and the connection is closed with a reset.
#[test]
fn write_timeout_closes_a_peer_that_never_reads() {
    within(LIMIT, || {
        run_on(2, || {
            let failed = Arc::new(AtomicUsize::new(0));
            let f = failed.clone();
            close_a_peer_that_never_reads(
                EventLoop::builder()
                    .output_limit(256 << 10)
                    .write_timeout(Some(Duration::from_millis(200)))
                    .on_request(move |c, _| {
                        let n = c.reader().len();
                        c.reader().skip(n)?;
                        let chunk = vec![0u8; 64 << 10];
                        for _ in 0..1024 {
                            c.writer().write_bytes(&chunk);
                            if let Err(e) = c.flush() {
                                // The flush's own deadline, or the connection's write timer
                                // (which counts from the first pending byte) closing it
                                // first: `TimedOut` either way (the timer's close said
                                // `ErrClosed` before session 25).
                                assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
                                f.fetch_add(1, SeqCst);
                                return Err(e);
                            }
                        }
                        Ok(())
                    }),
            );
            assert_eq!(failed.load(SeqCst), 1);
        })
    });
}

/// With an idle timeout far off, output left pending still closes the connection after the
/// write timeout. Before, the connection's one timer stayed armed for the idle deadline and
/// the write timeout acted only when that fired (review, session 19).
#[test]
fn write_timeout_acts_before_a_later_idle_timeout() {
    // 32 MiB queued for the peer, and held while `on_disconnect` waits: the RSS test must
    // not run meanwhile (it failed once beside this one; session 28).
    let _big = big_memory();
    within(LIMIT, || {
        run_on(2, || {
            close_a_peer_that_never_reads(
                EventLoop::builder()
                    .output_limit(256 << 20)
                    .idle_timeout(Some(Duration::from_secs(3600)))
                    .write_timeout(Some(Duration::from_millis(200)))
                    .on_request(move |c, _| {
                        let n = c.reader().len();
                        c.reader().skip(n)?;
                        // More than loopback's socket buffers hold, below the output limit:
                        // the handler returns with output pending.
                        c.writer().write_bytes(&vec![0u8; 32 << 20]);
                        c.flush()
                    }),
            );
        })
    });
}

/// An idle connection closed by the loop's shutdown, whose last answer still sits in the
/// server's send buffer for a slow reader, delivers that answer whole even when the peer
/// sends more meanwhile. Closed both ways, as before, the socket answered the peer's next
/// bytes with a reset, which threw the answer's tail away (review, session 32).
#[test]
fn an_idle_connection_closed_at_shutdown_delivers_its_last_answer_whole() {
    const ANSWER: usize = 1 << 20;
    let _big = big_memory();
    within(LIMIT, || {
        run_on(1, || {
            // The send buffer holds the whole answer, so the handler's flush empties the output.
            let el = one_answer_loop(ANSWER, 4 << 20, EventLoop::builder());
            let (addr, _serving) = start(&el);
            let mut peer = small_window_peer(addr, 8 << 10).unwrap();
            peer.write_all(b"go").unwrap();
            gorust::time::sleep(Duration::from_millis(200));
            // The peer's next bytes arrive while the shutdown runs: within the closed socket's
            // linger (500 ms), which reads and drops them.
            let mut writer = peer.try_clone().unwrap();
            let next = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                writer.write_all(b"next")
            });
            let report = el.shutdown(Duration::from_secs(10));
            assert_eq!(report.closed_idle, 1, "{report:?}");
            gorust::blocking(move || next.join().unwrap()).unwrap();
            let mut got = Vec::new();
            let r = gorust::blocking(move || peer.read_to_end(&mut got).map(|_| got.len()));
            assert_eq!(r.map_err(|e| e.kind()), Ok(ANSWER));
        })
    });
}

/// A handler still running when the shutdown's grace runs out has its answer cut short, and
/// the peer is told so with a reset, even when what it wrote so far went straight to the
/// socket (nothing left in its output). Before, only buffered output counted as cut, and
/// the peer read the first part and then a clean end, as if whole (review, session 32).
#[test]
fn a_handler_forced_closed_at_shutdown_resets_even_with_nothing_buffered() {
    within(LIMIT, || {
        run_on(1, || {
            let el = EventLoop::builder()
                .on_request(|c, _| {
                    let n = c.reader().len();
                    c.reader().skip(n)?;
                    c.writer().write_bytes(b"part1");
                    c.flush()?;
                    gorust::time::sleep(Duration::from_secs(5));
                    c.writer().write_bytes(b"part2");
                    c.flush()
                })
                .build()
                .unwrap();
            let (addr, _serving) = start(&el);
            let mut peer = TcpStream::connect(addr).unwrap();
            peer.set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            peer.write_all(b"go").unwrap();
            let mut part = [0u8; 5];
            peer.read_exact(&mut part).unwrap();
            let report = el.shutdown(Duration::from_millis(100));
            assert_eq!(report.forced, 1, "{report:?}");
            let r = peer.read_to_end(&mut Vec::new()).map(drop);
            assert_eq!(
                r.map_err(|e| e.kind()),
                Err(std::io::ErrorKind::ConnectionReset)
            );
        })
    });
}

/// The write timeout bounds a stall, not a long answer: a peer that keeps reading, slowly,
/// gets all of an answer that takes several times the timeout. Before, the timeout counted
/// from the first pending byte, and the connection was reset mid-download (review, session
/// 32).
#[test]
fn write_timeout_spares_a_peer_that_keeps_reading() {
    const ANSWER: usize = 4 << 20;
    let _big = big_memory();
    within(LIMIT, || {
        run_on(2, || {
            // The kernel holds little of the answer, so the poller's writes make progress
            // every few tens of ms, not once it has drained megabytes.
            let el = one_answer_loop(
                ANSWER,
                64 << 10,
                EventLoop::builder()
                    .output_limit(64 << 20)
                    .write_timeout(Some(Duration::from_millis(300))),
            );
            let (addr, _serving) = start(&el);
            let r = gorust::blocking(move || {
                let mut peer = small_window_peer(addr, 64 << 10)?;
                peer.write_all(b"go")?;
                // About 1.5 s for the whole answer: 64 KiB every 25 ms.
                let mut got = 0;
                let mut buf = vec![0u8; 64 << 10];
                while got < ANSWER {
                    let n = peer.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    got += n;
                    std::thread::sleep(Duration::from_millis(25));
                }
                std::io::Result::Ok(got)
            });
            assert_eq!(r.map_err(|e| e.kind()), Ok(ANSWER));
        })
    });
}

/// A loop whose handler skips each request and answers with `answer` bytes, its sockets'
/// send buffers set to `send_buffer` bytes; `b` adds the rest of the settings.
fn one_answer_loop(answer: usize, send_buffer: usize, b: gorust::eventloop::Builder) -> EventLoop {
    b.on_prepare(move |s| {
        socket2::SockRef::from(s).set_send_buffer_size(send_buffer)?;
        Ok(())
    })
    .on_request(move |c, _| {
        let n = c.reader().len();
        c.reader().skip(n)?;
        c.writer().write_bytes(&vec![7u8; answer]);
        c.flush()
    })
    .build()
    .unwrap()
}

/// A plain-thread peer of `addr` whose receive buffer is `recv_buffer` bytes (a slow reader's
/// small window), with a 30 s read timeout.
fn small_window_peer(
    addr: std::net::SocketAddr,
    recv_buffer: usize,
) -> std::io::Result<std::net::TcpStream> {
    let peer = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    peer.set_recv_buffer_size(recv_buffer)?;
    peer.connect(&addr.into())?;
    let peer = std::net::TcpStream::from(peer);
    peer.set_read_timeout(Some(Duration::from_secs(30)))?;
    Ok(peer)
}
