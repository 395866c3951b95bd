//! `gorust::eventloop`'s client side: `EventLoop::dial` and `ClientConn` (calls from the
//! calling goroutine, and `send` with replies through `on_request`), dial errors, and `Pool`
//! (reuse, the idle cap, the idle reaper, peer-closed connections). Loopback only; the time
//! limits are hang detectors, not speed checks.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{echo_loop, eventually, run_on, within};
use gorust::eventloop::{ClientConn, EventLoop, Pool};

const LIMIT: Duration = Duration::from_secs(120);
const DIAL: Option<Duration> = Some(Duration::from_secs(10));

/// A loop for clients that read their replies in `call`: `on_request` leaves bytes alone.
fn caller_loop() -> EventLoop {
    EventLoop::builder()
        .on_request(|_, _| Ok(()))
        .build()
        .unwrap()
}

/// One request/reply round trip over an echo server, from the calling goroutine.
fn echo_call<S: Send + 'static>(c: &ClientConn<S>, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    c.call(|c, _| {
        c.writer().write_bytes(msg);
        c.flush()?;
        c.wait_input(msg.len())?;
        let back = c.reader().next(msg.len())?.to_vec();
        Ok(back)
    })
}

// On 1, 2 and 4 workers: with one, the caller parks and the same worker polls the reply.
on_each_config!(dial_and_call_an_event_loop_server, || {
    let (server, addr, gone) = echo_loop(|b| b);
    let client = caller_loop();
    let c = client.dial(addr, DIAL).unwrap();
    assert_eq!(c.peer_addr().unwrap(), addr);
    for i in 0..100 {
        let msg = format!("request {i} {}", "y".repeat(i * 50));
        assert_eq!(echo_call(&c, msg.as_bytes()).unwrap(), msg.as_bytes());
    }
    assert_eq!(server.connections(), 1);
    assert_eq!(client.connections(), 1);
    drop(c);
    eventually("both sides disconnected", || {
        gone.load(SeqCst) == 1 && client.connections() == 0
    });
});

/// A goroutine-mode server: `gorust::net` with one goroutine per connection.
fn plain_echo_server() -> SocketAddr {
    let l = gorust::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    gorust::go(move || {
        while let Ok((mut s, _)) = l.accept() {
            gorust::go(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn dial_and_call_a_plain_net_server_from_many_goroutines() {
    within(LIMIT, || {
        run_on(2, || {
            let addr = plain_echo_server();
            let client = caller_loop();
            let c = Arc::new(client.dial(addr, DIAL).unwrap());
            // Concurrent calls on one connection take turns: each gets its own reply.
            let callers: Vec<_> = (0..8)
                .map(|g| {
                    let c = c.clone();
                    gorust::go(move || {
                        for i in 0..50 {
                            let msg = format!("goroutine {g} call {i}");
                            assert_eq!(echo_call(&c, msg.as_bytes()).unwrap(), msg.as_bytes());
                        }
                    })
                })
                .collect();
            for h in callers {
                h.join().unwrap();
            }
        })
    });
}

#[test]
fn send_from_any_goroutine_and_replies_through_on_request() {
    within(LIMIT, || {
        run_on(2, || {
            let (_server, addr, _) = echo_loop(|b| b);
            let (tx, rx) = gorust::sync::mpsc::channel::<Vec<u8>>();
            let tx = std::sync::Mutex::new(tx);
            let disconnects = Arc::new(AtomicUsize::new(0));
            let d = disconnects.clone();
            let client = EventLoop::builder()
                .on_request(move |c, _| {
                    // Replies are lines; a partial one waits for more data.
                    while let Ok(line) = c.reader().until(b'\n') {
                        tx.lock().unwrap().send(line.to_vec()).unwrap();
                    }
                    Ok(())
                })
                .on_disconnect(move |_, _| {
                    d.fetch_add(1, SeqCst);
                })
                .build()
                .unwrap();
            let c = Arc::new(client.dial(addr, DIAL).unwrap());
            let senders: Vec<_> = (0..4)
                .map(|g| {
                    let c = c.clone();
                    gorust::go(move || {
                        for i in 0..25 {
                            c.send(format!("g{g} m{i}\n").as_bytes()).unwrap();
                        }
                    })
                })
                .collect();
            for h in senders {
                h.join().unwrap();
            }
            let mut got: Vec<Vec<u8>> = (0..100).map(|_| rx.recv().unwrap()).collect();
            got.sort();
            let mut want: Vec<Vec<u8>> = (0..4)
                .flat_map(|g| (0..25).map(move |i| format!("g{g} m{i}\n").into_bytes()))
                .collect();
            want.sort();
            assert_eq!(got, want, "every line echoed whole");
            Arc::try_unwrap(c).unwrap().close();
            eventually("on_disconnect ran", || disconnects.load(SeqCst) == 1);
            gorust::time::sleep(Duration::from_millis(100));
            assert_eq!(disconnects.load(SeqCst), 1, "exactly once");
            assert_eq!(client.connections(), 0);
        })
    });
}

/// `on_connect` runs before the first call, calls share the connection's state with the
/// callbacks, bytes that arrive between calls wait for the next one, and `on_disconnect` gets
/// the final state once.
#[test]
fn calls_see_the_state_and_the_bytes_that_arrived_between_calls() {
    within(LIMIT, || {
        run_on(2, || {
            let server = EventLoop::builder()
                .on_connect(|c| {
                    c.writer().write_bytes(b"hello\n");
                })
                .on_request(|c, _| {
                    let n = c.reader().len();
                    let data = c.reader().next(n)?;
                    c.writer().write_bytes(&data);
                    Ok(())
                })
                .build()
                .unwrap();
            let (addr, _) = common::start(&server);
            let last = Arc::new(AtomicUsize::new(0));
            let l = last.clone();
            let client = EventLoop::builder()
                .on_connect(|_| 100usize)
                .on_request(|_, _| Ok(()))
                .on_disconnect(move |_, calls| {
                    l.fetch_add(calls, SeqCst);
                })
                .build()
                .unwrap();
            let c = client.dial(addr, DIAL).unwrap();
            // The greeting arrives while no call holds the connection.
            gorust::time::sleep(Duration::from_millis(50));
            let greeting = c
                .call(|c, calls| {
                    assert_eq!(*calls, 100, "on_connect ran first");
                    *calls += 1;
                    c.wait_input(6)?;
                    Ok(c.reader().next(6)?.to_vec())
                })
                .unwrap();
            assert_eq!(greeting, b"hello\n");
            for _ in 0..2 {
                c.call(|_, calls| {
                    *calls += 1;
                    Ok(())
                })
                .unwrap();
            }
            assert_eq!(echo_call(&c, b"ok").unwrap(), b"ok");
            drop(c);
            eventually("on_disconnect ran", || last.load(SeqCst) == 103);
            gorust::time::sleep(Duration::from_millis(50));
            assert_eq!(last.load(SeqCst), 103, "exactly once");
        })
    });
}

#[test]
fn dial_to_a_closed_port_is_refused() {
    within(LIMIT, || {
        run_on(2, || {
            let (_held, addr) = common::refused_addr();
            let client = caller_loop();
            let e = client.dial(addr, DIAL).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
            let e = client.dial(addr, None).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
            assert_eq!(client.connections(), 0);
        })
    });
}

#[test]
fn dial_times_out_when_the_peer_never_answers() {
    within(LIMIT, || {
        run_on(2, || {
            // A listener that never accepts, with a backlog of 0: once its accept queue is
            // full, the kernel drops new SYNs, and a connect waits for a retransmission.
            let l =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            l.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
                .unwrap();
            l.listen(0).unwrap();
            let addr = l.local_addr().unwrap().as_socket().unwrap();
            let client = caller_loop();
            let mut held = Vec::new();
            let timed_out = (0..64).any(|_| {
                let start = Instant::now();
                match client.dial(addr, Some(Duration::from_millis(300))) {
                    Ok(c) => {
                        held.push(c);
                        false
                    }
                    Err(e) => {
                        assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
                        assert!(start.elapsed() >= Duration::from_millis(250));
                        true
                    }
                }
            });
            assert!(timed_out, "{} dials all connected", held.len());
            drop(l);
        })
    });
}

/// A connection dialed from a plain thread (inside `Runtime::block_on`) has its idle timer
/// armed there: it goes into the heap of the worker that polls the connection, and wakes that
/// worker, parked with no timer to bound its sleep, so the timer fires on time. (Armed in the
/// arming thread's heap, it went to the fallback timer thread; review, session 22.)
#[test]
fn a_dial_from_a_plain_thread_arms_its_idle_timer_on_the_worker() {
    within(LIMIT, || {
        let rt = gorust::Runtime::builder().workers(1).build().unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        // The peer: reads until the dialed connection closes, and says when.
        let peer = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut rest = Vec::new();
            let end = s.read_to_end(&mut rest).map(|_| Instant::now());
            (end, rest)
        });
        let idle = Duration::from_millis(100);
        let client = EventLoop::builder()
            .on_request(|_, _| Ok(()))
            .idle_timeout(Some(idle))
            .build()
            .unwrap();
        let dialed = Instant::now();
        let conn = rt.block_on(async { client.dial(addr, DIAL) }).unwrap();
        assert_eq!(
            rt.metrics().workers[0].timers,
            1,
            "the idle timer is on the worker"
        );
        let (end, rest) = peer.join().unwrap();
        let end = end.expect("the idle connection was not closed within 10 s");
        assert!(rest.is_empty());
        assert!(
            end - dialed >= idle - Duration::from_millis(20),
            "closed early"
        );
        drop(conn);
    });
}

/// A counting echo server: (loop, address, connections accepted, connections gone).
fn counting_server(
    idle: Option<Duration>,
) -> (EventLoop, SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let accepted = Arc::new(AtomicUsize::new(0));
    let a = accepted.clone();
    let (el, addr, gone) = echo_loop(move |b| {
        b.idle_timeout(idle).on_prepare(move |_| {
            a.fetch_add(1, SeqCst);
            Ok(())
        })
    });
    (el, addr, accepted, gone)
}

#[test]
fn pool_reuses_an_idle_connection() {
    within(LIMIT, || {
        run_on(2, || {
            let (_server, addr, accepted, _) = counting_server(None);
            let client = caller_loop();
            let pool = Pool::builder(&client, addr).build();
            let c = pool.get().unwrap();
            let (id, port) = (c.id(), c.local_addr().unwrap().port());
            assert_eq!(echo_call(&c, b"one").unwrap(), b"one");
            pool.put(c);
            assert_eq!(pool.idle_len(), 1);
            for _ in 0..10 {
                let c = pool.get().unwrap();
                assert_eq!((c.id(), c.local_addr().unwrap().port()), (id, port));
                assert_eq!(echo_call(&c, b"again").unwrap(), b"again");
                pool.put(c);
            }
            assert_eq!(accepted.load(SeqCst), 1, "one connection dialed");
        })
    });
}

#[test]
fn pool_caps_idle_connections() {
    within(LIMIT, || {
        run_on(2, || {
            let (server, addr, accepted, gone) = counting_server(None);
            let client = caller_loop();
            let pool = Pool::builder(&client, addr).max_idle(2).build();
            let conns: Vec<ClientConn> = (0..5).map(|_| pool.get().unwrap()).collect();
            // A dial returns once connected, maybe before the server's accept.
            eventually("five accepted", || accepted.load(SeqCst) == 5);
            let ids: Vec<u64> = conns.iter().map(|c| c.id()).collect();
            for c in conns {
                pool.put(c);
            }
            assert_eq!(pool.idle_len(), 2);
            eventually("the three over the cap closed", || {
                gone.load(SeqCst) == 3 && server.connections() == 2
            });
            // The newest two were kept, newest first.
            assert_eq!(pool.get().unwrap().id(), ids[4]);
            assert_eq!(pool.get().unwrap().id(), ids[3]);
        })
    });
}

#[test]
fn pool_reaper_closes_connections_idle_too_long() {
    within(LIMIT, || {
        run_on(2, || {
            let (server, addr, _, gone) = counting_server(None);
            let client = caller_loop();
            let pool = Pool::builder(&client, addr)
                .idle_timeout(Some(Duration::from_millis(1500)))
                .build();
            let a = pool.get().unwrap();
            let b = pool.get().unwrap();
            pool.put(a);
            // Margins of 700-800 ms each way, for a loaded machine: `a` is not reaped yet
            // when `b` comes back, and the 2 ms polls below see the count at 1 in between.
            gorust::time::sleep(Duration::from_millis(700));
            pool.put(b);
            assert_eq!(pool.idle_len(), 2);
            // No `get` is made: the reaper alone closes them, the older one first.
            eventually("the older one reaped", || pool.idle_len() == 1);
            eventually("both reaped", || pool.idle_len() == 0);
            eventually("the server saw both close", || {
                gone.load(SeqCst) == 2 && server.connections() == 0
            });
            // The reaper starts again for the next idle connection.
            let c = pool.get().unwrap();
            pool.put(c);
            eventually("reaped again", || pool.idle_len() == 0);
        })
    });
}

/// A connection dialed on another loop may be put into a pool whose own loop has never
/// served or dialed: its reaper runs on the connection's runtime. Before, `put` panicked on
/// the pool loop's unset runtime (review, session 30).
#[test]
fn a_pool_takes_a_connection_dialed_on_another_loop() {
    within(LIMIT, || {
        run_on(2, || {
            let (server, addr, _, gone) = counting_server(None);
            let unused = caller_loop();
            let pool = Pool::builder(&unused, addr)
                .idle_timeout(Some(Duration::from_millis(100)))
                .build();
            let other = caller_loop();
            pool.put(other.dial(addr, DIAL).unwrap());
            assert_eq!(pool.idle_len(), 1);
            eventually("reaped", || pool.idle_len() == 0);
            eventually("the server saw it close", || {
                gone.load(SeqCst) == 1 && server.connections() == 0
            });
        })
    });
}

/// A dialed connection closed gracefully while its `ClientConn` is still held does not hold
/// up the loop's shutdown: its socket lingers only once the handle goes. Before, the shutdown
/// counted it as lingering from the close and waited out its whole grace for a handle it
/// could not drop (review, session 28).
#[test]
fn a_held_client_conn_closed_gracefully_does_not_hold_up_shutdown() {
    within(LIMIT, || {
        run_on(2, || {
            let (_server, addr, _, _) = counting_server(None);
            let client = caller_loop();
            let conn = client.dial(addr, DIAL).unwrap();
            conn.call(|c, _| {
                c.close();
                Ok(())
            })
            .unwrap();
            let started = Instant::now();
            client.shutdown(Duration::from_secs(10));
            let took = started.elapsed();
            assert!(took < Duration::from_secs(5), "the shutdown took {took:?}");
            drop(conn);
        })
    });
}

/// `Duration::MAX` as a pool's idle timeout means "never": the connection stays, and no
/// reaper runs. Before, the reaper's deadline overflowed and it panicked, leaving `reaping`
/// set for good (review, session 28); then it slept for good on a timer, a parked goroutine
/// left behind by every such pool (review, session 31).
#[test]
fn a_pool_idle_timeout_of_duration_max_never_expires() {
    within(LIMIT, || {
        let rt = gorust::Runtime::builder().workers(1).build().unwrap();
        let (server, client, pool, first) = rt
            .go(|| {
                let (server, addr, _, _) = counting_server(None);
                let client = caller_loop();
                let pool = Pool::builder(&client, addr)
                    .idle_timeout(Some(Duration::MAX))
                    .build();
                let c = pool.get().unwrap();
                let first = c.id();
                pool.put(c);
                (server, client, pool, first)
            })
            .join()
            .unwrap();
        let pool = rt
            .go(move || {
                gorust::time::sleep(Duration::from_millis(100));
                let c = pool.get().unwrap();
                assert_eq!(c.id(), first, "the idle connection was kept");
                pool
            })
            .join()
            .unwrap();
        assert_eq!(
            rt.metrics().workers[0].timers,
            0,
            "no reaper asleep on a timer"
        );
        drop((pool, client, server));
    });
}

/// Dropping a pool ends its reaper at once. Before, the reaper slept until the oldest idle
/// connection would have expired (an hour here; 30 s by default), a parked goroutine and a
/// timer left behind by every dropped pool.
#[test]
fn a_dropped_pool_ends_its_reaper_at_once() {
    within(LIMIT, || {
        let rt = gorust::Runtime::builder().workers(1).build().unwrap();
        let (server, addr, client) = rt
            .go(|| {
                let (server, addr, _, _) = counting_server(None);
                (server, addr, caller_loop())
            })
            .join()
            .unwrap();
        // The loops' own goroutines (the server's listener).
        let before = rt.num_goroutines();
        let c2 = client.clone();
        rt.go(move || {
            let pool = Pool::builder(&c2, addr)
                .idle_timeout(Some(Duration::from_secs(3600)))
                .build();
            let c = pool.get().unwrap();
            pool.put(c);
            gorust::time::sleep(Duration::from_millis(50));
            let m = gorust::metrics().unwrap();
            assert_eq!(m.workers[0].timers, 1, "the reaper sleeps");
        })
        .join()
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while rt.metrics().workers[0].timers != 0 || rt.num_goroutines() != before {
            assert!(
                std::time::Instant::now() < deadline,
                "the reaper still sleeps: {} goroutines, {} timers",
                rt.num_goroutines(),
                rt.metrics().workers[0].timers
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        drop((client, server));
    });
}

#[test]
fn pool_never_hands_out_a_connection_the_peer_closed() {
    within(LIMIT, || {
        run_on(2, || {
            // The server closes connections idle for 1 s: long enough that a call made at
            // once ends before it, on a loaded machine too (100 ms before session 29).
            let (_server, addr, accepted, gone) = counting_server(Some(Duration::from_secs(1)));
            let client = caller_loop();
            let pool = Pool::builder(&client, addr).build();
            let c = pool.get().unwrap();
            let first = c.id();
            assert_eq!(echo_call(&c, b"hi").unwrap(), b"hi");
            pool.put(c);
            eventually("the server closed it", || gone.load(SeqCst) == 1);
            let c = pool.get().unwrap();
            assert_ne!(c.id(), first, "a closed connection was handed out");
            assert_eq!(echo_call(&c, b"fresh").unwrap(), b"fresh");
            eventually("a second one accepted", || accepted.load(SeqCst) == 2);
            // Put back after the peer closed it: dropped, not kept.
            gorust::time::sleep(Duration::from_millis(50));
            eventually("the server closed the second", || gone.load(SeqCst) == 2);
            eventually("the client saw it", || !c.is_reusable());
            pool.put(c);
            assert_eq!(pool.idle_len(), 0);
        })
    });
}

#[test]
fn a_call_that_fails_closes_its_connection_and_later_calls_say_closed() {
    within(LIMIT, || {
        run_on(2, || {
            let (server, addr, gone) = echo_loop(|b| b);
            let client = EventLoop::builder()
                .read_timeout(Some(Duration::from_millis(100)))
                .on_request(|_, _| Ok(()))
                .build()
                .unwrap();
            let c = client.dial(addr, DIAL).unwrap();
            // Waits for more than the server will send: TimedOut, and the connection closes.
            let e = c
                .call(|c, _| {
                    c.writer().write_bytes(b"abc");
                    c.flush()?;
                    c.wait_input(10)
                })
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
            assert!(!c.is_active());
            let e = echo_call(&c, b"x").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotConnected, "{e}");
            assert!(c.send(b"x").is_err());
            eventually("server side closed", || {
                gone.load(SeqCst) == 1 && server.connections() == 0
            });
            eventually("client side disconnected", || client.connections() == 0);
        })
    });
}

/// A call that flushed part of a request and then failed resets the connection: the peer
/// must not read the part, then a FIN, as a whole request. The close is "at once, dropping
/// what `f` wrote"; before, only output still queued made it a reset (review, session 34).
#[test]
fn a_failed_call_that_flushed_part_of_a_request_resets_the_connection() {
    within(LIMIT, || {
        run_on(2, || {
            let l = gorust::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let server = gorust::go(move || {
                let (mut s, _) = l.accept().unwrap();
                let mut got = Vec::new();
                let r = s.read_to_end(&mut got);
                (r.map_err(|e| e.kind()), got)
            });
            let client = caller_loop();
            let c = client.dial(addr, DIAL).unwrap();
            let e = c
                .call(|c, _| {
                    c.writer().write_bytes(b"PUT 10\r\nhalf");
                    c.flush()?;
                    Err::<(), _>(std::io::Error::other("the rest cannot be made"))
                })
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Other, "{e}");
            let (r, got) = server.join().unwrap();
            assert_eq!(r, Err(ErrorKind::ConnectionReset), "read {got:?}");
        })
    });
}

/// A `send` from another goroutine while a `call_timeout` runs waits for room by the loop's
/// write timeout (none here), not by the call's deadline, which bounds the call alone. It
/// failed with `TimedOut` at the call's deadline (review, session 34).
#[test]
fn a_send_past_the_output_limit_is_not_bounded_by_anothers_call_timeout() {
    within(LIMIT, || {
        run_on(2, || {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let client = EventLoop::builder()
                .output_limit(1)
                .on_request(|_, _| Ok(()))
                .build()
                .unwrap();
            let c = Arc::new(client.dial(addr, DIAL).unwrap());
            let (mut peer, _) = l.accept().unwrap();
            let in_call = Arc::new(AtomicUsize::new(0));
            let call = {
                let (c, in_call) = (c.clone(), in_call.clone());
                gorust::go(move || {
                    // Holds the claim past its 100 ms deadline without waiting on the
                    // connection, then returns normally.
                    c.call_timeout(Duration::from_millis(100), |_, _| {
                        in_call.store(1, SeqCst);
                        gorust::time::sleep(Duration::from_millis(400));
                        Ok(())
                    })
                })
            };
            eventually("the call runs", || in_call.load(SeqCst) == 1);
            // More than the socket buffers take, with nobody reading: it waits for room.
            const N: usize = 32 << 20;
            let sender = {
                let c = c.clone();
                gorust::go(move || c.send(&vec![7u8; N]))
            };
            gorust::time::sleep(Duration::from_millis(600));
            let reader = std::thread::spawn(move || {
                let mut got = 0;
                let mut buf = vec![0u8; 1 << 16];
                while got < N {
                    match peer.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got += n,
                    }
                }
                got
            });
            call.join().unwrap().unwrap();
            sender.join().unwrap().unwrap();
            assert_eq!(reader.join().unwrap(), N);
        })
    });
}

/// A call is a handler run to the idle timer: the connection is not idle during it, and its
/// idle time starts when the call returns, even if the call moved no bytes (review, session
/// 34: counted from the last read or write, a 5 s call closed the connection 1 s after it).
#[test]
fn idle_time_starts_when_a_long_call_returns() {
    within(LIMIT, || {
        run_on(2, || {
            let (_server, addr, _gone) = echo_loop(|b| b);
            let client = EventLoop::builder()
                .idle_timeout(Some(Duration::from_secs(2)))
                .on_request(|_, _| Ok(()))
                .build()
                .unwrap();
            let c = client.dial(addr, DIAL).unwrap();
            c.call(|_, _| {
                gorust::time::sleep(Duration::from_secs(5));
                Ok(())
            })
            .unwrap();
            let end = Instant::now();
            gorust::time::sleep(Duration::from_millis(1300));
            assert!(
                c.is_active(),
                "closed {:?} after the call returned, with a 2 s idle timeout",
                end.elapsed()
            );
            assert_eq!(echo_call(&c, b"still here").unwrap(), b"still here");
        })
    });
}

#[test]
fn call_timeout_bounds_the_wait_for_a_reply_and_for_a_busy_handler() {
    within(LIMIT, || {
        run_on(2, || {
            // The server greets, then answers nothing.
            let server = EventLoop::builder()
                .on_connect(|c| {
                    c.writer().write_bytes(b"hi");
                })
                .on_request(|_, _| Ok(()))
                .build()
                .unwrap();
            let (addr, _) = common::start(&server);
            // The client's handler takes 500 ms over the greeting.
            let running = Arc::new(AtomicUsize::new(0));
            let r = running.clone();
            let client = EventLoop::builder()
                .on_request(move |c, _| {
                    c.reader().skip(2)?;
                    r.fetch_add(1, SeqCst);
                    gorust::time::sleep(Duration::from_millis(500));
                    Ok(())
                })
                .build()
                .unwrap();
            let c = client.dial(addr, DIAL).unwrap();
            eventually("the handler is running", || running.load(SeqCst) == 1);
            let start = Instant::now();
            let e = c
                .call_timeout(Duration::from_millis(100), |_, _| Ok(()))
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
            assert!(start.elapsed() >= Duration::from_millis(90));
            assert!(c.is_active(), "a call that never started leaves it open");
            // Once the handler is done, a call runs; its wait for a reply times out.
            let start = Instant::now();
            let e = c
                .call_timeout(Duration::from_millis(1500), |c, _| c.wait_input(1))
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
            let took = start.elapsed();
            assert!(took >= Duration::from_millis(1400), "{took:?}");
            assert!(!c.is_active(), "a call that failed closes it");
        })
    });
}

#[test]
fn dial_outside_a_runtime_is_an_error() {
    let client = caller_loop();
    let e = client
        .dial("127.0.0.1:9".parse().unwrap(), DIAL)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Other, "{e}");
}

/// The client and the connection handle can move between goroutines.
#[test]
fn client_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ClientConn>();
    send_sync::<Pool>();
    send_sync::<ClientConn<Vec<u8>>>();
}

/// Two goroutines sending past the output limit at once both return when the peer reads:
/// the write that empties the queue wakes both, and the one that does not take the slot's
/// readiness sees the queue below the limit instead of waiting again. It used to park for
/// good, with no write left to wake it (review, session 19).
#[test]
fn concurrent_sends_past_the_output_limit_all_return() {
    const ROUNDS: usize = 8;
    const CHUNK: usize = 1 << 20;
    within(LIMIT, || {
        run_on(2, || {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let peer = std::thread::spawn(move || {
                let (mut s, _) = listener.accept().unwrap();
                // Late, so that both senders of the first round are over the limit.
                std::thread::sleep(Duration::from_millis(100));
                let mut buf = vec![0u8; 1 << 16];
                let mut total = 0;
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    total += n;
                }
                total
            });
            let client = EventLoop::builder()
                .output_limit(64 << 10)
                .on_request(|_, _| Ok(()))
                .build()
                .unwrap();
            let c = Arc::new(client.dial(addr, DIAL).unwrap());
            for round in 0..ROUNDS {
                let senders: Vec<_> = (0..2)
                    .map(|i| {
                        let c = c.clone();
                        gorust::go(move || c.send(&vec![(round * 2 + i) as u8; CHUNK]))
                    })
                    .collect();
                for s in senders {
                    s.join().unwrap().unwrap();
                }
            }
            drop(c);
            assert_eq!(peer.join().unwrap(), ROUNDS * 2 * CHUNK);
        })
    });
}

/// `call_timeout` bounds a `flush` that waits for room too: with no write timeout (the
/// default) and a peer that never reads, the call ended only with the connection (review,
/// session 31: the deadline bounded reads alone).
#[test]
fn call_timeout_bounds_a_flush_waiting_for_room() {
    within(LIMIT, || {
        run_on(2, || {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            // Accepts and never reads.
            let silent = std::thread::spawn(move || l.accept().map(|(s, _)| s));
            let client = EventLoop::builder()
                .output_limit(64 << 10)
                .on_request(|_, _| Ok(()))
                .build()
                .unwrap();
            let c = client.dial(addr, DIAL).unwrap();
            let _peer = gorust::blocking(move || silent.join().unwrap().unwrap());
            let big = vec![5u8; 64 << 20];
            let t = std::time::Instant::now();
            let r = c.call_timeout(Duration::from_secs(1), |c, _| {
                c.writer().write_bytes(&big);
                c.flush()
            });
            let took = t.elapsed();
            assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
            assert!(took < Duration::from_secs(10), "{took:?}");
        })
    });
}

/// A pool keeps only connections to its own address: another peer's, put back by mistake,
/// would have been handed out by `get` as one to this pool's (review, session 31).
#[test]
fn a_pool_closes_a_connection_to_another_address() {
    within(LIMIT, || {
        run_on(2, || {
            let (_a, addr_a, _, _) = counting_server(None);
            let (_b, addr_b, _, _) = counting_server(None);
            let client = caller_loop();
            let pool = Pool::builder(&client, addr_a).build();
            pool.put(client.dial(addr_b, DIAL).unwrap());
            assert_eq!(pool.idle_len(), 0);
            pool.put(client.dial(addr_a, DIAL).unwrap());
            assert_eq!(pool.idle_len(), 1);
        })
    });
}

/// A dial after the loop's runtime shut down (from a blocking-pool job that outlived it)
/// fails with an error; it connected, and returned a connection already torn down (review,
/// session 31).
#[test]
fn a_dial_after_the_runtime_shut_down_fails() {
    within(LIMIT, || {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let rt = gorust::Runtime::builder().workers(1).build().unwrap();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let job = rt
            .go(move || {
                let client = caller_loop();
                // Binds the loop to this runtime.
                drop(client.dial(addr, DIAL).unwrap());
                gorust::spawn_blocking(move || {
                    started_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                    client.dial(addr, DIAL).map(|c| c.is_active())
                })
            })
            .join()
            .unwrap();
        // Running, so that the runtime's drop does not cancel it unstarted.
        started_rx.recv().unwrap();
        drop(rt);
        go_tx.send(()).unwrap();
        let r = gorust::block_on(job).expect("the job ran");
        let e = r.unwrap_err();
        assert!(e.to_string().contains("shut down"), "{e}");
        drop(server);
    });
}

/// A reply the peer sent whole before resetting the connection reaches the call: the kernel
/// keeps it readable after the reset. Before, the first event with the error closed the
/// connection after one read (at most the read plan, 4 KiB at first), and the call failed
/// with `ErrClosed` (review, session 31).
#[test]
fn a_reply_sent_before_a_reset_reaches_the_call() {
    const REPLY: usize = 1 << 20;
    within(LIMIT, || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = [0u8; 4];
            s.read_exact(&mut req).unwrap();
            s.write_all(&vec![9u8; REPLY]).unwrap();
            // Everything sent and acknowledged (so queued at the client), then a reset.
            loop {
                let mut queued: libc::c_int = 0;
                // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int.
                unsafe { libc::ioctl(s.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
                if queued == 0 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            socket2::SockRef::from(&s)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        });
        // One worker, kept busy while the reply and the reset arrive: nobody reads meanwhile
        // (the monitor leaves a stuck worker's wakers to it).
        common::run_on(1, move || {
            let client = EventLoop::builder()
                .on_prepare(|p| socket2::SockRef::from(&p.as_fd()).set_recv_buffer_size(4 << 20))
                .on_request(|_, _| Ok(()))
                .build()
                .unwrap();
            let c = client.dial(addr, DIAL).unwrap();
            let got = c.call(|c, _| {
                c.writer().write_bytes(b"req!");
                c.flush()?;
                std::thread::sleep(Duration::from_millis(500));
                c.wait_input(REPLY)?;
                Ok(c.reader().next(REPLY)?.len())
            });
            assert_eq!(got.unwrap(), REPLY);
        });
        server.join().unwrap();
    });
}
