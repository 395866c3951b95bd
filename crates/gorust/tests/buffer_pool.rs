//! The global node pool stays bounded after a burst, and every block comes back (a failed
//! allocation counts none). One test in its own binary, so no other test moves the pool's
//! counters meanwhile.

use gorust::buffer::{pool_stats, LinkBuffer, NODE_SIZES, POOL_LIMITS};

#[test]
fn a_burst_leaves_a_bounded_pool_and_no_block_in_use() {
    let before = pool_stats();
    // 3,000 connections with a small request each (4 KiB nodes), 300 with 20 KiB (64 KiB
    // nodes), 20 with a 1 MiB malloc (the large path); some of them sliced (shared blocks).
    let mut conns: Vec<LinkBuffer> = Vec::new();
    let mut slices = Vec::new();
    for i in 0..3_000 {
        let mut b = LinkBuffer::new();
        b.write_bytes(b"GET / HTTP/1.1\r\n\r\n");
        b.flush();
        if i % 10 == 0 {
            slices.push(b.slice(4).unwrap());
        }
        conns.push(b);
    }
    for _ in 0..300 {
        let mut b = LinkBuffer::new();
        b.write_bytes(&[7; 20_000]);
        b.flush();
        conns.push(b);
    }
    for _ in 0..20 {
        let mut b = LinkBuffer::new();
        b.malloc(1 << 20).fill(1);
        b.flush();
        conns.push(b);
    }
    let during = pool_stats();
    assert_eq!(during.in_use, before.in_use + 3_320);
    assert!(conns.iter().map(LinkBuffer::capacity_bytes).sum::<usize>() >= 3_000 * NODE_SIZES[0]);

    // Every connection reads its request and releases.
    for b in &mut conns {
        let n = b.len();
        b.skip(n).unwrap();
        b.release();
        assert_eq!(b.node_count(), 0);
    }
    drop(slices);
    let after = pool_stats();
    assert_eq!(after.in_use, before.in_use, "every block came back");
    for (cached, limit) in after.cached.iter().zip(POOL_LIMITS) {
        assert!(*cached <= limit, "{after:?}");
    }
    assert_eq!(
        after.cached[0], POOL_LIMITS[0],
        "the 4 KiB list is full after the burst"
    );
    assert_eq!(after.cached[2], 300.min(POOL_LIMITS[2]));
    drop(conns);
    assert_eq!(pool_stats(), after, "empty buffers hold nothing more");

    // A `malloc` too large to allocate panics (as documented) and counts no block in use.
    // Before, the count went up before the allocation and stayed up (review, session 28).
    let huge = std::panic::catch_unwind(|| {
        LinkBuffer::new().malloc(1 << 63);
    });
    assert!(huge.is_err());
    assert_eq!(pool_stats(), after, "the failed malloc counts no block");
}
