//! The baselines' front door: one client connection's bytes into what
//! `baseline_common::http::serve` does with each accepted connection
//! ([`http::serve_connection`]: the shared server loop with the baselines'
//! limits and message counting) in front of a trivial handler that reads
//! the body with the baselines' bounded reader ([`http::read_body`]) and
//! answers with a JSON summary (`/healthz`: the readiness answer).
//!
//! Input: a control byte (see `spright_fuzz::Plan`), then the bytes the
//! client sends. Invariants, per connection:
//! * nothing panics and the connection ends (no hang);
//! * everything written back is well-formed HTTP/1.1
//!   (`spright_fuzz::check_responses`) with a documented status;
//! * a 413 from the body reader means a body over the limit, which an
//!   input this size can only have declared (`content-length`).

#![no_main]

use std::sync::LazyLock;

use baseline_common::http::{self, Body};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;
use hyper::{Request, Response};
use libfuzzer_sys::fuzz_target;
use spright::http1::ConnectionEnd;
use spright::wire::json;
use spright_fuzz::{check_connection, drive, runtime, show, Plan};
use tokio::runtime::Runtime;

/// 100 Continue, the handler's 200, hyper's 400/414/431, the body
/// reader's 400 (broken body) and 413 (too large).
const ANSWERS: [u16; 6] = [100, 200, 400, 413, 414, 431];

static RT: LazyLock<Runtime> = LazyLock::new(runtime);

async fn trivial(req: Request<Incoming>) -> Response<Body> {
    if req.uri().path() == "/healthz" {
        return http::healthz();
    }
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let (method, path) = (req.method().to_string(), req.uri().path().to_string());
    match http::read_body(req.into_body(), http::LIMITS.max_body_bytes).await {
        Ok(body) => {
            let summary = json::json!({ "method": method, "path": path, "bytes": body.len() });
            Response::new(Full::new(Bytes::from(json::to_vec(&summary).expect("json"))))
        }
        Err(r) => {
            let over = declared.is_some_and(|n| n > http::LIMITS.max_body_bytes as u64);
            assert!(r.status() != 413 || over, "413 for a body within the limit (declared {declared:?})");
            r
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((plan, input)) = Plan::split(data) else { return };
    let (end, out) = RT.block_on(drive(plan, input, http::LIMITS.client_timeout(), |io, stop| http::serve_connection(io, stop, trivial)));
    check_connection(input, &out, &ANSWERS);
    assert!(plan.linger || end == ConnectionEnd::Closed, "a head timeout without waiting for one\n{}", show(input, &out));
});
