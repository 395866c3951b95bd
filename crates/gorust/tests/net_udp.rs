//! `gorust::net::UdpSocket`.

mod common;

use std::time::{Duration, Instant};

use common::{run_on, within};
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

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `ts` is.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
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
