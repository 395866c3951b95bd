//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::Duration;

/// Runs `body` as the main goroutine of a fresh runtime with `workers` workers.
pub fn run_on<R: Send + 'static>(workers: usize, body: impl FnOnce() -> R + Send + 'static) -> R {
    gorust::Runtime::builder()
        .workers(workers)
        .build()
        .expect("runtime starts")
        .run(body)
}

/// [`run_on`] with one worker and a blocking pool of one thread: the pool runs its jobs one
/// at a time in the order queued, so once `gorust::blocking(|| ())` returns, every job queued
/// before it has run (a check that a call queued nothing, without sleeping).
pub fn run_with_one_pool_thread<R: Send + 'static>(body: impl FnOnce() -> R + Send + 'static) -> R {
    gorust::Runtime::builder()
        .workers(1)
        .max_blocking_threads(1)
        .build()
        .expect("runtime starts")
        .run(body)
}

/// CPU time (user and system) this process has used so far: for tests that check that a wait
/// does not spin.
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU time of the calling thread: for tests that check that one thread's wait does not spin
/// while other threads of the process work.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `ts` is.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A loopback address where nothing listens, held so for as long as the returned socket
/// lives: the socket is bound there without listening, so a connect is refused, and no other
/// test can bind the port meanwhile (a port bound and freed could be taken by a listener of
/// a test running beside).
pub fn refused_addr() -> (socket2::Socket, std::net::SocketAddr) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    s.bind(&any.into()).unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    (s, addr)
}

/// Says that a test leaves out what this machine cannot do (`what`: the missing piece).
/// Under `GORUST_NO_SKIP=1`, which `.ci/run` sets, it fails the test instead: CI's machine has
/// all of it, so there a skip would hide a broken check.
pub fn skip(what: &str) {
    if std::env::var_os("GORUST_NO_SKIP").is_some_and(|v| v == "1") {
        panic!("GORUST_NO_SKIP=1, but this test would be skipped: {what}");
    }
    eprintln!("skipped: {what}");
}

/// Runs `f` on a thread and fails the test if it takes longer than `limit` (a hang detector,
/// not a speed check: limits are generous).
pub fn within<R: Send + 'static>(limit: Duration, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(r) => r,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("test body did not finish within {limit:?}")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("test body panicked (its message is above)")
        }
    }
}

/// Waits (parking the goroutine) until `f` holds, for at most 20 s.
pub fn eventually(what: &str, f: impl Fn() -> bool) {
    let end = std::time::Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for: {what}"
        );
        gorust::time::sleep(Duration::from_millis(2));
    }
}

/// Polls `f` once from the calling goroutine (its waker is the goroutine's) and returns the
/// result: to register a future (queue it for a lock, a channel, a timer) without waiting.
pub fn poll_once<F: std::future::Future + Unpin>(f: &mut F) -> std::task::Poll<F::Output> {
    gorust::block_on(std::future::poll_fn(|cx| {
        std::task::Poll::Ready(std::pin::Pin::new(&mut *f).poll(cx))
    }))
}

/// A waker that panics when woken, as another executor's buggy waker might: a runtime that
/// wakes a batch of waiters must still wake the others.
pub fn panicking_waker() -> std::task::Waker {
    struct Panics;
    impl std::task::Wake for Panics {
        fn wake(self: std::sync::Arc<Self>) {
            panic!("this waker panics on purpose");
        }
    }
    std::task::Waker::from(std::sync::Arc::new(Panics))
}

/// `f`, counting in `registered` its first poll that ends `Pending`: once counted, the waiter
/// is queued (its waker registered), which a test can wait for instead of sleeping.
pub async fn counting_registration<F: std::future::Future + Unpin>(
    mut f: F,
    registered: &std::sync::atomic::AtomicUsize,
) -> F::Output {
    let mut counted = false;
    std::future::poll_fn(|cx| {
        let p = std::pin::Pin::new(&mut f).poll(cx);
        if p.is_pending() && !counted {
            counted = true;
            registered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        p
    })
    .await
}

/// More waiting futures than one task's cooperative budget (128) lets it poll in one poll.
pub const OVER_BUDGET: usize = 128 + 32;

/// Polls every future of `futs` in order, at every poll of the calling task, until one is
/// ready, and returns its index; `polls` counts the task's polls. For the tests that a future
/// ending `Pending` without progress gives its budget unit back: had the first 128 spent the
/// budget, the others would report `Pending` (with the task woken) before they registered,
/// and the task would spin without ever waiting on the last one.
pub async fn first_ready<F: std::future::Future + Unpin>(
    futs: &mut [F],
    polls: &std::sync::atomic::AtomicUsize,
) -> usize {
    std::future::poll_fn(|cx| {
        polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        for (i, f) in futs.iter_mut().enumerate() {
            if std::pin::Pin::new(f).poll(cx).is_ready() {
                return std::task::Poll::Ready(i);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Inside a goroutine on a one-worker runtime: a goroutine that panics while holding
/// `guard`, whose destructor may spend the cooperative budget, unwinds without yielding. std
/// counts panics per thread, so a goroutine run meanwhile would see
/// `std::thread::panicking()` (and poison each std `Mutex` guard it dropped); a watcher that
/// yields in a loop checks that none did.
pub fn assert_unwind_does_not_yield<G: Send + 'static>(guard: G) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    let (stop, saw_panicking, turns) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let watcher = {
        let (stop, saw_panicking, turns) = (stop.clone(), saw_panicking.clone(), turns.clone());
        gorust::go(move || {
            while !stop.load(SeqCst) {
                saw_panicking.fetch_or(std::thread::panicking(), SeqCst);
                turns.fetch_add(1, SeqCst);
                gorust::yield_now();
            }
        })
    };
    while turns.load(SeqCst) == 0 {
        gorust::yield_now();
    }
    // The watcher is in its loop, yielding: it runs whenever the panicker yields.
    let panicker = gorust::go(move || {
        let _guard = guard;
        panic!("on purpose, to unwind through a destructor that spends the budget");
    });
    assert!(panicker.join().is_err());
    stop.store(true, SeqCst);
    watcher.join().unwrap();
    assert!(
        !saw_panicking.load(SeqCst),
        "another goroutine ran while one was unwinding, and saw its panic"
    );
}

/// Asserts that a task driven by [`first_ready`] slept between its polls: one to register
/// everywhere, one for the ready future, a few spurious ones at most.
pub fn assert_slept(polls: &std::sync::atomic::AtomicUsize) {
    let polls = polls.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        polls <= 8,
        "{polls} polls: the task spun instead of sleeping"
    );
}

/// Runs a test body on each scheduler configuration (1 worker, 2 workers, 4 workers).
#[macro_export]
macro_rules! on_each_config {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn one_worker() {
                $crate::common::within(std::time::Duration::from_secs(120), || {
                    $crate::common::run_on(1, $body)
                });
            }
            #[test]
            fn two_workers() {
                $crate::common::within(std::time::Duration::from_secs(120), || {
                    $crate::common::run_on(2, $body)
                });
            }
            #[test]
            fn four_workers() {
                $crate::common::within(std::time::Duration::from_secs(120), || {
                    $crate::common::run_on(4, $body)
                });
            }
        }
    };
}

/// A client goroutine's work: `rounds` messages (tagged with `tag`, padded with `pad` bytes)
/// written to an echo server at `addr`, each read back and compared.
pub fn echo_rounds(addr: std::net::SocketAddr, tag: usize, rounds: usize, pad: usize) {
    use std::io::{Read, Write};
    let mut s = gorust::net::TcpStream::connect(addr).unwrap();
    for round in 0..rounds {
        let msg = format!("client {tag} round {round} {}", "x".repeat(pad));
        s.write_all(msg.as_bytes()).unwrap();
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, msg.as_bytes());
    }
}

/// The client half of a scale test (run in a child process, so that each process stays under
/// the descriptor limit): `conns` connections to `addr` from `threads` plain threads, all open
/// at once before any is used; each echoes one `msg`-byte message. Returns the bytes echoed.
pub fn scale_client(addr: &str, conns: usize, threads: usize, msg: usize) -> usize {
    use std::io::{Read, Write};
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(threads));
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            let addr = addr.to_string();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut conns: Vec<std::net::TcpStream> = (0..conns / threads)
                    .map(|_| {
                        let s = std::net::TcpStream::connect(&addr).expect("connect");
                        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                        s
                    })
                    .collect();
                // Every connection is open before any is used.
                barrier.wait();
                let mut echoed = 0usize;
                for (i, s) in conns.iter_mut().enumerate() {
                    s.write_all(&vec![(t * 31 + i) as u8; msg]).unwrap();
                }
                for (i, s) in conns.iter_mut().enumerate() {
                    let mut back = vec![0u8; msg];
                    s.read_exact(&mut back).unwrap();
                    assert_eq!(back, vec![(t * 31 + i) as u8; msg]);
                    echoed += msg;
                }
                barrier.wait();
                echoed
            })
        })
        .collect();
    hs.into_iter().map(|h| h.join().unwrap()).sum()
}

/// An event-loop echo server on a fresh loopback listener (`tweak` adjusts its builder); returns the loop, its address and the disconnect count.
pub fn echo_loop(
    tweak: impl FnOnce(gorust::eventloop::Builder) -> gorust::eventloop::Builder,
) -> (
    gorust::eventloop::EventLoop,
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    echo_loop_on(
        gorust::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        tweak,
    )
}

/// A goroutine writing 1 MiB chunks to `s` until a write fails (a close, a reset): its error.
/// To park a writer on a full send buffer.
pub fn write_until_error<S>(s: std::sync::Arc<S>) -> gorust::JoinHandle<std::io::Error>
where
    S: Send + Sync + 'static,
    for<'a> &'a S: std::io::Write,
{
    gorust::go(move || {
        let chunk = vec![0u8; 1 << 20];
        loop {
            if let Err(e) = std::io::Write::write(&mut &*s, &chunk) {
                return e;
            }
        }
    })
}

/// Serves `el` on a fresh loopback TCP listener, from a goroutine; its address.
pub fn serve_loopback(el: &gorust::eventloop::EventLoop) -> std::net::SocketAddr {
    let l = gorust::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = el.clone();
    gorust::go(move || server.serve(l));
    addr
}

/// [`echo_loop`] on a listener the caller made (to set its socket options first).
pub fn echo_loop_on(
    l: gorust::net::TcpListener,
    tweak: impl FnOnce(gorust::eventloop::Builder) -> gorust::eventloop::Builder,
) -> (
    gorust::eventloop::EventLoop,
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let gone = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let g = gone.clone();
    let b = gorust::eventloop::EventLoop::builder()
        .on_request(|c, _| {
            let n = c.reader().len();
            let data = c.reader().next(n)?;
            c.writer().write_bytes(&data);
            Ok(())
        })
        .on_disconnect(move |_, _| {
            g.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
    let el = tweak(b).build().unwrap();
    let addr = l.local_addr().unwrap();
    let server = el.clone();
    gorust::go(move || server.serve(l));
    (el, addr, gone)
}

/// Serves `el` on a fresh loopback listener in a goroutine.
pub fn start<S: Send + 'static>(
    el: &gorust::eventloop::EventLoop<S>,
) -> (
    std::net::SocketAddr,
    gorust::JoinHandle<std::io::Result<()>>,
) {
    let l = gorust::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = el.clone();
    (addr, gorust::go(move || server.serve(l)))
}

/// Starts a goroutine on `rt` that owns `value` and parks until the runtime shuts down (the
/// channel's sender stays alive), and waits until it has started.
pub fn park_holding<T: Send + 'static>(rt: &gorust::Runtime, value: T) {
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (keep_tx, rx) = gorust::sync::mpsc::channel::<()>();
    drop(rt.go(move || {
        let _value = value;
        let _keep = keep_tx;
        started_tx.send(()).unwrap();
        let _ = rx.recv();
    }));
    started_rx.recv().unwrap();
}

/// Runs `cmd` to its end with its output captured, as `Command::output` does, but for at most
/// `limit`: past it the child is killed (by its PID) and the test fails with what it printed,
/// instead of hanging the test run.
pub fn output_within(cmd: &mut std::process::Command, limit: Duration) -> std::process::Output {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the child starts");
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("the child's output"),
        Err(_) => {
            // SAFETY: our own child, not yet reaped (its waiter has not returned).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let out = rx.recv().unwrap().expect("the child's output");
            panic!(
                "the child ran past {limit:?} and was killed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// What two or more goroutines' concurrent `write_all`s of `n` bytes each (all one byte value
/// per writer, one value from `values` each) delivered to the reader: each write in one piece,
/// and each exactly once.
pub fn assert_each_write_whole(got: &[u8], n: usize, values: &[u8]) {
    assert_eq!(got.len(), n * values.len());
    for (i, chunk) in got.chunks(n).enumerate() {
        let other = chunk.iter().position(|&b| b != chunk[0]);
        assert_eq!(
            other, None,
            "write {i} ({}) was interleaved",
            chunk[0] as char
        );
    }
    let mut firsts: Vec<u8> = got.chunks(n).map(|c| c[0]).collect();
    firsts.sort();
    let mut want = values.to_vec();
    want.sort();
    assert_eq!(firsts, want, "each write once");
}
