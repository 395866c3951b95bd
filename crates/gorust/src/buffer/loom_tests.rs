//! Loom model of a block shared by two buffers on two threads.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p gorust --lib --release loom_`.

use loom::thread;

use super::{pool_stats, LinkBuffer};

/// Held by every model that takes blocks from the pool, so that a model counting
/// `pool_stats().in_use` does not see another test thread's blocks.
pub(crate) static POOL_MODELS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// After `slice` splits a node, each buffer reads its own part on its own thread and drops it;
/// in every interleaving the block is returned exactly once, after both reads (the Release
/// decrement / Acquire fence pair of `Block::drop`). Loom sees the reads and the hand-back as
/// accesses to a model-only cell in the block's header (`node.rs`), and reports a read that
/// does not happen before the hand-back.
#[test]
fn loom_buffer_shared_block_returned_once() {
    let _serial = POOL_MODELS.lock().unwrap_or_else(|e| e.into_inner());
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
