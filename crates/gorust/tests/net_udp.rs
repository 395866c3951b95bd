//! `gorust::net::UdpSocket`.

mod common;

use std::time::{Duration, Instant};

use common::{run_on, thread_cpu, within};
use gorust::net::UdpSocket;

#[test]
fn datagrams_between_goroutines() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let addr = server.local_addr().unwrap();
            let echo = gorust::go(move || {
                let mut buf = [0u8; 1500];
                for _ in 0..100 {
                    let (n, from) = server.recv_from(&mut buf).unwrap();
                    server.send_to(&buf[..n], from).unwrap();
                }
            });
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            client.connect(addr).unwrap();
            for i in 0..100u32 {
                client.send(&i.to_le_bytes()).unwrap();
                let mut b = [0u8; 4];
                assert_eq!(client.recv(&mut b).unwrap(), 4);
                assert_eq!(u32::from_le_bytes(b), i);
            }
            echo.join().unwrap();
        })
    });
}

#[test]
fn recv_deadline_and_close() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let s = std::sync::Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
            s.set_read_deadline(Some(Instant::now() + Duration::from_millis(10)))
                .unwrap();
            let e = s.recv_from(&mut [0u8; 8]).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
            s.set_read_deadline(None).unwrap();
            let r = {
                let s = s.clone();
                gorust::go(move || s.recv(&mut [0u8; 8]))
            };
            gorust::time::sleep(Duration::from_millis(20));
            s.close().unwrap();
            assert!(gorust::net::is_closed(&r.join().unwrap().unwrap_err()));
        })
    });
}

/// Go's `SetDeadline`: once it has passed, a receive fails with `TimedOut` although a
/// datagram is queued, and so does a send although there is room; cleared, both work.
#[test]
fn set_deadline_bounds_receives_and_sends() {
    within(Duration::from_secs(60), || {
        run_on(2, || {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.connect(s.local_addr().unwrap()).unwrap();
            s.send(b"to self").unwrap();
            s.set_deadline(Some(Instant::now() - Duration::from_millis(1)))
                .unwrap();
            let timed_out = |e: std::io::Error| assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
            timed_out(s.recv(&mut [0u8; 16]).unwrap_err());
            timed_out(s.send(b"again").unwrap_err());
            s.set_deadline(None).unwrap();
            assert_eq!(s.recv(&mut [0u8; 16]).unwrap(), 7);
            assert_eq!(s.send(b"again").unwrap(), 5);
        })
    });
}

/// `poll_recv_from` and `poll_send_to` from a future: an echo of datagrams where each one is
/// sent only after the last came back, so every receive but the first finds the socket
/// drained and waits for a new edge.
#[test]
fn a_future_echoes_datagrams_with_the_poll_methods() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let addr = server.local_addr().unwrap();
            let echo = gorust::spawn(async move {
                let mut buf = [0u8; 64];
                for _ in 0..20 {
                    let (n, from) = std::future::poll_fn(|cx| server.poll_recv_from(cx, &mut buf))
                        .await
                        .unwrap();
                    let sent = std::future::poll_fn(|cx| server.poll_send_to(cx, &buf[..n], from))
                        .await
                        .unwrap();
                    assert_eq!(sent, n);
                }
            });
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            client.connect(addr).unwrap();
            for i in 0..20u32 {
                if i % 5 == 0 {
                    // Now and then the echo future is parked well before the datagram comes.
                    gorust::time::sleep(Duration::from_millis(10));
                }
                client.send(&i.to_le_bytes()).unwrap();
                let mut b = [0u8; 4];
                assert_eq!(client.recv(&mut b).unwrap(), 4);
                assert_eq!(u32::from_le_bytes(b), i);
            }
            gorust::block_on(echo).unwrap();
        })
    });
}

/// std's socket options, with std's names: what is set reads back (the multicast ones were
/// missing, so an IPv6 group could be joined and never left).
#[test]
fn socket_options_read_back_what_was_set() {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_broadcast(true).unwrap();
    assert!(s.broadcast().unwrap());
    s.set_ttl(17).unwrap();
    assert_eq!(s.ttl().unwrap(), 17);
    s.set_multicast_loop_v4(false).unwrap();
    assert!(!s.multicast_loop_v4().unwrap());
    s.set_multicast_ttl_v4(9).unwrap();
    assert_eq!(s.multicast_ttl_v4().unwrap(), 9);
    let group = std::net::Ipv4Addr::new(239, 255, 0, 77);
    let any = std::net::Ipv4Addr::UNSPECIFIED;
    // Joining needs a multicast route, which a bare container may lack: only if it works.
    if s.join_multicast_v4(&group, &any).is_ok() {
        s.leave_multicast_v4(&group, &any).unwrap();
    }
    match UdpSocket::bind("[::1]:0") {
        Ok(s6) => {
            s6.set_multicast_loop_v6(false).unwrap();
            assert!(!s6.multicast_loop_v6().unwrap());
            let group6: std::net::Ipv6Addr = "ff02::1:3".parse().unwrap();
            if s6.join_multicast_v6(&group6, 0).is_ok() {
                s6.leave_multicast_v6(&group6, 0).unwrap();
            }
        }
        Err(e) => common::skip(&format!("the IPv6 options: no IPv6 loopback ({e})")),
    }
}

/// A receive on a plain thread, from a socket whose error queue holds an entry no receive
/// takes (`IP_RECVERR`, after a send to a closed port), waits out its timeout without
/// spinning: poll(2) reports `POLLERR` for such a queue whatever was asked, and every retry
/// said `EAGAIN`. Before, the wait used a whole core until the timeout.
#[test]
fn a_plain_thread_does_not_spin_on_an_error_queue() {
    use std::os::fd::AsRawFd;
    within(Duration::from_secs(60), || {
        let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = closed.local_addr().unwrap();
        drop(closed);
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let on: libc::c_int = 1;
        // SAFETY: sets an int option from a live int of the size given.
        let r = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_RECVERR,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
        s.connect(to).unwrap();
        s.send(b"anyone?").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 16];
        // The ICMP error comes back first (ECONNREFUSED), and stays in the error queue.
        let first = s.recv(&mut buf).unwrap_err();
        assert_eq!(
            first.kind(),
            std::io::ErrorKind::ConnectionRefused,
            "{first}"
        );
        let (cpu, wall) = (thread_cpu(), Instant::now());
        let e = s.recv(&mut buf).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
        let (cpu, wall) = (thread_cpu() - cpu, wall.elapsed());
        assert!(wall >= Duration::from_millis(290), "{wall:?}");
        assert!(cpu < wall / 3, "the wait spun: {cpu:?} of CPU in {wall:?}");
    });
}

/// `shutdown(SHUT_RD)` on the descriptor, here by hand as another process or a `try_clone`'s
/// owner might do it (std's `UdpSocket` has no `shutdown`), ends a receive: `Ok(0)` from
/// `recv` and `peek`, `InvalidInput` from `recv_from` and `peek_from`, as std's blocking
/// receives give then. A non-blocking receive says `EAGAIN` for ever after it, while the
/// socket polls readable: a goroutine parked for good, and a plain thread spun (review,
/// session 29).
#[test]
fn an_outside_shutdown_of_reading_ends_a_receive() {
    use std::os::fd::AsRawFd;
    fn shut_reading(s: &UdpSocket) {
        // SAFETY: shutdown(2) on a descriptor `s` keeps open.
        let r = unsafe { libc::shutdown(s.as_raw_fd(), libc::SHUT_RD) };
        // Linux shuts an unconnected socket down all the same, and says `ENOTCONN`.
        let e = std::io::Error::last_os_error();
        assert!(r == 0 || e.raw_os_error() == Some(libc::ENOTCONN), "{e}");
    }
    fn ended(s: &UdpSocket) {
        let mut buf = [0u8; 16];
        assert_eq!(s.recv(&mut buf).unwrap(), 0);
        assert_eq!(s.peek(&mut buf).unwrap(), 0);
        let e = s.recv_from(&mut buf).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
        let e = s.peek_from(&mut buf).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
    }
    // A goroutine parked in `recv`, woken by the shutdown's edge.
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let s = std::sync::Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
            let parked = {
                let s = s.clone();
                gorust::go(move || s.recv(&mut [0u8; 16]))
            };
            gorust::time::sleep(Duration::from_millis(20));
            shut_reading(&s);
            assert_eq!(parked.join().unwrap().unwrap(), 0);
            ended(&s);
        })
    });
    // A plain thread blocked in `recv`, without spinning while it waits or after.
    within(Duration::from_secs(60), || {
        let s = std::sync::Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let receiver = {
            let s = s.clone();
            std::thread::spawn(move || {
                let cpu = thread_cpu();
                let n = s.recv(&mut [0u8; 16]);
                (n.unwrap(), thread_cpu() - cpu)
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        shut_reading(&s);
        let (n, cpu) = receiver.join().unwrap();
        assert_eq!(n, 0);
        assert!(
            cpu < Duration::from_millis(100),
            "the wait spun: {cpu:?} of CPU"
        );
        ended(&s);
    });
}

/// `poll_recv` and `poll_send` on a connected socket, from a future, each receive waiting
/// for a datagram sent after it parked now and then.
#[test]
fn a_future_echoes_over_a_connected_socket_with_poll_recv_and_poll_send() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            server.connect(client.local_addr().unwrap()).unwrap();
            client.connect(server.local_addr().unwrap()).unwrap();
            let echo = gorust::spawn(async move {
                let mut buf = [0u8; 64];
                for _ in 0..20 {
                    let n = std::future::poll_fn(|cx| server.poll_recv(cx, &mut buf))
                        .await
                        .unwrap();
                    let sent = std::future::poll_fn(|cx| server.poll_send(cx, &buf[..n]))
                        .await
                        .unwrap();
                    assert_eq!(sent, n);
                }
            });
            for i in 0..20u32 {
                if i % 5 == 0 {
                    gorust::time::sleep(Duration::from_millis(10));
                }
                client.send(&i.to_le_bytes()).unwrap();
                let mut b = [0u8; 4];
                assert_eq!(client.recv(&mut b).unwrap(), 4);
                assert_eq!(u32::from_le_bytes(b), i);
            }
            gorust::block_on(echo).unwrap();
        })
    });
}

/// A read deadline keeps failing receives, also with a datagram waiting, until it is moved;
/// then the datagram is there.
#[test]
fn a_recv_deadline_keeps_failing_until_moved() {
    within(Duration::from_secs(60), || {
        run_on(1, || {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_deadline(Some(Instant::now() + Duration::from_millis(20)))
                .unwrap();
            let mut buf = [0u8; 16];
            let timed_out = |r: std::io::Result<usize>| {
                assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
            };
            timed_out(s.recv(&mut buf));
            peer.send_to(b"late", s.local_addr().unwrap()).unwrap();
            // Queued (loopback delivers within the send), and still refused.
            timed_out(s.recv(&mut buf));
            timed_out(s.recv_from(&mut buf).map(|(n, _)| n));
            timed_out(s.peek(&mut buf));
            s.set_read_deadline(None).unwrap();
            assert_eq!(s.recv(&mut buf).unwrap(), 4);
            assert_eq!(&buf[..4], b"late");
        })
    });
}
