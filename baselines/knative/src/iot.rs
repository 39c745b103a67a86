//! Motion detection and parking on the Knative model: each function a user
//! container taking its input on `POST /invoke`, and a front-end
//! orchestrator (the paper used an NGINX pod) calling the route's functions
//! in order through the ingress. For parking the image is sent again to
//! every function: the copies SPRIGHT avoids.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use spright::service_time::ServiceTime;
use spright::wire::json;

use baseline_common::http::{self, client, json_error, read_body, Body, HttpClient};

const STATE_HEADER: &str = "x-parking-state";

fn respond(status: u16, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn json<T: Serialize>(v: &T) -> Response<Body> {
    respond(200, json::to_vec(v).expect("serializable"))
}

/// Calls `function` through the ingress; returns (status, headers' state, body).
async fn invoke(
    client: &HttpClient,
    ingress: SocketAddr,
    function: &str,
    content_type: &str,
    state: Option<&str>,
    body: Bytes,
) -> Result<(u16, Bytes), Response<Body>> {
    let mut req = Request::post(format!("http://{ingress}/invoke"))
        .header(HOST, format!("{function}.default.example.com"))
        .header(CONTENT_TYPE, content_type);
    if let Some(s) = state {
        req = req.header(STATE_HEADER, s);
    }
    let resp =
        client.request(req.body(Full::new(body)).expect("request")).await.map_err(|e| json_error(502, &format!("{function}: {e}")))?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map_err(|e| json_error(502, &format!("{function}: {e}")))?.to_bytes();
    Ok((status, body))
}

fn header(req: &Request<Incoming>, name: &str) -> String {
    req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

// --- motion -------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct Classified {
    sensor_id: String,
    timestamp: u64,
    motion: bool,
}

pub async fn run_motion_function(function: String, listen: SocketAddr, service: Option<ServiceTime>) {
    let actuator = Arc::new(motion::core::Actuator::default());
    http::serve("traffic", listen, move |req: Request<Incoming>| {
        let (function, actuator) = (function.clone(), actuator.clone());
        async move {
            if req.uri().path() == "/healthz" {
                return json(&"ok");
            }
            let ct = header(&req, "content-type");
            let body = match read_body(req.into_body(), http::LIMITS.max_body_bytes).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            if let Some(st) = service {
                tokio::task::spawn_blocking(move || st.spend()).await.ok();
            }
            match function.as_str() {
                "sensor" => match motion::core::parse_event(&ct, &body) {
                    Ok(ev) => json(&Classified { motion: motion::core::detect(&ev), sensor_id: ev.sensor_id, timestamp: ev.timestamp }),
                    Err(e) => json_error(400, &e.0),
                },
                _ => match json::from_slice::<Classified>(&body) {
                    Ok(c) => json(&actuator.decide(&c.sensor_id, c.timestamp, c.motion)),
                    Err(e) => json_error(400, &format!("bad input: {e}")),
                },
            }
        }
    })
    .await
}

pub async fn run_motion_orchestrator(listen: SocketAddr, ingress: SocketAddr) {
    let client = client();
    http::serve("traffic", listen, move |req: Request<Incoming>| {
        let client = client.clone();
        async move {
            let path = req.uri().path().to_string();
            if path == "/healthz" {
                return json(&"ok");
            }
            if path != "/motion" && !path.starts_with("/motion/") {
                return json_error(404, &format!("no route for {path}"));
            }
            let ct = header(&req, "content-type");
            let body = match read_body(req.into_body(), http::LIMITS.max_body_bytes).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let (status, classified) = match invoke(&client, ingress, "sensor", &ct, None, body).await {
                Ok(r) => r,
                Err(r) => return r,
            };
            if status != 200 {
                return respond(status, classified.to_vec());
            }
            match invoke(&client, ingress, "actuator", "application/json", None, classified).await {
                Ok((status, decision)) => respond(status, decision.to_vec()),
                Err(r) => r,
            }
        }
    })
    .await
}

// --- parking ------------------------------------------------------------

/// What the parking functions pass along (with the image, every hop).
#[derive(Clone, Default, Serialize, Deserialize)]
struct ParkingState {
    plate: String,
    new_vehicle: bool,
    seen_before: bool,
    spot: u32,
    records: u32,
    image_offset: usize,
    image_len: usize,
}

#[derive(Default)]
struct ParkingStores {
    seen: parking::core::SeenPlates,
    index: parking::core::SpotIndex,
    store: parking::core::SessionStore,
}

pub async fn run_parking_function(function: String, listen: SocketAddr, service: Option<ServiceTime>) {
    let stores = Arc::new(ParkingStores::default());
    http::serve("traffic", listen, move |req: Request<Incoming>| {
        let (function, stores) = (function.clone(), stores.clone());
        async move {
            use parking::core::*;
            if req.uri().path() == "/healthz" {
                return json(&"ok");
            }
            let ct = header(&req, "content-type");
            let state = header(&req, STATE_HEADER);
            let mut st: ParkingState = if state.is_empty() { ParkingState::default() } else { json::from_str(&state).unwrap_or_default() };
            let body = match read_body(req.into_body(), http::LIMITS.max_body_bytes).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            if let Some(t) = service {
                tokio::task::spawn_blocking(move || t.spend()).await.ok();
            }
            match function.as_str() {
                "detection" => match find_image(&ct, &body) {
                    Ok(range) => {
                        st.plate = plate(&body[range.clone()]);
                        st.image_offset = range.start;
                        st.image_len = range.len();
                    }
                    Err(e) => return json_error(e.status, &e.message),
                },
                "search" => st.seen_before = stores.seen.check_and_insert(&st.plate),
                "index" => st.spot = stores.index.assign(&st.plate),
                "persist" => st.records = stores.store.append(&st.plate, st.spot),
                _ => {
                    let route = if st.new_vehicle { Route::New } else { Route::Known };
                    return json(&Receipt {
                        fee_usd: fee_text(fee_cents(route, &st.plate)),
                        plate: st.plate,
                        route,
                        seen_before: st.seen_before,
                        spot: (route == Route::New).then_some(st.spot),
                        records: (route == Route::New).then_some(st.records),
                        image_bytes: st.image_len,
                    });
                }
            }
            json(&st)
        }
    })
    .await
}

/// The image inside the upload where detection says it is; None when that
/// range is not inside it (a function's answer is input like any other).
fn image_of(upload: &Bytes, st: &ParkingState) -> Option<Bytes> {
    let end = st.image_offset.checked_add(st.image_len).filter(|&end| end <= upload.len())?;
    Some(upload.slice(st.image_offset..end))
}

pub async fn run_parking_orchestrator(listen: SocketAddr, ingress: SocketAddr) {
    let client = client();
    http::serve("traffic", listen, move |req: Request<Incoming>| {
        let client = client.clone();
        async move {
            let path = req.uri().path().trim_end_matches('/').to_string();
            if path == "/healthz" {
                return json(&"ok");
            }
            let route: &[&str] = match path.as_str() {
                "/parking/new" => &["detection", "search", "index", "persist", "charging"],
                "/parking/known" => &["detection", "search", "charging"],
                _ => return json_error(404, &format!("no route for {}", req.uri().path())),
            };
            let ct = header(&req, "content-type");
            let mut body = match read_body(req.into_body(), http::LIMITS.max_body_bytes).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let mut st = ParkingState { new_vehicle: path.ends_with("/new"), ..Default::default() };
            let mut content_type = ct;
            for (i, f) in route.iter().enumerate() {
                let state = json::to_string(&st).expect("serializable");
                let (status, out) = match invoke(&client, ingress, f, &content_type, Some(&state), body.clone()).await {
                    Ok(r) => r,
                    Err(r) => return r,
                };
                if status != 200 || i + 1 == route.len() {
                    return respond(status, out.to_vec());
                }
                st = match json::from_slice(&out) {
                    Ok(s) => s,
                    Err(e) => return json_error(502, &format!("{f}: bad state: {e}")),
                };
                if i == 0 {
                    // From here on every function gets the bare image.
                    body = match image_of(&body, &st) {
                        Some(image) => image,
                        None => return json_error(502, &format!("{f}: image range outside the upload ({} bytes)", body.len())),
                    };
                    content_type = "image/jpeg".into();
                }
            }
            json_error(500, "empty route")
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_range_outside_the_upload_is_refused_not_a_panic() {
        let upload = Bytes::from_static(b"0123456789");
        let at = |image_offset, image_len| image_of(&upload, &ParkingState { image_offset, image_len, ..Default::default() });
        assert_eq!(at(2, 3).as_deref(), Some(&b"234"[..]));
        assert_eq!(at(0, 10).as_deref(), Some(&upload[..]));
        assert_eq!(at(8, 3), None);
        assert_eq!(at(11, 0), None);
        assert_eq!(at(usize::MAX, 2), None, "an overflowing range");
    }
}
