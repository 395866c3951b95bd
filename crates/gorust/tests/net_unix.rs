//! `gorust::net::{UnixListener, UnixStream, UnixDatagram}`.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{run_on, within};
use gorust::net::{UnixDatagram, UnixListener, UnixStream};

fn temp_path(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("gorust-{name}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn stream_echo_over_a_path() {
    let path = temp_path("stream");
    within(Duration::from_secs(60), move || {
        run_on(2, move || {
            let l = UnixListener::bind(&path).unwrap();
            let server = gorust::go(move || {
                let (mut s, _) = l.accept().unwrap();
                let mut buf = [0u8; 5];
                s.read_exact(&mut buf).unwrap();
                s.write_all(&buf).unwrap();
            });
            let mut c = UnixStream::connect(&path).unwrap();
            c.write_all(b"hello").unwrap();
            let mut b = [0u8; 5];
            c.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"hello");
            server.join().unwrap();
            std::fs::remove_file(&path).unwrap();
        })
    });
}

/// Code written for std ports by its import: `for stream in &listener`, and std's address and
/// shutdown types and `to_socket_addrs()?.next()` from `gorust::net` (review of std parity,
/// session 30: the first two did not compile, and the last returned a `Vec`).
#[test]
fn std_shaped_code_compiles_against_gorust_net() {
    use gorust::net::{Shutdown, SocketAddr, ToSocketAddrs};
    let path = temp_path("for-in-listener");
    within(Duration::from_secs(60), move || {
        run_on(2, move || {
            let l = UnixListener::bind(&path).unwrap();
            let server = gorust::go(move || {
                // Two clients, served in turn by the loop.
                for (n, s) in (0..2).zip(&l) {
                    let mut s = s.unwrap();
                    s.write_all(if n == 0 { b"hi" } else { b"yo" }).unwrap();
                    s.shutdown(Shutdown::Write).unwrap();
                }
                let mut served = 0;
                for s in &l {
                    drop(s.unwrap());
                    served += 1;
                    if served == 1 {
                        break;
                    }
                }
            });
            for want in ["hi", "yo", ""] {
                let mut c = UnixStream::connect(&path).unwrap();
                let mut got = String::new();
                c.read_to_string(&mut got).unwrap();
                assert_eq!(got, want);
            }
            server.join().unwrap();
            std::fs::remove_file(&path).unwrap();
            let a: Option<SocketAddr> = ("127.0.0.1", 80).to_socket_addrs().unwrap().next();
            assert_eq!(a, Some("127.0.0.1:80".parse().unwrap()));
        })
    });
}

#[test]
fn pair_half_close_and_close_wakeup() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let (mut a, mut b) = UnixStream::pair().unwrap();
            a.write_all(b"x").unwrap();
            a.shutdown(std::net::Shutdown::Write).unwrap();
            let mut all = Vec::new();
            b.read_to_end(&mut all).unwrap();
            assert_eq!(all, b"x");
            b.write_all(b"y").unwrap();
            let mut one = [0u8; 1];
            a.read_exact(&mut one).unwrap();

            let (c, _d) = UnixStream::pair().unwrap();
            let c = std::sync::Arc::new(c);
            let r = {
                let c = c.clone();
                gorust::go(move || (&*c).read(&mut [0u8; 1]))
            };
            gorust::time::sleep(Duration::from_millis(20));
            c.close().unwrap();
            assert!(gorust::net::is_closed(&r.join().unwrap().unwrap_err()));
            // Calls with nothing to move fail the same way once closed, as in Go.
            assert!(gorust::net::is_closed(&(&*c).read(&mut []).unwrap_err()));
            assert!(gorust::net::is_closed(&(&*c).write(&[]).unwrap_err()));
            assert!(gorust::net::is_closed(&c.try_read(&mut []).unwrap_err()));
        })
    });
}

#[test]
fn datagrams() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let (a, b) = UnixDatagram::pair().unwrap();
            let rx = gorust::go(move || {
                let mut buf = [0u8; 16];
                let n = b.recv(&mut buf).unwrap();
                buf[..n].to_vec()
            });
            gorust::time::sleep(Duration::from_millis(5));
            a.send(b"dgram").unwrap();
            assert_eq!(rx.join().unwrap(), b"dgram");
        })
    });
}

/// `readable` parks until the peer writes; `try_read` and `try_write` never park.
#[test]
fn readable_then_try_read_on_a_pair() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let (a, b) = UnixStream::pair().unwrap();
            let mut buf = [0u8; 16];
            assert_eq!(
                b.try_read(&mut buf).unwrap_err().kind(),
                std::io::ErrorKind::WouldBlock
            );
            let writer = gorust::go(move || {
                gorust::time::sleep(Duration::from_millis(20));
                a.writable().unwrap();
                assert_eq!(a.try_write(b"hi").unwrap(), 2);
                a
            });
            b.readable().unwrap();
            // A few returns for nothing are tolerated; a `readable` that spun instead of
            // parking would return thousands of times in the writer's 20 ms.
            let mut spurious = 0;
            let n = loop {
                match b.try_read(&mut buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        spurious += 1;
                        assert!(
                            spurious <= 100,
                            "readable returned {spurious} times for nothing"
                        );
                        b.readable().unwrap()
                    }
                    Err(e) => panic!("{e}"),
                }
            };
            assert_eq!(&buf[..n], b"hi");
            drop(writer.join().unwrap());
        })
    });
}

/// A connect to a listener whose backlog is full fails at once with `WouldBlock` (as Go's and
/// tokio's do) instead of sleeping in the kernel: on one worker, the blocking connect it used
/// to make would have stalled the accepting goroutine too, for good (review, session 8). The
/// listener is made with a backlog of 1; once the connects fail, accepting lets them succeed.
#[test]
fn connect_to_a_full_backlog_fails_at_once_and_accept_frees_it() {
    let path = temp_path("backlog");
    within(Duration::from_secs(60), move || {
        run_on(1, move || {
            let sock =
                socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
            sock.bind(&socket2::SockAddr::unix(&path).unwrap()).unwrap();
            sock.listen(1).unwrap();
            let l = UnixListener::from(std::os::fd::OwnedFd::from(sock));
            let mut queued = Vec::new();
            let err = loop {
                match UnixStream::connect(&path) {
                    Ok(c) => queued.push(c),
                    Err(e) => break e,
                }
                assert!(queued.len() < 64, "a backlog of 1 took 64 connections");
            };
            assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "{err}");
            assert!(err.to_string().contains("backlog"), "{err}");
            for _ in 0..queued.len() {
                l.accept().unwrap();
            }
            UnixStream::connect(&path).expect("room in the backlog again");
            let _ = std::fs::remove_file(&path);
        })
    });
}

/// Shutting down a datagram socket's reading ends a receive parked on it, and later ones, with
/// `Ok(0)`, as std's blocking receive does. A non-blocking datagram receive says `EAGAIN` for
/// ever after `SHUT_RD` while the socket polls readable: the goroutine waited for an edge that
/// never came, and a plain thread spun (review, session 19).
#[test]
fn shutting_down_a_datagram_sockets_reading_ends_its_receives() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let (a, _b) = UnixDatagram::pair().unwrap();
            let a = std::sync::Arc::new(a);
            let parked = {
                let a = a.clone();
                gorust::go(move || a.recv(&mut [0u8; 16]))
            };
            gorust::time::sleep(Duration::from_millis(20));
            a.shutdown(std::net::Shutdown::Read).unwrap();
            assert_eq!(parked.join().unwrap().unwrap(), 0);
            assert_eq!(a.recv(&mut [0u8; 16]).unwrap(), 0);
            let (n, from) = a.recv_from(&mut [0u8; 16]).unwrap();
            assert_eq!(n, 0);
            assert!(from.is_unnamed(), "{from:?}");
        })
    });
    // On a plain thread, with a datagram still queued: it comes first, then the end.
    within(Duration::from_secs(60), || {
        let (a, b) = UnixDatagram::pair().unwrap();
        b.send(b"last").unwrap();
        a.shutdown(std::net::Shutdown::Read).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(a.recv(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"last");
        let before = common::cpu_time();
        assert_eq!(a.recv(&mut buf).unwrap(), 0);
        assert!(common::cpu_time() - before < Duration::from_secs(1), "spun");
    });
}

/// Shutting down a stream's writing wakes a write parked on a full buffer, which fails with
/// `BrokenPipe` (not `SIGPIPE`: the writes use `MSG_NOSIGNAL`). A Unix socket reports no
/// `EPOLLOUT` for its own `SHUT_WR`, and the writer waited until the peer read (review,
/// session 19).
#[test]
fn shutting_down_a_streams_writing_wakes_a_parked_writer() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let (a, _b) = UnixStream::pair().unwrap();
            let a = std::sync::Arc::new(a);
            let writer = {
                let a = a.clone();
                gorust::go(move || (&*a).write_all(&vec![7u8; 8 << 20]))
            };
            gorust::time::sleep(Duration::from_millis(50));
            a.shutdown(std::net::Shutdown::Write).unwrap();
            let err = writer.join().unwrap().unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");
        })
    });
}

/// A path with a NUL byte is refused, as std refuses it, instead of being cut at the NUL (or,
/// with a leading one, taken for an abstract name).
#[test]
fn connect_refuses_a_path_with_a_nul_byte() {
    let path = temp_path("nul");
    let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let mut with_nul = path.clone().into_os_string();
    with_nul.push("\0x");
    let err = UnixStream::connect(&with_nul).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    assert_eq!(
        UnixStream::connect("\0gorust-abstract").unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput
    );
    drop(l);
    std::fs::remove_file(&path).unwrap();
}

/// A write to a stream whose peer is gone fails with `BrokenPipe` and raises no `SIGPIPE`
/// (`MSG_NOSIGNAL`, as TCP's writes): a host that does not ignore the signal, as a Rust
/// program does, would die of it. The test thread blocks the signal, so one raised stays
/// pending there (Linux never discards a blocked signal as ignored) where `sigpending` sees it.
#[test]
fn a_write_to_a_closed_peer_raises_no_sigpipe() {
    std::thread::spawn(|| {
        // SAFETY: a zeroed sigset_t is a valid argument for sigemptyset, which initialises it.
        let mut pipe: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `pipe` is a valid sigset_t; the mask change affects this thread only.
        unsafe {
            libc::sigemptyset(&mut pipe);
            libc::sigaddset(&mut pipe, libc::SIGPIPE);
            libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, std::ptr::null_mut());
        }
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        for write in [
            |s: &UnixStream| (&*s).write(b"x"),
            |s: &UnixStream| (&*s).write_vectored(&[std::io::IoSlice::new(b"x")]),
            |s: &UnixStream| s.try_write(b"x"),
        ] {
            let err = write(&a).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");
        }
        // SAFETY: as above; `pending` is initialised by sigpending.
        let mut pending: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `pending` is a valid sigset_t to fill.
        unsafe { libc::sigpending(&mut pending) };
        // SAFETY: `pending` was filled by sigpending.
        let raised = unsafe { libc::sigismember(&pending, libc::SIGPIPE) };
        assert_eq!(raised, 0, "a write raised SIGPIPE");
        // A SIGPIPE pending on this thread goes with it when it ends.
    })
    .join()
    .unwrap();
}

/// `close` acts on the socket, as `TcpStream::close` does: the peer of a closed stream reads
/// end of file although the closing handle is still alive (it used to wait until the drop),
/// and a closed listener refuses new connections.
#[test]
fn close_shuts_the_socket_down_for_the_peer() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let (a, mut b) = UnixStream::pair().unwrap();
            let reader = gorust::go(move || {
                let mut all = Vec::new();
                b.read_to_end(&mut all).map(|_| all)
            });
            gorust::time::sleep(Duration::from_millis(20));
            a.close().unwrap();
            assert_eq!(reader.join().unwrap().unwrap(), b"");
            assert!(gorust::net::is_closed(&(&a).write(b"x").unwrap_err()));

            let path = temp_path("close");
            let l = UnixListener::bind(&path).unwrap();
            l.close().unwrap();
            assert!(UnixStream::connect(&path).is_err());
            drop(l);
            std::fs::remove_file(&path).unwrap();
        })
    });
}

/// `close` on a listener ends an accept parked on another handle of the same socket (a
/// `try_clone`), in a goroutine and on a plain thread, with the error a TCP listener's accept
/// gives then (`EINVAL`). A shut-down Unix listener answers a non-blocking accept with
/// `EAGAIN` while it polls readable: the goroutine waited for good and the thread spun
/// (review, session 23).
#[test]
fn closing_a_listener_ends_an_accept_on_its_clone() {
    let path = temp_path("close-clone");
    let p = path.clone();
    within(Duration::from_secs(60), move || {
        run_on(1, move || {
            let l = UnixListener::bind(&p).unwrap();
            let clone = l.try_clone().unwrap();
            let parked = gorust::go(move || clone.accept().map(|_| ()));
            gorust::time::sleep(Duration::from_millis(20));
            l.close().unwrap();
            let e = parked.join().unwrap().unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
        })
    });
    std::fs::remove_file(&path).unwrap();
    // On a plain thread.
    let path = temp_path("close-clone-thread");
    let l = UnixListener::bind(&path).unwrap();
    let clone = l.try_clone().unwrap();
    l.close().unwrap();
    let before = common::cpu_time();
    let e = within(Duration::from_secs(60), move || {
        clone.accept().map(|_| ()).unwrap_err()
    });
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
    assert!(common::cpu_time() - before < Duration::from_secs(1), "spun");
    std::fs::remove_file(&path).unwrap();
}

/// std's `*_addr` methods: abstract names (Linux) and paths, for streams and datagrams. They
/// were missing, so an abstract address could be reached only by adopting a std socket.
#[test]
fn abstract_names_and_addresses_through_the_addr_methods() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::SocketAddr;
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let name = format!("gorust-abstract-{}", std::process::id());
            let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
            let listener = UnixListener::bind_addr(&addr).unwrap();
            let server = gorust::go(move || {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; 5];
                s.read_exact(&mut buf).unwrap();
                s.write_all(&buf).unwrap();
            });
            let mut c = UnixStream::connect_addr(&addr).unwrap();
            c.write_all(b"hello").unwrap();
            let mut got = [0u8; 5];
            c.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"hello");
            server.join().unwrap();
            // A path through `connect_addr`, and an unnamed address refused.
            let path = temp_path("addr");
            let l = UnixListener::bind(&path).unwrap();
            let by_path = SocketAddr::from_pathname(&path).unwrap();
            let _c = UnixStream::connect_addr(&by_path).unwrap();
            drop(l.accept().unwrap());
            let unnamed = UnixDatagram::unbound().unwrap().local_addr().unwrap();
            let e = UnixStream::connect_addr(&unnamed).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
            let _ = std::fs::remove_file(&path);
            // Datagrams between two abstract names.
            let a = SocketAddr::from_abstract_name(format!("{name}-a").as_bytes()).unwrap();
            let b = SocketAddr::from_abstract_name(format!("{name}-b").as_bytes()).unwrap();
            let da = UnixDatagram::bind_addr(&a).unwrap();
            let db = UnixDatagram::bind_addr(&b).unwrap();
            assert_eq!(da.send_to_addr(b"ping", &b).unwrap(), 4);
            let mut buf = [0u8; 8];
            let (n, from) = db.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"ping");
            assert_eq!(from.as_abstract_name(), a.as_abstract_name());
            db.connect_addr(&a).unwrap();
            db.send(b"pong").unwrap();
            let n = da.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"pong");
        })
    });
}

/// A plain thread's `send_to` to a receiver whose queue is full waits without spinning. An
/// unconnected sender's poll(2) judges only its own buffer, so it reported writable at once
/// and every retry said `EAGAIN` again: the thread used a whole core until the receiver read
/// (review, session 29). Now its retries are paced, and every datagram still arrives.
#[test]
fn a_plain_thread_sending_to_a_full_receiver_does_not_spin() {
    within(Duration::from_secs(60), || {
        let path = temp_path("full-receiver");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let sender = UnixDatagram::unbound().unwrap();
        // The kernel queues at most `net.unix.max_dgram_qlen` (10 by default, more on some
        // hosts) datagrams per receiver; more than that leaves the sender waiting until the
        // receiver reads.
        let qlen: u32 = std::fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen")
            .ok()
            .and_then(|q| q.trim().parse().ok())
            .unwrap_or(10);
        let n = qlen + 30;
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let mut buf = [0u8; 4];
            for i in 0..n {
                assert_eq!(receiver.recv(&mut buf).unwrap(), 4);
                assert_eq!(u32::from_le_bytes(buf), i);
            }
        });
        let (cpu, wall) = (common::thread_cpu(), std::time::Instant::now());
        for i in 0..n {
            assert_eq!(sender.send_to(&i.to_le_bytes(), &path).unwrap(), 4);
        }
        let (cpu, wall) = (common::thread_cpu() - cpu, wall.elapsed());
        assert!(
            wall >= Duration::from_millis(250),
            "it never waited: {wall:?}"
        );
        reader.join().unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(
            cpu < Duration::from_millis(100),
            "the sender spun: {cpu:?} of CPU"
        );
    });
}

/// `accept` gives the client's own address as `getpeername` would: its path, its abstract
/// name, or an unnamed address for a client that never bound (the address now comes from
/// `accept4` itself, session 29). The accepted stream parks its reads (it is non-blocking
/// without being set so again).
#[test]
fn accept_gives_the_clients_address_in_each_form() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::SocketAddr;
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let path = temp_path("accept-addr");
            let listener = UnixListener::bind(&path).unwrap();
            let client_path = temp_path("accept-addr-client");
            let abstract_name = format!("gorust-accept-client-{}", std::process::id());
            let clients = [
                Some(SocketAddr::from_pathname(&client_path).unwrap()),
                Some(SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap()),
                None,
            ];
            for client in clients {
                let sock = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)
                    .unwrap();
                if let Some(a) = &client {
                    let raw = match (a.as_pathname(), a.as_abstract_name()) {
                        (Some(p), _) => socket2::SockAddr::unix(p).unwrap(),
                        (None, Some(n)) => {
                            let mut bytes = vec![0u8];
                            bytes.extend_from_slice(n);
                            // socket2 takes a leading NUL for an abstract name.
                            let name =
                                <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(
                                    &bytes,
                                );
                            socket2::SockAddr::unix(name).unwrap()
                        }
                        _ => unreachable!(),
                    };
                    sock.bind(&raw).unwrap();
                }
                sock.connect(&socket2::SockAddr::unix(&path).unwrap())
                    .unwrap();
                let (mut accepted, from) = listener.accept().unwrap();
                match &client {
                    Some(a) => {
                        assert_eq!(from.as_pathname(), a.as_pathname(), "{from:?}");
                        assert_eq!(from.as_abstract_name(), a.as_abstract_name(), "{from:?}");
                    }
                    None => assert!(from.is_unnamed(), "{from:?}"),
                }
                let mut peer =
                    std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(sock));
                let writer = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    peer.write_all(b"late").unwrap();
                    peer
                });
                let mut buf = [0u8; 4];
                accepted.read_exact(&mut buf).unwrap();
                assert_eq!(&buf, b"late");
                drop(writer.join().unwrap());
            }
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(&client_path);
        })
    });
}

/// The async face of `UnixListener` and `UnixDatagram`: a future accepts with `poll_accept`
/// and echoes a stream, and echoes datagrams with `poll_recv_from` and `poll_send_to` or
/// `poll_send_to_addr` in turn (bound paths), and `poll_recv`/`poll_send` (a connected pair), each receive parked now and then
/// before its datagram comes.
#[test]
fn a_future_serves_a_listener_and_datagrams_with_the_poll_methods() {
    use std::future::poll_fn;
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let path = temp_path("poll-accept");
            let listener = UnixListener::bind(&path).unwrap();
            let server = gorust::spawn(async move {
                let (stream, from) = poll_fn(|cx| listener.poll_accept(cx)).await.unwrap();
                assert!(from.is_unnamed(), "{from:?}");
                let mut buf = [0u8; 5];
                let n = poll_fn(|cx| stream.poll_read(cx, &mut buf)).await.unwrap();
                poll_fn(|cx| stream.poll_write(cx, &buf[..n]))
                    .await
                    .unwrap()
            });
            gorust::time::sleep(Duration::from_millis(10));
            let mut c = UnixStream::connect(&path).unwrap();
            c.write_all(b"hello").unwrap();
            let mut got = [0u8; 5];
            c.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"hello");
            assert_eq!(gorust::block_on(server).unwrap(), 5);
            let _ = std::fs::remove_file(&path);

            let at = temp_path("poll-dgram");
            let sock = UnixDatagram::bind(&at).unwrap();
            let (a, b) = UnixDatagram::pair().unwrap();
            let echo = gorust::spawn(async move {
                let mut buf = [0u8; 16];
                for i in 0..10 {
                    let (n, from) = poll_fn(|cx| sock.poll_recv_from(cx, &mut buf))
                        .await
                        .unwrap();
                    if i % 2 == 0 {
                        let to = from.as_pathname().unwrap().to_owned();
                        poll_fn(|cx| sock.poll_send_to(cx, &buf[..n], &to))
                            .await
                            .unwrap();
                    } else {
                        poll_fn(|cx| sock.poll_send_to_addr(cx, &buf[..n], &from))
                            .await
                            .unwrap();
                    }
                    let n = poll_fn(|cx| a.poll_recv(cx, &mut buf)).await.unwrap();
                    poll_fn(|cx| a.poll_send(cx, &buf[..n])).await.unwrap();
                }
            });
            let me_at = temp_path("poll-dgram-client");
            let me = UnixDatagram::bind(&me_at).unwrap();
            for i in 0..10u32 {
                if i % 3 == 0 {
                    gorust::time::sleep(Duration::from_millis(10));
                }
                let mut buf = [0u8; 4];
                me.send_to(&i.to_le_bytes(), &at).unwrap();
                assert_eq!(me.recv(&mut buf).unwrap(), 4);
                assert_eq!(u32::from_le_bytes(buf), i);
                b.send(&i.to_le_bytes()).unwrap();
                assert_eq!(b.recv(&mut buf).unwrap(), 4);
                assert_eq!(u32::from_le_bytes(buf), i);
            }
            gorust::block_on(echo).unwrap();
            let _ = std::fs::remove_file(&at);
            let _ = std::fs::remove_file(&me_at);
        })
    });
}

/// A client bound to a path of the full 108 bytes (no terminating NUL, which Linux allows)
/// is accepted, with its address read back by `getpeername`: std builds no address from such
/// a path, and `accept`, which takes the address `accept4` gives, failed with `InvalidInput`
/// (review, session 29; it also ended an event loop's accept loop).
#[test]
fn accept_takes_a_client_bound_to_a_full_length_path() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let path = temp_path("full-path-listener");
            let listener = UnixListener::bind(&path).unwrap();
            let dir = std::env::temp_dir();
            let prefix = format!("{}/gorust-{}-", dir.display(), std::process::id());
            let long = format!("{prefix}{}", "x".repeat(108 - prefix.len()));
            assert_eq!(long.len(), 108);
            let _ = std::fs::remove_file(&long);
            // SAFETY: a plain socket(2) call; the descriptor is owned below.
            let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
            assert!(fd >= 0, "{}", std::io::Error::last_os_error());
            // SAFETY: `fd` is a new descriptor that nothing else owns.
            let client = unsafe { OwnedFd::from_raw_fd(fd) };
            // SAFETY: zeroed is a valid sockaddr_un.
            let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
            sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
            for (d, s) in sun.sun_path.iter_mut().zip(long.bytes()) {
                *d = s as libc::c_char;
            }
            let len = std::mem::size_of::<libc::sa_family_t>() + 108;
            // SAFETY: `sun` is a live sockaddr_un and `len` is within it.
            let r = unsafe {
                libc::bind(
                    client.as_raw_fd(),
                    (&sun as *const libc::sockaddr_un).cast(),
                    len as libc::socklen_t,
                )
            };
            assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
            let client = std::os::unix::net::UnixStream::from(client);
            let to = socket2::SockAddr::unix(&path).unwrap();
            socket2::SockRef::from(&client).connect(&to).unwrap();
            let (_stream, from) = listener.accept().unwrap();
            assert_eq!(
                from.as_pathname().map(|p| p.as_os_str().len()),
                Some(108),
                "{from:?}"
            );
            let _ = std::fs::remove_file(&long);
            let _ = std::fs::remove_file(&path);
        })
    });
}

/// An empty read of a Unix stream returns `Ok(0)` at once, through every face: the kernel
/// would wait for a byte (`EAGAIN` on an empty queue), and `poll_read`, `AsyncRead` (which
/// tokio calls with an empty slice when its buffer is full) and `read_vectored` stayed
/// pending until the peer wrote (review, session 31).
#[test]
fn empty_reads_of_a_unix_stream_return_at_once() {
    use std::io::IoSliceMut;
    use std::task::Poll;
    within(Duration::from_secs(30), || {
        let (a, _b) = UnixStream::pair().unwrap();
        run_on(1, move || {
            let mut empty = [0u8; 0];
            let mut read = std::future::poll_fn(|cx| a.poll_read(cx, &mut empty));
            assert!(matches!(common::poll_once(&mut read), Poll::Ready(Ok(0))));
            let mut write = std::future::poll_fn(|cx| a.poll_write(cx, &[]));
            assert!(matches!(common::poll_once(&mut write), Poll::Ready(Ok(0))));
            let mut none = [IoSliceMut::new(&mut [])];
            assert_eq!((&a).read_vectored(&mut none).unwrap(), 0);
            a.close().unwrap();
            let mut read = std::future::poll_fn(|cx| a.poll_read(cx, &mut empty));
            let Poll::Ready(Err(e)) = common::poll_once(&mut read) else {
                panic!("an empty read of a closed stream is ErrClosed");
            };
            assert!(gorust::net::is_closed(&e), "{e:?}");
        })
    });
}

/// `UnixStream::write` writes the whole buffer, parking while the peer is slow, as Go's
/// `Write` and gorust's `TcpStream::write` do; cut short by its timeout after some bytes went
/// out, it returns their count and the next call fails. It returned after one partial send
/// (review, session 31).
#[test]
fn a_unix_stream_write_goes_out_whole_or_reports_its_count() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let (mut a, b) = UnixStream::pair().unwrap();
            const N: usize = 8 << 20;
            let data: Vec<u8> = (0..N).map(|i| (i % 251) as u8).collect();
            let reader = gorust::go(move || {
                let mut b = b;
                let mut got = Vec::new();
                let mut buf = vec![0u8; 64 << 10];
                loop {
                    // A slow reader: the writer parks many times.
                    gorust::time::sleep(Duration::from_micros(200));
                    match b.read(&mut buf).unwrap() {
                        0 => return got,
                        n => got.extend_from_slice(&buf[..n]),
                    }
                }
            });
            assert_eq!(a.write(&data).unwrap(), N);
            drop(a);
            assert!(reader.join().unwrap() == data, "every byte, in order");

            // Nobody reads: the first bytes go out, then the timeout ends the call.
            let (mut a, _b) = UnixStream::pair().unwrap();
            a.set_write_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let n = a.write(&data).unwrap();
            assert!(n > 0 && n < N, "{n}");
            let e = a.write(&data[n..]).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        })
    });
}

/// Deadlines on all three Unix types: `TimedOut`, again until the deadline moves (also with
/// data waiting), and a deadline moved into the past wakes a parked call at once.
#[test]
fn unix_deadlines_fail_calls_until_moved_and_wake_parked_ones() {
    use std::time::Instant;
    fn timed_out<T: std::fmt::Debug>(r: std::io::Result<T>) {
        assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    }
    let path = temp_path("deadlines");
    within(Duration::from_secs(60), move || {
        run_on(2, move || {
            let soon = || Some(Instant::now() + Duration::from_millis(20));
            let mut buf = [0u8; 8];

            let (a, b) = UnixStream::pair().unwrap();
            a.set_read_deadline(soon()).unwrap();
            timed_out((&a).read(&mut buf));
            (&b).write_all(b"ping").unwrap();
            timed_out((&a).read(&mut buf));
            a.set_read_deadline(None).unwrap();
            assert_eq!((&a).read(&mut buf).unwrap(), 4);

            let l = UnixListener::bind(&path).unwrap();
            l.set_deadline(soon()).unwrap();
            timed_out(l.accept());
            let _c = UnixStream::connect(&path).unwrap();
            timed_out(l.accept());
            l.set_deadline(None).unwrap();
            l.accept().unwrap();

            let (d, e) = UnixDatagram::pair().unwrap();
            d.set_read_deadline(soon()).unwrap();
            timed_out(d.recv(&mut buf));
            e.send(b"dgram").unwrap();
            timed_out(d.recv(&mut buf));
            d.set_read_deadline(None).unwrap();
            assert_eq!(d.recv(&mut buf).unwrap(), 5);

            // Moved into the past while a read is parked: it wakes at once.
            let a = std::sync::Arc::new(a);
            let reader = {
                let a = a.clone();
                gorust::go(move || {
                    let t = Instant::now();
                    ((&*a).read(&mut [0u8; 8]), t.elapsed())
                })
            };
            gorust::time::sleep(Duration::from_millis(30));
            a.set_read_deadline(Some(Instant::now() - Duration::from_secs(1)))
                .unwrap();
            let (r, waited) = reader.join().unwrap();
            timed_out(r);
            assert!(waited < Duration::from_secs(2), "{waited:?}");
            drop(b);
            std::fs::remove_file(&path).unwrap();
        })
    });
}

/// The `futures_io` traits on `&UnixStream`: a vectored write sends every slice in one call
/// (the trait's default sent the first alone), and the bytes read back whole.
#[test]
fn futures_io_vectored_write_on_a_shared_unix_stream_sends_every_slice() {
    use futures_io::{AsyncRead, AsyncWrite};
    use std::io::IoSlice;
    use std::pin::Pin;
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let (a, b) = UnixStream::pair().unwrap();
            let out = gorust::block_on(gorust::spawn(async move {
                let slices = [IoSlice::new(b"uni"), IoSlice::new(b""), IoSlice::new(b"x")];
                let n =
                    std::future::poll_fn(|cx| Pin::new(&mut &a).poll_write_vectored(cx, &slices))
                        .await
                        .unwrap();
                assert_eq!(n, 4, "every slice in one call");
                let mut buf = [0u8; 4];
                let mut got = 0;
                while got < 4 {
                    got +=
                        std::future::poll_fn(|cx| Pin::new(&mut &b).poll_read(cx, &mut buf[got..]))
                            .await
                            .unwrap();
                }
                buf
            }))
            .unwrap();
            assert_eq!(&out, b"unix");
        })
    });
}

/// Go's `SetDeadline` on the two types that read and write: both directions fail with
/// `TimedOut` once it has passed, even with data queued and room to write, and work again once
/// it is cleared.
#[test]
fn set_deadline_bounds_both_directions_of_streams_and_datagrams() {
    use std::time::Instant;
    fn timed_out<T: std::fmt::Debug>(r: std::io::Result<T>) {
        assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    }
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let past = Some(Instant::now() - Duration::from_millis(1));
            let mut buf = [0u8; 8];

            let (a, b) = UnixStream::pair().unwrap();
            (&b).write_all(b"ping").unwrap();
            a.set_deadline(past).unwrap();
            timed_out((&a).read(&mut buf));
            timed_out((&a).write(b"pong"));
            a.set_deadline(None).unwrap();
            assert_eq!((&a).read(&mut buf).unwrap(), 4);
            assert_eq!((&a).write(b"pong").unwrap(), 4);

            let (d, e) = UnixDatagram::pair().unwrap();
            e.send(b"dgram").unwrap();
            d.set_deadline(past).unwrap();
            timed_out(d.recv(&mut buf));
            timed_out(d.send(b"back"));
            d.set_deadline(None).unwrap();
            assert_eq!(d.recv(&mut buf).unwrap(), 5);
            assert_eq!(d.send(b"back").unwrap(), 4);
        })
    });
}

/// A Unix stream read by one goroutine while another writes to it: each direction moves its
/// bytes whole and in order (a read and a write may run at the same time on one stream),
/// and then one `close` wakes both a parked reader and a parked writer with `ErrClosed`.
#[test]
fn a_read_and_a_write_run_at_once_and_close_wakes_both() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let (a, b) = UnixStream::pair().unwrap();
            let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
            const N: usize = 4 << 20;
            let data: Vec<u8> = (0..N).map(|i| (i % 251) as u8).collect();
            // `a` writes to `b` while `a` reads what `b` writes: four goroutines, two streams.
            let echo = {
                let b = b.clone();
                gorust::go(move || {
                    let mut buf = vec![0u8; 1 << 16];
                    let mut moved = 0;
                    while moved < N {
                        let n = (&*b).read(&mut buf).unwrap();
                        (&*b).write_all(&buf[..n]).unwrap();
                        moved += n;
                    }
                })
            };
            let reader = {
                let a = a.clone();
                gorust::go(move || {
                    let mut got = vec![0u8; N];
                    (&*a).read_exact(&mut got).unwrap();
                    got
                })
            };
            (&*a).write_all(&data).unwrap();
            echo.join().unwrap();
            assert!(reader.join().unwrap() == data, "every byte, in order");

            // Now nothing comes back and `b` reads nothing: a reader and a writer park on `a`.
            let reader = {
                let a = a.clone();
                gorust::go(move || (&*a).read(&mut [0u8; 64]).unwrap_err())
            };
            let writer = common::write_until_error(a.clone());
            gorust::time::sleep(Duration::from_millis(200));
            a.close().unwrap();
            for (who, e) in [
                ("reader", reader.join().unwrap()),
                ("writer", writer.join().unwrap()),
            ] {
                assert!(gorust::net::is_closed(&e), "{who}: {e:?}");
            }
        })
    });
}

/// `close` from another goroutine wakes a datagram socket's parked receive, which fails with
/// `ErrClosed`.
#[test]
fn close_wakes_a_parked_datagram_receive() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let (d, _e) = UnixDatagram::pair().unwrap();
            let d = std::sync::Arc::new(d);
            let receiver = {
                let d = d.clone();
                gorust::go(move || d.recv(&mut [0u8; 8]))
            };
            gorust::time::sleep(Duration::from_millis(30));
            d.close().unwrap();
            let e = receiver.join().unwrap().unwrap_err();
            assert!(gorust::net::is_closed(&e), "{e:?}");
        })
    });
}

/// Two goroutines writing to one Unix stream at once: each `write` goes out whole, never
/// interleaved with the other's (Go's write lock, as on TCP). Before, a write that parked part
/// way let the other's bytes in between.
#[test]
fn concurrent_writes_on_one_unix_stream_do_not_interleave() {
    within(Duration::from_secs(120), || {
        run_on(2, || {
            let (a, b) = UnixStream::pair().unwrap();
            let a = std::sync::Arc::new(a);
            const N: usize = 4 << 20;
            let writers: Vec<_> = [b'a', b'b', b'c']
                .into_iter()
                .map(|byte| {
                    let a = a.clone();
                    gorust::go(move || (&*a).write_all(&vec![byte; N]).unwrap())
                })
                .collect();
            let mut got = vec![0u8; 3 * N];
            (&b).read_exact(&mut got).unwrap();
            writers.into_iter().for_each(|w| w.join().unwrap());
            common::assert_each_write_whole(&got, N, b"abc");
        })
    });
}

/// An all-empty `write_vectored` moves nothing and waits for nothing, as an empty `write`:
/// `Ok(0)`, also after this side shut writing down. Before, it made the call and said
/// `BrokenPipe` there (review, session 33).
#[test]
fn an_empty_vectored_write_returns_at_once() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let (a, _b) = UnixStream::pair().unwrap();
            a.shutdown(std::net::Shutdown::Write).unwrap();
            let empty = [std::io::IoSlice::new(&[]), std::io::IoSlice::new(&[])];
            assert_eq!((&a).write_vectored(&empty).unwrap(), 0);
            assert_eq!((&a).write(&[]).unwrap(), 0);
        })
    });
}
