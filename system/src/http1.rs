//! The one HTTP/1.1 server loop (hyper 1) of every front door: the SPRIGHT
//! gateway and the baselines' ingress, queue-proxies, activator, user
//! containers and gRPC frontend. Each gets the same limits and answers:
//!
//! | condition | answer |
//! |---|---|
//! | malformed request | 400 (hyper) |
//! | request head over `max_header_bytes` | 431 (hyper) |
//! | request head not received within `client_timeout_ms` | 408, then close |
//! | an idle keep-alive connection past `client_timeout_ms` | closed quietly |
//! | a failed `accept` (EMFILE, ...) | logged, 50 ms back-off |
//!
//! Bodies are the handler's: it reads them with its own bound (413).
//! On shutdown the loop stops accepting, lets open connections finish their
//! request (graceful shutdown) for up to `drain_timeout_ms`, and returns.
//!
//! Invariant: `open` counts the spawned connection tasks still running; the
//! drain waits for it to reach zero, woken by the last task to end.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use crate::control::chain::GatewayLimits;

/// What a front door wants to know of its connections (metrics).
pub trait Hooks: Send + Sync + 'static {
    /// A connection was accepted.
    fn accepted(&self) {}
    /// A request head did not arrive in time and got 408.
    fn timed_out(&self) {}
}

/// No hooks.
pub struct NoHooks;
impl Hooks for NoHooks {}

/// Serves `handler` on `listener` with `limits` until `shutdown` turns true,
/// then drains (see the module's documentation). `name` prefixes what it logs.
pub async fn serve<H, F>(
    name: &str,
    listener: TcpListener,
    limits: GatewayLimits,
    mut shutdown: watch::Receiver<bool>,
    hooks: Arc<dyn Hooks>,
    handler: H,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let open = Arc::new(AtomicUsize::new(0));
    let all_closed = Arc::new(Notify::new());
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopped(&mut shutdown) => break,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                eprintln!("{name}: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        hooks.accepted();
        let Ok(raw) = stream.as_fd().try_clone_to_owned() else {
            continue;
        };
        let (handler, hooks, stop, open, all_closed) = (handler.clone(), hooks.clone(), shutdown.clone(), open.clone(), all_closed.clone());
        open.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            if serve_connection(stream, &limits, stop, handler).await == ConnectionEnd::HeadTimedOut {
                hooks.timed_out();
                send_408(&raw);
            }
            if open.fetch_sub(1, Ordering::SeqCst) == 1 {
                all_closed.notify_waiters();
            }
        });
    }
    drop(listener);
    let drained = async {
        while open.load(Ordering::SeqCst) > 0 {
            let notified = all_closed.notified();
            if open.load(Ordering::SeqCst) == 0 {
                break;
            }
            notified.await;
        }
    };
    if tokio::time::timeout(limits.drain_timeout(), drained).await.is_err() {
        eprintln!("{name}: {} connections still open after the drain timeout", open.load(Ordering::SeqCst));
    }
}

/// How [`serve_connection`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionEnd {
    /// Closed by either side, drained, or broken: nothing more to send.
    Closed,
    /// Part of a request head arrived but not all of it within
    /// `client_timeout_ms`: the caller owes the client a 408 (hyper has
    /// given up on the stream; [`serve`] writes it on the socket's fd).
    HeadTimedOut,
}

/// Serves `handler` on one accepted connection `io` - a TCP stream in
/// [`serve`], any byte stream for tests and fuzzing - with `limits`'
/// keep-alive, head-size and head-timeout rules, until the client closes
/// it, it breaks, or `stop` turns true (then it finishes the request in
/// progress and closes).
pub async fn serve_connection<I, H, F>(io: I, limits: &GatewayLimits, mut stop: watch::Receiver<bool>, handler: H) -> ConnectionEnd
where
    I: AsyncRead + AsyncWrite + Unpin,
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let partial = Arc::new(AtomicBool::new(false));
    let io = TokioIo::new(Tracked { inner: io, partial: partial.clone() });
    let svc = service_fn(move |req| {
        let h = handler.clone();
        async move { Ok::<_, Infallible>(h(req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(limits.client_timeout())
        .max_buf_size(limits.max_header_bytes)
        .serve_connection(io, svc);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    match result {
        Err(e) if e.is_timeout() && partial.load(Ordering::Relaxed) => ConnectionEnd::HeadTimedOut,
        _ => ConnectionEnd::Closed,
    }
}

/// Remembers whether request bytes arrived since the last response, so a
/// header timeout can tell a slow request (408) from an idle connection.
struct Tracked<I> {
    inner: I,
    partial: Arc<AtomicBool>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.partial.store(true, Ordering::Relaxed);
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.partial.store(false, Ordering::Relaxed);
        Pin::new(&mut self.inner).poll_write(cx, data)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

// A response written outside hyper: counted here, the request was never parsed.
#[allow(clippy::disallowed_methods)]
fn send_408(fd: &OwnedFd) {
    crate::wire::serialized(1);
    let body = crate::wire::json::error("request not received in time");
    // CRLF line ends, spelled out: HTTP/1.1 framing, not the source file's.
    let resp = format!(
        "HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    // SAFETY: `fd` is an open socket we own a duplicate of and `resp` is a
    // live buffer of `resp.len()` bytes; a best-effort send on a socket
    // hyper has given up on, which never blocks (MSG_DONTWAIT).
    unsafe { libc::send(fd.as_raw_fd(), resp.as_ptr().cast(), resp.len(), libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
}

/// Resolves once shutdown is requested (or its sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|&s| s).await;
}
