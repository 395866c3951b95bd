//! Descriptor exhaustion: `accept` returns EMFILE at once, and `serve` and the event loop's
//! accept loop back off without spinning and recover when descriptors free up. Each runs in a
//! child process with a lowered limit.

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Lowers this (child) process's descriptor limit to a dozen more than it has open.
fn leave_room_for_a_few_descriptors() {
    let limit = (open_fds() + 12) as libc::rlim_t;
    let rl = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: a valid rlimit for this process's own limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) }, 0);
}

/// Runs the test `name` of this binary in a child process (which sees `GORUST_EMFILE_CHILD`
/// set to `name`) and returns its stdout and stderr once it succeeded.
///
/// Bounded: a child stuck in a wait that never ends (the back-off not recovering, say) is
/// killed, and its failed status fails the test; it hung the run instead (review, session
/// 31). Its output is read meanwhile, so that a long one cannot block it on a full pipe.
fn run_child(name: &str) -> (String, String) {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("GORUST_EMFILE_CHILD", name)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output().unwrap()));
    let out = rx
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| {
            // SAFETY: our own child, not yet reaped (its waiter has not returned).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            rx.recv().unwrap()
        });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("recovered"), "{stdout}\n{stderr}");
    (stdout, stderr)
}

/// Whether this process is the child running `name`.
fn is_child(name: &str) -> bool {
    std::env::var("GORUST_EMFILE_CHILD").is_ok_and(|v| v == name)
}

#[test]
fn emfile_is_an_error_and_serve_backs_off_then_recovers() {
    if std::env::var("GORUST_EMFILE_CHILD").is_ok() {
        return;
    }
    let (_, stderr) = run_child("emfile_child");
    assert!(
        stderr.contains("retrying in 5ms"),
        "the back-off is logged: {stderr}"
    );
}

/// The event loop's accept loop backs off the same way, and serves the connection that
/// waited once descriptors free up (review, session 31: only `serve` had a test).
#[test]
fn the_event_loop_backs_off_on_emfile_then_recovers() {
    if std::env::var("GORUST_EMFILE_CHILD").is_ok() {
        return;
    }
    let (_, stderr) = run_child("eventloop_emfile_child");
    assert!(
        stderr.contains("gorust::eventloop: accept:") && stderr.contains("retrying in 5ms"),
        "the back-off is logged: {stderr}"
    );
}

#[test]
fn eventloop_emfile_child() {
    if !is_child("eventloop_emfile_child") {
        return;
    }
    let rt = gorust::Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let admitted = Arc::new(AtomicUsize::new(0));
        let a = admitted.clone();
        let el = gorust::eventloop::EventLoop::builder()
            .on_connect(move |_| {
                a.fetch_add(1, Ordering::SeqCst);
            })
            .on_request(|c, _| {
                let n = c.reader().len();
                let bytes = c.reader().next(n)?.to_vec();
                c.writer().write_bytes(&bytes);
                Ok(())
            })
            .build()
            .unwrap();
        let (addr, _server) = common::start(&el);
        // Served once, so that whatever the loop sets up lazily is set up.
        let mut warm = gorust::net::TcpStream::connect(addr).unwrap();
        warm.write_all(b"warm").unwrap();
        let mut b = [0u8; 4];
        warm.read_exact(&mut b).unwrap();

        // A client socket made while there is room, connected once there is none.
        let client =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        leave_room_for_a_few_descriptors();
        let mut filler = Vec::new();
        while let Ok(f) = std::fs::File::open("/dev/null") {
            filler.push(f);
        }
        client.connect(&addr.into()).unwrap();

        // The loop's accept fails with EMFILE: it backs off instead of spinning.
        let cpu0 = common::cpu_time();
        gorust::time::sleep(Duration::from_millis(400));
        let spent = common::cpu_time() - cpu0;
        assert!(
            spent < Duration::from_millis(200),
            "the accept loop spun: {spent:?}"
        );
        assert_eq!(admitted.load(Ordering::SeqCst), 1, "only the warm-up");

        // Room again: the waiting connection is accepted and served.
        filler.clear();
        let mut c = gorust::net::TcpStream::from(std::net::TcpStream::from(client));
        c.write_all(b"ping").unwrap();
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ping");
        assert_eq!(admitted.load(Ordering::SeqCst), 2);
        println!("recovered");
    });
}

#[test]
fn emfile_child() {
    if !is_child("emfile_child") {
        return;
    }
    let rt = gorust::Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let listener = Arc::new(gorust::net::TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = listener.local_addr().unwrap();
        // Room for a few connections only.
        leave_room_for_a_few_descriptors();

        // 1. A bare accept returns EMFILE at once once descriptors run out.
        let mut clients = Vec::new();
        let mut accepted = Vec::new();
        let err = loop {
            let Ok(c) = std::net::TcpStream::connect(addr) else {
                // The client side ran out first; free one and let the server hit the limit.
                let _ = clients.pop();
                continue;
            };
            clients.push(c);
            match listener.accept() {
                Ok((s, _)) => accepted.push(s),
                Err(e) => break e,
            }
        };
        assert!(gorust::net::is_resource_exhausted(&err), "{err:?}");
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE));

        // 2. serve() backs off instead of spinning while the limit holds.
        let served = Arc::new(AtomicUsize::new(0));
        let s2 = served.clone();
        let l2 = listener.clone();
        let server = gorust::go(move || {
            gorust::net::serve(&l2, move |mut c| {
                let mut b = [0u8; 4];
                if c.read_exact(&mut b).is_ok() {
                    let _ = c.write_all(&b);
                }
                s2.fetch_add(1, Ordering::SeqCst);
            })
        });
        let cpu0 = common::cpu_time();
        let t0 = Instant::now();
        gorust::time::sleep(Duration::from_millis(400));
        let spent = common::cpu_time() - cpu0;
        assert!(
            spent < Duration::from_millis(200),
            "the accept loop spun: {spent:?} of CPU in {:?}",
            t0.elapsed()
        );
        assert_eq!(served.load(Ordering::SeqCst), 0);

        // 3. Free descriptors: the pending connection is accepted and served.
        accepted.clear();
        // A std stream would block this goroutine's worker: adopt it into gorust.
        let mut pending = gorust::net::TcpStream::from(clients.pop().unwrap());
        clients.clear();
        pending.write_all(b"ping").unwrap();
        let mut b = [0u8; 4];
        pending.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ping");
        listener.close().unwrap();
        let res = server.join().unwrap();
        assert!(res.is_err_and(|e| gorust::net::is_closed(&e)));
        println!("recovered");
    });
}
