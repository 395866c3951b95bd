//! The async face of the stream types: `futures_io::{AsyncRead, AsyncWrite}`, and tokio's
//! traits behind the `tokio-io` feature, for the streams and for shared references to them (a
//! read and a write may run at once through two `&TcpStream`s, as with std's `Read for
//! &TcpStream`). All are thin adapters over the `poll_*` methods, so a future polled on any
//! worker waits on the same netpoller as a goroutine. Vectored writes are forwarded: one
//! `writev` per poll, where the traits' default would write the first non-empty slice alone.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{TcpStream, UnixStream};

macro_rules! async_io {
    ($t:ty, $shutdown:expr) => {
        impl futures_io::AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                (*self).poll_read(cx, buf)
            }
        }

        impl futures_io::AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                (*self).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                (*self).poll_write_vectored(cx, bufs)
            }

            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready($shutdown(&*self))
            }
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                let n = match (*self).poll_read(cx, buf.initialize_unfilled()) {
                    Poll::Ready(Ok(n)) => n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                };
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                (*self).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                (*self).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready($shutdown(&*self))
            }
        }
    };
}

fn shutdown_tcp(s: &TcpStream) -> io::Result<()> {
    s.shutdown(std::net::Shutdown::Write)
}

fn shutdown_unix(s: &UnixStream) -> io::Result<()> {
    s.shutdown(std::net::Shutdown::Write)
}

async_io!(TcpStream, shutdown_tcp);
async_io!(UnixStream, shutdown_unix);
async_io!(&TcpStream, shutdown_tcp);
async_io!(&UnixStream, shutdown_unix);
