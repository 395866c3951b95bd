//! `LinkBuffer`: netpoll's linked buffer, the per-connection input and output buffer of the
//! event-loop mode.
//!
//! A poller reads socket data into a connection's buffer with one `readv`
//! ([`LinkBuffer::read_from_fd`]); a handler parses it in place ([`LinkBuffer::next`],
//! [`LinkBuffer::until`], …) and replies through another buffer flushed with one `writev`
//! ([`LinkBuffer::write_to_fd`]). It is built to avoid the three failures most reported by
//! netpoll's users:
//!
//! - **Idle memory.** An empty buffer holds no node and no allocation. A node is taken from the
//!   pool on the first write and returned as soon as it is read, so an idle connection costs no
//!   buffer memory (netpoll keeps an 8 KiB node per connection).
//! - **Use after release.** The span between `next` and `release` is a borrow: a [`Slice`]
//!   borrows the buffer, and `release`, every write and dropping the buffer need it back, so no
//!   slice can outlive its memory. The compiler checks it (`tests/ui/*.rs`).
//! - **Unbounded input.** [`LinkBuffer::capacity_bytes`] tells what a buffer holds, so the event
//!   loop can stop reading a connection that passes its limit (DESIGN.md decision 7).
//!
//! # Layout
//!
//! A buffer is a chain of *nodes*, each one buffer's view of a pooled *block* (`node.rs`). The
//! read cursor moves forward through the chain; writes go to the tail; `flush` moves each
//! node's `flushed` mark up to `written`; `release` drops the nodes behind the cursor.
//!
//! ```text
//!   LinkBuffer { nodes: VecDeque<Node>, rd_node, rd_off, len, pending }
//!
//!   cursor (rd_node = 0, rd_off) ──────────┐
//!                                          ▼
//!   nodes[0]: 4 KiB block    ┌─────────────┬───────────────┐
//!                            │ read, not   │ readable      │
//!                            │ released    │               │
//!                            └─────────────┴───────────────┘
//!                            ^start        ^rd_off         ^flushed = written
//!                                   │
//!                                   ▼  next in the chain
//!   nodes[1]: 16 KiB block   ┌─────────────────────────────┐
//!                            │ readable                    │
//!                            └─────────────────────────────┘
//!                            ^start                        ^flushed = written
//!                                   │
//!                                   ▼
//!   nodes[2]: 64 KiB, tail   ┌──────────────┬──────────────┬───────────────┐
//!                            │ readable     │ pending      │ free          │
//!                            └──────────────┴──────────────┴───────────────┘
//!                            ^start         ^flushed       ^written        ^limit = cap
//!
//!   len      readable bytes after the cursor: the rest of nodes[0], all of nodes[1], nodes[2]
//!            up to `flushed`
//!   pending  written, not yet flushed: always at the end of the chain (the tail, or the last
//!            few nodes when a malloc did not fit), after every readable byte
//!   release  drops the nodes before rd_node, moves nodes[0].start up to rd_off, and drops
//!            nodes[0] too if it is read to the end with nothing pending
//! ```
//!
//! Invariants, kept by `link.rs`, `reader.rs` and `writer.rs` and checked by `invariants.rs`
//! after every step of the model test: readable bytes precede pending ones in chain order; only
//! the nodes up to the cursor's have bytes read but not released; every node after the cursor's
//! holds at least one readable or pending byte, except a fresh tail pushed by
//! `BufMut::chunk_mut`, which the next push replaces and `flush` passes over.
//!
//! After [`LinkBuffer::slice`] cuts inside a node, two nodes share its block by reference
//! count; each owns a disjoint range, and the front one is read-only (`limit` = its end):
//!
//! ```text
//!   block:      [ …sliced-off bytes… | bytes kept here … free ]
//!   new buffer:  node{start ─ limit}
//!   this buffer:                       node{start ─────────── limit}
//! ```
//!
//! # States of a block
//!
//! 1. *free*: in its class's free list in the pool (`pool.rs`), reference count 0; or never
//!    allocated yet.
//! 2. *owned*: one node refers to it (taken by a write, `malloc` or `read_from_fd`).
//! 3. *shared*: several nodes, in one or several buffers, after `slice` split one; each owns a
//!    disjoint range.
//! 4. Back to *free* when its last node is dropped (read and released, or the buffer dropped):
//!    into the free list if it is below [`POOL_LIMITS`], else to the allocator. A large
//!    block (a `malloc` beyond 64 KiB) is always freed.
//!
//! # Who may touch what
//!
//! | field | moved by | synchronisation |
//! |---|---|---|
//! | `LinkBuffer::nodes` (the chain) | writers, `release`, `slice`, the `&mut` readers (`Read`, `Buf`, `write_to_fd`) | `&mut self` |
//! | `rd_node`, `rd_off`, `len` (the cursor) | `next`, `skip`, `until`, `read_byte` (`peek` reads it only) | `Cell`: `&self`, one thread (the buffer is `!Sync`) |
//! | node `start` | `release`, `slice` | `&mut self` |
//! | node `flushed` | `flush` (and `read_from_fd`, `append`, which flush) | `&mut self` |
//! | node `written`, `limit`, free bytes | writers | `&mut self` |
//! | readable bytes `[start, flushed)` | nobody: immutable while the node lives | shared `&` borrows |
//! | block reference count | `slice` (+1), dropping a node (−1) | atomic, Arc's orderings |
//! | the pool's free lists | taking and returning blocks | one mutex per class |
//!
//! # Rejected alternatives
//!
//! - **`bytes::BytesMut` alone.** It is one contiguous region that reallocates and copies as it
//!   grows; it gives no pooled fixed-size nodes (so memory is not returned piecewise as it is
//!   read), keeps its capacity while empty (an idle connection pays for its last burst), and
//!   cannot `readv` into several regions at once. `LinkBuffer` implements `bytes::Buf` and
//!   `BufMut` instead, so `bytes`-based codecs still work on it.
//! - **`next`/`peek` on `&mut self`.** Simple, but a handler could then hold only one slice at a
//!   time (no header and body together). The readers take `&self` and move the cursor in
//!   `Cell`s; `release` takes `&mut self`. The price is that the buffer is not `Sync`, which a
//!   per-connection buffer never needs to be.
//! - **Handing out `Bytes` (reference-counted, `'static` slices).** They may outlive `release`
//!   by design, which pins nodes for an unbounded time; a borrow makes the span explicit and
//!   free. [`LinkBuffer::slice`] is the way to keep bytes beyond a `release`: it moves them to
//!   a buffer of their own.
//! - **A `next` pointer in each node** (netpoll's `linkBufferNode`). In Rust that needs a raw
//!   tail pointer aliasing the owning chain, or walks to the tail. The chain is a `VecDeque` of
//!   40-byte node views, O(1) at both ends and indexable for vectored I/O; it is freed when the
//!   buffer empties, so an idle buffer still allocates nothing.
//! - **Copying instead of sharing a split node in `slice`.** Sharing keeps the whole block
//!   alive until both sides are done, but costs no copy however large the cut; that is what
//!   netpoll does, and `capacity_bytes` counts the shared block in both buffers so the cost
//!   stays visible to a limit.
//! - **Uninitialised blocks.** `malloc` returns `&mut [u8]`, which must not expose
//!   uninitialised memory; blocks are zeroed once when allocated (pooled blocks stay
//!   initialised; large fresh allocations come zeroed from the kernel), instead of tracking an
//!   initialised prefix per block. Pooled blocks are not cleared between users (a `memset` per
//!   node); so `malloc` warns that a byte left unfilled holds an earlier user's data, and
//!   `malloc_ack` takes back the bytes a codec did not fill.
//!
//! # Guarantees and current behaviour
//!
//! Guaranteed: a `Slice` never outlives `release` or the buffer; a buffer with nothing readable
//! or pending holds no node after `release` (and after any `&mut` read); the pool caches at most
//! [`POOL_LIMITS`] blocks per class; reads of more bytes than are readable return [`Error`] and
//! consume nothing. Current behaviour, not promised: the sizes in [`NODE_SIZES`], the growth
//! 4 → 16 → 64 KiB of `read_from_fd`'s nodes, the iovec limits [`READ_IOVECS`] and
//! [`WRITE_IOVECS`].
//!
//! # Tests
//!
//! Unit tests beside the code; `tests/buffer.rs` through the public API; `tests/ui/*.rs`, the
//! compile-fail proofs of the borrow rules; `loom_tests.rs`, a block shared across threads; and
//! `tests/buffer_model.rs`, a proptest model test against a `VecDeque<u8>` that runs
//! `check_invariants` after every step. The same model check is also a cargo-fuzz target,
//! `fuzz/fuzz_targets/link_buffer.rs` (`cargo +nightly fuzz run link_buffer`, nightly only, not
//! in the workspace): libFuzzer's coverage guidance reaches node boundaries, far delimiters and
//! leaked pool blocks that random sequences rarely hit.

mod buf_traits;
mod error;
mod invariants;
mod io;
mod link;
mod node;
mod pool;
mod reader;
mod slice;
mod spare;
mod std_io;
mod writer;

pub use error::{Error, Result};
pub use io::{READ_IOVECS, WRITE_IOVECS};
pub use link::LinkBuffer;
pub use pool::{pool_stats, PoolStats, NODE_SIZES, POOL_LIMITS};
pub use slice::Slice;

#[cfg(all(test, loom))]
pub(crate) mod loom_tests;
