//! Socket system calls on the hot path (socket creation and options go through `socket2`).
//!
//! Every call here is non-blocking; callers wait through `netpoll::wait::Registration`.
//! Writes use `sendto`/`sendmsg` with `MSG_NOSIGNAL`, so a peer that went away gives `EPIPE`
//! instead of killing the process with `SIGPIPE`. `recv`, `write` and `writev`
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

/// Whether `fd` would take a write now (or has an error or hang-up to report): `poll(2)` with
/// no timeout, `EINTR` retried.
pub(crate) fn writable_now(fd: RawFd) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    loop {
        // SAFETY: one live pollfd.
        match syscall!(poll(&mut pfd, 1, 0)) {
            Ok(n) => return Ok(n > 0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Shuts `fd` down both ways, for a `close(&self)` that must end every handle's calls while
/// the descriptor stays open: a socket that is not connected (`ENOTCONN`) has nothing to shut.
pub(crate) fn shut_down_both(fd: RawFd) -> io::Result<()> {
    match syscall!(shutdown(fd, libc::SHUT_RDWR)) {
        Err(e) if e.raw_os_error() != Some(libc::ENOTCONN) => Err(e),
        _ => Ok(()),
    }
}

/// Ends a TCP connection now with a reset (an abortive close) while the descriptor stays
/// open: `connect` to an `AF_UNSPEC` address, which Linux turns into a disconnect that sends a
/// reset from an established (or closing) connection and drops what is queued both ways; the
/// socket is then unconnected, and calls on it fail. `SO_LINGER` 0 does the same only when
/// the descriptor closes, which another handle can put off. A socket that is not connected
/// has nothing to abort.
pub(crate) fn abort(fd: RawFd) -> io::Result<()> {
    // SAFETY: an all-zero sockaddr is valid, and AF_UNSPEC (0) is its family.
    let unspec: libc::sockaddr = unsafe { std::mem::zeroed() };
    let len = std::mem::size_of::<libc::sockaddr>() as libc::socklen_t;
    // SAFETY: `unspec` is a live sockaddr of `len` bytes.
    match syscall!(connect(fd, &unspec, len)) {
        Err(e) if e.raw_os_error() != Some(libc::ENOTCONN) => Err(e),
        _ => Ok(()),
    }
}

/// Whether `fd`'s reading side is shut down (`POLLRDHUP` now), for a datagram receive that
/// said `EAGAIN`: a non-blocking `SOCK_DGRAM` receive says that even after `shutdown(SHUT_RD)`,
/// where a blocking one returns 0.
pub(crate) fn read_shut_down(fd: RawFd) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one live pollfd; a zero timeout never blocks.
    matches!(syscall!(poll(&mut pfd, 1, 0)), Ok(1)) && pfd.revents & libc::POLLRDHUP != 0
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
        Ok(n) if n > 0 && pfd.revents == libc::POLLERR => {
            // Only `POLLERR`, which poll(2) reports whatever was asked: it stays while the
            // socket's error queue holds something (`IP_RECVERR`, `MSG_ZEROCOPY`
            // completions), which no read or write takes, so the caller's retry says
            // `EAGAIN` and it would poll again at once, spinning until data came (review,
            // session 27). A pending `SO_ERROR` shows as `POLLERR` alone too: the retry
            // returns it, 1 ms later. A queue that stays costs a 1 ms pause per retry
            // instead of a spin.
            std::thread::sleep(timeout.min(Duration::from_millis(1)));
            Ok(true)
        }
        Ok(n) => Ok(n > 0 && pfd.revents != 0),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
        Err(e) => Err(e),
    }
}
