//! Socket system calls on the hot path (socket creation and options go through `socket2`).
//!
//! Every call here is non-blocking; callers wait through `netpoll::wait::Registration`.
//! Writes use `sendto`/`sendmsg` with `MSG_NOSIGNAL`, so a peer that went away gives `EPIPE`
//! instead of killing the process with `SIGPIPE`. `recv`, `recv_inq`, `write` and `writev`
//! make their system calls directly (`super::raw_syscall`: no glibc wrapper, no cancellation
//! point).

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use libc::c_long;

use super::{raw_syscall, syscall};

/// `read(2)`, for any descriptor (`uio::readv` reads pipes and files too).
pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    let n = syscall!(read(fd, buf.as_mut_ptr().cast(), buf.len()))?;
    Ok(n as usize)
}

/// `recv`, not `read`, for sockets: on a socket `read(2)` goes through the VFS (`fdget_pos`,
/// `vfs_read`, then the socket's `read_iter`), `recv(2)` straight to the socket; perf of the
/// echo server had ~5% of its CPU in those two VFS functions.
pub(crate) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    let args = [
        fd as c_long,
        buf.as_mut_ptr() as c_long,
        buf.len() as c_long,
        0,
        0,
        0,
    ];
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes; no source address is asked for
    // (null address and length).
    let n = unsafe { raw_syscall(libc::SYS_recvfrom, args) }?;
    Ok(n as usize)
}

/// Asks the kernel to report, with every `recvmsg`, how many bytes stay queued after it
/// (`TCP_INQ`, Linux 4.18+). See [`recv_inq`].
pub(crate) fn enable_inq(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a live c_int and its size is passed.
    syscall!(setsockopt(
        fd,
        libc::SOL_TCP,
        libc::TCP_INQ,
        (&on as *const libc::c_int).cast(),
        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
    ))?;
    Ok(())
}

/// The message `recv_inq` hands the kernel: header, one iovec and room for one control
/// message carrying a c_int (8-byte aligned), in one place per thread.
///
/// Per thread rather than on the caller's stack: the call runs on a goroutine's stack, and
/// at 1,000 connections the 104 bytes it would take below the goroutine's frame are two or
/// three cache lines that nothing else touched since that goroutine's last read, each a miss.
/// One copy per thread is hot at every read. With the result returned in registers
/// (`recvmsg_inq`), callgrind's cache model of the echo server at 1,000 × 4 KiB went from
/// 8.1 to 6.1 misses per round trip. (Session 11 tried the thread-local alone, with the
/// result still written through a pointer into the caller's frame: 8.06 → 8.25, not kept.)
struct InqMsg {
    msg: libc::msghdr,
    iov: libc::iovec,
    control: [u64; 4],
}

thread_local! {
    static INQ_MSG: std::cell::UnsafeCell<InqMsg> = const {
        std::cell::UnsafeCell::new(InqMsg {
            // SAFETY: all-zero bytes are a valid msghdr, iovec and control buffer (null
            // pointers, zero lengths).
            msg: unsafe { std::mem::zeroed() },
            // SAFETY: as above.
            iov: unsafe { std::mem::zeroed() },
            control: [0; 4],
        })
    };
}

/// `recvmsg` into `buf` on a socket with `TCP_INQ` enabled: the bytes read and, when the kernel
/// attached it, how many bytes remain queued. A read that fills `buf` exactly cannot tell by
/// itself whether more is waiting; with the count, the caller knows without another call.
#[inline(always)]
pub(crate) fn recv_inq(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<usize>)> {
    let (n, inq) = recvmsg_inq(fd, buf);
    if n < 0 {
        return Err(io::Error::from_raw_os_error(-n as i32));
    }
    Ok((n as usize, usize::try_from(inq).ok()))
}

/// `recv_inq`'s call, out of line: the count or `-errno`, and the queued bytes or -1. A pair
/// of integers comes back in two registers; the `io::Result` of a pair and an option is
/// written through a pointer into the caller's frame, one more line of a goroutine's stack.
#[inline(never)]
fn recvmsg_inq(fd: RawFd, buf: &mut [u8]) -> (c_long, c_long) {
    INQ_MSG.with(|m| {
        // SAFETY: this thread's message, borrowed only here, for the length of this call: no
        // code runs between taking the reference and dropping it that could call `recv_inq`
        // again on this thread (field stores, a system call and the control-message walk; no
        // park, so no other goroutine of this thread runs meanwhile). gorust's only signal
        // handler (stack overflow) makes no I/O.
        let m = unsafe { &mut *m.get() };
        m.iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        m.msg.msg_iov = &mut m.iov;
        m.msg.msg_iovlen = 1;
        m.msg.msg_control = m.control.as_mut_ptr().cast();
        // The kernel sets it to the length it used: it is reset for every call.
        m.msg.msg_controllen = std::mem::size_of::<[u64; 4]>() as _;
        let msg_ptr = &mut m.msg as *mut libc::msghdr as c_long;
        // SAFETY: `msg` points at one iovec over `buf` (writable for its length) and at
        // `control` (writable for msg_controllen bytes); all three outlive the call. The
        // name fields are null and zero (never set), so no address is written.
        let n = match unsafe { raw_syscall(libc::SYS_recvmsg, [fd as c_long, msg_ptr, 0, 0, 0, 0]) }
        {
            Ok(n) => n,
            // `raw_syscall`'s errors are all OS errors; EIO only keeps the type total.
            Err(e) => return (-c_long::from(e.raw_os_error().unwrap_or(libc::EIO)), -1),
        };
        let mut inq = -1;
        // SAFETY: the CMSG_* walk stays within msg_controllen bytes of `control`, which the
        // kernel filled; a TCP_CM_INQ message carries one c_int, read unaligned.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&m.msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_TCP && (*c).cmsg_type == libc::TCP_CM_INQ {
                    let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                    inq = c_long::from(v);
                }
                c = libc::CMSG_NXTHDR(&m.msg, c);
            }
        }
        (n, inq)
    })
}

pub(crate) fn peek(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    let n = syscall!(recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_PEEK))?;
    Ok(n as usize)
}

/// The most slices one vectored call passes: the kernel's `UIO_MAXIOV` (`IOV_MAX`). Past it,
/// `readv` fails with `EINVAL` and `sendmsg` with `EMSGSIZE`; std caps its own vectored calls
/// the same way, so that more slices give a partial count, as a short write does.
pub(crate) const MAX_IOV: usize = 1024;

pub(crate) fn readv(fd: RawFd, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
    let cnt = bufs.len().min(MAX_IOV) as libc::c_int;
    // SAFETY: IoSliceMut is ABI-compatible with iovec; each points at writable memory.
    let n = syscall!(readv(fd, bufs.as_mut_ptr().cast(), cnt))?;
    Ok(n as usize)
}

pub(crate) fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    let flags = libc::MSG_NOSIGNAL as c_long;
    let args = [
        fd as c_long,
        buf.as_ptr() as c_long,
        buf.len() as c_long,
        flags,
        0,
        0,
    ];
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes; no destination address is given
    // (null address and length).
    let n = unsafe { raw_syscall(libc::SYS_sendto, args) }?;
    Ok(n as usize)
}

pub(crate) fn writev(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: a zeroed msghdr is a valid empty message.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len().min(MAX_IOV) as _;
    let flags = libc::MSG_NOSIGNAL as c_long;
    let args = [
        fd as c_long,
        &msg as *const libc::msghdr as c_long,
        flags,
        0,
        0,
        0,
    ];
    // SAFETY: IoSlice is ABI-compatible with iovec; `msg` points at live slices and outlives
    // the call.
    let n = unsafe { raw_syscall(libc::SYS_sendmsg, args) }?;
    Ok(n as usize)
}

/// `accept4` with `SOCK_NONBLOCK | SOCK_CLOEXEC`: the new socket is ready for the netpoller
/// without another system call.
pub(crate) fn accept(fd: RawFd) -> io::Result<(OwnedFd, socket2::SockAddr)> {
    // SAFETY: try_init hands accept4 a zeroed sockaddr_storage and its length, as required.
    let (res, addr) = unsafe {
        socket2::SockAddr::try_init(|storage, len| {
            let r = libc::accept4(
                fd,
                storage.cast(),
                len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            );
            if r == -1 {
                Err(io::Error::last_os_error())
            } else {
                Ok(r)
            }
        })
    }?;
    // SAFETY: accept4 returned a new descriptor that nothing else owns.
    Ok((unsafe { OwnedFd::from_raw_fd(res) }, addr))
}

/// Waits in `poll(2)` for one descriptor (plain threads only). Returns whether it reported an
/// event (readiness, hang-up or error); `EINTR` counts as a wake-up without one.
pub(crate) fn poll_one(fd: RawFd, events: libc::c_short, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // Rounded up: in the last millisecond before a deadline, 0 would make callers spin.
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one live pollfd.
    match syscall!(poll(&mut pfd, 1, ms)) {
        Ok(n) => Ok(n > 0 && pfd.revents != 0),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::io::Write;
    use std::os::fd::AsRawFd;

    #[test]
    fn recv_inq_reports_the_bytes_left_queued() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        super::enable_inq(s.as_raw_fd()).unwrap();
        c.write_all(&[7u8; 100]).unwrap();
        let mut buf = [0u8; 60];
        // Blocking socket: the first call waits for the data.
        let (n, inq) = super::recv_inq(s.as_raw_fd(), &mut buf).unwrap();
        assert!(n > 0);
        assert_eq!(inq, Some(100 - n));
        if n < 100 {
            let (m, inq) = super::recv_inq(s.as_raw_fd(), &mut buf).unwrap();
            assert_eq!((n + m, inq), (100, Some(0)));
        }
    }

    #[test]
    fn recv_inq_gives_the_os_error_and_no_count_without_the_option() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        s.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 16];
        // Nothing sent yet: the kernel's EAGAIN, as an io::Error.
        let e = super::recv_inq(s.as_raw_fd(), &mut buf).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
        // TCP_INQ never enabled on this socket: the data, and no queued count.
        c.write_all(b"abc").unwrap();
        s.set_nonblocking(false).unwrap();
        assert_eq!(super::recv_inq(s.as_raw_fd(), &mut buf).unwrap(), (3, None));
        assert_eq!(&buf[..3], b"abc");
        // Not a socket at all.
        let f = std::fs::File::open("/dev/null").unwrap();
        let e = super::recv_inq(f.as_raw_fd(), &mut buf).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTSOCK));
    }

    /// The message header is one per thread: calls on two streams in turn each read their own
    /// bytes into their own buffer with their own count.
    #[test]
    fn recv_inq_on_two_streams_in_turn_keeps_them_apart() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c1 = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s1, _) = l.accept().unwrap();
        let mut c2 = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s2, _) = l.accept().unwrap();
        super::enable_inq(s1.as_raw_fd()).unwrap();
        c1.write_all(&[1u8; 10]).unwrap();
        c2.write_all(&[2u8; 30]).unwrap();
        let (mut b1, mut b2) = ([0u8; 4], [0u8; 40]);
        let (n1, q1) = super::recv_inq(s1.as_raw_fd(), &mut b1).unwrap();
        let (n2, q2) = super::recv_inq(s2.as_raw_fd(), &mut b2).unwrap();
        assert_eq!((n1, q1), (4, Some(6)));
        assert!(n2 > 0 && q2.is_none());
        assert_eq!(b1, [1u8; 4]);
        assert!(b2[..n2].iter().all(|&b| b == 2));
        let (n1, q1) = super::recv_inq(s1.as_raw_fd(), &mut b1).unwrap();
        assert_eq!((n1, q1), (4, Some(2)));
    }

    #[test]
    fn enable_inq_fails_cleanly_on_a_non_tcp_socket() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(super::enable_inq(a.as_raw_fd()).is_err());
    }
}
