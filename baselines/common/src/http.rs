//! HTTP plumbing shared by every component: a server with graceful drain,
//! a pooled client, and a buffered forward. Every hop is a real HTTP/1.1
//! proxy: it parses the request, queues it, re-encodes and forwards it.
//!
//! The server ([`serve`]) and the client ([`HttpClient`]) are the one
//! place the baselines count HTTP messages (`spright::wire`): a request
//! parsed and a response written per request served, a request written
//! and a response parsed per request sent. A proxy hop ([`forward`]) is
//! both: 2 deserializations and 2 serializations per request.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use spright::control::chain::GatewayLimits;
use spright::wire::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub type Body = Full<Bytes>;

/// The baselines' one HTTP client, pooled (what Envoy and the queue-proxy
/// keep). Every message it writes or reads is counted here
/// (`spright::wire`): one serialization per request written, one
/// deserialization per response read.
#[derive(Clone)]
pub struct HttpClient(Client<HttpConnector, Body>);

impl HttpClient {
    /// Writes `req` and reads the response's head (the body follows on
    /// the returned response). A request that never left - the connection
    /// could not be made - is not counted.
    // The HTTP stack's one place of counting for the client side.
    #[allow(clippy::disallowed_methods)]
    pub async fn request(&self, req: Request<Body>) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        let r = self.0.request(req).await;
        match &r {
            Ok(_) => {
                spright::wire::serialized(1);
                spright::wire::deserialized(1);
            }
            Err(e) if !e.is_connect() => spright::wire::serialized(1),
            Err(_) => {}
        }
        r
    }
}

/// A new pooled client.
pub fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    HttpClient(
        Client::builder(TokioExecutor::new()).pool_max_idle_per_host(256).pool_idle_timeout(Duration::from_secs(90)).build(connector),
    )
}

pub fn json_error(status: u16, message: &str) -> Response<Body> {
    let body = json::to_vec(&json::json!({ "error": message })).expect("json");
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The answer to a readiness probe.
pub fn healthz() -> Response<Body> {
    Response::new(Full::new(Bytes::from_static(b"ok\n")))
}

/// Every front door of the baselines takes the SPRIGHT gateway's default
/// limits: heads beyond `max_header_bytes` get 431, bodies beyond
/// `max_body_bytes` 413, a head not complete within `client_timeout_ms`
/// closes the connection.
pub const LIMITS: GatewayLimits = GatewayLimits::DEFAULT;

/// Reads a whole body (bounded): 413 beyond `limit`, 400 for a body that
/// breaks off or is malformed (truncated, a bad chunk).
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, Response<Body>> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(json_error(413, &format!("cannot read body: {e}"))),
        Err(e) => Err(json_error(400, &format!("cannot read body: {e}"))),
    }
}

/// Forwards `req` to `upstream` (buffering the body), optionally setting
/// the Host header; 502 when the upstream cannot be reached.
pub async fn forward(client: &HttpClient, upstream: SocketAddr, host: Option<&str>, req: Request<Incoming>) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    let body = match read_body(body, LIMITS.max_body_bytes).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
    parts.uri = match format!("http://{upstream}{path}").parse() {
        Ok(u) => u,
        Err(_) => return json_error(400, "bad request target"),
    };
    if let Some(h) = host {
        if let Ok(v) = HeaderValue::from_str(h) {
            parts.headers.insert(HOST, v);
        }
    }
    match client.request(Request::from_parts(parts, Full::new(body))).await {
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            match body.collect().await {
                Ok(b) => Response::from_parts(parts, Full::new(b.to_bytes())),
                Err(e) => json_error(502, &format!("upstream {upstream} broke off: {e}")),
            }
        }
        Err(e) => json_error(502, &format!("upstream {upstream} unreachable: {e}")),
    }
}

/// Resolves on the first SIGTERM or SIGINT. The handlers are installed when
/// this is called, not when it is first polled, so no signal is lost.
pub fn termination() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    }
}

/// The environment variable naming a listening socket the launcher bound
/// and passed down (its fd number): the first `serve` takes it instead of
/// binding, so the address the launcher handed out before starting us
/// cannot be taken by anyone else in between.
pub const LISTEN_FD_ENV: &str = "SPRIGHT_LISTEN_FD";

/// The inherited listener of [`LISTEN_FD_ENV`], taken once.
fn inherited_listener() -> Option<std::net::TcpListener> {
    use std::os::fd::FromRawFd;
    static TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let fd: i32 = std::env::var(LISTEN_FD_ENV).ok()?.parse().ok()?;
    if TAKEN.swap(true, Ordering::SeqCst) {
        return None;
    }
    // SAFETY: the launcher passed fd `fd` open to us for this purpose and
    // nothing else in this process owns it; it is taken once (TAKEN).
    let l = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    l.set_nonblocking(true).ok()?;
    Some(l)
}

/// Binds `addr` (or takes the launcher's listener, [`LISTEN_FD_ENV`]),
/// prints `listening <label> http://ADDR` (for the launcher), and serves
/// `handler` on the one server loop every front door shares
/// ([`spright::http1`], with [`LIMITS`]) until SIGTERM/SIGINT, then drains
/// open connections.
pub async fn serve<H, F>(label: &str, addr: SocketAddr, handler: H)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let bound = match inherited_listener() {
        Some(l) => TcpListener::from_std(l),
        None => TcpListener::bind(addr).await,
    };
    let listener = match bound {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let local = listener.local_addr().expect("bound");
    let stopping = termination();
    println!("listening {label} http://{local}");
    let _ = std::io::stdout().flush();
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        stopping.await;
        let _ = stop_tx.send(true);
    });
    let counted = move |req| counted(handler.clone(), req);
    spright::http1::serve(label, listener, LIMITS, stop_rx, Arc::new(spright::http1::NoHooks), counted).await
}

/// What [`serve`] does with one accepted connection, on any byte stream
/// `io` (tests and fuzzing drive it in memory): the one server loop's
/// connection ([`spright::http1::serve_connection`]) with [`LIMITS`] and
/// the counting of [`serve`], until the client closes it or `stop` turns
/// true.
pub async fn serve_connection<I, H, F>(io: I, stop: watch::Receiver<bool>, handler: H) -> spright::http1::ConnectionEnd
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    spright::http1::serve_connection(io, &LIMITS, stop, move |req| counted(handler.clone(), req)).await
}

/// `handler` answering `req`: one HTTP request parsed, one response written.
// The HTTP stack's one place of counting for the server side.
#[allow(clippy::disallowed_methods)]
async fn counted<H, F>(handler: H, req: Request<Incoming>) -> Response<Body>
where
    H: Fn(Request<Incoming>) -> F,
    F: Future<Output = Response<Body>>,
{
    spright::wire::deserialized(1);
    let resp = handler(req).await;
    spright::wire::serialized(1);
    resp
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// The status line `read_body` (limit 16) answers `request` with, on a
    /// connection the client half-closes after sending it when `close`.
    async fn answer(request: &[u8], close: bool) -> String {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let (_stop_tx, stop) = watch::channel(false);
        tokio::spawn(serve_connection(server, stop, |req: Request<Incoming>| async move {
            match read_body(req.into_body(), 16).await {
                Ok(b) => Response::new(Full::new(b)),
                Err(r) => r,
            }
        }));
        client.write_all(request).await.unwrap();
        if close {
            client.shutdown().await.unwrap();
        }
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        while !out.windows(2).any(|w| w == b"\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf)).await.expect("an answer").unwrap();
            assert!(n > 0, "closed without an answer: {:?}", String::from_utf8_lossy(&out));
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).lines().next().unwrap().to_string()
    }

    /// Found by fuzz/ (baseline_front_door): every body error was a 413.
    #[tokio::test]
    async fn only_a_body_over_the_limit_is_413() {
        let post = |head: &str, body: &str| format!("POST / HTTP/1.1\r\nhost: x\r\n{head}\r\n\r\n{body}").into_bytes();
        assert_eq!(answer(&post("content-length: 17", "0123456789abcdefg"), false).await, "HTTP/1.1 413 Payload Too Large");
        assert_eq!(answer(&post("content-length: 3", "abc"), false).await, "HTTP/1.1 200 OK");
        assert_eq!(answer(&post("content-length: 10", "abc"), true).await, "HTTP/1.1 400 Bad Request", "a body that breaks off");
        assert_eq!(answer(&post("transfer-encoding: chunked", "zz\r\nabc\r\n0\r\n\r\n"), false).await, "HTTP/1.1 400 Bad Request");
    }
}
