//! A goroutine that catches the unwind by which a runtime's shutdown cancels it.
//!
//! `Runtime`'s drop unwinds every goroutine still parked, on its own worker, by a panic. A
//! `catch_unwind` of the goroutine's own around the wait stops that unwind; the goroutine may
//! then run on, but each wait it makes panics again instead of waiting (before, the wait
//! blocked the worker's shutdown step, and `Runtime`'s drop with it, for as long as the wait
//! lasted). A goroutine that keeps catching aborts the process, with a message.

mod common;

use std::future::Future;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::within;

/// What a goroutine recorded about its cancellation.
#[derive(Default)]
struct Seen {
    /// Catches of the shutdown's unwind (the first wait's) or of a refused wait's panic.
    caught: AtomicUsize,
    /// Payloads of refused waits that read as the documented message.
    refusals_with_message: AtomicUsize,
    /// A free lock taken after the catch (no wait, so allowed).
    took_free_lock: AtomicUsize,
    /// Destructors that ran during a refused wait's unwind.
    dropped: AtomicUsize,
}

struct CountDrop(Arc<Seen>);

impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// Catches a panic from `f`, counting it, and whether its payload is the refusal's message.
fn catch(seen: &Seen, f: impl FnOnce()) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
        seen.caught.fetch_add(1, Ordering::SeqCst);
        if p.downcast_ref::<&str>()
            .is_some_and(|m| m.contains("being cancelled by its runtime's shutdown"))
        {
            seen.refusals_with_message.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Parks a goroutine in `rx.recv()` inside a `catch_unwind`; once shutdown's unwind is caught
/// it takes a free lock, then runs `after` (a wait that would last an hour), catching its
/// panic, then waits once more with nothing around it.
fn catching_goroutine(
    rt: &gorust::Runtime,
    seen: &Arc<Seen>,
    started: &Arc<AtomicUsize>,
    after: impl FnOnce() + Send + 'static,
) {
    let (seen, started) = (seen.clone(), started.clone());
    let (keep, rx) = gorust::sync::mpsc::channel::<()>();
    drop(rt.go(move || {
        let _keep = keep;
        started.fetch_add(1, Ordering::SeqCst);
        catch(&seen, || {
            let _ = rx.recv();
        });
        let free = gorust::sync::Mutex::new(());
        drop(free.lock());
        seen.took_free_lock.fetch_add(1, Ordering::SeqCst);
        catch(&seen, || {
            let _counted = CountDrop(seen.clone());
            after();
        });
        let _counted = CountDrop(seen.clone());
        gorust::time::sleep(Duration::from_secs(3600));
        unreachable!("the last wait is refused too");
    }));
}

/// Each kind of wait after a caught cancellation (a sleep, a channel, a lock another thread
/// holds, a socket read) is refused with the documented payload, and the runtime's
/// drop ends at once. Before, the first such wait held the worker's shutdown step for its
/// hour.
#[test]
fn waits_after_a_caught_cancellation_are_refused() {
    within(Duration::from_secs(60), || {
        for workers in [1, 2] {
            let rt = gorust::Runtime::builder().workers(workers).build().unwrap();
            let seen = Arc::new(Seen::default());
            let started = Arc::new(AtomicUsize::new(0));
            let held = Arc::new(gorust::sync::Mutex::new(()));
            let (locked_tx, locked_rx) = std::sync::mpsc::channel();
            let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
            let holder = {
                let held = held.clone();
                std::thread::spawn(move || {
                    let _guard = held.lock();
                    locked_tx.send(()).unwrap();
                    let _ = release_rx.recv();
                })
            };
            locked_rx.recv().unwrap();
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server, _) = listener.accept().unwrap();
            let server = gorust::net::TcpStream::from(server);
            let (_keep, idle_rx) = gorust::sync::mpsc::channel::<()>();

            catching_goroutine(&rt, &seen, &started, || {
                gorust::time::sleep(Duration::from_secs(3600))
            });
            catching_goroutine(&rt, &seen, &started, move || {
                let _ = idle_rx.recv();
            });
            catching_goroutine(&rt, &seen, &started, move || drop(held.lock()));
            catching_goroutine(&rt, &seen, &started, move || {
                let _ = (&server).read(&mut [0u8; 16]);
            });
            while started.load(Ordering::SeqCst) < 4 {
                std::thread::sleep(Duration::from_millis(1));
            }
            // Let each reach its wait and park.
            std::thread::sleep(Duration::from_millis(50));
            let dropping = Instant::now();
            drop(rt);
            let took = dropping.elapsed();
            release_tx.send(()).unwrap();
            holder.join().unwrap();
            drop(client);
            assert!(
                took < Duration::from_secs(20),
                "{workers} workers: the drop took {took:?}"
            );
            // Per goroutine: the shutdown's unwind and the refused `after`, caught.
            assert_eq!(seen.caught.load(Ordering::SeqCst), 8, "{workers} workers");
            assert_eq!(
                seen.refusals_with_message.load(Ordering::SeqCst),
                4,
                "{workers} workers: each refused wait's payload says why"
            );
            assert_eq!(seen.took_free_lock.load(Ordering::SeqCst), 4);
            // The one around `after` and the one before the last wait.
            assert_eq!(seen.dropped.load(Ordering::SeqCst), 8);
        }
    });
}

/// A destructor run by the shutdown's unwind may still wait (it is not a caught
/// cancellation): here one sleeps 20 ms in a goroutine that catches nothing.
#[test]
fn a_destructor_during_the_unwind_may_still_wait() {
    struct SleepOnDrop(Arc<AtomicUsize>);
    impl Drop for SleepOnDrop {
        fn drop(&mut self) {
            let t = Instant::now();
            gorust::time::sleep(Duration::from_millis(20));
            if t.elapsed() >= Duration::from_millis(20) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    within(Duration::from_secs(60), || {
        let rt = gorust::Runtime::builder().workers(1).build().unwrap();
        let slept = Arc::new(AtomicUsize::new(0));
        common::park_holding(&rt, SleepOnDrop(slept.clone()));
        drop(rt);
        assert_eq!(slept.load(Ordering::SeqCst), 1, "the destructor slept");
    });
}

/// A goroutine that catches the refusal in a loop around a wait would spin for ever: after a
/// thousand refusals the process aborts, naming the goroutine. Before, the loop blocked the
/// shutdown in its first wait for good.
#[test]
fn a_goroutine_that_keeps_catching_its_cancellation_aborts_with_a_message() {
    if std::env::var("GORUST_CATCH_FOREVER").is_ok() {
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "catch_forever_child", "--nocapture"])
        .env("GORUST_CATCH_FOREVER", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = status.unwrap_or_else(|| panic!("the child hung for 60 s; stderr: {err}"));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGABRT), "{status:?}; {err}");
    assert!(
        err.contains("caught the panic that cancels it 1000 times"),
        "{err}"
    );
    assert!(err.contains("std::panic::resume_unwind"), "{err}");
}

#[test]
fn catch_forever_child() {
    if std::env::var("GORUST_CATCH_FOREVER").is_err() {
        return;
    }
    let rt = gorust::Runtime::builder().workers(1).build().unwrap();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (keep, rx) = gorust::sync::mpsc::channel::<()>();
    drop(rt.go(move || {
        let _keep = keep;
        started_tx.send(()).unwrap();
        loop {
            let _ = catch_unwind(AssertUnwindSafe(|| rx.recv()));
        }
    }));
    started_rx.recv().unwrap();
    drop(rt);
    unreachable!("the shutdown must abort");
}

/// A goroutine that parks in a destructor its own panic's unwind is running, and is still
/// parked there when the runtime is dropped, is leaked with a message, not unwound: a forced
/// unwind out of that destructor made Rust abort the process ("panic in a destructor during
/// cleanup"; review, session 28).
#[test]
fn a_goroutine_parked_while_unwinding_a_panic_does_not_abort_the_shutdown() {
    if std::env::var("GORUST_PARKED_UNWINDING").is_ok() {
        return;
    }
    let out = common::output_within(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "parked_unwinding_child", "--nocapture"])
            .env("GORUST_PARKED_UNWINDING", "1"),
        std::time::Duration::from_secs(120),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}; {err}", out.status);
    assert!(stdout.contains("the runtime dropped cleanly"), "{stdout}");
    assert!(
        err.contains("leaked: it parked while unwinding a panic"),
        "{err}"
    );
}

/// The same shutdown with stderr a pipe nobody reads any more (a log collector that died):
/// the leak's message fails with `EPIPE`. Written with `eprintln!`, that failure was a panic,
/// which dropped the coroutine on the way out and so ran the very forced unwind the leak
/// avoids: the process aborted (review, session 30).
#[test]
fn the_leak_s_message_to_a_closed_stderr_does_not_abort_the_shutdown() {
    if std::env::var("GORUST_PARKED_UNWINDING").is_ok() {
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "parked_unwinding_child", "--nocapture"])
        .env("GORUST_PARKED_UNWINDING", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}; {stdout}", out.status);
    assert!(stdout.contains("the runtime dropped cleanly"), "{stdout}");
}

#[test]
fn parked_unwinding_child() {
    if std::env::var("GORUST_PARKED_UNWINDING").is_err() {
        return;
    }
    /// Says it is dropping, then waits for a message that never comes.
    struct WaitsWhenDropped(
        gorust::sync::mpsc::Receiver<()>,
        std::sync::mpsc::Sender<()>,
    );
    impl Drop for WaitsWhenDropped {
        fn drop(&mut self) {
            let _ = self.1.send(());
            let _ = self.0.recv();
        }
    }
    let rt = gorust::Runtime::builder().workers(1).build().unwrap();
    let (keep, rx) = gorust::sync::mpsc::channel::<()>();
    let (dropping_tx, dropping_rx) = std::sync::mpsc::channel();
    drop(rt.go(move || {
        let _waits = WaitsWhenDropped(rx, dropping_tx);
        panic!("this goroutine panics on purpose");
    }));
    dropping_rx.recv().unwrap();
    // The destructor has parked (or is about to: the drop waits for it either way).
    std::thread::sleep(Duration::from_millis(50));
    drop(rt);
    drop(keep);
    println!("the runtime dropped cleanly");
}

/// A rendezvous send in a goroutine that caught its cancellation is refused before it offers
/// its value: offered first, a receiver took it in the moment before the refusal, and a
/// delivered send was reported as refused (a retry would send it twice; review, session 31).
#[test]
fn a_refused_rendezvous_send_delivers_nothing() {
    /// A receive whose waker takes the message at once, from inside the sender's wake.
    struct TakesOnWake {
        rx: Arc<gorust::sync::mpsc::Receiver<u32>>,
        got: std::sync::Mutex<Option<u32>>,
    }
    impl std::task::Wake for TakesOnWake {
        fn wake(self: Arc<Self>) {
            if let Ok(v) = self.rx.try_recv() {
                *self.got.lock().unwrap() = Some(v);
            }
        }
    }
    within(Duration::from_secs(60), || {
        let rt = gorust::Runtime::builder().workers(1).build().unwrap();
        let seen = Arc::new(Seen::default());
        let started = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = gorust::sync::mpsc::sync_channel::<u32>(0);
        let taker = Arc::new(TakesOnWake {
            rx: Arc::new(rx),
            got: std::sync::Mutex::new(None),
        });
        let waker = std::task::Waker::from(taker.clone());
        let rx = taker.rx.clone();
        let mut receive = std::pin::pin!(rx.recv_async());
        let polled = receive
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&waker));
        assert!(polled.is_pending(), "a receive waits");
        catching_goroutine(&rt, &seen, &started, move || {
            let _ = tx.send(7);
        });
        while started.load(Ordering::SeqCst) < 1 {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(50));
        drop(rt);
        assert_eq!(
            seen.refusals_with_message.load(Ordering::SeqCst),
            1,
            "the send is refused"
        );
        assert_eq!(*taker.got.lock().unwrap(), None, "and delivered nothing");
    });
}
