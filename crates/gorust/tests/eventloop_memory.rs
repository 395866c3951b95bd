//! An idle event-loop connection holds no buffer node and no goroutine (issue 4, item 6's
//! structural half; the RSS measurement is separate), and a closed one holds no memory. Its
//! own test binary, so that the global node pool's count and the counting allocator see no
//! other test's buffers.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{run_on, within};
use gorust::net::TcpStream;

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; the counter is a plain atomic.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is the system allocator's.
        unsafe { std::alloc::System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        LIVE.fetch_sub(l.size() as isize, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: `p` came from `alloc` above with this layout.
        unsafe { std::alloc::System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The tests of this binary run one at a time: the allocator's count is process-wide.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Closed connections hold no memory while their idle timer is still pending: the timer is
/// cancelled at teardown. Before, its waker's `Weak` kept each connection's allocation until
/// the timer fired, an hour later here (review, session 8).
#[test]
fn closed_connections_hold_no_memory_until_their_idle_timer() {
    const N: usize = 2000;
    let _one = one_at_a_time();
    within(Duration::from_secs(120), || {
        run_on(2, || {
            let (el, addr, gone) =
                common::echo_loop(|b| b.idle_timeout(Some(Duration::from_secs(3600))));
            let round_trip = |n: usize| {
                for _ in 0..n {
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.write_all(b"ping").unwrap();
                    let mut back = [0u8; 4];
                    s.read_exact(&mut back).unwrap();
                }
            };
            let settle = |closed: usize| {
                common::eventually("all disconnected", || {
                    gone.load(std::sync::atomic::Ordering::SeqCst) == closed
                        && el.connections() == 0
                });
            };
            // Warm the pools, slabs and heaps first.
            round_trip(200);
            settle(200);
            let before = LIVE.load(std::sync::atomic::Ordering::Relaxed);
            round_trip(N);
            settle(200 + N);
            let per_conn = (LIVE.load(std::sync::atomic::Ordering::Relaxed) - before) / N as isize;
            // A cancelled timer entry and its heap slot remain until the heap compacts.
            assert!(
                per_conn < 256,
                "{per_conn} bytes kept per closed connection"
            );
        })
    });
}

#[test]
fn idle_connections_hold_no_node_and_no_goroutine() {
    const N: usize = 1000;
    let _one = one_at_a_time();
    within(Duration::from_secs(120), || {
        run_on(2, || {
            let (el, addr, _gone) = common::echo_loop(|b| b);
            let msg = vec![b'm'; 4096];
            let streams: Vec<TcpStream> = (0..N)
                .map(|_| {
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.write_all(&msg).unwrap();
                    let mut back = vec![0u8; msg.len()];
                    s.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg);
                    s
                })
                .collect();
            let end = Instant::now() + Duration::from_secs(20);
            loop {
                let in_use = gorust::buffer::pool_stats().in_use;
                // main + the serve loop
                let goroutines = gorust::num_goroutines();
                if in_use == 0 && goroutines <= 2 && el.connections() == N {
                    break;
                }
                assert!(
                    Instant::now() < end,
                    "{N} idle connections hold {in_use} nodes and {goroutines} goroutines"
                );
                gorust::time::sleep(Duration::from_millis(5));
            }
            drop(streams);
        })
    });
}

/// A peer that trickles one byte per segment, against a handler that waits for a whole line:
/// the input grows by the bytes, not by a buffer node per read. Before, each read's node was
/// linked into the input, 4 KiB for each byte (review, session 8).
#[test]
fn trickled_input_takes_memory_by_the_byte() {
    const BYTES: usize = 200;
    let _one = one_at_a_time();
    within(Duration::from_secs(120), || {
        run_on(2, || {
            let el = gorust::eventloop::EventLoop::builder()
                .on_request(|c, _| {
                    // Nothing until a whole line is there (then echo it).
                    let Ok(line) = c.reader().until(b'\n') else {
                        return Ok(());
                    };
                    let reply = line.to_vec();
                    drop(line);
                    c.writer().write_bytes(&reply);
                    Ok(())
                })
                .build()
                .unwrap();
            let (addr, _) = common::start(&el);
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            for _ in 0..BYTES {
                s.write_all(b"x").unwrap();
                gorust::time::sleep(Duration::from_millis(1));
            }
            let in_use = gorust::buffer::pool_stats().in_use;
            assert!(in_use < 8, "{in_use} nodes hold {BYTES} trickled bytes");
            s.write_all(b"\n").unwrap();
            let mut back = vec![0u8; BYTES + 1];
            s.read_exact(&mut back).unwrap();
            assert!(back[..BYTES].iter().all(|&b| b == b'x'));
        })
    });
}
