//! Fuzz target: `gorust::buffer::LinkBuffer` against a model.
//!
//! The input decodes into a sequence of operations covering every public reader and writer
//! (`next`, `peek`, `skip`, `until`, `read_byte`, `slice`, `release`, `malloc`, `malloc_ack`,
//! `write_bytes`, `flush`, `append`, `bytes::Buf`/`BufMut`, `std::io::Read`/`BufRead`/`Write`,
//! `read_from_fd` and `write_to_fd` on pipes). Each runs on the buffer and on a model, a `VecDeque<u8>` of
//! readable bytes plus a `Vec<u8>` of pending ones, and every result, error, length and the
//! whole readable content must agree after every operation; the buffer's own invariant check
//! runs after each one too. A read past the end must return the documented error (a panic is a
//! crash, which libFuzzer reports). At the end of each input everything is read out and
//! dropped, and the pool must count no block in use: a leaked or double-counted node shows.
//!
//! Sizes are bounded (at most 80 KiB per operation, so that `malloc`'s large path past the
//! 64 KiB class is reached; at most 256 KiB held per buffer; at most 256 operations), and the
//! model copies slices rather than bytes, so that inputs run at about a thousand a second under
//! AddressSanitizer. Lengths near the node classes and near the readable length are decoded on
//! purpose: node boundaries and the end of the data are where the bugs are.
//!
//! `cargo +nightly fuzz run link_buffer` (from the repository root); the seed corpus is in
//! `fuzz/corpus/link_buffer/`.

#![no_main]

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, IoSlice, Read, Write};
use std::os::fd::{AsFd, FromRawFd};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use bytes::{Buf, BufMut, TryGetError};
use gorust::buffer::{pool_stats, Error, LinkBuffer, Slice, NODE_SIZES, POOL_LIMITS};
use libfuzzer_sys::fuzz_target;

/// The most bytes one operation asks for: past the largest class, to reach the large path.
const OP_MAX: usize = 80 << 10;
/// The most bytes (readable and pending) a write may leave in one buffer.
const HELD_MAX: usize = 256 << 10;
/// The most buffers made by `slice` kept alive at once.
const KEPT_MAX: usize = 4;
/// The most operations run from one input.
const OPS_MAX: usize = 256;

/// A length, decoded in ways that reach the interesting ones often.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Len {
    /// 0..=255.
    Small(u8),
    /// 0..=65,535.
    Any(u16),
    /// A node class's size (`NODE_SIZES[class % 3]`) plus `delta`: exactly filling a node, one
    /// byte short of it, or one past (past 64 KiB, `malloc`'s large path).
    NearClass { class: u8, delta: i8 },
    /// The readable length plus `delta`: reads of exactly everything, or one byte too many.
    NearReadable(i8),
}

impl Len {
    fn get(self, readable: usize) -> usize {
        let n = match self {
            Len::Small(n) => usize::from(n),
            Len::Any(n) => usize::from(n),
            Len::NearClass { class, delta } => NODE_SIZES[usize::from(class) % NODE_SIZES.len()]
                .saturating_add_signed(delta.into()),
            Len::NearReadable(delta) => readable.saturating_add_signed(delta.into()),
        };
        n.min(OP_MAX)
    }
}

/// What written bytes hold.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Fill {
    /// One byte repeated: `until` of another byte must search far (across nodes) or fail.
    Same(u8),
    /// Values 0..13 in a cycle: delimiters every few bytes.
    Cycle(u8),
    /// A hash of the index: no short period, so a byte out of place never goes unnoticed.
    Hash(u8),
}

impl Fill {
    /// `n` bytes (at most twice `OP_MAX`), copied from tables made once: generating them byte by
    /// byte in this instrumented crate would cost more than the operations tested.
    fn bytes(self, n: usize) -> Vec<u8> {
        static TABLES: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
        let (cycle, hash) = TABLES.get_or_init(|| {
            let cycle = (0..2 * OP_MAX + 13).map(|i| (i * 7 % 13) as u8).collect();
            let hash = (0..(2 * OP_MAX + 256 * 61) as u32)
                .map(|i| (i.wrapping_mul(0x9e37_79b1) >> 24) as u8)
                .collect();
            (cycle, hash)
        });
        match self {
            Fill::Same(b) => vec![b; n],
            Fill::Cycle(s) => cycle[usize::from(s) % 13..][..n].to_vec(),
            Fill::Hash(s) => hash[usize::from(s) * 61..][..n].to_vec(),
        }
    }
}

/// A read through `&self` whose slice may be held while more reads follow.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Look {
    Next(Len),
    Peek(Len),
    Skip(Len),
    Until(u8),
    ReadByte,
}

#[derive(Arbitrary, Debug)]
enum Op {
    // The writer.
    Write(Len, Fill),
    WriteRaw(Vec<u8>),
    Malloc(Len, Fill),
    /// `malloc_ack`, the length relative to what is pending.
    MallocAck(Len),
    Flush,
    // The `&self` readers: one, or several whose slices are all held until the last is read.
    Look(Look),
    Hold(Vec<Look>),
    // The `&mut self` ones.
    Slice(Len),
    Release,
    Append {
        len: Len,
        fill: Fill,
        flushed: Len,
    },
    // std::io.
    IoRead(Len),
    IoWrite(Len, Fill),
    IoFlush,
    FillBufConsume(Len),
    ReadUntil(u8),
    // bytes::Buf.
    Chunks(u8),
    Advance(Len),
    CopyToBytes(Len),
    TryCopy(Len),
    TryGetU32,
    TryGetU16Le,
    // bytes::BufMut.
    /// Fills up to `len` bytes of `chunk_mut` (maybe none, leaving a fresh node) and commits.
    ChunkMut(Len, Fill),
    /// Fills the tail's free space exactly, so that the next write needs a new node.
    FillTail(Fill),
    PutSlice(Len, Fill),
    PutBytes(u8, Len),
    PutU32(u32),
    // Vectored system calls on pipes.
    ReadFd {
        put: Len,
        max: Len,
    },
    WriteFd,
    // The buffers made by `slice` (index taken modulo their number).
    KeptWrite(u8, Len, Fill),
    KeptNext(u8, Len),
    KeptAppend(u8),
    KeptDrop(u8),
}

/// What the buffer should hold.
#[derive(Default)]
struct Model {
    readable: VecDeque<u8>,
    pending: Vec<u8>,
}

impl Model {
    fn flush(&mut self) {
        self.readable.extend(&self.pending);
        self.pending.clear();
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let out = front(&self.readable, n);
        self.readable.drain(..n);
        out
    }

    fn front(&self, n: usize) -> Vec<u8> {
        front(&self.readable, n)
    }

    fn short(&self, n: usize) -> Error {
        Error::Short {
            wanted: n,
            buffered: self.readable.len(),
        }
    }

    /// What a `Buf::try_*` reader of `n` bytes must fail with when fewer are readable.
    fn short_get(&self, n: usize) -> TryGetError {
        TryGetError {
            requested: n,
            available: self.readable.len(),
        }
    }

    /// How many more bytes a write may add.
    fn room(&self) -> usize {
        HELD_MAX.saturating_sub(self.readable.len() + self.pending.len())
    }

    fn held(&self) -> usize {
        self.readable.len() + self.pending.len()
    }
}

/// The first `n` bytes of `d` (at most all), copied slice by slice: the model's byte loops are
/// instrumented for coverage like the rest of this crate, and byte-at-a-time copies were most
/// of the fuzzer's time.
fn front(d: &VecDeque<u8>, n: usize) -> Vec<u8> {
    let (a, b) = d.as_slices();
    let k = n.min(a.len());
    let mut out = Vec::with_capacity(n);
    out.extend_from_slice(&a[..k]);
    out.extend_from_slice(&b[..(n - k).min(b.len())]);
    out
}

/// Appends all of `from` to `to`, slice by slice.
fn extend(to: &mut VecDeque<u8>, from: &VecDeque<u8>) {
    let (a, b) = from.as_slices();
    to.extend(a);
    to.extend(b);
}

/// Asserts equal bytes, reporting lengths and the first difference rather than both sides.
#[track_caller]
fn same(what: impl fmt::Display, got: &[u8], want: &[u8]) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes, want {}; first difference at {at:?}",
            got.len(),
            want.len()
        );
    }
}

/// Runs one `&self` read on the buffer and the model. Returns the slice (to be held) and the
/// bytes it must hold.
fn look<'a>(buf: &'a LinkBuffer, m: &mut Model, op: Look) -> Option<(Slice<'a>, Vec<u8>)> {
    // The readable bytes of the first node that has some: a read within them is zero-copy,
    // one past them spans nodes and is copied.
    let head = Buf::chunk(buf).len();
    let len = m.readable.len();
    match op {
        Look::Next(n) | Look::Peek(n) => {
            let n = n.get(len);
            let r = match op {
                Look::Next(_) => buf.next(n),
                _ => buf.peek(n),
            };
            match r {
                Ok(s) => {
                    assert!(n <= len, "{op:?}: read {n} of {len} bytes");
                    assert_eq!(
                        s.is_borrowed(),
                        n <= head,
                        "{op:?}: {n} bytes, head run {head}"
                    );
                    let want = match op {
                        Look::Next(_) => m.take(n),
                        _ => m.front(n),
                    };
                    return Some((s, want));
                }
                Err(e) => assert_eq!(e, m.short(n), "{op:?}"),
            }
        }
        Look::Skip(n) => {
            let n = n.get(len);
            match buf.skip(n) {
                Ok(()) => {
                    assert!(n <= len, "skipped {n} of {len} bytes");
                    m.take(n);
                }
                Err(e) => assert_eq!(e, m.short(n), "{op:?}"),
            }
        }
        Look::Until(delim) => {
            let at = m.readable.iter().position(|&b| b == delim);
            match (buf.until(delim), at) {
                (Ok(s), Some(i)) => {
                    assert_eq!(s.is_borrowed(), i < head, "{op:?}: at {i}, head run {head}");
                    return Some((s, m.take(i + 1)));
                }
                (Err(e), None) => assert_eq!(
                    e,
                    Error::NoDelimiter {
                        delim,
                        buffered: len
                    }
                ),
                (r, at) => panic!(
                    "{op:?}: {:?} but the model has it at {at:?}",
                    r.map(|s| s.len())
                ),
            }
        }
        Look::ReadByte => match buf.read_byte() {
            Ok(b) => assert_eq!(Some(b), m.readable.pop_front()),
            Err(e) => assert_eq!(e, m.short(1)),
        },
    }
    None
}

/// A non-blocking pipe: (read end, write end).
fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: pipe2 returned two new descriptors that nothing else owns.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

/// Everything readable in a non-blocking pipe.
fn drain(r: &mut File) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 1 << 16];
    loop {
        match r.read(&mut chunk) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return out,
            Err(e) => panic!("pipe read: {e}"),
        }
    }
}

/// The pipes of `read_from_fd` and `write_to_fd`, made on first use.
struct Pipes {
    in_r: File,
    in_w: File,
    /// Bytes in the input pipe, not yet read.
    in_pipe: VecDeque<u8>,
    out_r: File,
    out_w: File,
}

impl Pipes {
    fn new() -> Pipes {
        let (in_r, in_w) = pipe();
        let (out_r, out_w) = pipe();
        Pipes {
            in_r,
            in_w,
            in_pipe: VecDeque::new(),
            out_r,
            out_w,
        }
    }
}

/// Where the concatenation of `runs` first differs from the start of `want`, or runs past its
/// end; `None` if it is a prefix of `want`. Compares slice by slice: this runs after every
/// operation, over up to `HELD_MAX` bytes.
fn differs<'a>(runs: impl IntoIterator<Item = &'a [u8]>, want: &VecDeque<u8>) -> Option<usize> {
    let (a, b) = want.as_slices();
    let mut parts = [a, b].into_iter();
    let mut w: &[u8] = &[];
    let mut at = 0;
    for mut run in runs {
        while !run.is_empty() {
            while w.is_empty() {
                match parts.next() {
                    Some(p) => w = p,
                    None => return Some(at),
                }
            }
            let k = run.len().min(w.len());
            if run[..k] != w[..k] {
                return Some(at + run.iter().zip(w).position(|(x, y)| x != y).unwrap_or(0));
            }
            (run, w, at) = (&run[k..], &w[k..], at + k);
        }
    }
    None
}

/// Checks a buffer against its model without consuming anything: the counts, the invariants,
/// and every readable byte (through `Buf::chunks_vectored`, one slice per node).
fn check(what: impl fmt::Display, buf: &LinkBuffer, m: &Model) {
    if let Err(e) = buf.check_invariants() {
        panic!("{what}: invariant broken: {e}");
    }
    assert_eq!(buf.len(), m.readable.len(), "{what}: len");
    assert_eq!(buf.is_empty(), m.readable.is_empty(), "{what}: is_empty");
    assert_eq!(buf.malloc_len(), m.pending.len(), "{what}: malloc_len");
    assert_eq!(buf.remaining(), m.readable.len(), "{what}: remaining");
    assert_eq!(
        buf.node_count() == 0,
        buf.capacity_bytes() == 0,
        "{what}: nodes without memory or memory without nodes"
    );
    if buf.node_count() == 0 {
        assert_eq!(m.held(), 0, "{what}: bytes held without a node");
    }
    let mut iov = vec![IoSlice::new(&[]); buf.node_count() + 1];
    let cnt = buf.chunks_vectored(&mut iov);
    assert!(
        iov[..cnt].iter().all(|s| !s.is_empty()),
        "{what}: an empty chunk"
    );
    let seen: usize = iov[..cnt].iter().map(|s| s.len()).sum();
    assert_eq!(
        seen,
        m.readable.len(),
        "{what}: chunks_vectored saw {seen} bytes"
    );
    if let Some(at) = differs(iov[..cnt].iter().map(|s| &**s), &m.readable) {
        panic!("{what}: content differs at byte {at}");
    }
    assert_eq!(
        buf.chunk().is_empty(),
        m.readable.is_empty(),
        "{what}: chunk"
    );
    if let Some(at) = differs([buf.chunk()], &m.readable) {
        panic!("{what}: chunk differs at byte {at}");
    }
}

/// After a `&mut` read that released: a buffer with nothing readable or pending holds no node.
fn check_released(what: impl fmt::Display, buf: &LinkBuffer, m: &Model) {
    if m.held() == 0 {
        assert_eq!(buf.node_count(), 0, "{what}: empty but holds nodes");
    }
}

struct Harness {
    buf: LinkBuffer,
    model: Model,
    kept: Vec<(LinkBuffer, Model)>,
    pipes: Option<Pipes>,
}

impl Harness {
    fn apply(&mut self, op: &Op) {
        let (buf, m) = (&mut self.buf, &mut self.model);
        let len = m.readable.len();
        match *op {
            Op::Write(n, fill) => {
                let data = fill.bytes(n.get(len).min(m.room()));
                buf.write_bytes(&data);
                m.pending.extend_from_slice(&data);
            }
            Op::WriteRaw(ref data) => {
                let data = &data[..data.len().min(m.room())];
                buf.write_bytes(data);
                m.pending.extend_from_slice(data);
            }
            Op::Malloc(n, fill) => {
                let data = fill.bytes(n.get(len).min(m.room()));
                let space = buf.malloc(data.len());
                assert_eq!(space.len(), data.len(), "malloc");
                space.copy_from_slice(&data);
                m.pending.extend_from_slice(&data);
            }
            Op::MallocAck(len) => {
                let n = len.get(m.pending.len());
                match buf.malloc_ack(n) {
                    Ok(()) => {
                        assert!(
                            n <= m.pending.len(),
                            "malloc_ack({n}) of {}",
                            m.pending.len()
                        );
                        m.pending.truncate(n);
                    }
                    Err(e) => assert_eq!(
                        e,
                        Error::NotPending {
                            kept: n,
                            pending: m.pending.len()
                        }
                    ),
                }
            }
            Op::Flush => {
                buf.flush();
                m.flush();
            }
            Op::Look(l) => {
                if let Some((s, want)) = look(buf, m, l) {
                    same(format_args!("{l:?}"), &s, &want);
                }
            }
            Op::Hold(ref looks) => {
                let buf = &*buf;
                let held: Vec<_> = looks
                    .iter()
                    .take(4)
                    .filter_map(|&l| look(buf, m, l))
                    .collect();
                // Every slice is still what it was when read, whatever was read after it.
                for (i, (s, want)) in held.iter().enumerate() {
                    same(format_args!("held slice {i} of {looks:?}"), s, want);
                }
            }
            Op::Slice(n) => {
                let n = n.get(len);
                let pending = m.pending.len();
                match buf.slice(n) {
                    Ok(s) => {
                        assert!(n <= len, "sliced {n} of {len}");
                        let model = Model {
                            readable: m.take(n).into(),
                            pending: Vec::new(),
                        };
                        assert_eq!(s.malloc_len(), 0, "a slice has nothing pending");
                        check("the new slice", &s, &model);
                        assert_eq!(buf.malloc_len(), pending, "slice left the pending bytes");
                        self.kept.push((s, model));
                        if self.kept.len() > KEPT_MAX {
                            let (old, model) = self.kept.remove(0);
                            read_out("an old slice", old, model);
                        }
                    }
                    Err(e) => assert_eq!(e, m.short(n), "slice"),
                }
            }
            Op::Release => {
                buf.release();
                check_released("release", buf, m);
                // Every node left holds an unread or unflushed byte, but for a fresh tail
                // `chunk_mut` may have left (module header of `buffer`).
                assert!(
                    buf.node_count() <= m.held() + 1,
                    "release left {} nodes for {} bytes",
                    buf.node_count(),
                    m.held()
                );
            }
            Op::Append {
                len: n,
                fill,
                flushed,
            } => {
                let data = fill.bytes(n.get(len).min(m.room()));
                let k = flushed.get(data.len()).min(data.len());
                let mut other = LinkBuffer::new();
                other.write_bytes(&data[..k]);
                other.flush();
                other.write_bytes(&data[k..]);
                buf.append(other);
                m.flush();
                m.readable.extend(&data);
            }
            Op::IoRead(n) => {
                let mut out = vec![0u8; n.get(len)];
                let k = buf.read(&mut out).expect("Read::read never fails");
                assert_eq!(k, out.len().min(len), "Read::read of {}", out.len());
                same("Read::read", &out[..k], &m.take(k));
                check_released("Read::read", buf, m);
            }
            Op::IoWrite(n, fill) => {
                let data = fill.bytes(n.get(len).min(m.room()));
                buf.write_all(&data).expect("Write::write_all never fails");
                m.pending.extend_from_slice(&data);
            }
            Op::IoFlush => {
                Write::flush(buf).expect("Write::flush never fails");
                m.flush();
            }
            Op::FillBufConsume(n) => {
                let chunk = buf.fill_buf().expect("fill_buf never fails").to_vec();
                assert_eq!(chunk.is_empty(), m.readable.is_empty(), "fill_buf");
                same("fill_buf", &chunk, &m.front(chunk.len()));
                // Any amount: consume stops at what is readable.
                let n = n.get(len);
                buf.consume(n);
                m.take(n.min(len));
                check_released("consume", buf, m);
            }
            Op::ReadUntil(delim) => {
                let mut out = Vec::new();
                let k = buf.read_until(delim, &mut out).expect("read_until");
                let want = m
                    .readable
                    .iter()
                    .position(|&b| b == delim)
                    .map_or(len, |i| i + 1);
                assert_eq!(k, want, "read_until({delim})");
                same("read_until", &out, &m.take(want));
            }
            Op::Chunks(k) => {
                let k = usize::from(k % 8);
                let mut iov = vec![IoSlice::new(&[]); k];
                let cnt = buf.chunks_vectored(&mut iov);
                assert!(cnt <= k);
                assert!(iov[..cnt].iter().all(|s| !s.is_empty()), "an empty chunk");
                assert_eq!(
                    cnt == 0,
                    k == 0 || len == 0,
                    "chunks_vectored gave {cnt} of {k}"
                );
                let seen: Vec<u8> = iov[..cnt].iter().flat_map(|s| s.iter().copied()).collect();
                same("chunks_vectored", &seen, &m.front(seen.len()));
            }
            Op::Advance(n) => {
                // Past the end `advance` panics, as `Buf` allows: not asked for.
                let n = n.get(len).min(len);
                buf.advance(n);
                m.take(n);
                check_released("advance", buf, m);
            }
            Op::CopyToBytes(n) => {
                let n = n.get(len).min(len);
                let got = buf.copy_to_bytes(n);
                same("copy_to_bytes", &got, &m.take(n));
            }
            Op::TryCopy(n) => {
                let mut out = vec![0u8; n.get(len)];
                match buf.try_copy_to_slice(&mut out) {
                    Ok(()) => same("try_copy_to_slice", &out, &m.take(out.len())),
                    Err(e) => assert_eq!(e, m.short_get(out.len())),
                }
            }
            Op::TryGetU32 => match buf.try_get_u32() {
                Ok(v) => {
                    let want: [u8; 4] = m.take(4).try_into().expect("four bytes");
                    assert_eq!(v, u32::from_be_bytes(want), "get_u32");
                }
                Err(e) => assert_eq!(e, m.short_get(4)),
            },
            Op::TryGetU16Le => match buf.try_get_u16_le() {
                Ok(v) => {
                    let want: [u8; 2] = m.take(2).try_into().expect("two bytes");
                    assert_eq!(v, u16::from_le_bytes(want), "get_u16_le");
                }
                Err(e) => assert_eq!(e, m.short_get(2)),
            },
            Op::ChunkMut(n, fill) => {
                let room = m.room();
                let chunk = buf.chunk_mut();
                assert_ne!(chunk.len(), 0, "chunk_mut gave no room");
                let data = fill.bytes(n.get(len).min(chunk.len()).min(room));
                chunk[..data.len()].copy_from_slice(&data);
                // SAFETY: the first `data.len()` bytes of the chunk were just written.
                unsafe { buf.advance_mut(data.len()) };
                m.pending.extend_from_slice(&data);
            }
            Op::FillTail(fill) => {
                let free = buf.chunk_mut().len();
                if free <= m.room() {
                    let data = fill.bytes(free);
                    buf.chunk_mut().copy_from_slice(&data);
                    // SAFETY: the whole chunk was just written.
                    unsafe { buf.advance_mut(free) };
                    m.pending.extend_from_slice(&data);
                }
            }
            Op::PutSlice(n, fill) => {
                let data = fill.bytes(n.get(len).min(m.room()));
                buf.put_slice(&data);
                m.pending.extend_from_slice(&data);
            }
            Op::PutBytes(b, n) => {
                let n = n.get(len).min(m.room());
                buf.put_bytes(b, n);
                m.pending.extend(std::iter::repeat_n(b, n));
            }
            Op::PutU32(v) => {
                buf.put_u32(v);
                m.pending.extend_from_slice(&v.to_be_bytes());
            }
            Op::ReadFd { put, max } => {
                let p = self.pipes.get_or_insert_with(Pipes::new);
                let data = Fill::Hash(p.in_pipe.len() as u8).bytes(put.get(len));
                let accepted = match p.in_w.write(&data) {
                    Ok(k) => k,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                    Err(e) => panic!("pipe write: {e}"),
                };
                p.in_pipe.extend(&data[..accepted]);
                let max = max.get(len).min(m.room());
                let r = buf.read_from_fd(p.in_r.as_fd(), max);
                if max == 0 {
                    assert_eq!(r.expect("read_from_fd of 0"), 0);
                } else if p.in_pipe.is_empty() {
                    // An error leaves the buffer as it was: the pending bytes stay pending.
                    assert_eq!(
                        r.expect_err("an empty pipe").kind(),
                        io::ErrorKind::WouldBlock
                    );
                } else {
                    let n = r.expect("read_from_fd");
                    assert_eq!(n, max.min(p.in_pipe.len()), "read_from_fd({max})");
                    m.flush();
                    m.readable.extend(&front(&p.in_pipe, n));
                    p.in_pipe.drain(..n);
                }
            }
            Op::WriteFd => {
                let p = self.pipes.get_or_insert_with(Pipes::new);
                let n = buf
                    .write_to_fd(p.out_w.as_fd())
                    .expect("write_to_fd to an empty pipe");
                let out = drain(&mut p.out_r);
                assert_eq!(out.len(), n, "write_to_fd wrote {n}");
                assert_eq!(n == 0, len == 0, "write_to_fd wrote {n} of {len}");
                same("write_to_fd", &out, &m.take(n));
                if n > 0 {
                    check_released("write_to_fd", buf, m);
                }
            }
            Op::KeptWrite(i, n, fill) => {
                if let Some((k, km)) = kept(&mut self.kept, i) {
                    let data = fill.bytes(n.get(km.readable.len()).min(km.room()));
                    k.write_bytes(&data);
                    k.flush();
                    km.readable.extend(&data);
                }
            }
            Op::KeptNext(i, n) => {
                if let Some((k, km)) = kept(&mut self.kept, i) {
                    let n = n.get(km.readable.len());
                    match k.next(n) {
                        Ok(s) => same("a slice's next", &s, &km.take(n)),
                        Err(e) => assert_eq!(e, km.short(n), "a slice's next"),
                    }
                    k.release();
                    check_released("a slice's release", k, km);
                }
            }
            Op::KeptAppend(i) => {
                if !self.kept.is_empty() {
                    let (k, km) = self.kept.remove(usize::from(i) % self.kept.len());
                    self.buf.append(k);
                    self.model.flush();
                    extend(&mut self.model.readable, &km.readable);
                }
            }
            Op::KeptDrop(i) => {
                if !self.kept.is_empty() {
                    let (k, km) = self.kept.remove(usize::from(i) % self.kept.len());
                    check("a dropped slice", &k, &km);
                    drop(k);
                }
            }
        }
        check(format_args!("after {op:?}"), &self.buf, &self.model);
        for (i, (k, km)) in self.kept.iter().enumerate() {
            check(format_args!("slice {i} after {op:?}"), k, km);
        }
        let stats = pool_stats();
        for (cached, limit) in stats.cached.iter().zip(POOL_LIMITS) {
            assert!(*cached <= limit, "after {op:?}: {stats:?}");
        }
    }
}

fn kept(kept: &mut [(LinkBuffer, Model)], i: u8) -> Option<&mut (LinkBuffer, Model)> {
    let len = kept.len();
    (len > 0).then(|| &mut kept[usize::from(i) % len])
}

/// Flushes a buffer, reads everything out, and checks it then holds no node.
fn read_out(what: impl fmt::Display, mut buf: LinkBuffer, mut m: Model) {
    buf.flush();
    m.flush();
    let n = m.readable.len();
    same(&what, &buf.next(n).expect("read out"), &m.take(n));
    assert_eq!(buf.next(1).unwrap_err(), m.short(1));
    buf.release();
    assert_eq!(
        buf.node_count(),
        0,
        "{what}: read out and released, yet holds nodes"
    );
    assert_eq!(buf.capacity_bytes(), 0, "{what}: read out and released");
}

fuzz_target!(|ops: Vec<Op>| {
    // This process makes no other buffer: every block is back after each input.
    assert_eq!(pool_stats().in_use, 0, "a block in use before the input");
    let mut h = Harness {
        buf: LinkBuffer::new(),
        model: Model::default(),
        kept: Vec::new(),
        pipes: None,
    };
    for op in ops.iter().take(OPS_MAX) {
        h.apply(op);
    }
    read_out("the buffer", h.buf, h.model);
    for (k, km) in h.kept {
        read_out("a slice", k, km);
    }
    assert_eq!(
        pool_stats().in_use,
        0,
        "a block still in use after every buffer was dropped"
    );
});
