//! The gateway's HTTP side: every request handled end to end, on the one
//! server loop of every front door ([`crate::http1`]: keep-alive, limits,
//! timeouts, graceful drain), with the defined answer for every kind of
//! bad request.
//!
//! | condition | answer |
//! |---|---|
//! | malformed request | 400 (hyper) |
//! | request head over `max_header_bytes` | 431 (hyper) |
//! | body over `max_body_bytes` | 413 |
//! | request head or body not received within `client_timeout_ms` | 408 |
//! | no route for the path | 404 |
//! | pool exhausted | 503 + `Retry-After` |
//! | descriptor cannot be sent to the first function | 502 |
//! | function died with the request | 502 |
//! | chain slower than `request_timeout_ms` | 504 |

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, RETRY_AFTER, SET_COOKIE};
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::inflight::InFlight;
use super::{Gateway, Outcome};
use crate::descriptor::{Descriptor, Endpoint};
use crate::http1;
use crate::pool::Lease;
use crate::txn::{Method, OwnedResponse, Request as TxnRequest, Txn, TxnError};

type Body = Full<Bytes>;

fn json_error(status: u16, message: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(crate::wire::json::error(message))));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

impl Gateway {
    /// Handles one request end to end.
    // The HTTP stack's one place of counting (see `crate::wire`).
    #[allow(clippy::disallowed_methods)]
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        // The chain's only protocol work: one HTTP request in, one response out.
        crate::wire::deserialized(1);
        let resp = self.dispatch(req).await;
        crate::wire::serialized(1);
        self.metrics.record(resp.status().as_u16(), started.elapsed());
        resp
    }

    async fn dispatch(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_string();
        let Some(route) = self.route(&path) else {
            return json_error(404, &format!("no route for {path}"));
        };
        let max_body = self.limits.max_body_bytes;
        let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max_body as u64) {
            return json_error(413, &format!("request body larger than {max_body} bytes"));
        }
        let header_text = |name| {
            let vals: Vec<&str> = req.headers().get_all(name).iter().filter_map(|v: &HeaderValue| v.to_str().ok()).collect();
            vals.join("; ")
        };
        let (cookie, content_type) = (header_text(COOKIE), header_text(CONTENT_TYPE));
        let method = Method::parse(req.method().as_str());
        let query = req.uri().query().unwrap_or("").to_string();
        let body = match tokio::time::timeout(self.limits.client_timeout(), Limited::new(req.into_body(), max_body).collect()).await {
            Err(_) => return json_error(408, "request body not received in time"),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return json_error(413, &format!("request body larger than {max_body} bytes"));
            }
            Ok(Err(e)) => return json_error(400, &format!("cannot read request body: {e}")),
            Ok(Ok(collected)) => collected.to_bytes(),
        };

        let chain = &self.chains[route.chain];
        let Some(slot) = chain.pool.alloc(Lease::GATEWAY) else {
            let mut r = json_error(503, &format!("chain {} is at capacity ({} requests in flight)", chain.name, chain.pool.slot_count()));
            r.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        };
        let mut inflight = InFlight::new(chain, slot);
        let request = TxnRequest { method, path: &path, query: &query, cookie: &cookie, content_type: &content_type, body: &body };
        // Freshly allocated and taken by us: nobody else writes it.
        if let Err(e) = Txn::create(chain.pool.payload(slot), chain.app_bytes, route.route, &route.sequence, &request) {
            let status = if matches!(e, TxnError::TooLarge { .. }) { 413 } else { 500 };
            return json_error(status, &format!("request does not fit the chain's slots: {e}"));
        }
        drop(body);

        inflight.publish();
        let first = Endpoint::new(chain.id, route.sequence[0]);
        let handed = chain.pool.hand_over(slot, Lease::GATEWAY, first.function);
        debug_assert!(handed, "nobody recalls a slot the gateway has not sent");
        if let Err(e) = chain.tx.send(&Descriptor::new(first, slot.index, slot.gen)) {
            // Unless the control plane recalled it meanwhile (and answers
            // through the pending entry), the slot is ours again.
            if chain.pool.take_back(slot, first.function, Lease::GATEWAY) {
                inflight.unpublish();
                return json_error(502, &format!("cannot reach function {} of chain {}: {e}", first.function, chain.name));
            }
        }
        match tokio::time::timeout(self.limits.request_timeout(), inflight.outcome()).await {
            Err(_) => json_error(504, &format!("chain {} did not answer within {} ms", chain.name, self.limits.request_timeout_ms)),
            Ok(Outcome::Failed(status, msg)) => json_error(status, &msg),
            Ok(Outcome::Completed) => {
                // The descriptor came back and the completion took the slot
                // for us; it is ours until `inflight` drops and frees it.
                match Txn::open(chain.pool.payload(slot)) {
                    Ok(txn) => response_from(txn.into_response()),
                    Err(_) => json_error(502, "the chain returned a corrupted slot"),
                }
            }
        }
    }
}

/// The one copy out: the slot's response becomes the HTTP response.
fn response_from(r: OwnedResponse) -> Response<Body> {
    let Ok(status) = StatusCode::from_u16(r.status) else {
        return json_error(500, &format!("the chain answered with invalid status {}", r.status));
    };
    let mut resp = Response::new(Full::new(Bytes::from(r.body)));
    *resp.status_mut() = status;
    if !r.content_type.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&r.content_type) {
            resp.headers_mut().insert(CONTENT_TYPE, v);
        }
    }
    if !r.set_cookie.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&r.set_cookie) {
            resp.headers_mut().insert(SET_COOKIE, v);
        }
    }
    resp
}

/// The gateway's side of the one server loop: connections and 408s counted.
struct GatewayHooks(Arc<Gateway>);

impl http1::Hooks for GatewayHooks {
    fn accepted(&self) {
        self.0.metrics.connections.inc();
    }
    fn timed_out(&self) {
        self.0.metrics.record(408, std::time::Duration::ZERO);
    }
}

/// Serves HTTP on `listener` until `shutdown` turns true, then stops
/// accepting, lets in-flight requests finish (up to the drain timeout) and
/// returns: [`crate::http1::serve`] with the chain file's limits.
pub async fn serve(gateway: Arc<Gateway>, listener: TcpListener, shutdown: watch::Receiver<bool>) {
    let limits = gateway.limits;
    let hooks = Arc::new(GatewayHooks(gateway.clone()));
    http1::serve("spright gateway", listener, limits, shutdown, hooks, move |req| {
        let gw = gateway.clone();
        async move { gw.handle(req).await }
    })
    .await
}
