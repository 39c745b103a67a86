//! Online Boutique's frontend as an HTTP server over any [`BoutiqueApi`]:
//! the Knative model's frontend container calls the services through the
//! ingress, the gRPC baseline's calls them directly. The page logic is
//! [`orchestrate`], the same code every mode runs.

use std::net::SocketAddr;
use std::sync::Arc;

use boutique::api::{orchestrate, BoutiqueApi, RawRequest};
use boutique::frontend::SessionIds;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, COOKIE, SET_COOKIE};
use hyper::{Request, Response, StatusCode};

use crate::http::{self, read_body};

/// Serves the public HTTP API on `listen` until SIGTERM/SIGINT, answering
/// each request with [`orchestrate`] over `api`.
pub async fn serve<A: BoutiqueApi + Send + 'static>(listen: SocketAddr, api: A) {
    let state = Arc::new((api, SessionIds::default()));
    http::serve("traffic", listen, move |req: Request<Incoming>| {
        let state = state.clone();
        async move {
            if req.uri().path() == "/healthz" {
                return http::healthz();
            }
            let header =
                |name| req.headers().get_all(name).iter().filter_map(|v: &HeaderValue| v.to_str().ok()).collect::<Vec<_>>().join("; ");
            let (cookie, content_type) = (header(COOKIE), header(CONTENT_TYPE));
            let method = req.method().as_str().to_string();
            let path = req.uri().path().to_string();
            let query = req.uri().query().unwrap_or("").to_string();
            let body = match read_body(req.into_body(), http::LIMITS.max_body_bytes).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let (api, sessions) = &*state;
            let raw = RawRequest { method: &method, path: &path, query: &query, content_type: &content_type, cookie: &cookie, body: &body };
            let page = orchestrate(api, sessions, &raw).await;
            let mut r = Response::new(Full::new(Bytes::from(page.body)));
            *r.status_mut() = StatusCode::from_u16(page.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if !page.set_cookie.is_empty() {
                if let Ok(v) = HeaderValue::from_str(&page.set_cookie) {
                    r.headers_mut().insert(SET_COOKIE, v);
                }
            }
            r
        }
    })
    .await
}
