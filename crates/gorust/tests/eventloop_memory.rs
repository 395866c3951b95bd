//! An idle event-loop connection holds no buffer node and no goroutine (issue 4, item 6's
//! structural half; the RSS measurement is separate). Its own test binary, so that the global
//! node pool's count sees no other test's buffers.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{run_on, within};
use gorust::net::TcpStream;

#[test]
fn idle_connections_hold_no_node_and_no_goroutine() {
    const N: usize = 1000;
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
