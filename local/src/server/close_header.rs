//! Answers to requests sent with `Connection: close` without a `Connection` header, as Mesos
//! (libprocess) writes them: the server still closes the connection after the answer, but hyper
//! always adds `connection: close` to that answer's head, so [`CloseHeaderFilter`] removes that
//! one line from it on the way out.
//!
//! The filter touches only the head of an answer to a request that asked to close, and only
//! when the head is written: the service marks the connection ([`CloseMark::set`]) when such a
//! request arrives; hyper serves one request at a time on a connection, so the next bytes
//! written that start with `HTTP/1.` are that answer's head (earlier answers' bodies are complete
//! before the request is read). Body bytes are never looked at.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The line hyper inserts (it writes header names in lower case).
const CLOSE_LINE: &[u8] = b"\r\nconnection: close\r\n";

/// Whether the next answer head on a connection belongs to a request that asked to close.
#[derive(Debug, Clone, Default)]
pub(crate) struct CloseMark(Arc<AtomicBool>);

impl CloseMark {
    /// Marks the connection: its next answer head loses hyper's `connection: close`.
    pub(crate) fn set(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

/// Whether `headers` ask to close the connection (`Connection: close`, any case, in a list).
pub(crate) fn asks_to_close(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("close"))
}

/// `head` (a response head and possibly body bytes after it) without hyper's
/// `connection: close` line in the head part; `None` when there is none to remove.
fn without_close_line(bytes: &[u8]) -> Option<Vec<u8>> {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 2;
    let at = bytes[..head_end + 2]
        .windows(CLOSE_LINE.len())
        .position(|w| w == CLOSE_LINE)?;
    let mut out = Vec::with_capacity(bytes.len() - CLOSE_LINE.len() + 2);
    out.extend_from_slice(&bytes[..at]);
    out.extend_from_slice(&bytes[at + CLOSE_LINE.len() - 2..]);
    Some(out)
}

/// A connection whose marked answer heads lose hyper's `connection: close` line.
#[derive(Debug)]
pub(crate) struct CloseHeaderFilter<T> {
    inner: T,
    mark: CloseMark,
    /// Rewritten bytes accepted from hyper but not yet written to `inner`.
    pending: Vec<u8>,
}

impl<T> CloseHeaderFilter<T> {
    pub(crate) fn new(inner: T, mark: CloseMark) -> Self {
        Self {
            inner,
            mark,
            pending: Vec::new(),
        }
    }
}

impl<T: AsyncWrite + Unpin> CloseHeaderFilter<T> {
    /// Writes out `pending`; ready when it is empty.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let written =
                std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..written);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CloseHeaderFilter<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CloseHeaderFilter<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        std::task::ready!(this.poll_pending(cx))?;
        if buf.starts_with(b"HTTP/1.") && this.mark.take() {
            if let Some(rewritten) = without_close_line(buf) {
                this.pending = rewritten;
                // All of `buf` is taken; what is left of it is written by later polls.
                if let Poll::Ready(Err(error)) = this.poll_pending(cx) {
                    return Poll::Ready(Err(error));
                }
                return Poll::Ready(Ok(buf.len()));
            }
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_heads_close_line_is_removed() {
        let head =
            b"HTTP/1.1 202 Accepted\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(
            without_close_line(head).unwrap(),
            b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\ndate: x\r\n\r\n"
        );
        let last = b"HTTP/1.1 200 OK\r\ncontent-length: 21\r\nconnection: close\r\n\r\n\r\nconnection: close\r\n";
        assert_eq!(
            without_close_line(last).unwrap(),
            b"HTTP/1.1 200 OK\r\ncontent-length: 21\r\n\r\n\r\nconnection: close\r\n"
        );
        let in_body = b"HTTP/1.1 200 OK\r\ncontent-length: 21\r\n\r\n\r\nconnection: close\r\n";
        assert!(without_close_line(in_body).is_none());
        assert!(without_close_line(b"HTTP/1.1 200 OK\r\ncontent-le").is_none());
    }

    #[test]
    fn close_is_found_in_connection_lists() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONNECTION,
            "keep-alive, Close".parse().unwrap(),
        );
        assert!(asks_to_close(&headers));
        headers.insert(http::header::CONNECTION, "keep-alive".parse().unwrap());
        assert!(!asks_to_close(&headers));
    }
}
