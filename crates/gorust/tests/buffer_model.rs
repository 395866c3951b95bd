//! Model-based property test of `gorust::buffer::LinkBuffer`: random sequences of operations are
//! applied to a `LinkBuffer` and to a model (`VecDeque<u8>` of readable bytes plus a `Vec<u8>`
//! of pending ones), and every result, length and error must agree. Reads from and writes to
//! real pipes go through `read_from_fd` and `write_to_fd`.
//!
//! `PROPTEST_CASES=5000 cargo test -p gorust --test buffer_model` for a longer run.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, IoSlice, Read, Write};
use std::os::fd::{AsFd, FromRawFd};

use bytes::{Buf, BufMut};
use gorust::buffer::{self, Error, LinkBuffer};
use proptest::prelude::*;

/// Deterministic content: cheap to generate and shrink, and rich in the delimiters `until`
/// looks for (values 0..13).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 7 + seed as usize) % 13) as u8)
        .collect()
}

#[derive(Clone, Debug)]
enum Op {
    Write(usize, u8),
    Malloc {
        n: usize,
        seed: u8,
        flush: bool,
    },
    Flush,
    /// `malloc_ack` of `raw % (pending + 2)` bytes: mostly kept, one in a few too many.
    MallocAck(usize),
    Next(usize),
    Peek(usize),
    Skip(usize),
    Until(u8),
    ReadByte,
    Slice(usize),
    Release,
    /// `Next`, `Peek`, `Skip` or `Slice` (by `kind % 4`) of one byte less than is readable,
    /// exactly what is, or one more (by `delta % 3`): the edge between a read and a short one,
    /// which lengths drawn blind rarely hit.
    AtEdge {
        kind: u8,
        delta: u8,
    },
    ReadFd {
        put: usize,
        max: usize,
    },
    WriteFd,
    IoRead(usize),
    BufRead(usize),
    Advance(usize),
    Chunks(usize),
    Append(usize, u8),
    /// `BufMut`: fill `n` bytes of the chunk (maybe none, leaving a fresh node) and commit them.
    ChunkMut(usize, u8),
    PutSlice(usize, u8),
    /// `BufMut`: fill the tail node's free space exactly, so the next write needs a new node.
    FillTail(u8),
    /// Writes to, reads from, or appends back one of the buffers made by `Slice`.
    KeptWrite(usize, usize, u8),
    KeptNext(usize, usize),
    KeptAppend(usize),
}

/// Lengths: mostly small, some spanning nodes, some exactly filling one (node boundaries are
/// where the bugs were).
fn len() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 0usize..64,
        4 => 64usize..5_000,
        1 => 5_000usize..70_000,
        2 => prop::sample::select(&[4095usize, 4096, 4097, 16384, 65536][..]),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (len(), any::<u8>()).prop_map(|(n, s)| Op::Write(n, s)),
        3 => (len(), any::<u8>(), any::<bool>()).prop_map(|(n, seed, flush)| Op::Malloc { n, seed, flush }),
        1 => (70_000usize..140_000, any::<u8>()).prop_map(|(n, seed)| Op::Malloc { n, seed, flush: true }),
        3 => Just(Op::Flush),
        2 => any::<usize>().prop_map(Op::MallocAck),
        4 => len().prop_map(Op::Next),
        2 => len().prop_map(Op::Peek),
        2 => len().prop_map(Op::Skip),
        2 => (0u8..14).prop_map(Op::Until),
        2 => Just(Op::ReadByte),
        3 => len().prop_map(Op::Slice),
        3 => Just(Op::Release),
        3 => (any::<u8>(), any::<u8>()).prop_map(|(kind, delta)| Op::AtEdge { kind, delta }),
        3 => (len(), prop_oneof![0usize..10, len(), 100_000usize..200_000])
            .prop_map(|(put, max)| Op::ReadFd { put, max }),
        2 => Just(Op::WriteFd),
        2 => len().prop_map(Op::IoRead),
        1 => len().prop_map(Op::BufRead),
        1 => len().prop_map(Op::Advance),
        1 => (0usize..8).prop_map(Op::Chunks),
        1 => (len(), any::<u8>()).prop_map(|(n, s)| Op::Append(n, s)),
        2 => (prop_oneof![Just(0usize), len()], any::<u8>()).prop_map(|(n, s)| Op::ChunkMut(n, s)),
        1 => (len(), any::<u8>()).prop_map(|(n, s)| Op::PutSlice(n, s)),
        2 => any::<u8>().prop_map(Op::FillTail),
        1 => (any::<usize>(), len(), any::<u8>()).prop_map(|(i, n, s)| Op::KeptWrite(i, n, s)),
        1 => (any::<usize>(), len()).prop_map(|(i, n)| Op::KeptNext(i, n)),
        1 => any::<usize>().prop_map(Op::KeptAppend),
    ]
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

#[derive(Default)]
struct Model {
    readable: VecDeque<u8>,
    pending: Vec<u8>,
}

impl Model {
    fn flush(&mut self) {
        self.readable.extend(self.pending.drain(..));
    }

    /// `e`, the error of a read of `n` bytes, is the model's `Short`, and rightly so: fewer
    /// than `n` bytes are readable (the error's `buffered` alone would match any `Short`).
    fn check_short(&self, e: Error, n: usize) -> Result<(), TestCaseError> {
        prop_assert!(
            n > self.readable.len(),
            "{:?} for {} bytes, with {} readable",
            e,
            n,
            self.readable.len()
        );
        prop_assert_eq!(
            e,
            Error::Short {
                wanted: n,
                buffered: self.readable.len(),
            }
        );
        Ok(())
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        self.readable.drain(..n).collect()
    }

    fn front(&self, n: usize) -> Vec<u8> {
        self.readable.iter().take(n).copied().collect()
    }
}

/// A buffer made by `slice`, with what it should read.
struct Kept {
    buf: LinkBuffer,
    model: Model,
}

struct Harness {
    buf: LinkBuffer,
    model: Model,
    kept: Vec<Kept>,
    in_r: File,
    in_w: File,
    /// Bytes in the input pipe, not yet read.
    in_pipe: VecDeque<u8>,
    out_r: File,
    out_w: File,
}

impl Harness {
    fn new() -> Harness {
        let (in_r, in_w) = pipe();
        let (out_r, out_w) = pipe();
        Harness {
            buf: LinkBuffer::new(),
            model: Model::default(),
            kept: Vec::new(),
            in_r,
            in_w,
            in_pipe: VecDeque::new(),
            out_r,
            out_w,
        }
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let (buf, m) = (&mut self.buf, &mut self.model);
        match *op {
            Op::Write(n, seed) => {
                let data = pattern(n, seed);
                buf.write_bytes(&data);
                m.pending.extend_from_slice(&data);
            }
            Op::Malloc { n, seed, flush } => {
                let data = pattern(n, seed);
                let space = buf.malloc(n);
                prop_assert_eq!(space.len(), n);
                space.copy_from_slice(&data);
                m.pending.extend_from_slice(&data);
                if flush {
                    buf.flush();
                    m.flush();
                }
            }
            Op::Flush => {
                buf.flush();
                m.flush();
            }
            Op::MallocAck(raw) => {
                let n = raw % (m.pending.len() + 2);
                match buf.malloc_ack(n) {
                    Ok(()) => {
                        prop_assert!(n <= m.pending.len());
                        m.pending.truncate(n);
                    }
                    Err(e) => prop_assert_eq!(
                        e,
                        Error::NotPending {
                            kept: n,
                            pending: m.pending.len()
                        }
                    ),
                }
                prop_assert_eq!(buf.malloc_len(), m.pending.len());
            }
            Op::Next(n) => match buf.next(n) {
                Ok(s) => same(&s, &m.take(n))?,
                Err(e) => m.check_short(e, n)?,
            },
            Op::Peek(n) => match buf.peek(n) {
                Ok(s) => same(&s, &m.front(n))?,
                Err(e) => m.check_short(e, n)?,
            },
            Op::Skip(n) => match buf.skip(n) {
                Ok(()) => {
                    m.take(n);
                }
                Err(e) => m.check_short(e, n)?,
            },
            Op::Until(delim) => {
                let at = m.readable.iter().position(|&b| b == delim);
                match (buf.until(delim), at) {
                    (Ok(s), Some(i)) => same(&s, &m.take(i + 1))?,
                    (Err(e), None) => prop_assert_eq!(
                        e,
                        Error::NoDelimiter {
                            delim,
                            buffered: m.readable.len()
                        }
                    ),
                    (r, at) => {
                        prop_assert!(false, "until: {:?} vs model {:?}", r.map(|s| s.len()), at)
                    }
                }
            }
            Op::ReadByte => match buf.read_byte() {
                Ok(b) => prop_assert_eq!(Some(b), m.readable.pop_front()),
                Err(e) => m.check_short(e, 1)?,
            },
            Op::Slice(n) => match buf.slice(n) {
                Ok(s) => {
                    prop_assert_eq!(s.len(), n);
                    prop_assert_eq!(s.malloc_len(), 0);
                    let model = Model {
                        readable: m.take(n).into(),
                        pending: Vec::new(),
                    };
                    self.kept.push(Kept { buf: s, model });
                    if self.kept.len() > 4 {
                        let old = self.kept.remove(0);
                        check_all(old)?;
                    }
                }
                Err(e) => m.check_short(e, n)?,
            },
            Op::AtEdge { kind, delta } => {
                let n = (m.readable.len() + (delta % 3) as usize).saturating_sub(1);
                let op = match kind % 4 {
                    0 => Op::Next(n),
                    1 => Op::Peek(n),
                    2 => Op::Skip(n),
                    _ => Op::Slice(n),
                };
                return self.apply(&op);
            }
            Op::Release => {
                buf.release();
                // Every node left holds at least one unread or unflushed byte, but for a fresh
                // tail `chunk_mut` may have pushed (buffer/mod.rs): `FillTail`, `ChunkMut(0)`,
                // `Flush`, `Skip(4095)`, `Release` leaves two nodes for one byte.
                prop_assert!(buf.node_count() <= m.readable.len() + m.pending.len() + 1);
                if m.readable.is_empty() && m.pending.is_empty() {
                    prop_assert_eq!(buf.node_count(), 0, "released and empty: no node");
                    prop_assert_eq!(buf.capacity_bytes(), 0);
                }
            }
            Op::ReadFd { put, max } => {
                let data = pattern(put, put as u8);
                let accepted = match self.in_w.write(&data) {
                    Ok(k) => k,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                    Err(e) => panic!("pipe write: {e}"),
                };
                self.in_pipe.extend(&data[..accepted]);
                let r = buf.read_from_fd(self.in_r.as_fd(), max);
                if max == 0 {
                    prop_assert_eq!(r.unwrap(), 0);
                } else if self.in_pipe.is_empty() {
                    prop_assert_eq!(r.unwrap_err().kind(), io::ErrorKind::WouldBlock);
                } else {
                    let n = r.unwrap();
                    prop_assert_eq!(n, max.min(self.in_pipe.len()));
                    m.flush();
                    m.readable.extend(self.in_pipe.drain(..n));
                }
            }
            Op::WriteFd => {
                let before = m.readable.len();
                let n = buf.write_to_fd(self.out_w.as_fd()).unwrap();
                let out = drain(&mut self.out_r);
                prop_assert_eq!(out.len(), n);
                if before == 0 {
                    prop_assert_eq!(n, 0);
                } else {
                    prop_assert!(n > 0);
                }
                same(&out, &m.take(n))?;
            }
            Op::IoRead(k) => {
                let mut out = vec![0u8; k];
                let n = buf.read(&mut out).unwrap();
                prop_assert_eq!(n, k.min(m.readable.len()));
                same(&out[..n], &m.take(n))?;
            }
            Op::BufRead(k) => {
                let chunk = buf.fill_buf().unwrap().to_vec();
                prop_assert_eq!(chunk.is_empty(), m.readable.is_empty());
                same(&chunk, &m.front(chunk.len()))?;
                buf.consume(k);
                m.take(k.min(m.readable.len()));
            }
            Op::Advance(k) => {
                let k = k % (m.readable.len() + 1);
                let chunk = buf.chunk().to_vec();
                same(&chunk, &m.front(chunk.len()))?;
                buf.advance(k);
                m.take(k);
            }
            Op::Chunks(k) => {
                let mut iov = vec![IoSlice::new(&[]); k];
                let cnt = buf.chunks_vectored(&mut iov);
                let seen: Vec<u8> = iov[..cnt].iter().flat_map(|s| s.iter().copied()).collect();
                same(&seen, &m.front(seen.len()))?;
                prop_assert!(cnt <= k);
                prop_assert!(cnt == 0 || iov[..cnt].iter().all(|s| !s.is_empty()));
                if k > 0 {
                    prop_assert_eq!(cnt == 0, m.readable.is_empty());
                }
            }
            Op::Append(n, seed) => {
                let mut other = LinkBuffer::new();
                let data = pattern(n, seed);
                other.write_bytes(&data);
                buf.append(other);
                m.flush();
                m.readable.extend(&data);
            }
            Op::ChunkMut(n, seed) => {
                let chunk = buf.chunk_mut();
                let n = n.min(chunk.len());
                chunk[..n].copy_from_slice(&pattern(n, seed));
                // SAFETY: the first `n` bytes of the chunk were just written.
                unsafe { buf.advance_mut(n) };
                m.pending.extend_from_slice(&pattern(n, seed));
            }
            Op::FillTail(seed) => {
                let n = buf.chunk_mut().len();
                let data = pattern(n, seed);
                buf.chunk_mut().copy_from_slice(&data);
                // SAFETY: the whole chunk was just written.
                unsafe { buf.advance_mut(n) };
                m.pending.extend_from_slice(&data);
            }
            Op::PutSlice(n, seed) => {
                buf.put_slice(&pattern(n, seed));
                m.pending.extend_from_slice(&pattern(n, seed));
            }
            Op::KeptWrite(i, n, seed) => {
                if let Some(k) = self.kept_mut(i) {
                    let data = pattern(n, seed);
                    k.buf.write_bytes(&data);
                    k.buf.flush();
                    k.model.readable.extend(&data);
                }
            }
            Op::KeptNext(i, n) => {
                if let Some(k) = self.kept_mut(i) {
                    match k.buf.next(n) {
                        Ok(s) => same(&s, &k.model.take(n))?,
                        Err(e) => k.model.check_short(e, n)?,
                    }
                    k.buf.release();
                }
            }
            Op::KeptAppend(i) => {
                if !self.kept.is_empty() {
                    let k = self.kept.remove(i % self.kept.len());
                    self.buf.append(k.buf);
                    self.model.flush();
                    self.model.readable.extend(k.model.readable);
                }
            }
        }
        self.check()
    }

    fn kept_mut(&mut self, i: usize) -> Option<&mut Kept> {
        let len = self.kept.len();
        (len > 0).then(|| &mut self.kept[i % len])
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let (buf, m) = (&self.buf, &self.model);
        buf.check_invariants().map_err(TestCaseError::fail)?;
        for k in &self.kept {
            k.buf.check_invariants().map_err(TestCaseError::fail)?;
            prop_assert_eq!(k.buf.len(), k.model.readable.len());
        }
        prop_assert_eq!(buf.len(), m.readable.len());
        prop_assert_eq!(buf.is_empty(), m.readable.is_empty());
        prop_assert_eq!(buf.malloc_len(), m.pending.len());
        prop_assert_eq!(buf.node_count() == 0, buf.capacity_bytes() == 0);
        if buf.node_count() == 0 {
            prop_assert!(m.readable.is_empty() && m.pending.is_empty());
        }
        let stats = buffer::pool_stats();
        for (cached, limit) in stats.cached.iter().zip(buffer::POOL_LIMITS) {
            prop_assert!(*cached <= limit);
        }
        Ok(())
    }
}

/// Compares bytes, reporting lengths and the first difference rather than dumping up to
/// 140 KB per side into every failure message of a shrink.
fn same(got: &[u8], want: &[u8]) -> Result<(), TestCaseError> {
    if got == want {
        return Ok(());
    }
    let at = got.iter().zip(want).position(|(a, b)| a != b);
    Err(TestCaseError::fail(format!(
        "bytes differ: got {} bytes, want {}; first difference at {:?}",
        got.len(),
        want.len(),
        at
    )))
}

/// Caps this test process's address space at 4 GiB (the soft limit only, never raising it), so
/// that a bug that allocates without end fails here instead of pushing the machine into the
/// OOM killer. `GORUST_TEST_NO_MEMCAP=1` turns the cap off (AddressSanitizer reserves more).
fn cap_memory() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("GORUST_TEST_NO_MEMCAP").is_some() {
            return;
        }
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit, which `limit` is.
        if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } != 0 {
            return;
        }
        limit.rlim_cur = limit.rlim_cur.min(4 << 30);
        // SAFETY: setrlimit reads one initialised rlimit; the soft limit stays below the hard one.
        unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
    });
}

/// Reads a kept buffer to the end and compares.
fn check_all(k: Kept) -> Result<(), TestCaseError> {
    let Kept { buf, model } = k;
    let n = model.readable.len();
    prop_assert_eq!(buf.len(), n);
    let expected: Vec<u8> = model.readable.into();
    same(&buf.next(n).unwrap(), &expected)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    })]

    #[test]
    fn link_buffer_agrees_with_a_vecdeque(ops in prop::collection::vec(op(), 1..80)) {
        cap_memory();
        let mut h = Harness::new();
        for op in &ops {
            h.apply(op)?;
        }
        // Read everything out; then the buffer must hold nothing.
        h.buf.flush();
        h.model.flush();
        let n = h.model.readable.len();
        same(&h.buf.next(n).unwrap(), &h.model.take(n))?;
        h.buf.release();
        prop_assert_eq!(h.buf.node_count(), 0);
        for k in h.kept.drain(..) {
            check_all(k)?;
        }
    }
}
