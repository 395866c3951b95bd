//! The monitor thread polls the netpoller of a worker stuck in a long-running goroutine, so
//! that I/O readiness registered there still reaches tasks that can run elsewhere; with one
//! worker it does so from a descriptor table of its own, and leaves the wakers to the worker.

mod common;

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::{mpsc, Arc};
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};

use common::within;

use gorust::net::UnixStream;

#[test]
fn a_stuck_workers_poller_is_polled_by_the_monitor() {
    let rt = gorust::Runtime::builder().workers(2).build().unwrap();
    let (done_tx, done_rx) = mpsc::channel::<Instant>();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let (mut writer, reader) = std::os::unix::net::UnixStream::pair().unwrap();
    let spin_for = Duration::from_millis(1500);
    let hog = rt.go(move || {
        let reader = UnixStream::from(reader);
        // Register the socket with this worker's poller: a read that waits, then times out.
        reader
            .set_read_deadline(Some(Instant::now() + Duration::from_millis(5)))
            .unwrap();
        let mut b = [0u8; 1];
        assert_eq!(
            std::io::Read::read(&mut &reader, &mut b)
                .unwrap_err()
                .kind(),
            std::io::ErrorKind::TimedOut
        );
        reader.set_read_deadline(None).unwrap();
        // A future waits on the same socket; it may run on either worker.
        // It says when it waits (its first poll found nothing), so that the write below comes
        // after: a write before would be read at that first poll, on whichever worker, and
        // the monitor's path would go untested (test audit, session 29).
        gorust::spawn(async move {
            let mut b = [0u8; 1];
            let mut ready_tx = Some(ready_tx);
            std::future::poll_fn(|cx| {
                let p = reader.poll_read(cx, &mut b);
                if p.is_pending() {
                    if let Some(tx) = ready_tx.take() {
                        tx.send(()).unwrap();
                    }
                }
                p
            })
            .await
            .unwrap();
            done_tx.send(Instant::now()).unwrap();
        });
        // Keep this worker busy without ever returning to its scheduler loop.
        let start = Instant::now();
        while start.elapsed() < spin_for {
            std::hint::spin_loop();
        }
        start + spin_for
    });
    ready_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the future never polled");
    writer.write_all(b"x").unwrap();
    let sent = Instant::now();
    let done = done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the future never woke");
    let hog_end = hog.join().unwrap();
    assert!(
        done < hog_end,
        "the readiness waited for the stuck worker ({:?} after the write)",
        done - sent
    );
}

/// The descriptors the threads named `comm` of this process see, one set per thread.
fn tables_of(comm: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if name.trim_end() != comm {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(task.path().join("fd")) else {
            continue;
        };
        let mut fds: Vec<String> = fds
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        fds.sort();
        out.push(fds);
    }
    out
}

/// The table of this process's one monitor thread, once it has named itself: a new thread
/// sets its own name, so just after `build` it may not be found yet (the child test below
/// failed that way under load).
fn monitor_table() -> Vec<String> {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let mut tables = tables_of("gorust-sysmon");
        assert!(tables.len() <= 1, "more than one monitor: {tables:?}");
        if let Some(table) = tables.pop() {
            return table;
        }
        assert!(Instant::now() < end, "no monitor thread after 20 s");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The monitor of a one-worker runtime moves to a table of its own with only its poller's two
/// descriptors (so that the worker's socket calls skip the kernel's per-call file reference);
/// a socket opened afterwards is not in it. With two workers it stays in the process's table.
/// In a child process, where no other runtime's monitor runs.
#[test]
fn a_one_worker_monitor_keeps_only_its_pollers_descriptors() {
    let out = common::output_within(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "monitor_table_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("GORUST_CHILD", "monitor-table"),
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    if stdout.contains("monitor-table: skipped") {
        common::skip("close_range(CLOSE_RANGE_UNSHARE) on a thread");
        return;
    }
    assert!(
        out.status.success() && stdout.contains("monitor-table: ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn monitor_table_child() {
    if std::env::var("GORUST_CHILD").as_deref() != Ok("monitor-table") {
        return;
    }
    // A thread that leaves the table keeping nothing, then ends: can this kernel do it?
    let supported = std::thread::spawn(|| {
        // SAFETY: unshares this short-lived thread's table; nothing is open at the highest
        // number, so nothing is closed.
        let r = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                u32::MAX,
                u32::MAX,
                libc::CLOSE_RANGE_UNSHARE,
            )
        };
        r == 0
    })
    .join()
    .unwrap();
    if !supported {
        println!("monitor-table: skipped (no close_range unsharing here)");
        return;
    }
    let (mine, process) = gorust::Runtime::builder()
        .workers(1)
        .build()
        .unwrap()
        .run(|| {
            let listener = gorust::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let end = Instant::now() + Duration::from_secs(20);
            let mine = loop {
                let table = monitor_table();
                if table.len() == 2 || Instant::now() > end {
                    break table;
                }
                gorust::time::sleep(Duration::from_millis(5));
            };
            let listener_fd = listener.as_raw_fd().to_string();
            assert!(
                !mine.contains(&listener_fd),
                "the monitor sees a later socket"
            );
            (mine, tables_of("monitor_table_c").pop())
        });
    assert_eq!(mine.len(), 2, "the monitor's table: {mine:?}");
    if let Some(process) = process {
        assert!(process.len() > 2, "the process's table: {process:?}");
    }
    let shared = gorust::Runtime::builder()
        .workers(2)
        .build()
        .unwrap()
        .run(|| {
            monitor_table();
            std::thread::sleep(Duration::from_millis(50));
            monitor_table().len()
        });
    assert!(shared > 2, "with two workers the monitor left the table");
    // One worker, given work before `run`: worker 0 has its own thread, and the caller's
    // thread waits in the table too, so the monitor stays.
    let rt = gorust::Runtime::builder().workers(1).build().unwrap();
    let early = rt.go(|| ());
    let stays = rt.run(move || {
        early.join().unwrap();
        monitor_table();
        std::thread::sleep(Duration::from_millis(50));
        monitor_table().len()
    });
    assert!(
        stays > 2,
        "the monitor left the table of a runtime run on its own thread"
    );
    println!("monitor-table: ok");
}

/// A waker that writes to an eventfd, as an executor's might (a pipe, an eventfd): one opened
/// after the monitor left the process's table, so that only a thread of the process's table
/// can call it and be heard.
struct EventFdWaker(OwnedFd);

impl Wake for EventFdWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to our eventfd.
        let n = unsafe { libc::write(self.0.as_raw_fd(), one.as_ptr().cast(), 8) };
        assert_eq!(n, 8, "the wake-up was not written");
    }
}

/// A socket pair: a plain end to write, and a gorust end whose reads register with the
/// current runtime's poller.
fn stream_pair() -> (std::os::unix::net::UnixStream, UnixStream) {
    let (writer, reader) = std::os::unix::net::UnixStream::pair().unwrap();
    (writer, UnixStream::from(reader))
}

/// In a one-worker runtime's main goroutine: blocks the worker until the waiter says it is
/// armed, parks long enough for the monitor to leave the table (its first look, ~10 ms after
/// `run` began), then writes the byte the waiter waits for.
fn write_once_armed(armed: &mpsc::Receiver<()>, writer: &mut std::os::unix::net::UnixStream) {
    armed.recv().unwrap();
    gorust::time::sleep(Duration::from_millis(50));
    writer.write_all(b"x").unwrap();
}

/// A one-worker runtime whose only worker is stuck: the monitor polls its poller from its own
/// table and must not call the wakers there (this one writes to a descriptor the monitor's
/// table does not have, and the wake-up would be lost); the worker calls them once it polls
/// again. The waiter is a blocking-pool thread polling a stream registered with that poller.
#[test]
fn a_stuck_single_workers_wakers_reach_their_waiter() {
    within(Duration::from_secs(30), || {
        common::run_on(1, || {
            let (mut writer, reader) = stream_pair();
            let (armed_tx, armed_rx) = mpsc::channel::<()>();
            let waiter = gorust::spawn_blocking(move || {
                // SAFETY: eventfd takes two integers; the result is checked below.
                let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
                assert!(fd >= 0, "eventfd failed");
                // SAFETY: just returned, owned by nobody else.
                let efd = unsafe { OwnedFd::from_raw_fd(fd) };
                let raw = efd.as_raw_fd();
                let waker = Waker::from(Arc::new(EventFdWaker(efd)));
                let mut cx = Context::from_waker(&waker);
                let mut b = [0u8; 1];
                let mut armed = Some(armed_tx);
                loop {
                    if reader.poll_read(&mut cx, &mut b).is_ready() {
                        return;
                    }
                    if let Some(tx) = armed.take() {
                        tx.send(()).unwrap();
                    }
                    let mut count = [0u8; 8];
                    // SAFETY: reads 8 bytes into a live buffer from our eventfd; blocks
                    // until the waker writes.
                    let n = unsafe { libc::read(raw, count.as_mut_ptr().cast(), 8) };
                    assert_eq!(n, 8, "the eventfd read failed");
                }
            });
            write_once_armed(&armed_rx, &mut writer);
            // Keeps the worker stuck (no park) for 200 ms: the monitor polls meanwhile.
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(200) {
                std::hint::spin_loop();
            }
            gorust::block_on(waiter).unwrap()
        })
    });
}

/// A one-worker runtime whose goroutine blocks its thread (a std channel) until a
/// blocking-pool thread's `block_on` read completes: only the monitor can deliver that
/// readiness, from its own table, and the waker it must call there is a plain thread's, which
/// touches no descriptor. Deferred to the worker, it would wait for good (review, session 18).
#[test]
fn a_thread_waiting_on_a_blocked_single_worker_is_still_woken() {
    within(Duration::from_secs(60), || {
        common::run_on(1, || {
            let (mut writer, reader) = stream_pair();
            let (armed_tx, armed_rx) = mpsc::channel::<()>();
            let (done_tx, done_rx) = mpsc::channel::<()>();
            drop(gorust::spawn_blocking(move || {
                let mut b = [0u8; 1];
                let mut armed = Some(armed_tx);
                gorust::block_on(std::future::poll_fn(|cx| {
                    let r = reader.poll_read(cx, &mut b);
                    if r.is_pending() {
                        if let Some(tx) = armed.take() {
                            tx.send(()).unwrap();
                        }
                    }
                    r
                }))
                .unwrap();
                done_tx.send(()).unwrap();
            }));
            write_once_armed(&armed_rx, &mut writer);
            // Blocks the only worker's thread: nothing but the monitor polls now.
            done_rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the reader's thread was never woken");
        })
    });
}
