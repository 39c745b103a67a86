//! The example chain end to end on every transport: 10 000 requests over
//! keep-alive connections, every response checked, no slot leaked.

mod common;

use common::{example_chain, Http, Spright};

const CONNECTIONS: usize = 8;
const PER_CONNECTION: usize = 1250;

fn expected(route: &str, body: &str) -> String {
    let words = body.split_whitespace().count();
    match route {
        "/transform" => {
            format!(r#"{{"words":{words},"bytes":{},"hops":3,"transformed":true,"text":"{}"}}"#, body.len(), body.to_ascii_uppercase())
        }
        "/count" => format!(r#"{{"words":{words},"bytes":{},"hops":2,"transformed":false,"text":"{body}"}}"#, body.len()),
        _ => format!(r#"{{"words":0,"bytes":0,"hops":1,"transformed":false,"text":"{body}"}}"#),
    }
}

fn serve_10k(transport: &str) {
    let sp = Spright::start(&example_chain(), transport);
    let addr = sp.addr;
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut http = Http::connect(addr);
                for i in 0..PER_CONNECTION {
                    let route = ["/transform", "/count", "/echo"][i % 3];
                    let body = format!("conn {c} request {i} says hello");
                    let r = http.request("POST", route, body.as_bytes());
                    assert_eq!(r.status, 200, "{route}: {}", r.text());
                    assert_eq!(r.header("content-type"), Some("application/json"));
                    assert_eq!(r.text(), expected(route, &body));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a connection saw a wrong response");
    }
    assert_eq!(sp.metric("spright_http_responses_total", &["status=\"200\""]), (CONNECTIONS * PER_CONNECTION) as f64);
    assert_eq!(sp.slots_in_use(), 0.0, "slots leaked");
    let rejected: Vec<String> =
        sp.metrics_text().lines().filter(|l| l.starts_with("spright_pool_descriptors_rejected")).map(String::from).collect();
    assert_eq!(sp.metric("spright_pool_descriptors_rejected_total", &[]), 0.0, "{rejected:#?}");
    if transport == "skmsg" {
        let sproxy: Vec<String> = sp.metrics_text().lines().filter(|l| l.starts_with("spright_sproxy")).map(String::from).collect();
        assert_eq!(sp.metric("spright_sproxy_drops_total", &[]), 0.0, "refused descriptors: {sproxy:#?}");
        // Every hop went through SPROXY: gateway sent one per request.
        assert_eq!(sp.metric("spright_sproxy_messages_total", &["function=\"gateway\"", "direction=\"tx\""]), 10_000.0);
        assert!(sp.metric("spright_eproxy_packets_total", &["direction=\"rx\""]) > 0.0, "EPROXY counts the external leg");
    }
    assert!(sp.stop().success());
}

#[test]
fn skmsg_serves_10k_keepalive_requests() {
    serve_10k("skmsg");
}

#[test]
fn eventring_serves_10k_keepalive_requests() {
    serve_10k("eventring");
}

/// D-SPRIGHT: with fewer cores than pollers it must still progress, and say
/// that it is oversubscribed.
#[test]
fn ring_serves_10k_keepalive_requests_and_flags_oversubscription() {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if cores < 5 {
        let sp = Spright::start(&example_chain(), "ring");
        let info = sp.metrics_text();
        assert!(info.contains("oversubscribed=\"5 pollers on"), "{info}");
    }
    serve_10k("ring");
}

#[test]
fn transports_give_identical_responses() {
    let mut answers = Vec::new();
    for t in common::TRANSPORTS {
        let sp = Spright::start(&example_chain(), t);
        let mut http = Http::connect(sp.addr);
        let got: Vec<(u16, String)> = ["/transform", "/count", "/echo", "/nothing-here"]
            .iter()
            .map(|route| {
                let r = http.request("POST", route, "Ünïcode \"quoted\" text".as_bytes());
                (r.status, r.text())
            })
            .collect();
        answers.push(got);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
    assert_eq!(answers[0][3].0, 404);
}
