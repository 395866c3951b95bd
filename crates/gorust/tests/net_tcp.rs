//! `gorust::net::{TcpListener, TcpStream}` and Go's net behaviours.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use common::{run_on, within};
use gorust::net::{TcpListener, TcpStream};

fn echo_server() -> (std::net::SocketAddr, gorust::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = gorust::go(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { return };
            gorust::go(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if c.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, h)
}

on_each_config!(echo_many_connections, || {
    let (addr, _server) = echo_server();
    let clients: Vec<_> = (0..200)
        .map(|i| gorust::go(move || common::echo_rounds(addr, i, 20, 0)))
        .collect();
    for c in clients {
        c.join().unwrap();
    }
});

// The longest timeouts wait as long as needed instead of panicking in `Instant + Duration`.
on_each_config!(duration_max_timeouts_connect_and_read, || {
    let (addr, _server) = echo_server();
    let mut c = TcpStream::connect_timeout(&addr, Duration::MAX).unwrap();
    c.set_read_timeout(Some(Duration::MAX)).unwrap();
    c.set_write_timeout(Some(Duration::MAX)).unwrap();
    c.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
});

on_each_config!(large_transfer_both_ways_at_once, || {
    let (addr, _server) = echo_server();
    let s = Arc::new(TcpStream::connect(addr).unwrap());
    const N: usize = 8 << 20;
    let w = s.clone();
    // A read and a write on one stream from two goroutines at the same time.
    let writer = gorust::go(move || {
        let data: Vec<u8> = (0..N).map(|i| (i % 251) as u8).collect();
        (&*w).write_all(&data).unwrap();
    });
    let mut got = vec![0u8; N];
    (&*s).read_exact(&mut got).unwrap();
    writer.join().unwrap();
    assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
});

#[test]
fn read_deadline_times_out_and_keeps_failing_until_moved() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let peer = gorust::go(move || l.accept().unwrap().0);
            let mut c = TcpStream::connect(addr).unwrap();
            let mut server_side = peer.join().unwrap();
            let t = Instant::now();
            c.set_read_deadline(Some(Instant::now() + Duration::from_millis(20)))
                .unwrap();
            let mut buf = [0u8; 8];
            let e = c.read(&mut buf).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
            assert!(t.elapsed() >= Duration::from_millis(20));
            // Still failing, even with data available, until the deadline moves.
            server_side.write_all(b"hi").unwrap();
            queued_to(&c);
            assert_eq!(
                c.read(&mut buf).unwrap_err().kind(),
                std::io::ErrorKind::TimedOut
            );
            c.set_read_deadline(None).unwrap();
            assert_eq!(c.read(&mut buf).unwrap(), 2);
        })
    });
}

#[test]
fn write_timeout_and_deadline_fail_writes_and_keep_the_count() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let (mut c, mut server_side) = pair();

            // A deadline already past fails a write at once, though the send buffer has room.
            c.set_write_deadline(Some(Instant::now() - Duration::from_millis(1)))
                .unwrap();
            assert_eq!(
                c.write(b"x").unwrap_err().kind(),
                std::io::ErrorKind::TimedOut
            );
            c.set_write_deadline(None).unwrap();
            assert_eq!(c.write(b"x").unwrap(), 1);

            // Nobody reads: writes fill the buffers, then one parks and times out. A call
            // cut short after some bytes went out reports them; the next one fails.
            c.set_write_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let chunk = vec![7u8; 256 << 10];
            let mut written = 1;
            let t = Instant::now();
            let err = loop {
                match c.write(&chunk) {
                    Ok(n) => {
                        assert!(n > 0 && n <= chunk.len());
                        written += n;
                    }
                    Err(e) => break e,
                }
                assert!(
                    t.elapsed() < Duration::from_secs(30),
                    "writes never blocked"
                );
            };
            assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
            assert!(t.elapsed() >= Duration::from_millis(50));

            // Every byte reported written arrives, in order.
            c.shutdown(Shutdown::Write).unwrap();
            let mut got = Vec::new();
            server_side.read_to_end(&mut got).unwrap();
            assert_eq!(got.len(), written);
            assert_eq!(got[0], b'x');
            assert!(got[1..].iter().all(|&b| b == 7));
        })
    });
}

#[test]
fn write_all_sends_everything_then_fails_once_the_peer_is_gone() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let (c, s) = pair();
            const N: usize = 4 << 20;
            let reader = gorust::go(move || {
                let mut s = s;
                let mut buf = vec![0u8; 64 << 10];
                let mut total = 0;
                while total < N {
                    let n = s.read(&mut buf).unwrap();
                    assert!(buf[..n].iter().all(|&b| b == 3));
                    total += n;
                }
                total
                // Dropping `s` closes the connection.
            });
            let data = vec![3u8; N];
            // Through `&TcpStream` as well as `TcpStream`: both override `write_all`.
            (&c).write_all(&data[..N / 2]).unwrap();
            let mut c = c;
            c.write_all(&data[N / 2..]).unwrap();
            assert_eq!(reader.join().unwrap(), N);
            let mut failed = None;
            for _ in 0..8 {
                if let Err(e) = c.write_all(&data) {
                    failed = Some(e);
                    break;
                }
            }
            let e = failed.expect("write_all to a closed peer kept succeeding");
            assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                ),
                "{e:?}"
            );
        })
    });
}

#[test]
fn deadline_in_the_past_wakes_a_parked_read_at_once() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let _peer = gorust::go(move || {
                let (s, _) = l.accept().unwrap();
                gorust::time::sleep(Duration::from_secs(5));
                drop(s);
            });
            let c = Arc::new(TcpStream::connect(addr).unwrap());
            let reader = {
                let c = c.clone();
                gorust::go(move || {
                    let t = Instant::now();
                    let e = (&*c).read(&mut [0u8; 8]).unwrap_err();
                    (e.kind(), t.elapsed())
                })
            };
            gorust::time::sleep(Duration::from_millis(30));
            c.set_read_deadline(Some(Instant::now() - Duration::from_secs(1)))
                .unwrap();
            let (kind, waited) = reader.join().unwrap();
            assert_eq!(kind, std::io::ErrorKind::TimedOut);
            // At once: well under a second even on a loaded machine (the peer closes at 5 s).
            assert!(waited < Duration::from_secs(1), "woke after {waited:?}");
        })
    });
}

#[test]
fn read_timeout_like_std() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let _peer = gorust::go(move || {
                let s = l.accept().unwrap();
                gorust::time::sleep(Duration::from_millis(300));
                drop(s);
            });
            let mut c = TcpStream::connect(addr).unwrap();
            assert!(c.set_read_timeout(Some(Duration::ZERO)).is_err());
            c.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
            assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_millis(10)));
            for _ in 0..3 {
                let e = c.read(&mut [0u8; 4]).unwrap_err();
                assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
            }
        })
    });
}

/// A zero-length read or write returns 0 at once, with nothing queued and a deadline passed,
/// as in Go; once the stream is closed it fails with `ErrClosed`, as Go's does (review,
/// session 27: it returned `Ok(0)`).
#[test]
fn zero_length_read_returns_at_once() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let (addr, _server) = echo_server();
            let mut c = TcpStream::connect(addr).unwrap();
            assert_eq!(c.read(&mut []).unwrap(), 0);
            c.set_read_deadline(Some(Instant::now())).unwrap();
            assert_eq!(c.read(&mut []).unwrap(), 0);
            assert_eq!(c.try_read(&mut []).unwrap(), 0);
            assert_eq!(c.write(&[]).unwrap(), 0);
            c.close().unwrap();
            for e in [
                c.read(&mut []).unwrap_err(),
                c.try_read(&mut []).unwrap_err(),
                c.peek(&mut []).unwrap_err(),
                c.write(&[]).unwrap_err(),
                c.try_write(&[]).unwrap_err(),
            ] {
                assert!(gorust::net::is_closed(&e), "{e:?}");
            }
        })
    });
}

#[test]
fn close_from_another_goroutine_wakes_accept_and_read() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let l = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
            let addr = l.local_addr().unwrap();
            let acceptor = {
                let l = l.clone();
                gorust::go(move || l.accept().map(|_| ()))
            };
            gorust::time::sleep(Duration::from_millis(20));
            l.close().unwrap();
            let e = acceptor.join().unwrap().unwrap_err();
            assert!(gorust::net::is_closed(&e), "{e:?}");
            assert_eq!(e.kind(), std::io::ErrorKind::NotConnected);
            assert_eq!(e.to_string(), "use of closed network connection");

            let l2 = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr2 = l2.local_addr().unwrap();
            let _keep = gorust::go(move || {
                let s = l2.accept();
                gorust::time::sleep(Duration::from_secs(2));
                drop(s);
            });
            let c = Arc::new(TcpStream::connect(addr2).unwrap());
            let reader = {
                let c = c.clone();
                gorust::go(move || (&*c).read(&mut [0u8; 4]))
            };
            gorust::time::sleep(Duration::from_millis(20));
            c.close().unwrap();
            let e = reader.join().unwrap().unwrap_err();
            assert!(gorust::net::is_closed(&e), "{e:?}");
            let _ = addr;
        })
    });
}

#[test]
fn half_close_gives_eof_to_the_reader_while_writes_work() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let server = gorust::go(move || {
                let (mut s, _) = l.accept().unwrap();
                let mut all = Vec::new();
                s.read_to_end(&mut all).unwrap(); // ends at the client's FIN
                s.write_all(&all).unwrap(); // still writable after the peer's half-close
                all.len()
            });
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(b"request body").unwrap();
            c.shutdown(Shutdown::Write).unwrap();
            let mut back = Vec::new();
            c.read_to_end(&mut back).unwrap();
            assert_eq!(back, b"request body");
            assert_eq!(server.join().unwrap(), 12);
        })
    });
}

#[test]
fn connection_refused_is_an_error() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let (_held, addr) = common::refused_addr();
            let e = TcpStream::connect(addr).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
        })
    });
}

/// An address string with no port, or a bad one, is `InvalidInput` with std's message, at
/// once and from anywhere: std checks it before resolving, and so does gorust now. It was
/// resolved on the blocking pool first, so a future on a worker got the error that the call
/// would block it instead (review, session 23).
#[test]
fn a_malformed_address_string_is_invalid_input_everywhere() {
    const BAD: [&str; 4] = ["localhost", "localhost:http", "127.0.0.1:65536", "[::1]"];
    fn check(from: &str) {
        for bad in BAD {
            let ours = gorust::net::ToSocketAddrs::to_socket_addrs(bad).unwrap_err();
            let std = std::net::ToSocketAddrs::to_socket_addrs(bad).unwrap_err();
            assert_eq!(
                ours.kind(),
                std::io::ErrorKind::InvalidInput,
                "{bad} {from}: {ours}"
            );
            assert_eq!(ours.to_string(), std.to_string(), "{bad} {from}");
            assert!(TcpStream::connect(bad).is_err());
        }
    }
    check("a plain thread");
    within(Duration::from_secs(60), || {
        run_on(1, || {
            check("a goroutine");
            gorust::block_on(gorust::spawn(async { check("a future") })).unwrap();
        })
    });
}

#[test]
fn works_from_plain_threads_outside_the_runtime() {
    within(Duration::from_secs(60), || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = [0u8; 5];
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
        });
        let mut c = TcpStream::connect(("127.0.0.1", addr.port())).unwrap();
        c.write_all(b"hello").unwrap();
        let mut b = [0u8; 5];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hello");
        t.join().unwrap();
    });
}

/// `write_all` through `poll_write`.
async fn poll_write_all(c: &TcpStream, msg: &[u8]) {
    let mut sent = 0;
    while sent < msg.len() {
        sent += std::future::poll_fn(|cx| c.poll_write(cx, &msg[sent..]))
            .await
            .unwrap();
    }
}

/// `read_exact` through `poll_read`.
async fn poll_read_exact(c: &TcpStream, buf: &mut [u8]) {
    let mut got = 0;
    while got < buf.len() {
        let n = std::future::poll_fn(|cx| c.poll_read(cx, &mut buf[got..]))
            .await
            .unwrap();
        assert!(n > 0, "the echo server closed early");
        got += n;
    }
}

#[test]
fn futures_use_the_poll_methods() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let (addr, _server) = echo_server();
            let c = TcpStream::connect(addr).unwrap();
            let out = gorust::block_on(gorust::spawn(async move {
                poll_write_all(&c, b"async").await;
                let mut buf = [0u8; 5];
                poll_read_exact(&c, &mut buf).await;
                buf
            }))
            .unwrap();
            assert_eq!(&out, b"async");
        })
    });
}

/// `poll_accept` from a future: each connection is accepted after the last one drained the
/// listener's queue, so every accept but the first waits for a new edge, and a parked accept
/// wakes when the next client connects.
#[test]
fn a_future_accepts_with_poll_accept() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let acceptor = gorust::spawn(async move {
                let mut peers = Vec::new();
                for _ in 0..3 {
                    let (c, peer) = std::future::poll_fn(|cx| l.poll_accept(cx)).await.unwrap();
                    assert_eq!(c.peer_addr().unwrap(), peer);
                    poll_write_all(&c, b"hi").await;
                    peers.push(peer);
                }
                peers
            });
            let mut locals = Vec::new();
            for _ in 0..3 {
                // Each client connects only after the acceptor had time to drain and park.
                gorust::time::sleep(Duration::from_millis(20));
                let mut c = TcpStream::connect(addr).unwrap();
                let mut hi = [0u8; 2];
                c.read_exact(&mut hi).unwrap();
                assert_eq!(&hi, b"hi");
                locals.push(c.local_addr().unwrap());
            }
            assert_eq!(gorust::block_on(acceptor).unwrap(), locals);
        })
    });
}

/// `TcpStream::poll_read`'s drained logic: each message is read into the whole 256-byte buffer
/// (what is still missing of it), so a 256-byte message's reads fill the buffer and mark
/// nothing, while the 100- and 7-byte messages' reads come up short and mark the direction
/// drained. Each message is written only after the last was echoed, so every read after a
/// drained one must wait for a new edge: a mark that outlived its edge would hang here.
#[test]
fn async_reads_of_exact_and_short_messages_wait_for_each_edge() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let (addr, _server) = echo_server();
            let c = TcpStream::connect(addr).unwrap();
            let rounds = gorust::block_on(gorust::spawn(async move {
                let mut buf = [0u8; 256];
                let mut rounds = 0;
                for size in [256usize, 256, 256, 100, 256, 7, 256] {
                    let msg: Vec<u8> = (0..size).map(|i| (i + rounds) as u8).collect();
                    poll_write_all(&c, &msg).await;
                    let mut got = 0;
                    while got < size {
                        let n = std::future::poll_fn(|cx| c.poll_read(cx, &mut buf[got..]))
                            .await
                            .unwrap();
                        assert!(n > 0, "the echo server closed early");
                        got += n;
                    }
                    assert_eq!(&buf[..size], &msg[..]);
                    rounds += 1;
                }
                rounds
            }))
            .unwrap();
            assert_eq!(rounds, 7);
        })
    });
}

/// More slices than the kernel takes in one call (1,024): a vectored write sends what the first
/// 1,024 hold and a vectored read fills at most as many, with partial counts as std's do,
/// instead of failing with `EMSGSIZE` or `EINVAL` (review, session 8).
#[test]
fn vectored_calls_past_the_kernels_slice_limit_give_partial_counts() {
    use std::io::{IoSlice, IoSliceMut};
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let (addr, _server) = echo_server();
            let mut c = TcpStream::connect(addr).unwrap();
            let ones = [1u8; 2000];
            let slices: Vec<IoSlice<'_>> = ones.chunks(1).map(IoSlice::new).collect();
            let n = c.write_vectored(&slices).unwrap();
            assert_eq!(n, 1024);
            let mut got = 0;
            while got < n {
                let mut scratch = [0u8; 2000];
                let mut outs: Vec<IoSliceMut<'_>> =
                    scratch.chunks_mut(1).map(IoSliceMut::new).collect();
                let k = c.read_vectored(&mut outs).unwrap();
                assert!(k > 0 && k <= 1024, "{k}");
                assert!(scratch[..k].iter().all(|&b| b == 1));
                got += k;
            }
            assert_eq!(got, n);
        })
    });
}

/// A stream that outlives the runtime it first waited in. In another runtime a call that need
/// not wait still works, and one that must wait fails at once with an error that says why
/// (it used to wait forever: nobody polls the dead runtime's epoll); on a plain thread, which
/// waits in `poll(2)`, it keeps working (review, session 8).
#[test]
fn a_stream_whose_runtime_shut_down_fails_waits_instead_of_hanging() {
    within(Duration::from_secs(60), || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let first = gorust::Runtime::builder().workers(1).build().unwrap();
        let (s, mut peer) = first.run(move || {
            let s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
            let mut b = [0u8; 8];
            let e = (&s).read(&mut b).unwrap_err(); // waited: registered with this runtime
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
            s.set_read_timeout(None).unwrap();
            // A short read last: the read direction is marked drained, and the mark must
            // not outlive the runtime (review, session 31: the call below was skipped).
            let (mut peer, _) = l.accept().unwrap();
            peer.write_all(b"a").unwrap();
            assert_eq!((&s).read(&mut b).unwrap(), 1);
            (s, peer)
        });
        peer.write_all(b"x").unwrap();
        let s = Arc::new(s);
        let s2 = s.clone();
        let second = gorust::Runtime::builder().workers(1).build().unwrap();
        second.run(move || {
            let mut b = [0u8; 8];
            assert_eq!(
                (&*s2).read(&mut b).unwrap(),
                1,
                "data queued: no wait needed"
            );
            let e = (&*s2).read(&mut b).unwrap_err();
            assert!(e.to_string().contains("shut down"), "{e}");
        });
        peer.write_all(b"yz").unwrap();
        let mut b = [0u8; 8];
        assert_eq!((&*s).read(&mut b).unwrap(), 2, "a plain thread still reads");
    });
}

#[test]
fn accessors_and_options() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let (addr, _server) = echo_server();
            let c = TcpStream::connect(addr).unwrap();
            assert_eq!(c.peer_addr().unwrap(), addr);
            assert!(c.local_addr().unwrap().ip().is_loopback());
            c.set_nodelay(true).unwrap();
            assert!(c.nodelay().unwrap());
            c.set_ttl(42).unwrap();
            assert_eq!(c.ttl().unwrap(), 42);
            assert!(c.take_error().unwrap().is_none());
            let mut d = c.try_clone().unwrap();
            d.write_all(b"x").unwrap();
            let mut b = [0u8; 1];
            assert_eq!(c.peek(&mut b).unwrap(), 1);
            assert_eq!((&c).read(&mut b).unwrap(), 1);
        })
    });
}

#[test]
fn futures_io_traits() {
    use futures_io::{AsyncRead, AsyncWrite};
    use std::pin::Pin;
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let (addr, _server) = echo_server();
            let mut c = TcpStream::connect(addr).unwrap();
            let out = gorust::block_on(gorust::spawn(async move {
                let n = std::future::poll_fn(|cx| Pin::new(&mut c).poll_write(cx, b"trait"))
                    .await
                    .unwrap();
                assert_eq!(n, 5);
                let mut buf = [0u8; 5];
                let mut got = 0;
                while got < 5 {
                    got +=
                        std::future::poll_fn(|cx| Pin::new(&mut c).poll_read(cx, &mut buf[got..]))
                            .await
                            .unwrap();
                }
                std::future::poll_fn(|cx| Pin::new(&mut c).poll_close(cx))
                    .await
                    .unwrap();
                buf
            }))
            .unwrap();
            assert_eq!(&out, b"trait");
        })
    });
}

/// The `futures_io` traits on `&TcpStream`: a read and a write run at once through two shared
/// references (the read parks first, and the echo of the write wakes it), and a vectored
/// write sends every slice in one call, where the trait's default sent the first alone.
#[test]
fn futures_io_traits_on_shared_streams_read_while_writing_vectored() {
    use futures_io::{AsyncRead, AsyncWrite};
    use std::io::IoSlice;
    use std::pin::Pin;
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let (addr, _server) = echo_server();
            let c = Arc::new(TcpStream::connect(addr).unwrap());
            let reader = {
                let c = c.clone();
                gorust::spawn(async move {
                    let mut r = &*c;
                    let mut buf = [0u8; 6];
                    let mut got = 0;
                    while got < buf.len() {
                        let n = std::future::poll_fn(|cx| {
                            Pin::new(&mut r).poll_read(cx, &mut buf[got..])
                        })
                        .await
                        .unwrap();
                        assert!(n > 0, "end of stream after {got} bytes");
                        got += n;
                    }
                    buf
                })
            };
            let slices = [
                IoSlice::new(b"a"),
                IoSlice::new(b"bc"),
                IoSlice::new(b"def"),
            ];
            let mut w = &*c;
            let n = gorust::block_on(std::future::poll_fn(|cx| {
                Pin::new(&mut w).poll_write_vectored(cx, &slices)
            }))
            .unwrap();
            assert_eq!(n, 6, "every slice in one call");
            assert_eq!(&reader.join().unwrap(), b"abcdef");
        })
    });
}

/// tokio's traits (feature `tokio-io`, run by `.ci/run`): reads through a `ReadBuf`, and
/// vectored writes forwarded whole.
#[cfg(feature = "tokio-io")]
#[test]
fn tokio_io_traits_read_and_write_vectored() {
    use std::io::IoSlice;
    use std::pin::Pin;
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let (addr, _server) = echo_server();
            let mut c = TcpStream::connect(addr).unwrap();
            assert!(AsyncWrite::is_write_vectored(&c));
            let out = gorust::block_on(gorust::spawn(async move {
                let slices = [IoSlice::new(b"tok"), IoSlice::new(b"io")];
                let n =
                    std::future::poll_fn(|cx| Pin::new(&mut c).poll_write_vectored(cx, &slices))
                        .await
                        .unwrap();
                assert_eq!(n, 5, "every slice in one call");
                let mut buf = [0u8; 5];
                let mut rb = ReadBuf::new(&mut buf);
                while rb.filled().len() < 5 {
                    let before = rb.filled().len();
                    std::future::poll_fn(|cx| Pin::new(&mut &c).poll_read(cx, &mut rb))
                        .await
                        .unwrap();
                    assert!(rb.filled().len() > before, "end of stream");
                }
                std::future::poll_fn(|cx| Pin::new(&mut c).poll_shutdown(cx))
                    .await
                    .unwrap();
                buf
            }))
            .unwrap();
            assert_eq!(&out, b"tokio");
        })
    });
}

#[test]
fn a_large_write_completes_in_one_call_or_reports_the_count() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            const N: usize = 16 << 20;
            let reader = gorust::go(move || {
                let (mut s, _) = l.accept().unwrap();
                let mut total = 0;
                let mut buf = vec![0u8; 64 << 10];
                // A slow consumer: the writer must wait for room many times.
                while total < N / 4 {
                    total += s.read(&mut buf).unwrap();
                    gorust::yield_now();
                }
                total
                // Dropping `s` here closes the connection under the writer.
            });
            let mut c = TcpStream::connect(addr).unwrap();
            let data = vec![1u8; N];
            let first = c.write(&data[..N / 4]).unwrap();
            assert_eq!(
                first,
                N / 4,
                "one call writes everything when nothing fails"
            );
            assert_eq!(reader.join().unwrap(), N / 4);
            // The peer is gone: the next large write either reports a partial count (then the
            // following call fails) or fails at once; it never claims to have written it all.
            let mut failed = false;
            for _ in 0..4 {
                match c.write(&data) {
                    Ok(n) => assert!(n < N, "wrote {n} bytes to a closed peer"),
                    Err(e) => {
                        assert!(matches!(
                            e.kind(),
                            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                        ));
                        failed = true;
                        break;
                    }
                }
            }
            assert!(failed);
        })
    });
}

/// A plain thread blocked in an accept, then in a read, keeps waiting through signals (EINTR
/// is retried). One `read`, not `read_exact`, which retries `Interrupted` itself and so passed
/// with the retry gone; and signals during the accept too (review, session 31).
#[test]
fn eintr_is_retried() {
    extern "C" fn on_usr1(_: libc::c_int) {}
    within(Duration::from_secs(60), || {
        // SAFETY: installs a no-op handler without SA_RESTART, so blocking calls see EINTR.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_usr1 as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
        }
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            // SAFETY: pthread_self has no preconditions.
            tid_tx.send(unsafe { libc::pthread_self() }).unwrap();
            let (mut s, _) = l.accept()?;
            let mut b = [0u8; 3];
            let n = s.read(&mut b)?;
            Ok::<_, std::io::Error>(b[..n].to_vec())
        });
        let tid = tid_rx.recv().unwrap();
        let interrupt = || {
            for _ in 0..20 {
                std::thread::sleep(Duration::from_millis(5));
                // SAFETY: the thread is alive until it has read the bytes not sent yet.
                unsafe { libc::pthread_kill(tid, libc::SIGUSR1) };
            }
        };
        interrupt();
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        interrupt();
        c.write_all(b"abc").unwrap();
        assert_eq!(reader.join().unwrap().unwrap(), b"abc");
    });
}

#[test]
fn close_wakes_a_parked_write() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            // The peer accepts but never reads, so the writer fills both socket buffers and
            // parks.
            let peer = gorust::go(move || {
                let s = l.accept().unwrap();
                gorust::time::sleep(Duration::from_secs(3));
                drop(s);
            });
            let c = Arc::new(TcpStream::connect(addr).unwrap());
            let writer = common::write_until_error(c.clone());
            gorust::time::sleep(Duration::from_millis(100));
            c.close().unwrap();
            let e = writer.join().unwrap();
            assert!(gorust::net::is_closed(&e), "{e:?}");
            drop(peer);
        })
    });
}

/// A reader and a writer parked on one stream at once (nothing to read; the peer reads
/// nothing, so the send buffer is full): one `close` wakes both, each with `ErrClosed`. The
/// two directions' wait slots are woken by the same close.
#[test]
fn close_wakes_a_parked_reader_and_a_parked_writer_together() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let (c, _peer) = pair();
            let c = Arc::new(c);
            let reader = {
                let c = c.clone();
                gorust::go(move || (&*c).read(&mut [0u8; 64]).unwrap_err())
            };
            let writer = common::write_until_error(c.clone());
            gorust::time::sleep(Duration::from_millis(200));
            c.close().unwrap();
            for (who, e) in [
                ("reader", reader.join().unwrap()),
                ("writer", writer.join().unwrap()),
            ] {
                assert!(gorust::net::is_closed(&e), "{who}: {e:?}");
            }
        })
    });
}

#[test]
fn accepted_sockets_are_non_blocking_and_close_on_exec() {
    use std::os::fd::AsRawFd;
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let _c = TcpStream::connect(addr).unwrap();
            let (s, _) = l.accept().unwrap();
            let fd = s.as_raw_fd();
            // SAFETY: fcntl queries on a descriptor we own.
            let (fl, fdfl) = unsafe {
                (
                    libc::fcntl(fd, libc::F_GETFL),
                    libc::fcntl(fd, libc::F_GETFD),
                )
            };
            assert!(fl & libc::O_NONBLOCK != 0, "accept4(SOCK_NONBLOCK)");
            assert!(fdfl & libc::FD_CLOEXEC != 0, "accept4(SOCK_CLOEXEC)");
        })
    });
}

/// A client that resets its connection while it waits in the listen queue (Linux hands it to
/// `accept` and the first read fails with `ConnectionReset`; BSDs fail the accept with
/// `ECONNABORTED`, which `accept` retries): either way the listener goes on serving, and the
/// next client is accepted and served.
#[test]
fn a_client_reset_while_queued_does_not_stop_the_listener() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            // Queue a connection and reset it before anything accepts it.
            let doomed =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            doomed.connect(&addr.into()).unwrap();
            doomed.set_linger(Some(Duration::ZERO)).unwrap();
            drop(doomed); // RST
            let mut good = TcpStream::connect(addr).unwrap();
            good.write_all(b"still here").unwrap();

            let mut served = None;
            for _ in 0..2 {
                let (mut c, _) = l.accept().expect("accept survives a reset client");
                let mut buf = [0u8; 32];
                match c.read(&mut buf) {
                    Ok(n) if n > 0 => served = Some(buf[..n].to_vec()),
                    Ok(_) => {}
                    Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
                }
                if served.is_some() {
                    break;
                }
            }
            assert_eq!(served.as_deref(), Some(&b"still here"[..]));
        })
    });
}

/// Data and the FIN both arrive before the reader runs: the first read returns the data (fewer
/// bytes than asked), and the next must return `Ok(0)` at once, not wait for an edge that came
/// before the first read.
#[test]
fn data_then_fin_before_the_read_gives_the_data_then_eof() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            for round in 0..20 {
                let mut c = TcpStream::connect(addr).unwrap();
                let (mut s, _) = l.accept().unwrap();
                // Make the server socket wait once so that it is registered with the poller.
                s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
                let mut buf = [0u8; 64];
                assert!(s.read(&mut buf).is_err());
                s.set_read_timeout(None).unwrap();
                c.write_all(b"hello").unwrap();
                c.shutdown(Shutdown::Write).unwrap();
                // Let both segments arrive (and the poller see their edges) before reading.
                gorust::time::sleep(Duration::from_millis(5));
                let mut got = Vec::new();
                loop {
                    match s.read(&mut buf).unwrap() {
                        0 => break,
                        n => got.extend_from_slice(&buf[..n]),
                    }
                }
                assert_eq!(got, b"hello", "round {round}");
            }
        })
    });
}

/// Reads that fill the buffer exactly cannot tell whether more is queued, and the next read
/// tries: no byte is lost and no read waits for data that is already there.
#[test]
fn exact_buffer_reads_lose_nothing_and_never_wait_for_queued_data() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let client = gorust::go(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                c.set_nodelay(true).unwrap();
                let pause = || gorust::time::sleep(Duration::from_millis(5));
                c.write_all(&[1u8; 4096]).unwrap(); // exactly one buffer
                pause();
                c.write_all(&[2u8; 4096]).unwrap(); // again
                pause();
                c.write_all(&[3u8; 8192]).unwrap(); // two buffers at once: the first read leaves 4096
                pause();
                c.write_all(&[4u8; 10]).unwrap(); // a short one after an exact read
                pause();
                c.write_all(&[5u8; 4096]).unwrap();
                c.shutdown(Shutdown::Write).unwrap(); // then EOF
            });
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            loop {
                match s.read(&mut buf).unwrap() {
                    0 => break,
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
            client.join().unwrap();
            let mut want = Vec::new();
            for (b, n) in [(1u8, 4096), (2, 4096), (3, 8192), (4, 10), (5, 4096)] {
                want.extend(std::iter::repeat_n(b, n));
            }
            assert_eq!(got.len(), want.len());
            assert!(got == want, "bytes arrived out of order or changed");
        })
    });
}

/// A connected pair: (client, server side). Inside the runtime, or on a plain thread (the
/// calls block it).
fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

/// Reads with `try_read` until `WouldBlock`, waiting in `readable` between attempts; counts the
/// `WouldBlock`s (a `readable` that returned for nothing). A few are tolerated; more than
/// `SPIN` in one call fails the test: `readable` returning at once for ever (spinning instead
/// of parking) would otherwise pass every test that waits here.
fn read_when_ready(s: &TcpStream, buf: &mut [u8], spurious: &mut usize) -> std::io::Result<usize> {
    const SPIN: usize = 100;
    let mut here = 0;
    loop {
        s.readable()?;
        match s.try_read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                *spurious += 1;
                here += 1;
                assert!(
                    here <= SPIN,
                    "readable returned {here} times with nothing to read"
                );
            }
            r => return r,
        }
    }
}

/// Whether `f` (run in a goroutine) is still parked 100 ms after the goroutine called it (it
/// says so just before the call: a goroutine that had not started yet would look parked);
/// then `release` runs and `f`'s result is returned.
fn parks_until<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
    release: impl FnOnce(),
) -> (bool, R) {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let entered = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let (e2, d2) = (entered.clone(), done.clone());
    let h = gorust::go(move || {
        e2.store(true, SeqCst);
        let r = f();
        d2.store(true, SeqCst);
        r
    });
    common::eventually("the goroutine calls f", || entered.load(SeqCst));
    gorust::time::sleep(Duration::from_millis(100));
    let parked = entered.load(SeqCst) && !done.load(SeqCst);
    release();
    (parked, h.join().unwrap())
}

/// `try_read` on an empty socket fails at once with `WouldBlock`, and that makes the next
/// `readable` park until data arrives, whether or not the socket was registered with the
/// poller before; the `try_read` after it gets the data.
#[test]
fn readable_parks_after_would_block_until_data_arrives() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            for registered_first in [false, true] {
                let (mut c, s) = pair();
                if registered_first {
                    // A read that times out registers the socket with the poller (a first
                    // `readable` would return at once: nothing has shown it drained yet).
                    s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
                    let e = (&s).read(&mut [0u8; 8]).unwrap_err();
                    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
                    s.set_read_timeout(None).unwrap();
                }
                let mut buf = [0u8; 64];
                let e = s.try_read(&mut buf).unwrap_err();
                assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
                let s = Arc::new(s);
                let s2 = s.clone();
                let (parked, got) = parks_until(
                    move || {
                        let mut buf = [0u8; 64];
                        let mut spurious = 0;
                        let n = read_when_ready(&s2, &mut buf, &mut spurious).unwrap();
                        buf[..n].to_vec()
                    },
                    || c.write_all(b"ping").unwrap(),
                );
                assert!(
                    parked,
                    "readable returned with nothing to read (registered first: {registered_first})"
                );
                assert_eq!(got, b"ping");
            }
        })
    });
}

/// A short `try_read` drains the socket: the next `readable` parks until more data comes.
#[test]
fn readable_parks_after_a_short_read() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let (mut c, s) = pair();
            c.write_all(b"first").unwrap();
            let mut buf = [0u8; 64];
            let mut spurious = 0;
            assert_eq!(read_when_ready(&s, &mut buf, &mut spurious).unwrap(), 5);
            let s = Arc::new(s);
            let s2 = s.clone();
            let (parked, n) = parks_until(
                move || {
                    let mut buf = [0u8; 64];
                    let mut spurious = 0;
                    read_when_ready(&s2, &mut buf, &mut spurious).unwrap()
                },
                || c.write_all(b"second").unwrap(),
            );
            assert!(
                parked,
                "readable returned after a short read with nothing new"
            );
            assert_eq!(n, 6);
        })
    });
}

/// The buffer-less echo loop of `readable`'s documentation, over many connections, with
/// messages shorter than the buffer and exactly its size (after a read that fills the buffer,
/// `readable` returns at once and the next `try_read` may find nothing): every byte comes back,
/// a closed peer ends the loop with `Ok(0)`, and `readable` returns for nothing at most about
/// once per read (it does not spin).
#[test]
fn a_readable_try_read_echo_loop_loses_nothing_and_does_not_spin() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            for size in [3000, 4096] {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = l.local_addr().unwrap();
                let server = gorust::go(move || {
                    let mut conns = Vec::new();
                    for _ in 0..50 {
                        let (mut c, _) = l.accept().unwrap();
                        conns.push(gorust::go(move || -> (usize, usize) {
                            let (mut reads, mut spurious) = (0, 0);
                            loop {
                                let mut buf = vec![0u8; 4096];
                                match read_when_ready(&c, &mut buf, &mut spurious).unwrap() {
                                    0 => return (reads, spurious),
                                    n => {
                                        c.write_all(&buf[..n]).unwrap();
                                        reads += 1;
                                    }
                                }
                            }
                        }));
                    }
                    conns
                        .into_iter()
                        .map(|h| h.join().unwrap())
                        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
                });
                let clients: Vec<_> = (0..50)
                    .map(|_| {
                        gorust::go(move || {
                            let mut s = TcpStream::connect(addr).unwrap();
                            let msg = vec![0x5au8; size];
                            let mut back = vec![0u8; size];
                            for _ in 0..20 {
                                s.write_all(&msg).unwrap();
                                s.read_exact(&mut back).unwrap();
                                assert_eq!(back, msg);
                            }
                        })
                    })
                    .collect();
                for c in clients {
                    c.join().unwrap();
                }
                let (reads, spurious) = server.join().unwrap();
                assert!(reads >= 50 * 20, "{reads} reads");
                // At most about one stale report per read (plus one per connection at the
                // start); a spinning `readable` would make millions.
                assert!(
                    spurious <= reads + 50,
                    "{spurious} WouldBlocks for {reads} reads (size {size})"
                );
            }
        })
    });
}

/// After the peer's FIN, a drained `readable` wakes and `try_read` gives `Ok(0)`; a read
/// timeout bounds `readable` as it bounds `read`.
#[test]
fn readable_wakes_for_fin_and_honours_the_read_timeout() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let (c, s) = pair();
            let mut buf = [0u8; 8];
            assert_eq!(
                s.try_read(&mut buf).unwrap_err().kind(),
                std::io::ErrorKind::WouldBlock
            );
            s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            let e = s.readable().unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
            s.set_read_timeout(None).unwrap();
            let s = Arc::new(s);
            let s2 = s.clone();
            let (parked, n) = parks_until(
                move || {
                    let mut buf = [0u8; 8];
                    let mut spurious = 0;
                    read_when_ready(&s2, &mut buf, &mut spurious).unwrap()
                },
                || c.shutdown(Shutdown::Write).unwrap(),
            );
            assert!(parked);
            assert_eq!(n, 0, "EOF");
        })
    });
}

/// `shutdown(Read)` from another goroutine ends a parked read with `Ok(0)`, end of stream, as
/// the kernel then reports for every read; only `close` gives `ErrClosed` (review, session 8:
/// the documentation promised `ErrClosed` here).
#[test]
fn shutdown_read_ends_a_parked_read_with_eof() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let (_c, s) = pair();
            let s = Arc::new(s);
            let s2 = s.clone();
            let (parked, r) = parks_until(
                move || {
                    let mut buf = [0u8; 8];
                    (&*s2).read(&mut buf)
                },
                || s.shutdown(Shutdown::Read).unwrap(),
            );
            assert!(parked);
            assert_eq!(r.unwrap(), 0, "EOF");
        })
    });
}

/// `close` from another goroutine wakes a goroutine parked in `readable` with an error.
#[test]
fn close_wakes_a_parked_readable() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let (_c, s) = pair();
            let mut buf = [0u8; 8];
            assert!(s.try_read(&mut buf).is_err());
            let s = Arc::new(s);
            let s2 = s.clone();
            let (parked, r) = parks_until(move || s2.readable(), || s.close().unwrap());
            assert!(parked);
            assert!(r.is_err(), "readable after close must fail");
        })
    });
}

/// `try_write` fills the send buffer until `WouldBlock`; `writable` then parks until the peer
/// reads, and `write_all` after `try_write` still delivers everything.
#[test]
fn try_write_until_full_then_writable_and_write_all() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let (c, mut s) = pair();
            let chunk = [7u8; 16 * 1024];
            let mut sent = 0usize;
            loop {
                match s.try_write(&chunk) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
                assert!(sent < 256 << 20, "the send buffer never filled");
            }
            let reader = gorust::go(move || {
                gorust::time::sleep(Duration::from_millis(50));
                let mut c = c;
                let mut buf = vec![0u8; 64 * 1024];
                let mut got = 0usize;
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
                got
            });
            s.writable().unwrap();
            sent += s.try_write(&chunk).unwrap();
            s.write_all(&[9u8; 1 << 20]).unwrap();
            sent += 1 << 20;
            s.shutdown(Shutdown::Write).unwrap();
            assert_eq!(reader.join().unwrap(), sent);
        })
    });
}

/// On a plain thread (no runtime), `readable` blocks the thread until data arrives.
#[test]
fn readable_works_on_a_plain_thread() {
    within(Duration::from_secs(60), || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            c.write_all(b"x").unwrap();
            c
        });
        let mut buf = [0u8; 4];
        let mut spurious = 0;
        assert_eq!(read_when_ready(&s, &mut buf, &mut spurious).unwrap(), 1);
        drop(writer.join().unwrap());
    });
}

// A socket call that finds its socket ready spends the cooperative budget (128 calls per
// resume or poll), and a spent budget yields: a goroutine or future whose socket never runs dry
// still lets the others on its worker run (Go preempts such a goroutine; tokio spends its
// budget in the same calls). Each test below runs on one worker, queues far more than one
// budget's worth of work on one socket, and records how many calls had completed when a
// goroutine spawned just before the loop first ran. Without the budget it runs only after the
// loop ends.

/// Bytes queued on one socket before each loop: 64 budgets' worth of one-byte calls.
const BURST: usize = 128 * 64;
/// The calls a loop may make before the other goroutine has run: two budgets, with room.
const WITHIN: usize = 2 * 128 + 8;

/// A connected pair with `BURST` bytes queued on the server side, all of them already in its
/// receive queue (`peek` sees them), so that no read below ever waits.
fn pair_with_a_burst_queued() -> (TcpStream, TcpStream) {
    let (c, s) = pair();
    (&c).write_all(&[7u8; BURST]).unwrap();
    let look = std::cell::RefCell::new(vec![0u8; BURST]);
    common::eventually("the burst to be queued", || {
        s.peek(&mut look.borrow_mut()).unwrap() == BURST
    });
    (c, s)
}

/// On one worker: builds the state with `setup`, spawns a goroutine that sets a flag, makes
/// `calls` calls of `step`, and checks that the flag was set within two budgets' worth of them
/// (`what` names the calls in the failure).
fn a_loop_lets_another_goroutine_run<S: 'static>(
    what: &'static str,
    calls: usize,
    setup: fn() -> S,
    step: fn(&S),
) {
    within(Duration::from_secs(60), move || {
        run_on(1, move || {
            let state = setup();
            let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let r2 = ran.clone();
            let other = gorust::go(move || r2.store(true, std::sync::atomic::Ordering::SeqCst));
            let mut seen = None;
            for i in 0..calls {
                step(&state);
                if seen.is_none() && ran.load(std::sync::atomic::Ordering::SeqCst) {
                    seen = Some(i + 1);
                }
            }
            other.join().unwrap();
            let n = seen
                .unwrap_or_else(|| panic!("the other goroutine ran only after all {calls} calls"));
            assert!(n <= WITHIN, "{n} {what} before another goroutine ran");
        })
    });
}

/// Reads one queued byte from `s` with `read` (never a short read, so never a wait).
fn read_one_byte(s: &TcpStream, read: impl FnOnce(&TcpStream, &mut [u8; 1])) {
    let mut byte = [0u8; 1];
    read(s, &mut byte);
    assert_eq!(byte, [7]);
}

#[test]
fn a_reader_whose_socket_never_runs_dry_lets_other_goroutines_run() {
    a_loop_lets_another_goroutine_run("reads", BURST, pair_with_a_burst_queued, |(_, s)| {
        read_one_byte(s, |mut s, byte| s.read_exact(byte).unwrap())
    });
}

#[test]
fn a_readable_try_read_loop_on_a_busy_socket_lets_other_goroutines_run() {
    a_loop_lets_another_goroutine_run("reads", BURST, pair_with_a_burst_queued, |(_, s)| {
        read_one_byte(s, |s, byte| {
            s.readable().unwrap();
            assert_eq!(s.try_read(byte).unwrap(), 1);
        })
    });
}

/// More accepts than one budget. The connects complete in the kernel's backlog, so nothing
/// waits for the runtime, as long as the backlog holds them all.
const CLIENTS: usize = 128 + 32;

#[test]
fn an_accept_loop_under_a_burst_of_clients_lets_other_goroutines_run() {
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096);
    if somaxconn < CLIENTS {
        common::skip(&format!("net.core.somaxconn {somaxconn} < {CLIENTS}"));
        return;
    }
    a_loop_lets_another_goroutine_run(
        "accepts",
        CLIENTS,
        || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let clients: Vec<_> = (0..CLIENTS)
                .map(|_| std::net::TcpStream::connect(addr).unwrap())
                .collect();
            (l, clients)
        },
        |(l, _)| drop(l.accept().unwrap()),
    );
}

/// A writer whose socket always has room (one-byte writes, which the kernel queues or sends
/// at once) never parks either.
#[test]
fn a_writer_whose_socket_always_has_room_lets_other_goroutines_run() {
    a_loop_lets_another_goroutine_run("writes", BURST, pair, |(c, _)| {
        let mut c = c;
        c.write_all(&[7]).unwrap();
    });
}

/// The task's result, or a failure saying `what` if it is still running after 5 s: for waits
/// that end in milliseconds when right and never when wrong.
fn join_within_5s<T: Send + 'static>(task: gorust::JoinHandle<T>, what: &str) -> T {
    let start = Instant::now();
    while !task.is_finished() {
        assert!(start.elapsed() < Duration::from_secs(5), "{what}");
        gorust::time::sleep(Duration::from_millis(5));
    }
    gorust::block_on(task).unwrap()
}

/// Two goroutines parked in `accept`, the first since before the listener was registered, and
/// one edge for two connections: the goroutine woken last runs first (the LIFO slot) and takes
/// the edge, and the other must still find the second connection. It made its first call
/// unregistered, so it waited without the edge count of that call, could not see that the
/// edge had come and gone, and parked again with the connection queued (review, session 21).
#[test]
fn two_accepts_woken_by_one_edge_both_find_their_connection() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let l = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
            let addr = l.local_addr().unwrap();
            let accept = |l: &Arc<TcpListener>| {
                let l = l.clone();
                let h = gorust::go(move || l.accept().map(|(s, _)| s));
                // Let it make its call and park (one worker: it runs now).
                gorust::yield_now();
                h
            };
            let first = accept(&l);
            let second = accept(&l);
            // Two connections queued while the worker runs this goroutine: one edge. (std's
            // blocking connect: loopback completes it from the backlog.)
            let clients: Vec<_> = (0..2)
                .map(|_| std::net::TcpStream::connect(addr).unwrap())
                .collect();
            second.join().unwrap().unwrap();
            join_within_5s(first, "an accept stayed parked with a connection queued").unwrap();
            drop(clients);
        })
    });
}

/// A goroutine and a future polled by `Runtime::block_on` on another thread make their first
/// wait on one stream at the same moment, on a one-worker runtime, so both register it with
/// the same poller. The loser's `epoll_ctl(ADD)` fails with `EEXIST`, which used to be
/// returned from its read (review, session 21). Each round releases both at a barrier; the
/// peer then sends a byte for each.
#[test]
fn first_waits_racing_to_register_one_stream_on_one_poller_both_succeed() {
    use std::sync::Barrier;
    within(Duration::from_secs(120), || {
        let rt = gorust::Runtime::builder().workers(1).build().unwrap();
        for round in 0..2_000 {
            let (c, s) = rt.block_on(rt.go(pair)).unwrap();
            let (s, barrier) = (Arc::new(s), Arc::new(Barrier::new(2)));
            let reader = {
                let (s, barrier) = (s.clone(), barrier.clone());
                rt.go(move || {
                    barrier.wait();
                    let mut byte = [0u8; 1];
                    (&*s).read(&mut byte)
                })
            };
            barrier.wait();
            // One poll: nothing is readable, so it registers and returns `Pending`.
            let mut byte = [0u8; 1];
            let polled = rt.block_on(std::future::poll_fn(|cx| {
                Poll::Ready(match s.poll_read(cx, &mut byte) {
                    Poll::Pending => Ok(0),
                    Poll::Ready(r) => r,
                })
            }));
            (&c).write_all(&[1]).unwrap();
            let read = rt.block_on(reader).unwrap();
            for r in [polled, read] {
                if let Err(e) = r {
                    panic!("round {round}: a first wait failed: {e}");
                }
            }
        }
    });
}

/// A future that waits (`poll_accept`, `poll_read`) past its socket's deadline fails with
/// `TimedOut` when the deadline passes. Nothing woke it before: it stayed pending for ever
/// (review, session 21). A deadline moved later while it waits is the one that counts.
#[test]
fn a_future_waiting_past_its_deadline_fails_with_timed_out() {
    // Deadlines here are 50–150 ms away.
    const LATE: &str = "a future waited past its deadline";
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let l = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
            let addr = l.local_addr().unwrap();
            let start = Instant::now();
            l.set_deadline(Some(start + Duration::from_millis(50)))
                .unwrap();
            let accept = {
                let l = l.clone();
                gorust::spawn(std::future::poll_fn(move |cx| {
                    l.poll_accept(cx).map(|r| r.map(drop))
                }))
            };
            let e = join_within_5s(accept, LATE).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
            assert!(start.elapsed() >= Duration::from_millis(50));

            let c = std::net::TcpStream::connect(addr).unwrap();
            l.set_deadline(None).unwrap();
            let (s, _) = l.accept().unwrap();
            let s = Arc::new(s);
            let start = Instant::now();
            // Margins of hundreds of milliseconds for a loaded machine (50 ms and a move after
            // 20 ms before session 29).
            s.set_read_deadline(Some(start + Duration::from_millis(500)))
                .unwrap();
            let read = {
                let s = s.clone();
                let mut buf = [0u8; 16];
                gorust::spawn(std::future::poll_fn(move |cx| s.poll_read(cx, &mut buf)))
            };
            // Moved later while the future waits (after its first poll).
            gorust::time::sleep(Duration::from_millis(100));
            s.set_read_deadline(Some(start + Duration::from_millis(800)))
                .unwrap();
            let e = join_within_5s(read, LATE).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
            assert!(
                start.elapsed() >= Duration::from_millis(800),
                "the later deadline counts"
            );
            drop(c);
        })
    });
}

/// A goroutine unwinding a panic does not yield on a spent budget: std counts panics per
/// thread, so the goroutines its worker ran meanwhile saw `std::thread::panicking()` (and
/// would poison each std `Mutex` guard they dropped). Here a destructor makes `BURST` ready
/// writes during the unwind; before, it yielded every budget and the watching goroutine saw
/// the panic as its own (review, session 21).
#[test]
fn a_goroutine_unwinding_a_panic_does_not_yield_on_a_spent_budget() {
    struct WritesOnDrop(TcpStream);
    impl Drop for WritesOnDrop {
        fn drop(&mut self) {
            for _ in 0..BURST {
                (&self.0).write_all(&[7]).unwrap();
            }
        }
    }
    within(Duration::from_secs(60), || {
        run_on(1, || {
            common::assert_unwind_does_not_yield(WritesOnDrop(pair().0))
        })
    });
}

/// A future polls `poll_read` on a socket that never runs dry: its poll ends with `Pending`
/// (and its task woken) once the budget is spent, so a task spawned before it gets to run.
#[test]
fn a_future_reading_a_busy_socket_lets_other_tasks_run() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let (_c, s) = pair_with_a_burst_queued();
            let reader = gorust::spawn(async move {
                let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let r2 = ran.clone();
                let other = gorust::spawn(async move {
                    r2.store(true, std::sync::atomic::Ordering::SeqCst);
                });
                let mut seen = None;
                let mut byte = [0u8; 1];
                for i in 0..BURST {
                    let n = std::future::poll_fn(|cx| s.poll_read(cx, &mut byte)).await;
                    assert_eq!(n.unwrap(), 1);
                    if seen.is_none() && ran.load(std::sync::atomic::Ordering::SeqCst) {
                        seen = Some(i + 1);
                    }
                }
                other.await.unwrap();
                seen
            });
            let n = gorust::block_on(reader)
                .unwrap()
                .expect("the other task ran only after every read");
            assert!(n <= WITHIN, "{n} reads before another task ran");
        })
    });
}

/// A future that polls more idle sockets in one poll than its budget allows reaches every one:
/// a poll that ends `Pending` gives its unit back. (Had the first 128 spent the budget, the rest
/// would return `Pending` at once with the task woken, and the task would spin without ever
/// registering for the last socket, whose data would never be read.)
#[test]
fn a_future_polling_many_idle_sockets_reaches_the_last_one_and_sleeps() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            const SOCKETS: usize = 128 + 32;
            let pairs: Vec<(TcpStream, TcpStream)> = (0..SOCKETS).map(|_| pair()).collect();
            let (clients, servers): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
            let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let p2 = polls.clone();
            let reader = gorust::spawn(async move {
                let mut byte = [0u8; 1];
                let i = std::future::poll_fn(|cx| {
                    p2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    for (i, s) in servers.iter().enumerate() {
                        if let std::task::Poll::Ready(r) = s.poll_read(cx, &mut byte) {
                            assert_eq!(r.unwrap(), 1);
                            return std::task::Poll::Ready(i);
                        }
                    }
                    std::task::Poll::Pending
                })
                .await;
                (i, byte)
            });
            gorust::time::sleep(Duration::from_millis(50));
            (&clients[SOCKETS - 1]).write_all(&[9]).unwrap();
            assert_eq!(gorust::block_on(reader).unwrap(), (SOCKETS - 1, [9]));
            // One poll to register everywhere, one for the data; a few spurious ones at most.
            let polls = polls.load(std::sync::atomic::Ordering::SeqCst);
            assert!(
                polls <= 8,
                "{polls} polls: the task spun instead of sleeping"
            );
        })
    });
}

/// A vectored write of more slices than one call passes (1,024) returns the first 1,024's
/// bytes, which is not a short write: the next write goes out at once. The sum of all the
/// slices used to be the measure, so the write marked a socket with room drained, and on a
/// watched socket the next `poll_write` waited for an edge that never came (review, session
/// 19).
#[test]
fn a_vectored_write_past_the_slice_limit_leaves_the_socket_writable() {
    use std::io::IoSlice;
    use std::task::Poll;
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let (a, b) = pair();
            // A write that waits once makes the poller watch the write slot.
            let chunk = vec![1u8; 1 << 16];
            let mut sent = 0usize;
            loop {
                match a.try_write(&chunk) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
            let reader = gorust::go(move || {
                let mut buf = vec![0u8; 1 << 16];
                let mut got = 0;
                while got < sent {
                    got += (&b).read(&mut buf).unwrap();
                }
                b
            });
            a.writable().unwrap();
            let b = reader.join().unwrap();
            let one = [5u8; 1];
            let slices: Vec<IoSlice<'_>> = (0..2_000).map(|_| IoSlice::new(&one)).collect();
            let n = gorust::block_on(std::future::poll_fn(|cx| {
                a.poll_write_vectored(cx, &slices)
            }))
            .unwrap();
            assert_eq!(n, 1_024);
            let next = gorust::block_on(std::future::poll_fn(|cx| {
                Poll::Ready(a.poll_write(cx, &one))
            }));
            assert!(
                matches!(next, Poll::Ready(Ok(1))),
                "the next write waited: {next:?}"
            );
            drop(b);
        })
    });
}

/// Urgent data: the kernel stops a read at the urgent mark, short, with data queued behind
/// it, so that short read must not mark the socket drained. The poller registers `EPOLLPRI`
/// and gives the read slot a final edge for it; before, the reader below got "hello" and then
/// waited for an edge that never came, with "world" queued (review, session 19; tokio, which
/// skips the read after a short one too, has the same gap).
#[test]
fn a_read_after_urgent_data_gets_the_data_behind_it() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let (a, b) = pair();
            let reader = gorust::go(move || {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while got.len() < b"xhelloworld".len() {
                    let n = (&b).read(&mut buf).unwrap();
                    assert!(n > 0, "end of stream after {got:?}");
                    got.extend_from_slice(&buf[..n]);
                }
                got
            });
            // The reader registers, takes "x" (a short read: drained) and parks again.
            (&a).write_all(b"x").unwrap();
            gorust::time::sleep(Duration::from_millis(20));
            // All three arrive while it is parked (one worker: it runs when this one sleeps).
            (&a).write_all(b"hello").unwrap();
            socket2::SockRef::from(&a).send_out_of_band(b"!").unwrap();
            (&a).write_all(b"world").unwrap();
            gorust::time::sleep(Duration::from_millis(20));
            // Without `SO_OOBINLINE` the urgent byte leaves the stream.
            assert_eq!(reader.join().unwrap(), b"xhelloworld");
        })
    });
}

/// Shrinks the kernel's buffers on both ends of a connection, so that a slow reader wakes a
/// parked writer for every few KiB it takes.
fn small_buffers(writer: &TcpStream, reader: &TcpStream) {
    socket2::SockRef::from(writer)
        .set_send_buffer_size(8 << 10)
        .unwrap();
    socket2::SockRef::from(reader)
        .set_recv_buffer_size(16 << 10)
        .unwrap();
}

/// std's write timeout bounds one `write` call as a whole, as `SO_SNDTIMEO` bounds one
/// blocking `send`: with a peer that reads a little now and then, the call returns the count
/// written once the timeout has passed. Before, each wait after some progress got the full
/// timeout again, so the call went on for as long as the peer kept reading (here, minutes).
#[test]
fn a_write_timeout_bounds_the_whole_call_while_the_peer_reads_slowly() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let (c, s) = pair();
            small_buffers(&c, &s);
            let slow = Arc::new(std::sync::atomic::AtomicBool::new(true));
            let reading = slow.clone();
            let reader = gorust::go(move || {
                let mut s = s;
                let mut buf = vec![0u8; 16 << 10];
                let mut total = 0;
                loop {
                    match s.read(&mut buf).unwrap() {
                        0 => return total,
                        n => total += n,
                    }
                    if reading.load(std::sync::atomic::Ordering::SeqCst) {
                        gorust::time::sleep(Duration::from_millis(50));
                    }
                }
            });
            c.set_write_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let big = vec![1u8; 64 << 20];
            let t = Instant::now();
            let n = (&c).write(&big).unwrap();
            let took = t.elapsed();
            slow.store(false, std::sync::atomic::Ordering::SeqCst);
            assert!(n > 0 && n < big.len(), "{n}");
            assert!(took >= Duration::from_millis(300), "{took:?}");
            assert!(took < Duration::from_secs(10), "{took:?}");
            c.shutdown(Shutdown::Write).unwrap();
            assert_eq!(
                reader.join().unwrap(),
                n,
                "every byte reported written arrived"
            );
        })
    });
}

/// A reset that ends a `write` part way: the call returns the count written, and the next
/// write fails with the reset (`ConnectionReset`). The kernel reports a socket error once and
/// then answers `EPIPE`; before, the loop's failing call consumed the reset and the next
/// write said `BrokenPipe`.
#[test]
fn a_reset_that_ends_a_write_part_way_is_the_next_writes_error() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let (c, s) = pair();
            small_buffers(&c, &s);
            // Made before the resetter starts: filling 64 MiB could outlast its wait, and a
            // reset before the first byte fails the write with nothing written.
            let big = vec![1u8; 64 << 20];
            let resetter = gorust::go(move || {
                // Unread data in its receive buffer: closing sends a reset.
                queued_to(&s);
                gorust::time::sleep(Duration::from_millis(100));
                socket2::SockRef::from(&s)
                    .set_linger(Some(Duration::ZERO))
                    .unwrap();
                drop(s);
            });
            let n = (&c).write(&big).unwrap();
            assert!(n > 0 && n < big.len(), "{n}");
            resetter.join().unwrap();
            let e = (&c).write(b"more").unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
            // Reported once, as the kernel does: then the closed socket's own error.
            let e = (&c).write(b"more").unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        })
    });
}

/// `serve` outside a runtime fails at once and accepts nothing: no goroutine could take the
/// connection. Before, it accepted the first connection, then panicked in `go`, dropping it.
#[test]
fn serve_outside_a_runtime_is_an_error_and_accepts_nothing() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let e = gorust::net::serve(&l, |_| ()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::Other, "{e}");
    assert!(e.to_string().contains("inside a gorust runtime"), "{e}");
    // The connection is still queued, and served by a later accept.
    let (mut conn, _) = l.accept().unwrap();
    client.write_all(b"hi").unwrap();
    let mut got = [0u8; 2];
    conn.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hi");
}

/// Waits until bytes are queued to be read on `s` (a peek that neither waits nor consumes),
/// so that a check that a call still fails is made with data there.
fn queued_to(s: &impl std::os::fd::AsRawFd) {
    let t = Instant::now();
    loop {
        let mut b = [0u8; 1];
        // SAFETY: `b` is a live one-byte buffer; MSG_PEEK leaves the byte queued.
        let n = unsafe {
            libc::recv(
                s.as_raw_fd(),
                b.as_mut_ptr().cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if n > 0 {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no data arrived");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A deadline moved into the past wakes a parked write and a parked accept at once, as it
/// does a read: the write returns what it wrote, and the next call fails.
#[test]
fn deadline_in_the_past_wakes_a_parked_write_and_accept() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let (c, server_side) = pair();
            let c = Arc::new(c);
            // Made before the goroutine: 64 MiB of page faults could outlast the pause below,
            // and a deadline set before the first attempt fails it with nothing written.
            let data = vec![1u8; 64 << 20];
            let writer = {
                let c = c.clone();
                gorust::go(move || {
                    let t = Instant::now();
                    ((&*c).write(&data), t.elapsed())
                })
            };
            // Bytes have gone out, and the buffers fill long before 64 MiB: parked.
            queued_to(&server_side);
            gorust::time::sleep(Duration::from_millis(50));
            c.set_write_deadline(Some(Instant::now() - Duration::from_secs(1)))
                .unwrap();
            let (r, waited) = writer.join().unwrap();
            let n = r.unwrap();
            assert!(n > 0 && n < 64 << 20, "{n}");
            assert!(waited < Duration::from_secs(2), "woke after {waited:?}");
            assert_eq!(
                (&*c).write(b"x").unwrap_err().kind(),
                std::io::ErrorKind::TimedOut
            );

            let l = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
            let acceptor = {
                let l = l.clone();
                gorust::go(move || {
                    let t = Instant::now();
                    (l.accept().map(|_| ()), t.elapsed())
                })
            };
            gorust::time::sleep(Duration::from_millis(30));
            l.set_deadline(Some(Instant::now() - Duration::from_secs(1)))
                .unwrap();
            let (r, waited) = acceptor.join().unwrap();
            assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
            assert!(waited < Duration::from_secs(1), "woke after {waited:?}");
        })
    });
}

/// A plain thread (no runtime) blocked in a read is woken by a deadline moved into the past
/// and by `close` from another thread, well within a second.
#[test]
fn a_plain_threads_blocked_read_wakes_for_a_past_deadline_and_for_close() {
    within(Duration::from_secs(60), || {
        let (c, _server_side) = pair();
        let c = Arc::new(c);
        for close in [false, true] {
            let reader = {
                let c = c.clone();
                std::thread::spawn(move || {
                    let t = Instant::now();
                    ((&*c).read(&mut [0u8; 8]), t.elapsed())
                })
            };
            std::thread::sleep(Duration::from_millis(50));
            if close {
                c.close().unwrap();
            } else {
                c.set_read_deadline(Some(Instant::now() - Duration::from_secs(1)))
                    .unwrap();
            }
            let (r, waited) = reader.join().unwrap();
            let e = r.unwrap_err();
            if close {
                assert!(gorust::net::is_closed(&e), "{e:?}");
            } else {
                assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
                c.set_read_deadline(None).unwrap();
            }
            assert!(waited < Duration::from_secs(1), "woke after {waited:?}");
        }
    });
}

/// `connect_timeout` to a listener whose accept queue is full (the kernel drops the SYN, and
/// would resend it after a second) fails with `TimedOut` after the timeout.
#[test]
fn connect_timeout_times_out_on_a_full_accept_queue() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let sock =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            sock.bind(
                &"127.0.0.1:0"
                    .parse::<std::net::SocketAddr>()
                    .unwrap()
                    .into(),
            )
            .unwrap();
            sock.listen(0).unwrap();
            let addr = sock.local_addr().unwrap().as_socket().unwrap();
            let limit = Duration::from_millis(200);
            let mut held = Vec::new();
            // The queue takes one or two connections; the next one's SYN is dropped.
            for _ in 0..8 {
                let t = Instant::now();
                match TcpStream::connect_timeout(&addr, limit) {
                    Ok(c) => held.push(c),
                    Err(e) => {
                        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e:?}");
                        let took = t.elapsed();
                        assert!(took >= limit && took < Duration::from_secs(5), "{took:?}");
                        return;
                    }
                }
            }
            panic!("{} connects completed to a full accept queue", held.len());
        })
    });
}

/// A destructor run by the shutdown (its goroutine unwound on its worker) may wait for a
/// socket through the async face, `block_on` of a `poll_read` (a client library's "read the
/// goodbye"): the worker's thread waits in `poll(2)`, as a blocking read there does. Its waker
/// was left in the slot of an epoll nobody polls any more, and `Runtime`'s drop hung for good
/// (review, session 31).
#[test]
fn a_destructor_at_shutdown_may_read_a_socket_through_a_future() {
    struct ReadsGoodbye(Option<TcpStream>, Arc<std::sync::Mutex<Vec<u8>>>);
    impl Drop for ReadsGoodbye {
        fn drop(&mut self) {
            let s = self.0.take().unwrap();
            let mut b = [0u8; 8];
            let n = gorust::block_on(std::future::poll_fn(|cx| s.poll_read(cx, &mut b)));
            self.1.lock().unwrap().extend_from_slice(&b[..n.unwrap()]);
        }
    }
    within(Duration::from_secs(30), || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let rt = gorust::Runtime::builder().workers(1).build().unwrap();
        let got = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = gorust::sync::mpsc::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let g = got.clone();
        rt.go(move || {
            let s = TcpStream::connect(addr).unwrap();
            // Registered with this worker's poller by a wait.
            s.set_read_deadline(Some(Instant::now() + Duration::from_millis(10)))
                .unwrap();
            assert!((&s).read(&mut [0u8; 8]).is_err());
            s.set_read_deadline(None).unwrap();
            let _guard = ReadsGoodbye(Some(s), g);
            ready_tx.send(()).unwrap();
            let _ = rx.recv();
        });
        let (mut peer, _) = l.accept().unwrap();
        ready_rx.recv().unwrap();
        let goodbye = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            peer.write_all(b"bye").unwrap();
            peer
        });
        std::thread::sleep(Duration::from_millis(20));
        drop(rt);
        drop(tx);
        assert_eq!(&*got.lock().unwrap(), b"bye");
        drop(goodbye.join().unwrap());
    });
}

/// Two goroutines writing to one stream at once: each `write` goes out whole, never
/// interleaved with the other's, as Go's `Write` holds the descriptor's write lock for its
/// whole loop. Before, a write that parked part way let the other's bytes in between.
#[test]
fn concurrent_writes_on_one_stream_do_not_interleave() {
    within(Duration::from_secs(120), || {
        run_on(2, || {
            let (c, s) = pair();
            small_buffers(&c, &s);
            let c = Arc::new(c);
            const N: usize = 4 << 20;
            let writers: Vec<_> = [b'a', b'b', b'c']
                .into_iter()
                .map(|byte| {
                    let c = c.clone();
                    gorust::go(move || (&*c).write_all(&vec![byte; N]).unwrap())
                })
                .collect();
            let mut got = vec![0u8; 3 * N];
            (&s).read_exact(&mut got).unwrap();
            writers.into_iter().for_each(|w| w.join().unwrap());
            common::assert_each_write_whole(&got, N, b"abc");
        })
    });
}

/// A write waiting for another write's lock ends when the stream is closed: the holder, parked
/// on a full send buffer, is woken with `ErrClosed`, and the waiter, once it has the lock,
/// fails the same way. In goroutines and on plain threads outside the runtime (where the wait
/// for the lock blocks the thread).
#[test]
fn close_ends_a_write_waiting_for_another_writes_lock() {
    fn two_writers_then_close(spawn: impl Fn(Box<dyn FnOnce() + Send>)) {
        let (c, s) = pair();
        small_buffers(&c, &s);
        let c = Arc::new(c);
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..2 {
            let (c, tx) = (c.clone(), tx.clone());
            spawn(Box::new(move || {
                tx.send((&*c).write_all(&vec![1u8; 8 << 20])).unwrap();
            }));
        }
        // Both have started (the first fills the buffers and parks, the second waits for the
        // lock), or a close before either would fail them at once: the same result.
        queued_to(&s);
        std::thread::sleep(Duration::from_millis(100));
        c.close().unwrap();
        for _ in 0..2 {
            let e = rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap()
                .unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::NotConnected, "{e}");
        }
    }
    within(Duration::from_secs(60), || {
        two_writers_then_close(|f| drop(std::thread::spawn(f)));
        run_on(2, || {
            two_writers_then_close(|f| drop(gorust::go(f)));
        });
    });
}
