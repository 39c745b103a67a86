//! Parking end to end on every transport, both routes and the 415 case,
//! with service times scaled down so the test stays fast.

use std::path::PathBuf;

use parking::core::{plate, with_comment, SAMPLE_JPEG};
use testkit::{Http, Spright, TRANSPORTS};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_parking"))
}

fn chain() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("chain.yaml")
}

fn multipart(image: &[u8]) -> (String, Vec<u8>) {
    let mut body =
        b"--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"car.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n".to_vec();
    body.extend_from_slice(image);
    body.extend_from_slice(b"\r\n--b0undary--\r\n");
    ("multipart/form-data; boundary=b0undary".to_string(), body)
}

// The test client decoding an answer: not a message of the system's, not counted.
#[allow(clippy::disallowed_methods)]
fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap()
}

#[test]
fn both_routes_on_every_transport() {
    for t in TRANSPORTS {
        let sp = Spright::start_args(&bin(), &chain(), t, &["--service-time-scale", "0.01"]);
        let detection_ms = sp.metric("spright_function_service_time_milliseconds", &["function=\"detection\""]);
        assert!((detection_ms - 4.35).abs() < 1e-9, "{detection_ms}");
        let mut http = Http::connect(sp.addr);
        let car = with_comment(SAMPLE_JPEG, &format!("car on {t}"));
        let p = plate(&car);

        // Route 1: a new vehicle, as a multipart upload.
        let (ct, body) = multipart(&car);
        let r = http.request_with("POST", "/parking/new", &[("content-type", &ct)], &body);
        assert_eq!(r.status, 200, "{t}: {}", r.text());
        let v = json(&r.body);
        assert_eq!(
            (v["plate"].as_str(), v["route"].as_str(), v["seen_before"].as_bool()),
            (Some(p.as_str()), Some("new"), Some(false)),
            "{t}: {v}"
        );
        assert_eq!(
            (v["records"].as_u64(), v["fee_usd"].as_str(), v["image_bytes"].as_u64()),
            (Some(1), Some("0.00"), Some(car.len() as u64))
        );
        assert!(v["spot"].as_u64().is_some());

        // Route 2: the same vehicle leaving, as a raw upload.
        let r = http.request_with("POST", "/parking/known", &[("content-type", "image/jpeg")], &car);
        let v = json(&r.body);
        assert_eq!((v["route"].as_str(), v["seen_before"].as_bool(), v["spot"].is_null()), (Some("known"), Some(true), true), "{t}: {v}");
        assert_ne!(v["fee_usd"], "0.00");

        // Not a JPEG: 415, from the first function.
        let r = http.request_with("POST", "/parking/known", &[("content-type", "image/jpeg")], b"GIF89a definitely not a jpeg");
        assert_eq!((r.status, r.text()), (415, r#"{"error":"the upload is not a JPEG image"}"#.to_string()), "{t}");
        let r = http.request_with("POST", "/parking/new", &[("content-type", "text/plain")], b"hello");
        assert_eq!(r.status, 415);

        assert!(sp.eventually(std::time::Duration::from_secs(3), |s| s.slots_in_use() == 0.0));
        assert!(sp.stop().success());
    }
}

/// A burst like the paper's (164 concurrent uploads, 90% route 2), scaled
/// in time: every request answered, nothing leaked.
#[test]
fn a_burst_of_concurrent_uploads() {
    let sp = Spright::start_args(&bin(), &chain(), "eventring", &["--service-time-scale", "0.02"]);
    let addr = sp.addr;
    let workers: Vec<_> = (0..164)
        .map(|i| {
            std::thread::spawn(move || {
                let car = with_comment(SAMPLE_JPEG, &format!("burst car {i}"));
                let path = if i % 10 == 0 { "/parking/new" } else { "/parking/known" };
                Http::connect(addr).request_with("POST", path, &[("content-type", "image/jpeg")], &car).status
            })
        })
        .collect();
    let statuses: Vec<u16> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert!(sp.eventually(std::time::Duration::from_secs(3), |s| s.slots_in_use() == 0.0));
}
