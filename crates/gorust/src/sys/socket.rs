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

/// `recvmsg` into `buf` on a socket with `TCP_INQ` enabled: the bytes read and, when the kernel
/// attached it, how many bytes remain queued. A read that fills `buf` exactly cannot tell by
/// itself whether more is waiting; with the count, the caller knows without another call.
pub(crate) fn recv_inq(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<usize>)> {
    // Room for one cmsghdr carrying a c_int, 8-byte aligned.
    let mut control = [0u64; 4];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: a zeroed msghdr is a valid empty message.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    let msg_ptr = &mut msg as *mut libc::msghdr as c_long;
    // SAFETY: `msg` points at one iovec over `buf` (writable for its length) and at `control`
    // (writable for msg_controllen bytes); all three outlive the call.
    let n =
        unsafe { raw_syscall(libc::SYS_recvmsg, [fd as c_long, msg_ptr, 0, 0, 0, 0]) }? as usize;
    let mut inq = None;
    // SAFETY: the CMSG_* walk stays within msg_controllen bytes of `control`, which the kernel
    // filled; a TCP_CM_INQ message carries one c_int, read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_TCP && (*c).cmsg_type == libc::TCP_CM_INQ {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                inq = usize::try_from(v).ok();
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n, inq))
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
    fn enable_inq_fails_cleanly_on_a_non_tcp_socket() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(super::enable_inq(a.as_raw_fd()).is_err());
    }
}
