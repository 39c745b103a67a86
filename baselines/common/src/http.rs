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
use http_body_util::{BodyExt, Full};
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

/// Reads a whole body (bounded).
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, Response<Body>> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => Err(json_error(413, &format!("cannot read body: {e}"))),
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
    // The HTTP stack's one place of counting for the server side.
    #[allow(clippy::disallowed_methods)]
    let counted = move |req| {
        let h = handler.clone();
        async move {
            // One HTTP request parsed, one response written.
            spright::wire::deserialized(1);
            let resp = h(req).await;
            spright::wire::serialized(1);
            resp
        }
    };
    spright::http1::serve(label, listener, LIMITS, stop_rx, Arc::new(spright::http1::NoHooks), counted).await
}
