//! The monitor thread polls the netpoller of a worker stuck in a long-running goroutine, so
//! that I/O readiness registered there still reaches tasks that can run elsewhere.

use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
        gorust::spawn(async move {
            let mut b = [0u8; 1];
            std::future::poll_fn(|cx| reader.poll_read(cx, &mut b))
                .await
                .unwrap();
            done_tx.send(Instant::now()).unwrap();
        });
        ready_tx.send(()).unwrap();
        // Keep this worker busy without ever returning to its scheduler loop.
        let start = Instant::now();
        while start.elapsed() < spin_for {
            std::hint::spin_loop();
        }
        start + spin_for
    });
    ready_rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(50));
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
