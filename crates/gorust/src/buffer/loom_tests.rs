//! Loom model of a block shared by two buffers on two threads.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p gorust --lib --release loom_`.

use loom::thread;

use super::{pool_stats, LinkBuffer};

/// After `slice` splits a node, each buffer reads its own part on its own thread and drops it;
/// in every interleaving the block is returned exactly once, after both reads (the Release
/// decrement / Acquire fence pair of `Block::drop`).
#[test]
fn loom_buffer_shared_block_returned_once() {
    loom::model(|| {
        let before = pool_stats().in_use;
        let mut a = LinkBuffer::new();
        a.write_bytes(b"abcdef");
        a.flush();
        let b = a.slice(3).unwrap();
        assert_eq!(pool_stats().in_use, before + 1, "one block, shared");
        let t = thread::spawn(move || {
            assert_eq!(b.next(3).unwrap(), b"abc");
            drop(b);
        });
        assert_eq!(a.next(3).unwrap(), b"def");
        drop(a);
        t.join().unwrap();
        assert_eq!(pool_stats().in_use, before);
    });
}
