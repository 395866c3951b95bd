//! `gorust::buffer::LinkBuffer` through its public API: parsing requests read from a socket,
//! slices, errors, vectored I/O on sockets and pipes, idle cost.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, FromRawFd};
use std::os::unix::net::UnixStream;

use gorust::buffer::{Error, LinkBuffer, PoolStats, Slice, NODE_SIZES};

#[allow(dead_code)]
fn assert_send_sync() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<LinkBuffer>();
    send::<Slice<'static>>();
    sync::<Slice<'static>>();
    send::<Error>();
    sync::<Error>();
    send::<PoolStats>();
}

/// One HTTP/1.1 request: its request line and body, parsed in place.
fn parse_request(buf: &LinkBuffer) -> io::Result<(String, Vec<u8>)> {
    let line = String::from_utf8_lossy(&buf.until(b'\n')?)
        .trim_end()
        .to_owned();
    let mut content_length = 0;
    loop {
        let header = buf.until(b'\n')?;
        if &*header == b"\r\n" {
            break;
        }
        let text = String::from_utf8_lossy(&header).to_ascii_lowercase();
        if let Some(v) = text.strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap();
        }
    }
    let body = buf.next(content_length)?.to_vec();
    Ok((line, body))
}

#[test]
fn parses_pipelined_requests_read_from_a_socket() {
    let (mut client, server) = UnixStream::pair().unwrap();
    server.set_nonblocking(true).unwrap();
    let body = vec![b'x'; 10_000];
    let mut wire = Vec::new();
    write!(wire, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    write!(
        wire,
        "POST /b HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    wire.extend_from_slice(&body);
    client.write_all(&wire).unwrap();

    let mut buf = LinkBuffer::new();
    while buf.len() < wire.len() {
        buf.read_from_fd(server.as_fd(), 64 << 10).unwrap();
    }
    let (line, b) = parse_request(&buf).unwrap();
    assert_eq!((line.as_str(), b.len()), ("GET /a HTTP/1.1", 0));
    buf.release();
    let (line, b) = parse_request(&buf).unwrap();
    assert_eq!((line.as_str(), b), ("POST /b HTTP/1.1", body));
    buf.release();
    assert_eq!(buf.node_count(), 0, "everything read and released: no node");
    assert_eq!(buf.capacity_bytes(), 0);
    let e = buf.read_from_fd(server.as_fd(), 4096).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
}

#[test]
fn an_incomplete_request_consumes_nothing() {
    let mut buf = LinkBuffer::new();
    buf.write_bytes(b"GET / HTTP/1.1\r\nHo");
    buf.flush();
    let before = buf.len();
    // The request line parses, the header does not: the handler must wait for more.
    assert!(parse_request(&buf).is_err());
    // Only what parsed was consumed; a real handler peeks first or uses `until` on whole lines.
    assert_eq!(buf.len(), before - "GET / HTTP/1.1\r\n".len());
    assert_eq!(
        buf.until(b'\n').unwrap_err(),
        Error::NoDelimiter {
            delim: b'\n',
            buffered: 2
        }
    );
}

#[test]
fn several_slices_live_until_release() {
    let mut buf = LinkBuffer::new();
    buf.write_bytes(b"HEADbody-bytes");
    buf.flush();
    let head = buf.next(4).unwrap();
    let body = buf.next(10).unwrap();
    assert!(head.is_borrowed() && body.is_borrowed());
    assert_eq!((&*head, &*body), (&b"HEAD"[..], &b"body-bytes"[..]));
    drop((head, body));
    buf.release();
    assert_eq!(buf.node_count(), 0);
}

#[test]
fn slice_keeps_bytes_beyond_the_original_buffer() {
    let mut buf = LinkBuffer::new();
    buf.write_bytes(b"keep-this|and-the-rest");
    buf.flush();
    let mut kept = buf.slice(9).unwrap();
    buf.skip(1).unwrap();
    assert_eq!(buf.next(12).unwrap(), b"and-the-rest");
    buf.release();
    drop(buf);
    assert_eq!(kept.len(), 9);
    assert_eq!(kept.next(9).unwrap(), b"keep-this");
    kept.release();
    assert_eq!(kept.node_count(), 0);
}

#[test]
fn reader_errors_are_unexpected_eof_io_errors() {
    fn read_frame(buf: &LinkBuffer) -> io::Result<Vec<u8>> {
        let len = buf.read_byte()? as usize;
        Ok(buf.next(len)?.to_vec())
    }
    let mut buf = LinkBuffer::new();
    buf.write_bytes(&[5, 1, 2]);
    buf.flush();
    let e = read_frame(&buf).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<Error>());
    assert_eq!(
        inner,
        Some(&Error::Short {
            wanted: 5,
            buffered: 2
        })
    );
}

#[test]
fn an_idle_buffer_costs_no_node_memory() {
    // The chain (32 bytes), the cursor, the counts and `until`'s record of a failed search.
    assert!(std::mem::size_of::<LinkBuffer>() <= 72);
    let mut buf = LinkBuffer::new();
    assert_eq!((buf.node_count(), buf.capacity_bytes()), (0, 0));
    for round in 0..3 {
        buf.write_bytes(&vec![round; 50_000]);
        buf.flush();
        assert!(buf.capacity_bytes() >= 50_000);
        assert_eq!(buf.next(50_000).unwrap().len(), 50_000);
        buf.release();
        assert_eq!((buf.node_count(), buf.capacity_bytes()), (0, 0));
    }
}

/// A blocking pipe: (read end, write end).
fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: pipe2 returned two new descriptors that nothing else owns.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

#[test]
fn write_to_fd_works_on_a_pipe_too() {
    // Not a socket: sendmsg fails with ENOTSOCK and the write falls back to writev.
    let (mut r, w) = pipe();
    let mut buf = LinkBuffer::new();
    buf.write_bytes(b"through ");
    buf.malloc(NODE_SIZES[0]).fill(b'-');
    buf.write_bytes(b" a pipe");
    buf.flush();
    assert_eq!(buf.node_count(), 3, "the malloc filled a node of its own");
    let total = buf.len();
    assert_eq!(buf.write_to_fd(w.as_fd()).unwrap(), total);
    drop(w);
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out.len(), total);
    assert!(out.starts_with(b"through ---") && out.ends_with(b"--- a pipe"));
    assert_eq!(buf.node_count(), 0);
}

#[test]
fn write_to_a_closed_peer_is_broken_pipe_not_a_signal() {
    let (a, b) = UnixStream::pair().unwrap();
    drop(b);
    let mut buf = LinkBuffer::new();
    buf.write_bytes(b"nobody listens");
    buf.flush();
    let e = buf.write_to_fd(a.as_fd()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    assert_eq!(buf.len(), 14, "nothing consumed");
}

#[test]
fn a_megabyte_round_trips_through_vectored_calls() {
    let (a, b) = UnixStream::pair().unwrap();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let expected = data.clone();
    let writer = std::thread::spawn(move || {
        let mut out = LinkBuffer::new();
        out.write_bytes(&data);
        out.flush();
        let mut calls = 0;
        while !out.is_empty() {
            out.write_to_fd(a.as_fd()).unwrap();
            calls += 1;
        }
        assert_eq!(out.node_count(), 0);
        calls
    });
    let mut input = LinkBuffer::new();
    while input.len() < expected.len() {
        let n = input.read_from_fd(b.as_fd(), 256 << 10).unwrap();
        assert!(n > 0, "early end of stream");
    }
    let calls = writer.join().unwrap();
    assert!(calls >= 1);
    let mut got = Vec::new();
    input.read_to_end(&mut got).unwrap();
    assert_eq!(got, expected);
    assert_eq!(input.node_count(), 0);
}

/// A slow peer's output queue, appended to alternately with a large message (a 64 KiB node,
/// full) and a smaller well-filled one (4 KiB): node memory stays within twice the bytes plus
/// a node at each end. Before, the smaller one was linked although the tail had room for it,
/// and each link stranded that room: 3.4 times the bytes in nodes, and 17 times when the large
/// one was a `malloc`ed 64 KiB node holding one byte (review, session 28).
#[test]
fn alternating_appends_keep_node_memory_near_the_bytes() {
    // 100 rounds of `large()` then 4 KiB of 2s; checks the node memory.
    let queue = |large: &dyn Fn() -> LinkBuffer| {
        let mut out = LinkBuffer::new();
        for _ in 0..100 {
            out.append(large());
            let mut x = LinkBuffer::new();
            x.write_bytes(&[2; 4096]);
            out.append(x);
        }
        let cap = out.capacity_bytes();
        let bound = 2 * out.len() + 2 * NODE_SIZES[NODE_SIZES.len() - 1];
        assert!(cap <= bound, "{cap} bytes of nodes for {} bytes", out.len());
        out
    };
    queue(&|| {
        let mut y = LinkBuffer::new();
        y.write_bytes(&[1; 16_385]);
        y
    });
    let mut codec = queue(&|| {
        let mut y = LinkBuffer::new();
        y.malloc(65_536)[0] = 1;
        y.malloc_ack(1).unwrap();
        y
    });
    // Every byte is still there, in order.
    let mut got = Vec::new();
    codec.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), 100 * 4097);
    assert!(got
        .chunks(4097)
        .all(|c| c[0] == 1 && c[1..].iter().all(|&b| b == 2)));
}

/// A buffer whose full nodes come first and mostly empty ones after (the codec pattern:
/// `malloc` a frame, `malloc_ack` what it used) is copied, not linked, so once the full front
/// is read the few bytes left do not hold the empty nodes. Before, the check over all its
/// nodes at once passed (393,216 bytes of nodes for 196,611 bytes), and 3 bytes then held
/// 192 KiB (review, session 28).
#[test]
fn appended_nodes_stay_well_filled_as_the_front_is_read() {
    let largest = NODE_SIZES[NODE_SIZES.len() - 1];
    let mut frames = LinkBuffer::new();
    frames.write_bytes(&vec![1; 3 * largest]);
    frames.flush();
    for _ in 0..3 {
        frames.malloc(largest)[0] = 2;
        frames.malloc_ack(1).unwrap();
        frames.flush();
    }
    let mut queue = LinkBuffer::new();
    queue.append(frames);
    queue.skip(3 * largest).unwrap();
    queue.release();
    assert_eq!(queue.len(), 3);
    let cap = queue.capacity_bytes();
    assert!(
        cap <= 2 * queue.len() + 2 * largest,
        "{cap} bytes of nodes for {} bytes",
        queue.len()
    );
    assert_eq!(queue.next(3).unwrap(), [2, 2, 2]);
}

/// A slice holding a byte of a large node, appended to an empty buffer, is copied: the split
/// node has no room for later writes, and linked it kept its 64 KiB block (shared with the
/// source until that is dropped, then this buffer's alone) for one byte (review, session 32).
#[test]
fn a_small_slice_of_a_large_node_appended_to_an_empty_buffer_is_copied() {
    let largest = NODE_SIZES[NODE_SIZES.len() - 1];
    let mut src = LinkBuffer::new();
    src.malloc(largest).fill(9);
    src.flush();
    let s = src.slice(1).unwrap();
    drop(src);
    let mut d = LinkBuffer::new();
    d.append(s);
    d.write_bytes(b"x");
    d.flush();
    assert!(
        d.capacity_bytes() <= NODE_SIZES[0],
        "{} bytes of nodes for 2 bytes",
        d.capacity_bytes()
    );
    assert_eq!(d.next(2).unwrap(), [9, b'x']);
}

/// Appends of mid-sized buffers (600 bytes, each alone in a fresh 4 KiB node) keep node memory
/// near the bytes held: they are copied into the tail while it has room. Before, every append
/// over 512 bytes linked its node, 4 KiB per 600 bytes (review, session 20).
#[test]
fn appending_mid_sized_buffers_keeps_node_memory_near_the_bytes() {
    let mut input = LinkBuffer::new();
    for _ in 0..64 {
        let mut b = LinkBuffer::new();
        b.write_bytes(&[7; 600]);
        input.append(b);
    }
    assert_eq!(input.len(), 64 * 600);
    let cap = input.capacity_bytes();
    assert!(
        cap <= 2 * input.len() + NODE_SIZES[0],
        "{cap} bytes of nodes for {} bytes",
        input.len()
    );
    // Well-filled nodes are still linked, not copied: one node each.
    let mut full = LinkBuffer::new();
    let mut nodes = 0;
    for _ in 0..4 {
        let mut b = LinkBuffer::new();
        b.write_bytes(&[1; NODE_SIZES[0]]);
        nodes += b.node_count();
        full.append(b);
    }
    assert_eq!(full.node_count(), nodes);
}
